/**
 * The end of a turn of the event loop, in two tiers: what a socket write
 * flushes first, then the journal's commits (docs/design.md, "One turn, in
 * order"). Work deferred to the turn's end used a setImmediate of its own,
 * run in the order they were asked for; a commit (tens of µs, on this
 * thread) asked for early in a turn then went ahead of a PDU that came in
 * later in it, and every process waiting on that PDU waited for the commit
 * too. Now a turn's writes leave first and the commit runs while the other
 * processes work on them.
 */

type Job = () => void;

let writes: Job[] = [];
let commits: Job[] = [];
let scheduled = false;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(runTurnEnd);
}

/** Run `job` at the end of this turn, with the turn's other writes. */
export function atTurnEnd(job: Job): void {
  writes.push(job);
  schedule();
}

/** Run `job` at the end of this turn, after the turn's writes. */
export function afterTurnWrites(job: Job): void {
  commits.push(job);
  schedule();
}

function runTurnEnd(): void {
  scheduled = false;
  const w = writes;
  const c = commits;
  writes = [];
  commits = [];
  // What these jobs ask for in turn runs in the next turn, as a setImmediate of its own would have.
  for (const job of w) run(job);
  for (const job of c) run(job);
}

/** A job that throws fails as its own setImmediate would have (an uncaught exception), after the turn's other jobs. */
function run(job: Job): void {
  try {
    job();
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}
