import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BIND_STATES } from '../binds/outbound-bind';
import type { ForwardStore } from '../cache/forward-store';
import type { StoreHealth } from '../cache/health';
import type { ForwardCounters } from '../forward/forwarder';
import type { Gateway } from '../gateway';
import type { PolicyVersions } from '../policy-host/policy-versions';
import type { SandboxPool } from '../policy-host/sandbox-pool';
import type { TenantStats } from '../sandbox-protocol/messages';
import type { ReceiptOutcome, TelemetrySink } from '../telemetry';

/**
 * The Prometheus metrics of `GET /metrics` (docs/metrics.md lists each one;
 * a test fails when the two differ). Traffic is counted as it happens,
 * through the gateway's Telemetry; everything else is read at scrape time
 * from the running totals the core keeps. Labels are tenant and bind names
 * from the config, command names, command_status names and receipt stats
 * from fixed tables: never message ids, addresses or a peer's free text.
 */
export interface MetricsSources {
  gateway: Gateway;
  sandbox: SandboxPool;
  versions: PolicyVersions;
  /** Absent: no sluice_store_writable. */
  storeHealth?: StoreHealth;
}

/** SMPP answers on loopback take a few ms; a policy or an upstream can take seconds (handler_deadline_ms is 5 s by default). */
const RESPONSE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Receipts come seconds to hours after their message. */
const RECEIPT_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14_400];

type Labels = Record<string, string>;

/** What a scrape reads once from the sandbox processes (they answer over IPC) and every collector shares. */
interface Snapshot {
  stats: TenantStats[];
  rss: number[];
  /** The journal's queue per tenant and bind (read once for both queue gauges). */
  depth: Awaited<ReturnType<ForwardStore['depth']>>;
}

export class Metrics implements TelemetrySink {
  readonly registry = new Registry();
  private snap: Snapshot = { stats: [], rss: [], depth: [] };
  private readonly detach: () => void;
  private readonly esmeRequests: Counter<string>;
  private readonly esmeResponse: Histogram<string>;
  private readonly esmeSentCount: Counter<string>;
  private readonly upstreamRequests: Counter<string>;
  private readonly upstreamSentCount: Counter<string>;
  private readonly upstreamResponse: Histogram<string>;
  private readonly receipts: Counter<string>;
  private readonly receiptRoundTrip: Histogram<string>;

  constructor(private readonly o: MetricsSources) {
    const r = this.registry;
    this.esmeRequests = new Counter({ name: 'sluice_esme_requests_total', help: 'Requests from bound ESMEs, by the command_status Sluice answered them with', labelNames: ['tenant', 'command', 'command_status'], registers: [r] });
    this.esmeResponse = new Histogram({ name: 'sluice_esme_response_seconds', help: 'From a request from an ESME arriving to its response going out (submit_sm to submit_sm_resp)', labelNames: ['tenant', 'command'], buckets: RESPONSE_BUCKETS, registers: [r] });
    this.esmeSentCount = new Counter({ name: 'sluice_esme_sent_total', help: 'Requests Sluice sent to bound ESMEs (deliver_sm, data_sm), by the ESME\'s command_status, or TIMEOUT / SESSION_CLOSED when it gave none', labelNames: ['tenant', 'command', 'command_status'], registers: [r] });
    this.upstreamRequests = new Counter({ name: 'sluice_upstream_requests_total', help: 'Requests from upstreams on outbound binds (deliver_sm: receipts, MO), by the command_status Sluice answered them with', labelNames: ['tenant', 'bind', 'command', 'command_status'], registers: [r] });
    this.upstreamSentCount = new Counter({ name: 'sluice_upstream_sent_total', help: 'Requests Sluice sent upstream on outbound binds, by the upstream\'s command_status, or TIMEOUT / SESSION_CLOSED / THROTTLED when it gave none', labelNames: ['tenant', 'bind', 'command', 'command_status'], registers: [r] });
    this.upstreamResponse = new Histogram({ name: 'sluice_upstream_response_seconds', help: 'From a request leaving on an outbound bind to the upstream\'s response', labelNames: ['tenant', 'bind', 'command'], buckets: RESPONSE_BUCKETS, registers: [r] });
    this.receipts = new Counter({ name: 'sluice_receipts_by_stat_total', help: 'Delivery receipts from upstreams by stat and outcome (matched, early: before its submit_sm_resp, duplicate, unmatched: dropped after receipts.early_ttl_ms)', labelNames: ['tenant', 'bind', 'stat', 'outcome'], registers: [r] });
    this.receiptRoundTrip = new Histogram({ name: 'sluice_receipt_round_trip_seconds', help: 'From a receipt arriving from the upstream to its receipt being delivered to the ESME', labelNames: ['tenant', 'bind'], buckets: RECEIPT_BUCKETS, registers: [r] });
    this.fromTotals();
    this.binds();
    this.tenants();
    this.policies();
    // The process's own: RSS, heap, event-loop lag, handles (what `npm run soak` watches for growth).
    collectDefaultMetrics({ register: r });
    this.detach = o.gateway.telemetry.attach(this);
  }

