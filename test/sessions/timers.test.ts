import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/util/clock';
import { bindBody, RawPeer, rawPdu, sleep, startGateway, testConfig } from '../helpers/harness';

// Real sockets, a manual clock: every session timer, deterministically.
const timers = { session_init_timer_ms: 5000, enquire_link_timer_ms: 30_000, inactivity_timer_ms: 300_000, response_timer_ms: 10_000 };

async function boundPeer(port: number): Promise<RawPeer> {
  const p = await RawPeer.connect(port);
  p.write(rawPdu(0x09, 1, bindBody('acme-app')));
  const r = await p.read();
  assert.equal(r?.status, 0);
  return p;
}

describe('session timers (manual clock, real TCP)', () => {
  it('session_init_timer closes a connection that never binds, and only then', async () => {
    const clock = new ManualClock();
    const h = await startGateway({ clock, config: testConfig({ server: timers }) });
    const p = await RawPeer.connect(h.port);
    // The server side must have armed its timer before the clock moves.
    for (let i = 0; i < 200 && clock.pending === 0; i++) await sleep(5);
    clock.advance(4999);
    await sleep(100);
    assert.equal(p.closed, false);
    clock.advance(1);
    assert.equal(await p.waitClosed(), true);
    await h.close();
  });

  it('a bound session is not closed by session_init_timer', async () => {
    const clock = new ManualClock();
    const h = await startGateway({ clock, config: testConfig({ server: timers }) });
    const p = await boundPeer(h.port);
    clock.advance(6000);
    await sleep(100);
    assert.equal(p.closed, false);
    p.destroy();
    await h.close();
  });

  it('enquire_link probes an idle peer; a peer that does not answer is closed after response_timer', async () => {
    const clock = new ManualClock();
    const h = await startGateway({ clock, config: testConfig({ server: timers }) });
    const p = await boundPeer(h.port);
    clock.advance(30_000);
    const probe = await p.read();
    assert.equal(probe?.id, 0x15, 'enquire_link sent');
    // Answer it: the session stays.
    p.write(rawPdu(0x80000015, probe!.seq));
    await sleep(100);
    clock.advance(10_000);
    await sleep(100);
    assert.equal(p.closed, false);
    // Next probe goes unanswered: closed after the response timer.
    clock.advance(30_000);
    assert.equal((await p.read())?.id, 0x15);
    clock.advance(10_000);
    assert.equal(await p.waitClosed(), true);
    await h.close();
  });

  it('inactivity_timer unbinds a session with no message traffic', async () => {
    const clock = new ManualClock();
    const h = await startGateway({ clock, config: testConfig({ server: { ...timers, enquire_link_timer_ms: 1_000_000 } }) });
    const p = await boundPeer(h.port);
    clock.advance(299_000);
    // enquire_link does not count as activity
    p.write(rawPdu(0x15, 2));
    assert.equal((await p.read())?.id, 0x80000015);
    clock.advance(1000);
    const unbind = await p.read();
    assert.equal(unbind?.id, 0x06, 'unbind sent');
    p.write(rawPdu(0x80000006, unbind!.seq));
    assert.equal(await p.waitClosed(), true);
    await h.close();
  });

  it('a deliver_sm the ESME leaves unanswered times out: the session is closed, it and the one behind it are held, none is left pending', async () => {
    const clock = new ManualClock();
    const h = await startGateway({ clock, config: testConfig({ server: timers }) });
    const p = await boundPeer(h.port);
    const sid = h.gateway.sessions('acme')[0]!.sessionId;
    const first = h.gateway.sendTo('acme', sid, 'deliver_sm', { short_message: 'one' });
    assert.equal((await p.read())?.id, 0x05);
    clock.advance(5000);
    const second = h.gateway.sendTo('acme', sid, 'deliver_sm', { short_message: 'two' });
    assert.equal((await p.read())?.id, 0x05);
    clock.advance(5000);
    assert.deepEqual(await first, { ok: true, command_status: 'ESME_ROK', held: true });
    assert.deepEqual(await second, { ok: true, command_status: 'ESME_ROK', held: true });
    assert.equal(await p.waitClosed(), true);
    await h.close();
  });
});
