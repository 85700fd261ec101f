/**
 * Shared rig for the hostile-tenant suites (hostile-*.test.ts): one Sluice
 * with a single sandbox process, a well-behaved tenant `good` and one tenant
 * per hostile case, real TCP on 127.0.0.1 port 0, memory:// cache, and a
 * recording logger. `withGoodTraffic` keeps `good` submitting while a hostile
 * case runs, so every case also proves that its neighbour kept flowing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { recordingLogger } from '../../src/log/logger';
import type { InboundRequest } from '../../src/sessions/smpp-session';
import { startSluice, type Sluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import type { WirePdu } from '../../src/wire/codec';
import { ESME_ROK, STATUS } from '../../src/wire/status';

export { STATUS };
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The neighbour: answers every submit_sm ESME_ROK after one cache round trip through the core. */
export const GOOD = `
smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', async (pdu, session) => {
  const t = pdu.text ?? '';
  if (t.startsWith('set:')) { await cache.set('secret', t.slice(4)); return pdu.reply({ message_id: 'set' }); }
  if (t === 'get') return pdu.reply({ message_id: 'got:' + String(await cache.get('secret')) });
  if (t === 'slow') { await new Promise(() => {}); }
  await cache.get('n');
  return pdu.reply({ message_id: 'good-' + t });
});`;

/** A policy plus a bind handler that accepts, at its end so line numbers stay the tenant's. */
export function withBind(policy: string): string {
  return `${policy}\nsmpp.onBind((b) => b.accept());\n`;
}

/** Small limits for hostile tenants, so each case is fast. */
export const HOSTILE_LIMITS = {
  handler_timeout_ms: 50,
  memory_mb: 16,
  cpu_ms_per_s: 100,
  handler_deadline_ms: 1500,
  max_log_per_s: 20,
  max_pending: 8,
};

/** A secret in the config that no policy may ever see. */
export const BIND_PASSWORD = 'hunter22';

export interface TenantSpec {
  policy: string;
  limits?: Record<string, unknown>;
  binds?: Record<string, unknown>[];
}

export interface World {
  s: Sluice;
  dir: string;
  /** The good tenant's ESME session. */
  good: EsmeClient;
  /** JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Lines a tenant's policy logged (log.*), in order. */
  policyLogs(tenant: string): { msg: string; fields: unknown }[];
  /** Bind an ESME for a tenant (system_id `<tenant>-app`). */
  esme(tenant: string, onRequest?: (pdu: InboundRequest) => void): Promise<EsmeClient>;
  /** The sandbox process's pid (there is one). */
  pid(): number | undefined;
  close(): Promise<void>;
}

/** Start Sluice with `good` plus the given hostile tenants, all in one sandbox process. */
export async function startWorld(hostile: Record<string, string | TenantSpec>, o: { goodPolicy?: string; sandbox?: Record<string, unknown> } = {}): Promise<World> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-hostile-'));
  const specs: Record<string, TenantSpec> = { good: { policy: o.goodPolicy ?? GOOD, limits: { handler_timeout_ms: 200, cpu_ms_per_s: 1000, memory_mb: 64, handler_deadline_ms: 3000 } } };
  for (const [id, v] of Object.entries(hostile)) {
    const spec = typeof v === 'string' ? { policy: v } : v;
    specs[id] = { ...spec, policy: withBind(spec.policy) };
  }
  const tenants = Object.entries(specs).map(([id, spec]) => {
    writeFileSync(path.join(dir, `${id}.ts`), spec.policy);
    return {
      id,
      policy: `${id}.ts`,
      system_ids: [`${id}-app`],
      limits: spec.limits ?? (id === 'good' ? {} : HOSTILE_LIMITS),
      binds: spec.binds ?? [],
    };
  });
  // good owns an outbound bind with a password: the cross-tenant and secret-leak cases name it.
  tenants[0]!.binds = [{ name: 'good-up', host: '127.0.0.1', port: 1, system_id: 'goodup', password: BIND_PASSWORD }];
  const config = parseConfig(
    stringify({
      server: { bind_address: '127.0.0.1', port: 0 },
      cache: { url: 'memory://' },
      sandbox: { processes: 1, ...o.sandbox },
      tenants,
    }),
    { file: 'hostile.yaml', env: {}, cwd: dir },
  );
  const rec = recordingLogger('debug');
  const s = await startSluice({ config, logger: rec.logger, cwd: dir, watch: false, reconnectBaseMs: 60_000 });
  const clients: EsmeClient[] = [];
  const esme = async (tenant: string, onRequest?: (pdu: InboundRequest) => void): Promise<EsmeClient> => {
    const c = await EsmeClient.connect({
      port: s.port,
      responseTimeoutMs: 8000,
      onRequest: (pdu, session) => {
        onRequest?.(pdu);
        session.respond(pdu, ESME_ROK, { message_id: '' });
      },
    });
    clients.push(c);
    const r = await c.bind(`${tenant}-app`, 'pw');
    assert.equal(r.command_status, 0, `bind ${tenant}`);
    return c;
  };
  const good = await esme('good');
  return {
    s,
    dir,
    good,
    logs: rec.lines,
    policyLogs: (tenant) =>
      rec
        .lines()
        .filter((l) => l.tenant === tenant && l.source === 'policy')
        .map((l) => ({ msg: String(l.msg), fields: l.policy_fields })),
    esme,
    pid: () => s.sandbox.processOf('good')?.pid,
    async close() {
      for (const c of clients) c.close();
      await s.stop();
    },
  };
}

