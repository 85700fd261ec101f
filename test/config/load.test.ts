import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { isSluiceError, SluiceError } from '../../src/errors';
import {
  ConfigError,
  configSchema,
  expandString,
  loadConfig,
  parseChainStep,
  parseConfig,
  parseListenAddress,
  type SluiceConfig,
} from '../../src/config';

// The compiled test may live outside the repository (any outDir), so look
// for the repository from here first, then from the working directory.
function findRepoRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = path.resolve(start);
    for (;;) {
      const pkg = path.join(dir, 'package.json');
      if (fs.existsSync(pkg)) {
        try {
          if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'sluice') return dir;
        } catch {
          // not ours; keep walking
        }
      }
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error('cannot find the sluice repository root');
}

const REPO = findRepoRoot();
const FILE = 'config/sluice.yaml';

function parse(text: string, env: NodeJS.ProcessEnv = {}, cwd?: string): SluiceConfig {
  return parseConfig(text, cwd === undefined ? { file: FILE, env } : { file: FILE, env, cwd });
}

/** Parse text that must fail; return the error's message after checking its class and code. */
function errorOf(text: string, env: NodeJS.ProcessEnv = {}, cwd?: string): string {
  try {
    parse(text, env, cwd);
  } catch (err) {
    assert.ok(isSluiceError(err, 'SLUICE_ERR_CONFIG'), `expected SLUICE_ERR_CONFIG, got ${String(err)}`);
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail('expected the configuration to be rejected');
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-config-'));
}

const BIND = '{ name: up, host: 127.0.0.1, port: 2776, system_id: acme }';

describe('defaults', () => {
  test('an empty file yields every default', () => {
    const cfg = parse('');
    assert.deepEqual(cfg, {
      server: {
        bind_address: '0.0.0.0',
        port: 2775,
        session_init_timer_ms: 5000,
        enquire_link_timer_ms: 30000,
        inactivity_timer_ms: 300000,
        response_timer_ms: 30000,
        frame_timeout_ms: 10000,
        hold_ttl_ms: 86400000,
        max_msg_per_sec: 0,
        throttle_action: 'pace',
        window: 64,
        max_pdu_bytes: 16384,
        admission: {
          max_connections: 10000,
          max_connections_per_ip: 200,
          max_sessions_per_system_id: 50,
          bind_failures_per_ip: 20,
          bind_failures_per_system_id: 5,
          bind_failure_window_ms: 300000,
          bind_lockout_ms: 900000,
          bind_failure_delay_ms: 250,
          bind_failures_per_connection: 3,
          log_lines_per_minute: 60,
        },
      },
      // The default's relative path, resolved as one written in the file is (against cwd here).
      cache: { url: `sqlite://${path.join(process.cwd(), 'data/cache.sqlite')}`, lease_ttl_ms: 15000 },
      sandbox: { processes: 2, inline_entry_ms: 10 },
      admin: { listen: '127.0.0.1:8075' },
      log: { level: 'info' },
      tenants: [],
    });
  });

  test('tenant limits, binds and routing are filled even when absent', () => {
    const cfg = parse(`tenants:\n  - id: acme\n    binds: [${BIND}]\n`);
    const t = cfg.tenants[0];
    assert.ok(t);
    assert.deepEqual(t.system_ids, []);
    assert.deepEqual(t.limits, {
      memory_mb: 64,
      cpu_ms_per_s: 250,
      handler_timeout_ms: 50,
      handler_deadline_ms: 5000,
      max_cache_mb: 64,
      max_value_kb: 64,
      max_script_kb: 512,
      max_log_per_s: 100,
      max_pending: 1000,
      max_sessions: 500,
    });
    assert.deepEqual(t.routing, { default_chain: [], rules: [] });
    assert.deepEqual(t.binds[0], {
      name: 'up',
      host: '127.0.0.1',
      port: 2776,
      system_id: 'acme',
      password: '',
      system_type: '',
      bind_type: 'transceiver',
      max_msg_per_sec: 0,
      window: 10,
      tls: false,
      addr_ton: 0,
      addr_npi: 0,
      address_range: '',
      single: false,
      receipt_id: 'auto',
    });
    assert.equal(t.policy, undefined);
    assert.equal(t.upload_token, undefined);
  });

  test('a partial limits mapping keeps the rest of the defaults', () => {
    const cfg = parse('tenants:\n  - id: a\n    limits: { memory_mb: 128 }\n');
    assert.equal(cfg.tenants[0]?.limits.memory_mb, 128);
    assert.equal(cfg.tenants[0]?.limits.cpu_ms_per_s, 250);
  });

  test('bind tls: true stays true; a mapping gets reject_unauthorized: true', () => {
    const cfg = parse(
      `tenants:\n  - id: a\n    binds:\n` +
        `      - { name: x, host: h, port: 1, system_id: s, tls: true }\n` +
        `      - { name: y, host: h, port: 1, system_id: s, tls: { servername: smsc.example } }\n`,
    );
    assert.equal(cfg.tenants[0]?.binds[0]?.tls, true);
    assert.deepEqual(cfg.tenants[0]?.binds[1]?.tls, { servername: 'smsc.example', reject_unauthorized: true });
  });

  test('an empty value (or ~) means "not set": the default applies', () => {
    const cfg = parse('server:\n  port:\n  window: ~\ntenants:\n');
    assert.equal(cfg.server.port, 2775);
    assert.equal(cfg.server.window, 64);
    assert.deepEqual(cfg.tenants, []);
  });

  test('digits keep their leading zeros (password, prefix, system_id)', () => {
    const cfg = parse(
      'tenants:\n  - id: a\n    system_ids: [007]\n' +
        '    binds: [{ name: up, host: h, port: 1, system_id: s, password: 0123 }]\n' +
        '    routing: { rules: [{ prefix: 0031, name: nl, chain: [reject] }] }\n',
    );
    const t = cfg.tenants[0];
    assert.deepEqual(t?.system_ids, ['007']);
    assert.equal(t?.binds[0]?.password, '0123');
    assert.equal(t?.routing.rules[0]?.prefix, '0031');
  });

  test('server.port 0 (ephemeral) is accepted, and so are tls and server both on 0', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'c.pem'), 'x');
    const cfg = parse('server:\n  port: 0\n  tls: { port: 0, cert_path: c.pem, key_path: c.pem }\n', {}, dir);
    assert.equal(cfg.server.port, 0);
    assert.equal(cfg.server.tls?.port, 0);
    assert.equal(cfg.server.tls?.request_cert, false);
  });

  test('an empty admin token or upload token is treated as not set', () => {
    const cfg = parse(
      'admin: { token: "${T:-}" }\ntenants:\n  - id: a\n    upload_token: "${U:-}"\n',
    );
    assert.equal('token' in cfg.admin, false);
    assert.equal('upload_token' in (cfg.tenants[0] ?? {}), false);
  });
});

