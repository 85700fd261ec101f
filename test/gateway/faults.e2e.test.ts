/**
 * Faults injected into real processes, all on loopback: ESMEs → `sluice
 * start` (a child process, policies/gateway.ts in a sandbox process) →
 * `sluice sim` upstreams (child processes) or a raw TCP upstream in this
 * process. An upstream is killed -9 with its window full, stopped with
 * SIGSTOP mid-traffic, or refuses every bind; a sandbox process is killed
 * -9 under load. Each time: every submit the ESME sent is answered in
 * bounded time, the gateway lives, and traffic flows again afterwards.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestEsme } from '../helpers/esme';
import { freePort, sleep, until } from '../helpers/harness';
import { SimProcess } from '../helpers/sim-process';
import { ESME_RSYSERR, ESME_RSUBMITFAIL, ESME_RTHROTTLED, now, within, gateway, exampleGateway, bound, alive, esmeClient, submitFields, type Shot, drive, tally, RefusingSmsc, children } from '../helpers/faults';

describe('faults injected into real processes', { timeout: 120_000 }, () => {
  it('an upstream killed -9 with its window full: every pending submit is answered within 3 s (ESME_RSUBMITFAIL if it had left, queued ESME_ROK if not), and new submits get ESME_ROK when it is back', async (t) => {
    const upPort = await freePort();
    const WINDOW = 10;
    const N = 100;
    // Answers held 20 s: the bind's window fills and the rest wait behind it.
    const slow = await SimProcess.start(upPort, ['--latency-ms', '20000', '--dlr-delay-ms=-1']);
    let back: SimProcess | undefined;
    try {
      const g = await gateway(t, {
        binds: [{ name: 'up', port: upPort, window: WINDOW, response_timer_ms: 25_000 }],
        chain: ['bind:up', 'queue'],
        // The ESME's 100 are all at the gateway at once; no timer of ours answers them before the kill does.
        server: { window: 128, response_timer_ms: 25_000 },
        limits: { handler_deadline_ms: 40_000 },
      });
      await bound(g.proc, 'up');
      const esme = await esmeClient(g.port, 128, 15_000);
      const shots: Shot[] = [];
      const all = drive((text) => esme.submit(submitFields(text)), 'w', { count: N, window: N }, shots);
      await sleep(1500);
      assert.equal(shots.filter((s) => s.status !== undefined).length, 0, 'nothing is answered while the upstream holds its answers');

      const killedAt = now();
      await slow.kill('SIGKILL');
      await within(all, 10_000, 'the ESME has every answer');
      const slowest = Math.max(...shots.map((s) => s.answeredAt! - killedAt));
      t.diagnostic(`window full, upstream killed: ${JSON.stringify(tally(shots))}, last answer ${Math.round(slowest)} ms after the kill`);
      assert.equal(shots.length, N);
      assert.ok(slowest < 3000, `every pending submit answered within 3 s of the kill (the slowest took ${Math.round(slowest)} ms)`);
      // The window's worth had left: not sent again. The rest never left: queued durably, ESME_ROK.
      assert.deepEqual(tally(shots), { '0x45': WINDOW, '0x0': N - WINDOW });
      assert.ok(alive(g.proc), 'the gateway is still running');
      assert.ok(!esme.session.closed, 'the ESME is still bound');

      const from = g.proc.lines.length;
      back = await SimProcess.start(upPort, ['--dlr-delay-ms=-1']);
      await bound(g.proc, 'up', from);
      const queued = shots.filter((s) => s.status === 0).map((s) => s.text);
      const failed = new Set(shots.filter((s) => s.status === ESME_RSUBMITFAIL).map((s) => s.text));
      await until(() => queued.every((x) => back!.submitted().includes(x)), 10_000, 'every queued message reached the upstream that came back');
      const again = await drive((text) => esme.submit(submitFields(text)), 'b', { count: 20, window: 5 });
      assert.deepEqual(tally(again), { '0x0': 20 }, 'new submits get ESME_ROK');
      await until(() => again.every((s) => back!.submitted().includes(s.text)), 5000, 'the new submits reached the upstream');
      const sent = back.submitted();
      assert.equal(sent.length, new Set(sent).size, 'each sent once');
      assert.deepEqual(
        sent.filter((x) => failed.has(x)),
        [],
        'none answered ESME_RSUBMITFAIL is sent again by the gateway',
      );
      esme.close();
    } finally {
      await Promise.all([slow.kill(), back?.kill()]);
    }
  });

  it('an upstream stopped (SIGSTOP) mid-traffic: submits waiting on it are answered ESME_RSUBMITFAIL at the response timer, traffic moves to the second bind at once (regression: it kept taking traffic until the next enquire_link_timer, 30 s), the stalled bind is given up on when its probe goes unanswered, and used again after SIGCONT', async (t) => {
    const ports: [number, number] = [await freePort(), await freePort()];
    const a = await SimProcess.start(ports[0], ['--dlr-delay-ms=-1']);
    const b = await SimProcess.start(ports[1], ['--dlr-delay-ms=-1']);
    const RESPONSE_MS = 2000;
    try {
      const g = await gateway(t, {
        binds: [
          // enquire_link_timer_ms as shipped (30 s): the stall is found by the response timer.
          { name: 'up-a', port: ports[0], window: 16, response_timer_ms: RESPONSE_MS },
          { name: 'up-b', port: ports[1], window: 16, response_timer_ms: RESPONSE_MS },
        ],
        chain: ['bind:up-a', 'bind:up-b', 'queue'],
        // A reconnect to the stopped process is accepted by its kernel and never answered: given up on after this.
        server: { session_init_timer_ms: 2000 },
      });
      await bound(g.proc, 'up-a');
      await bound(g.proc, 'up-b');
      const esme = await esmeClient(g.port, 16, 15_000);
      let stoppedAt = Infinity;
      let stop = false;
      const shots: Shot[] = [];
      const load = drive((text) => esme.submit(submitFields(text)), 's', { count: 20_000, window: 8, pauseMs: 20, stop: () => stop }, shots);
      try {
        await until(() => shots.filter((s) => s.status === 0).length >= 100, 10_000, '100 submits answered ESME_ROK before the stall');
        const from = g.proc.lines.length;
        a.child.kill('SIGSTOP');
        stoppedAt = now();
        await until(() => shots.filter((s) => s.sentAt > stoppedAt && s.status === 0).length >= 100, 15_000, 'traffic flowing again after the stall');
        assert.ok(b.submitted().length >= 100, 'the second bind took it');
        const gaveUp = await g.proc.logged('upstream lost', from, (l) => l.bind === 'up-a' && l.state === 'backoff' && l.level === 40);
        assert.match(String(gaveUp.reason), /enquire_link/, 'the stalled bind is given up on when its enquire_link goes unanswered');
      } finally {
        a.child.kill('SIGCONT');
        stop = true;
      }
      await within(load, RESPONSE_MS + 3000, 'every submit in flight answered');
      const contAt = g.proc.lines.length;

      const late = shots.filter((s) => s.answeredAt! - s.sentAt > RESPONSE_MS + 1500);
      const failed = shots.filter((s) => s.status !== 0);
      const firstOkAfter = Math.min(...shots.filter((s) => s.sentAt > stoppedAt && s.status === 0).map((s) => s.answeredAt!));
      t.diagnostic(
        `stall: ${shots.length} submits ${JSON.stringify(tally(shots))}; failed ones sent ${Math.round(Math.min(...failed.map((s) => s.sentAt)) - stoppedAt)}..${Math.round(Math.max(...failed.map((s) => s.sentAt)) - stoppedAt)} ms after the SIGSTOP; ` +
          `first ESME_ROK ${Math.round(firstOkAfter - stoppedAt)} ms after it; slowest answer ${Math.round(Math.max(...shots.map((s) => s.answeredAt! - s.sentAt)))} ms`,
      );
      assert.ok(shots.every((s) => s.status !== undefined), 'every submit answered');
      assert.deepEqual(late.map((s) => s.text), [], `every submit answered within response_timer_ms + 1.5 s`);
      assert.ok(failed.length > 0, 'the stall hit submits in flight');
      assert.deepEqual([...new Set(failed.map((s) => s.status))], [ESME_RSUBMITFAIL], 'the ones waiting on the stopped upstream: ESME_RSUBMITFAIL (they had left)');
      assert.ok(failed.every((s) => s.sentAt >= stoppedAt - 500), 'nothing sent well before the stall failed');
      assert.ok(firstOkAfter - stoppedAt < RESPONSE_MS + 1500, `ESME_ROK again ${Math.round(firstOkAfter - stoppedAt)} ms after the stall (the response timer + 1.5 s at most)`);
      const viaB = new Set(b.submitted());
      assert.deepEqual(failed.filter((s) => viaB.has(s.text)).map((s) => s.text), [], 'what failed on the stopped upstream was not sent on the second bind');
      assert.ok(alive(g.proc), 'the gateway is still running');
      assert.ok(!esme.session.closed, 'the ESME is still bound');

      // Resumed, the first upstream binds again and, first in the chain, takes the traffic.
      await bound(g.proc, 'up-a', contAt, 15_000);
      const again = await drive((text) => esme.submit(submitFields(text)), 'c', { count: 20, window: 5 });
      assert.deepEqual(tally(again), { '0x0': 20 });
      await until(() => again.every((s) => a.submitted().includes(s.text)), 5000, 'the resumed upstream took the new submits');
      const viaEither = new Set([...a.submitted(), ...b.submitted()]);
      assert.deepEqual(shots.filter((s) => s.status === 0 && !viaEither.has(s.text)).map((s) => s.text), [], 'every ESME_ROK reached an upstream');
      esme.close();
    } finally {
      a.child.kill('SIGCONT');
      await Promise.all([a.kill(), b.kill()]);
    }
  });

  it('an upstream that refuses every bind: reconnects back off (doubling, jittered, no spin), one connection at a time, each refused one closed by the gateway', async (t) => {
    const smsc = new RefusingSmsc();
    const upPort = await smsc.listen();
    try {
      const g = await gateway(t, { binds: [{ name: 'up', port: upPort }], chain: ['bind:up', 'queue'], log: 'debug' });
      await until(() => smsc.conns.length > 0, 10_000, 'a first bind attempt');
      const first = smsc.conns[0]!.openedAt;
      const OBSERVE_MS = 9000;
      await sleep(OBSERVE_MS - (now() - first));
      await until(() => smsc.conns.every((c) => c.closedAt !== undefined), 2000, 'every refused connection closed by the gateway');
      const conns = smsc.conns.filter((c) => c.openedAt - first <= OBSERVE_MS);
      const gaps = conns.slice(1).map((c, i) => Math.round(c.openedAt - conns[i]!.openedAt));
      const retries = g.proc.lines.filter((l) => l.bind === 'up' && l.state === 'backoff');
      t.diagnostic(`refused binds: ${conns.length} attempts in ${OBSERVE_MS} ms, gaps ${JSON.stringify(gaps)} ms, retryInMs ${JSON.stringify(retries.map((l) => l.retryInMs))}, reason "${String(retries[0]?.reason)}"`);

      // Base 1 s, doubling, jitter 50–100 %: 4 attempts by 7 s at the latest, a 5th not before 7.5 s, a 6th not before 15.5 s.
      assert.ok(conns.length >= 4 && conns.length <= 5, `${conns.length} attempts in ${OBSERVE_MS} ms`);
      for (let i = 0; i < gaps.length; i++) {
        const step = 1000 * 2 ** i;
        assert.ok(gaps[i]! >= step / 2 && gaps[i]! <= step + 500, `gap ${i + 1} is ${gaps[i]} ms: within the jitter range of the ${step} ms step`);
        if (i > 0) assert.ok(gaps[i]! >= gaps[i - 1]! - 50, `gaps grow: ${JSON.stringify(gaps)}`);
      }
      for (const [i, l] of retries.slice(0, gaps.length).entries()) {
        assert.ok(Math.abs(gaps[i]! - Number(l.retryInMs)) < 500, `gap ${gaps[i]} ms follows the logged retryInMs ${String(l.retryInMs)}`);
      }
      assert.match(String(retries[0]?.reason), /RBINDFAIL|refused/);
      // Said once at warn, with the reason; the same refusal again is counted at debug, not warned again.
      assert.deepEqual(
        retries.map((l) => [l.msg, l.level]),
        retries.map((_, i) => (i === 0 ? ['bind failed', 40] : ['bind state', 20])),
      );
      assert.deepEqual(retries.slice(1).map((l) => l.repeats), retries.slice(1).map((_, i) => i + 1));
      assert.ok(
        smsc.conns.every((c) => c.openAtOnce === 1),
        'never two connections open at once',
      );
      assert.ok(
        conns.every((c) => c.refusedAt !== undefined && c.closedAt !== undefined && c.closedAt - c.refusedAt < 1000),
        `each refused connection is closed by the gateway at once: ${JSON.stringify(conns.map((c) => (c.closedAt === undefined ? 'open' : Math.round(c.closedAt - c.refusedAt!))))}`,
      );
      assert.ok(alive(g.proc), 'the gateway is still running');
      // Meanwhile the ESME is served: with its only bind down, a submit is queued and acknowledged.
      const esme = await esmeClient(g.port, 4, 5000);
      assert.equal((await esme.submit(submitFields('while refused'))).command_status, 0);
      esme.close();
    } finally {
      await smsc.close();
    }
  });

  it('a sandbox process killed -9 under load: the ESME stays bound, every submit is answered, the sandbox is restarted, ESME_ROK comes back, and every ESME_ROK gets its receipt', async (t) => {
    const ports: [number, number] = [await freePort(), await freePort()];
    // As an SMSC does, a receipt answered with an error (the sandbox died under its handler) is sent again.
    const flags = ['--dlr-delay-ms', '20', '--resend-ms', '300', '--resend-max', '50'];
    const a = await SimProcess.start(ports[0], flags);
    const b = await SimProcess.start(ports[1], flags);
    try {
      const g = await exampleGateway(t, ports);
      await bound(g.proc, 'aggregator-eu');
      await bound(g.proc, 'aggregator-eu-2');
      const gwPid = g.proc.child.pid!;
      const sandboxes = children(gwPid).filter((c) => c.cmd.includes('sandbox-process'));
      assert.equal(sandboxes.length, 2, `the gateway runs sandbox.processes: 2 (children: ${JSON.stringify(children(gwPid))})`);

      const esme = await TestEsme.bind(g.port);
      const session = esme.client.session;
      const shots: Shot[] = [];
      let killed: { pid: number; at: number } | undefined;
      const from = g.proc.lines.length;
      await within(
        drive((text) => esme.submit(text, { short_message: Buffer.from(text), registered_delivery: 1 }), 'k', {
          count: 2000,
          window: 32,
          onAnswer: (n) => {
            if (n !== 600) return;
            // The busy one hosts acme (the other has run no policy).
            const [victim] = children(gwPid).filter((c) => c.cmd.includes('sandbox-process')).sort((x, y) => y.cpu - x.cpu);
            killed = { pid: victim!.pid, at: now() };
            process.kill(victim!.pid, 'SIGKILL');
          },
        }, shots),
        60_000,
        'every submit answered',
      );
      // Set in a callback: TypeScript does not see it.
      const kill = killed as { pid: number; at: number } | undefined;
      assert.ok(kill, 'a sandbox process was killed mid-run');
      const died = await g.proc.logged('sandbox process died; restarting', from, () => true, 5000);
      assert.equal(died.signal, 'SIGKILL');
      assert.ok(Number(died.in_flight) > 0, `the process killed had calls in flight (in_flight ${String(died.in_flight)}): it was acme's`);
      await until(() => {
        const now2 = children(gwPid).filter((c) => c.cmd.includes('sandbox-process'));
        return now2.length === 2 && !now2.some((c) => c.pid === kill.pid);
      }, 10_000, 'the killed sandbox process replaced');

      // ESME_ROK again once the sandbox is back (bounded: a probe every 200 ms).
      let okAgainAt = 0;
      for (let i = 0; i < 75 && okAgainAt === 0; i++) {
        const [probe] = await drive((text) => esme.submit(text, { short_message: Buffer.from(text), registered_delivery: 1 }), `p${i}-`, { count: 1, window: 1 });
        shots.push(probe!);
        if (probe!.status === 0) okAgainAt = now();
        else await sleep(200);
      }
      assert.ok(okAgainAt > 0, 'a submit is answered ESME_ROK again after the restart');
      const later = await drive((text) => esme.submit(text, { short_message: Buffer.from(text), registered_delivery: 1 }), 'l', { count: 200, window: 32 });
      shots.push(...later);
      assert.deepEqual(tally(later), { '0x0': 200 }, 'after the restart every submit gets ESME_ROK');

      const byStatus = tally(shots);
      assert.ok(shots.every((s) => typeof s.status === 'number'), `every submit answered with a status: ${JSON.stringify(byStatus)}`);
      assert.ok(session === esme.client.session && !session.closed, 'the ESME is still bound on its first connection');
      assert.ok(shots.filter((s) => s.answeredAt! < kill.at).every((s) => s.status === 0), 'all ESME_ROK before the kill');
      // The calls in flight die with the process; then, if the tenant is blamed for the crash, it is penalised for 1 s.
      const errorsAt = shots.filter((s) => s.status !== 0).map((s) => s.answeredAt! - kill.at);
      assert.ok(errorsAt.every((ms) => ms >= 0 && ms < 5000), `errors only in the 5 s after the kill (from ${Math.round(Math.min(...errorsAt))} to ${Math.round(Math.max(...errorsAt))} ms)`);
      assert.ok(okAgainAt - kill.at < 5000, `ESME_ROK again ${Math.round(okAgainAt - kill.at)} ms after the kill`);
      assert.ok(alive(g.proc), 'the gateway is still running');

      const ids = shots.filter((s) => s.status === 0).map((s) => s.id!);
      await until(() => {
        const got = esme.byId();
        return ids.every((id) => got.has(id));
      }, 20_000, `receipts for the messages answered ESME_ROK (${ids.filter((id) => !esme.byId().has(id)).length} of ${ids.length} missing)`);
      const got = esme.byId();
      const twice = ids.filter((id) => got.get(id)!.length > 1).length;
      const okIds = new Set(ids);
      const orphans = [...got.keys()].filter((id) => !okIds.has(id)).length;
      const upstream = new Set([...a.submitted(), ...b.submitted()]);
      const failedButSent = shots.filter((s) => s.status !== 0 && upstream.has(s.text)).length;
      t.diagnostic(
        `sandbox kill -9 after 600 answers (died: in_flight ${String(died.in_flight)}, culprit ${String(died.culprit)}): ${JSON.stringify(byStatus)}; ESME_ROK again ${Math.round(okAgainAt - kill.at)} ms after the kill; ` +
          `${ids.length} receipts all in, ${twice} twice; ${failedButSent} answered an error yet sent upstream, ${orphans} receipts so far for ids the ESME was never given`,
      );
      assert.ok(shots.filter((s) => s.status !== 0).every((s) => s.status === ESME_RSYSERR || s.status === ESME_RTHROTTLED || s.status === ESME_RSUBMITFAIL), `error answers are ESME_RSYSERR / ESME_RTHROTTLED / ESME_RSUBMITFAIL: ${JSON.stringify(byStatus)}`);
      assert.equal(twice, 0, 'no receipt delivered twice');
      esme.close();
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  });
});
