/** The config loader: defaults, immutability, environment expansion, unknown keys. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { configSchema, expandString } from '../../src/config';
import { parse, errorOf, tmpDir, BIND } from '../helpers/config-text';

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
