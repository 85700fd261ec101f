import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { defaultOf } from '../../src/config/schema';

describe('defaults live in the schema', () => {
  it('defaultOf reads the default a loaded config gets', () => {
    const cfg = parseConfig(stringify({ tenants: [{ id: 'acme', system_ids: ['acme-app'] }] }), { file: 'defaults', env: {} });
    const t = cfg.tenants[0]!;
    assert.equal(defaultOf('tenants', 'receipts', 'ttl_ms'), t.receipts.ttl_ms);
    assert.equal(defaultOf('tenants', 'receipts', 'dedupe_ms'), t.receipts.dedupe_ms);
    assert.equal(defaultOf('tenants', 'limits', 'handler_deadline_ms'), t.limits.handler_deadline_ms);
    assert.equal(defaultOf('cache', 'lease_ttl_ms'), cfg.cache.lease_ttl_ms);
    assert.equal(defaultOf('server', 'hold_ttl_ms'), cfg.server.hold_ttl_ms);
  });

  it('a key with no numeric default is a programming error, said at once', () => {
    assert.throws(() => defaultOf('tenants', 'receipts', 'no_such_key'), /no numeric default at tenants\.receipts\.no_such_key/);
    assert.throws(() => defaultOf('tenants', 'id'), /no numeric default/);
  });
});
