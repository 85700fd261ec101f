import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../../src/throttle/token-bucket';
import { ManualClock } from '../../src/util/clock';
import { acceptAll, sleep, startGateway, testConfig } from '../helpers/harness';
import { STATUS } from '../../src/wire/status';

describe('TokenBucket', () => {
  it('allows a burst, then refills at rate', () => {
    const clock = new ManualClock();
    const b = new TokenBucket(10, clock);
    for (let i = 0; i < 10; i++) assert.equal(b.tryTake(), true);
    assert.equal(b.tryTake(), false);
    clock.advance(100);
    assert.equal(b.tryTake(), true);
    assert.equal(b.tryTake(), false);
  });

  it('reserve() queues callers in order with growing waits', () => {
    const clock = new ManualClock();
    const b = new TokenBucket(10, clock, 1);
    assert.deepEqual([b.reserve(), b.reserve(), b.reserve()], [0, 100, 200]);
    b.refund();
    assert.equal(b.reserve(), 200);
  });

  it('rate 0 is unlimited', () => {
    const b = new TokenBucket(0, new ManualClock());
    for (let i = 0; i < 1000; i++) assert.equal(b.tryTake(), true);
    b.spend(1e9);
    assert.equal(b.msUntil(0), 0);
  });

  it('spend() takes what was used after the fact (a CPU budget): below zero, it earns its way back at rate', () => {
    const clock = new ManualClock();
    const cpu = new TokenBucket(250, clock); // 250 ms of CPU per second, at most one second's worth
    cpu.spend(300);
    assert.equal(cpu.balance(), -50);
    assert.equal(cpu.msUntil(0), 200, '50 ms of CPU back at 250 ms/s');
    clock.advance(100);
    assert.equal(cpu.balance(), -25);
    clock.advance(10_000);
    assert.equal(cpu.balance(), 250, 'never more than the burst');
  });

  it('setRate() keeps what was earned, up to the new burst, and earns at the new rate from then on', () => {
    const clock = new ManualClock();
    const b = new TokenBucket(100, clock, 200);
    b.spend(150); // 50 left
    clock.advance(100); // +10 at the old rate
    b.setRate(10, 20);
    assert.equal(b.balance(), 20, 'cut to the new burst');
    b.spend(30);
    assert.equal(b.msUntil(0), 1000, '10 back at 10/s');
  });
});

describe('inbound throttling (before dispatch)', () => {
  it('reject: over max_msg_per_sec → ESME_RTHROTTLED without running the handler', async () => {
    const clock = new ManualClock();
    let ran = 0;
    const h = await startGateway({
      clock,
      config: testConfig({ server: { max_msg_per_sec: 5, throttle_action: 'reject' } }),
      handlers: { acme: acceptAll({ pdu: { submit_sm: () => void ran++ } }) },
    });
    const c = await h.esme();
    const results = await Promise.all(Array.from({ length: 8 }, () => c.submit({ short_message: Buffer.from('x') })));
    const statuses = results.map((r) => r.command_status);
    assert.equal(statuses.filter((s) => s === 0).length, 5);
    assert.equal(statuses.filter((s) => s === STATUS.ESME_RTHROTTLED).length, 3);
    assert.equal(ran, 5);
    assert.equal(h.gateway.counters('acme').throttled, 3);
    clock.advance(1000);
    assert.equal((await c.submit({ short_message: Buffer.from('x') })).command_status, 0, 'refilled');
    await h.close();
  });

  it('pace (default): over the rate the response is delayed, never refused', async () => {
    const clock = new ManualClock();
    const h = await startGateway({ clock, config: testConfig({ server: { max_msg_per_sec: 5 } }) });
    const c = await h.esme();
    const answered: number[] = [];
    const all = Array.from({ length: 8 }, (_, i) => c.submit({ short_message: Buffer.from('x') }).then((r) => answered.push(r.command_status, i)));
    for (let i = 0; i < 400 && answered.length < 10; i++) await sleep(5);
    await sleep(50);
    assert.equal(answered.length / 2, 5, 'the burst is answered at once, the rest wait for the clock');
    clock.advance(600);
    await Promise.all(all);
    assert.equal(answered.length / 2, 8);
    for (let i = 0; i < answered.length; i += 2) assert.equal(answered[i], 0);
    await h.close();
  });
});
