import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load';
import { isSluiceError } from '../errors';
import { createLogger } from '../log/logger';
import { startSluice, withoutPassword } from '../runtime';
import { compare, formatLoad, runLoad } from '../tools/bench';
import { RECEIPT_ID_FORMS, RECEIPTS_ON, SmscSimulator, type ReceiptIdForm, type ReceiptsOn, type SimEvent } from '../tools/sim';

const USAGE = `usage: sluice <command> [options]

  start [-c config/sluice.yaml]     run the gateway (SIGHUP re-reads the config file)
  check <policy.ts>                 compile and type-check a policy against sandbox/sluice.d.ts
  config-doc [-o FILE]              the configuration reference (every key, its type, default and meaning),
                                    generated from the schema; npm run docs:config writes docs/configuration.md
  push <tenant> <policy.ts> [--admin URL] [--token T]
                                    upload a policy through the admin API (errors at line:column); it pins the tenant
  unpin <tenant> [--admin URL] [--token T]
                                    release the tenant's pin (admin token): its policy file serves again
  sim [--port 2776] [--latency-ms 0] [--error-rate 0] [--dlr-delay-ms 100] [--system-id ID --password PW] [--one-bind]
      [--receipt-id same] [--early-receipts 0] [--resend-ms 0] [--drop-every 0] [--mo-every-ms 0] [--log-events]
                                    an upstream SMSC simulator: acks submits, sends delivery receipts;
                                    --one-bind refuses a second bind of a bound system_id (ESME_RALYBND);
                                    sluice sim --help lists every option
  bench [--host 127.0.0.1] [--port 2775] [--system-id demo] [--password demo]
        [--esmes 1] [--window 64] [--count N | --duration-ms 5000] [--dlr]
                                    drive load at a gateway: msg/s, latency percentiles, DLR round trip
  soak [--minutes 3] [--rate 300]      the gateway under mixed load (a hostile tenant, reloads, a flaky upstream) for a while;
                                    prints RSS, heap, handles and journal size; fails on growth or a lost message
  bench --compare [--duration-ms 7500] [--rounds 5] [--idle 1000] [--tenants 10000] [--gateway-processes 2] [--only gateway]
                                    Sluice (in-process and sandboxed) vs a bare npm smpp echo server in one run;
                                    durable store writes, the shipped gateway vs a bare npm smpp relay,
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
  let sluice;
  try {
    sluice = await startSluice({ config, logger, admin: true, configFile: file });
  } catch (err) {
    // A port that is taken, a store that cannot be opened: say so and exit non-zero, not run half started.
    const e = err as NodeJS.ErrnoException;
    logger.fatal({ err: e.message, code: e.code }, 'sluice could not start');
    logger.flush();
    process.stderr.write(`sluice: could not start: ${e.message}\n`);
    return 1;
  }
  // The store with its absolute path: relative ones resolved against the config file's directory.
  logger.info({ port: sluice.port, tlsPort: sluice.tlsPort, adminPort: sluice.adminPort, tenants: config.tenants.length, sandbox_processes: config.sandbox.processes, config: path.resolve(file), store: withoutPassword(config.cache.url) }, 'sluice started');
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

async function configDoc(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { out: { type: 'string', short: 'o' } } });
  const { renderConfigDoc } = await import('../tools/config-doc');
  const text = renderConfigDoc();
  if (values.out === undefined) {
    process.stdout.write(text);
    return 0;
  }
  const { writeFileSync } = await import('node:fs');
  writeFileSync(values.out, text);
  process.stdout.write(`sluice config-doc: wrote ${values.out}\n`);
  return 0;
}

async function check(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length === 0) {
    process.stderr.write('usage: sluice check <policy.ts> [more.ts …]\n');
    return 1;
  }
  // Loaded here: the TypeScript compiler is large and only `check` needs its type checker.
  const { checkPolicyFile } = await import('../policy-compiler/typecheck');
  let problems = 0;
  for (const file of positionals) {
    const diags = checkPolicyFile(file);
    for (const d of diags) process.stdout.write(`${file}:${d.line}:${d.column} - error${d.code ? ` ${d.code}` : ''}: ${d.message}\n`);
    if (diags.length === 0) process.stdout.write(`${file}: ok\n`);
    problems += diags.length;
  }
  return problems > 0 ? 1 : 0;
}

/** The admin API's base URL and a token (--admin, --token or SLUICE_TOKEN), and the positionals; undefined (usage written) when `count` positionals or the token are missing. */
function adminArgs(cmd: string, args: string[], count: number, usage: string): { base: string; token: string; positionals: string[] } | undefined {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { admin: { type: 'string' }, token: { type: 'string' } } });
  if (positionals.length < count) {
    process.stderr.write(`usage: sluice ${cmd} ${usage} [--admin http://127.0.0.1:8075] [--token T | SLUICE_TOKEN]\n`);
    return undefined;
  }
  const token = values.token ?? process.env.SLUICE_TOKEN;
  if (!token) {
    process.stderr.write(`sluice ${cmd}: a token is needed (--token or SLUICE_TOKEN): ${cmd === 'push' ? "the admin token or the tenant's upload_token" : 'the admin token'}\n`);
    return undefined;
  }
  return { base: (values.admin ?? 'http://127.0.0.1:8075').replace(/\/$/, ''), token, positionals };
}

