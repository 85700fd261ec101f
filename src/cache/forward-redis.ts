// One file on purpose: the journal's Redis backend is its Lua scripts, each atomic on the server, and the code that
// calls them.
import type { RedisCommands } from './hold';
import { MSG_OUT, MSG_QUEUED, type EarlyRow, type ForwardBackend, type ForwardOp, type MsgRow, type QueueDepth } from './forward-store';

/*
 * Key layout, all under `sluice:fw:` (NUL is string.char(0)):
 *
 *   m:<key>             hash, one message row: tenant, up (absent when null), state, due,
 *                       claimed, expires, created, route (absent when null), data
 *   up:<up>             string → key of the row with that correlation key
 *   due:<tenant>        zset of the tenant's queued rows not under a claim, by due
 *   cl:<tenant>         zset of the tenant's queued rows under a claim, by claimed-until
 *                       (every queued row is in exactly one of due:/cl:)
 *   od:<tenant>, oc:<tenant>  the same two for its outbox rows (receipts to deliver)
 *   r:<tenant>NUL<route> zset of the queued rows of one tenant's route, by created (depth)
 *   routes              set of the `<tenant>NUL<route>` that have queued rows
 *   exp                 zset of the non-queued rows, by expires (sweep)
 *   e:<up>              hash of early receipts filed under <up>: rid → "<expires> <data>"
 *   early               zset of all early receipts, `<up>NUL<rid>` by expires (earlyAll, sweep)
 *
 * Every call is one script (one round trip, atomic), except sweep, which
 * runs in bounded batches so one sweep never blocks Redis for long. Keys are
 * built inside the scripts (a row's old keys are known only there), so this
 * is for a standalone Redis (or a replica set), not Redis Cluster.
 *
 * Numbers travel as the decimal strings JavaScript wrote and are read back
 * with Number(): Lua only compares them.
 */

const P = 'sluice:fw:';

const LIB = `local P = '${P}'
local NUL = string.char(0)
local F = {'tenant', 'up', 'state', 'due', 'expires', 'created', 'route', 'data'}
local function row(k)
  local v = redis.call('HMGET', P .. 'm:' .. k, unpack(F))
  if not v[1] then return false end
  table.insert(v, 1, k)
  return v
end
local function drop(key)
  local mk = P .. 'm:' .. key
  local old = redis.call('HMGET', mk, 'tenant', 'up', 'route')
  if not old[1] then return 0 end
  local t = old[1]
  if old[2] and redis.call('GET', P .. 'up:' .. old[2]) == key then redis.call('DEL', P .. 'up:' .. old[2]) end
  redis.call('ZREM', P .. 'due:' .. t, key)
  redis.call('ZREM', P .. 'cl:' .. t, key)
  redis.call('ZREM', P .. 'od:' .. t, key)
  redis.call('ZREM', P .. 'oc:' .. t, key)
  local rk = t .. NUL .. (old[3] or '')
  if redis.call('ZREM', P .. 'r:' .. rk, key) == 1 and redis.call('EXISTS', P .. 'r:' .. rk) == 0 then redis.call('SREM', P .. 'routes', rk) end
  redis.call('ZREM', P .. 'exp', key)
  redis.call('DEL', mk)
  return 1
end
`;

// ARGV: the ops, flattened. Nullable strings are '' for null and '=' .. value otherwise.
//   p key tenant up state due expires created route data | d key | u up rid (early receipts are filed by PARK)
const COMMIT = `${LIB}
local function opt(s) if s == '' then return false end return string.sub(s, 2) end
local function put(i)
  local key, t, up, state, due, exp, created, route, data = ARGV[i + 1], ARGV[i + 2], opt(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], opt(ARGV[i + 8]), ARGV[i + 9]
  drop(key)
  local mk = P .. 'm:' .. key
  redis.call('HSET', mk, 'tenant', t, 'state', state, 'due', due, 'claimed', '0', 'expires', exp, 'created', created, 'data', data)
  if up then
    redis.call('HSET', mk, 'up', up)
    if up ~= '' then redis.call('SET', P .. 'up:' .. up, key) end
  end
  if route then redis.call('HSET', mk, 'route', route) end
  if tonumber(state) == ${MSG_QUEUED} then
    redis.call('ZADD', P .. 'due:' .. t, due, key)
    local rk = t .. NUL .. (route or '')
    redis.call('ZADD', P .. 'r:' .. rk, created, key)
    redis.call('SADD', P .. 'routes', rk)
  else
    if tonumber(state) == ${MSG_OUT} then redis.call('ZADD', P .. 'od:' .. t, due, key) end
    redis.call('ZADD', P .. 'exp', exp, key)
  end
end
local i = 1
local ups = {}
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'p' then
    put(i)
    local up = opt(ARGV[i + 3])
    if up and up ~= '' then ups[up] = true end
    i = i + 10
  elseif op == 'd' then
    drop(ARGV[i + 1])
    i = i + 2
  elseif op == 'u' then
    redis.call('HDEL', P .. 'e:' .. ARGV[i + 1], ARGV[i + 2])
    redis.call('ZREM', P .. 'early', ARGV[i + 1] .. NUL .. ARGV[i + 2])
    i = i + 3
  else
    return redis.error_reply('sluice forward: bad op ' .. tostring(op))
  end
end
-- The correlation keys just written that have early receipts parked (see ForwardBackend).
local out = {}
for up in pairs(ups) do
  if redis.call('EXISTS', P .. 'e:' .. up) == 1 then out[#out + 1] = up end
end
return out`;

