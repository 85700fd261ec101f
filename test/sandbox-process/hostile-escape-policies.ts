/**
 * The hostile-escape tests' policies (each one tries an escape for real) and
 * the names a policy's global scope may and may not have.
 */

/** Standard ECMAScript globals (ECMA-262 and ECMA-402) a V8 context may have. */
export const ECMASCRIPT_GLOBALS = new Set(
  (
    'globalThis Infinity NaN undefined eval isFinite isNaN parseFloat parseInt decodeURI decodeURIComponent encodeURI encodeURIComponent escape unescape ' +
    'AggregateError Array ArrayBuffer BigInt BigInt64Array BigUint64Array Boolean DataView Date Error EvalError FinalizationRegistry Float32Array Float64Array ' +
    'Function Int8Array Int16Array Int32Array Iterator Map Number Object Promise Proxy RangeError ReferenceError RegExp Set SharedArrayBuffer String Symbol SyntaxError ' +
    'TypeError Uint8Array Uint8ClampedArray Uint16Array Uint32Array URIError WeakMap WeakRef WeakSet Atomics JSON Math Reflect Intl'
  ).split(' '),
);

/** Names that would mean a host capability leaked in: Node, isolated-vm, the prelude's plumbing, code outside a timed call. */
export const FORBIDDEN = [
  'process', 'require', 'module', 'exports', 'global', 'Buffer', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'console',
  '__sluice_send', '__sluice_view', '__sluice_boot', '__sluice_enter', '__sluice_caught', '__sluice_pdu',
  'ivm', 'Reference', 'ExternalCopy', 'Isolate', 'Context', 'Callback', 'NativeModule', 'Script', 'Module',
  'compileScript', 'compileScriptSync', 'compileModule', 'createContext', 'createContextSync', 'derefInto', 'deref', 'applySync', 'applySyncPromise',
  'copySync', 'copyInto', 'getSync', 'setSync', 'createInspectorSession', 'cachedData', 'produceCachedData', 'getHeapStatistics', 'cpuTime', 'wallTime',
  'eval', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry', 'WeakRef', 'inspector', 'debug',
];

export const POLICIES = {
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
