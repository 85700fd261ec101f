// One file, for now: the isolate runs it as one script before the policy, and it takes the
// intrinsics it uses before any tenant code can tamper with them. Building it from modules, as
// pdu-bundle.ts builds the PDU view, is the next step (the host-call ops it makes are checked
// against sandbox-protocol/host-calls.ts by the suite).
// The Sluice prelude. It runs first in every tenant isolate, before the
// tenant's policy, and builds the only three things a policy can reach:
// `smpp`, `cache` and `log`. Everything it needs from the host arrives as
// two plain functions on the global object, which it captures and deletes:
//
//   __sluice_send(op, id, data)  fire-and-forget message to the host
//                                (op: 'result' | 'call' | 'log'); `data` is
//                                always plain data this prelude built itself
//   __sluice_view(name)          a JSON string: the tenant's binds / sessions
//
// __sluice_pdu(bytes), defined by the script run just before this one
// (src/policy-compiler/pdu-bundle.ts), builds a PDU's view from its raw frame. The
// host enters the isolate only through __sluice_enter, which this prelude
// defines and the host takes and deletes before tenant code runs. Every entry
// is a timed call, so all tenant code — handlers, their continuations after
// awaiting the host, microtasks — runs under the per-call CPU timeout.
//
// It runs in two steps. This script runs in an isolate made ahead of need,
// before anyone knows which tenant will take it; the first entry, `boot`,
// gives it its tenant (a JSON boot record: name, config, routing, limits) and
// only then are `smpp`, `cache` and `log` put on the global object.
(function prelude(global) {
  'use strict';

  // ---- capture what we rely on before tenant code can touch it ------------
  const post = global.__sluice_send;
  const view = global.__sluice_view;
  // The PDU view builder (src/pdu/view.ts, loaded just before this prelude).
  const pduView = global.__sluice_pdu;
  delete global.__sluice_send;
  delete global.__sluice_view;
  delete global.__sluice_pdu;

  const { stringify, parse } = JSON;
  const { freeze, keys, getPrototypeOf, defineProperty, create } = Object;
  const { isArray } = Array;
  const { apply } = Reflect;
  const PromiseCtor = Promise;
  const promiseThen = Promise.prototype.then;
  // Statics too: a policy may replace Promise.resolve and friends, and the
  // prelude must never call tenant code it did not mean to.
  const promiseResolve = Promise.resolve.bind(Promise);
  const promiseReject = Promise.reject.bind(Promise);
  const promiseAll = Promise.all.bind(Promise);
  const MapCtor = Map;
  const mapGet = Map.prototype.get;
  const mapSet = Map.prototype.set;
  const mapDelete = Map.prototype.delete;
  const mapHas = Map.prototype.has;
  const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, 'size').get;
  const SetCtor = Set;
  const setAdd = Set.prototype.add;
  const setHas = Set.prototype.has;
  const setDelete = Set.prototype.delete;
  const strIndexOf = String.prototype.indexOf;
  const WeakSetCtor = WeakSet;
  const WeakMapCtor = WeakMap;
  const weakMapGet = WeakMap.prototype.get;
  const weakMapSet = WeakMap.prototype.set;
  const weakAdd = WeakSet.prototype.add;
  const weakHas = WeakSet.prototype.has;
  const U8 = Uint8Array;
  const u8Subarray = Uint8Array.prototype.subarray;
  const ErrorCtor = Error;
  const StringCtor = String;
  const strSlice = String.prototype.slice;
  const hasOwn = Object.prototype.hasOwnProperty;
  const { min } = Math;
  const isInteger = Number.isInteger;
  const now = Date.now;
  const objectProto = Object.prototype;
  const typedArrayProto = getPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = Object.getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag).get;
  const typedArrayLength = Object.getOwnPropertyDescriptor(typedArrayProto, 'length').get;

  const mget = (m, k) => apply(mapGet, m, [k]);
  const mset = (m, k, v) => apply(mapSet, m, [k, v]);
  const mdel = (m, k) => apply(mapDelete, m, [k]);
  const mhas = (m, k) => apply(mapHas, m, [k]);
  const msize = (m) => apply(mapSize, m, []);
  // The policy may have replaced String.prototype.slice: cut with the original.
  const cut = (v, n) => apply(strSlice, StringCtor(v), [0, n]);
  const then = (p, a, b) => apply(promiseThen, p, [a, b]);
  const isU8 = (v) => v !== null && typeof v === 'object' && apply(typedArrayTag, v, []) === 'Uint8Array';

  // ---- messages to the host ------------------------------------------------------
  // What a handler sends while an entry runs synchronously (a handler that
  // answers without awaiting, its host calls, its logs) goes back as the
  // entry's return value: no callback per message. What comes later, from
  // microtasks or continuations, is collected and posted once per microtask
  // checkpoint.
  let outbox = null;
  let late = null;
  const flushLate = () => {
    const items = late;
    late = null;
    if (items !== null) post('batch', 0, items);
  };
  function send(op, id, data, extra) {
    const item = extra === undefined ? [op, id, data] : [op, id, data, extra];
    if (outbox !== null) {
      outbox[outbox.length] = item;
      return;
    }
    if (late === null) {
      late = [];
      then(promiseResolve(undefined), flushLate);
    }
    late[late.length] = item;
  }

  // Set by the `boot` entry, before any tenant code runs.
  let boot = null;
  let LIMITS = null; // { maxDataBytes, maxLogPerSec, maxLogBytes, maxPending }
  let STATUS = null; // name -> value

  // ---- remove what a policy must not have ------------------------------------
  const throwing = function () {
    throw new ErrorCtor('code generation from strings is not available in a Sluice policy');
  };
  // `console` is V8's, not ECMAScript's: a no-op here, and one more thing a policy need not see.
  for (const name of ['eval', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry', 'WeakRef', 'console']) {
    try {
      delete global[name];
    } catch (_) {
      /* non-configurable: leave it */
    }
  }
  // Function('...') and friends compile strings; there is nothing for them to
  // reach here, but no policy needs them either.
  for (const F of [Function, (async function () {}).constructor, function* () {}.constructor, (async function* () {}).constructor]) {
    defineProperty(F.prototype, 'constructor', { value: throwing, writable: false, configurable: false, enumerable: false });
  }
  throwing.prototype = Function.prototype;
  defineProperty(global, 'Function', { value: throwing, writable: false, configurable: false, enumerable: false });
  // A policy-installed stack formatter would run host-invisible code on every error.
  defineProperty(ErrorCtor, 'prepareStackTrace', { value: undefined, writable: false, configurable: false });

  // ---- plain data out -------------------------------------------------------------
  // Everything that leaves the isolate is rebuilt here, inside the timed call:
  // only null, booleans, finite numbers, strings, Uint8Array, arrays and plain
  // objects, bounded in size and depth. Getters, proxies and toJSON run now,
  // under the timeout, never later on the host side.
  const tooLarge = () => sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
  function plain(value, budget, depth) {
    if (depth > 16) throw sluiceError('INVALID_FIELD', 'value nested too deeply');
    if (value === null || value === undefined) return value;
    const t = typeof value;
    if (t === 'boolean') return value;
    if (t === 'number') {
      if (value !== value || value === Infinity || value === -Infinity) throw sluiceError('INVALID_FIELD', 'numbers must be finite');
      budget.left -= 8;
      return value;
    }
    if (t === 'string') {
      budget.left -= value.length * 2;
      if (budget.left < 0) throw sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
      return value;
    }
    if (t !== 'object') throw sluiceError('INVALID_FIELD', `a ${t} cannot be passed to the host`);
    if (isU8(value)) {
      // Copied by hand into a fresh array: slice() would let the policy choose
      // the result through Symbol.species (a view on a resizable or larger
      // buffer), and a replaced length getter could lie about the size.
      const n = apply(typedArrayLength, value, []);
      budget.left -= n;
      if (budget.left < 0) throw sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
      const copy = new U8(n);
      for (let i = 0; i < n; i++) copy[i] = value[i];
      return copy;
    }
    if (budget.seen === null) budget.seen = new SetCtor();
    else if (apply(setHas, budget.seen, [value])) throw sluiceError('INVALID_FIELD', 'cyclic value');
    apply(setAdd, budget.seen, [value]);
    let out;
    if (isArray(value)) {
      const n = value.length;
      if (n > 100000) throw sluiceError('INVALID_FIELD', 'array too long');
      out = [];
      for (let i = 0; i < n; i++) {
        out[i] = plain(value[i], budget, depth + 1);
        if (budget.left < 0) throw tooLarge(); // early, not after a million cheap elements
      }
    } else {
      out = create(null);
      const ks = keys(value);
      for (let i = 0; i < ks.length; i++) {
        const k = ks[i];
        budget.left -= k.length * 2 + 16;
        if (budget.left < 0) throw tooLarge();
        const v = plain(value[k], budget, depth + 1);
        if (v !== undefined) out[k] = v;
      }
      out = { ...out };
    }
    apply(setDelete, budget.seen, [value]);
    if (budget.left < 0) throw sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
    return out;
  }
  const toPlain = (value) => plain(value, { left: LIMITS.maxDataBytes, seen: null }, 0);

  function sluiceError(code, message) {
    const e = new ErrorCtor(message);
    e.code = code;
    e.name = 'SluiceError';
    return e;
  }

  // ---- host calls ---------------------------------------------------------------------
  let nextCall = 0;
  let origin = 0; // the dispatch the running code belongs to
  const pending = new MapCtor(); // call id -> { resolve, reject, origin }

  function hostCall(op, args) {
    if (msize(pending) >= LIMITS.maxPending) {
      return promiseReject(sluiceError('THROTTLED', `more than ${LIMITS.maxPending} host calls in flight`));
    }
    let data;
    try {
      data = toPlain(args);
    } catch (e) {
      return promiseReject(e);
    }
    const id = ++nextCall;
    return new PromiseCtor((resolve, reject) => {
      mset(pending, id, { resolve, reject, origin });
      send('call', id, { op, origin, args: data });
    });
  }

  // ---- handlers --------------------------------------------------------------------
  let bindHandler;
  const pduHandlers = new MapCtor();
  const sessionHandlers = new MapCtor();
  const timerHandlers = new MapCtor();
  // Checked with what the prelude captured: a policy may replace array and string methods.
  const PDU_COMMANDS = new SetCtor(['submit_sm', 'submit_sm_multi', 'data_sm', 'cancel_sm', 'query_sm', 'replace_sm', 'deliver_sm', 'alert_notification']);
  const PDU_COMMAND_LIST = 'submit_sm, submit_sm_multi, data_sm, cancel_sm, query_sm, replace_sm, deliver_sm, alert_notification';

  function mustBeFunction(fn, what) {
    if (typeof fn !== 'function') throw new TypeError(`${what} needs a function`);
  }

  function statusValue(name) {
    if (typeof name === 'number' && isInteger(name) && name >= 0 && name <= 0xffffffff) return name;
    if (typeof name === 'string' && apply(hasOwn, STATUS, [name]) && typeof STATUS[name] === 'number') return STATUS[name];
    throw sluiceError('UNKNOWN_STATUS', `unknown command_status "${cut(name, 40)}"`);
  }

  // Answers the prelude made, recognised by identity: asking a returned
  // value whether it is one would run the policy's proxy traps or getters.
  const replies = new WeakSetCtor();

  function makeReply(ctx, status, fields) {
    const r = freeze({ status, fields });
    apply(weakAdd, replies, [r]);
    ctx.reply = r;
    return r;
  }
  const isReply = (v) => apply(weakHas, replies, [v]);

  // What smpp.forward resolved to, recognised by identity too: `pdu.reply(r)`
  // or returning `r` answers the PDU with its status (and our message id).
  const forwardResults = new WeakSetCtor();
  const isForwardResult = (v) => v !== null && typeof v === 'object' && apply(weakHas, forwardResults, [v]);
  function forwardReply(ctx, r) {
    const status = statusValue(r.command_status);
    let fields = {};
    if (status === 0 && r.message_state !== undefined) fields = { message_id: r.message_id, message_state: r.message_state, final_date: r.final_date, error_code: r.error_code };
    else if (status === 0 && typeof r.message_id === 'string') fields = { message_id: r.message_id };
    return makeReply(ctx, status, fields);
  }

  // ---- logging (rate-limited here and again on the host) ----------------------------
  let logTokens = 0; // a full bucket at boot
  let logStamp = now();
  let logDropped = 0;
  function logAt(level) {
    return function (msg, fields) {
      const t = now();
      logTokens = min(LIMITS.maxLogPerSec, logTokens + ((t - logStamp) * LIMITS.maxLogPerSec) / 1000);
      logStamp = t;
      if (logTokens < 1) {
        logDropped++;
        return;
      }
      logTokens -= 1;
      let m = StringCtor(msg);
      if (m.length > LIMITS.maxLogBytes) m = cut(m, LIMITS.maxLogBytes) + '…';
      let f;
      try {
        f = fields === undefined ? undefined : plain(fields, { left: LIMITS.maxLogBytes * 2, seen: null }, 0);
      } catch (e) {
        f = { fields_dropped: 'fields are not plain data within the size limit' };
      }
      send('log', 0, { level, msg: m, fields: f, dropped: logDropped });
      logDropped = 0;
    };
  }

  const log = freeze({ debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') });

  // ---- the smpp API ------------------------------------------------------------------
  let idCounter = 0;
  const via = (command) => (bind, fields) => hostCall('sendVia', { bind: StringCtor(bind), command, fields: fields === undefined ? {} : fields });
  const to = (command) => (sessionId, fields) => hostCall('sendTo', { sessionId: StringCtor(sessionId), command, fields: fields === undefined ? {} : fields });
  const frozenCopy = (v) => deepFreeze(parse(stringify(v)));
  function deepFreeze(o) {
    if (o && typeof o === 'object') {
      const ks = keys(o);
      for (let i = 0; i < ks.length; i++) deepFreeze(o[ks[i]]);
      freeze(o);
    }
    return o;
  }
  // One host round trip per view per entry: a synchronous host callback runs
  // on the sandbox's main thread and is not charged to this isolate's CPU, so
  // a policy calling smpp.sessions() in a loop must not reach the host each time.
  let views = create(null);
  function hostView(name) {
    if (!apply(hasOwn, views, [name])) views[name] = StringCtor(view(name));
    return frozenCopy(parse(views[name]));
  }
  let configView = null;
  let routingView = null;
  let settingsView = null;
  // PDU views the host built (the test harness), and their dispatch.
  const hostViews = new WeakMapCtor();
  // A host-built view's own fields, for smpp.forward (frames carry their bytes instead).
  function pduFields(pdu) {
    const out = create(null);
    const ks = keys(pdu);
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i];
      if (k !== 'text' && k !== 'udh' && k !== 'isDlr' && k !== 'receipt' && k !== 'command' && k !== 'sequence_number' && k !== 'command_status') out[k] = pdu[k];
    }
    return out;
  }

  const makeSmpp = (tenant) => freeze({
    tenant,
    onBind(fn) {
      mustBeFunction(fn, 'smpp.onBind');
      bindHandler = fn;
    },
    onPdu(command, fn) {
      if (!apply(setHas, PDU_COMMANDS, [command])) throw new TypeError(`smpp.onPdu: unknown command "${cut(command, 40)}" (one of ${PDU_COMMAND_LIST})`);
      mustBeFunction(fn, 'smpp.onPdu');
      mset(pduHandlers, command, fn);
    },
    onSession(event, fn) {
      if (event !== 'bound' && event !== 'unbound') throw new TypeError('smpp.onSession: event is "bound" or "unbound"');
      mustBeFunction(fn, 'smpp.onSession');
      const list = mget(sessionHandlers, event) || [];
      list[list.length] = fn;
      mset(sessionHandlers, event, list);
    },
    onTimer(name, fn) {
      mustBeFunction(fn, 'smpp.onTimer');
      mset(timerHandlers, StringCtor(name), fn);
    },
    submitVia: via('submit_sm'),
    submitMultiVia: via('submit_sm_multi'),
    dataVia: via('data_sm'),
    cancelVia: via('cancel_sm'),
    queryVia: via('query_sm'),
    replaceVia: via('replace_sm'),
    deliverTo: to('deliver_sm'),
    dataTo: to('data_sm'),
    alertTo: to('alert_notification'),
    forward(pdu, opts) {
      const ctx = pdu !== null && typeof pdu === 'object' ? (isView(pdu) ? ctxOf(pdu) : apply(weakMapGet, hostViews, [pdu])) : undefined;
      if (ctx === undefined || ctx.session === undefined) return promiseReject(new TypeError('smpp.forward needs a PDU given to a handler'));
      const o = opts === undefined || opts === null ? {} : opts;
      const args = { command: StringCtor(pdu.command), session: ctx.session };
      // The frame as it came: the core forwards it byte for byte, unknown TLVs and all.
      if (ctx.frame !== undefined) args.frame = ctx.frame;
      else args.fields = pduFields(pdu);
      if (o.fields !== undefined) args.overrides = o.fields;
      if (o.chain !== undefined) args.chain = o.chain;
      if (o.rule !== undefined) args.rule = StringCtor(o.rule);
      if (o.to !== undefined) args.to = StringCtor(o.to);
      return then(hostCall('forward', args), (r) => {
        const out = freeze(r);
        apply(weakAdd, forwardResults, [out]);
        return out;
      });
    },
    settings: () => settingsView,
    config: () => configView,
    routingRules: () => routingView,
    binds: () => hostView('binds'),
    sessions: () => hostView('sessions'),
    newMessageId: () => boot.idPrefix + (++idCounter).toString(36).padStart(6, '0'),
    timers: freeze({
      after: (ms, name, payload) => hostCall('timer', { kind: 'after', ms, name: StringCtor(name), payload }),
      every: (ms, name) => hostCall('timer', { kind: 'every', ms, name: StringCtor(name) }),
      cancel: (name) => hostCall('timer', { kind: 'cancel', name: StringCtor(name) }),
    }),
  });

  const cache = freeze({
    get: (key) => then(hostCall('cache', { op: 'get', key: StringCtor(key) }), (json) => (json === undefined || json === null ? undefined : parse(json))),
    set: (key, value, ttlMs) => {
      let json;
      try {
        json = stringify(value);
      } catch (e) {
        return promiseReject(sluiceError('INVALID_FIELD', 'cache values must be JSON'));
      }
      if (json === undefined) return promiseReject(sluiceError('INVALID_FIELD', 'cache values must be JSON'));
      return then(hostCall('cache', { op: 'set', key: StringCtor(key), json, ttlMs }), () => undefined);
    },
    delete: (key) => hostCall('cache', { op: 'delete', key: StringCtor(key) }),
    has: (key) => hostCall('cache', { op: 'has', key: StringCtor(key) }),
  });

  // ---- entries from the host ------------------------------------------------------------
  function finish(id, ctx, value) {
    let out;
    try {
      if (ctx.kind === 'bind') {
        const r = ctx.reply || (isReply(value) ? value : undefined);
        out = r ? { kind: 'bind', accept: r.status === 0, status: r.status, reason: r.fields && r.fields.reason !== undefined ? cut(r.fields.reason, 200) : undefined } : { kind: 'bind', accept: false, status: STATUS.ESME_RBINDFAIL, reason: 'bind handler returned no decision' };
      } else if (ctx.kind === 'pdu') {
        const r = ctx.reply || (isReply(value) ? value : isForwardResult(value) ? forwardReply(ctx, value) : undefined);
        // Nothing means the default answer; anything else that is not a
        // pdu.reply(…) is garbage, answered ESME_RSYSERR (docs/design.md, "Operations and their defaults") — never a
        // silent ESME_ROK for a returned proxy, cycle or stray object.
        if (r) {
          // The common answer, a status and nothing but a message_id, goes out flat.
          const f = r.fields;
          const ks = f ? keys(f) : [];
          if (ks.length === 1 && ks[0] === 'message_id' && typeof f.message_id === 'string' && f.message_id.length <= 256) {
            send('reply', id, r.status, f.message_id);
            return;
          }
          out = { kind: 'reply', status: r.status, fields: toPlain(f || {}) };
        }
        else if (value === undefined || value === null) out = { kind: 'default' };
        else out = { kind: 'error', reason: 'throw', message: 'handler returned something that is not pdu.reply(…); return nothing for the default answer' };
      } else {
        out = { kind: 'done' };
      }
    } catch (e) {
      out = failure(e);
    }
    send('result', id, out);
  }

  // Reads whatever was thrown here, inside the timed call (its getters may
  // loop), and returns only bounded strings.
  function failure(e) {
    let message = 'handler failed';
    let code;
    let stack;
    try {
      if (e && (typeof e === 'object' || typeof e === 'function')) {
        message = cut(e.message, 500);
        const c = e.code;
        code = typeof c === 'string' ? cut(c, 40) : undefined;
        const st = e.stack;
        stack = typeof st === 'string' ? cut(st, 4000) : undefined;
      } else {
        message = cut(e, 500);
      }
    } catch (_) {
      message = 'handler threw a value that cannot be read';
      code = undefined;
      stack = undefined;
    }
    return { kind: 'error', reason: 'throw', message, code, stack };
  }

  function run(id, ctx, fn, args) {
    let value;
    try {
      value = apply(fn, undefined, args);
    } catch (e) {
      send('result', id, failure(e));
      return;
    }
    if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
      // Resolve through our own Promise: a policy's thenable runs now, timed.
      then(
        promiseResolve(value),
        (v) => finish(id, ctx, v),
        (e) => send('result', id, failure(e)),
      );
    } else {
      finish(id, ctx, value);
    }
  }

  // pdu.reply(fields) and pdu.replyQuery(fields): bound to the PDU's dispatch.
  const replyOf = (ctx) => (fields) => {
    if (isForwardResult(fields)) return forwardReply(ctx, fields);
    const f = fields || {};
    const status = f.command_status === undefined ? 0 : statusValue(f.command_status);
    const rest = create(null);
    const ks = keys(f);
    for (let i = 0; i < ks.length; i++) if (ks[i] !== 'command_status') rest[ks[i]] = f[ks[i]];
    return makeReply(ctx, status, rest);
  };
  const replyQueryOf = (ctx, pdu) => (fields) => {
    const f = fields || {};
    return makeReply(ctx, 0, { message_id: pdu.message_id, message_state: f.message_state, final_date: f.final_date === undefined ? '' : f.final_date, error_code: f.error_code === undefined ? 0 : f.error_code });
  };
  // The class of every PDU view built here. `reply` and `replyQuery` are
  // getters on its prototype, so they are not enumerable (`{ ...pdu }`
  // forwards the fields, not these), cost nothing until used, and still work
  // destructured (`({ reply }) => reply(…)`). Each view keeps its dispatch in
  // a private field: no reflection reaches it, nothing of one PDU's answer is
  // reachable from another, and the garbage collector sees a plain object
  // (a WeakMap from view to dispatch cost an ephemeron per PDU). The
  // prototype has no `constructor` and is frozen; the class and `bindView`
  // stay in this closure.
  let bindView;
  let isView;
  let ctxOf;
  class PduView {
    #ctx = undefined;
    static {
      bindView = (view, ctx) => {
        view.#ctx = ctx;
      };
      isView = (o) => o !== null && typeof o === 'object' && #ctx in o;
      ctxOf = (view) => view.#ctx;
    }
    get reply() {
      if (!isView(this) || this.#ctx === undefined) throw new TypeError('reply() belongs to a PDU given to a handler');
      return replyOf(this.#ctx);
    }
    get replyQuery() {
      if (!isView(this) || this.#ctx === undefined) throw new TypeError('replyQuery() belongs to a PDU given to a handler');
      return replyQueryOf(this.#ctx, this);
    }
  }
  delete PduView.prototype.constructor;
  freeze(PduView.prototype);

  function dispatch(id, kind, payload, frame) {
    origin = id;
    const ctx = { kind, reply: undefined, session: undefined, frame };
    if (kind === 'pdu') {
      const fn = mget(pduHandlers, payload.pdu.command);
      if (!fn) return send('result', id, { kind: 'default' });
      const pdu = payload.pdu;
      ctx.session = freeze(payload.session);
      if (isView(pdu)) bindView(pdu, ctx);
      else {
        // A view built on the host (the test harness): its own, non-enumerable answers.
        defineProperty(pdu, 'reply', { value: replyOf(ctx) });
        defineProperty(pdu, 'replyQuery', { value: replyQueryOf(ctx, pdu) });
        apply(weakMapSet, hostViews, [pdu, ctx]);
      }
      return run(id, ctx, fn, [pdu, ctx.session]);
    }
    if (kind === 'bind') {
      if (!bindHandler) return send('result', id, { kind: 'bind', accept: false, status: STATUS.ESME_RINVSYSID, reason: 'no bind handler' });
      const b = payload.req;
      b.accept = () => makeReply(ctx, 0, {});
      b.reject = (status, reason) => makeReply(ctx, statusValue(status), { reason: reason === undefined ? undefined : cut(reason, 200) });
      return run(id, ctx, bindHandler, [freeze(b)]);
    }
    if (kind === 'session') {
      const list = mget(sessionHandlers, payload.event) || [];
      if (list.length === 0) return send('result', id, { kind: 'done' });
      const session = freeze(payload.session);
      // Every listener runs; the first failure is reported.
      return run(
        id,
        ctx,
        () => {
          const started = [];
          for (let i = 0; i < list.length; i++) started[i] = list[i](session);
          return promiseAll(started);
        },
        [],
      );
    }
    if (kind === 'timer') {
      // 'dlr:42' goes to onTimer('dlr:42') if there is one, else to onTimer('dlr').
      const name = StringCtor(payload.name);
      const colon = apply(strIndexOf, name, [':']);
      const fn = mget(timerHandlers, name) || (colon === -1 ? undefined : mget(timerHandlers, apply(strSlice, name, [0, colon])));
      if (!fn) return send('result', id, { kind: 'done' });
      return run(id, ctx, fn, [payload.payload, name]);
    }
    send('result', id, { kind: 'error', reason: 'throw', message: `unknown dispatch kind ${kind}` });
  }

  // PDUs as raw frames, back to back in `bytes`; `items` is [id, start, end,
  // session index] per PDU. Each becomes its view here, on this tenant's CPU.
  function dispatchFrames(bytes, items, sessions) {
    for (let i = 0; i < items.length; i += 4) {
      const id = items[i];
      try {
        const frame = apply(u8Subarray, bytes, [items[i + 1], items[i + 2]]);
        const pdu = pduView(frame, PduView);
        if (pdu === undefined) send('result', id, { kind: 'error', reason: 'throw', message: 'PDU could not be read' });
        else dispatch(id, 'pdu', { pdu, session: sessions[items[i + 3]] }, frame);
      } catch (e) {
        try {
          send('result', id, failure(e));
        } catch (_) {
          /* the host settles it at the deadline */
        }
      }
    }
  }

  function resolveCall(id, ok, value) {
    const p = mget(pending, id);
    if (!p) return;
    mdel(pending, id);
    origin = p.origin;
    if (ok) p.resolve(value);
    else p.reject(sluiceError(value.code, value.message));
  }

  /** The first entry: which tenant this isolate is for. Once only, before any tenant code. */
  function start(json) {
    if (boot !== null) return;
    boot = parse(json);
    LIMITS = boot.limits;
    STATUS = boot.statusNames;
    logTokens = LIMITS.maxLogPerSec;
    logStamp = now();
    configView = deepFreeze(boot.config);
    routingView = deepFreeze(boot.routing);
    settingsView = deepFreeze(boot.settings === undefined ? {} : boot.settings);
    defineProperty(global, 'smpp', { value: makeSmpp(StringCtor(boot.tenant)), writable: false, configurable: false, enumerable: true });
    defineProperty(global, 'cache', { value: cache, writable: false, configurable: false, enumerable: true });
    defineProperty(global, 'log', { value: log, writable: false, configurable: false, enumerable: true });
  }

  // Nothing thrown may leave an entry: isolated-vm copies a thrown value after
  // the timed part, so a thrown object with a looping getter would spin with
  // no timeout (and the sandbox's main thread was seen stuck behind it).
  // Whatever a policy manages to throw through the prelude is read here, timed.
  defineProperty(global, '__sluice_enter', {
    // One argument, [type, id, a, b]: the host copies one array in, not four values.
    value: function enter(args) {
      const type = args[0];
      const id = args[1];
      const a = args[2];
      const b = args[3];
      if (type === 'boot') return start(a);
      views = create(null);
      outbox = [];
      try {
        if (type === 'dispatch') dispatch(id, a, b);
        else if (type === 'dispatchMany') {
          // [[id, kind, payload], …] from the host, one entry for several PDUs.
          for (let i = 0; i < a.length; i++) {
            const item = a[i];
            try {
              dispatch(item[0], item[1], item[2]);
            } catch (e) {
              try {
                send('result', item[0], failure(e));
              } catch (_) {
                /* the host settles it at the deadline */
              }
            }
          }
        } else if (type === 'frames') dispatchFrames(a, b[0], b[1]);
        else if (type === 'resolve') resolveCall(id, a, b);
        else if (type === 'resolveMany') {
          // [[call id, ok, value], …]: host call results that arrived together.
          for (let i = 0; i < a.length; i++) {
            const item = a[i];
            try {
              resolveCall(item[0], item[1], item[2]);
            } catch (_) {
              /* a policy's broken built-ins: its awaiting handler settles at the deadline */
            }
          }
        }
      } catch (e) {
        if (type === 'dispatch') {
          try {
            send('result', id, failure(e));
          } catch (_) {
            /* the host settles it at the deadline */
          }
        }
      }
      // Only arrays and objects this prelude built: copying them out runs no policy code.
      const out = outbox;
      outbox = null;
      return out.length === 0 ? undefined : out;
    },
    configurable: true,
    writable: false,
    enumerable: false,
  });

  void mhas;
})(globalThis);
