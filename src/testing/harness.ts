import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../config/load';
import type { TenantLimits } from '../config/schema';
import { SluiceError } from '../errors';
import { toWireFields } from '../pdu/fields';
import { toPolicyPdu, type PolicyPdu } from '../pdu/model';
import { decodePdu, encodePdu } from '../wire/codec';
import { statusName } from '../wire/status';
import { publicConfig } from '../sandbox-protocol/boot';
import { readHostCall, runHostCall, type HostCall, type HostCallHandlers } from '../sandbox-protocol/host-calls';
import type { SandboxOutcome } from '../sandbox-protocol/messages';
import { TenantRuntime, type RuntimeHost } from '../sandbox-process/tenant-runtime';

/**
 * Unit-test a policy without a network: the policy runs in the real sandbox
 * (its own isolate, the real prelude, the real limits) and every host call it
 * makes is recorded and answered by this harness.
 *
 *   const h = await PolicyHarness.load('policies/acme.ts', { binds: ['aggregator-eu'] });
 *   const r = await h.pdu('submit_sm', { destination_addr: '3161', short_message: 'hi' });
 *   assert.equal(r.command_status, 'ESME_ROK');
 *   assert.equal(h.sent[0].command, 'submit_sm');
 *
 * Node 20 needs `--no-node-snapshot` in any process that runs isolates:
 * `node --no-node-snapshot --test`.
 */

export interface HarnessOptions {
  tenant?: string;
  filename?: string;
  /** Names of this tenant's outbound binds (all 'bound'). */
  binds?: string[];
  /** Limits over the defaults. */
  limits?: Partial<TenantLimits>;
  /** `tenants[].settings`, for `smpp.settings()`. */
  settings?: Record<string, unknown>;
  /** `tenants[].system_ids` (default `[<tenant>-app]`). */
  systemIds?: string[];
  /** What a send helper (or `smpp.forward`) resolves to; default `{ ok: true, command_status: 'ESME_ROK', message_id: 'up-<n>' }`. Throw a `{ code }` to fail it. */
  onSend?: (sent: SentMessage) => unknown;
}

export interface SentMessage {
  /** `forward`: a PDU handed to `smpp.forward` (its options in `to`, `chain`, `rule`). */
  op: 'sendVia' | 'sendTo' | 'forward';
  to?: string;
  chain?: string[];
  rule?: string;
  command: string;
  bind?: string;
  sessionId?: string;
  fields: Record<string, unknown>;
  /** To a session that unbound: held for the next session of its system_id, as the gateway does (docs/design.md, "Replicas"). */
  held?: true;
}

export interface HarnessResult {
  /** 'reply', 'default', 'bind', 'done', 'throttled' or 'error'. */
  kind: string;
  command_status?: string;
  fields?: Record<string, unknown>;
  accept?: boolean;
  reason?: string;
  error?: string;
}

export class PolicyHarness {
  readonly sent: SentMessage[] = [];
  readonly logs: { level: string; msg: string; fields?: unknown }[] = [];
  readonly timers: { kind: string; ms?: number; name: string; payload?: unknown }[] = [];
  readonly cache = new Map<string, string>();
  readonly sessions: { kind: 'esme'; sessionId: string; systemId: string; clientAddr: string }[] = [];
  private counter = 0;
  /** Sessions that bound and then unbound: the gateway holds what is sent to them. */
  private readonly gone = new Set<string>();

  private constructor(
    private readonly runtime: TenantRuntime,
    private readonly opts: HarnessOptions,
  ) {}

