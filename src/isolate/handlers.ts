/**
 * The handlers a policy registered through `smpp.onBind`, `onPdu`,
 * `onSession` and `onTimer` (smpp.ts), and how a dispatch finds its
 * handler. Checked with what the prelude captured: a policy may replace
 * array and string methods.
 */
import { apply, MapCtor, mget, SetCtor, setHas, strIndexOf, strSlice } from './intrinsics';

export type Handler = (...args: unknown[]) => unknown;

let bindHandler: Handler | undefined;
export const pduHandlers = new MapCtor<string, Handler>();
export const sessionHandlers = new MapCtor<string, Handler[]>();
export const timerHandlers = new MapCtor<string, Handler>();

const PDU_COMMANDS = new SetCtor(['submit_sm', 'submit_sm_multi', 'data_sm', 'cancel_sm', 'query_sm', 'replace_sm', 'deliver_sm', 'alert_notification']);
export const PDU_COMMAND_LIST = 'submit_sm, submit_sm_multi, data_sm, cancel_sm, query_sm, replace_sm, deliver_sm, alert_notification';
export const isPduCommand = (command: unknown): command is string => apply(setHas, PDU_COMMANDS, [command]);

export function mustBeFunction(fn: unknown, what: string): asserts fn is Handler {
  if (typeof fn !== 'function') throw new TypeError(`${what} needs a function`);
}

export function setBindHandler(fn: Handler): void {
  bindHandler = fn;
}
export const bindHandlerOf = (): Handler | undefined => bindHandler;

/** 'dlr:42' goes to onTimer('dlr:42') if there is one, else to onTimer('dlr'). */
export function timerHandlerOf(name: string): Handler | undefined {
  const colon = apply(strIndexOf, name, [':']);
  return mget(timerHandlers, name) || (colon === -1 ? undefined : mget(timerHandlers, apply(strSlice, name, [0, colon])));
}
