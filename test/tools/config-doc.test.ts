/**
 * docs/configuration.md is generated from the config schema: every key has a
 * description, and the file in the repository is what the generator makes of
 * the schema now.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config/schema';
import { pathKeys, renderConfigDoc, undescribed } from '../../src/tools/config-doc';

const REPO = path.resolve(__dirname, '../../..');
const DOC = path.join(REPO, 'docs/configuration.md');
const REGENERATE = 'npm run docs:config';

/** Every key path of the schema, as the doc writes them: `tenants[].binds[].tls.ca_path`, and a list of mappings as `tenants[]`. */
function allKeys(node: Record<string, unknown>, at = ''): string[] {
  const out: string[] = [];
  for (const [key, sub] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>)) {
    const p = at === '' ? key : `${at}.${key}`;
    const items = sub.items as Record<string, unknown> | undefined;
    if (items?.properties) out.push(`${p}[]`, ...allKeys(items, `${p}[]`));
    else out.push(p, ...allKeys(sub, p));
  }
  return out;
}

describe('docs/configuration.md', () => {
  it('every property of the config schema has a description', () => {
    assert.deepEqual(undescribed(), [], `add a description to these keys in src/config/schema.ts, then run \`${REGENERATE}\``);
  });

  it('the check finds a property without one, at any depth', () => {
    const schema = {
      type: 'object',
      properties: {
        a: { type: 'string', description: 'documented' },
        b: { type: 'object', description: 'documented', properties: { c: { type: 'integer' } } },
        d: { type: 'array', description: 'documented', items: { type: 'object', properties: { e: { type: 'string', description: ' ' } } } },
      },
    };
    assert.deepEqual(undescribed(schema), ['b.c', 'd[].e']);
  });

  it(`is what the generator makes of the schema now (regenerate with \`${REGENERATE}\`)`, () => {
    const actual = readFileSync(DOC, 'utf8');
    // assert.equal's diff of a whole page helps less than saying what to run.
    assert.ok(actual === renderConfigDoc(), `docs/configuration.md is out of date with src/config/schema.ts: run \`${REGENERATE}\` and commit the result`);
  });

  it('names every key, those that exist only in the schema included', () => {
    const doc = renderConfigDoc();
    const missing = allKeys(configSchema).filter((k) => !doc.includes(`\`${k}\``));
    assert.deepEqual(missing, []);
    for (const k of ['system_type', 'addr_ton', 'addr_npi', 'address_range', 'tls.ca_path', 'tls.reject_unauthorized', 'tls.servername']) {
      assert.match(doc, new RegExp(`^\\| \`tenants\\[\\]\\.binds\\[\\]\\.${k.replace('.', '\\.')}\` \\|`, 'm'), k);
    }
  });

  it('states the relative-path rule and lists every key that holds a path', () => {
    const doc = renderConfigDoc();
    assert.match(doc, /Relative paths resolve against the directory of the config file/);
    const keys = pathKeys().map((p) => p.key);
    assert.deepEqual(keys.sort(), ['cache.url', 'server.tls.ca_path', 'server.tls.cert_path', 'server.tls.key_path', 'tenants[].binds[].tls.ca_path', 'tenants[].policy']);
    for (const k of keys) assert.match(doc, new RegExp(`^  - \`${k.replace(/[.[\]]/g, '\\$&')}\`: `, 'm'), k);
  });

  it('sluice config-doc prints it, and -o writes it', () => {
    const bin = path.join(REPO, 'bin/sluice.js');
    const printed = spawnSync(process.execPath, [bin, 'config-doc'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(printed.status, 0, printed.stderr);
    assert.equal(printed.stdout, renderConfigDoc());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-config-doc-'));
    try {
      const out = path.join(dir, 'configuration.md');
      const written = spawnSync(process.execPath, [bin, 'config-doc', '-o', out], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(written.status, 0, written.stderr);
      assert.equal(readFileSync(out, 'utf8'), renderConfigDoc());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
