import { compare, formatLoad, runLoad } from '../tools/bench';
import { RECEIPT_ID_FORMS, RECEIPTS_ON, SmscSimulator, type ReceiptIdForm, type ReceiptsOn, type SimEvent } from '../tools/sim';
import { UsageError, type Command } from './args';

const print = (line: string): void => void process.stdout.write(`${line}\n`);
const str = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;

/** `value` if it is one of `allowed`, else a {@link UsageError} naming the option. */
function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')} (got "${value}")`);
  return value as T;
}

export const sim: Command = {
  name: 'sim',
  synopsis: '[--port 2776] [--latency-ms 0] [--error-rate 0] [--dlr-delay-ms 100] [--one-bind] [--log-events] …',
  summary: 'an upstream SMSC simulator: acks submits, sends delivery receipts (sim --help lists every option)',
  options: {
    host: str,
    port: str,
    'latency-ms': str,
    'error-rate': str,
    'dlr-delay-ms': str,
    'dlr-stat': str,
    'system-id': str,
    password: str,
    'one-bind': flag,
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
    'log-events': flag,
  },
  usage: `usage: sluice sim [options]

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
`,
  async run(args) {
    const respId = oneOf('resp-id', args.string('resp-id') ?? 'hex', ['hex', 'decimal'] as const);
    const receiptId = oneOf<ReceiptIdForm>('receipt-id', args.string('receipt-id') ?? 'same', RECEIPT_ID_FORMS);
    const receiptsOn = oneOf<ReceiptsOn>('receipts-on', args.string('receipts-on') ?? 'carrier', RECEIPTS_ON);
    // Events wait until the listening line is out; one write per line, so lines never interleave.
    // A submit's line is written before its submit_sm_resp: to a file at once (a reader that got
    // the answer finds the line); to a pipe Node may hold it while the pipe is full.
    let ready = false;
    const early: string[] = [];
    const onEvent = args.flag('log-events')
      ? (e: SimEvent): void => {
          const line = `${JSON.stringify(e)}\n`;
          if (ready) process.stdout.write(line);
          else early.push(line);
        }
      : undefined;
    const host = args.string('host') ?? '127.0.0.1';
    const s = new SmscSimulator({
      oneBindPerSystemId: args.flag('one-bind'),
      host,
      port: args.number('port', 2776),
      latencyMs: args.number('latency-ms', 0),
      errorRate: args.number('error-rate', 0),
      dlrDelayMs: args.number('dlr-delay-ms', 100),
      dlrStat: args.string('dlr-stat'),
      systemId: args.string('system-id'),
      password: args.string('password'),
      respIdForm: respId,
      receiptIdForm: receiptId,
      earlyReceiptRate: args.number('early-receipts', 0),
      earlyRespDelayMs: args.number('early-resp-delay-ms', 50),
      resendUnansweredMs: args.number('resend-ms', 0),
      receiptsOn,
      resendMax: args.number('resend-max', 5),
      duplicateReceiptRate: args.number('duplicate-receipts', 0),
      deliverTimeoutMs: args.number('deliver-timeout-ms', 10_000),
      dropEvery: args.number('drop-every', 0),
      moEveryMs: args.number('mo-every-ms', 0),
      moTo: args.string('mo-to') ?? '4470123',
      onEvent,
    });
    const port = await s.listen();
    process.stdout.write(`sluice sim: SMSC simulator listening on ${host}:${port}\n`);
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
  },
};

