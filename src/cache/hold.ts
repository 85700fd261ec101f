/** The commands the Redis hold store uses, of the cache's own client. */
export interface RedisCommands {
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  set(key: string, value: string, options: { expiration: { type: 'PX'; value: number } }): Promise<unknown>;
  get(key: string): Promise<unknown>;
  zRem(key: string, members: string[]): Promise<unknown>;
  hDel(key: string, fields: string[]): Promise<unknown>;
}

/**
 * Messages held for ESMEs that are not bound here (docs/design.md, "Replicas"), and the
 * directory that says which system_id a session id belonged to, in the
 * shared store. Delivery is at least once: an item is claimed for a while,
 * acknowledged once its ESME answered, and claimable again if its claim runs
 * out first (the replica that claimed it died or its send failed).
 */
export interface HoldStore {
  /** Remember that `session` (a tenant-scoped key) is a session of `systemId`, for `ttlMs`. */
  remember(session: string, systemId: string, ttlMs: number): Promise<void>;
  /** The system_id `session` belonged to, if remembered. */
  recall(session: string): Promise<string | undefined>;
  /** Append `item` to `queue`; it is dropped if still undelivered after `ttlMs`. */
  push(queue: string, item: string, ttlMs: number): Promise<void>;
  /** Those of `queues` with an item that can be claimed now. */
  pending(queues: readonly string[]): Promise<string[]>;
  /** Claim up to `max` of `queue`'s oldest claimable items for `claimMs`, oldest first. */
  claim(queue: string, max: number, claimMs: number): Promise<HeldItem[]>;
  /** Delivered: gone for good. */
  ack(queue: string, ids: readonly string[]): Promise<void>;
  /** Not delivered: claimable again at once. */
  unclaim(queue: string, ids: readonly string[]): Promise<void>;
  /** Drop expired items and directory entries; resolves to how many held items expired undelivered. */
  prune(): Promise<number>;
}

export interface HeldItem {
  id: string;
  item: string;
}

interface MemItem {
  id: number;
  item: string;
  expires: number;
  claimedUntil: number;
}

/** One process's holds (a memory store is never shared); times on the wall clock, like SQLite's. */
export function memoryHolds(now: () => number = Date.now): HoldStore {
  const dir = new Map<string, { systemId: string; expires: number }>();
  const queues = new Map<string, MemItem[]>();
  let seq = 0;
  const live = (q: string): MemItem[] => {
    const t = now();
    const list = (queues.get(q) ?? []).filter((i) => i.expires > t);
    if (list.length) queues.set(q, list);
    else queues.delete(q);
    return list;
  };
  return {
    async remember(session, systemId, ttlMs) {
      dir.set(session, { systemId, expires: now() + ttlMs });
    },
    async recall(session) {
      const e = dir.get(session);
      return e && e.expires > now() ? e.systemId : undefined;
    },
    async push(queue, item, ttlMs) {
      const list = queues.get(queue) ?? [];
      list.push({ id: ++seq, item, expires: now() + ttlMs, claimedUntil: 0 });
      queues.set(queue, list);
    },
    async pending(qs) {
      const t = now();
      return qs.filter((q) => live(q).some((i) => i.claimedUntil <= t));
    },
    async claim(queue, max, claimMs) {
      const t = now();
      const out: HeldItem[] = [];
      for (const i of live(queue)) {
        if (out.length >= max) break;
        if (i.claimedUntil > t) continue;
        i.claimedUntil = t + claimMs;
        out.push({ id: String(i.id), item: i.item });
      }
      return out;
    },
    async ack(queue, ids) {
      const gone = new Set(ids);
      const list = (queues.get(queue) ?? []).filter((i) => !gone.has(String(i.id)));
      if (list.length) queues.set(queue, list);
      else queues.delete(queue);
    },
    async unclaim(queue, ids) {
      const back = new Set(ids);
      for (const i of queues.get(queue) ?? []) if (back.has(String(i.id))) i.claimedUntil = 0;
    },
    async prune() {
      const t = now();
      for (const [k, e] of dir) if (e.expires <= t) dir.delete(k);
      let expired = 0;
      for (const q of [...queues.keys()]) {
        const before = queues.get(q)!.length;
        expired += before - live(q).length;
      }
      return expired;
    },
  };
}