  /** The exposition text, after reading what the sandbox processes know (one round trip per scrape). */
  async render(): Promise<string> {
    const [s, depth] = await Promise.all([this.o.sandbox.stats(), this.o.gateway.forwarder.store.depth().catch(() => [])]);
    this.snap = { stats: s.tenants, rss: s.rss, depth };
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.detach();
  }

  // ---- TelemetrySink: counted as traffic flows --------------------------------------------

  esmeAnswered(tenant: string, command: string, status: string, ms: number): void {
    this.esmeRequests.inc({ tenant, command, command_status: status });
    this.esmeResponse.observe({ tenant, command }, ms / 1000);
  }

  esmeSent(tenant: string, command: string, status: string): void {
    this.esmeSentCount.inc({ tenant, command, command_status: status });
  }

  upstreamAnswered(tenant: string, bind: string, command: string, status: string): void {
    this.upstreamRequests.inc({ tenant, bind, command, command_status: status });
  }

  upstreamSent(tenant: string, bind: string, command: string, status: string, ms: number): void {
    this.upstreamSentCount.inc({ tenant, bind, command, command_status: status });
    this.upstreamResponse.observe({ tenant, bind, command }, ms / 1000);
  }

  receipt(tenant: string, bind: string, stat: string, outcome: ReceiptOutcome): void {
    this.receipts.inc({ tenant, bind, stat, outcome });
  }

  receiptDelivered(tenant: string, bind: string, ms: number): void {
    this.receiptRoundTrip.observe({ tenant, bind }, ms / 1000);
  }

  // ---- read at scrape time ---------------------------------------------------------------------