type AdminAnswer = { version?: number; hash?: string; errors?: { file?: string; line: number; column: number; message: string }[]; error?: string };

async function push(args: string[]): Promise<number> {
  const a = adminArgs('push', args, 2, '<tenant> <policy.ts>');
  if (!a) return 1;
  const [tenant, file] = a.positionals as [string, string];
  const { readFileSync } = await import('node:fs');
  const res = await fetch(`${a.base}/v1/tenants/${encodeURIComponent(tenant)}/policy`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${a.token}`, 'content-type': 'text/plain' },
    body: readFileSync(file, 'utf8'),
  });
  const body = (await res.json().catch(() => ({}))) as AdminAnswer;
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

async function unpin(args: string[]): Promise<number> {
  const a = adminArgs('unpin', args, 1, '<tenant>');
  if (!a) return 1;
  const tenant = a.positionals[0]!;
  const res = await fetch(`${a.base}/v1/tenants/${encodeURIComponent(tenant)}/policy/pin`, { method: 'DELETE', headers: { authorization: `Bearer ${a.token}` } });
  const body = (await res.json().catch(() => ({}))) as AdminAnswer;
  if (res.status === 200) {
    process.stdout.write(`${tenant}: unpinned; its policy file serves (hash ${body.hash?.slice(0, 12)})\n`);
    return 0;
  }
  // The file does not load: the tenant stays pinned.
  if (res.status === 422 && body.errors) {
    for (const e of body.errors) process.stdout.write(`${e.file}:${e.line}:${e.column} - error: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`sluice unpin: ${res.status} ${body.error ?? res.statusText}\n`);
  return 1;
}

const SIM_USAGE = `usage: sluice sim [options]

an upstream SMSC simulator: acks submit_sm / data_sm with a hex message id, sends
delivery receipts to the account (any bound session of the system_id, or the next to bind)

  --host 127.0.0.1              address to listen on
  --port 2776                   port to listen on (0: any free port)
  --system-id ID --password PW  accept binds only with these credentials (default: any)
  --one-bind                    refuse a second bind of a bound system_id (ESME_RALYBND) (default off)
  --latency-ms 0                delay before each submit_sm_resp
  --error-rate 0                fraction (0..1) of submits answered ESME_RSUBMITFAIL
  --dlr-delay-ms 100            delay before a requested delivery receipt; negative = never
  --dlr-stat DELIVRD            stat: of the receipts
  --resp-id hex                 submit_sm_resp message_id: hex (uppercase) | decimal
  --receipt-id same             receipt id (text id: and receipted_message_id) relative to the resp id:
                                same | upper-hex | lower-hex | decimal | padded | padded-decimal | mixed
  --early-receipts 0            fraction (0..1) of receipts sent before their submit_sm_resp
  --early-resp-delay-ms 50      delay of the submit_sm_resp after an early receipt
  --receipts-on carrier         which session of the account a receipt goes to: carrier (the one that carried
                                the message) | other (another bound one when there is one) | spread (each in turn)
  --resend-ms 0                 re-send a deliver_sm answered non-zero or unanswered after this delay (0: off)
  --resend-max 5                most re-sends of one deliver_sm
  --duplicate-receipts 0        fraction (0..1) of receipts sent again after an ESME_ROK answer
  --deliver-timeout-ms 10000    response timer of the simulator's deliver_sm
  --drop-every 0                close the connection (no unbind) after every Nth submit answered (0: never)
  --mo-every-ms 0               send an MO deliver_sm ("mo <n>") on a bound session this often (0: off)
  --mo-to 4470123               destination_addr of MO messages
  --log-events                  print one JSON line per event (submit, receipt, mo, bind, drop) (default off)
  -h, --help                    print this text
`;

