import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load';
import { isSluiceError } from '../errors';
import { createLogger } from '../log/logger';
import { startSluice } from '../runtime';
import { compare, formatLoad, runLoad } from '../tools/bench';
import { SmscSimulator } from '../tools/sim';

const USAGE = `usage: sluice <command> [options]

  start [-c config/sluice.yaml]     run the gateway (SIGHUP re-reads the config file)
  check <policy.ts>                 compile and type-check a policy against sandbox/sluice.d.ts
  push <tenant> <policy.ts> [--admin URL] [--token T]
                                    upload a policy through the admin API (errors at line:column)
  sim [--port 2776] [--latency-ms 0] [--error-rate 0] [--dlr-delay-ms 100] [--system-id ID --password PW] [--one-bind]
                                    an upstream SMSC simulator: acks submits, sends delivery receipts;
                                    --one-bind refuses a second bind of a bound system_id (ESME_RALYBND)
  bench [--host 127.0.0.1] [--port 2775] [--system-id demo] [--password demo]
        [--esmes 1] [--window 64] [--count N | --duration-ms 5000] [--dlr]
                                    drive load at a gateway: msg/s, latency percentiles, DLR round trip
  bench --compare [--duration-ms 7500] [--rounds 5] [--idle 1000] [--tenants 10000]
                                    Sluice (in-process and sandboxed) vs a bare npm smpp echo server in one run;
                                    noisy neighbour, reload time, tenancy and idle-session cost
`;

function num(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number (got "${v}")`);
  return n;
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  const file = values.config ?? 'config/sluice.yaml';
  let config;
  try {
    config = loadConfig(file);
  } catch (err) {
    // A bad config names the file and key and stops before any port is opened.
    if (isSluiceError(err, 'SLUICE_ERR_CONFIG')) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.log.level });
  const sluice = await startSluice({ config, logger, admin: true, configFile: file });
  logger.info({ port: sluice.port, tlsPort: sluice.tlsPort, adminPort: sluice.adminPort, tenants: config.tenants.length, sandbox_processes: config.sandbox.processes }, 'sluice started');
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping');
      sluice.stop().then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    // Re-read the config file: tenants, limits, binds and routing; an invalid file is refused whole and logged.
    process.on('SIGHUP', () => {
      sluice.reloadConfig().catch((err: Error) => logger.error({ err: err.message }, 'config reload refused; the running config stays'));
    });
  });
  logger.flush();
  return 0;
}

async function check(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length === 0) {
    process.stderr.write('usage: sluice check <policy.ts> [more.ts …]\n');
    return 1;
  }
  // Loaded here: the TypeScript compiler is large and only `check` needs its type checker.
  const { checkPolicyFile } = await import('../isolates/typecheck');
  let problems = 0;
  for (const file of positionals) {
    const diags = checkPolicyFile(file);
    for (const d of diags) process.stdout.write(`${file}:${d.line}:${d.column} - error${d.code ? ` ${d.code}` : ''}: ${d.message}\n`);
    if (diags.length === 0) process.stdout.write(`${file}: ok\n`);
    problems += diags.length;
  }
  return problems > 0 ? 1 : 0;
}

async function push(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { admin: { type: 'string' }, token: { type: 'string' } } });
  const [tenant, file] = positionals;
  if (!tenant || !file) {
    process.stderr.write('usage: sluice push <tenant> <policy.ts> [--admin http://127.0.0.1:8075] [--token T | SLUICE_TOKEN]\n');
    return 1;
  }
  const token = values.token ?? process.env.SLUICE_TOKEN;
  if (!token) {
    process.stderr.write('sluice push: a token is needed (--token or SLUICE_TOKEN): the admin token or the tenant\'s upload_token\n');
    return 1;
  }
  const { readFileSync } = await import('node:fs');
  const base = (values.admin ?? 'http://127.0.0.1:8075').replace(/\/$/, '');
  const res = await fetch(`${base}/v1/tenants/${encodeURIComponent(tenant)}/policy`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
    body: readFileSync(file, 'utf8'),
  });
  const body = (await res.json().catch(() => ({}))) as { version?: number; errors?: { line: number; column: number; message: string }[]; error?: string };
  if (res.status === 200) {
    process.stdout.write(`${tenant}: version ${body.version} active\n`);
    return 0;
  }
  if (res.status === 422 && body.errors) {
    for (const e of body.errors) process.stdout.write(`${file}:${e.line}:${e.column} - error: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`sluice push: ${res.status} ${body.error ?? res.statusText}\n`);
  return 1;
}

async function sim(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'latency-ms': { type: 'string' },
      'error-rate': { type: 'string' },
      'dlr-delay-ms': { type: 'string' },
      'dlr-stat': { type: 'string' },
      'system-id': { type: 'string' },
      password: { type: 'string' },
      'one-bind': { type: 'boolean' },
    },
  });
  const s = new SmscSimulator({
    oneBindPerSystemId: values['one-bind'] === true,
    host: values.host ?? '127.0.0.1',
    port: num(values.port, 'port', 2776),
    latencyMs: num(values['latency-ms'], 'latency-ms', 0),
    errorRate: num(values['error-rate'], 'error-rate', 0),
    dlrDelayMs: num(values['dlr-delay-ms'], 'dlr-delay-ms', 100),
    dlrStat: values['dlr-stat'],
    systemId: values['system-id'],
    password: values.password,
  });
  const port = await s.listen();
  process.stdout.write(`sluice sim: SMSC simulator listening on ${values.host ?? '127.0.0.1'}:${port}\n`);
  const timer = setInterval(() => process.stdout.write(`sim ${JSON.stringify(s.stats)}\n`), 10_000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  await s.close();
  return 0;
}

async function bench(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      compare: { type: 'boolean' },
      host: { type: 'string' },
      port: { type: 'string' },
      'system-id': { type: 'string' },
      password: { type: 'string' },
      esmes: { type: 'string' },
      window: { type: 'string' },
      count: { type: 'string' },
      'duration-ms': { type: 'string' },
      idle: { type: 'string' },
      tenants: { type: 'string' },
      rounds: { type: 'string' },
      dlr: { type: 'boolean' },
    },
  });
  const print = (l: string): void => void process.stdout.write(`${l}\n`);
  if (values.compare) {
    const figures = await compare({
      durationMs: num(values['duration-ms'], 'duration-ms', 7500),
      rounds: num(values.rounds, 'rounds', 5),
      idleSessions: num(values.idle, 'idle', 1000),
      tenants: num(values.tenants, 'tenants', 10_000),
      print,
    });
    print(JSON.stringify(figures));
    return 0;
  }
  const r = await runLoad({
    host: values.host ?? '127.0.0.1',
    port: num(values.port, 'port', 2775),
    systemId: values['system-id'] ?? 'demo',
    password: values.password ?? 'demo',
    esmes: num(values.esmes, 'esmes', 1),
    window: num(values.window, 'window', 64),
    count: values.count ? num(values.count, 'count', 0) : undefined,
    durationMs: values['duration-ms'] || !values.count ? num(values['duration-ms'], 'duration-ms', 5000) : undefined,
    dlr: values.dlr,
  });
  print(formatLoad(`window ${values.window ?? 64}`, r));
  return 0;
}

/** The `sluice` command line. Resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start':
      return start(rest);
    case 'sim':
      return sim(rest);
    case 'check':
      return check(rest);
    case 'push':
      return push(rest);
    case 'bench':
      return bench(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 1 : 0;
    default:
      process.stderr.write(`sluice: unknown command "${cmd}"\n${USAGE}`);
      return 1;
  }
}
