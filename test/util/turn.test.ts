import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ForwardStore, type ForwardBackend } from '../../src/cache/forward-store';
import { memoryForward } from '../../src/cache/forward-memory';
import { afterTurnWrites, atTurnEnd } from '../../src/util/turn';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the end of a turn: writes, then commits', () => {
  it("a commit asked for first in a turn still runs after the writes asked for later in it", async () => {
    const ran: string[] = [];
    afterTurnWrites(() => ran.push('commit 1'));
    atTurnEnd(() => ran.push('write 1'));
    await Promise.resolve();
    afterTurnWrites(() => ran.push('commit 2'));
    atTurnEnd(() => ran.push('write 2'));
    await turn();
    assert.deepEqual(ran, ['write 1', 'write 2', 'commit 1', 'commit 2']);
  });

  it('what a job asks for runs in a later turn, as its own setImmediate would', async () => {
    const ran: string[] = [];
    afterTurnWrites(() => {
      ran.push('commit');
      atTurnEnd(() => ran.push('write asked by the commit'));
    });
    await turn();
    assert.deepEqual(ran, ['commit']);
    await turn();
    assert.deepEqual(ran, ['commit', 'write asked by the commit']);
  });

  it("the journal's group commit runs after a socket write asked for later in the same turn", async () => {
    const log: string[] = [];
    const mem = memoryForward();
    const backend: ForwardBackend = {
      ...mem,
      async commit(ops) {
        log.push(`commit of ${ops.length}`);
        return mem.commit(ops);
      },
    };
    const store = new ForwardStore(backend);
    const row = { key: 'm1', tenant: 't', up: null, state: 1, due: 0, expires: Date.now() + 60_000, created: Date.now(), route: null, data: '{}' };
    const written = store.write([{ t: 'put', row }]);
    atTurnEnd(() => log.push('socket write'));
    await written;
    assert.deepEqual(log, ['socket write', 'commit of 1']);
    await store.close();
  });

  it('a job that throws fails as an uncaught exception, and the rest of the turn still runs', () => {
    const turnModule = path.join(__dirname, '..', '..', 'src', 'util', 'turn.js');
    const script = `
      const { atTurnEnd, afterTurnWrites } = require(${JSON.stringify(turnModule)});
      process.on('uncaughtException', (err) => { console.log('uncaught: ' + err.message); });
      atTurnEnd(() => { throw new Error('boom'); });
      atTurnEnd(() => console.log('write after it'));
      afterTurnWrites(() => console.log('commit after it'));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['write after it', 'commit after it', 'uncaught: boom']);
  });
});