  /** Load a policy file (or `{ source }`) into a fresh sandbox. Throws with line:column if it does not load. */
  static async load(file: string | { source: string; filename?: string }, opts: HarnessOptions = {}): Promise<PolicyHarness> {
    const source = typeof file === 'string' ? readFileSync(file, 'utf8') : file.source;
    const filename = opts.filename ?? (typeof file === 'string' ? path.basename(file) : (file.filename ?? 'policy.ts'));
    const tenant = opts.tenant ?? 'test';
    const cfg = parseConfig(
      stringify({
        tenants: [
          {
            id: tenant,
            system_ids: opts.systemIds ?? [`${tenant}-app`],
            settings: opts.settings ?? {},
            limits: opts.limits ?? {},
            binds: (opts.binds ?? []).map((name, i) => ({ name, host: '127.0.0.1', port: 1 + i, system_id: name.slice(0, 15) })),
          },
        ],
      }),
      { file: 'harness', env: {} },
    ).tenants[0]!;
    let self: PolicyHarness | undefined;
    const host: RuntimeHost = {
      call: (_t, op, args) => self!.hostCall(op, args),
      log: (_t, level, msg, fields) => void self!.logs.push({ level, msg, fields }),
      view: (_t, name) => (name === 'binds' ? (opts.binds ?? []).map((b) => ({ name: b, state: 'bound' })) : self!.sessions),
    };
    const runtime = new TenantRuntime(tenant, cfg.limits, { tenant, config: publicConfig(cfg), routing: cfg.routing, settings: cfg.settings }, host, { idleEvictMs: 0x7fffffff });
    self = new PolicyHarness(runtime, opts);
    const r = await runtime.load(source, filename, true);
    if (!r.ok) {
      const e = r.errors[0]!;
      throw new Error(`${e.file}:${e.line}:${e.column}: ${e.message}`);
    }
    return self;
  }

  /** A policy's host call, read as the core reads it (sandbox-protocol/host-calls.ts), answered by the harness's own handlers. */
  private hostCall(op: string, args: unknown): Promise<unknown> {
    let call: HostCall;
    try {
      call = readHostCall(op, args);
    } catch (err) {
      return Promise.reject(err);
    }
    return runHostCall(this.handlers, this.runtime.tenant, call);
  }

  private send(op: 'sendVia' | 'sendTo', command: string, fields: Record<string, unknown>, target: { bind: string } | { sessionId: string }): Promise<unknown> {
    const sent: SentMessage = { op, command, fields, ...target };
    if ('bind' in target && !(this.opts.binds ?? []).includes(target.bind)) throw new SluiceError('UNKNOWN_BIND', `no bind named "${target.bind}"`);
    toWireFields(command, fields); // the same validation as the gateway: INVALID_FIELD
    if ('sessionId' in target && !this.sessions.some((x) => x.sessionId === target.sessionId)) {
      if (!this.gone.has(target.sessionId)) throw new SluiceError('UNKNOWN_SESSION', `no bound session "${target.sessionId}"`);
      sent.held = true;
      this.sent.push(sent);
      return Promise.resolve({ ok: true, command_status: 'ESME_ROK', held: true });
    }
    this.sent.push(sent);
    if (this.opts.onSend) return Promise.resolve(this.opts.onSend(sent));
    return Promise.resolve({ ok: true, command_status: 'ESME_ROK', message_id: `up-${++this.counter}` });
  }

  private readonly handlers: HostCallHandlers = {
    sendVia: async (_tenant, a) => this.send('sendVia', a.command, a.fields, { bind: a.bind }),
    sendTo: async (_tenant, a) => this.send('sendTo', a.command, a.fields, { sessionId: a.sessionId }),
    forward: async (_tenant, a) => {
      // The core's routing is the gateway's; the harness records what the policy handed on.
      const sent: SentMessage = { op: 'forward', command: a.command, fields: { ...(a.fields ?? {}), ...(a.overrides ?? {}) } };
      if (a.to !== undefined) sent.to = a.to;
      if (a.chain !== undefined) sent.chain = a.chain;
      if (a.rule !== undefined) sent.rule = a.rule;
      this.sent.push(sent);
      if (this.opts.onSend) return this.opts.onSend(sent);
      return sent.command === 'deliver_sm' ? { ok: true, command_status: 'ESME_ROK' } : { ok: true, command_status: 'ESME_ROK', message_id: `fw-${++this.counter}` };
    },
    cache: async (_tenant, a) => {
      switch (a.op) {
        case 'get':
          return this.cache.get(a.key) ?? null;
        case 'set':
          this.cache.set(a.key, a.json);
          return true;
        case 'delete':
          return this.cache.delete(a.key);
        case 'has':
          return this.cache.has(a.key);
      }
    },
    timer: async (_tenant, a) => {
      this.timers.push(a);
      return true;
    },
  };

