import assert from 'node:assert/strict';
import type { InboundRequest, SmppSession } from '../../src/sessions/smpp-session';
import { EsmeClient } from '../../src/tools/esme-client';
import type { WirePdu } from '../../src/wire/codec';
import { until } from './harness';

/** A delivery receipt as an ESME got it: the id in its body and in receipted_message_id, and its stat. */
export interface GotReceipt {
  bodyId: string;
  tlvId: string | undefined;
  stat: string;
  state: number | undefined;
  text: string;
}

/** Receipts by our id (as the body says it), each checked to carry the same id in receipted_message_id. */
export function receiptsById(receipts: readonly GotReceipt[]): Map<string, GotReceipt[]> {
  const m = new Map<string, GotReceipt[]>();
  for (const r of receipts) {
    assert.equal(r.tlvId, r.bodyId, 'receipted_message_id and the body carry the same id');
    m.set(r.bodyId, [...(m.get(r.bodyId) ?? []), r]);
  }
  return m;
}

/**
 * An ESME bound to a gateway that keeps what it is sent: receipts parsed,
 * other deliver_sm as they came. Answers every deliver_sm ESME_ROK (or with
 * `answer`'s status).
 */
export class TestEsme {
  readonly mo: InboundRequest[] = [];
  answer: (pdu: InboundRequest) => number = () => 0;

  private constructor(
    readonly client: EsmeClient,
    /** Receipts as they came (a list shared with other connections, when given one). */
    readonly receipts: GotReceipt[],
  ) {}

  static async bind(port: number, systemId = 'acme-app', password = 'acme-pw', host = '127.0.0.1', receipts: GotReceipt[] = []): Promise<TestEsme> {
    let self: TestEsme | undefined;
    const early: [InboundRequest, SmppSession][] = [];
    const client = await EsmeClient.connect({
      host,
      port,
      onRequest: (pdu, s) => (self ? self.onRequest(pdu, s) : early.push([pdu, s])),
    });
    self = new TestEsme(client, receipts);
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
    return receiptsById(this.receipts);
  }

  close(): void {
    this.client.close();
  }
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * An ESME that outlives its connections, as a real one does: it reconnects
 * and binds again when the gateway goes away, resends what was not
 * answered ESME_ROK, and keeps every receipt it got on any connection.
 */
export class ReconnectingEsme {
  readonly receipts: GotReceipt[] = [];
  /** text → our id, for every message answered ESME_ROK (the last answer, when it was sent twice). */
  readonly acked = new Map<string, string>();
  /** Answers other than ESME_ROK, and sends that failed, by status name or error code. */
  readonly refused = new Map<string, number>();
  private esme: TestEsme | undefined;
  private connecting: Promise<TestEsme> | undefined;

  constructor(
    private readonly port: number,
    private readonly systemId = 'acme-app',
    private readonly password = 'acme-pw',
  ) {}

  /** Bound now, or as soon as the gateway takes a bind again (up to `ms`). */
  session(ms = 30_000): Promise<TestEsme> {
    if (this.esme && !this.esme.client.session.closed) return Promise.resolve(this.esme);
    this.connecting ??= (async () => {
      const end = Date.now() + ms;
      for (;;) {
        try {
          // The receipts of every connection go in one list.
          const e = await TestEsme.bind(this.port, this.systemId, this.password, '127.0.0.1', this.receipts);
          this.esme = e;
          return e;
        } catch (err) {
          if (Date.now() > end) throw err;
          await sleepMs(200);
        }
      }
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** Send every text (window at a time) until each is answered ESME_ROK; `fields` over the defaults of `TestEsme.submit`. */
  async sendAll(texts: string[], window = 16, fields: Record<string, unknown> = {}, onAck?: (n: number) => void): Promise<void> {
    const todo = [...texts];
    const worker = async (): Promise<void> => {
      for (;;) {
        const text = todo.shift();
        if (text === undefined) return;
        for (;;) {
          const e = await this.session();
          try {
            const r = await e.submit(text, { short_message: Buffer.from(text), ...fields });
            if (r.command_status === 0) {
              this.acked.set(text, String(r.fields.message_id));
              onAck?.(this.acked.size);
              break;
            }
            this.refused.set(`status ${r.command_status}`, (this.refused.get(`status ${r.command_status}`) ?? 0) + 1);
          } catch (err) {
            const code = (err as { code?: string }).code ?? 'error';
            this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
          }
          await sleepMs(50);
        }
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
  }

  /** Receipts by our id. */
  byId(): Map<string, GotReceipt[]> {
    return receiptsById(this.receipts);
  }

  close(): void {
    this.esme?.close();
  }
}

/** `n` distinct message texts: `prefix0`, `prefix1`, … */
export const texts = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** Every message answered ESME_ROK got at least one receipt with our id, of `stat`; returns how many got more than one. */
export async function everyReceipt(esme: ReconnectingEsme, ms: number, stat = 'DELIVRD'): Promise<number> {
  const ids = [...esme.acked.values()];
  await until(() => ids.every((id) => esme.byId().has(id)), ms, `receipts for ${ids.filter((id) => !esme.byId().has(id)).length} of ${ids.length} messages`);
  const got = esme.byId();
  for (const id of ids) assert.equal(got.get(id)![0]!.stat, stat);
  return ids.filter((id) => got.get(id)!.length > 1).length;
}
