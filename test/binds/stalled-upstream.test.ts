/**
 * An upstream that stops answering while bound (a stopped process, a wedged
 * SMSC, a path that drops packets): the first request to go unanswered for
 * the response timer sends an enquire_link at once, beside the full window,
 * and the bind takes no new request until the peer answers it (regression:
 * it kept taking traffic, each request lost to the response timer, until the
 * next enquire_link_timer, 30 s by default). Answered: the bind is used
 * again. Unanswered: the session is closed and reconnected with backoff. A
 * real OutboundBind on a manual clock over real loopback sockets.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { OutboundBind } from '../../src/binds/outbound-bind';
import { parseConfig } from '../../src/config/load';
import { isSluiceError } from '../../src/errors';
import { silentLogger } from '../../src/log/logger';
import { ManualClock } from '../../src/util/clock';
import { onFrames, rawPdu, until } from '../helpers/harness';

const RESPONSE_MS = 10_000;
const ENQUIRE_LINK = 0x15;
const SUBMIT_SM = 0x04;


/** An upstream that binds anyone, then answers only while `answering` (enquire_link too, unless `answerEnquire` is false); what it got is recorded. */
class MuteSmsc {
  answering = true;
  answerEnquire = true;
  readonly got: { id: number; seq: number }[] = [];
  private socket: net.Socket | undefined;
  private readonly server = net.createServer((s) => this.onConnection(s));

  /** A late answer to request `id` number `seq`, on the latest connection. */
  answer(id: number, seq: number): void {
    this.socket!.write(rawPdu(0x80000000 | id, seq));
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as net.AddressInfo).port;
  }

  count(id: number): number {
    return this.got.filter((g) => g.id === id).length;
  }

  private onConnection(s: net.Socket): void {
    this.socket = s;
    onFrames(s, (id, seq) => {
      this.got.push({ id, seq });
      if (id === 0x09) s.write(rawPdu(0x80000009, seq, Buffer.from('smsc\0', 'latin1')));
      else if (id === ENQUIRE_LINK ? this.answering && this.answerEnquire : this.answering) {
        s.write(rawPdu(0x80000000 | id, seq, id === SUBMIT_SM ? Buffer.from('ABC\0', 'latin1') : Buffer.alloc(0)));
      }
    });
    s.on('error', () => {});
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function boundBind(clock: ManualClock, smsc: MuteSmsc): Promise<OutboundBind> {
  const port = await smsc.listen();
  const cfg = parseConfig(
    stringify({
      server: { port: 0, response_timer_ms: RESPONSE_MS, enquire_link_timer_ms: 30_000 },
      tenants: [{ id: 'acme', binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme', password: 'pw', window: 4 }] }],
    }),
    { file: 't.yaml', env: {} },
  );
  const b = new OutboundBind('acme', cfg.tenants[0]!.binds[0]!, { clock, logger: silentLogger, server: cfg.server });
  b.start();
  await until(() => b.state === 'bound', 2000, 'bound');
  return b;
}

const submit = (b: OutboundBind): Promise<unknown> => b.request('submit_sm', { destination_addr: '31600000000', short_message: Buffer.from('x') });

describe('an upstream that stops answering while bound', () => {
  it('one request unanswered for the response timer: enquire_link at once beside the full window, no new request taken until it is answered, then used again', async () => {
    const clock = new ManualClock();
    const smsc = new MuteSmsc();
    const b = await boundBind(clock, smsc);
    try {
      smsc.answering = false;
      const stuck = Array.from({ length: 4 }, () => submit(b).then(() => 'answered', (e: unknown) => (isSluiceError(e) ? e.code : 'error')));
      await until(() => smsc.count(SUBMIT_SM) === 4, 2000, 'a full window sent');
      clock.advance(RESPONSE_MS);
      assert.deepEqual(await Promise.all(stuck), ['TIMEOUT', 'TIMEOUT', 'TIMEOUT', 'TIMEOUT']);
      // The probe goes out now, not at enquire_link_timer_ms (30 s).
      await until(() => smsc.count(ENQUIRE_LINK) === 1, 2000, 'enquire_link sent at the first unanswered request');
      assert.equal(b.state, 'bound');
      await assert.rejects(submit(b), (e: unknown) => isSluiceError(e, 'BIND_DOWN') && e.sent === false && /not answering/.test(e.message));
      assert.equal(smsc.count(SUBMIT_SM), 4, 'nothing new sent to it while it is suspect');

      // It answers: a slow SMSC, not a dead one. Taken again.
      smsc.answering = true;
      smsc.answer(ENQUIRE_LINK, smsc.got.find((g) => g.id === ENQUIRE_LINK)!.seq);
      await until(() => !suspect(b), 2000, 'no longer suspect once enquire_link is answered');
      assert.equal(((await submit(b)) as { command_status: number }).command_status, 0);
    } finally {
      // Its unbind answered: stop() waits for it on a clock that does not move.
      smsc.answering = true;
      await b.stop();
      await smsc.close();
    }
  });

  it('the probe unanswered too: the session is closed at the response timer and the bind reconnects with backoff', async () => {
    const clock = new ManualClock();
    const smsc = new MuteSmsc();
    const b = await boundBind(clock, smsc);
    const reasons: string[] = [];
    b.on('state', (e) => e.state === 'backoff' && reasons.push(String(e.reason)));
    try {
      smsc.answering = false;
      const one = submit(b).catch((e: unknown) => (isSluiceError(e) ? e.code : 'error'));
      await until(() => smsc.count(SUBMIT_SM) === 1, 2000, 'sent');
      clock.advance(RESPONSE_MS);
      assert.equal(await one, 'TIMEOUT');
      await until(() => smsc.count(ENQUIRE_LINK) === 1, 2000, 'probe sent');
      clock.advance(RESPONSE_MS);
      await until(() => b.state === 'backoff', 2000, 'given up on');
      assert.match(reasons[0]!, /enquire_link/);
    } finally {
      // Its unbind answered: stop() waits for it on a clock that does not move.
      smsc.answering = true;
      await b.stop();
      await smsc.close();
    }
  });
});

function suspect(b: OutboundBind): boolean {
  return (b as unknown as { session?: { suspect: boolean } }).session?.suspect ?? false;
}