export interface Sample {
  sentAt: number;
  doneAt: number;
  status: number;
  messageId: string;
}

/**
 * Run `action` while the good tenant keeps submitting (one at a time, a few ms
 * apart) from before it starts until `afterMs` after it ends. Every good
 * submit is awaited (the client's response timer bounds it).
 */
export async function withGoodTraffic<T>(w: World, action: () => Promise<T>, o: { afterMs?: number; gapMs?: number } = {}): Promise<{ value: T; samples: Sample[]; actionStart: number; actionEnd: number }> {
  const samples: Sample[] = [];
  let stop = false;
  let n = 0;
  const loop = (async () => {
    while (!stop) {
      const sentAt = Date.now();
      const tag = `p${++n}`;
      let r: WirePdu;
      try {
        r = await w.good.submit({ short_message: Buffer.from(tag) });
      } catch (err) {
        samples.push({ sentAt, doneAt: Date.now(), status: -1, messageId: String((err as Error).message) });
        continue;
      }
      samples.push({ sentAt, doneAt: Date.now(), status: r.command_status, messageId: String(r.fields.message_id ?? '') });
      await sleep(o.gapMs ?? 3);
    }
  })();
  await sleep(30);
  const actionStart = Date.now();
  let actionEnd = actionStart;
  let value: T;
  try {
    value = await action();
  } finally {
    actionEnd = Date.now();
    await sleep(o.afterMs ?? 150);
    stop = true;
    await loop;
  }
  return { value, samples, actionStart, actionEnd };
}

/** Every good submit answered ESME_ROK by the good policy itself, none slow, and traffic kept moving. */
export function assertGoodFlowed(samples: Sample[], min = 5, maxLatencyMs = 400): void {
  if (process.env.HOSTILE_DEBUG) {
    const lat = samples.map((x) => x.doneAt - x.sentAt).sort((a, b) => a - b);
    process.stderr.write(`good: ${samples.length} PDUs, p50 ${lat[lat.length >> 1]} ms, max ${lat[lat.length - 1]} ms\n`);
  }
  assert.ok(samples.length >= min, `good tenant sent only ${samples.length} PDUs`);
  const bad = samples.filter((x) => x.status !== 0 || !x.messageId.startsWith('good-p'));
  assert.deepEqual(bad, [], 'every good submit_sm answered ESME_ROK by its policy');
  const slow = samples.filter((x) => x.doneAt - x.sentAt > maxLatencyMs);
  assert.deepEqual(slow, [], `no good submit_sm slower than ${maxLatencyMs} ms`);
}

/** Sessions still bound and answering, the sandbox process not restarted. */
export async function assertAlive(w: World, clients: { tenant: string; c: EsmeClient }[], pid?: number): Promise<void> {
  if (pid !== undefined) assert.equal(w.pid(), pid, 'the sandbox process was not restarted');
  for (const { tenant, c } of [{ tenant: 'good', c: w.good }, ...clients]) {
    const r = await c.request('enquire_link');
    assert.equal(r.command_status, 0, `${tenant} session answers enquire_link`);
    assert.ok(w.s.gateway.sessions(tenant).length >= 1, `${tenant} session still bound`);
  }
}

/** Submit a text and return the answer. */
export function submitText(c: EsmeClient, text: string): Promise<WirePdu> {
  return c.submit({ short_message: Buffer.from(text) });
}

/** What a policy stored in its cache (policies report bulky findings this way; log fields are capped at 4 KB). */
export async function readCache(w: World, tenant: string, key: string): Promise<unknown> {
  const json = await w.s.cache.forTenant(tenant, { maxBytes: 64 * 1048576, maxValueBytes: 1048576 }).get(key);
  return json === undefined ? undefined : JSON.parse(json);
}

