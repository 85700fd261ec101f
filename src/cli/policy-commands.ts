import { readFileSync } from 'node:fs';
import type { PolicyDiagnostic } from '../policy-compiler/compile';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_USAGE, AdminClient, AdminError, refusal, type AdminAnswer } from './admin-client';
import { UsageError, type Command } from './args';
import { count, table } from './format';

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const tenantPath = (tenant: string): string => `/v1/tenants/${encodeURIComponent(tenant)}`;

/** A diagnostic as `sluice check` prints it (and `push`, before or after uploading): `file:line:column - error TS2345: …`. */
function diagnosticLine(file: string, d: Pick<PolicyDiagnostic, 'line' | 'column' | 'message' | 'code'>): string {
  return `${file}:${d.line}:${d.column} - error${d.code ? ` ${d.code}` : ''}: ${d.message}`;
}

/**
 * Compile and type-check each file against sandbox/sluice.d.ts, printing
 * every diagnostic at line:column (and `file: ok` for a clean file when
 * `sayOk`); the number of problems found.
 */
async function typeCheck(files: readonly string[], sayOk: boolean): Promise<number> {
  // Loaded here: the TypeScript compiler is large and only check and push need its type checker.
  const { checkPolicyFile } = await import('../policy-compiler/typecheck');
  let problems = 0;
  for (const file of files) {
    let diags: PolicyDiagnostic[];
    try {
      diags = checkPolicyFile(file);
    } catch (err) {
      out(`${file}: cannot read: ${(err as Error).message}`);
      problems++;
      continue;
    }
    for (const d of diags) out(diagnosticLine(file, d));
    if (diags.length === 0 && sayOk) out(`${file}: ok`);
    problems += diags.length;
  }
  return problems;
}

/** A 422 of an upload, rollback or unpin: the gateway's compile errors at line:column; the file they are in is `file`, else the one each names. */
function printErrors(a: AdminAnswer, file?: string): boolean {
  if (a.status !== 422 || !Array.isArray(a.body.errors)) return false;
  for (const e of a.body.errors as PolicyDiagnostic[]) out(diagnosticLine(file ?? e.file, e));
  return true;
}

export const check: Command = {
  name: 'check',
  synopsis: '<policy.ts> [more.ts …]',
  summary: 'compile and type-check policies against sandbox/sluice.d.ts',
  positionals: { required: ['<policy.ts>'], more: true },
  options: {},
  usage: `usage: sluice check <policy.ts> [more.ts …]

Compile and type-check each policy against sandbox/sluice.d.ts, as the gateway
compiles it: every error at file:line:column, or "file: ok". Exits 1 when any
file has an error. \`sluice push\` runs the same check before it uploads.

  -h, --help                    print this text
`,
  async run(args) {
    return (await typeCheck(args.positionals, true)) > 0 ? 1 : 0;
  },
};