async function sim(args: string[]): Promise<number> {
  const str = { type: 'string' } as const;
  const { values } = parseArgs({
    args,
    options: {
      host: str,
      port: str,
      'latency-ms': str,
      'error-rate': str,
      'dlr-delay-ms': str,
      'dlr-stat': str,
      'system-id': str,
      password: str,
      'one-bind': { type: 'boolean' },
      'resp-id': str,
      'receipt-id': str,
      'early-receipts': str,
      'early-resp-delay-ms': str,
      'resend-ms': str,
      'receipts-on': str,
      'resend-max': str,
      'duplicate-receipts': str,
      'deliver-timeout-ms': str,
      'drop-every': str,
      'mo-every-ms': str,
      'mo-to': str,
      'log-events': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(SIM_USAGE);
    return 0;
  }
  const respId = values['resp-id'] ?? 'hex';
  if (respId !== 'hex' && respId !== 'decimal') throw new Error(`--resp-id must be hex or decimal (got "${respId}")`);
  const receiptId = (values['receipt-id'] ?? 'same') as ReceiptIdForm;
  if (!RECEIPT_ID_FORMS.includes(receiptId)) throw new Error(`--receipt-id must be one of ${RECEIPT_ID_FORMS.join(', ')} (got "${receiptId}")`);
  const receiptsOn = (values['receipts-on'] ?? 'carrier') as ReceiptsOn;
  if (!RECEIPTS_ON.includes(receiptsOn)) throw new Error(`--receipts-on must be one of ${RECEIPTS_ON.join(', ')} (got "${receiptsOn}")`);
  // Events wait until the listening line is out; one write per line, so lines never interleave.
  // A submit's line is written before its submit_sm_resp: to a file at once (a reader that got
  // the answer finds the line); to a pipe Node may hold it while the pipe is full.
  let ready = false;
  const early: string[] = [];
  const onEvent = values['log-events']
    ? (e: SimEvent): void => {
        const line = `${JSON.stringify(e)}\n`;
        if (ready) process.stdout.write(line);
        else early.push(line);
      }
    : undefined;
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
    respIdForm: respId,
    receiptIdForm: receiptId,
    earlyReceiptRate: num(values['early-receipts'], 'early-receipts', 0),
    earlyRespDelayMs: num(values['early-resp-delay-ms'], 'early-resp-delay-ms', 50),
    resendUnansweredMs: num(values['resend-ms'], 'resend-ms', 0),
    receiptsOn,
    resendMax: num(values['resend-max'], 'resend-max', 5),
    duplicateReceiptRate: num(values['duplicate-receipts'], 'duplicate-receipts', 0),
    deliverTimeoutMs: num(values['deliver-timeout-ms'], 'deliver-timeout-ms', 10_000),
    dropEvery: num(values['drop-every'], 'drop-every', 0),
    moEveryMs: num(values['mo-every-ms'], 'mo-every-ms', 0),
    moTo: values['mo-to'] ?? '4470123',
    onEvent,
  });
  const port = await s.listen();
  process.stdout.write(`sluice sim: SMSC simulator listening on ${values.host ?? '127.0.0.1'}:${port}\n`);
  ready = true;
  for (const line of early.splice(0)) process.stdout.write(line);
  const timer = setInterval(() => process.stdout.write(`sim ${JSON.stringify(s.stats)}\n`), 10_000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  await s.close();
  return 0;
}

async function soakCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { minutes: { type: 'string' }, rate: { type: 'string' } } });
  const { soak } = await import('../tools/soak');
  const ok = await soak({ minutes: Number(values.minutes ?? 3), rate: Number(values.rate ?? 300), print: (l) => process.stdout.write(`${l}\n`) });
  return ok ? 0 : 1;
}

function onlyCase(v: string | undefined): 'gateway' | undefined {
  if (v === undefined || v === 'gateway') return v;
  throw new Error(`--only must be gateway (got "${v}")`);
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
      'gateway-processes': { type: 'string' },
      only: { type: 'string' },
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
      gatewayProcesses: num(values['gateway-processes'], 'gateway-processes', 2),
      only: onlyCase(values.only),
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
    case 'config-doc':
      return configDoc(rest);
    case 'push':
      return push(rest);
    case 'unpin':
      return unpin(rest);
    case 'bench':
      return bench(rest);
    case 'soak':
      return soakCommand(rest);
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
