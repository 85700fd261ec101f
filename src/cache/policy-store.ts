import type { SqliteQuery } from './hold';
import { tenantNamespace } from './keys';

/**
 * Policy versions uploaded through the admin API, in the shared store: per
 * tenant an append-only history of changes, each one atomic step in the
 * store (one SQLite statement, one Redis script). The newest change is the
 * tenant's head: a version (an upload or a rollback) pins the tenant to it;
 * an unpin gives the tenant back to its file. Every change takes the next
 * number of one sequence over all tenants, so a replica polling for
 * changes asks only for what is newer than the last it saw.
 *
 * These records are the core's own: SQLite keeps them in a table of their
 * own, Redis under `sluice:policy:`, outside the tenant cache's
 * `sluice:cache:` prefix. No tenant key can name them.
 */

/** Changes kept per tenant (uploads, rollbacks, the file versions they replaced, unpins); older ones are dropped. */
export const POLICY_HISTORY = 50;

/** Who made a version: an upload or rollback with the admin token or the tenant's upload token, or the file an upload replaced. */
export type PolicyUploader = 'admin' | 'tenant' | 'file';

/** Who gave a tenant back to its file: the admin token, or a config reload after the file changed. */
export type Unpinner = 'admin' | 'reload';

export interface PolicyVersion {
  version: number;
  /** sha256 (hex) of the source's UTF-8. */
  hash: string;
  /** Wall-clock ms when it was stored. */
  at: number;
  uploader: PolicyUploader;
  /** The source's size in UTF-8 bytes. */
  bytes: number;
  /** A rollback: the version whose source it carries. */
  rollbackOf?: number;
}

/** A tenant's newest change. */
export interface PolicyHead {
  seq: number;
  /** The version the tenant is pinned to, and the hash its file had when the pin was taken; absent: the file serves. */
  pinned?: PolicyVersion & { fileHash: string };
}

export interface NewVersion {
  source: string;
  hash: string;
  at: number;
  uploader: 'admin' | 'tenant';
  rollbackOf?: number;
}

/** What an upload is pinned over: the file's hash now, and the source serving now (kept as a version when the tenant is not pinned yet). */
export interface PinnedOver {
  fileHash: string;
  serving?: { source: string; hash: string };
}

export interface PolicyStore {
  /**
   * Append `v` as the tenant's newest version and pin the tenant to it. A
   * tenant not pinned yet first gets `over.serving` appended (uploader
   * `file`) and its pin takes `over.fileHash`; a pinned one keeps the file
   * hash its pin was taken over.
   */
  pin(tenant: string, v: NewVersion, over: PinnedOver): Promise<PolicyHead & { pinned: PolicyVersion & { fileHash: string } }>;
  /** Give a pinned tenant back to its file; the new head's seq, or undefined if it was not pinned. */
  unpin(tenant: string, by: Unpinner, at: number): Promise<number | undefined>;
  /** The tenant's newest change; undefined when it has none. */
  head(tenant: string): Promise<PolicyHead | undefined>;
  /** The versions kept, oldest first. */
  versions(tenant: string): Promise<PolicyVersion[]>;
  /** A kept version's source. */
  source(tenant: string, version: number): Promise<string | undefined>;
  /** The tenants with a change newer than `since`, and the newest seq in the store (at least `since`). */
  changes(since: number): Promise<{ seq: number; tenants: string[] }>;
}

/** A change as stored: a version, or an unpin (`version` null). */
interface Row {
  seq: number;
  version: number | null;
  by: string;
  at: number;
  hash: string | null;
  bytes: number | null;
  rollback_of: number | null;
  file_hash: string | null;
}

function toVersion(r: Row): PolicyVersion {
  const v: PolicyVersion = { version: r.version!, hash: r.hash!, at: Number(r.at), uploader: r.by as PolicyUploader, bytes: r.bytes! };
  if (r.rollback_of !== null && r.rollback_of !== undefined) v.rollbackOf = r.rollback_of;
  return v;
}

function toHead(r: Row): PolicyHead {
  return r.version === null ? { seq: r.seq } : { seq: r.seq, pinned: { ...toVersion(r), fileHash: r.file_hash ?? '' } };
}