  private static result(o: SandboxOutcome): HarnessResult {
    switch (o.kind) {
      case 'reply':
        return { kind: 'reply', command_status: statusName(o.status), fields: o.fields ?? {} };
      case 'bind': {
        const r: HarnessResult = { kind: 'bind', accept: o.accept, command_status: statusName(o.status) };
        if (o.reason !== undefined) r.reason = o.reason;
        return r;
      }
      case 'error':
        return { kind: 'error', command_status: 'ESME_RSYSERR', error: `${o.reason}: ${o.message}` };
      case 'throttled':
        return { kind: 'throttled', command_status: 'ESME_RTHROTTLED' };
      default:
        return { kind: o.kind };
    }
  }

  /** An inbound bind_transceiver. */
  async bind(req: { systemId?: string; password?: string; systemType?: string; sessionId?: string; clientAddr?: string } = {}): Promise<HarnessResult> {
    const full = { sessionId: req.sessionId ?? 's1', systemId: req.systemId ?? `${this.runtime.tenant}-app`, password: req.password ?? '', systemType: req.systemType ?? '', interfaceVersion: 0x34, clientAddr: req.clientAddr ?? '127.0.0.1:40000' };
    const r = PolicyHarness.result(await this.runtime.dispatch('bind', { req: full }));
    if (r.accept) this.sessions.push({ kind: 'esme', sessionId: full.sessionId, systemId: full.systemId, clientAddr: full.clientAddr });
    return r;
  }

  /** A PDU as it would arrive: fields in the send-helper form (strings are encoded as the gateway would). */
  async pdu(command: string, fields: Record<string, unknown> = {}, session?: Partial<{ kind: 'esme' | 'bind'; sessionId: string; systemId: string; bind: string }>): Promise<HarnessResult> {
    const wire = toWireFields(command, fields);
    const decoded = decodePdu(encodePdu(command, 1, 0, wire.fields, wire.unknownTlvs));
    if (!decoded.ok) throw new Error(decoded.reason);
    const pdu: PolicyPdu = toPolicyPdu(decoded.pdu);
    return PolicyHarness.result(await this.runtime.dispatch('pdu', { pdu, session: this.sessionView(session) }));
  }

  /** A session event; an ESME's 'unbound' also ends that session here (what is sent to it is then held). */
  async session(event: 'bound' | 'unbound', session: { kind?: 'esme' | 'bind'; sessionId?: string; systemId?: string; bind?: string } = {}): Promise<HarnessResult> {
    const id = session.sessionId ?? 's1';
    if (event === 'unbound' && (session.kind ?? 'esme') === 'esme') {
      const i = this.sessions.findIndex((s) => s.sessionId === id);
      if (i !== -1) {
        this.sessions.splice(i, 1);
        this.gone.add(id);
      }
    }
    return PolicyHarness.result(await this.runtime.dispatch('session', { event, session: this.sessionView(session) }));
  }

  /** A session as the policy sees it, with defaults for what the test left out. */
  private sessionView(session: { kind?: 'esme' | 'bind'; sessionId?: string; systemId?: string; bind?: string } = {}): Record<string, unknown> {
    return { kind: session.kind ?? 'esme', sessionId: session.sessionId ?? 's1', systemId: session.systemId ?? `${this.runtime.tenant}-app`, clientAddr: '127.0.0.1:40000', ...(session.bind ? { bind: session.bind } : {}) };
  }

  /** Fire a timer the policy set (or any name). */
  async timer(name: string, payload?: unknown): Promise<HarnessResult> {
    return PolicyHarness.result(await this.runtime.dispatch('timer', { name, payload }));
  }

  /** Replace the policy, as a reload would: the old version keeps serving if the new one fails. */
  reload(source: string): ReturnType<TenantRuntime['load']> {
    return this.runtime.load(source, this.opts.filename ?? 'policy.ts', true);
  }

  stats(): ReturnType<TenantRuntime['stats']> {
    return this.runtime.stats();
  }

  close(): void {
    this.runtime.dispose();
  }
}