describe('immutability', () => {
  test('the result is deep-frozen: assignment throws in strict mode', () => {
    const cfg = parse(`tenants:\n  - id: acme\n    system_ids: [a]\n    binds: [${BIND}]\n`);
    assert.ok(Object.isFrozen(cfg));
    assert.throws(() => {
      (cfg.server as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (cfg.tenants[0]?.limits as { memory_mb: number }).memory_mb = 1;
    }, TypeError);
    assert.throws(() => {
      (cfg.tenants[0]?.system_ids as string[]).push('b');
    }, TypeError);
    assert.throws(() => {
      (cfg.tenants[0]?.binds[0] as { host: string }).host = 'evil';
    }, TypeError);
    assert.throws(() => {
      (cfg as { extra?: number }).extra = 1;
    }, TypeError);
  });

  test('parsing twice gives independent results (defaults are not shared)', () => {
    const a = parse('tenants:\n  - id: a\n');
    const b = parse('tenants:\n  - id: b\n');
    assert.notEqual(a.tenants[0]?.limits, b.tenants[0]?.limits);
    assert.notEqual(a.server, b.server);
  });

  test('the exported schema is frozen', () => {
    assert.ok(Object.isFrozen(configSchema));
    assert.ok(Object.isFrozen((configSchema.properties as Record<string, object>).server));
  });
});

describe('environment expansion', () => {
  test('${VAR} and ${VAR:-default}, unset or empty', () => {
    const cfg = parse(
      'server:\n  bind_address: ${ADDR}\ncache:\n  url: ${CACHE:-memory://}\nadmin:\n  listen: ${LISTEN:-127.0.0.1:9000}\n',
      { ADDR: '127.0.0.2', LISTEN: '' },
    );
    assert.equal(cfg.server.bind_address, '127.0.0.2');
    assert.equal(cfg.cache.url, 'memory://');
    assert.equal(cfg.admin.listen, '127.0.0.1:9000'); // set but empty: the default too
  });

  test('a set-but-empty ${VAR} expands to the empty string', () => {
    const cfg = parse('tenants:\n  - id: a\n    policy: "p/${EMPTY}x.ts"\n', { EMPTY: '' });
    assert.equal(cfg.tenants[0]?.policy, path.resolve('p/x.ts'));
  });

  test('several references and literal text in one value', () => {
    const cfg = parse('cache:\n  url: redis://${H}:${P:-6379}/0\n', { H: 'cache.local' });
    assert.equal(cfg.cache.url, 'redis://cache.local:6379/0');
  });

  test('$${ is a literal ${, and a lone $ is left alone', () => {
    const cfg = parse(
      'tenants:\n  - id: a\n    binds: [{ name: up, host: h, port: 1, system_id: "$${X}", password: "a$b$" }]\n',
      { X: 'nope' },
    );
    assert.equal(cfg.tenants[0]?.binds[0]?.system_id, '${X}');
    assert.equal(cfg.tenants[0]?.binds[0]?.password, 'a$b$');
  });

  test('expanded strings are coerced to numbers and booleans', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'c.pem'), 'x');
    const cfg = parse(
      'server:\n  port: ${PORT}\n  max_msg_per_sec: ${RATE:-12.5}\n' +
        '  tls: { port: "${TLS_PORT}", cert_path: c.pem, key_path: c.pem, request_cert: "${RC}" }\n' +
        'tenants:\n  - id: a\n    limits: { memory_mb: "${MEM:-128}" }\n' +
        '    binds: [{ name: up, host: h, port: "${UP}", system_id: s, tls: "${UP_TLS}", single: "${SINGLE:-true}" }]\n',
      { PORT: '2776', TLS_PORT: '3776', RC: 'true', UP: '2777', UP_TLS: 'false' },
      dir,
    );
    assert.equal(cfg.server.port, 2776);
    assert.equal(cfg.server.max_msg_per_sec, 12.5);
    assert.equal(cfg.server.tls?.port, 3776);
    assert.equal(cfg.server.tls?.request_cert, true);
    assert.equal(cfg.tenants[0]?.limits.memory_mb, 128);
    assert.equal(cfg.tenants[0]?.binds[0]?.port, 2777);
    assert.equal(cfg.tenants[0]?.binds[0]?.tls, false);
    assert.equal(cfg.tenants[0]?.binds[0]?.single, true);
  });

  test('an expanded value still has to be valid', () => {
    const msg = errorOf('server:\n  port: ${PORT}\n', { PORT: 'http' });
    assert.match(msg, /^config\/sluice\.yaml: server\.port: must be an integer \(got "http"\)$/);
  });

  test('an unset ${VAR} names the key path and the variable', () => {
    const msg = errorOf('tenants:\n  - id: a\n    binds:\n      - { name: up, host: "${UP_HOST}", port: 1, system_id: s }\n');
    assert.match(msg, /config\/sluice\.yaml: tenants\[0\]\.binds\[0\]\.host: environment variable UP_HOST is not set/);
    // Reported once: not also as a wrong value.
    assert.equal(msg.split('\n').length, 1);
  });

  test('every unset variable is reported', () => {
    const msg = errorOf('server:\n  bind_address: ${A}\ncache:\n  url: ${B}\n');
    assert.match(msg, /server\.bind_address: environment variable A is not set/);
    assert.match(msg, /cache\.url: environment variable B is not set/);
  });

  test('keys are never expanded', () => {
    const msg = errorOf('server:\n  ${KEY}: 1\n', { KEY: 'port' });
    assert.match(msg, /server\["\$\{KEY\}"\]: unknown key/);
  });

  test('malformed references are errors, not literal text', () => {
    assert.match(errorOf('cache:\n  url: "${1X}"\n'), /cache\.url: invalid reference "\$\{1X\}"/);
    assert.match(errorOf('cache:\n  url: "memory://${X"\n'), /cache\.url: unterminated "\$\{"/);
    assert.match(errorOf('cache:\n  url: "${X-d}"\n'), /cache\.url: invalid reference "\$\{X-d\}"/);
    assert.match(errorOf('cache:\n  url: "${X:-${Y}}"\n'), /cache\.url: nested references are not supported/);
  });

  test('expandString: unit cases', () => {
    const env = { A: 'x', E: '' };
    assert.deepEqual(expandString('${A}${A}', env), { ok: true, value: 'xx' });
    assert.deepEqual(expandString('${E:-d}', env), { ok: true, value: 'd' });
    assert.deepEqual(expandString('${N:-a b:c}', env), { ok: true, value: 'a b:c' });
    assert.deepEqual(expandString('$$${A}', env), { ok: true, value: '$${A}' });
    assert.deepEqual(expandString('$A $', env), { ok: true, value: '$A $' });
    assert.equal(expandString('${N}', env).ok, false);
  });

  test('expandString: escaping every "${" as "$${" round-trips any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('$', '{', '}', 'a', ':', '-', '_') }), (s) => {
        const r = expandString(s.split('${').join('$${'), {});
        assert.deepEqual(r, { ok: true, value: s });
      }),
      { numRuns: 500 },
    );
  });
});

