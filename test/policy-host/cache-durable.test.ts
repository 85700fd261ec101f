import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger';
import { startSluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { sandboxedSetup } from '../helpers/harness';

const COUNTER = `
smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', async (pdu) => {
  const n = ((await cache.get('count')) ?? 0) + 1;
  await cache.set('count', n);
  return pdu.reply({ message_id: 'n' + n });
});`;

describe('policy cache on the embedded SQLite store', () => {
  it('survives a reload and a full restart of the gateway; tenants do not see each other', async () => {
    const { dir, config } = sandboxedSetup(
      { acme: COUNTER, globex: COUNTER },
      { cache: { url: 'sqlite://data/cache.sqlite' }, tenants: ['acme', 'globex'].map((id) => ({ id, policy: `${id}.ts`, system_ids: [id] })) },
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
