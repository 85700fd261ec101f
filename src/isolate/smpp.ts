/**
 * `smpp`: the API a policy has (sandbox/sluice.d.ts), made at boot for its
 * tenant. Registering handlers (handlers.ts), sending through the tenant's
 * binds and to its sessions, forwarding a PDU, timers: each request is a
 * host call (host-call.ts) in its op's shape. Config, routing and settings
 * are frozen copies of the boot record; binds and sessions are asked of the
 * host at most once per entry.
 */
import type { ForwardCall } from '../sandbox-protocol/host-calls';
import { call, hostCall } from './host-call';
import { hostViewText } from './host';
import { create, cut, freeze, keys, mget, mset, parse, promiseReject, StringCtor, then } from './intrinsics';
import { isPduCommand, mustBeFunction, PDU_COMMAND_LIST, pduHandlers, sessionHandlers, setBindHandler, timerHandlers } from './handlers';
import { dispatchOf } from './pdu-view';
import { deepFreeze, frozenCopy } from './plain';
import { forwardResult, noteForward } from './replies';
import { boot, type Boot } from './tenant';

type Fields = Record<string, unknown>;

let idCounter = 0;
let configView: unknown = null;
let routingView: unknown = null;
let settingsView: unknown = null;

const via = (command: string) => (bind: unknown, fields?: unknown) => hostCall('sendVia', { bind: StringCtor(bind), command, fields: (fields === undefined ? {} : fields) as Fields });
const to = (command: string) => (sessionId: unknown, fields?: unknown) => hostCall('sendTo', { sessionId: StringCtor(sessionId), command, fields: (fields === undefined ? {} : fields) as Fields });

const hostView = (name: 'binds' | 'sessions'): unknown => frozenCopy(parse(hostViewText(name)));

// A host-built view's own fields, for smpp.forward (frames carry their bytes instead).
function pduFields(pdu: Fields): Fields {
  const out: Fields = create(null);
  const ks = keys(pdu);
  for (let i = 0; i < ks.length; i++) {
    const k = ks[i]!;
    if (k !== 'text' && k !== 'udh' && k !== 'isDlr' && k !== 'receipt' && k !== 'command' && k !== 'sequence_number' && k !== 'command_status') out[k] = pdu[k];
  }
  return out;
}

interface ForwardOptions {
  fields?: unknown;
  chain?: unknown;
  rule?: unknown;
  to?: unknown;
}

/** The `smpp` object of the tenant `b` boots this isolate for. */
export function makeSmpp(b: Boot) {
  configView = deepFreeze(b.config);
  routingView = deepFreeze(b.routing);
  settingsView = deepFreeze(b.settings === undefined ? {} : b.settings);
  const tenant = StringCtor(b.tenant);
  return freeze({
    tenant,
    onBind(fn: unknown) {
      mustBeFunction(fn, 'smpp.onBind');
      setBindHandler(fn);
    },
    onPdu(command: unknown, fn: unknown) {
      if (!isPduCommand(command)) throw new TypeError(`smpp.onPdu: unknown command "${cut(command, 40)}" (one of ${PDU_COMMAND_LIST})`);
      mustBeFunction(fn, 'smpp.onPdu');
      mset(pduHandlers, command, fn);
    },
    onSession(event: unknown, fn: unknown) {
      if (event !== 'bound' && event !== 'unbound') throw new TypeError('smpp.onSession: event is "bound" or "unbound"');
      mustBeFunction(fn, 'smpp.onSession');
      const list = mget(sessionHandlers, event) || [];
      list[list.length] = fn;
      mset(sessionHandlers, event, list);
    },
    onTimer(name: unknown, fn: unknown) {
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
    forward(pdu: unknown, opts?: unknown) {
      const ctx = pdu !== null && typeof pdu === 'object' ? dispatchOf(pdu) : undefined;
      if (ctx === undefined || ctx.session === undefined) return promiseReject(new TypeError('smpp.forward needs a PDU given to a handler'));
      const p = pdu as Fields;
      const o = (opts === undefined || opts === null ? {} : opts) as ForwardOptions;
      const args: ForwardCall = { command: StringCtor(p.command), session: ctx.session };
      // The frame as it came: the core forwards it byte for byte, unknown TLVs and all.
      if (ctx.frame !== undefined) args.frame = ctx.frame;
      else args.fields = pduFields(p);
      if (o.fields !== undefined) args.overrides = o.fields as Fields;
      if (o.chain !== undefined) args.chain = o.chain as string[];
      if (o.rule !== undefined) args.rule = StringCtor(o.rule);
      if (o.to !== undefined) args.to = StringCtor(o.to);
      const c = call('forward', args);
      const answer = then(c.answer, forwardResult);
      noteForward(answer, ctx, c.queued);
      return answer;
    },
    settings: () => settingsView,
    config: () => configView,
    routingRules: () => routingView,
    binds: () => hostView('binds'),
    sessions: () => hostView('sessions'),
    newMessageId: () => boot!.idPrefix + (++idCounter).toString(36).padStart(6, '0'),
    timers: freeze({
      after: (ms: unknown, name: unknown, payload?: unknown) => hostCall('timer', { kind: 'after', ms: ms as number, name: StringCtor(name), payload }),
      every: (ms: unknown, name: unknown) => hostCall('timer', { kind: 'every', ms: ms as number, name: StringCtor(name) }),
      cancel: (name: unknown) => hostCall('timer', { kind: 'cancel', name: StringCtor(name) }),
    }),
  });
}