describe('unknown keys', () => {
  const cases: [string, string, RegExp][] = [
    ['top level', 'servr: {}\n', /config\/sluice\.yaml: servr: unknown key \(allowed: server, cache, sandbox, admin, log, tenants\); did you mean "server"\?/],
    [
      'server',
      'server:\n  prot: 2775\n',
      /^config\/sluice\.yaml: server\.prot: unknown key \(allowed: bind_address, port, session_init_timer_ms, [^)]*\); did you mean "port"\?$/,
    ],
    ['server.tls', 'server:\n  tls: { port: 1, cert_path: a, key_path: b, cert: c }\n', /server\.tls\.cert: unknown key \(allowed: port, bind_address, cert_path, key_path, ca_path, request_cert\)/],
    ['cache', 'cache: { uri: memory:// }\n', /cache\.uri: unknown key \(allowed: url, lease_ttl_ms\); did you mean "url"\?/],
    ['tenant', 'tenants:\n  - { id: a, systemids: [x] }\n', /tenants\[0\]\.systemids: unknown key \(allowed: id, policy, system_ids, /],
    ['limits', 'tenants:\n  - { id: a, limits: { memory: 64 } }\n', /tenants\[0\]\.limits\.memory: unknown key \(allowed: memory_mb, /],
    ['bind', `tenants:\n  - id: a\n    binds:\n      - ${BIND}\n      - { name: b, host: h, port: 1, system_id: s, passwd: x }\n`, /tenants\[0\]\.binds\[1\]\.passwd: unknown key \(allowed: name, host, port, .*\); did you mean "password"\?/],
    ['bind tls', 'tenants:\n  - id: a\n    binds: [{ name: b, host: h, port: 1, system_id: s, tls: { verify: false } }]\n', /tenants\[0\]\.binds\[0\]\.tls\.verify: unknown key \(allowed: ca_path, reject_unauthorized, servername\)/],
    ['routing rule', 'tenants:\n  - id: a\n    routing: { rules: [{ prefix: "1", name: x, chain: [queue], to: y }] }\n', /tenants\[0\]\.routing\.rules\[0\]\.to: unknown key \(allowed: prefix, name, chain\)/],
    ['__proto__', 'tenants:\n  - { id: a, __proto__: { x: 1 } }\n', /tenants\[0\]\.__proto__: unknown key/],
  ];
  for (const [where, text, re] of cases) {
    test(`rejected in ${where}`, () => {
      assert.match(errorOf(text), re);
    });
  }
});

describe('wrong types, ranges and enums', () => {
  test('the documented example message', () => {
    const msg = errorOf(`tenants:\n  - id: a\n    binds:\n      - ${BIND}\n      - { name: b, host: h, port: 70000, system_id: s }\n`);
    assert.equal(msg, 'config/sluice.yaml: tenants[0].binds[1].port: must be <= 65535 (got 70000)');
  });

  const cases: [string, string, RegExp][] = [
    ['integer', 'server:\n  window: abc\n', /server\.window: must be an integer \(got "abc"\)/],
    ['not a fraction', 'server:\n  port: 27.5\n', /server\.port: must be an integer \(got "27\.5"\)/],
    ['minimum', 'server:\n  window: 0\n', /server\.window: must be >= 1 \(got 0\)/],
    ['negative rate', 'server:\n  max_msg_per_sec: -1\n', /server\.max_msg_per_sec: must be >= 0 \(got -1\)/],
    ['finite rate', 'server:\n  max_msg_per_sec: Infinity\n', /server\.max_msg_per_sec: must be a finite number \(got Infinity\)/],
    ['finite integer', 'server:\n  port: "-Infinity"\n', /server\.port: must be a finite number \(got -Infinity\)/],
    ['rate ceiling', 'server:\n  max_msg_per_sec: 2e6\n', /server\.max_msg_per_sec: must be <= 1000000 \(got 2000000\)/],
    ['max_pdu_bytes', 'server:\n  max_pdu_bytes: 10\n', /server\.max_pdu_bytes: must be >= 64 \(got 10\)/],
    ['lease ttl', 'cache:\n  lease_ttl_ms: 50\n', /cache\.lease_ttl_ms: must be >= 100 \(got 50\)/],
    ['timer beyond setTimeout', 'server:\n  response_timer_ms: 3000000000\n', /server\.response_timer_ms: must be <= 2147483647/],
    ['enum lists the allowed values', 'server:\n  throttle_action: drop\n', /server\.throttle_action: must be one of: pace, reject \(got "drop"\)/],
    ['log level', 'log: { level: verbose }\n', /log\.level: must be one of: fatal, error, warn, info, debug, trace, silent \(got "verbose"\)/],
    ['mapping expected', 'server: 5\n', /server: must be a mapping \(got "5"\)/],
    ['list expected', 'tenants: { id: a }\n', /tenants: must be a list \(got a mapping\)/],
    ['boolean', 'server:\n  tls: { port: 1, cert_path: a, key_path: b, request_cert: yes }\n', /server\.tls\.request_cert: must be a boolean \(true or false\) \(got "yes"\)/],
    ['required', 'server:\n  tls: { port: 3775, cert_path: a }\n', /server\.tls\.key_path: is required/],
    ['cache url scheme', 'cache: { url: "postgres://x" }\n', /cache\.url: must be a URL starting with sqlite:\/\/, memory:\/\/, redis:\/\/ or rediss:\/\/ \(got "postgres:\/\/x"\)/],
    ['sandbox processes', 'sandbox: { processes: 65 }\n', /sandbox\.processes: must be <= 64 \(got 65\)/],
    ['admin listen', 'admin: { listen: "localhost" }\n', /admin\.listen: must be host:port .* \(got "localhost"\)/],
    ['admin listen port', 'admin: { listen: "127.0.0.1:70000" }\n', /admin\.listen: must be host:port/],
    ['tenant id', 'tenants:\n  - id: "no spaces"\n', /tenants\[0\]\.id: must be 1 to 63 letters, digits, '_' or '-', starting with a letter or digit \(got "no spaces"\)/],
    ['tenant id required', 'tenants:\n  - { policy: p.ts }\n', /tenants\[0\]\.id: is required/],
    ['system_id length', 'tenants:\n  - { id: a, system_ids: [abcdefghijklmnop] }\n', /tenants\[0\]\.system_ids\[0\]: must be 1 to 15 characters \(the SMPP 3\.4 limit for system_id\) \(got "abcdefghijklmnop"\)/],
    ['memory_mb', 'tenants:\n  - { id: a, limits: { memory_mb: 4 } }\n', /tenants\[0\]\.limits\.memory_mb: must be >= 8 \(got 4\)/],
    ['cpu_ms_per_s', 'tenants:\n  - { id: a, limits: { cpu_ms_per_s: 1001 } }\n', /tenants\[0\]\.limits\.cpu_ms_per_s: must be <= 1000 \(got 1001\)/],
    ['bind_type', 'tenants:\n  - id: a\n    binds: [{ name: b, host: h, port: 1, system_id: s, bind_type: trx }]\n', /tenants\[0\]\.binds\[0\]\.bind_type: must be one of: transceiver, transmitter, receiver \(got "trx"\)/],
    ['bind port 0', 'tenants:\n  - id: a\n    binds: [{ name: b, host: h, port: 0, system_id: s }]\n', /tenants\[0\]\.binds\[0\]\.port: must be >= 1 \(got 0\)/],
    ['bind name', 'tenants:\n  - id: a\n    binds: [{ name: "-x", host: h, port: 1, system_id: s }]\n', /tenants\[0\]\.binds\[0\]\.name: must be 1 to 64 letters/],
    ['bind tls', 'tenants:\n  - id: a\n    binds: [{ name: b, host: h, port: 1, system_id: s, tls: on }]\n', /tenants\[0\]\.binds\[0\]\.tls: must be a boolean \(true or false\) or a mapping \(got "on"\)/],
    ['chain step', 'tenants:\n  - id: a\n    routing: { default_chain: [drop] }\n', /tenants\[0\]\.routing\.default_chain\[0\]: must be "bind:<name>", "queue", "reject" or "reject:<ESME status>" \(got "drop"\)/],
    ['reject status', 'tenants:\n  - id: a\n    routing: { default_chain: ["reject:ESME_RNOPE"] }\n', /tenants\[0\]\.routing\.default_chain\[0\]: "ESME_RNOPE" is not an SMPP command_status name/],
    ['receipt id form', 'tenants:\n  - id: a\n    binds: [{ name: b, host: h, port: 1, system_id: s, receipt_id: octal }]\n', /tenants\[0\]\.binds\[0\]\.receipt_id: must be one of/],
    ['prefix digits', 'tenants:\n  - id: a\n    routing: { rules: [{ prefix: "+31", name: nl, chain: [queue] }] }\n', /tenants\[0\]\.routing\.rules\[0\]\.prefix: must be 1 to 20 digits/],
    ['value over cache quota', 'tenants:\n  - { id: a, limits: { max_cache_mb: 1, max_value_kb: 2048 } }\n', /tenants\[0\]\.limits\.max_value_kb: must be <= max_cache_mb × 1024 \(1024\) \(got 2048\)/],
  ];
  for (const [what, text, re] of cases) {
    test(what, () => {
      assert.match(errorOf(text), re);
    });
  }

  test('password longer than 8 characters says why, without the value', () => {
    const msg = errorOf('tenants:\n  - id: a\n    binds: [{ name: b, host: h, port: 1, system_id: s, password: hunter2hunter2 }]\n');
    assert.equal(
      msg,
      'config/sluice.yaml: tenants[0].binds[0].password: must be at most 8 characters (the SMPP 3.4 limit for password) (got <redacted>)',
    );
  });

  test('the admin address accepts IPv4, hostnames and bracketed IPv6', () => {
    assert.equal(parse('admin: { listen: "[::1]:8075" }\n').admin.listen, '[::1]:8075');
    assert.equal(parse('admin: { listen: "localhost:0" }\n').admin.listen, 'localhost:0');
    assert.deepEqual(parseListenAddress('[::1]:8075'), { host: '::1', port: 8075 });
    assert.deepEqual(parseListenAddress('0.0.0.0:65535'), { host: '0.0.0.0', port: 65535 });
    assert.equal(parseListenAddress('::1:8075'), undefined);
    assert.equal(parseListenAddress('[nope]:1'), undefined);
    assert.equal(parseListenAddress('host:65536'), undefined);
    assert.equal(parseListenAddress('host:'), undefined);
  });

  test('several errors are all reported, one per line, in file order', () => {
    const msg = errorOf(
      'server:\n  port: 70000\n  throttle_action: x\ntenants:\n  - id: a\n    limits: { memory_mb: 1 }\nadmin: { listen: nope }\n',
    );
    const lines = msg.split('\n');
    assert.equal(lines.length, 4);
    assert.ok(lines.every((l) => l.startsWith('config/sluice.yaml: ')));
    assert.deepEqual(
      lines.map((l) => l.split(': ')[1]),
      ['server.port', 'server.throttle_action', 'tenants[0].limits.memory_mb', 'admin.listen'],
    );
    const err = (() => {
      try {
        parse('server:\n  port: 70000\n  window: 0\n');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError && err instanceof SluiceError);
    assert.equal(err.file, FILE);
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['server.port', 'server.window'],
    );
  });
});

describe('YAML syntax', () => {
  test('a syntax error names file:line:column', () => {
    const msg = errorOf('server:\n  port: 2775\n tenants: [\n');
    assert.match(msg, /^config\/sluice\.yaml:3:\d+: /m);
  });

  test('an unterminated flow sequence', () => {
    assert.match(errorOf('tenants: [a,\nserver: {}\n'), /^config\/sluice\.yaml:2:1: .*\]/);
  });

  test('duplicate keys are an error with their position', () => {
    assert.match(errorOf('server:\n  port: 1\n  port: 2\n'), /^config\/sluice\.yaml:3:3: Map keys must be unique/);
  });

  test('a cascade of syntax errors is cut short', () => {
    const msg = errorOf('a: [\n'.repeat(3) + '{{{{{{{{\n'.repeat(5));
    assert.ok(msg.split('\n').length <= 6);
  });

  test('the top level must be a mapping', () => {
    assert.match(errorOf('- a\n- b\n'), /config\/sluice\.yaml: \(top level\): must be a mapping \(got a list\)/);
  });

  test('anchors, aliases and merge keys work', () => {
    const cfg = parse(
      'tenants:\n  - id: a\n    binds:\n' +
        '      - &up { name: one, host: h, port: 1, system_id: s, window: 5 }\n' +
        '      - { <<: *up, name: two }\n',
    );
    assert.equal(cfg.tenants[0]?.binds[1]?.name, 'two');
    assert.equal(cfg.tenants[0]?.binds[1]?.window, 5);
  });
});

describe('cross-checks', () => {
  test('duplicate tenant id (case-insensitive)', () => {
    assert.match(
      errorOf('tenants:\n  - id: acme\n  - id: other\n  - id: ACME\n'),
      /tenants\[2\]\.id: duplicate tenant id "ACME" \(already used at tenants\[0\]\.id/,
    );
  });

  test('a system_id belongs to one tenant only', () => {
    const msg = errorOf('tenants:\n  - { id: a, system_ids: [x, y] }\n  - { id: b, system_ids: [z, y] }\n');
    assert.match(msg, /tenants\[1\]\.system_ids\[1\]: system_id "y" already belongs to tenant "a" \(tenants\[0\]\.system_ids\[1\]\)/);
  });

  test('a system_id listed twice in one tenant', () => {
    assert.match(errorOf('tenants:\n  - { id: a, system_ids: [x, x] }\n'), /tenants\[0\]\.system_ids\[1\]: duplicate system_id "x"/);
  });

  test('duplicate bind name within a tenant; same name in two tenants is fine', () => {
    assert.match(
      errorOf(`tenants:\n  - id: a\n    binds: [${BIND}, ${BIND}]\n`),
      /tenants\[0\]\.binds\[1\]\.name: duplicate bind name "up" in tenant "a"/,
    );
    const cfg = parse(`tenants:\n  - { id: a, binds: [${BIND}] }\n  - { id: b, binds: [${BIND}] }\n`);
    assert.equal(cfg.tenants.length, 2);
  });

  test('binds of one upstream account (same host, port and system_id, or one `account`) must read receipt ids alike', () => {
    const two = (a: string, b: string): string => `tenants:\n  - id: a\n    binds:\n      - ${a}\n      - ${b}\n`;
    assert.match(
      errorOf(two('{ name: b1, host: h, port: 1, system_id: s }', '{ name: b2, host: h, port: 1, system_id: s, receipt_id: hex }')),
      /tenants\[0\]\.binds\[1\]\.receipt_id: binds of one upstream account \("h:1\/s"\) must read receipt ids alike: "hex" here, "auto" at tenants\[0\]\.binds\[0\]\.receipt_id/,
    );
    assert.match(
      errorOf(two('{ name: b1, host: h1, port: 1, system_id: s, account: agg }', '{ name: b2, host: h2, port: 2, system_id: t, account: agg, receipt_id: exact }')),
      /binds\[1\]\.receipt_id: binds of one upstream account \("agg"\)/,
    );
    // Other accounts may differ.
    const cfg = parse(two('{ name: b1, host: h, port: 1, system_id: s }', '{ name: b2, host: h, port: 2, system_id: s, receipt_id: hex }'));
    assert.equal(cfg.tenants[0]!.binds[1]!.receipt_id, 'hex');
  });

  test('a routing chain naming a bind the tenant does not have', () => {
    const text =
      `tenants:\n  - id: a\n    binds: [${BIND}]\n` +
      `  - id: b\n    binds: [{ name: other, host: h, port: 1, system_id: s }]\n` +
      '    routing:\n      default_chain: ["bind:other", queue]\n' +
      '      rules: [{ prefix: "31", name: nl, chain: ["bind:up", reject] }]\n';
    assert.equal(
      errorOf(text),
      'config/sluice.yaml: tenants[1].routing.rules[0].chain[0]: bind "up" is not a bind of tenant "b" (its binds: other)',
    );
  });

  test('routing chain steps parse', () => {
    assert.deepEqual(parseChainStep('bind:aggregator-eu'), { kind: 'bind', bind: 'aggregator-eu' });
    assert.deepEqual(parseChainStep('queue'), { kind: 'queue' });
    assert.deepEqual(parseChainStep('reject'), { kind: 'reject' });
    assert.deepEqual(parseChainStep('reject:ESME_RINVDSTADR'), { kind: 'reject', status: 'ESME_RINVDSTADR' });
    assert.equal(parseChainStep('drop'), undefined);
  });

  test('a routing prefix listed twice', () => {
    assert.match(
      errorOf('tenants:\n  - id: a\n    routing: { rules: [{ prefix: "31", name: x, chain: [queue] }, { prefix: "31", name: y, chain: [reject] }] }\n'),
      /tenants\[0\]\.routing\.rules\[1\]\.prefix: duplicate prefix "31"/,
    );
  });

  test('server.tls.port must differ from server.port', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'c.pem'), 'x');
    assert.match(
      errorOf('server:\n  port: 2775\n  tls: { port: 2775, cert_path: c.pem, key_path: c.pem }\n', {}, dir),
      /server\.tls\.port: must differ from server\.port \(both are 2775\)/,
    );
  });

  test('admin.listen must not take the SMPP port', () => {
    assert.match(errorOf('admin: { listen: "127.0.0.1:2775" }\n'), /admin\.listen: port 2775 is already taken by server\.port/);
    // Different addresses on one port are fine.
    parse('server: { bind_address: 10.0.0.1 }\nadmin: { listen: "127.0.0.1:2775" }\n');
  });
});

