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
import '../helpers/ivm-teardown';

const ROOMY = { ...HOSTILE_LIMITS, cpu_ms_per_s: 1000, handler_timeout_ms: 200 };

/** Standard ECMAScript globals (ECMA-262 and ECMA-402) a V8 context may have. */
const ECMASCRIPT_GLOBALS = new Set(
  (
    'globalThis Infinity NaN undefined eval isFinite isNaN parseFloat parseInt decodeURI decodeURIComponent encodeURI encodeURIComponent escape unescape ' +
    'AggregateError Array ArrayBuffer BigInt BigInt64Array BigUint64Array Boolean DataView Date Error EvalError FinalizationRegistry Float32Array Float64Array ' +
    'Function Int8Array Int16Array Int32Array Iterator Map Number Object Promise Proxy RangeError ReferenceError RegExp Set SharedArrayBuffer String Symbol SyntaxError ' +
    'TypeError Uint8Array Uint8ClampedArray Uint16Array Uint32Array URIError WeakMap WeakRef WeakSet Atomics JSON Math Reflect Intl'
  ).split(' '),
);

/** Names that would mean a host capability leaked in: Node, isolated-vm, the prelude's plumbing, code outside a timed call. */
const FORBIDDEN = [
  'process', 'require', 'module', 'exports', 'global', 'Buffer', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'console',
  '__sluice_send', '__sluice_view', '__sluice_boot', '__sluice_enter', '__sluice_caught', '__sluice_pdu',
  'ivm', 'Reference', 'ExternalCopy', 'Isolate', 'Context', 'Callback', 'NativeModule', 'Script', 'Module',
  'compileScript', 'compileScriptSync', 'compileModule', 'createContext', 'createContextSync', 'derefInto', 'deref', 'applySync', 'applySyncPromise',
  'copySync', 'copyInto', 'getSync', 'setSync', 'createInspectorSession', 'cachedData', 'produceCachedData', 'getHeapStatistics', 'cpuTime', 'wallTime',
  'eval', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry', 'WeakRef', 'inspector', 'debug',
];

