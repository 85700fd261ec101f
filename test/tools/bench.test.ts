/**
 * `sluice bench`'s load loop against a real gateway over TCP: its rate is
 * of submits answered ESME_ROK, and refusals are counted per status apart
 * (regression: "20071 submit_sm/s" counted ESME_RTHROTTLED answers as traffic).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reply } from '../../src/dispatch/in-process';
import { formatLoad, runLoad } from '../../src/tools/bench';
import { acceptAll, startGateway, until } from '../helpers/harness';

describe('bench load (runLoad)', () => {
  it('counts only ESME_ROK as throughput and each refusal by its status name', async () => {
    let n = 0;
    // Every 4th submit ESME_RTHROTTLED, every 10th from the 5th ESME_RMSGQFUL: of 100, 65 accepted.
    const h = await startGateway({
      handlers: {
        acme: acceptAll({
          pdu: {
            submit_sm: () => {
              n++;
              if (n % 4 === 0) return reply({ command_status: 'ESME_RTHROTTLED' });
              if (n % 10 === 5) return reply({ command_status: 'ESME_RMSGQFUL' });
              return reply({ message_id: `m${n}` });
            },
          },
        }),
        globex: acceptAll(),
      },
    });
    try {
      const r = await runLoad({ port: h.port, systemId: 'acme-app', password: 'pw', esmes: 1, window: 1, count: 100 });
      assert.equal(r.sent, 100);
      assert.equal(r.ok, 65);
      assert.equal(r.failed, 35);
      assert.deepEqual(r.refused, { ESME_RTHROTTLED: 25, ESME_RMSGQFUL: 10 });
      assert.equal(r.perSecond, 65 / r.seconds, 'the rate is of accepted submits');
      assert.ok(Number.isFinite(r.p50) && r.p50 > 0);
      const line = formatLoad('window 1', r);
      assert.match(line, /submit_sm\/s accepted \(ESME_ROK\); refused: ESME_RTHROTTLED 25, ESME_RMSGQFUL 10 /);
      assert.match(line, /\(100 sent in \d+\.\d{3} s\)/);
    } finally {
      await h.close();
    }
  });

  it('says "none refused" when every submit is accepted, and "none accepted" (no latency) when none is', async () => {
    let refuse = false;
    const h = await startGateway({
      handlers: { acme: acceptAll({ pdu: { submit_sm: () => (refuse ? reply({ command_status: 'ESME_RSYSERR' }) : reply({ message_id: 'x' })) } }), globex: acceptAll() },
    });
    try {
      const load = { port: h.port, systemId: 'acme-app', password: 'pw', esmes: 1, window: 4, count: 20 };
      const all = await runLoad(load);
      assert.deepEqual([all.ok, all.refused], [20, {}]);
      assert.match(formatLoad('w', all), /accepted \(ESME_ROK\); none refused {2}p50 /);
      refuse = true;
      const none = await runLoad(load);
      assert.deepEqual([none.ok, none.perSecond, none.refused], [0, 0, { ESME_RSYSERR: 20 }]);
      assert.match(formatLoad('w', none), / 0 submit_sm\/s accepted \(ESME_ROK\); refused: ESME_RSYSERR 20 {2}none accepted /);
    } finally {
      await h.close();
    }
  });

  it('a refused bind throws naming its status (regression: "0xf"), and closes its connections', async () => {
    const h = await startGateway();
    try {
      await assert.rejects(runLoad({ port: h.port, systemId: 'nobody', password: 'pw', esmes: 2, window: 1, count: 1 }), /bind as "nobody" refused: ESME_RINVSYSID \(0x0000000f\)/);
      await until(() => h.gateway.admission.connections === 0, 5000, 'the refused connection closed');
    } finally {
      await h.close();
    }
  });
});