/** Stats of one tenant from its sandbox process. */
export async function tenantStats(w: World, tenant: string): Promise<Record<string, unknown>> {
  const st = await w.s.sandbox.stats();
  const t = st.tenants.find((x) => x.tenant === tenant);
  assert.ok(t, `stats for ${tenant}`);
  return t as unknown as Record<string, unknown>;
}

/**
 * A hostile case in one call: bind the tenant, keep good traffic flowing,
 * send `texts` (in order, one at a time) to the hostile tenant, and check
 * containment. Returns the hostile answers for case-specific asserts.
 */
export async function hostileCase(w: World, tenant: string, texts: string[] = ['go'], o: { afterMs?: number; maxLatencyMs?: number; minGood?: number } = {}): Promise<{ answers: WirePdu[]; samples: Sample[]; client: EsmeClient; ms: number }> {
  const client = await w.esme(tenant);
  const pid = w.pid();
  const t0 = Date.now();
  const { value: answers, samples } = await withGoodTraffic(
    w,
    async () => {
      const out: WirePdu[] = [];
      for (const t of texts) out.push(await submitText(client, t));
      return out;
    },
    { afterMs: o.afterMs },
  );
  const ms = Date.now() - t0;
  assertGoodFlowed(samples, o.minGood ?? 5, o.maxLatencyMs);
  await assertAlive(w, [{ tenant, c: client }], pid);
  return { answers, samples, client, ms };
}

/**
 * The good tenant's view of a crash: every PDU answered; the non-ROK ones are
 * ESME_RSYSERR and were either in flight when the process died or sent while
 * it was restarting (before the first ESME_ROK after it); all after are ROK.
 */
export function assertCrashWindow(samples: Sample[], exitAt: number): { inFlight: number; duringRestart: number; ok: number } {
  assert.ok(samples.every((x) => x.status !== -1), 'every good PDU answered');
  const firstOkAfter = samples.find((x) => x.sentAt > exitAt && x.status === 0);
  assert.ok(firstOkAfter, 'the good tenant is served again after the restart');
  const failed = samples.filter((x) => x.status !== 0);
  for (const f of failed) {
    assert.equal(f.status, STATUS.ESME_RSYSERR, 'a failed good PDU is ESME_RSYSERR');
    assert.ok(f.doneAt >= exitAt - 5, 'failed only at the crash, never before it');
    assert.ok(f.sentAt <= firstOkAfter.sentAt, 'never after the process is back');
  }
  const ok = samples.filter((x) => x.status === 0);
  assert.ok(ok.every((x) => x.messageId.startsWith('good-p')), 'answered by the good policy');
  return { inFlight: failed.filter((f) => f.sentAt <= exitAt).length, duringRestart: failed.filter((f) => f.sentAt > exitAt).length, ok: ok.length };
}

/**
 * Run `action`, which takes the sandbox process hosting `tenant` down (a PDU,
 * a reload), while the good tenant keeps sending, until the good tenant is
 * served by the new process. Returns what the action returned, the good
 * tenant's samples, when and how the process ended, and what it said as it
 * died (`fatal` messages).
 */
export async function crashWithGoodTraffic<T>(
  w: World,
  tenant: string,
  action: () => Promise<T>,
): Promise<{ value: T; samples: Sample[]; sentAt: number; exitAt: number; exitSignal: string | null; named: { tenant: string; message: string }[]; pid: number | undefined }> {
  const child = w.s.sandbox.processOf(tenant)!;
  let exitAt = 0;
  let exitSignal: string | null = null;
  child.once('exit', (_code, signal) => {
    exitAt = Date.now();
    exitSignal = signal;
  });
  const named: { tenant: string; message: string }[] = [];
  const unwatch = w.s.sandbox.watch(tenant, (m) => {
    if (m.t === 'fatal') named.push({ tenant: m.tenant, message: m.message });
  });
  const sentAt = Date.now();
  try {
    const { value, samples } = await withGoodTraffic(
      w,
      async () => {
        const r = await action();
        for (let i = 0; i < 150; i++) {
          const g = await submitText(w.good, 'probe');
          if (g.command_status === 0 && exitAt) break;
          await sleep(20);
        }
        return r;
      },
      { afterMs: 200 },
    );
    return { value, samples, sentAt, exitAt, exitSignal, named, pid: child.pid };
  } finally {
    unwatch();
  }
}
