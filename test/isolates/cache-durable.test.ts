import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { startSluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';

const COUNTER = `
smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', async (pdu) => {
  const n = ((await cache.get('count')) ?? 0) + 1;
  await cache.set('count', n);
  return pdu.reply({ message_id: 'n' + n });
});`;

describe('policy cache on the embedded SQLite store', () => {
  it('survives a reload and a full restart of the gateway; tenants do not see each other', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-durable-'));
    writeFileSync(path.join(dir, 'acme.ts'), COUNTER);
    writeFileSync(path.join(dir, 'globex.ts'), COUNTER);
    const config = parseConfig(
      stringify({
        server: { bind_address: '127.0.0.1', port: 0 },
        cache: { url: 'sqlite://data/cache.sqlite' },
        sandbox: { processes: 1 },
        tenants: ['acme', 'globex'].map((id) => ({ id, policy: `${id}.ts`, system_ids: [id] })),
      }),
      { file: 't.yaml', env: {}, cwd: dir },
    );
    const submit = async (port: number, systemId: string): Promise<string> => {
      const c = await EsmeClient.connect({ port });
      await c.bind(systemId, 'x');
      const r = await c.submit({ short_message: Buffer.from('x') });
      c.close();
      return String(r.fields.message_id);
    };
    let s = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false });
    assert.equal(await submit(s.port, 'acme'), 'n1');
    assert.equal(await submit(s.port, 'acme'), 'n2');
    assert.equal(await submit(s.port, 'globex'), 'n1', 'another tenant has its own namespace');
    assert.equal((await s.sandbox.reload('acme', COUNTER + '\n// v2')).ok, true);
    assert.equal(await submit(s.port, 'acme'), 'n3', 'survives a reload');
    await s.stop();
    s = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false });
    assert.equal(await submit(s.port, 'acme'), 'n4', 'survives a restart');
    await s.stop();
  });
});
