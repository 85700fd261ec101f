/**
 * Entry point of a sandbox process: hosts the isolates of the tenants the
 * core assigns to it, and nothing else — it holds no socket, no file of the
 * core's, no secret. It talks to the core over its channel (fd 3) only. If an
 * isolate takes it down, the core answers the in-flight PDUs, restarts it,
 * and penalises the tenant; when isolated-vm reports the isolate lost
 * (catastrophic out-of-memory) this process first says whose it was.
 */
import { writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { Channel } from '../sandbox-protocol/channel';
import type { FromSandbox, ToSandbox } from '../sandbox-protocol/messages';
import { keepSpareIsolate } from './warm-isolate';
import { startSentry } from './sentry';
import { TenantRuntime, type RuntimeHost } from './tenant-runtime';


let out: Channel<ToSandbox, FromSandbox>;
function send(m: FromSandbox): void {
  out.send(m);
}

/**
 * Timer slack for this process's threads, set before isolated-vm starts any.
 * Every isolate entry runs under a timeout, and isolated-vm's timer thread
 * wakes at each one's deadline even when the entry returned long before
 * (a cancelled timer stays queued): one wake-up per PDU at window 1, about
 * 20 µs of CPU each here. Its threads inherit the slack of the thread that
 * starts them, so with 2 ms the kernel serves the deadlines that fall within
 * 2 ms of each other in one wake-up (measured: 0.97 → 0.16 wake-ups per PDU).
 * A timeout that does fire is at most that much late. Linux only; elsewhere,
 * or where /proc is not writable, nothing changes.
 */
export const TIMER_SLACK_NS = 2_000_000;

function coalesceTimerWakeups(): void {
  try {
    writeFileSync('/proc/self/timerslack_ns', String(TIMER_SLACK_NS));
  } catch {
    // Not Linux, or no /proc: deadlines are served one by one, as isolated-vm does by default.
  }
}

/**
 * Signals this process leaves to the core. A terminal's Ctrl-C and systemd's
 * default `KillMode=control-group` signal the whole process group, this
 * process included: dying at once would answer every PDU in flight here
 * `ESME_RSYSERR` while the core is still draining them. The core stops its
 * sandbox processes itself once it has drained, and when the core dies the
 * channel closes and this process exits (below), so nothing outlives it.
 * SIGHUP is the core's "re-read the config", nothing for a sandbox.
 */
export const SIGNALS_LEFT_TO_CORE = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function main(): void {
  for (const signal of SIGNALS_LEFT_TO_CORE) process.on(signal, () => undefined);
  coalesceTimerWakeups();
  const runtimes = new Map<string, TenantRuntime>();
  const views = new Map<string, Map<string, unknown>>();
  const hostCalls = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let nextHostCall = 0;
  // argv: [idleEvictMs, inlineEntryMs]
  const idleEvictMs = Number(process.argv[2] ?? 600_000);
  const inlineEntryMs = Number(process.argv[3] ?? 0);
  // Inline entries run only under the sentry's watch (a second thread that can end this process).
  if (inlineEntryMs > 0) startSentry(3);
  let culprit: string | undefined;

  const host: RuntimeHost = {
    call(tenant, op, args) {
      const id = ++nextHostCall;
      return new Promise((resolve, reject) => {
        hostCalls.set(id, { resolve, reject });
        send({ t: 'hostCall', id, tenant, op, args });
      });
    },
    log(tenant, level, msg, fields) {
      send({ t: 'log', tenant, level, msg, fields });
    },
    view(tenant, name) {
      return views.get(tenant)?.get(name) ?? [];
    },
    fatal(tenant, message) {
      if (culprit !== undefined) return;
      culprit = tenant;
      send({ t: 'log', tenant, level: 'error', msg: 'policy caused a catastrophic out-of-memory error; its sandbox process restarts', fields: { error: message.slice(0, 200) } });
      send({ t: 'fatal', tenant, message: message.slice(0, 200) });
      // SIGKILL, not exit(): an orderly exit would tear down the lost isolate,
      // whose thread never returns. The flush callback fires once the channel
      // has taken everything queued.
      const die = (): void => void process.kill(process.pid, 'SIGKILL');
      setTimeout(die, 1000);
      out.flush(die);
    },
    compileFailed(tenant, errors) {
      send({ t: 'compileFailed', tenant, errors: errors.slice(0, 20) });
    },
  };

  // Registered tenants compiled ahead of use, one per turn of the event loop: dispatches wait for at most one compile.
  const toPrecompile: string[] = [];
  const precompileLater = (tenant: string): void => {
    if (toPrecompile.push(tenant) === 1) setImmediate(precompileNext);
  };
  const precompileNext = (): void => {
    const tenant = toPrecompile.shift();
    if (tenant !== undefined) runtimes.get(tenant)?.precompile();
    if (toPrecompile.length > 0) setImmediate(precompileNext);
  };

  // This process ends by exit() or SIGKILL, never by draining its loop: it keeps an isolate ready for the next cold start.
  keepSpareIsolate(true);
  const socket = new Socket({ fd: 3, readable: true, writable: true });
  out = new Channel<ToSandbox, FromSandbox>(socket, onMessage);
  // The core is gone (or closed the channel): so is this process.
  socket.on('close', () => process.exit(0));
  function onMessage(m: ToSandbox): void {
    switch (m.t) {
      case 'register': {
        let rt = runtimes.get(m.tenant);
        if (!rt) {
          rt = new TenantRuntime(m.tenant, m.limits, m.boot, host, { idleEvictMs, inlineEntryMs });
          runtimes.set(m.tenant, rt);
        } else {
          rt.reconfigure(m.limits, m.boot);
        }
        void rt.load(m.source, m.filename, m.activate).then(
          (result) => {
            send({ t: 'loaded', reqId: m.reqId, tenant: m.tenant, result });
            // Registered to start on first use: compiled now, in the background, so what does not compile is known.
            if (!m.activate && result.ok) precompileLater(m.tenant);
          },
          (err: Error) => send({ t: 'loaded', reqId: m.reqId, tenant: m.tenant, result: { ok: false, errors: [{ file: m.filename, line: 0, column: 0, message: err.message }] } }),
        );
        return;
      }
      case 'dispatch': {
        const rt = runtimes.get(m.tenant);
        if (!rt) {
          send({ t: 'outcome', id: m.id, outcome: { kind: 'error', reason: 'unavailable', message: 'tenant has no policy here' } });
          return;
        }
        rt.submit(m.kind, m.payload, (outcome) => {
          // The culprit's calls stay unanswered here: the core answers them when this process is gone, and blames their tenant.
          if (m.tenant !== culprit) send({ t: 'outcome', id: m.id, outcome });
        });
        return;
      }
      case 'hostResult': {
        const p = hostCalls.get(m.id);
        if (!p) return;
        hostCalls.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else p.reject(m.value);
        return;
      }
      case 'view': {
        let v = views.get(m.tenant);
        if (!v) views.set(m.tenant, (v = new Map()));
        v.set(m.name, m.value);
        return;
      }
      case 'remove':
        runtimes.get(m.tenant)?.dispose();
        runtimes.delete(m.tenant);
        views.delete(m.tenant);
        return;
      case 'stats':
        void Promise.all([...runtimes.values()].map((r) => r.statsAsync())).then((tenants) => send({ t: 'stats', reqId: m.reqId, tenants, rss: process.memoryUsage().rss }));
        return;
    }
  }

  // Idle isolates go; their tenants come back cold on the next PDU.
  setInterval(() => {
    for (const rt of runtimes.values()) rt.evictIfIdle();
  }, Math.min(10_000, Math.max(100, idleEvictMs / 4))).unref();

  send({ t: 'ready' });
}

if (require.main === module) main();
