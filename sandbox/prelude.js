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
// and one boot record, __sluice_boot (JSON). The host enters the isolate only
// through __sluice_enter, which this prelude defines and the host takes and
// deletes before tenant code runs. Every entry is a timed call, so all tenant
// code — handlers, their continuations after awaiting the host, microtasks —
// runs under the per-call CPU timeout.
(function prelude(global) {
  'use strict';

  // ---- capture what we rely on before tenant code can touch it ------------
  const send = global.__sluice_send;
  const view = global.__sluice_view;
  const boot = JSON.parse(global.__sluice_boot);
  delete global.__sluice_send;
  delete global.__sluice_view;
  delete global.__sluice_boot;

  const { stringify, parse } = JSON;
  const { freeze, keys, getPrototypeOf, defineProperty, create } = Object;
  const { isArray } = Array;
  const { apply } = Reflect;
  const PromiseCtor = Promise;
  const promiseThen = Promise.prototype.then;
  const MapCtor = Map;
  const mapGet = Map.prototype.get;
  const mapSet = Map.prototype.set;
  const mapDelete = Map.prototype.delete;
  const mapHas = Map.prototype.has;
  const U8 = Uint8Array;
  const u8Slice = Uint8Array.prototype.slice;
  const ErrorCtor = Error;
  const StringCtor = String;
  const isInteger = Number.isInteger;
  const now = Date.now;
  const objectProto = Object.prototype;
  const typedArrayProto = getPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = Object.getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag).get;

  const mget = (m, k) => apply(mapGet, m, [k]);
  const mset = (m, k, v) => apply(mapSet, m, [k, v]);
  const mdel = (m, k) => apply(mapDelete, m, [k]);
  const mhas = (m, k) => apply(mapHas, m, [k]);
  const then = (p, a, b) => apply(promiseThen, p, [a, b]);
  const isU8 = (v) => v !== null && typeof v === 'object' && apply(typedArrayTag, v, []) === 'Uint8Array';

  const LIMITS = boot.limits; // { maxDataBytes, maxLogPerSec, maxLogBytes, maxPending }
  const STATUS = boot.statusNames; // name -> value

  // ---- remove what a policy must not have ------------------------------------
  const throwing = function () {
    throw new ErrorCtor('code generation from strings is not available in a Sluice policy');
  };
  for (const name of ['eval', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry', 'WeakRef']) {
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
      budget.left -= value.length;
      if (budget.left < 0) throw sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
      return apply(u8Slice, value, []);
    }
    if (budget.seen.indexOf(value) !== -1) throw sluiceError('INVALID_FIELD', 'cyclic value');
    budget.seen.push(value);
    let out;
    if (isArray(value)) {
      const n = value.length;
      if (n > 100000) throw sluiceError('INVALID_FIELD', 'array too long');
      out = [];
      for (let i = 0; i < n; i++) out[i] = plain(value[i], budget, depth + 1);
    } else {
      out = create(null);
      const ks = keys(value);
      for (let i = 0; i < ks.length; i++) {
        const k = ks[i];
        budget.left -= k.length * 2 + 16;
        const v = plain(value[k], budget, depth + 1);
        if (v !== undefined) out[k] = v;
      }
      out = { ...out };
    }
    budget.seen.pop();
    if (budget.left < 0) throw sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
    return out;
  }
  const toPlain = (value) => plain(value, { left: LIMITS.maxDataBytes, seen: [] }, 0);

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
    if (pending.size >= LIMITS.maxPending) {
      return PromiseCtor.reject(sluiceError('THROTTLED', `more than ${LIMITS.maxPending} host calls in flight`));
    }
    let data;
    try {
      data = toPlain(args);
    } catch (e) {
      return PromiseCtor.reject(e);
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
  const PDU_COMMANDS = ['submit_sm', 'submit_sm_multi', 'data_sm', 'cancel_sm', 'query_sm', 'replace_sm', 'deliver_sm', 'alert_notification'];

  function mustBeFunction(fn, what) {
    if (typeof fn !== 'function') throw new TypeError(`${what} needs a function`);
  }

  function statusValue(name) {
    if (typeof name === 'number' && isInteger(name) && name >= 0 && name <= 0xffffffff) return name;
    if (typeof name === 'string' && Object.prototype.hasOwnProperty.call(STATUS, name)) return STATUS[name];
    throw sluiceError('UNKNOWN_STATUS', `unknown command_status "${StringCtor(name).slice(0, 40)}"`);
  }

  const REPLY = Symbol('reply');

  function makeReply(ctx, status, fields) {
    const r = freeze({ [REPLY]: true, status, fields });
    ctx.reply = r;
    return r;
  }

  // ---- logging (rate-limited here and again on the host) ----------------------------
  let logTokens = LIMITS.maxLogPerSec;
  let logStamp = now();
  let logDropped = 0;
  function logAt(level) {
    return function (msg, fields) {
      const t = now();
      logTokens = Math.min(LIMITS.maxLogPerSec, logTokens + ((t - logStamp) * LIMITS.maxLogPerSec) / 1000);
      logStamp = t;
      if (logTokens < 1) {
        logDropped++;
        return;
      }
      logTokens -= 1;
      let m = StringCtor(msg);
      if (m.length > LIMITS.maxLogBytes) m = m.slice(0, LIMITS.maxLogBytes) + '…';
      let f;
      try {
        f = fields === undefined ? undefined : plain(fields, { left: LIMITS.maxLogBytes * 2, seen: [] }, 0);
      } catch (e) {
        f = { fields_dropped: e.message };
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
      for (const k of keys(o)) deepFreeze(o[k]);
      freeze(o);
    }
    return o;
  }
  const configView = deepFreeze(boot.config);
  const routingView = deepFreeze(boot.routing);

  const smpp = freeze({
    tenant: boot.tenant,
    onBind(fn) {
      mustBeFunction(fn, 'smpp.onBind');
      bindHandler = fn;
    },
    onPdu(command, fn) {
      if (PDU_COMMANDS.indexOf(command) === -1) throw new TypeError(`smpp.onPdu: unknown command "${StringCtor(command).slice(0, 40)}" (one of ${PDU_COMMANDS.join(', ')})`);
      mustBeFunction(fn, 'smpp.onPdu');
      mset(pduHandlers, command, fn);
    },
    onSession(event, fn) {
      if (event !== 'bound' && event !== 'unbound') throw new TypeError('smpp.onSession: event is "bound" or "unbound"');
      mustBeFunction(fn, 'smpp.onSession');
      const list = mget(sessionHandlers, event) || [];
      list.push(fn);
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
    config: () => configView,
    routingRules: () => routingView,
    binds: () => frozenCopy(parse(view('binds'))),
    sessions: () => frozenCopy(parse(view('sessions'))),
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
        return PromiseCtor.reject(sluiceError('INVALID_FIELD', 'cache values must be JSON'));
      }
      if (json === undefined) return PromiseCtor.reject(sluiceError('INVALID_FIELD', 'cache values must be JSON'));
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
        const r = ctx.reply || (value && value[REPLY] ? value : undefined);
        out = r ? { kind: 'bind', accept: r.status === 0, status: r.status, reason: r.fields && r.fields.reason } : { kind: 'bind', accept: false, status: STATUS.ESME_RBINDFAIL, reason: 'bind handler returned no decision' };
      } else if (ctx.kind === 'pdu') {
        const r = ctx.reply || (value && value[REPLY] ? value : undefined);
        out = r ? { kind: 'reply', status: r.status, fields: toPlain(r.fields || {}) } : { kind: 'default' };
      } else {
        out = { kind: 'done' };
      }
    } catch (e) {
      out = failure(e);
    }
    send('result', id, out);
  }

  function failure(e) {
    let message = 'handler failed';
    let code;
    try {
      if (e && typeof e === 'object') {
        message = StringCtor(e.message).slice(0, 500);
        code = typeof e.code === 'string' ? e.code.slice(0, 40) : undefined;
        var stack = typeof e.stack === 'string' ? e.stack.slice(0, 4000) : undefined;
      } else {
        message = StringCtor(e).slice(0, 500);
      }
    } catch (_) {
      message = 'handler threw a value that cannot be read';
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
        PromiseCtor.resolve(value),
        (v) => finish(id, ctx, v),
        (e) => send('result', id, failure(e)),
      );
    } else {
      finish(id, ctx, value);
    }
  }

  function dispatch(id, kind, payload) {
    origin = id;
    const ctx = { kind, reply: undefined };
    if (kind === 'pdu') {
      const fn = mget(pduHandlers, payload.pdu.command);
      if (!fn) return send('result', id, { kind: 'default' });
      const pdu = payload.pdu;
      pdu.reply = (fields) => {
        const f = fields || {};
        const status = f.command_status === undefined ? 0 : statusValue(f.command_status);
        const rest = {};
        for (const k of keys(f)) if (k !== 'command_status') rest[k] = f[k];
        return makeReply(ctx, status, rest);
      };
      pdu.replyQuery = (fields) => {
        const f = fields || {};
        return makeReply(ctx, 0, { message_id: pdu.message_id, message_state: f.message_state, final_date: f.final_date === undefined ? '' : f.final_date, error_code: f.error_code === undefined ? 0 : f.error_code });
      };
      return run(id, ctx, fn, [pdu, freeze(payload.session)]);
    }
    if (kind === 'bind') {
      if (!bindHandler) return send('result', id, { kind: 'bind', accept: false, status: STATUS.ESME_RINVSYSID, reason: 'no bind handler' });
      const b = payload.req;
      b.accept = () => makeReply(ctx, 0, {});
      b.reject = (status, reason) => makeReply(ctx, statusValue(status), { reason: reason === undefined ? undefined : StringCtor(reason).slice(0, 200) });
      return run(id, ctx, bindHandler, [freeze(b)]);
    }
    if (kind === 'session') {
      const list = mget(sessionHandlers, payload.event) || [];
      if (list.length === 0) return send('result', id, { kind: 'done' });
      const session = freeze(payload.session);
      // Every listener runs; the first failure is reported.
      return run(id, ctx, () => PromiseCtor.all(list.map((fn) => fn(session))), []);
    }
    if (kind === 'timer') {
      // 'dlr:42' goes to onTimer('dlr:42') if there is one, else to onTimer('dlr').
      const name = StringCtor(payload.name);
      const fn = mget(timerHandlers, name) || mget(timerHandlers, name.split(':')[0]);
      if (!fn) return send('result', id, { kind: 'done' });
      return run(id, ctx, fn, [payload.payload, name]);
    }
    send('result', id, { kind: 'error', reason: 'throw', message: `unknown dispatch kind ${kind}` });
  }

  function resolveCall(id, ok, value) {
    const p = mget(pending, id);
    if (!p) return;
    mdel(pending, id);
    origin = p.origin;
    if (ok) p.resolve(value);
    else p.reject(sluiceError(value.code, value.message));
  }

  defineProperty(global, '__sluice_enter', {
    value: function enter(type, id, a, b) {
      if (type === 'dispatch') return dispatch(id, a, b);
      if (type === 'resolve') return resolveCall(id, a, b);
      if (type === 'pending') return pending.size;
    },
    configurable: true,
    writable: false,
    enumerable: false,
  });

  defineProperty(global, 'smpp', { value: smpp, writable: false, configurable: false, enumerable: true });
  defineProperty(global, 'cache', { value: cache, writable: false, configurable: false, enumerable: true });
  defineProperty(global, 'log', { value: log, writable: false, configurable: false, enumerable: true });
  void mhas;
  void objectProto;
})(globalThis);