// ARGV: (up, rid, expires, data)… of one receipt → 1 if filed, 0 if a message has one of its keys.
const PARK = `${LIB}
for i = 1, #ARGV, 4 do
  local k = redis.call('GET', P .. 'up:' .. ARGV[i])
  if k and redis.call('HGET', P .. 'm:' .. k, 'up') == ARGV[i] then return 0 end
end
for i = 1, #ARGV, 4 do
  redis.call('HSET', P .. 'e:' .. ARGV[i], ARGV[i + 1], ARGV[i + 2] .. ' ' .. ARGV[i + 3])
  redis.call('ZADD', P .. 'early', ARGV[i + 2], ARGV[i] .. NUL .. ARGV[i + 1])
end
return 1`;

// ARGV: keys
const GET = `${LIB}
local out = {}
for _, k in ipairs(ARGV) do
  local r = row(k)
  if r then table.insert(out, r) end
end
return out`;

// ARGV: ups
const BY_UP = `${LIB}
local out = {}
for _, up in ipairs(ARGV) do
  local k = redis.call('GET', P .. 'up:' .. up)
  if k then
    local r = row(k)
    if r and r[3] == up then table.insert(out, r) end
  end
end
return out`;

// ARGV: now, until, limit, due zset prefix, claimed zset prefix, tenants…
// Claims that ran out go back to due first; a row there still claimed past
// `now` (a caller's clock behind another's) is skipped, as its claim says.
const CLAIM = `${LIB}
local nows, untl, limit, dp, cp = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local now = tonumber(nows)
local cands = {}
local seq = 0
for ti = 6, #ARGV do
  local t = ARGV[ti]
  local dk, ck = P .. dp .. t, P .. cp .. t
  for _, k in ipairs(redis.call('ZRANGEBYSCORE', ck, '-inf', nows)) do
    redis.call('ZREM', ck, k)
    local d = redis.call('HGET', P .. 'm:' .. k, 'due')
    if d then redis.call('ZADD', dk, d, k) end
  end
  local off, got = 0, 0
  while got < limit do
    local batch = redis.call('ZRANGEBYSCORE', dk, '-inf', nows, 'WITHSCORES', 'LIMIT', off, limit)
    if #batch == 0 then break end
    for j = 1, #batch, 2 do
      local k = batch[j]
      local c = redis.call('HGET', P .. 'm:' .. k, 'claimed')
      if c and tonumber(c) <= now then
        seq = seq + 1
        got = got + 1
        cands[#cands + 1] = {tonumber(batch[j + 1]), seq, k, t}
        if got >= limit then break end
      end
    end
    off = off + limit
  end
end
table.sort(cands, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
local out = {}
for j = 1, math.min(limit, #cands) do
  local k, t = cands[j][3], cands[j][4]
  redis.call('HSET', P .. 'm:' .. k, 'claimed', untl)
  redis.call('ZREM', P .. dp .. t, k)
  redis.call('ZADD', P .. cp .. t, untl, k)
  out[#out + 1] = row(k)
end
return out`;

// ARGV: tenant, now
const WAKE = `${LIB}
local t, nows = ARGV[1], ARGV[2]
local now = tonumber(nows)
local dk = P .. 'due:' .. t
local n = 0
for _, k in ipairs(redis.call('ZRANGEBYSCORE', dk, '(' .. nows, '+inf')) do
  redis.call('ZADD', dk, nows, k)
  redis.call('HSET', P .. 'm:' .. k, 'due', nows)
  n = n + 1
end
for _, k in ipairs(redis.call('ZRANGE', P .. 'cl:' .. t, 0, -1)) do
  local d = redis.call('HGET', P .. 'm:' .. k, 'due')
  if d and tonumber(d) > now then
    redis.call('HSET', P .. 'm:' .. k, 'due', nows)
    n = n + 1
  end
end
return n`;