const bytesOf = (s: string): number => Buffer.byteLength(s, 'utf8');

/** One process's history (a memory store is never shared, nor kept past the process). */
export function memoryPolicies(): PolicyStore {
  const log = new Map<string, (Row & { source: string | null })[]>();
  const top = new Map<string, number>();
  let seq = 0;
  const rows = (t: string): (Row & { source: string | null })[] => {
    let r = log.get(t);
    if (!r) log.set(t, (r = []));
    return r;
  };
  const add = (t: string, row: Omit<Row, 'seq'> & { source: string | null }): Row => {
    const r = { ...row, seq: ++seq };
    const list = rows(t);
    list.push(r);
    if (list.length > POLICY_HISTORY) list.splice(0, list.length - POLICY_HISTORY);
    return r;
  };
  const headRow = (t: string): Row | undefined => log.get(t)?.at(-1);
  return {
    async pin(tenant, v, over) {
      const head = headRow(tenant);
      const pinnedOver = head && head.version !== null ? head.file_hash! : over.fileHash;
      const next = (): number => {
        const n = (top.get(tenant) ?? 0) + 1;
        top.set(tenant, n);
        return n;
      };
      if (!(head && head.version !== null) && over.serving) {
        const s = over.serving;
        add(tenant, { version: next(), by: 'file', at: v.at, hash: s.hash, bytes: bytesOf(s.source), rollback_of: null, file_hash: pinnedOver, source: s.source });
      }
      const r = add(tenant, { version: next(), by: v.uploader, at: v.at, hash: v.hash, bytes: bytesOf(v.source), rollback_of: v.rollbackOf ?? null, file_hash: pinnedOver, source: v.source });
      return toHead(r) as PolicyHead & { pinned: PolicyVersion & { fileHash: string } };
    },
    async unpin(tenant, by, at) {
      const head = headRow(tenant);
      if (!head || head.version === null) return undefined;
      return add(tenant, { version: null, by, at, hash: null, bytes: null, rollback_of: null, file_hash: null, source: null }).seq;
    },
    async head(tenant) {
      const r = headRow(tenant);
      return r ? toHead(r) : undefined;
    },
    async versions(tenant) {
      return (log.get(tenant) ?? []).filter((r) => r.version !== null).map(toVersion);
    },
    async source(tenant, version) {
      return log.get(tenant)?.find((r) => r.version === version)?.source ?? undefined;
    },
    async changes(since) {
      const tenants = [...log].filter(([, r]) => r.at(-1)!.seq > since).map(([t]) => t);
      return { seq: Math.max(since, seq), tenants };
    },
  };
}

export const POLICY_TABLES = [
  // AUTOINCREMENT: a seq is never given out twice, even after the newest rows of a tenant were dropped.
  `CREATE TABLE IF NOT EXISTS sluice_policy (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, version INTEGER,
    by TEXT NOT NULL, at INTEGER NOT NULL, hash TEXT, bytes INTEGER, rollback_of INTEGER, file_hash TEXT, source TEXT)`,
  'CREATE INDEX IF NOT EXISTS sluice_policy_tenant ON sluice_policy (tenant, seq)',
] as const;

const COLS = 'seq, version, by, at, hash, bytes, rollback_of, file_hash';

// One statement: the version numbers, the pin's file hash and whether the
// serving source is kept first are all read from the head it appends to, so
// replicas appending at once each get their own numbers.
const SQL_PIN = `WITH head AS (SELECT version, file_hash FROM sluice_policy WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1),
  pin AS (SELECT file_hash FROM head WHERE version IS NOT NULL),
  top AS (SELECT coalesce(max(version), 0) AS n FROM sluice_policy WHERE tenant = ?1),
  rows (k, by, hash, bytes, rollback_of, source) AS (
    SELECT 0, 'file', ?8, ?9, NULL, ?10 WHERE ?10 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pin)
    UNION ALL SELECT 1, ?2, ?4, ?5, ?6, ?7)
INSERT INTO sluice_policy (tenant, version, by, at, hash, bytes, rollback_of, file_hash, source)
SELECT ?1, top.n + row_number() OVER (ORDER BY k), by, ?3, hash, bytes, rollback_of, coalesce((SELECT file_hash FROM pin), ?11), source
FROM rows, top ORDER BY k
RETURNING ${COLS}`;
const SQL_UNPIN = `INSERT INTO sluice_policy (tenant, version, by, at)
SELECT ?1, NULL, ?2, ?3 WHERE (SELECT version FROM sluice_policy WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1) IS NOT NULL
RETURNING seq`;
// Keeps the tenant's newest POLICY_HISTORY rows; the head is always among them.
const SQL_TRIM = 'DELETE FROM sluice_policy WHERE tenant = ?1 AND seq < (SELECT seq FROM sluice_policy WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)';