/** What a SQLite hold store needs of the cache's connection. */
export interface SqliteQuery {
  query(sql: string, ...params: unknown[]): Promise<unknown>;
}

export const HOLD_TABLES = [
  `CREATE TABLE IF NOT EXISTS sluice_hold (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, item TEXT NOT NULL,
    expires INTEGER NOT NULL, claimed_until INTEGER NOT NULL DEFAULT 0)`,
  'CREATE INDEX IF NOT EXISTS sluice_hold_queue ON sluice_hold (queue, id)',
  'CREATE TABLE IF NOT EXISTS sluice_directory (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER NOT NULL)',
] as const;

const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/** Holds in the SQLite cache file (replicas on one host); `retry` wraps every statement (SQLITE_BUSY). */
export function sqliteHolds(db: SqliteQuery, retry: <T>(fn: () => Promise<T>) => Promise<T>, now: () => number = Date.now): HoldStore {
  const q = <T>(sql: string, ...params: unknown[]): Promise<T> => retry(() => db.query(sql, ...params) as Promise<T>);
  return {
    async remember(session, systemId, ttlMs) {
      await q(
        'INSERT INTO sluice_directory (key, value, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires',
        session,
        systemId,
        now() + ttlMs,
      );
    },
    async recall(session) {
      const rows = await q<{ value: string }[]>('SELECT value FROM sluice_directory WHERE key = ? AND expires > ?', session, now());
      return rows[0]?.value;
    },
    async push(queue, item, ttlMs) {
      await q('INSERT INTO sluice_hold (queue, item, expires) VALUES (?, ?, ?)', queue, item, now() + ttlMs);
    },
    async pending(queues) {
      if (queues.length === 0) return [];
      const t = now();
      const rows = await q<{ queue: string }[]>(
        `SELECT DISTINCT queue FROM sluice_hold WHERE queue IN (${placeholders(queues.length)}) AND claimed_until <= ? AND expires > ?`,
        ...queues,
        t,
        t,
      );
      return rows.map((r) => r.queue);
    },
    async claim(queue, max, claimMs) {
      const t = now();
      // One statement: the rows it marks are this caller's alone.
      const rows = await q<{ id: number; item: string }[]>(
        `UPDATE sluice_hold SET claimed_until = ? WHERE id IN (
           SELECT id FROM sluice_hold WHERE queue = ? AND claimed_until <= ? AND expires > ? ORDER BY id LIMIT ?)
         RETURNING id, item`,
        t + claimMs,
        queue,
        t,
        t,
        max,
      );
      return rows.sort((a, b) => a.id - b.id).map((r) => ({ id: String(r.id), item: r.item }));
    },
    async ack(_queue, ids) {
      if (ids.length) await q(`DELETE FROM sluice_hold WHERE id IN (${placeholders(ids.length)})`, ...ids.map(Number));
    },
    async unclaim(_queue, ids) {
      if (ids.length) await q(`UPDATE sluice_hold SET claimed_until = 0 WHERE id IN (${placeholders(ids.length)})`, ...ids.map(Number));
    },
    async prune() {
      const t = now();
      await q('DELETE FROM sluice_directory WHERE expires <= ?', t);
      const rows = await q<unknown[]>('DELETE FROM sluice_hold WHERE expires <= ? RETURNING id', t);
      return rows.length;
    },
  };
}