describe('files', () => {
  test('a missing TLS certificate is reported with its resolved path', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'smpp.key'), 'k');
    const msg = errorOf('server:\n  tls: { port: 3775, cert_path: certs/smpp.crt, key_path: smpp.key }\n', {}, dir);
    assert.equal(
      msg,
      `config/sluice.yaml: server.tls.cert_path: file "certs/smpp.crt" (${path.join(dir, 'certs/smpp.crt')}) not found`,
    );
  });

  test('present TLS files pass; relative paths resolve against cwd and come back absolute, absolute ones as they are', () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'certs'));
    for (const f of ['smpp.crt', 'smpp.key', 'ca.crt']) fs.writeFileSync(path.join(dir, 'certs', f), 'x');
    const ca = path.join(dir, 'certs', 'ca.crt');
    const cfg = parse(
      'server:\n  tls: { port: 3775, cert_path: certs/smpp.crt, key_path: certs/smpp.key, ca_path: certs/ca.crt, request_cert: true }\n' +
        `tenants:\n  - id: a\n    binds: [{ name: up, host: h, port: 1, system_id: s, tls: { ca_path: "${ca}" } }]\n`,
      {},
      dir,
    );
    assert.equal(cfg.server.tls?.cert_path, path.join(dir, 'certs/smpp.crt'));
    assert.deepEqual(cfg.tenants[0]?.binds[0]?.tls, { ca_path: ca, reject_unauthorized: true });
  });

  test('a directory is not a certificate; a bind CA bundle must exist', () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'certs'));
    fs.writeFileSync(path.join(dir, 'k'), 'x');
    const msg = errorOf(
      'server:\n  tls: { port: 3775, cert_path: certs, key_path: k }\n' +
        'tenants:\n  - id: a\n    binds: [{ name: up, host: h, port: 1, system_id: s, tls: { ca_path: ca.pem } }]\n',
      {},
      dir,
    );
    assert.match(msg, /server\.tls\.cert_path: "certs" .* is not a file/);
    assert.match(msg, /tenants\[0\]\.binds\[0\]\.tls\.ca_path: file "ca\.pem" .* not found/);
  });

  test('loadConfig on a missing file names the file', () => {
    const file = path.join(tmpDir(), 'nope.yaml');
    assert.throws(
      () => loadConfig(file, {}),
      (err: unknown) => isSluiceError(err, 'SLUICE_ERR_CONFIG') && err.message === `${file}: file not found`,
    );
  });
});

