/**
 * The hold store (docs/design.md, "Replicas"): the session directory and the queues of
 * messages held for ESMEs, over each store, two connections to one store
 * standing for two replicas.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { memoryHolds, type HoldStore } from '../../src/cache';
import { sleep, twoReplicas, type ReplicaPair } from '../helpers/harness';
import { redisForThisFile, redisSkip } from '../helpers/redis';

const redis = redisForThisFile();
const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-hold-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const queue = (): string => `t${process.pid}-${++n}`;

const stores: { name: string; open: () => Promise<ReplicaPair<HoldStore>>; skip?: string | false; prunes: boolean }[] = [
  {
    name: 'memory',
    prunes: true,
    open: async () => {
      const m = memoryHolds();
      return { a: m, b: m, close: async () => undefined };
    },
  },
  { name: 'one SQLite file, two connections', prunes: true, open: () => twoReplicas(`sqlite://${path.join(dir, `c${++n}.sqlite`)}`, (s) => s.holds) },
  { name: 'real redis-server, two clients', prunes: false, open: () => twoReplicas(redis.url, (s) => s.holds), skip: redisSkip },
];

for (const s of stores) {
  describe(`hold store: ${s.name}`, { skip: s.skip ?? false }, () => {
    it('the directory remembers which system_id a session was, until it expires', async () => {
      const { a, b, close } = await s.open();
      try {
        const k = queue();
        await a.remember(`${k}:s1`, 'acme-app', 150);
        assert.equal(await b.recall(`${k}:s1`), 'acme-app');
        assert.equal(await b.recall(`${k}:s2`), undefined);
        await sleep(200);
        assert.equal(await b.recall(`${k}:s1`), undefined);
      } finally {
        await close();
      }
    });

    it('a queue gives its items out oldest first, each to one claimer; unclaimed or expired claims come back; acked ones never', async () => {
      const { a, b, close } = await s.open();
      try {
        const q = queue();
        for (let i = 1; i <= 5; i++) await a.push(q, `m${i}`, 60_000);
        assert.deepEqual(await b.pending([queue(), q]), [q]);
        const first = await b.claim(q, 3, 60_000);
        assert.deepEqual(first.map((x) => x.item), ['m1', 'm2', 'm3']);
        const rest = await a.claim(q, 10, 150);
        assert.deepEqual(rest.map((x) => x.item), ['m4', 'm5']);
        assert.deepEqual(await a.claim(q, 10, 60_000), [], 'everything is claimed');
        assert.deepEqual(await a.pending([q]), []);
        // m2 was not delivered: claimable again at once, ahead of newer items.
        await b.unclaim(q, [first[1]!.id]);
        await a.push(q, 'm6', 60_000);
        assert.deepEqual((await a.claim(q, 1, 60_000)).map((x) => x.item), ['m2']);
        await b.ack(q, [first[0]!.id, first[2]!.id]);
        // m4 and m5's claim runs out (the claimer died): someone else gets them.
        await sleep(200);
        assert.deepEqual((await b.claim(q, 10, 60_000)).map((x) => x.item), ['m4', 'm5', 'm6']);
        assert.deepEqual(await a.pending([q]), []);
      } finally {
        await close();
      }
    });

    it('many claimers at once: every item goes to exactly one', async () => {
      const { a, b, close } = await s.open();
      try {
        const q = queue();
        for (let i = 0; i < 30; i++) await (i % 2 ? a : b).push(q, `m${i}`, 60_000);
        const got: string[] = [];
        for (let round = 0; round < 5 && got.length < 30; round++) {
          const batches = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).claim(q, 4, 60_000)));
          for (const x of batches.flat()) got.push(x.item);
        }
        assert.equal(got.length, 30);
        assert.equal(new Set(got).size, 30, 'no item twice');
      } finally {
        await close();
      }
    });

    if (s.name.includes('redis')) {
      it('the claimed set expires with the items, even if no one claims again (a replica died holding claims)', async () => {
        const { a, close } = await s.open();
        try {
          const q = queue();
          await a.push(q, 'm', 60_000);
          assert.equal((await a.claim(q, 1, 60_000)).length, 1);
          const port = new URL(redis.url).port;
          const pttl = Number(execFileSync('redis-cli', ['-p', port, 'PTTL', `sluice:hold:${q}:claimed`]).toString().trim());
          assert.ok(pttl > 0 && pttl <= 60_000, `PTTL ${pttl}`);
        } finally {
          await close();
        }
      });
    }

    it('an item not delivered within its time is dropped', async () => {
      const { a, b, close } = await s.open();
      try {
        const q = queue();
        await a.push(q, 'old', 100);
        await a.push(q, 'new', 60_000);
        await sleep(150);
        if (s.prunes) assert.equal(await b.prune(), 1);
        assert.deepEqual((await b.claim(q, 10, 60_000)).map((x) => x.item), ['new']);
      } finally {
        await close();
      }
    });
  });
}
