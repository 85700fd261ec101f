/**
 * `sluice bench` as a real process against a real `sluice start`: the rate
 * it prints is of submits answered ESME_ROK, refusals are listed by status
 * apart (regression: "20071 submit_sm/s" counted ESME_RTHROTTLED answers as
 * traffic), and a refused bind is named, not printed as hex (was "0xf").
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runSluice, SluiceProcess } from '../helpers/sluice-process';

/** Every 4th submit ESME_RTHROTTLED, every 10th from the 5th ESME_RMSGQFUL, the rest ESME_ROK: of each 20, 13 accepted. */
const METERED = `smpp.onBind((b) => b.accept());
let n = 0;
smpp.onPdu('submit_sm', (pdu) => {
  n++;
  if (n % 4 === 0) return pdu.reply({ command_status: 'ESME_RTHROTTLED' });
  if (n % 10 === 5) return pdu.reply({ command_status: 'ESME_RMSGQFUL' });
  return pdu.reply({ message_id: 'm' + n });
});
`;

describe('sluice bench against a running gateway', () => {
  let dir: string;
  let gw: SluiceProcess;
  let port: number;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-bench-'));
    writeFileSync(path.join(dir, 'metered.ts'), METERED);
    const config = path.join(dir, 'sluice.yaml');
    writeFileSync(
      config,
      ['server: { bind_address: 127.0.0.1, port: 0 }', 'cache: { url: "memory://" }', 'sandbox: { processes: 1 }', 'admin: { listen: "127.0.0.1:0", token: root }', 'tenants:', '  - { id: metered, policy: metered.ts, system_ids: [metered-app] }'].join('\n'),
    );
    gw = SluiceProcess.start(config, dir);
    port = Number((await gw.logged('sluice started', 0, () => true, 30_000)).port);
  });

  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the accepted rate and the refusals by status; the rate counts ESME_ROK only', { timeout: 60_000 }, async () => {
    const r = await runSluice(['bench', '--port', String(port), '--system-id', 'metered-app', '--password', 'x', '--window', '1', '--count', '400']);
    assert.equal(r.code, 0, r.stderr);
    const m = /^window 1 +([\d,]+) submit_sm\/s accepted \(ESME_ROK\); refused: ESME_RTHROTTLED 100, ESME_RMSGQFUL 40 {2}p50 [\d.]+ ms {2}p90 [\d.]+ ms {2}p99 [\d.]+ ms {2}\(400 sent in ([\d.]+) s\)\n$/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const accepted = Number(m[1]!.replace(/,/g, '')) * Number(m[2]);
    // 260 accepted in the time printed (the rate is rounded to whole messages per second).
    assert.ok(Math.abs(accepted - 260) < 260 * 0.05, `rate × seconds = ${accepted}, not the 260 accepted (the 400 sent would be ${400})`);
  });

  it('a refused bind exits 1 naming the status (regression: 0xf), without waiting on its open sessions', { timeout: 30_000 }, async () => {
    const r = await runSluice(['bench', '--port', String(port), '--system-id', 'nobody', '--esmes', '2', '--count', '10'], { timeoutMs: 20_000 });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'sluice bench: bind as "nobody" refused: ESME_RINVSYSID (0x0000000f)\n');
  });
});