export const bench: Command = {
  name: 'bench',
  synopsis: '[--port 2775] [--system-id demo] [--esmes 1] [--window 64] [--count N | --duration-ms 5000] [--dlr] | --compare …',
  summary: 'drive load at a gateway: accepted submit_sm/s, refusals by status, latency, DLR round trip; --compare: the benchmark',
  options: {
    compare: flag,
    host: str,
    port: str,
    'system-id': str,
    password: str,
    esmes: str,
    window: str,
    count: str,
    'duration-ms': str,
    idle: str,
    tenants: str,
    rounds: str,
    'gateway-processes': str,
    only: str,
    dlr: flag,
  },
  usage: `usage: sluice bench [options]
       sluice bench --compare [options]

Bind ESMEs to a running gateway and keep a window of submit_sm in flight on
each. It prints the submit_sm accepted per second (answered ESME_ROK), the
refused ones per status (ESME_RTHROTTLED, ESME_RSYSERR, …; never counted as
throughput), the latency of the accepted at p50, p90 and p99, and with --dlr
the delivery receipt round trip. A refused bind exits 1, naming its status.

  --host 127.0.0.1              the gateway's address
  --port 2775                   its SMPP port
  --system-id demo              bind as this system_id
  --password demo               with this password
  --esmes 1                     ESME sessions to bind
  --window 64                   submit_sm in flight per session
  --count N                     stop after N submits in all
  --duration-ms 5000            stop after this long (the default, unless --count is given)
  --dlr                         ask for delivery receipts and time their round trip

--compare runs the benchmark (npm run bench) instead, every figure in one run:
Sluice in-process and sandboxed vs a bare npm smpp echo server at window 1 and
64; forwarding through an outbound bind; durable store writes; the shipped
gateway vs a bare npm smpp relay with receipts; noisy neighbour, reload time,
tenancy and idle-session cost. Rates are of accepted submits.

  --compare                     run the benchmark
  --duration-ms 7500            per throughput case, split over the rounds
  --rounds 5                    rounds per throughput case (the servers take turns)
  --idle 1000                   idle bound sessions whose memory is measured
  --tenants 10000               configured tenants in the tenancy case (0: skip it)
  --gateway-processes 2         sandbox processes of the shipped gateway in its case
  --only gateway                run the gateway case alone

  -h, --help                    print this text
`,
  async run(args) {
    if (args.flag('compare')) {
      const only = args.string('only');
      if (only !== undefined && only !== 'gateway') throw new UsageError(`--only must be gateway (got "${only}")`);
      const figures = await compare({
        durationMs: args.number('duration-ms', 7500),
        rounds: args.number('rounds', 5),
        idleSessions: args.number('idle', 1000),
        tenants: args.number('tenants', 10_000),
        gatewayProcesses: args.number('gateway-processes', 2),
        only,
        print,
      });
      print(JSON.stringify(figures));
      return 0;
    }
    const window = args.number('window', 64);
    const count = args.string('count') !== undefined ? args.number('count', 0) : undefined;
    const r = await runLoad({
      host: args.string('host') ?? '127.0.0.1',
      port: args.number('port', 2775),
      systemId: args.string('system-id') ?? 'demo',
      password: args.string('password') ?? 'demo',
      esmes: args.number('esmes', 1),
      window,
      count,
      durationMs: args.string('duration-ms') !== undefined || count === undefined ? args.number('duration-ms', 5000) : undefined,
      dlr: args.flag('dlr'),
    });
    print(formatLoad(`window ${window}`, r));
    return 0;
  },
};

export const soak: Command = {
  name: 'soak',
  synopsis: '[--minutes 3] [--rate 300]',
  summary: 'the gateway under mixed load for a while; fails on growth or a lost message (npm run soak)',
  options: { minutes: str, rate: str },
  usage: `usage: sluice soak [options]

The gateway under mixed load for a while, every part a real process: the
shipped store-and-forward gateway (two simulated upstreams, one dropping its
connection every 700 messages), the echo tenant, and a hostile tenant whose
policy loops and allocates, with the gateway policy reloaded every 30 s. It
prints RSS, heap, handles and journal size as it goes, and exits 1 on a growth
trend or on a message answered ESME_ROK whose receipt never came.

  --minutes 3                   how long
  --rate 300                    gateway submits per second (the echo and hostile tenants take a fraction of it)
  -h, --help                    print this text
`,
  async run(args) {
    const { soak: run } = await import('../tools/soak');
    const ok = await run({ minutes: args.number('minutes', 3), rate: args.number('rate', 300), print });
    return ok ? 0 : 1;
  },
};

export const configDoc: Command = {
  name: 'config-doc',
  synopsis: '[-o FILE]',
  summary: 'the configuration reference (every key, its type, default and meaning), generated from the schema; npm run docs:config writes docs/configuration.md',
  options: { out: { type: 'string', short: 'o' } },
  usage: `usage: sluice config-doc [-o FILE]

The configuration reference, generated from the config schema: every key with
its type, default and meaning, and the rules of the file. Printed on stdout,
or written to FILE; \`npm run docs:config\` writes docs/configuration.md.

  -o, --out FILE                write it to FILE instead of stdout
  -h, --help                    print this text
`,
  async run(args) {
    const { renderConfigDoc } = await import('../tools/config-doc');
    const text = renderConfigDoc();
    const out = args.string('out');
    if (out === undefined) {
      process.stdout.write(text);
      return 0;
    }
    const { writeFileSync } = await import('node:fs');
    writeFileSync(out, text);
    print(`sluice config-doc: wrote ${out}`);
    return 0;
  },
};