// Per queue: a list of ids in order, a hash id → [expires, item], a sorted set
// of claimed ids by claim expiry. Each script touches one queue's keys.
const REDIS_PUSH = `local id = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[2], id, ARGV[1] .. ' ' .. ARGV[2])
redis.call('RPUSH', KEYS[1], id)
for i = 1, 3 do
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
end
return id`;
const REDIS_CLAIM = `local now = tonumber(ARGV[1])
local back = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = #back, 1, -1 do
  redis.call('ZREM', KEYS[3], back[i])
  redis.call('LPUSH', KEYS[1], back[i])
end
local out = {}
local n = 0
while n < tonumber(ARGV[2]) do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  local v = redis.call('HGET', KEYS[2], id)
  if v then
    local sp = string.find(v, ' ')
    if tonumber(string.sub(v, 1, sp - 1)) > now then
      redis.call('ZADD', KEYS[3], ARGV[3], id)
      table.insert(out, id)
      table.insert(out, string.sub(v, sp + 1))
      n = n + 1
    else
      redis.call('HDEL', KEYS[2], id)
    end
  end
end
-- The claimed set goes when the items do, even if no one claims again.
local t = redis.call('PTTL', KEYS[2])
if n > 0 and t > 0 then redis.call('PEXPIRE', KEYS[3], t) end
return out`;
const REDIS_UNCLAIM = `for i = #ARGV, 1, -1 do
  if redis.call('ZREM', KEYS[3], ARGV[i]) == 1 then redis.call('LPUSH', KEYS[1], ARGV[i]) end
end
return 0`;
const REDIS_PENDING = `local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS, 2 do
  if redis.call('LLEN', KEYS[i]) > 0 or redis.call('ZCOUNT', KEYS[i + 1], '-inf', now) > 0 then table.insert(out, (i + 1) / 2) end
end
return out`;

/** Holds in Redis (the store of a cluster); expiry of whole queues is Redis's own, of single items checked at claim. */
export function redisHolds(client: RedisCommands, now: () => number = Date.now): HoldStore {
  const keys = (queue: string): [string, string, string] => [`sluice:hold:${queue}:list`, `sluice:hold:${queue}:items`, `sluice:hold:${queue}:claimed`];
  return {
    async remember(session, systemId, ttlMs) {
      await client.set(`sluice:esme:${session}`, systemId, { expiration: { type: 'PX', value: Math.ceil(ttlMs) } });
    },
    async recall(session) {
      const v = await client.get(`sluice:esme:${session}`);
      return typeof v === 'string' ? v : undefined;
    },
    async push(queue, item, ttlMs) {
      await client.eval(REDIS_PUSH, { keys: [...keys(queue), 'sluice:hold:seq'], arguments: [String(now() + ttlMs), item, String(Math.ceil(ttlMs))] });
    },
    async pending(queues) {
      if (queues.length === 0) return [];
      // Atomic per call, not across it: a queue that fills meanwhile is seen at the next poll.
      const hits = (await client.eval(REDIS_PENDING, { keys: queues.flatMap((q) => [keys(q)[0], keys(q)[2]]), arguments: [String(now())] })) as number[];
      return hits.map((i) => queues[i - 1]!);
    },
    async claim(queue, max, claimMs) {
      const t = now();
      const flat = (await client.eval(REDIS_CLAIM, { keys: keys(queue), arguments: [String(t), String(max), String(t + claimMs)] })) as string[];
      const out: HeldItem[] = [];
      for (let i = 0; i < flat.length; i += 2) out.push({ id: String(flat[i]), item: String(flat[i + 1]) });
      return out;
    },
    async ack(queue, ids) {
      if (ids.length === 0) return;
      const [, items, claimed] = keys(queue);
      await Promise.all([client.zRem(claimed, [...ids]), client.hDel(items, [...ids])]);
    },
    async unclaim(queue, ids) {
      if (ids.length === 0) return;
      // One script: an id is back in the list exactly when it left the claimed set.
      await client.eval(REDIS_UNCLAIM, { keys: keys(queue), arguments: [...ids] });
    },
    async prune() {
      // Queues and directory entries expire in Redis by themselves; expired items are dropped at claim.
      return 0;
    },
  };
}
