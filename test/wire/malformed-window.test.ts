/**
 * Malformed input over real TCP, continued: a peer that overruns its window
 * or stops reading is bounded, never buffered without end, and the second,
 * normally bound ESME keeps getting answers (docs/design.md, "The boundary").
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { ESME_ROK, ESME_RTHROTTLED } from '../../src/wire/status';
import { acceptAll, bindBody, rawPdu, sleep, startGateway, testConfig } from '../helpers/harness';
import { BIND_TRX, BIND_TRX_RESP, SUBMIT_SM_RESP, ENQUIRE_LINK, ENQUIRE_LINK_RESP, submitPdu, peers, boundPeer, destroyPeers, assertWitness } from '../helpers/raw-session';

describe('malformed input: window and backpressure', () => {
  it('a peer exceeding server.window gets ESME_RTHROTTLED for the excess, not unbounded buffering', async () => {
    let inHandler = 0;
    let maxInHandler = 0;
    const slow = async (): Promise<undefined> => {
      inHandler++;
      maxInHandler = Math.max(maxInHandler, inHandler);
      await sleep(300);
      inHandler--;
      return undefined; // the default: ESME_ROK with a generated message_id
    };
    const handlers = { acme: acceptAll({ pdu: { submit_sm: slow } }), globex: acceptAll() };
    const h = await startGateway({ config: testConfig({ server: { window: 2, response_timer_ms: 1000 } }), handlers });
    try {
      const witness = await h.esme('acme-2', { responseTimeoutMs: 3000 });
      const p = await boundPeer(h.port);
      const started = Date.now();
      p.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => submitPdu(10 + i))));
      // enquire_link is not a window slot: it is answered at once even with the window full.
      await sleep(20);
      p.write(rawPdu(ENQUIRE_LINK, 9));
      const throttled: number[] = [];
      const accepted: number[] = [];
      let sawEnquire = false;
      for (let i = 0; i < 51; i++) {
        const r = await p.read(3000);
        assert.ok(r, 'connection closed');
        if (r.id === ENQUIRE_LINK_RESP) {
          sawEnquire = true;
          assert.equal(accepted.length, 0, 'enquire_link answered while the window was still full');
          continue;
        }
        assert.equal(r.id, SUBMIT_SM_RESP);
        if (r.status === ESME_RTHROTTLED) {
          assert.equal(accepted.length, 0, 'the excess is refused at once, not after the slow ones finish');
          throttled.push(r.seq);
        } else {
          assert.equal(r.status, ESME_ROK);
          accepted.push(r.seq);
        }
      }
      assert.equal(sawEnquire, true);
      assert.deepEqual(accepted.sort((a, b) => a - b), [10, 11]);
      assert.deepEqual(throttled, Array.from({ length: 48 }, (_, i) => 12 + i));
      assert.ok(Date.now() - started >= 250, 'the two admitted submits waited for the handler');
      assert.equal(maxInHandler <= 3, true, `handler ran ${maxInHandler} at once`); // 2 from the peer, 1 from the witness at most
      // The window frees as answers go out: the next submit is admitted.
      p.write(submitPdu(70));
      const again = await p.read(3000);
      assert.deepEqual([again?.id, again?.status, again?.seq], [SUBMIT_SM_RESP, ESME_ROK, 70]);
      await assertWitness(witness);
    } finally {
      destroyPeers();
      await h.close();
    }
  });

  it('write backpressure: a peer that never reads is paused, gateway memory stays bounded, others still answered', { timeout: 20_000 }, async () => {
    const h = await startGateway({ config: testConfig({ server: { response_timer_ms: 1000 } }) });
    const sock = net.connect({ host: '127.0.0.1', port: h.port });
    peers.add(sock);
    sock.on('error', () => {});
    const connected = new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    try {
      await connected;
      const witness = await h.esme('acme-2', { responseTimeoutMs: 3000 });
      sock.write(rawPdu(BIND_TRX, 1, bindBody('acme-app')));
      const bindResp = await new Promise<Buffer>((resolve) => sock.once('data', resolve));
      assert.deepEqual([bindResp.readUInt32BE(4), bindResp.readUInt32BE(8)], [BIND_TRX_RESP, ESME_ROK]);
      sock.pause(); // from now on the peer never reads its socket

      const chunk = Buffer.concat(Array.from({ length: 4096 }, (_, i) => rawPdu(ENQUIRE_LINK, 2 + i))); // 64 KiB
      const limit = 32 * 1024 * 1024;
      const m0 = process.memoryUsage();
      const t0 = Date.now();
      let written = 0;
      let stalled = false;
      while (written < limit && Date.now() - t0 < 8000) {
        const more = sock.write(chunk);
        written += chunk.length;
        if (!more) {
          // Our own side never buffers more than one chunk: wait for room, or conclude the gateway stopped reading.
          const drained = await new Promise<boolean>((resolve) => {
            const t = setTimeout(() => {
              sock.off('drain', onDrain);
              resolve(false);
            }, 750);
            const onDrain = (): void => {
              clearTimeout(t);
              resolve(true);
            };
            sock.once('drain', onDrain);
          });
          if (!drained) {
            stalled = true;
            break;
          }
        }
      }
      await sleep(100);
      const m1 = process.memoryUsage();
      const rssGrowth = (m1.rss - m0.rss) / 2 ** 20;
      const externalGrowth = (m1.external - m0.external) / 2 ** 20;
      assert.ok(stalled, `the gateway kept reading ${written} bytes of enquire_link from a peer that reads nothing`);
      assert.ok(written < limit);
      assert.ok(rssGrowth < 100, `rss grew ${rssGrowth.toFixed(1)} MiB`);
      assert.ok(externalGrowth < 100, `external memory grew ${externalGrowth.toFixed(1)} MiB`);

      // Another session is answered promptly while this one is blocked.
      const t1 = Date.now();
      await assertWitness(witness, 5);
      assert.ok(Date.now() - t1 < 1000, 'the witness waited behind the blocked peer');

      // Once the peer reads again the gateway resumes it: every enquire_link gets its answer.
      let received = 0;
      sock.removeAllListeners('data');
      sock.on('data', (d: Buffer) => {
        received += d.length;
      });
      sock.resume();
      const t2 = Date.now();
      while (received < written && Date.now() - t2 < 8000) await sleep(20);
      assert.equal(received, written, 'one 16-byte enquire_link_resp per enquire_link after the peer resumed reading');
      await assertWitness(witness);
    } finally {
      destroyPeers();
      await h.close();
    }
  });
});