export const push: Command = {
  name: 'push',
  synopsis: '<tenant> <policy.ts> [--no-check] [--admin URL] [--token T]',
  summary: 'type-check a policy as check does, then upload it through the admin API; it pins the tenant',
  positionals: { required: ['<tenant>', '<policy.ts>'] },
  options: { ...ADMIN_OPTIONS, 'no-check': { type: 'boolean' } },
  usage: `usage: sluice push <tenant> <policy.ts> [options]

Type-check the policy exactly as \`sluice check\` does; if it has errors, print
them at file:line:column, upload nothing and exit 1. Else upload it
(PUT /v1/tenants/:id/policy): the gateway compiles it again and serves it as
the tenant's next version, or answers with its errors at line:column and
keeps the old version serving. An upload pins the tenant: it serves instead
of the tenant's policy file until \`sluice unpin\`.

  --no-check                    upload without type-checking first (the gateway still compiles it)
${ADMIN_OPTIONS_USAGE}
  -h, --help                    print this text
`,
  async run(args) {
    const [tenant, file] = args.positionals as [string, string];
    const admin = AdminClient.from('push', args);
    if (!args.flag('no-check')) {
      const problems = await typeCheck([file], false);
      if (problems > 0) {
        process.stderr.write(`sluice push: ${file}: ${count(problems)} error${problems === 1 ? '' : 's'}; nothing uploaded (--no-check uploads without the type check)\n`);
        return 1;
      }
    }
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch (err) {
      throw new AdminError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const a = await admin.call('PUT', `${tenantPath(tenant)}/policy`, { body: source, contentType: 'text/plain', tenant });
    if (a.status === 200) {
      out(`${tenant}: version ${a.body.version} active`);
      return 0;
    }
    if (printErrors(a, file)) return 1;
    throw refusal(a);
  },
};

export const unpin: Command = {
  name: 'unpin',
  synopsis: '<tenant> [--admin URL] [--token T]',
  summary: "release the tenant's pin (admin token): its policy file serves again",
  positionals: { required: ['<tenant>'] },
  options: { ...ADMIN_OPTIONS },
  usage: `usage: sluice unpin <tenant> [options]

Release the tenant's pin (DELETE /v1/tenants/:id/policy/pin): its policy file
serves again. Needs admin.token, not an upload_token. A file that does not
load leaves the pin in place; its errors are printed at line:column.

${ADMIN_OPTIONS_USAGE}
  -h, --help                    print this text
`,
  async run(args) {
    const tenant = args.positionals[0]!;
    const a = await AdminClient.from('unpin', args).call('DELETE', `${tenantPath(tenant)}/policy/pin`, { tenant });
    if (a.status === 200) {
      out(`${tenant}: unpinned; its policy file serves (hash ${String(a.body.hash).slice(0, 12)})`);
      return 0;
    }
    // The file does not load: the tenant stays pinned.
    if (printErrors(a)) return 1;
    // An upload_token reaches the tenant but not this route.
    if (a.status === 404) throw new AdminError(`the admin API answered 404 (${a.body.error}): unpin needs admin.token, not a tenant's upload_token`);
    throw refusal(a);
  },
};

interface VersionView {
  version: number;
  hash: string;
  at: string;
  uploader: string;
  current: boolean;
  bytes: number;
  rollback_of?: number;
}

export const versions: Command = {
  name: 'versions',
  synopsis: '<tenant> [--json] [--admin URL] [--token T]',
  summary: "the tenant's kept policy versions, and which one serves",
  positionals: { required: ['<tenant>'] },
  options: { ...ADMIN_OPTIONS, json: { type: 'boolean' } },
  usage: `usage: sluice versions <tenant> [options]

The policy versions the store keeps for the tenant (GET /v1/tenants/:id/policy/versions),
oldest first: when, by whom (admin, tenant, or file: the file version an upload
replaced), size, sha256, and which one serves (*). \`sluice rollback\` serves one again.

  --json                        print the admin API's JSON as it came
${ADMIN_OPTIONS_USAGE}
  -h, --help                    print this text
`,
  async run(args) {
    const tenant = args.positionals[0]!;
    const a = await AdminClient.from('versions', args).call('GET', `${tenantPath(tenant)}/policy/versions`, { tenant });
    if (a.status !== 200) throw refusal(a);
    if (args.flag('json')) {
      out(JSON.stringify(a.body, null, 2));
      return 0;
    }
    const list = (a.body.versions ?? []) as VersionView[];
    const serving = a.body.current === null || a.body.current === undefined ? 'its policy file serves' : `version ${a.body.current} serves`;
    out(`${tenant}: ${serving}${a.body.pinned ? ', pinned (over the policy file, until `sluice unpin`)' : ', not pinned'}`);
    if (list.length === 0) {
      out('no versions kept (nothing uploaded yet)');
      return 0;
    }
    const rows = list.map((v) => [
      v.current ? '*' : '',
      String(v.version),
      v.at.replace('T', ' ').replace(/(\.\d+)?Z$/, ''),
      v.uploader,
      count(v.bytes),
      v.hash.slice(0, 12),
      v.rollback_of !== undefined ? `rollback of ${v.rollback_of}` : '',
    ]);
    for (const line of table([['', 'VERSION', 'AT (UTC)', 'BY', 'BYTES', 'SHA256', ''], ...rows], [1, 4])) out(line);
    return 0;
  },
};

export const rollback: Command = {
  name: 'rollback',
  synopsis: '<tenant> [version] [--admin URL] [--token T]',
  summary: 'serve a kept policy version again, as a new version (default: the one before the one serving)',
  positionals: { required: ['<tenant>'], optional: ['[version]'] },
  options: { ...ADMIN_OPTIONS },
  usage: `usage: sluice rollback <tenant> [version] [options]

Serve a kept policy version again, as the tenant's next version
(POST /v1/tenants/:id/policy/rollback). Without a version: the one before the
version serving (twice goes two back); with the file serving, name a version.
A rollback pins the tenant as an upload does. \`sluice versions\` lists them.

${ADMIN_OPTIONS_USAGE}
  -h, --help                    print this text
`,
  async run(args) {
    const [tenant, given] = args.positionals as [string, string | undefined];
    if (given !== undefined && !/^[1-9]\d{0,14}$/.test(given)) throw new UsageError(`the version must be a positive whole number, as \`sluice versions ${tenant}\` lists them (got "${given}")`);
    // No body: the version before the one serving.
    const body = given === undefined ? undefined : JSON.stringify({ version: Number(given) });
    const a = await AdminClient.from('rollback', args).call('POST', `${tenantPath(tenant)}/policy/rollback`, { body, tenant });
    if (a.status === 200) {
      out(`${tenant}: version ${a.body.version} active (rollback of ${a.body.rollback_of})`);
      return 0;
    }
    if (printErrors(a)) return 1;
    // No such version, nothing earlier, the file serving: the gateway's own words say which.
    if (a.status === 404 || a.status === 409) throw new AdminError(`${a.body.error} (\`sluice versions ${tenant}\` lists what is kept)`);
    throw refusal(a);
  },
};

/** Every command here, in the order `sluice --help` lists them. */
export const POLICY_COMMANDS: readonly Command[] = [check, push, unpin, versions, rollback];