describe('relative paths', () => {
  /** A config dir with a policy, TLS files and a CA bundle, as an operator lays one out. */
  function layout(): { dir: string; file: string } {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'certs'));
    fs.mkdirSync(path.join(dir, 'policies'));
    for (const f of ['certs/smpp.crt', 'certs/smpp.key', 'certs/ca.crt', 'certs/up-ca.crt', 'policies/acme.ts']) fs.writeFileSync(path.join(dir, f), 'x');
    const file = path.join(dir, 'sluice.yaml');
    fs.writeFileSync(
      file,
      'server:\n  tls: { port: 3775, cert_path: certs/smpp.crt, key_path: "${KEY:-certs/smpp.key}", ca_path: ./certs/ca.crt }\n' +
        'cache: { url: "sqlite://data/journal.sqlite" }\n' +
        'tenants:\n  - id: acme\n    policy: policies/acme.ts\n' +
        '    binds: [{ name: up, host: h, port: 1, system_id: s, tls: { ca_path: certs/up-ca.crt } }]\n',
    );
    return { dir, file };
  }

  test("loadConfig resolves every path in the file against the file's directory, not the working directory", () => {
    const { dir, file } = layout();
    assert.notEqual(process.cwd(), dir);
    // Named relative to the working directory, as `sluice start -c` gets it.
    const cfg = loadConfig(path.relative(process.cwd(), file), {});
    assert.equal(cfg.server.tls?.cert_path, path.join(dir, 'certs/smpp.crt'));
    assert.equal(cfg.server.tls?.key_path, path.join(dir, 'certs/smpp.key'), 'a default from ${…} too');
    assert.equal(cfg.server.tls?.ca_path, path.join(dir, 'certs/ca.crt'));
    assert.equal(cfg.cache.url, `sqlite://${path.join(dir, 'data/journal.sqlite')}`);
    assert.equal(cfg.tenants[0]?.policy, path.join(dir, 'policies/acme.ts'));
    assert.deepEqual(cfg.tenants[0]?.binds[0]?.tls, { ca_path: path.join(dir, 'certs/up-ca.crt'), reject_unauthorized: true });
  });

  test("the default sqlite file is the config file's directory's too", () => {
    const dir = tmpDir();
    const file = path.join(dir, 'empty.yaml');
    fs.writeFileSync(file, '');
    assert.equal(loadConfig(file, {}).cache.url, `sqlite://${path.join(dir, 'data/cache.sqlite')}`);
  });

  test('absolute paths, sqlite://:memory: and the other stores are taken as written', () => {
    const dir = tmpDir();
    const policy = path.join(dir, 'p.ts');
    fs.writeFileSync(policy, 'x');
    const file = path.join(dir, 'c.yaml');
    const withUrl = (url: string): SluiceConfig => {
      fs.writeFileSync(file, `cache: { url: "${url}" }\ntenants: [{ id: a, policy: "${policy}" }]\n`);
      return loadConfig(file, {});
    };
    assert.equal(withUrl('sqlite:///var/lib/sluice/j.sqlite').tenants[0]?.policy, policy);
    assert.equal(withUrl('sqlite:///var/lib/sluice/j.sqlite').cache.url, 'sqlite:///var/lib/sluice/j.sqlite');
    for (const url of ['sqlite://:memory:', 'memory://', 'redis://cache.local:6379/0', 'rediss://u:p@cache.local']) assert.equal(withUrl(url).cache.url, url);
  });

  test("a missing file is reported as written, with where it was looked for (next to the config)", () => {
    const dir = tmpDir();
    const file = path.join(dir, 'c.yaml');
    fs.writeFileSync(file, 'server:\n  tls: { port: 3775, cert_path: certs/smpp.crt, key_path: certs/smpp.crt }\n');
    assert.throws(
      () => loadConfig(file, {}),
      (err: unknown) => err instanceof ConfigError && err.message.includes(`server.tls.cert_path: file "certs/smpp.crt" (${path.join(dir, 'certs/smpp.crt')}) not found`),
    );
  });

  test('every key whose value names a file is marked for resolving (resolvePath)', () => {
    const unmarked: string[] = [];
    const walk = (schema: Record<string, unknown>, at: string): void => {
      for (const [key, sub] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if ((/_path$/.test(key) || key === 'policy') && sub.resolvePath !== 'file') unmarked.push(`${at}${key}`);
        walk(sub, `${at}${key}.`);
        if (sub.items) walk(sub.items as Record<string, unknown>, `${at}${key}[].`);
      }
    };
    walk(configSchema, '');
    assert.deepEqual(unmarked, []);
    assert.equal(((configSchema.properties as Record<string, { properties: Record<string, { resolvePath?: string }> }>).cache.properties.url).resolvePath, 'sqlite-url');
  });
});

