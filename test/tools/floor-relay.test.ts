/**
 * The bench's window-1 floor (src/tools/floor-relay.ts) does what it stands
 * for: every submit through the process hop and on to a real simulated
 * SMSC, answered ESME_ROK, its receipt back to the ESME, and four rows
 * written per message through the journal's group commit — the last, the
 * outbox row's deletion, once the ESME answered the receipt — in at most
 * three commits.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startFloorRelay } from '../../src/tools/floor-relay';
import { runLoad } from '../../src/tools/bench';
import { SmscSimulator } from '../../src/tools/sim';

describe('the bench floor relay', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-floor-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('relays through the hop, answers ESME_ROK, brings every receipt back, and commits each state of a message before what depends on it', async () => {
    const sim = new SmscSimulator({ dlrDelayMs: 0 });
    const simPort = await sim.listen();
    const file = path.join(dir, 'floor.sqlite');
    const floor = await startFloorRelay(simPort, file);
    try {
      const n = 200;
      const r = await runLoad({ port: floor.port, systemId: 'a', password: 'b', esmes: 1, window: 1, count: n, dlr: true, dlrWaitMs: 5000 });
      assert.equal(r.ok, n, 'every submit answered ESME_ROK');
      assert.equal(r.dlrs, n, 'every receipt back at the ESME');
      assert.equal(floor.stats.submits, n);
      assert.equal(floor.stats.receipts, n);
      assert.equal(floor.stats.unmatched, 0);
      // The outbox rows' deletions follow the ESME's answers: give the last one a moment.
      for (let i = 0; i < 200 && floor.journal.ops < 4 * n; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(floor.journal.ops, 4 * n, 'four rows a message: the correlation, the receipt and its outbox row, the outbox row gone');
      assert.ok(floor.journal.commits >= n && floor.journal.commits <= 3 * n, `${floor.journal.commits} commits for ${n} messages`);
      assert.ok(statSync(file).size > 0);
    } finally {
      await floor.close();
      await sim.close();
    }
    // What is left in the journal: every message final, no receipt still owed to the ESME.
    const db = new Database(file, { readonly: true });
    try {
      const rows = db.prepare('SELECT state, count(*) AS n FROM sluice_msg GROUP BY state').all() as { state: number; n: number }[];
      assert.deepEqual(rows, [{ state: 2, n: 200 }]);
    } finally {
      db.close();
    }
  });
});