/** Policy versions in the SQLite cache file (replicas on one host); `retry` wraps every statement (SQLITE_BUSY). */
export function sqlitePolicies(db: SqliteQuery, retry: <T>(fn: () => Promise<T>) => Promise<T>): PolicyStore {
  const q = <T>(sql: string, ...params: unknown[]): Promise<T> => retry(() => db.query(sql, ...params) as Promise<T>);
  const trim = (tenant: string): Promise<unknown> => q(SQL_TRIM, tenant, POLICY_HISTORY - 1);
  return {
    async pin(tenant, v, over) {
      const s = over.serving;
      const rows = await q<Row[]>(SQL_PIN, tenant, v.uploader, v.at, v.hash, bytesOf(v.source), v.rollbackOf ?? null, v.source, s?.hash ?? null, s ? bytesOf(s.source) : null, s?.source ?? null, over.fileHash);
      await trim(tenant);
      const newest = rows.reduce((a, b) => (b.seq > a.seq ? b : a));
      return toHead(newest) as PolicyHead & { pinned: PolicyVersion & { fileHash: string } };
    },
    async unpin(tenant, by, at) {
      const rows = await q<{ seq: number }[]>(SQL_UNPIN, tenant, by, at);
      if (rows.length === 0) return undefined;
      await trim(tenant);
      return rows[0]!.seq;
    },
    async head(tenant) {
      const rows = await q<Row[]>(`SELECT ${COLS} FROM sluice_policy WHERE tenant = ? ORDER BY seq DESC LIMIT 1`, tenant);
      return rows[0] ? toHead(rows[0]) : undefined;
    },
    async versions(tenant) {
      const rows = await q<Row[]>(`SELECT ${COLS} FROM sluice_policy WHERE tenant = ? AND version IS NOT NULL ORDER BY seq`, tenant);
      return rows.map(toVersion);
    },
    async source(tenant, version) {
      const rows = await q<{ source: string }[]>('SELECT source FROM sluice_policy WHERE tenant = ? AND version = ?', tenant, version);
      return rows[0]?.source;
    },
    async changes(since) {
      const rows = await q<{ tenant: string; seq: number }[]>('SELECT tenant, max(seq) AS seq FROM sluice_policy WHERE seq > ? GROUP BY tenant', since);
      return { seq: rows.reduce((m, r) => Math.max(m, r.seq), since), tenants: rows.map((r) => r.tenant) };
    },
  };
}

