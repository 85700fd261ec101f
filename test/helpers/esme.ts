import assert from 'node:assert/strict';
import type { InboundRequest, SmppSession } from '../../src/sessions/smpp-session';
import { EsmeClient } from '../../src/tools/esme-client';
import type { WirePdu } from '../../src/wire/codec';

/** A delivery receipt as an ESME got it: the id in its body and in receipted_message_id, and its stat. */
export interface GotReceipt {
  bodyId: string;
  tlvId: string | undefined;
  stat: string;
  state: number | undefined;
  text: string;
}

/**
 * An ESME bound to a gateway that keeps what it is sent: receipts parsed,
 * other deliver_sm as they came. Answers every deliver_sm ESME_ROK (or with
 * `answer`'s status).
 */
export class TestEsme {
  readonly receipts: GotReceipt[] = [];
  readonly mo: InboundRequest[] = [];
  answer: (pdu: InboundRequest) => number = () => 0;

  private constructor(readonly client: EsmeClient) {}

  static async bind(port: number, systemId = 'acme-app', password = 'acme-pw', host = '127.0.0.1'): Promise<TestEsme> {
    let self: TestEsme | undefined;
    const early: [InboundRequest, SmppSession][] = [];
    const client = await EsmeClient.connect({
      host,
      port,
      onRequest: (pdu, s) => (self ? self.onRequest(pdu, s) : early.push([pdu, s])),
    });
    self = new TestEsme(client);
    for (const [p, s] of early) self.onRequest(p, s);
    const r = await client.bind(systemId, password);
    assert.equal(r.command_status, 0, `bind ${systemId}: status ${r.command_status}`);
    return self;
  }

  private onRequest(pdu: InboundRequest, s: SmppSession): void {
    const status = this.answer(pdu);
    if (status === 0) {
      const text = Buffer.from((pdu.fields.short_message as Buffer | undefined) ?? Buffer.alloc(0)).toString('latin1');
      if (((pdu.fields.esm_class as number) & 0x3c) === 0x04) {
        this.receipts.push({
          bodyId: /id:(\S+)/.exec(text)?.[1] ?? '',
          tlvId: pdu.fields.receipted_message_id as string | undefined,
          stat: /stat:(\S+)/.exec(text)?.[1] ?? '',
          state: pdu.fields.message_state as number | undefined,
          text,
        });
      } else this.mo.push(pdu);
    }
    s.respond(pdu, status, { message_id: '' });
  }

  submit(i: number | string, fields: Record<string, unknown> = {}): Promise<WirePdu> {
    return this.client.submit({ source_addr: '4412345', destination_addr: '31612345678', registered_delivery: 1, short_message: Buffer.from(`m${i}`), ...fields });
  }

  /** Receipts by our id (as the body says it, checked against the TLV). */
  byId(): Map<string, GotReceipt[]> {
    const m = new Map<string, GotReceipt[]>();
    for (const r of this.receipts) {
      assert.equal(r.tlvId, r.bodyId, 'receipted_message_id and the body carry the same id');
      m.set(r.bodyId, [...(m.get(r.bodyId) ?? []), r]);
    }
    return m;
  }

  close(): void {
    this.client.close();
  }
}