describe('secrets', () => {
  const SECRET = 'Sup3rS3cr3tValue';

  test('password, token and upload_token values never appear in errors', () => {
    const msg = errorOf(
      `admin: { token: [${SECRET}] }\n` +
        `tenants:\n  - id: a\n    upload_token: { x: ${SECRET} }\n` +
        `    binds: [{ name: b, host: h, port: 1, system_id: s, password: ${SECRET} }]\n`,
    );
    assert.ok(!msg.includes(SECRET), msg);
    assert.match(msg, /tenants\[0\]\.binds\[0\]\.password: .*\(got <redacted>\)/);
    assert.match(msg, /admin\.token: must be a string \(got <redacted>\)/);
    assert.match(msg, /tenants\[0\]\.upload_token: must be a string \(got <redacted>\)/);
  });

  test('a secret from the environment is not echoed either', () => {
    const msg = errorOf('tenants:\n  - id: a\n    binds: [{ name: b, host: h, port: 1, system_id: s, password: "${PW}" }]\n', {
      PW: SECRET,
    });
    assert.ok(!msg.includes(SECRET), msg);
  });

  test('a malformed reference inside a secret is not quoted', () => {
    const msg = errorOf(`admin: { token: "${SECRET}\${oops x}" }\n`);
    assert.ok(!msg.includes(SECRET) && !msg.includes('oops'), msg);
    assert.match(msg, /admin\.token: invalid reference "\$\{…\}"/);
  });

  test('a YAML syntax error on a secret line shows no source excerpt', () => {
    const msg = errorOf(`admin:\n  token: "${SECRET}\n`);
    assert.ok(!msg.includes(SECRET), msg);
    assert.match(msg, /^config\/sluice\.yaml:\d+:\d+: /);
  });

  test('a mapping is never printed whole', () => {
    const msg = errorOf(`server: { port: 1 }\ntenants:\n  - [{ password: ${SECRET} }]\n`);
    assert.ok(!msg.includes(SECRET), msg);
    assert.match(msg, /tenants\[0\]: must be a mapping \(got a list\)/);
  });
});

