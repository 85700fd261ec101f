import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';

const BIN = path.resolve(__dirname, '../../../bin/sluice.js');

/** What `sluice sim --log-events` prints, one JSON object a line. */
export interface SimEvent {
  ev: string;
  id?: string;
  rid?: string;
  text?: string;
  acked?: boolean;
  [k: string]: unknown;
}

let dir: string | undefined;
function outDir(): string {
  if (!dir) {
    const d = (dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-sim-')));
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
  }
  return dir;
}

/**
 * A real `sluice sim --log-events` in a child process on a given port, its
 * events collected.
 *
 * Its stdout is a file, read when `events` is asked for, not a pipe: the sim
 * writes a submit's line (synchronously, to a file) before its
 * submit_sm_resp, so whatever any process got an answer for is in the file
 * by then, even from a sim killed since. Lines from a pipe come on another
 * channel than the answers and may be read after them (or, in a buffer of
 * the sim's own when the pipe is full, never).
 */
export class SimProcess {
  private readonly list: SimEvent[] = [];
  /** The read side of its stdout file; closed once the sim has exited and all of it was read. */
  private fd: number | undefined;
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private listening = false;
  private readonly exited: Promise<unknown>;

  private constructor(
    readonly child: ChildProcess,
    fd: number,
  ) {
    this.fd = fd;
    this.exited = new Promise((r) => child.once('exit', r));
  }

  /** Every event the sim has written so far, in order. */
  get events(): SimEvent[] {
    this.readNew();
    return this.list;
  }

  private readNew(): void {
    if (this.fd === undefined) return;
    // Asked before reading: a sim that had exited then has written all it ever will.
    const gone = this.child.exitCode !== null || this.child.signalCode !== null;
    const chunk = Buffer.alloc(65_536);
    let n: number;
    while ((n = readSync(this.fd, chunk, 0, chunk.length, null)) > 0) this.partial += this.decoder.write(chunk.subarray(0, n));
    if (gone) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) !== -1) {
      const line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      if (line.startsWith('sluice sim: SMSC simulator listening')) this.listening = true;
      if (!line.startsWith('{')) continue;
      try {
        this.list.push(JSON.parse(line) as SimEvent);
      } catch {
        /* not an event */
      }
    }
  }

  /** Start on `port` with extra flags; resolves once it listens. */
  static async start(port: number, flags: string[] = []): Promise<SimProcess> {
    const file = path.join(outDir(), `sim-${port}-${Date.now()}-${Math.random().toString(36).slice(2)}.out`);
    const out = openSync(file, 'w');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [BIN, 'sim', '--port', String(port), '--log-events', ...flags], { stdio: ['ignore', out, 'inherit'] });
    } finally {
      closeSync(out);
    }
    const p = new SimProcess(child, openSync(file, 'r'));
    for (;;) {
      p.readNew();
      if (p.listening) return p;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error('sim exited before it listened');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Texts of the submits it accepted (one entry per accepted submit, duplicates included). */
  submitted(): string[] {
    return this.events.filter((e) => e.ev === 'submit').map((e) => String(e.text));
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}
