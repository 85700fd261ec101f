/**
 * The class of every PDU view built in the isolate (the view itself is
 * src/pdu/view.ts's, given this class to build on). `reply` and `replyQuery`
 * are getters on its prototype, so they are not enumerable (`{ ...pdu }`
 * forwards the fields, not these), cost nothing until used, and still work
 * destructured (`({ reply }) => reply(…)`). Each view keeps its dispatch in
 * a private field: no reflection reaches it, nothing of one PDU's answer is
 * reachable from another, and the garbage collector sees a plain object (a
 * WeakMap from view to dispatch cost an ephemeron per PDU). The prototype
 * has no `constructor` and is frozen; the class never leaves the prelude.
 */
import { apply, defineProperty, freeze, WeakMapCtor, weakMapGet, weakMapSet } from './intrinsics';
import { replyOf, replyQueryOf, type Ctx } from './replies';

let bindView: (view: PduView, ctx: Ctx) => void;
let isView: (o: unknown) => o is PduView;
let ctxOf: (view: PduView) => Ctx | undefined;

export class PduView {
  #ctx: Ctx | undefined = undefined;
  static {
    bindView = (view, ctx) => {
      view.#ctx = ctx;
    };
    isView = (o): o is PduView => o !== null && typeof o === 'object' && #ctx in o;
    ctxOf = (view) => view.#ctx;
  }
  get reply(): ReturnType<typeof replyOf> {
    if (!isView(this) || this.#ctx === undefined) throw new TypeError('reply() belongs to a PDU given to a handler');
    return replyOf(this.#ctx);
  }
  get replyQuery(): ReturnType<typeof replyQueryOf> {
    if (!isView(this) || this.#ctx === undefined) throw new TypeError('replyQuery() belongs to a PDU given to a handler');
    return replyQueryOf(this.#ctx, this as { message_id?: unknown });
  }
}
delete (PduView.prototype as { constructor?: unknown }).constructor;
freeze(PduView.prototype);

// PDU views the host built (the test harness), and their dispatch.
const hostViews = new WeakMapCtor<object, Ctx>();

/** Give a PDU its dispatch: a view built here keeps it privately; one built on the host (the test harness) gets its own, non-enumerable answers. */
export function attach(pdu: object, ctx: Ctx): void {
  if (isView(pdu)) bindView(pdu, ctx);
  else {
    defineProperty(pdu, 'reply', { value: replyOf(ctx) });
    defineProperty(pdu, 'replyQuery', { value: replyQueryOf(ctx, pdu) });
    apply(weakMapSet, hostViews, [pdu, ctx]);
  }
}

/** The dispatch a PDU was given to a handler in, if it was. */
export const dispatchOf = (pdu: object): Ctx | undefined => (isView(pdu) ? ctxOf(pdu) : apply(weakMapGet, hostViews, [pdu]));