/** The commands the Redis policy store uses, of the cache's own client. */
export interface RedisEval {
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

// Per tenant: a list of its changes as JSON (no sources), a hash version →
// source, and its last version number; over all tenants: the change
// sequence and a sorted set of tenants by their newest change. A stored row
// is the caller's JSON with seq, version and file_hash spliced in front, so
// numbers never pass through Lua's floats.
const REDIS_PRELUDE = `local function trim()
  while redis.call('LLEN', KEYS[3]) > tonumber(ARGV[1]) do
    local old = cjson.decode(redis.call('LPOP', KEYS[3]))
    if old.version ~= cjson.null then redis.call('HDEL', KEYS[4], tostring(old.version)) end
  end
end
local function add(version, fileHash, rest)
  local seq = redis.call('INCR', KEYS[1])
  local v = 'null'
  if version then v = tostring(version) end
  local row = '{"seq":' .. seq .. ',"version":' .. v .. ',"file_hash":' .. fileHash .. ',' .. string.sub(rest, 2)
  redis.call('RPUSH', KEYS[3], row)
  redis.call('ZADD', KEYS[2], seq, ARGV[2])
  return row
end
local head = redis.call('LINDEX', KEYS[3], -1)
local pinned = nil
if head then
  local h = cjson.decode(head)
  if h.version ~= cjson.null then pinned = h end
end
`;
const REDIS_PIN = `${REDIS_PRELUDE}
local fileHash = cjson.encode(ARGV[5])
if pinned then fileHash = cjson.encode(pinned.file_hash) end
local out = {}
if not pinned and ARGV[6] ~= '' then
  local n = redis.call('INCR', KEYS[5])
  redis.call('HSET', KEYS[4], tostring(n), ARGV[7])
  table.insert(out, add(n, fileHash, ARGV[6]))
end
local n = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[4], tostring(n), ARGV[4])
table.insert(out, add(n, fileHash, ARGV[3]))
trim()
return out`;
const REDIS_UNPIN = `${REDIS_PRELUDE}
if not pinned then return false end
local row = add(nil, 'null', ARGV[3])
trim()
return row`;
const REDIS_CHANGES = `local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = { tostring(seq) }
if seq > tonumber(ARGV[1]) then
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')) do table.insert(out, t) end
end
return out`;

/** Policy versions in Redis (the store of a cluster). */
export function redisPolicies(client: RedisEval): PolicyStore {
  const SEQ = 'sluice:policy:seq';
  const CHANGED = 'sluice:policy:changed';
  const keys = (tenant: string): string[] => {
    const ns = tenantNamespace(tenant);
    return [SEQ, CHANGED, `sluice:policy:${ns}:log`, `sluice:policy:${ns}:src`, `sluice:policy:${ns}:n`];
  };
  // The caller's part of a row: JSON whose first character Lua drops before splicing in its own fields.
  const rest = (by: string, at: number, hash: string | null, bytes: number | null, rollbackOf: number | null): string => JSON.stringify({ by, at, hash, bytes, rollback_of: rollbackOf });
  const parse = (raw: unknown): Row => JSON.parse(String(raw)) as Row;
  const all = async (tenant: string): Promise<Row[]> => ((await client.eval("return redis.call('LRANGE', KEYS[1], 0, -1)", { keys: [keys(tenant)[2]!], arguments: [] })) as string[]).map(parse);
  return {
    async pin(tenant, v, over) {
      const s = over.serving;
      const out = (await client.eval(REDIS_PIN, {
        keys: keys(tenant),
        arguments: [
          String(POLICY_HISTORY),
          tenant,
          rest(v.uploader, v.at, v.hash, bytesOf(v.source), v.rollbackOf ?? null),
          v.source,
          over.fileHash,
          s ? rest('file', v.at, s.hash, bytesOf(s.source), null) : '',
          s?.source ?? '',
        ],
      })) as string[];
      return toHead(parse(out[out.length - 1])) as PolicyHead & { pinned: PolicyVersion & { fileHash: string } };
    },
    async unpin(tenant, by, at) {
      const row = await client.eval(REDIS_UNPIN, { keys: keys(tenant), arguments: [String(POLICY_HISTORY), tenant, rest(by, at, null, null, null)] });
      return typeof row === 'string' ? parse(row).seq : undefined;
    },
    async head(tenant) {
      const raw = await client.eval("return redis.call('LINDEX', KEYS[1], -1)", { keys: [keys(tenant)[2]!], arguments: [] });
      return typeof raw === 'string' ? toHead(parse(raw)) : undefined;
    },
    async versions(tenant) {
      return (await all(tenant)).filter((r) => r.version !== null).map(toVersion);
    },
    async source(tenant, version) {
      const raw = await client.eval("return redis.call('HGET', KEYS[1], ARGV[1])", { keys: [keys(tenant)[3]!], arguments: [String(version)] });
      return typeof raw === 'string' ? raw : undefined;
    },
    async changes(since) {
      const [seq, ...tenants] = (await client.eval(REDIS_CHANGES, { keys: [SEQ, CHANGED], arguments: [String(since)] })) as string[];
      return { seq: Math.max(since, Number(seq)), tenants };
    },
  };
}