describe('shipped configuration files', () => {
  test('config/sluice.yaml validates with the documented defaults; its paths are the repository\'s data/ and policies/', () => {
    const cfg = loadConfig(path.join(REPO, 'config/sluice.yaml'), {});
    assert.equal(cfg.server.bind_address, '0.0.0.0');
    assert.equal(cfg.server.port, 2775);
    assert.equal(cfg.cache.url, `sqlite://${path.join(REPO, 'data/cache.sqlite')}`);
    assert.equal(cfg.sandbox.processes, 2);
    assert.equal(cfg.admin.listen, '127.0.0.1:8075');
    assert.equal(cfg.admin.token, undefined);
    assert.deepEqual(
      cfg.tenants.map((t) => [t.id, t.policy, t.system_ids, t.binds.length]),
      [['demo', path.join(REPO, 'policies/echo.ts'), ['demo'], 0]],
    );
    assert.ok(fs.existsSync(cfg.tenants[0]!.policy!));
    // Its written-out server section equals the schema's defaults.
    assert.deepEqual(cfg.server, parse('').server);
  });

  test('config/sluice.yaml takes the admin token from SLUICE_ADMIN_TOKEN', () => {
    const cfg = parseConfig(fs.readFileSync(path.join(REPO, 'config/sluice.yaml'), 'utf8'), {
      file: 'config/sluice.yaml',
      env: { SLUICE_ADMIN_TOKEN: 't0ken' },
      cwd: REPO,
    });
    assert.equal(cfg.admin.token, 't0ken');
  });

  test('config/example-gateway.yaml validates; its paths are the repository\'s data/ and policies/', () => {
    const text = fs.readFileSync(path.join(REPO, 'config/example-gateway.yaml'), 'utf8');
    const cfg = loadConfig(path.join(REPO, 'config/example-gateway.yaml'), {});
    assert.equal(cfg.cache.url, `sqlite://${path.join(REPO, 'data/gateway.sqlite')}`);
    const acme = cfg.tenants.find((t) => t.id === 'acme');
    assert.ok(acme);
    assert.equal(acme.policy, path.join(REPO, 'policies/gateway.ts'));
    assert.ok(fs.existsSync(acme.policy));
    const bind = acme.binds[0];
    assert.equal(bind?.host, '127.0.0.1');
    assert.equal(bind?.port, 2776);
    assert.equal(bind?.password, 'secret');
    assert.ok(acme.routing.rules.length > 0);
    assert.ok(acme.routing.default_chain.includes('bind:aggregator-eu'));
    const withPw = parseConfig(text, { file: 'config/example-gateway.yaml', env: { AGG_PW: 'pw1' }, cwd: REPO });
    assert.equal(withPw.tenants[0]?.binds[0]?.password, 'pw1');
  });

  test('loadConfig reads a file from disk', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'sluice.yaml');
    fs.writeFileSync(file, 'server:\n  port: ${P}\n');
    assert.equal(loadConfig(file, { P: '4000' }).server.port, 4000);
  });
});

describe('process', () => {
  test('a bad file makes a loader process exit non-zero, naming the key on stderr', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, 'server:\n  prot: 2775\n');
    const loadJs = path.resolve(__dirname, '../../src/config/load.js');
    const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1]).loadConfig(process.argv[2])', loadJs, file], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /server\.prot: unknown key/);
    assert.ok(r.stderr.includes(file));
  });
});
