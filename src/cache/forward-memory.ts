import { earlyId, MSG_QUEUED, type EarlyRow, type ForwardBackend, type MsgRow, type QueueDepth } from './forward-store';

/** One process's journal (memory://, tests). */
export function memoryForward(): ForwardBackend {
  const rows = new Map<string, MsgRow & { claimed: number }>();
  const byUp = new Map<string, string>();
  const early = new Map<string, EarlyRow>();
  const copy = (r: MsgRow): MsgRow => ({ key: r.key, tenant: r.tenant, up: r.up, state: r.state, due: r.due, expires: r.expires, created: r.created, route: r.route, data: r.data });
  const del = (key: string): void => {
    const old = rows.get(key);
    if (old?.up && byUp.get(old.up) === key) byUp.delete(old.up);
    rows.delete(key);
  };
  return {
    kind: 'memory',
    async commit(ops) {
      const ups = new Set<string>();
      for (const op of ops) {
        if (op.t === 'put') {
          del(op.row.key);
          rows.set(op.row.key, { ...copy(op.row), claimed: 0 });
          if (op.row.up) {
            byUp.set(op.row.up, op.row.key);
            ups.add(op.row.up);
          }
        } else if (op.t === 'del') del(op.key);
        else early.delete(earlyId(op.up, op.rid));
      }
      const parked = new Set([...early.values()].map((e) => e.up));
      return { early: Promise.resolve([...ups].filter((u) => parked.has(u))) };
    },
    async park(parked) {
      if (parked.some((e) => byUp.has(e.up))) return false;
      for (const e of parked) early.set(earlyId(e.up, e.rid), { ...e });
      return true;
    },
    async get(keys) {
      return keys.flatMap((k) => {
        const r = rows.get(k);
        return r ? [copy(r)] : [];
      });
    },
    async byUp(ups) {
      return ups.flatMap((u) => {
        const k = byUp.get(u);
        const r = k === undefined ? undefined : rows.get(k);
        return r ? [copy(r)] : [];
      });
    },
    async claimDue(tenants, now, until, limit, state = MSG_QUEUED) {
      const want = new Set(tenants);
      const due = [...rows.values()].filter((r) => r.state === state && r.due <= now && r.claimed <= now && want.has(r.tenant));
      due.sort((a, b) => a.due - b.due);
      return due.slice(0, limit).map((r) => {
        r.claimed = until;
        return copy(r);
      });
    },
    async wake(tenant, now) {
      let n = 0;
      for (const r of rows.values()) {
        if (r.state === MSG_QUEUED && r.tenant === tenant && r.due > now) {
          r.due = now;
          n++;
        }
      }
      return n;
    },
    async early(ups) {
      const want = new Set(ups);
      return [...early.values()].filter((e) => want.has(e.up)).map((e) => ({ ...e }));
    },
    async earlyMatchable(limit) {
      return [...early.values()].filter((e) => byUp.has(e.up)).slice(0, limit).map((e) => ({ ...e }));
    },
    async earlyExpired(now, limit) {
      return [...early.values()].filter((e) => e.expires < now).slice(0, limit).map((e) => ({ ...e }));
    },
    async sweep(now, earlyBefore) {
      let n = 0;
      for (const r of [...rows.values()]) {
        if (r.state !== MSG_QUEUED && r.expires < now) {
          del(r.key);
          n++;
        }
      }
      for (const [id, e] of [...early]) {
        if (e.expires < earlyBefore) {
          early.delete(id);
          n++;
        }
      }
      return n;
    },
    async probe() {},
    async depth() {
      const m = new Map<string, QueueDepth>();
      for (const r of rows.values()) {
        if (r.state !== MSG_QUEUED) continue;
        const route = r.route ?? '';
        const id = `${r.tenant}\u0000${route}`;
        const d = m.get(id);
        if (d) {
          d.count++;
          d.oldest = Math.min(d.oldest, r.created);
        } else m.set(id, { tenant: r.tenant, route, count: 1, oldest: r.created });
      }
      return [...m.values()];
    },
    async close() {
      rows.clear();
      byUp.clear();
      early.clear();
    },
  };
}
