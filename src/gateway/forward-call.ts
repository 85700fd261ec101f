import { SluiceError } from '../errors';
import type { SessionInfo } from '../dispatch/policy-host';
import type { ForwardRequest } from '../forward/messages';
import { toWireFields } from '../pdu/fields';
import type { ForwardCall } from '../sandbox-protocol/host-calls';
import { decodePdu, type UnknownTlv } from '../wire/codec';

/**
 * `smpp.forward(pdu, opts)` as store and forward takes it: the PDU's own
 * frame decoded (or, from the test harness, its fields), with the policy's
 * overrides, its chain, rule or MO target, and the session it came on.
 */
export function forwardRequest(a: ForwardCall): ForwardRequest {
  const command = a.command;
  let fields: Record<string, unknown>;
  let unknownTlvs: UnknownTlv[] | undefined;
  if (a.frame instanceof Uint8Array) {
    const d = decodePdu(Buffer.from(a.frame.buffer, a.frame.byteOffset, a.frame.byteLength));
    if (!d.ok || d.pdu.command !== command) throw new SluiceError('INVALID_FIELD', 'smpp.forward: the PDU could not be read');
    fields = d.pdu.fields;
    unknownTlvs = d.pdu.unknownTlvs;
  } else {
    const w = toWireFields(command, a.fields ?? {});
    fields = w.fields;
    unknownTlvs = w.unknownTlvs;
  }
  if (a.overrides !== undefined) {
    const w = toWireFields(command, a.overrides);
    fields = { ...fields, ...w.fields };
    if (w.unknownTlvs) unknownTlvs = [...(unknownTlvs ?? []), ...w.unknownTlvs];
  }
  const s = (a.session ?? {}) as Record<string, unknown>;
  const session: SessionInfo = { kind: s.kind === 'bind' ? 'bind' : 'esme', sessionId: String(s.sessionId ?? ''), systemId: String(s.systemId ?? ''), clientAddr: String(s.clientAddr ?? '') };
  if (typeof s.bind === 'string') session.bind = s.bind;
  const req: ForwardRequest = { command, fields, session };
  if (unknownTlvs) req.unknownTlvs = unknownTlvs;
  if (a.chain !== undefined) req.chain = a.chain;
  if (a.rule !== undefined) req.rule = a.rule;
  if (a.to !== undefined) req.to = a.to;
  return req;
}