  /**
   * A counter fed from running totals: each scrape adds what is new since
   * the last. A total that went down started again (a sandbox process
   * restarted): all of it is new.
   */
  private totals(name: string, help: string, labelNames: string[], read: () => Iterable<[Labels, number]>): void {
    const seen = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        for (const [labels, v] of read()) {
          const k = labelNames.map((l) => labels[l]).join('\u0000');
          const last = seen.get(k) ?? 0;
          this.inc(labels, v >= last ? v - last : v);
          seen.set(k, v);
        }
      },
    });
  }

  private gauge(name: string, help: string, labelNames: string[], read: () => Iterable<[Labels, number]>): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        // Tenants and binds a config reload removed go with their series.
        this.reset();
        for (const [labels, v] of read()) this.set(labels, v);
      },
    });
  }

  private perTenant<T>(read: (tenant: string) => T | undefined, value: (x: T) => number): () => [Labels, number][] {
    return () => this.o.gateway.tenantIds().flatMap((t) => {
      const x = read(t);
      return x === undefined ? [] : [[{ tenant: t }, value(x)] as [Labels, number]];
    });
  }

  private fromTotals(): void {
    const g = this.o.gateway;
    const one = (v: () => number): (() => [Labels, number][]) => () => [[{}, v()]];
    const dispatch = (key: 'pdus' | 'errors' | 'deadlines') => this.perTenant((t) => g.counters(t), (c) => c[key]);
    this.totals('sluice_pdus_total', 'Message PDUs dispatched to policies', ['tenant'], dispatch('pdus'));
    this.totals('sluice_handler_errors_total', 'Handlers that threw, timed out or gave no answer (answered ESME_RSYSERR)', ['tenant'], dispatch('errors'));
    this.totals('sluice_handler_deadlines_total', 'Handlers that missed handler_deadline_ms', ['tenant'], dispatch('deadlines'));
    // Both causes: the 157,859 submits a tenant's CPU budget refused were once counted nowhere here.
    this.totals('sluice_throttled_total', 'PDUs answered ESME_RTHROTTLED: reason rate (the inbound session rate, throttle_action reject) or cpu_budget (the tenant over limits.cpu_ms_per_s)', ['tenant', 'reason'], () =>
      g.tenantIds().flatMap((t): [Labels, number][] => [
        [{ tenant: t, reason: 'rate' }, g.counters(t).throttled],
        // As the admin API's counts.cpu_throttled: refused in the core, plus refused in the sandbox.
        [{ tenant: t, reason: 'cpu_budget' }, (this.o.sandbox.tenantState(t)?.cpuThrottled ?? 0) + (this.stat(t)?.throttled ?? 0)],
      ]),
    );
    // Held messages (docs/design.md, "Replicas").
    const held = (key: 'held' | 'delivered') => (): [Labels, number][] => [...g.heldCounts().tenants].map(([t, c]) => [{ tenant: t }, c[key]]);
    this.totals('sluice_held_total', 'Messages for ESMEs not bound on this replica, held in the store', ['tenant'], held('held'));
    this.totals('sluice_held_delivered_total', 'Held messages this replica delivered', ['tenant'], held('delivered'));
    this.totals('sluice_held_expired_total', 'Held messages dropped undelivered after server.hold_ttl_ms', [], one(() => g.heldCounts().expired));
    // Store and forward (smpp.forward).
    const fw = (key: keyof ForwardCounters) => (): [Labels, number][] => [...g.forwarder.counters].map(([t, c]) => [{ tenant: t }, c[key]]);
    this.totals('sluice_forwarded_total', 'Messages an upstream accepted (first try or from the queue)', ['tenant'], fw('forwarded'));
    this.totals('sluice_forward_queued_total', 'Messages durably queued by a routing chain', ['tenant'], fw('queued'));
    this.totals('sluice_forward_retried_total', 'Queued messages an upstream accepted on a retry', ['tenant'], fw('retried'));
    this.totals('sluice_forward_expired_total', 'Queued messages that expired undelivered (EXPIRED receipt where asked for)', ['tenant'], fw('expired'));
    this.totals('sluice_forward_rejected_total', 'Messages refused by a reject step or an upstream, or with no bind up and no queue', ['tenant'], fw('rejected'));
    this.totals('sluice_forward_uncertain_total', 'Sends that left without an answer (not sent again by the chain)', ['tenant'], fw('uncertain'));
    this.totals('sluice_receipts_total', 'Delivery receipts from upstreams handed to the core', ['tenant'], fw('receipts'));
    this.totals('sluice_receipts_early_total', "Receipts that came before their message's submit_sm_resp (held and matched later)", ['tenant'], fw('receiptsEarly'));
    this.totals('sluice_receipts_duplicate_total', 'Receipts an upstream sent again (not delivered twice)', ['tenant'], fw('receiptsDuplicate'));
    this.totals('sluice_receipts_unmatched_total', 'Receipts that named no message we know, dropped after receipts.early_ttl_ms', ['tenant'], fw('receiptsUnmatched'));
    this.totals('sluice_mo_total', 'MO messages routed to an ESME', ['tenant'], fw('mo'));
    // The edge (src/sessions/admission.ts): connection caps and failed-bind limits.
    const a = g.admission;
    this.totals('sluice_connections_refused_total', 'Connections closed at once: over max_connections', [], one(() => a.counts.refusedTotal));
    this.totals('sluice_connections_refused_per_ip_total', 'Connections closed at once: over max_connections_per_ip', [], one(() => a.counts.refusedPerIp));
    this.totals('sluice_bind_failures_total', 'Inbound binds refused (unknown system_id, bad password, locked out)', [], one(() => a.counts.bindFailures));
    this.totals('sluice_bind_lockouts_total', 'Addresses (or address and system_id pairs) locked out after too many failed binds', [], one(() => a.counts.lockouts));
    this.totals('sluice_bind_locked_out_total', 'Binds answered ESME_RBINDFAIL during a lockout, the policy not asked', [], one(() => a.counts.lockedOut));
    this.totals('sluice_log_lines_left_out_total', 'Log lines a source caused over server.admission.log_lines_per_minute: counted, not written', [], one(() => a.logs.suppressed));
    const health = this.o.storeHealth;
    if (health) this.gauge('sluice_store_writable', 'Whether the last probe of the store could write (1) or not (0); probed every 5 s', [], one(() => (health.writable ? 1 : 0)));
    this.gauge('sluice_connections', 'Inbound connections open, bound or not', [], one(() => a.connections));
    this.gauge('sluice_esme_sessions', 'Bound ESME sessions', ['tenant'], this.perTenant((t) => g.sessions(t), (s) => s.length));
    this.gauge('sluice_esme_window_in_use', "Requests Sluice sent to a tenant's bound ESMEs not answered yet, over all its sessions", ['tenant'], this.perTenant((t) => g.esmeWindowInUse(t), (n) => n));
    this.gauge('sluice_queue_depth', 'Queued messages per tenant and the bind they wait for (the first of their chain)', ['tenant', 'bind'], () =>
      this.snap.depth.map((d): [Labels, number] => [{ tenant: d.tenant, bind: d.route }, Number(d.count)]),
    );
    this.gauge('sluice_queue_oldest_age_seconds', 'Age of the oldest queued message per tenant and bind', ['tenant', 'bind'], () => {
      // The journal's times are wall-clock (docs/design.md, "Time").
      const now = g.clock.wall();
      return this.snap.depth.map((d): [Labels, number] => [{ tenant: d.tenant, bind: d.route }, Math.max(0, now - Number(d.oldest)) / 1000]);
    });
  }

  private binds(): void {
    const g = this.o.gateway;
    const each = <T>(value: (b: NonNullable<ReturnType<Gateway['bind']>>) => T, emit: (labels: Labels, v: T) => [Labels, number][]) => (): [Labels, number][] =>
      g.tenantIds().flatMap((t) => g.binds(t).flatMap((v) => {
        const b = g.bind(t, v.name);
        return b ? emit({ tenant: t, bind: v.name }, value(b)) : [];
      }));
    const plain = (value: (b: NonNullable<ReturnType<Gateway['bind']>>) => number) => each(value, (l, v) => [[l, v]]);
    this.gauge('sluice_bind_up', 'Outbound bind bound (1) or not (0)', ['tenant', 'bind'], plain((b) => (b.state === 'bound' ? 1 : 0)));
    this.gauge(
      'sluice_bind_state',
      'Outbound bind state: 1 for the state it is in, 0 for the others (standby: a single: true bind whose lease another replica holds)',
      ['tenant', 'bind', 'state'],
      each((b) => b.state, (l, s) => BIND_STATES.map((state): [Labels, number] => [{ ...l, state }, s === state ? 1 : 0])),
    );
    this.totals('sluice_bind_reconnects_total', 'Connection attempts of an outbound bind after a failed attempt or a lost session', ['tenant', 'bind'], plain((b) => b.reconnects));
    this.gauge('sluice_bind_consecutive_failures', 'Failed attempts of an outbound bind since its last healthy session (its backoff grows with it)', ['tenant', 'bind'], plain((b) => b.failures));
    this.gauge('sluice_bind_last_failure_timestamp_seconds', 'When an outbound bind last failed to connect or bind, or lost its session (0: never)', ['tenant', 'bind'], plain((b) => b.lastFailureAt / 1000));
    this.gauge('sluice_bind_window_in_use', 'Requests sent on an outbound bind the upstream has not answered yet', ['tenant', 'bind'], plain((b) => b.window.inUse));
    this.gauge('sluice_bind_window_size', "An outbound bind's window (binds[].window)", ['tenant', 'bind'], plain((b) => b.window.size));
    this.gauge('sluice_bind_requests_waiting', 'Requests waiting for a slot in an outbound bind\'s window', ['tenant', 'bind'], plain((b) => b.window.queued));
  }

  /** A tenant's stats from its sandbox process at this scrape, if it answered. */
  private stat(tenant: string): TenantStats | undefined {
    return this.snap.stats.find((s) => s.tenant === tenant);
  }

  private tenants(): void {
    const g = this.o.gateway;
    const sb = this.o.sandbox;
    const stat = (value: (s: TenantStats) => number) => this.perTenant((t) => this.stat(t), value);
    const totals = (value: (x: NonNullable<ReturnType<SandboxPool['totals']>>) => number) => this.perTenant((t) => sb.totals(t), value);
    const state = (value: (x: NonNullable<ReturnType<SandboxPool['tenantState']>>) => number) => this.perTenant((t) => sb.tenantState(t), value);
    this.totals('sluice_tenant_cpu_seconds_total', "CPU time a tenant's policy used in its isolate", ['tenant'], stat((s) => s.cpuMs / 1000));
    this.gauge('sluice_tenant_cpu_budget_seconds_per_second', "A tenant's CPU budget (limits.cpu_ms_per_s / 1000): compare with rate(sluice_tenant_cpu_seconds_total)", ['tenant'], this.perTenant((t) => g.tenantConfig(t), (c) => c.limits.cpu_ms_per_s / 1000));
    this.gauge('sluice_tenant_heap_used_bytes', "Heap used by a tenant's isolate (0 while it is idle or evicted)", ['tenant'], stat((s) => s.heapUsed));
    this.gauge('sluice_tenant_heap_limit_bytes', "Heap limit of a tenant's isolate (limits.memory_mb)", ['tenant'], stat((s) => s.heapLimit));
    this.totals('sluice_tenant_memory_kills_total', "Isolates of a tenant disposed for going over their heap limit", ['tenant'], stat((s) => s.memoryKills));
    this.totals('sluice_tenant_timeouts_total', 'Policy calls of a tenant stopped for running too long', ['tenant'], stat((s) => s.timeouts));
    this.totals('sluice_tenant_sandbox_crashes_total', 'Sandbox process crashes laid to a tenant (its policy was running)', ['tenant'], totals((x) => x.crashes));
    this.totals('sluice_tenant_quarantines_total', 'Times a tenant was quarantined (too many crashes in 10 minutes: its PDUs answered ESME_RSYSERR until a new version starts)', ['tenant'], totals((x) => x.quarantines));
    this.gauge('sluice_tenant_quarantined', 'Tenant quarantined now (1) or not (0)', ['tenant'], state((s) => (s.quarantined ? 1 : 0)));
    this.gauge('sluice_tenant_penalised', 'Tenant in a crash penalty now (1) or not (0)', ['tenant'], state((s) => (s.penalised ? 1 : 0)));
    this.totals('sluice_sandbox_restarts_total', 'Restarts of a sandbox process (by index, 0 to sandbox.processes - 1)', ['process'], () => sb.processRestarts().map((n, i): [Labels, number] => [{ process: String(i) }, n]));
    this.gauge('sluice_sandbox_rss_bytes', 'Resident set size of a sandbox process (0: it did not answer this scrape)', ['process'], () => this.snap.rss.map((n, i): [Labels, number] => [{ process: String(i) }, n]));
  }

  private policies(): void {
    const g = this.o.gateway;
    const v = this.o.versions;
    const sb = this.o.sandbox;
    this.gauge('sluice_policy_version_info', 'Always 1: the policy version serving a tenant (version "file": its policy file, not an upload), the sha256 of its source, and whether an upload pins it', ['tenant', 'version', 'hash', 'pinned'], () =>
      g.tenantIds().map((t): [Labels, number] => {
        const p = v.view(t);
        return [{ tenant: t, version: p.version === null ? 'file' : String(p.version), hash: p.hash ?? '', pinned: String(p.pinned) }, 1];
      }),
    );
    this.totals('sluice_policy_changes_total', 'Uploads, rollbacks and unpins asked of this replica, by result (ok; rejected: it did not load; else why it was refused)', ['tenant', 'action', 'result'], () =>
      v.changeCounts().map((c): [Labels, number] => [{ tenant: c.tenant, action: c.action, result: c.result }, c.count]),
    );
    this.totals('sluice_policy_reloads_total', 'New policy versions started in a fresh isolate (file change, upload, rollback, config reload): ok, swapped in; failed, the previous one kept serving', ['tenant', 'result'], () =>
      g.tenantIds().flatMap((t): [Labels, number][] => {
        const x = sb.totals(t);
        return x ? [[{ tenant: t, result: 'ok' }, x.reloads], [{ tenant: t, result: 'failed' }, x.reloadFailures]] : [];
      }),
    );
  }
}
