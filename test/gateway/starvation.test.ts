/**
 * Tenant starvation by unanswered receipts: one ESME that submits with
 * registered_delivery and never answers a deliver_sm must not spend its
 * tenant's shared `max_pending` on receipts that wait for it. What a session
 * with a window's worth unanswered cannot take now is held, the session is
 * closed once one goes unanswered for response_timer_ms, and what it had is
 * delivered at its next bind. The shipped echo policy, a real sandbox.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger';
import { startSluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { TestEsme } from '../helpers/esme';
import { sandboxedSetup, until } from '../helpers/harness';

const ROOT = path.resolve(__dirname, '../../..');
const ECHO = readFileSync(path.join(ROOT, 'policies/echo.ts'), 'utf8');

describe('tenant starvation by unanswered receipts', () => {
  it("an ESME that never answers its receipts spends at most a window of the tenant's max_pending: the tenant's other ESME gets its answers and receipts throughout, and the silent one gets every receipt when it binds again", { timeout: 60_000 }, async () => {
    const x = sandboxedSetup(
      { demo: ECHO },
      {
        server: { bind_address: '127.0.0.1', port: 0, window: 64, response_timer_ms: 2000 },
        tenants: [{ id: 'demo', policy: 'demo.ts', system_ids: ['demo-a', 'demo-b'] }],
      },
    );
    const s = await startSluice({ config: x.config, logger: silentLogger, cwd: x.dir, watch: false });
    try {
      const silent = await EsmeClient.connect({ port: s.port, onRequest: () => {} });
      assert.equal((await silent.bind('demo-a', 'demo')).command_status, 0);
      const send = (c: EsmeClient, i: number) => c.submit({ source_addr: '1', destination_addr: '31612345678', registered_delivery: 1, short_message: Buffer.from(`m${i}`) });
      // More receipts for the silent ESME than the tenant's max_pending (1,000 by default): before,
      // they all waited on it (64 sent, the rest queued) and the other ESME got none of its own.
      const silentIds: string[] = [];
      for (let k = 0; k < 3; k++) {
        for (const r of await Promise.all(Array.from({ length: 500 }, (_, i) => send(silent, k * 500 + i)))) {
          assert.equal(r.command_status, 0);
          silentIds.push(String(r.fields.message_id));
        }
      }
      const other = await TestEsme.bind(s.port, 'demo-b', 'demo');
      const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => other.submit(i)));
      assert.deepEqual([...new Set(answers.map((a) => a.command_status))], [0], 'the other ESME is answered ESME_ROK throughout');
      await until(() => other.receipts.length >= 300, 10_000).catch(() => assert.fail(`the other ESME got ${other.receipts.length} of its 300 receipts`));
      assert.deepEqual(new Set(other.receipts.map((r) => r.bodyId)), new Set(answers.map((a) => String(a.fields.message_id))));
      await until(() => silent.session.closed, 10_000);
      const back = await TestEsme.bind(s.port, 'demo-a', 'demo');
      await until(() => new Set(back.receipts.map((r) => r.bodyId)).size >= 1500, 20_000);
      assert.deepEqual(new Set(back.receipts.map((r) => r.bodyId)), new Set(silentIds), 'every receipt the silent ESME left unanswered reached it at its next bind');
      back.close();
      other.close();
    } finally {
      await s.stop();
      rmSync(x.dir, { recursive: true, force: true });
    }
  });
});