// ARGV: ups → flat up, rid, "<expires> <data>"
const EARLY = `${LIB}
local out = {}
for _, up in ipairs(ARGV) do
  local h = redis.call('HGETALL', P .. 'e:' .. up)
  for j = 1, #h, 2 do
    out[#out + 1] = up
    out[#out + 1] = h[j]
    out[#out + 1] = h[j + 1]
  end
end
return out`;

const EARLY_ENTRY = `
local function entry(out, m)
  local p = string.find(m, NUL, 1, true)
  if not p then return end
  local up, rid = string.sub(m, 1, p - 1), string.sub(m, p + 1)
  local v = redis.call('HGET', P .. 'e:' .. up, rid)
  if v then
    out[#out + 1] = up
    out[#out + 1] = rid
    out[#out + 1] = v
  end
end
`;

// ARGV: cursor, entries to look at, limit → {next cursor (0: the end), flat up, rid, "<expires> <data>"…}
// Looks at a bounded slice of the early set per call, so a large set never blocks Redis for long.
const EARLY_MATCHABLE = `${LIB}${EARLY_ENTRY}
local from, scan, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ms = redis.call('ZRANGE', P .. 'early', from, from + scan - 1)
local out = {}
local found = 0
for _, m in ipairs(ms) do
  local p = string.find(m, NUL, 1, true)
  if p and found < limit then
    local up = string.sub(m, 1, p - 1)
    local k = redis.call('GET', P .. 'up:' .. up)
    if k and redis.call('HGET', P .. 'm:' .. k, 'up') == up then
      entry(out, m)
      found = found + 1
    end
  end
end
local nxt = from + #ms
if #ms < scan then nxt = 0 end
table.insert(out, 1, nxt)
return out`;

// ARGV: now, limit → flat up, rid, "<expires> <data>"
const EARLY_EXPIRED = `${LIB}${EARLY_ENTRY}
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. 'early', '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))) do entry(out, m) end
return out`;

// ARGV: now, batch, earlyBefore → {rows and early receipts deleted, index entries looked at (at most batch)}
const SWEEP = `${LIB}
local nows, batch, ebefore = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local n, seen = 0, 0
for _, k in ipairs(redis.call('ZRANGEBYSCORE', P .. 'exp', '-inf', '(' .. nows, 'LIMIT', 0, batch)) do
  local st = redis.call('HGET', P .. 'm:' .. k, 'state')
  if st and tonumber(st) ~= ${MSG_QUEUED} then n = n + drop(k) end
  redis.call('ZREM', P .. 'exp', k)
  seen = seen + 1
end
if seen < batch then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. 'early', '-inf', '(' .. ebefore, 'LIMIT', 0, batch - seen)) do
    local p = string.find(m, NUL, 1, true)
    if p then n = n + redis.call('HDEL', P .. 'e:' .. string.sub(m, 1, p - 1), string.sub(m, p + 1)) end
    redis.call('ZREM', P .. 'early', m)
    seen = seen + 1
  end
end
return {n, seen}`;

// → flat tenant, route, count, oldest created
const DEPTH = `${LIB}
local out = {}
for _, rk in ipairs(redis.call('SMEMBERS', P .. 'routes')) do
  local zk = P .. 'r:' .. rk
  local c = redis.call('ZCARD', zk)
  local p = string.find(rk, NUL, 1, true)
  if c > 0 and p then
    local first = redis.call('ZRANGE', zk, 0, 0, 'WITHSCORES')
    local created = redis.call('HGET', P .. 'm:' .. first[1], 'created') or first[2]
    out[#out + 1] = string.sub(rk, 1, p - 1)
    out[#out + 1] = string.sub(rk, p + 1)
    out[#out + 1] = c
    out[#out + 1] = created
  end
end
return out`;

/** How many rows and early receipts one sweep script deletes at most. */
const SWEEP_BATCH = 1000;
/** Early receipts one matchable scan looks at. */
const EARLY_SCAN = 2000;

const num = (v: number, what: string): string => {
  if (!Number.isFinite(v)) throw new TypeError(`forward journal: ${what} is not a finite number: ${v}`);
  return String(v);
};
const opt = (s: string | null): string => (s === null ? '' : `=${s}`);

/** Flatten the ops for the commit script; throws (nothing sent) on a row Redis could not index. */
function encode(ops: readonly ForwardOp[]): string[] {
  const a: string[] = [];
  for (const op of ops) {
    if (op.t === 'put') {
      const r = op.row;
      a.push('p', r.key, r.tenant, opt(r.up), num(r.state, 'state'), num(r.due, 'due'), num(r.expires, 'expires'), num(r.created, 'created'), opt(r.route), r.data);
    } else if (op.t === 'del') a.push('d', op.key);
    else a.push('u', op.up, op.rid);
  }
  return a;
}

