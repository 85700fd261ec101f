import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { recordingLogger } from '../../src/log/logger';
import { RepeatedWarnings } from '../../src/log/repeats';
import { startSluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { ManualClock } from '../../src/util/clock';

describe('identical warnings collapsed', () => {
  it('the first is logged, the same again only counted, the count logged when the window ends; other kinds apart', () => {
    const clock = new ManualClock();
    const rec = recordingLogger('info');
    const r = new RepeatedWarnings(clock, 10_000);
    for (let i = 0; i < 64; i++) r.warn(rec.logger, 'a', { tenant: 't', err: 'gone' }, 'handler failed');
    r.warn(rec.logger, 'b', { tenant: 't', err: 'other' }, 'handler failed');
    assert.deepEqual(rec.lines().map((l) => [l.msg, l.err, l.repeats]), [['handler failed', 'gone', undefined], ['handler failed', 'other', undefined]]);
    clock.advance(10_000);
    const lines = rec.lines();
    assert.equal(lines.length, 3, 'one summary, for the kind that came again');
    assert.deepEqual([lines[2]!.msg, lines[2]!.repeats], ['handler failed (the same 63 more times in 10 s)', 63]);
    r.warn(rec.logger, 'a', { tenant: 't', err: 'gone' }, 'handler failed');
    assert.equal(rec.lines().length, 4, 'a new window logs the first again');
  });

  it('a tenant removed by a reload with 64 submits in flight: one warning of each kind, not one per submit', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-repeats-'));
    try {
      writeFileSync(path.join(dir, 'a.ts'), "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'x' }));\n");
      writeFileSync(path.join(dir, 'b.ts'), 'smpp.onBind((b) => b.accept());\n');
      const yaml = (tenants: string): string =>
        `server: { bind_address: 127.0.0.1, port: 0 }\ncache: { url: 'memory://' }\nsandbox: { processes: 1 }\ntenants:\n${tenants}`;
      const file = path.join(dir, 'c.yaml');
      writeFileSync(file, yaml('  - { id: acme, policy: a.ts, system_ids: [acme] }\n  - { id: other, policy: b.ts, system_ids: [other] }\n'));
      const rec = recordingLogger('info');
      const s = await startSluice({ config: loadConfig(file), logger: rec.logger, configFile: file, watch: false });
      try {
        const c = await EsmeClient.connect({ port: s.port, window: 64 });
        assert.equal((await c.bind('acme', 'x')).command_status, 0);
        let stop = false;
        const worker = async (): Promise<void> => {
          const end = Date.now() + 5000;
          while (!stop && Date.now() < end) {
            try {
              await c.submit({ short_message: Buffer.from('x') });
            } catch {
              return;
            }
          }
        };
        const workers = Array.from({ length: 64 }, worker);
        await new Promise((r) => setTimeout(r, 500));
        writeFileSync(file, yaml('  - { id: other, policy: b.ts, system_ids: [other] }\n'));
        assert.deepEqual((await s.reloadConfig()).removed, ['acme']);
        await new Promise((r) => setTimeout(r, 500));
        stop = true;
        c.close();
        await Promise.all(workers);
        const failed = rec.lines().filter((l) => l.tenant === 'acme' && l.level === 40 && String(l.msg).startsWith('handler failed'));
        // In flight when it went ("removed by a config reload") and arriving after ("has no policy"): one line each at most.
        const kinds = failed.map((l) => `${String(l.msg)} / ${String(l.err)}`);
        assert.ok(kinds.length >= 1 && kinds.length <= 2, JSON.stringify(kinds));
        assert.equal(new Set(kinds).size, kinds.length, `no warning twice: ${JSON.stringify(kinds)}`);
      } finally {
        await s.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
