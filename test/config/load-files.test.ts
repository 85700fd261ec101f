/** Config files: reading them, relative paths against the file, secrets, the shipped files, and a bad config stopping the process before any port. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isSluiceError } from '../../src/errors';
import { ConfigError, configSchema, loadConfig, parseConfig, type SluiceConfig } from '../../src/config';
import { REPO, parse, errorOf, tmpDir } from '../helpers/config-text';

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