type Reply = string | number | null;

function toRow(v: unknown): MsgRow {
  const f = v as Reply[];
  const s = (i: number): string => String(f[i]);
  const n = (i: number): string | null => (f[i] === null || f[i] === undefined ? null : String(f[i]));
  return { key: s(0), tenant: s(1), up: n(2), state: Number(f[3]), due: Number(f[4]), expires: Number(f[5]), created: Number(f[6]), route: n(7), data: s(8) };
}

function toEarly(flat: unknown): EarlyRow[] {
  const f = flat as Reply[];
  const out: EarlyRow[] = [];
  for (let i = 0; i + 2 < f.length; i += 3) {
    const v = String(f[i + 2]);
    const sp = v.indexOf(' ');
    out.push({ up: String(f[i]), rid: String(f[i + 1]), expires: Number(v.slice(0, sp)), data: v.slice(sp + 1) });
  }
  return out;
}

/** The journal in Redis, shared by replicas. The client is the backend's: closing the journal leaves it open. */
export function redisForward(client: RedisCommands): ForwardBackend {
  const inflight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inflight.add(p);
    const done = (): void => void inflight.delete(p);
    p.then(done, done);
    return p;
  };
  const run = (script: string, args: string[]): Promise<unknown> => track(client.eval(script, { keys: [], arguments: args }));
  let matchCursor = 0;
  return {
    kind: 'redis',
    async commit(ops) {
      // The commit script reports the early receipts itself, in the same step.
      if (ops.length === 0) return { early: Promise.resolve([]) };
      return { early: Promise.resolve(((await run(COMMIT, encode(ops))) as Reply[]).map(String)) };
    },
    async park(parked) {
      if (parked.length === 0) return false;
      const args = parked.flatMap((e) => [e.up, e.rid, num(e.expires, 'expires'), e.data]);
      return Number(await run(PARK, args)) === 1;
    },
    async get(keys) {
      if (keys.length === 0) return [];
      return ((await run(GET, [...keys])) as unknown[]).map(toRow);
    },
    async byUp(ups) {
      if (ups.length === 0) return [];
      return ((await run(BY_UP, [...ups])) as unknown[]).map(toRow);
    },
    async claimDue(tenants, now, until, limit, state = MSG_QUEUED) {
      if (tenants.length === 0 || !(limit >= 1)) return [];
      const [dp, cp] = state === MSG_OUT ? ['od:', 'oc:'] : ['due:', 'cl:'];
      return ((await run(CLAIM, [num(now, 'now'), num(until, 'until'), String(Math.floor(limit)), dp, cp, ...tenants])) as unknown[]).map(toRow);
    },
    async wake(tenant, now) {
      return Number(await run(WAKE, [tenant, num(now, 'now')]));
    },
    async early(ups) {
      if (ups.length === 0) return [];
      return toEarly(await run(EARLY, [...ups]));
    },
    async earlyMatchable(limit) {
      if (!(limit >= 1)) return [];
      const [next, ...flat] = (await run(EARLY_MATCHABLE, [String(matchCursor), String(EARLY_SCAN), String(Math.floor(limit))])) as Reply[];
      matchCursor = Number(next);
      return toEarly(flat);
    },
    async earlyExpired(now, limit) {
      if (!(limit >= 1)) return [];
      return toEarly(await run(EARLY_EXPIRED, [num(now, 'now'), String(Math.floor(limit))]));
    },
    async sweep(now, earlyBefore) {
      const at = num(now, 'now');
      const eb = num(earlyBefore, 'earlyBefore');
      let total = 0;
      for (;;) {
        const [n, seen] = (await run(SWEEP, [at, String(SWEEP_BATCH), eb])) as [number, number];
        total += Number(n);
        if (Number(seen) < SWEEP_BATCH) return total;
      }
    },
    async depth() {
      const f = (await run(DEPTH, [])) as Reply[];
      const out: QueueDepth[] = [];
      for (let i = 0; i + 3 < f.length; i += 4) out.push({ tenant: String(f[i]), route: String(f[i + 1]), count: Number(f[i + 2]), oldest: Number(f[i + 3]) });
      return out;
    },
    async probe() {
      // A write (a replica answers READONLY, a full one OOM, one whose snapshots fail MISCONF).
      await run("redis.call('SET', 'sluice:probe', ARGV[1], 'PX', 60000)", [String(Date.now())]);
    },
    async close() {
      // The client belongs to the cache backend, which closes it.
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },
  };
}
