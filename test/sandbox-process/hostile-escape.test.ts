/**
 * Hostile tenants, escape side: reaching for code generation, host objects,
 * engine features that run code outside a timed call, other tenants' names,
 * host secrets; tampering with the intrinsics the prelude uses; odd values
 * across the API; floods. Every denial here is tried for real.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PolicyIsolate } from '../../src/sandbox-process/policy-isolate';
import { BIND_PASSWORD, HOSTILE_LIMITS, STATUS, assertAlive, assertGoodFlowed, hostileCase, readCache, sleep, startWorld, submitText, tenantStats, withBind, withGoodTraffic, type World } from './hostile-helpers';
import { ECMASCRIPT_GLOBALS, FORBIDDEN, POLICIES } from './hostile-escape-policies';
import '../helpers/ivm-teardown';

const ROOMY = { ...HOSTILE_LIMITS, cpu_ms_per_s: 1000, handler_timeout_ms: 200 };

describe('hostile tenants: escapes, tampering, names, floods', () => {
  let w: World;
  before(async () => {
    w = await startWorld({
      escape: { policy: POLICIES.escape, limits: ROOMY },
      engine: { policy: POLICIES.engine, limits: ROOMY },
      tamper: { policy: POLICIES.tamper, limits: ROOMY },
      shapes: { policy: POLICIES.shapes, limits: ROOMY },
      nosy: { policy: POLICIES.nosy, limits: ROOMY },
      leaky: { policy: POLICIES.leaky, limits: ROOMY, binds: [{ name: 'leaky-up', host: '127.0.0.1', port: 1, system_id: 'leakyup', password: BIND_PASSWORD }] },
      flood: { policy: POLICIES.flood, limits: { ...ROOMY, handler_timeout_ms: 50 } },
      bytes: { policy: POLICIES.bytes, limits: ROOMY },
    });
  });
  after(() => w.close());

  it('constructor chains, eval, Function, callers, require/process/__sluice_* at top level and in a handler: each throws or finds nothing', async () => {
    const { answers } = await hostileCase(w, 'escape', ['probe']);
    assert.equal(answers[0]!.fields.message_id, 'probed');
    const fields = (await readCache(w, 'escape', 'probe')) as { atTop: Record<string, string>; inHandler: Record<string, string> };
    for (const where of ['atTop', 'inHandler'] as const) {
      const results = fields[where];
      assert.ok(Object.keys(results).length >= 36, 'every vector ran');
      for (const [vector, result] of Object.entries(results)) {
        assert.ok(result === 'nothing' || result.startsWith('threw:'), `${where} ${vector}: ${result}`);
      }
      // Code generation is refused outright, not just empty-handed.
      for (const v of ["Function('return this')()", '({}).constructor.constructor', '(async()=>{}).constructor', "eval('this')"]) assert.match(results[v]!, /^threw:/, `${where} ${v}`);
    }
  });

  it('the policy sees only smpp, cache and log plus standard ECMAScript globals; nothing reachable names a host or isolated-vm capability', async () => {
    const { answers } = await hostileCase(w, 'escape', ['globals', 'walk']);
    assert.deepEqual(answers.map((a) => a.command_status), [0, 0]);
    const g = (await readCache(w, 'escape', 'globals')) as { own: string[]; symbols: string[]; chain: string[][] };
    const extra = g.own.filter((n) => !ECMASCRIPT_GLOBALS.has(n) && !['smpp', 'cache', 'log'].includes(n));
    assert.deepEqual(extra, [], 'no global beyond ECMAScript and smpp/cache/log');
    for (const n of ['smpp', 'cache', 'log']) assert.ok(g.own.includes(n), n);
    for (const n of FORBIDDEN) assert.ok(!g.own.includes(n), `global ${n}`);
    assert.deepEqual(g.chain.flat().filter((n) => n !== 'constructor' && !Object.getOwnPropertyNames(Object.prototype).includes(n)), [], 'the global prototype chain adds nothing');
    const walked = (await readCache(w, 'escape', 'walk')) as { objects: number; names: string[] };
    assert.ok(walked.objects > 500, `walked the whole graph (${walked.objects} objects)`);
    // (RegExp.prototype.global and log.debug are fine as property names; as globals they are checked above.)
    const hits = FORBIDDEN.filter((n) => n !== 'global' && n !== 'debug' && walked.names.includes(n));
    assert.deepEqual(hits, [], 'no host, isolated-vm or prelude name anywhere in the reachable graph');
  });

  const engineTried = async (): Promise<Record<string, string>> => {
    const { answers } = await hostileCase(w, 'engine', ['try']);
    assert.equal(answers[0]!.fields.message_id, 'tried');
    return w.policyLogs('engine').at(-1)!.fields as Record<string, string>;
  };

  it('FinalizationRegistry abuse (a looping cleanup callback would run outside any timed call): FinalizationRegistry and WeakRef are absent', async () => {
    const tried = await engineTried();
    assert.deepEqual(
      { a: tried['typeof FinalizationRegistry'], b: tried['new FinalizationRegistry(loop)'], c: tried['globalThis lookup FinalizationRegistry'], d: tried['new WeakRef'] },
      { a: 'value:undefined', b: 'threw:ReferenceError', c: 'value:undefined', d: 'threw:ReferenceError' },
    );
  });

  it('WebAssembly, SharedArrayBuffer and Atomics (Atomics.wait) are absent, and console with them', async () => {
    const tried = await engineTried();
    assert.deepEqual(
      {
        wasm: tried['WebAssembly.Module'],
        wasmLookup: tried['globalThis WebAssembly'],
        sab: tried['new SharedArrayBuffer'],
        atomics: tried['Atomics.wait'],
        viaBuffer: tried['SharedArrayBuffer via a growable buffer'],
        inspector: tried.inspector,
        console: tried.console,
      },
      { wasm: 'threw:ReferenceError', wasmLookup: 'value:undefined', sab: 'threw:ReferenceError', atomics: 'threw:ReferenceError', viaBuffer: 'value:undefined', inspector: 'threw:ReferenceError', console: 'threw:ReferenceError' },
    );
  });

  it('a `debugger` statement is a no-op: no inspector to stop in, the handler goes on (harmless: ESME_ROK)', async () => {
    const t0 = Date.now();
    const { answers } = await hostileCase(w, 'engine', ['debugger']);
    assert.equal(answers[0]!.command_status, STATUS.ESME_ROK);
    assert.equal(answers[0]!.fields.message_id, 'after-debugger');
    assert.ok(Date.now() - t0 < 1500, 'did not pause');
  });

  it('cachedData and the inspector are never reachable: not from a policy, and the host never enables or accepts them', async () => {
    // From inside: covered by the reachability walk (no cachedData / createInspectorSession / compileScript anywhere).
    // The host side: policy isolates are created without an inspector, and nothing takes or makes cachedData.
    const iso = await PolicyIsolate.create(
      '"use strict";\nsmpp.onPdu("submit_sm", (p) => p.reply({ message_id: "x" }));\n',
      'p.ts',
      { memoryMb: 16, timeoutMs: 50, startupMs: 500, maxDataBytes: 65536, maxLogPerSec: 10, maxLogBytes: 2048, maxPending: 8 },
      { tenant: 't', config: {}, routing: {} },
      { result: () => {}, call: () => {}, log: () => {}, view: () => '[]' },
    );
    try {
      assert.throws(() => iso.isolate.createInspectorSession(), /inspector/i, 'no inspector on a policy isolate');
    } finally {
      iso.dispose();
    }
    // Every folder that makes or runs isolates, or compiles for them.
    const files = ['sandbox-process', 'policy-host', 'policy-compiler', 'testing'].flatMap((d) => {
      const dir = path.resolve(__dirname, '../../../src', d);
      return readdirSync(dir).filter((x) => x.endsWith('.ts')).map((x) => path.join(dir, x));
    });
    assert.ok(files.some((f) => readFileSync(f, 'utf8').includes('new ivm.Isolate(')), 'the check reads the file that creates isolates');
    for (const file of files) {
      const f = path.basename(file);
      const src = readFileSync(file, 'utf8');
      assert.doesNotMatch(src, /cachedData|produceCachedData/, `${f} never passes cachedData`);
      assert.doesNotMatch(src, /inspector:\s*true|createInspectorSession/, `${f} never enables an inspector`);
    }
    // And a policy cannot bring module machinery (dynamic import) with it.
    const r = await w.s.sandbox.reload('engine', withBind("smpp.onPdu('submit_sm', async () => { await import('fs'); });"));
    assert.equal(r.ok, false);
  });

  it('prototype tampering of Object, Array, Promise, JSON, Map, String, Math/Reflect/Function before calling the API breaks only the tenant itself', async () => {
    const expected: [string, number, string?][] = [
      ['object-forge', STATUS.ESME_ROK],
      ['status-forge', STATUS.ESME_RSYSERR],
      ['array', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['promise', STATUS.ESME_ROK, 'promise:1'],
      ['promise-species', STATUS.ESME_RSYSERR],
      ['json', STATUS.ESME_ROK, 'json:intact'],
      ['map', STATUS.ESME_ROK, 'map:OK'],
      ['string', STATUS.ESME_ROK, 'string:OK'],
      ['math-reflect', STATUS.ESME_ROK, 'reflect:OK'],
    ];
    for (const [variant, status, id] of expected) {
      // Each in a fresh isolate: a reload, as tampering is for good.
      assert.equal((await w.s.sandbox.reload('tamper', withBind(POLICIES.tamper))).ok, true);
      const { answers } = await hostileCase(w, 'tamper', [variant]);
      assert.equal(answers[0]!.command_status, status, variant);
      if (id) assert.equal(answers[0]!.fields.message_id, id, variant);
      if (variant === 'object-forge') assert.notEqual(answers[0]!.fields.message_id, 'forged', 'Object.prototype cannot forge an answer');
    }
  });

  it('Proxy, Symbol.toPrimitive and cyclic values returned from handlers or passed to the API: refused, timed out, or read once as plain data', async () => {
    const expected: [string, number, string?][] = [
      ['reply-proxy', STATUS.ESME_ROK, 'p'],
      ['reply-proxy-changing', STATUS.ESME_ROK, 'v1'],
      ['submit-proxy-ownkeys', STATUS.ESME_RSYSERR],
      ['bind-toprimitive-loop', STATUS.ESME_RSYSERR],
      ['status-toprimitive', STATUS.ESME_RSYSERR],
      ['messageid-toprimitive', STATUS.ESME_RSYSERR],
      ['cyclic-submit', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['cyclic-deliver', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['cyclic-cache', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['cyclic-log', STATUS.ESME_ROK, 'logged'],
      ['cyclic-reply', STATUS.ESME_RSYSERR],
      ['returned-cyclic', STATUS.ESME_RSYSERR],
      ['returned-proxy-harmless', STATUS.ESME_RSYSERR],
      ['returned-number', STATUS.ESME_RSYSERR],
      ['odd-types', STATUS.ESME_ROK, 'INVALID_FIELD,INVALID_FIELD,INVALID_FIELD,INVALID_FIELD'],
    ];
    const { answers } = await hostileCase(w, 'shapes', expected.map((e) => e[0]));
    answers.forEach((a, i) => {
      const [name, status, id] = expected[i]!;
      assert.equal(a.command_status, status, name);
      if (id) assert.equal(a.fields.message_id, id, name);
    });
    const cyclic = w.policyLogs('shapes').find((l) => l.msg === 'cyclic')!;
    assert.deepEqual(cyclic.fields, { fields_dropped: 'fields are not plain data within the size limit' });
  });

  it("naming another tenant's bind or session fails exactly like a name that does not exist; its cache keys are out of reach", async () => {
    const goodSession = w.s.gateway.sessions('good')[0]!.sessionId;
    assert.equal((await submitText(w.good, 'set:s3cret')).fields.message_id, 'set');
    const asks = [
      'submitVia good-up', 'submitVia no-such-bind',
      'queryVia good-up', 'queryVia no-such-bind',
      `deliverTo ${goodSession}`, 'deliverTo no-such-session',
      `dataTo ${goodSession}`, 'dataTo no-such-session',
      `alertTo ${goodSession}`, 'alertTo no-such-session',
      'cache-get secret', 'cache-get good:secret', 'cache-get sluice:cache:good:v:secret', 'cache-get ../good/secret', 'cache-get %67ood:secret',
      'cache-set secret', 'cache-set sluice:cache:good:v:secret', 'cache-delete secret',
      'views',
    ];
    const { answers } = await hostileCase(w, 'nosy', asks);
    assert.ok(answers.every((a) => a.fields.message_id === 'asked'));
    const said = new Map(w.policyLogs('nosy').map((l) => [l.msg, (l.fields as { r: Record<string, unknown> }).r]));
    const same = (a: string, b: string, name: string, other: string): void => {
      const x = said.get(a)!;
      const y = said.get(b)!;
      assert.ok(x.code, `${a} failed`);
      assert.equal(x.code, y.code, `${a} vs ${b}`);
      assert.equal(String(x.message).split(name).join('<name>'), String(y.message).split(other).join('<name>'), `${a}: no hint the name exists`);
    };
    same('submitVia good-up', 'submitVia no-such-bind', 'good-up', 'no-such-bind');
    assert.equal(said.get('submitVia good-up')!.code, 'UNKNOWN_BIND');
    same('queryVia good-up', 'queryVia no-such-bind', 'good-up', 'no-such-bind');
    for (const op of ['deliverTo', 'dataTo', 'alertTo']) {
      same(`${op} ${goodSession}`, `${op} no-such-session`, goodSession, 'no-such-session');
      assert.equal(said.get(`${op} ${goodSession}`)!.code, 'UNKNOWN_SESSION');
    }
    for (const k of ['secret', 'good:secret', 'sluice:cache:good:v:secret', '../good/secret', '%67ood:secret']) assert.deepEqual(said.get(`cache-get ${k}`), { has: false }, k);
    // The good tenant's key is untouched by nosy's writes and deletes.
    assert.equal((await submitText(w.good, 'get')).fields.message_id, 'got:s3cret');
    const views = said.get('views') as { sessions: { systemId: string }[]; binds: unknown[]; config: Record<string, unknown>; tenant: string };
    assert.equal(views.tenant, 'nosy');
    assert.ok(views.sessions.length >= 1 && views.sessions.every((x) => x.systemId === 'nosy-app'), 'only its own sessions');
    assert.deepEqual(views.binds, []);
    assert.equal(views.config.id, 'nosy');
    assert.ok(!JSON.stringify(views).includes('good'), 'nothing of the other tenant');
  });

  it('host-side failures reach the policy as a code and our own message: no host path, no stack of the host, no configured password', async () => {
    const { answers } = await hostileCase(w, 'leaky', ['go']);
    assert.equal(answers[0]!.fields.message_id, 'seen');
    const seen = (await readCache(w, 'leaky', 'seen')) as Record<string, string>[];
    assert.ok(seen.length >= 16);
    const codes = seen.filter((x) => x.code).map((x) => x.code);
    assert.ok(codes.includes('BIND_DOWN') && codes.includes('UNKNOWN_SESSION') && codes.includes('INVALID_FIELD') && codes.includes('QUOTA_EXCEEDED'), codes.join(','));
    const text = JSON.stringify(seen);
    const forbidden = [w.dir, process.cwd(), os.tmpdir() + '/', os.homedir(), path.resolve(__dirname, '../../..'), 'node_modules', 'dist/src', '.js:', BIND_PASSWORD];
    for (const f of forbidden) assert.ok(!text.includes(f), `no "${f}" in what the policy saw`);
    assert.doesNotMatch(text, /(^|[\s("'])\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+/, 'no absolute path of this machine');
    assert.doesNotMatch(text, /at (Gateway|SandboxPool|TenantCache|TenantRuntime|PolicyIsolate|process\.)|node:/, 'no host stack frame');
  });

  /** Count what crosses from the sandbox process to the core for the flood tenant. */
  const watchCrossings = (): { crossed: { log: number; hostCall: number; dropsReported: number }; stop(): void } => {
    const crossed = { log: 0, hostCall: 0, dropsReported: 0 };
    const stop = w.s.sandbox.watch('flood', (x) => {
      if (!('tenant' in x) || x.tenant !== 'flood') return;
      if (x.t === 'log') crossed.log++;
      if (x.t === 'log' && (x.fields as { logs_dropped?: number } | undefined)?.logs_dropped) crossed.dropsReported += (x.fields as { logs_dropped: number }).logs_dropped;
      if (x.t === 'hostCall') crossed.hostCall++;
    });
    return { crossed, stop };
  };

  it("log flood: max_log_per_s holds — also with the prelude's Math.min replaced — before anything crosses to the core", async () => {
    const { crossed, stop } = watchCrossings();
    try {
      const { answers } = await hostileCase(w, 'flood', ['log', 'log-bypass'], { afterMs: 300 });
      assert.equal((await submitText(await w.esme('flood'), 'one')).fields.message_id, 'logged');
      assert.deepEqual(answers.map((a) => a.fields.message_id), ['logged', 'logged']);
      // 50,000 lines asked for within about a second at 20 lines/s: the burst plus what refilled.
      assert.ok(crossed.log <= 2 * HOSTILE_LIMITS.max_log_per_s + 4, `${crossed.log} log lines crossed to the core`);
      // Reported on the next line that crosses, or within a second by the host if that line is held back too.
      for (let i = 0; i < 30 && crossed.dropsReported < 40_000; i++) await sleep(50);
      assert.ok(crossed.dropsReported >= 40_000, `drops are counted (${crossed.dropsReported})`);
    } finally {
      stop();
    }
  });

  it("send flood: max_pending holds for submitVia and cache — also with Map.prototype.size replaced — and the rest are THROTTLED at once", async () => {
    const { crossed, stop } = watchCrossings();
    try {
      const sends = await hostileCase(w, 'flood', ['send', 'cache', 'send-bypass'], { afterMs: 200 });
      const max = HOSTILE_LIMITS.max_pending;
      assert.equal(sends.answers[0]!.fields.message_id, `THROTTLED=${1000 - max},UNKNOWN_BIND=${max}`);
      assert.equal(sends.answers[1]!.fields.message_id, `OK=${max},THROTTLED=${1000 - max}`);
      assert.equal(sends.answers[2]!.fields.message_id, `THROTTLED=${1000 - max},UNKNOWN_BIND=${max}`);
      assert.ok(crossed.hostCall <= 3 * max, `${crossed.hostCall} host calls crossed to the core for 3000 attempts`);
    } finally {
      stop();
    }
  });

  it('a smpp.sessions() loop (a synchronous host callback, not charged to the isolate) is one host round trip per entry and stops at the CPU timeout', async () => {
    const c = await w.esme('flood');
    const pid = w.pid();
    const { value: took, samples } = await withGoodTraffic(w, async () => {
      const ms: number[] = [];
      for (let i = 0; i < 4; i++) {
        const t0 = Date.now();
        assert.equal((await submitText(c, 'views')).command_status, STATUS.ESME_RSYSERR);
        ms.push(Date.now() - t0);
      }
      return ms;
    });
    // Each host round trip runs on the sandbox's main thread and escapes the
    // isolate's clock: unbounded, the loop ran several times past its timeout.
    assert.ok(Math.max(...took) < 250, `each stopped at its 50 ms timeout (${took.join(', ')} ms)`);
    assertGoodFlowed(samples, 5, 200);
    await assertAlive(w, [{ tenant: 'flood', c }], pid);
    assert.ok((await tenantStats(w, 'flood')).timeouts as number >= 4);
  });

  it('bytes handed to the host are copied by the prelude: Symbol.species, a lying length or a shrinking resizable buffer cannot change what leaves', async () => {
    const got: number[][] = [];
    const c = await w.esme('bytes', (pdu) => {
      if (pdu.command === 'deliver_sm') got.push([...(pdu.fields.short_message as Buffer)]);
    });
    const pid = w.pid();
    const { samples, value } = await withGoodTraffic(w, async () => [await submitText(c, 'plain'), await submitText(c, 'species'), await submitText(c, 'length'), await submitText(c, 'shrink')]);
    assertGoodFlowed(samples);
    assert.deepEqual(value.map((a) => a.command_status), [0, 0, 0, 0]);
    assert.deepEqual(got.slice(0, 3), [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]], 'exactly the policy\'s four bytes each time');
    assert.ok(got.length === 4 || value[3]!.fields.message_id !== 'sent', 'the shrunk view went out as what it held when copied, or was refused');
    await assertAlive(w, [{ tenant: 'bytes', c }], pid);
  });
});
