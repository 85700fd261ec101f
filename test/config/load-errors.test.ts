/** The config loader on bad input: wrong types, ranges and enums, YAML syntax, cross-checks; each error names the key. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SluiceError } from '../../src/errors';
import { ConfigError, parseChainStep, parseListenAddress } from '../../src/config';
import { FILE, parse, errorOf, tmpDir, BIND } from '../helpers/config-text';

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
