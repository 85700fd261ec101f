import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordingLogger } from '../../src/log/logger';
import { acceptAll, startGateway, testConfig } from '../helpers/harness';
import { EsmeClient } from '../../src/tools/esme-client';

describe('logs', () => {
  it('redacts passwords and message bodies wherever they appear', () => {
    const { logger, lines } = recordingLogger();
    logger.child({ tenant: 'acme' }).info({ password: 'hunter2', pdu: { short_message: 'secret text', text: 'secret text', password: 'x' }, bind: { password: 'p' } }, 'x');
    const out = JSON.stringify(lines());
    assert.doesNotMatch(out, /hunter2|secret text/);
    assert.equal(lines()[0]!.tenant, 'acme');
  });

  it('session lines carry tenant and session bindings and never the bind password', async () => {
    const h = await startGateway({ record: true, config: testConfig({ log: { level: 'debug' } }), handlers: { acme: acceptAll() } });
    const c = await EsmeClient.connect({ port: h.port });
    await c.bind('acme-app', 'Sup3rS3c');
    c.close();
    await new Promise((r) => setTimeout(r, 50));
    const lines = h.logs();
    const bound = lines.find((l) => l.msg === 'esme bound');
    assert.ok(bound);
    assert.equal(bound.tenant, 'acme');
    assert.equal(typeof bound.session, 'string');
    assert.doesNotMatch(JSON.stringify(lines), /Sup3rS3c/);
    await h.close();
  });
});
