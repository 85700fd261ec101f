import { ADMIN_OPTIONS, ADMIN_OPTIONS_USAGE, AdminClient, refusal } from './admin-client';
import type { Command } from './args';
import { count, mb, table } from './format';

const out = (line: string): void => void process.stdout.write(`${line}\n`);

/** GET /v1/tenants/:id as the CLI reads it; every field optional, so a gateway that gives less still prints. */
interface TenantView {
  id: string;
  version?: number | null;
  hash?: string;
  pinned?: boolean;
  state?: string;
  cpu_ms?: number;
  heap_used?: number;
  heap_limit?: number;
  inline?: boolean;
  counts?: Record<string, number>;
  load_errors?: { file?: string; line: number; column: number; message: string; code?: string }[];
  sessions?: { systemId?: string; clientAddr?: string; sessionId?: string }[];
  binds?: { name: string; state: string; host?: string; port?: number }[];
  queue?: { bind: string; depth: number; oldest_age_ms: number }[];
  forward?: Record<string, number>;
}

/** Tenant details asked for at once when listing every tenant. */
const PARALLEL = 4;

/** `memory_kills`, `receiptsEarly` → `memory kills`, `receipts early`. */
function words(key: string): string {
  return key.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

function counters(c: Record<string, number> | undefined): string {
  const entries = Object.entries(c ?? {});
  return entries.length ? entries.map(([k, v]) => `${words(k)} ${count(v)}`).join(', ') : '-';
}

function policyOf(t: TenantView): string {
  if (t.version === null || t.version === undefined) return 'file';
  return `${t.version}${t.pinned ? ' (pinned)' : ''}`;
}

const queued = (t: TenantView): number => (t.queue ?? []).reduce((a, q) => a + q.depth, 0);
const throttled = (t: TenantView): number => (t.counts?.throttled ?? 0) + (t.counts?.cpu_throttled ?? 0);
const bindStates = (t: TenantView): string => (t.binds?.length ? t.binds.map((b) => `${b.name} ${b.state}`).join(', ') : '-');

/** One tenant, a line per part. */
function tenantLines(t: TenantView): string[] {
  const policy = t.version === null || t.version === undefined ? 'its policy file serves' : `version ${t.version} serves${t.pinned ? ', pinned' : ''}`;
  const lines = [`${t.id}: ${t.state ?? 'unknown'}; ${policy}${t.hash ? ` (sha256 ${t.hash.slice(0, 12)})` : ''}`];
  const row = (name: string, text: string): void => void lines.push(`  ${name.padEnd(10)} ${text}`);
  row('sandbox', `cpu ${count(t.cpu_ms ?? 0)} ms, heap ${mb(t.heap_used ?? 0)} of ${mb(t.heap_limit ?? 0)}${t.inline ? ', inline' : ''}`);
  row('counts', counters(t.counts));
  const sessions = t.sessions ?? [];
  row('sessions', sessions.length ? `${sessions.length}: ${sessions.map((s) => `${s.systemId ?? '?'} from ${s.clientAddr ?? '?'}`).join(', ')}` : '0');
  row('binds', t.binds?.length ? t.binds.map((b) => `${b.name} ${b.state}${b.host ? ` (${b.host}:${b.port})` : ''}`).join(', ') : 'none');
  const queue = t.queue ?? [];
  row('queue', queue.length ? queue.map((q) => `${q.bind} ${count(q.depth)} (oldest ${(q.oldest_age_ms / 1000).toFixed(1)} s)`).join(', ') : 'empty');
  if (t.forward) row('forward', counters(t.forward));
  for (const e of t.load_errors ?? []) lines.push(`  load error ${e.file ?? t.id}:${e.line}:${e.column} - error${e.code ? ` ${e.code}` : ''}: ${e.message}`);
  return lines;
}

/** Every tenant, a row each. */
function tenantTable(ts: TenantView[]): string[] {
  const rows = ts.map((t) => [t.id, t.state ?? 'unknown', policyOf(t), count(t.sessions?.length ?? 0), count(queued(t)), count(t.counts?.errors ?? 0), count(throttled(t)), bindStates(t)]);
  return table([['TENANT', 'STATE', 'POLICY', 'SESSIONS', 'QUEUE', 'ERRORS', 'THROTTLED', 'BINDS'], ...rows], [3, 4, 5, 6]);
}

export const status: Command = {
  name: 'status',
  synopsis: '[tenant] [--json] [--admin URL] [--token T]',
  summary: 'what the gateway runs: each tenant\'s state, policy version, sessions, binds, queue, errors',
  positionals: { optional: ['[tenant]'] },
  options: { ...ADMIN_OPTIONS, json: { type: 'boolean' } },
  usage: `usage: sluice status [tenant] [options]

Without a tenant, a table of every tenant the token reaches: state, policy
(the uploaded version serving, or "file"), bound ESME sessions, queued
messages, handler errors, PDUs answered ESME_RTHROTTLED (session rate and
CPU budget) and the outbound binds with their state. With a tenant, all the
gateway says of it (GET /v1/tenants/:id): sandbox CPU and heap, every count,
its sessions, binds, queue per bind, forwarding counts and load errors.

  --json                        print the admin API's JSON as it came (without a tenant:
                                an array of each tenant's GET /v1/tenants/:id)
${ADMIN_OPTIONS_USAGE}
  -h, --help                    print this text
`,
  async run(args) {
    const admin = AdminClient.from('status', args);
    const json = args.flag('json');
    const tenant = args.positionals[0];
    if (tenant !== undefined) {
      const a = await admin.call('GET', `/v1/tenants/${encodeURIComponent(tenant)}`, { tenant });
      if (a.status !== 200) throw refusal(a);
      for (const line of json ? [JSON.stringify(a.body, null, 2)] : tenantLines(a.body as TenantView)) out(line);
      return 0;
    }
    const list = await admin.call('GET', '/v1/tenants');
    if (list.status !== 200) throw refusal(list);
    const ids = (list.body as { id: string }[]).map((t) => t.id);
    const views: (TenantView | undefined)[] = new Array(ids.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const i = next++;
        const a = await admin.call('GET', `/v1/tenants/${encodeURIComponent(ids[i]!)}`);
        // A tenant a config reload removed since the list was read.
        if (a.status === 404) continue;
        if (a.status !== 200) throw refusal(a);
        views[i] = a.body as TenantView;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, ids.length) }, worker));
    const found = views.filter((v): v is TenantView => v !== undefined);
    if (json) out(JSON.stringify(found, null, 2));
    else if (found.length === 0) out('no tenants (or none this token reaches)');
    else for (const line of tenantTable(found)) out(line);
    return 0;
  },
};
