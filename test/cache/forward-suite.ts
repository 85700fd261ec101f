import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { until } from '../helpers/harness';
import { MSG_FINAL, MSG_OUT, MSG_QUEUED, MSG_SENT, type ForwardStore, type MsgRow } from '../../src/cache/forward-store';

/**
 * What every store-and-forward journal must do, whatever its backend.
 * Registered by forward-store.test.ts (memory, SQLite, a real redis-server).
 */
export interface ForwardTarget {
  name: string;
  /** A fresh store; tests use fresh tenant ids, so stores may share data. */
  open(): Promise<ForwardStore>;
  /** Open the same data again (a restart), where the backend is durable. */
  reopen?(): Promise<ForwardStore>;
  skip?: string | false;
}

let seq = 0;
const tid = (): string => `t${process.pid}x${Date.now().toString(36)}x${seq++}`;

function row(tenant: string, id: string, over: Partial<MsgRow> = {}): MsgRow {
  return { key: `${tenant}/${id}`, tenant, up: null, state: MSG_QUEUED, due: 0, expires: Date.now() + 60_000, created: Date.now(), route: 'b1', data: JSON.stringify({ id }), ...over };
}

export function forwardSuite(t: ForwardTarget): void {
  describe(`forward journal: ${t.name}`, { skip: t.skip }, () => {
    it('a write is readable at once (before its commit), by key and by correlation key, and after it', async () => {
      const s = await t.open();
      try {
        const tn = tid();
        const w = s.write([{ t: 'put', row: row(tn, 'a', { up: `${tn}/up/xa`, state: MSG_SENT }) }]);
        assert.equal((await s.get([`${tn}/a`]))[0]?.state, MSG_SENT);
        assert.equal((await s.byUp([`${tn}/up/xa`]))[0]?.key, `${tn}/a`);
        await w;
        assert.equal((await s.get([`${tn}/a`]))[0]?.data, JSON.stringify({ id: 'a' }));
        assert.deepEqual((await s.byUp([`${tn}/up/xa`, `${tn}/up/none`])).map((r) => r.key), [`${tn}/a`]);
        await s.write([{ t: 'del', key: `${tn}/a` }]);
        assert.deepEqual(await s.get([`${tn}/a`]), [undefined]);
        assert.deepEqual(await s.byUp([`${tn}/up/xa`]), []);
      } finally {
        await s.close();
      }
    });

    it("data with quotes, $' and other odd text is stored as it was given", async () => {
      const s = await t.open();
      try {
        const tn = tid();
        const data = JSON.stringify({ text: "it's $' $& $$ \\ \u0000 \"q\" ;-- DROP TABLE sluice_msg" });
        await s.write([{ t: 'put', row: row(tn, "o'k", { data }) }]);
        assert.equal((await s.get([`${tn}/o'k`]))[0]?.data, data);
      } finally {
        await s.close();
      }
    });

    it('a replaced row is found under its new correlation key only', async () => {
      const s = await t.open();
      try {
        const tn = tid();
        await s.write([{ t: 'put', row: row(tn, 'a', { up: `${tn}/u1`, state: MSG_SENT }) }]);
        await s.write([{ t: 'put', row: row(tn, 'a', { up: `${tn}/u2`, state: MSG_FINAL }) }]);
        assert.deepEqual(await s.byUp([`${tn}/u1`]), []);
        assert.equal((await s.byUp([`${tn}/u2`]))[0]?.state, MSG_FINAL);
      } finally {
        await s.close();
      }
    });

    it('writes made together commit together: a thousand writes take a handful of commits', async () => {
      const s = await t.open();
      try {
        const tn = tid();
        const before = s.stats.commits;
        await Promise.all(Array.from({ length: 1000 }, (_, i) => s.write([{ t: 'put', row: row(tn, `m${i}`, { state: MSG_SENT, up: `${tn}/u${i}` }) }])));
        assert.ok(s.stats.commits - before <= 5, `${s.stats.commits - before} commits`);
        const got = await s.get(Array.from({ length: 1000 }, (_, i) => `${tn}/m${i}`));
        assert.equal(got.filter(Boolean).length, 1000);
      } finally {
        await s.close();
      }
    });

    it('claims due queued rows of the tenants asked for, once each until the claim runs out; a write releases the claim', async () => {
      const s = await t.open();
      try {
        const a = tid();
        const b = tid();
        const now = Date.now();
        await s.write([
          { t: 'put', row: row(a, 'due1', { due: now - 10 }) },
          { t: 'put', row: row(a, 'due2', { due: now - 5 }) },
          { t: 'put', row: row(a, 'later', { due: now + 60_000 }) },
          { t: 'put', row: row(a, 'sent', { state: MSG_SENT, due: 0 }) },
          { t: 'put', row: row(b, 'other', { due: now - 10 }) },
        ]);
        const got = await s.claimDue([a], now, now + 1000, 10);
        assert.deepEqual(got.map((r) => r.key), [`${a}/due1`, `${a}/due2`]);
        assert.deepEqual(await s.claimDue([a], now, now + 1000, 10), []);
        // Its claim run out, a row is due again.
        assert.deepEqual((await s.claimDue([a], now + 1001, now + 2000, 10)).map((r) => r.key), [`${a}/due1`, `${a}/due2`]);
        await s.write([{ t: 'put', row: got[0]! }]);
        assert.deepEqual((await s.claimDue([a], now, now + 1000, 10)).map((r) => r.key), [`${a}/due1`]);
        assert.equal(await s.wake(a, now), 1);
        assert.deepEqual((await s.claimDue([a], now, now + 1000, 10)).map((r) => r.key), [`${a}/later`]);
        assert.deepEqual((await s.claimDue([b], now, now + 1000, 1)).map((r) => r.key), [`${b}/other`]);
      } finally {
        await s.close();
      }
    });

    it('early receipts: filed, found by key, removed; sweep drops what expired but never a queued row', async () => {
      const s = await t.open();
      try {
        const tn = tid();
        const now = Date.now();
        assert.equal(
          await s.park([
            { up: `${tn}/k1`, rid: 'r1', expires: now + 60_000, data: '{"a":1}' },
            { up: `${tn}/k2`, rid: 'r1', expires: now + 60_000, data: '{"a":1}' },
          ]),
          true,
        );
        assert.equal(await s.park([{ up: `${tn}/old`, rid: 'r2', expires: now - 1, data: '{}' }]), true);
        await s.write([
          { t: 'put', row: row(tn, 'q', { due: now, expires: now - 1 }) },
          { t: 'put', row: row(tn, 'f', { state: MSG_FINAL, expires: now - 1 }) },
        ]);
        assert.deepEqual((await s.early([`${tn}/k1`])).map((e) => [e.up, e.rid, e.data]), [[`${tn}/k1`, 'r1', '{"a":1}']]);
        assert.ok((await s.earlyExpired(now, 1000)).some((e) => e.up === `${tn}/old`));
        assert.ok(!(await s.earlyExpired(now, 1000)).some((e) => e.up === `${tn}/k2`));
        await s.write([{ t: 'unearly', up: `${tn}/k1`, rid: 'r1' }]);
        assert.deepEqual(await s.early([`${tn}/k1`]), []);
        assert.ok((await s.sweep(now, now)) >= 2);
        assert.deepEqual(await s.early([`${tn}/old`]), []);
        assert.deepEqual(await s.get([`${tn}/f`]), [undefined]);
        assert.equal((await s.get([`${tn}/q`]))[0]?.state, MSG_QUEUED);
      } finally {
        await s.close();
      }
    });

    it('an early receipt and its message meet in the store: a park sees a message written first, a commit reports a receipt parked first', async () => {
      const s = await t.open();
      // A second writer on the same data (another replica), where the backend is shared.
      const s2 = t.reopen ? await t.reopen() : s;
      const reported: string[] = [];
      s2.onEarly = (ups) => reported.push(...ups);
      try {
        const tn = tid();
        const now = Date.now();
        const early = (up: string, rid = 'r') => ({ up, rid, expires: now + 60_000, data: '{}' });
        // Parked first, under both keys its id may stand for; the message is written with the second.
        assert.equal(await s.park([early(`${tn}/k1`), early(`${tn}/k2`)]), true);
        await s2.write([{ t: 'put', correlates: true, row: row(tn, 'm1', { up: `${tn}/k2`, state: MSG_SENT }) }]);
        // Reported after the commit's writers are told (off their path), within moments.
        await until(() => reported.length > 0, 2000, 'the commit to report the parked receipt');
        assert.deepEqual(reported, [`${tn}/k2`]);
        assert.deepEqual((await s.earlyMatchable(1000)).filter((e) => e.up.startsWith(`${tn}/`)).map((e) => e.up), [`${tn}/k2`]);
        // The message first: not parked.
        await s2.write([{ t: 'put', row: row(tn, 'm2', { up: `${tn}/k3`, state: MSG_SENT }) }]);
        assert.equal(await s.park([early(`${tn}/k3`), early(`${tn}/k4`)]), false);
        assert.deepEqual(await s.early([`${tn}/k3`, `${tn}/k4`]), []);
        // Both at once, 200 times, in whatever order the store takes them: each receipt is either
        // not parked (its message was there) or reported by its message's commit. None falls between.
        reported.length = 0;
        const n = 200;
        const results = await Promise.all(
          Array.from({ length: n }, async (_, i) => {
            const up = `${tn}/race${i}`;
            const [parked] = await Promise.all([
              s.park([early(up)]),
              s2.write([{ t: 'put', correlates: true, row: row(tn, `race${i}`, { up, state: MSG_SENT }) }]),
            ]);
            return { up, parked };
          }),
        );
        const parkedUps = results.filter((r) => r.parked).map((r) => r.up);
        await until(() => parkedUps.every((up) => reported.includes(up)), 2000).catch(() => undefined);
        const seen = new Set(reported);
        const lost = results.filter((r) => r.parked && !seen.has(r.up));
        assert.deepEqual(lost, [], 'a parked receipt whose message commit did not report it');
      } finally {
        await s.close();
        if (s2 !== s) await s2.close();
      }
    });

    it('outbox receipts are claimed apart from queued messages, when due, once; they count in no queue depth', async () => {
      const s = await t.open();
      try {
        const tn = tid();
        const now = Date.now();
        await s.write([
          { t: 'put', row: row(tn, 'o1', { state: MSG_OUT, due: now - 10, route: 'esme-a' }) },
          { t: 'put', row: row(tn, 'o2', { state: MSG_OUT, due: now + 60_000, route: 'esme-a' }) },
          { t: 'put', row: row(tn, 'q1', { state: MSG_QUEUED, due: now - 10 }) },
        ]);
        assert.deepEqual((await s.claimDue([tn], now, now + 1000, 10, MSG_OUT)).map((r) => r.key), [`${tn}/o1`]);
        assert.deepEqual(await s.claimDue([tn], now, now + 1000, 10, MSG_OUT), [], 'claimed once');
        assert.deepEqual((await s.claimDue([tn], now, now + 1000, 10)).map((r) => r.key), [`${tn}/q1`], 'the queue claims no outbox row');
        // Its claim run out, it is due again; put back with a later due, it waits.
        assert.deepEqual((await s.claimDue([tn], now + 1001, now + 2000, 10, MSG_OUT)).map((r) => r.key), [`${tn}/o1`]);
        await s.write([{ t: 'put', row: row(tn, 'o1', { state: MSG_OUT, due: now + 30_000, route: 'esme-a' }) }]);
        assert.deepEqual(await s.claimDue([tn], now + 2001, now + 3000, 10, MSG_OUT), []);
        assert.deepEqual((await s.depth()).filter((d) => d.tenant === tn).map((d) => d.count), [1]);
        await s.write([{ t: 'del', key: `${tn}/o1` }, { t: 'del', key: `${tn}/o2` }]);
        assert.deepEqual(await s.claimDue([tn], now + 120_000, now + 121_000, 10, MSG_OUT), []);
      } finally {
        await s.close();
      }
    });

    it('lazy ops ride with the next commit, or commit by themselves shortly; a close commits them', async () => {
      const s = await t.open();
      const tn = tid();
      try {
        await s.write([{ t: 'put', row: row(tn, 'l1') }, { t: 'put', row: row(tn, 'l2') }, { t: 'put', row: row(tn, 'l3') }]);
        const commits = s.stats.commits;
        s.writeLazily([{ t: 'del', key: `${tn}/l1` }], 60_000);
        assert.deepEqual(await s.get([`${tn}/l1`]), [undefined], 'readable at once');
        await s.write([{ t: 'put', row: row(tn, 'l4') }]);
        assert.equal(s.stats.commits, commits + 1, 'in the same commit as the next write');
        s.writeLazily([{ t: 'del', key: `${tn}/l2` }], 20);
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(s.stats.commits, commits + 2, 'by itself once its time is up');
        s.writeLazily([{ t: 'del', key: `${tn}/l3` }], 60_000);
      } finally {
        await s.close();
      }
      if (t.reopen) {
        const again = await t.reopen();
        try {
          assert.deepEqual(await again.get([`${tn}/l1`, `${tn}/l2`, `${tn}/l3`, `${tn}/l4`]).then((r) => r.map((x) => x?.key)), [undefined, undefined, undefined, `${tn}/l4`]);
        } finally {
          await again.close();
        }
      }
    });

    it('queue depth per tenant and route, with the oldest message', async () => {
      const s = await t.open();
      try {
        const tn = tid();
        await s.write([
          { t: 'put', row: row(tn, 'a', { route: 'eu', created: 1000 }) },
          { t: 'put', row: row(tn, 'b', { route: 'eu', created: 2000 }) },
          { t: 'put', row: row(tn, 'c', { route: 'us', created: 3000 }) },
          { t: 'put', row: row(tn, 'd', { state: MSG_SENT }) },
        ]);
        const d = (await s.depth()).filter((x) => x.tenant === tn).sort((x, y) => x.route.localeCompare(y.route));
        assert.deepEqual(d.map((x) => [x.route, Number(x.count), Number(x.oldest)]), [['eu', 2, 1000], ['us', 1, 3000]]);
      } finally {
        await s.close();
      }
    });

    if (t.reopen) {
      it('what was committed is there after a reopen (a restart)', async () => {
        const s = await t.open();
        const tn = tid();
        await s.write([{ t: 'put', row: row(tn, 'kept', { state: MSG_SENT, up: `${tn}/u` }) }]);
        await s.close();
        const again = await t.reopen!();
        try {
          assert.equal((await again.byUp([`${tn}/u`]))[0]?.key, `${tn}/kept`);
        } finally {
          await again.close();
        }
      });
    }
  });
}