const POLICIES = {
  escape: `
    const probe = (f, self) => {
      try {
        const v = f.call(self);
        if (v === undefined || v === null) return 'nothing';
        if (v === globalThis) return 'the policy global';
        return 'found:' + typeof v;
      } catch (e) {
        return 'threw:' + (e && e.name);
      }
    };
    const VECTORS = {
      'this.constructor.constructor': function () { return this.constructor.constructor('return process')(); },
      '({}).constructor.constructor': () => ({}).constructor.constructor('return process')(),
      '(async()=>{}).constructor': () => (async () => {}).constructor('return process')(),
      'function*.constructor': () => (function* () {}).constructor('return process')().next().value,
      'async function*.constructor': () => (async function* () {}).constructor('return process')(),
      "Function('return this')()": () => Function('return this')(),
      "new Function('return this')()": () => new Function('return this')(),
      'Reflect.construct(Function)': () => Reflect.construct(Function, ['return this'])(),
      'Function.prototype.constructor via descriptor': () => Object.getOwnPropertyDescriptor(Function.prototype, 'constructor').value('return this')(),
      'getPrototypeOf(async fn).constructor': () => Object.getPrototypeOf(async function () {}).constructor('return this')(),
      'smpp.constructor.constructor': () => smpp.constructor.constructor('return process')(),
      'smpp.onPdu.constructor': () => smpp.onPdu.constructor('return process')(),
      'log.info.constructor': () => log.info.constructor('return this')(),
      'cache.get.constructor': () => cache.get.constructor('return this')(),
      "eval('this')": () => eval('this'),
      'indirect eval': () => (0, globalThis.eval)('this'),
      'globalThis.eval': () => globalThis.eval,
      'cache.get.caller': () => cache.get.caller,
      'smpp.submitVia.arguments': () => smpp.submitVia.arguments,
      'handler.caller': function f() { return f.caller; },
      'arguments.callee': function () { return arguments.callee; },
      'require': () => require,
      'process': () => process,
      'module': () => module,
      'global': () => global,
      'Buffer': () => Buffer,
      'setTimeout': () => setTimeout,
      'queueMicrotask': () => queueMicrotask,
      'globalThis.__sluice_send': () => globalThis.__sluice_send,
      'globalThis.__sluice_view': () => globalThis.__sluice_view,
      'globalThis.__sluice_boot': () => globalThis.__sluice_boot,
      'globalThis.__sluice_enter': () => globalThis.__sluice_enter,
      '__sluice_enter': () => __sluice_enter,
      '__sluice_caught': () => __sluice_caught,
      'Symbol.for sluice': () => globalThis[Symbol.for('sluice')],
      'getPrototypeOf(globalThis).process': () => Object.getPrototypeOf(globalThis).process,
    };
    const run = (self) => { const out = {}; for (const k of Object.keys(VECTORS)) out[k] = probe(VECTORS[k], self); return out; };
    const atTop = run(this);
    // Everything reachable from the global: every property name on every object
    // and prototype, walking descriptors (no getter is called).
    function walk() {
      const seen = new Set(); const names = new Set(); const queue = [globalThis];
      while (queue.length && seen.size < 20000) {
        const o = queue.shift();
        if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
        seen.add(o);
        for (const k of Reflect.ownKeys(o)) {
          names.add(typeof k === 'symbol' ? String(k) : k);
          const d = Reflect.getOwnPropertyDescriptor(o, k);
          if (d) { queue.push(d.value, d.get, d.set); }
        }
        queue.push(Object.getPrototypeOf(o));
      }
      return { objects: seen.size, names: [...names] };
    }
    smpp.onPdu('submit_sm', async (pdu) => {
      if (pdu.text === 'globals') {
        const chain = [];
        for (let o = Object.getPrototypeOf(globalThis); o; o = Object.getPrototypeOf(o)) chain.push(Object.getOwnPropertyNames(o));
        await cache.set('globals', { own: Object.getOwnPropertyNames(globalThis), symbols: Object.getOwnPropertySymbols(globalThis).map(String), chain });
      } else if (pdu.text === 'walk') {
        await cache.set('walk', walk());
      } else {
        await cache.set('probe', { atTop, inHandler: run(undefined) });
      }
      return pdu.reply({ message_id: 'probed' });
    });`,
  engine: `
    const tried = {};
    const attempt = (name, f) => { try { tried[name] = 'value:' + typeof f(); } catch (e) { tried[name] = 'threw:' + e.name; } };
    smpp.onPdu('submit_sm', (pdu) => {
      attempt('typeof FinalizationRegistry', () => { if (typeof FinalizationRegistry !== 'undefined') throw new Error('present'); return undefined; });
      attempt('new FinalizationRegistry(loop)', () => new FinalizationRegistry(() => { for (;;) {} }));
      attempt('globalThis lookup FinalizationRegistry', () => globalThis['Finalization' + 'Registry']);
      attempt('new WeakRef', () => new WeakRef({}));
      attempt('WebAssembly.Module', () => new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])));
      attempt('globalThis WebAssembly', () => globalThis['Web' + 'Assembly']);
      attempt('new SharedArrayBuffer', () => new SharedArrayBuffer(8));
      attempt('Atomics.wait', () => Atomics.wait(new Int32Array(4), 0, 0, 1000));
      attempt('SharedArrayBuffer via a growable buffer', () => Object.getPrototypeOf(new ArrayBuffer(8, { maxByteLength: 16 })).constructor === ArrayBuffer ? undefined : 'other');
      attempt('inspector', () => inspector);
      attempt('console', () => console);
      if (pdu.text === 'debugger') { debugger; return pdu.reply({ message_id: 'after-debugger' }); }
      log.info('engine', tried);
      return pdu.reply({ message_id: 'tried' });
    });`,
  tamper: `
    smpp.onPdu('submit_sm', async (pdu) => {
      const code = (p) => p.then(() => 'OK', (e) => e.code);
      switch (pdu.text) {
        case 'object-forge':
          Object.prototype.kind = 'reply'; Object.prototype.status = 0; Object.prototype.accept = true;
          Object.prototype.fields = { message_id: 'forged' }; Object.prototype.toJSON = () => 'forged';
          Object.keys = () => []; Object.freeze = (o) => o; Object.defineProperty = () => {}; Object.create = () => ({});
          return undefined;
        case 'status-forge':
          Object.prototype.hasOwnProperty = () => true;
          return pdu.reply({ command_status: '__proto__' });
        case 'array':
          Array.prototype.push = () => 0; Array.prototype.indexOf = () => -1; Array.prototype.pop = () => undefined;
          Array.isArray = () => false; Array.prototype[Symbol.iterator] = function* () {}; Array.prototype.map = () => [];
          { const o = { a: [1, 2] }; o.self = o; return pdu.reply({ message_id: await code(smpp.submitVia('nope', o)) }); }
        case 'promise':
          Promise.prototype.then = function () { for (;;) {} }; Promise.resolve = () => { for (;;) {} }; Promise.all = () => { for (;;) {} };
          globalThis.Promise = function () { for (;;) {} };
          await cache.set('p', 1);
          return pdu.reply({ message_id: 'promise:' + (await cache.get('p')) });
        case 'promise-species':
          Object.defineProperty(Promise.prototype, 'constructor', { get() { for (;;) {} } });
          return pdu.reply({ message_id: 'x' });
        case 'json':
          JSON.stringify = () => { for (;;) {} }; JSON.parse = () => ({ forged: true });
          await cache.set('j', { a: 1 });
          { const v = await cache.get('j'); return pdu.reply({ message_id: v && v.a === 1 && !v.forged ? 'json:intact' : 'json:broken' }); }
        case 'map':
          Map.prototype.get = () => undefined; Map.prototype.set = () => { for (;;) {} }; Map.prototype.has = () => false;
          Object.defineProperty(Map.prototype, 'size', { get: () => 0 });
          return pdu.reply({ message_id: 'map:' + (await code(cache.get('m'))) });
        case 'string':
          String.prototype.slice = () => { for (;;) {} }; String.prototype.split = () => { for (;;) {} }; String.prototype.padStart = () => 'x';
          return pdu.reply({ message_id: 'string:' + (await code(cache.get('s'))) });
        case 'math-reflect':
          Math.min = () => Infinity; Reflect.apply = () => { for (;;) {} }; Symbol.toStringTag; Function.prototype.call = () => { for (;;) {} }; Function.prototype.apply = () => { for (;;) {} };
          return pdu.reply({ message_id: 'reflect:' + (await code(cache.get('r'))) });
      }
      return pdu.reply({ message_id: 'untampered' });
    });`,
  shapes: `
    const spin = () => { for (;;) {} };
    smpp.onPdu('submit_sm', async (pdu, session) => {
      const code = (p) => p.then(() => 'OK', (e) => e.code);
      const cyc = { a: 1 }; cyc.self = cyc;
      switch (pdu.text) {
        case 'reply-proxy': return pdu.reply(new Proxy({ message_id: 'p' }, {}));
        case 'reply-proxy-changing': { let n = 0; return pdu.reply(new Proxy({ message_id: 'x' }, { get: (t, k) => (k === 'message_id' ? 'v' + ++n : undefined) })); }
        case 'submit-proxy-ownkeys': return smpp.submitVia('x', new Proxy({}, { ownKeys: spin }));
        case 'bind-toprimitive-loop': return smpp.submitVia({ [Symbol.toPrimitive]: spin }, {});
        case 'status-toprimitive': return pdu.reply({ command_status: { [Symbol.toPrimitive]: () => 0 } });
        case 'messageid-toprimitive': return pdu.reply({ message_id: { [Symbol.toPrimitive]: () => 'prim' } });
        case 'cyclic-submit': return pdu.reply({ message_id: await code(smpp.submitVia('x', cyc)) });
        case 'cyclic-deliver': return pdu.reply({ message_id: await code(smpp.deliverTo(session.sessionId, cyc)) });
        case 'cyclic-cache': return pdu.reply({ message_id: await code(cache.set('k', cyc)) });
        case 'cyclic-log': log.info('cyclic', cyc); return pdu.reply({ message_id: 'logged' });
        case 'cyclic-reply': return pdu.reply({ message_id: 'c', extra: cyc });
        case 'returned-cyclic': return cyc;
        case 'returned-proxy-harmless': return new Proxy({}, {});
        case 'returned-number': return 42;
        case 'odd-types': return pdu.reply({ message_id: [await code(smpp.submitVia('x', { a: 1n })), await code(smpp.submitVia('x', { a: Symbol('s') })), await code(smpp.submitVia('x', { a() {} })), await code(smpp.submitVia('x', { a: NaN }))].join(',') });
      }
    });`,
  nosy: `
    const outcome = (p) => p.then((v) => ({ ok: JSON.stringify(v) }), (e) => ({ code: e.code, message: e.message }));
    smpp.onPdu('submit_sm', async (pdu, session) => {
      const [op, name] = pdu.text.split(' ');
      let r;
      if (op === 'submitVia') r = await outcome(smpp.submitVia(name, { destination_addr: '31600000000', short_message: 'x' }));
      if (op === 'queryVia') r = await outcome(smpp.queryVia(name, { message_id: '1', source_addr: '1' }));
      if (op === 'deliverTo') r = await outcome(smpp.deliverTo(name, { short_message: 'x' }));
      if (op === 'dataTo') r = await outcome(smpp.dataTo(name, {}));
      if (op === 'alertTo') r = await outcome(smpp.alertTo(name, {}));
      if (op === 'cache-get') r = { value: JSON.stringify(await cache.get(name)), has: await cache.has(name) };
      if (op === 'cache-set') { await cache.set(name, 'pwned'); r = { set: true }; }
      if (op === 'cache-delete') r = { deleted: await cache.delete(name) };
      if (op === 'views') r = { sessions: smpp.sessions(), binds: smpp.binds(), config: smpp.config(), routing: smpp.routingRules(), tenant: smpp.tenant };
      log.info(pdu.text, { r });
      return pdu.reply({ message_id: 'asked' });
    });`,
  leaky: `
    const seen = [];
    const note = (what, p) => p.then((v) => seen.push({ what, ok: JSON.stringify(v) }), (e) => seen.push({ what, code: e.code, message: e.message, stack: e.stack }));
    smpp.onPdu('submit_sm', async (pdu) => {
      await note('bind down', smpp.submitVia('leaky-up', { destination_addr: '31600000000', short_message: 'x' }));
      await note('bad field type', smpp.submitVia('leaky-up', { destination_addr: { deep: [1, 2] }, esm_class: 'not a number' }));
      await note('unknown field', smpp.submitVia('leaky-up', { no_such_field: 1 }));
      await note('huge number', smpp.submitVia('leaky-up', { esm_class: 1e300, data_coding: -5 }));
      await note('too long', smpp.submitVia('leaky-up', { destination_addr: 'd'.repeat(300) }));
      await note('bad command', smpp.queryVia('leaky-up', { message_id: 9 }));
      await note('unknown session', smpp.deliverTo('nope', { short_message: 'x' }));
      await note('bad field to a session', smpp.deliverTo('nope', { short_message: { x: 1 } }));
      await note('bad ttl', cache.set('k', 1, -5));
      await note('ttl type', cache.set('k', 1, 'soon'));
      await note('lone surrogate', cache.set('\\ud800', 1));
      await note('long key', cache.get('k'.repeat(600)));
      await note('quota', cache.set('q', '\u20ac'.repeat(30000)));
      await note('timer', smpp.timers.after(-1, 'x'));
      await note('timer type', smpp.timers.every('often', 'x'));
      try { null.x; } catch (e) { seen.push({ what: 'engine error', message: e.message, stack: e.stack }); }
      seen.push({ what: 'config', ok: JSON.stringify(smpp.config()) + JSON.stringify(smpp.binds()) + JSON.stringify(smpp.routingRules()) });
      await cache.set('seen', seen);
      return pdu.reply({ message_id: 'seen' });
    });`,
  flood: `
    smpp.onPdu('submit_sm', async (pdu) => {
      const tally = async (ps) => { const c = {}; for (const r of await Promise.all(ps)) c[r] = (c[r] || 0) + 1; return Object.entries(c).sort().map(([k, v]) => k + '=' + v).join(','); };
      const calls = (f) => { const ps = []; for (let i = 0; i < 1000; i++) ps.push(f().then(() => 'OK', (e) => e.code)); return ps; };
      switch (pdu.text) {
        case 'log': for (let i = 0; i < 30000; i++) log.info('flood ' + i); return pdu.reply({ message_id: 'logged' });
        case 'log-bypass': Math.min = () => 1e9; for (let i = 0; i < 20000; i++) log.info('flood ' + i); return pdu.reply({ message_id: 'logged' });
        case 'send': return pdu.reply({ message_id: await tally(calls(() => smpp.submitVia('nope', {}))) });
        case 'cache': return pdu.reply({ message_id: await tally(calls(() => cache.set('k', 1))) });
        case 'send-bypass':
          Object.defineProperty(Map.prototype, 'size', { get: () => 0 });
          return pdu.reply({ message_id: await tally(calls(() => smpp.submitVia('nope', {}))) });
        case 'views': for (;;) smpp.sessions();
        case 'one': log.info('after the flood'); return pdu.reply({ message_id: 'logged' });
      }
    });`,
  bytes: `
    smpp.onPdu('submit_sm', async (pdu, session) => {
      const rab = new ArrayBuffer(64, { maxByteLength: 4096 });
      const evil = new Uint8Array([1, 2, 3, 4]);
      if (pdu.text === 'species') {
        // slice() would ask evil.constructor[Symbol.species] for the copy: a 200-byte view.
        Object.defineProperty(evil, 'constructor', { value: { [Symbol.species]: function () { rab.resize(200); return new Uint8Array(rab); } } });
      }
      const typedArray = Object.getPrototypeOf(Uint8Array.prototype);
      const realLength = Object.getOwnPropertyDescriptor(typedArray, 'length');
      // The lie lasts while the prelude copies the bytes (at the call); undone after, since this
      // tenant's own next PDU views are built in its isolate with the same intrinsics.
      if (pdu.text === 'length') Object.defineProperty(typedArray, 'length', { get: () => 3000 });
      if (pdu.text === 'shrink') {
        const view = new Uint8Array(rab, 0, 64);
        const fields = { short_message: view, get esm_class() { rab.resize(0); return 0; } };
        return pdu.reply({ message_id: await smpp.deliverTo(session.sessionId, fields).then(() => 'sent', (e) => String(e.code)) });
      }
      const sent = smpp.deliverTo(session.sessionId, { short_message: evil });
      Object.defineProperty(typedArray, 'length', realLength);
      await sent;
      return pdu.reply({ message_id: 'sent' });
    });`,
};

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
    assert.ok(files.some((f) => f.endsWith('policy-isolate.ts')), 'the check reads the file that creates isolates');
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
