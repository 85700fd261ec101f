/**
 * A handler that returns its `smpp.forward(pdu)` itself is answered by the
 * core with that forward's result, as soon as the core has it: nothing the
 * policy does afterwards answers the PDU otherwise, and `pdu.reply()` says
 * so by throwing. An async handler, or one that awaits the forward, answers
 * as it always did. Real sandbox, real simulator over loopback TCP.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { startSluice } from '../../src/runtime';
import { SmscSimulator } from '../../src/tools/sim';
import { STATUS } from '../../src/wire/status';
import { TestEsme } from '../helpers/esme';
import { sandboxedSetup, until } from '../helpers/harness';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * A policy whose submit_sm handler is `handler`; after the forward has its
 * result, a callback the policy attached first tries to answer the PDU with
 * ESME_RSYSERR and logs what happened.
 */
const policy = (handler: string): string => `
smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', ${handler});
smpp.onPdu('deliver_sm', (pdu) => smpp.forward(pdu));
function meddle(p: Promise<unknown>, pdu: Sluice.SubmitSm): void {
  void p.then(() => {
    try {
      pdu.reply({ command_status: 'ESME_RSYSERR' });
      log.info('replied');
    } catch (e) {
      log.info('refused', { message: (e as Error).message });
    }
  });
}
`;

async function run(handler: string, n: number, opts: { sequential?: boolean; tenant?: Record<string, unknown> } = {}): Promise<{ statuses: number[]; receipts: number; lines: Record<string, unknown>[] }> {
  const sim = new SmscSimulator({ dlrDelayMs: 10 });
  const simPort = await sim.listen();
  const x = sandboxedSetup(
    { p: policy(handler) },
    {
      tenants: [
        {
          id: 'acme',
          policy: 'p.ts',
          system_ids: ['acme-app'],
          binds: [{ name: 'up', host: '127.0.0.1', port: simPort, system_id: 'acme', password: 'pw' }],
          routing: { default_chain: ['bind:up'] },
          ...opts.tenant,
        },
      ],
    },
  );
  dirs.push(x.dir);
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const s = await startSluice({ config: x.config, logger, cwd: x.dir, watch: false });
  try {
    await until(() => s.gateway.binds('acme')[0]?.state === 'bound', 10_000);
    const esme = await TestEsme.bind(s.port, 'acme-app', 'pw');
    const answers = [];
    if (opts.sequential) for (let i = 0; i < n; i++) answers.push(await esme.submit(i));
    else answers.push(...(await Promise.all(Array.from({ length: n }, (_, i) => esme.submit(i)))));
    const acked = answers.filter((r) => r.command_status === 0).map((r) => String(r.fields.message_id));
    if (!opts.sequential) {
      await until(() => acked.every((id) => esme.byId().has(id)), 10_000, 'a receipt for every message answered ESME_ROK');
      await until(() => lines.filter((l) => l.msg === 'refused' || l.msg === 'replied').length === n, 10_000, 'the policy tried to answer each');
    }
    esme.close();
    return { statuses: answers.map((r) => r.command_status), receipts: acked.length, lines };
  } finally {
    await s.stop();
    await sim.close();
  }
}

describe('a handler that returns its forward', () => {
  it('is answered with the forward result by the core; pdu.reply() afterwards throws and changes nothing; every receipt comes back', { timeout: 60_000 }, async () => {
    const r = await run('(pdu) => { const p = smpp.forward(pdu); meddle(p, pdu); return p; }', 50);
    assert.deepEqual([...new Set(r.statuses)], [STATUS.ESME_ROK]);
    assert.equal(r.receipts, 50);
    const tried = r.lines.filter((l) => l.msg === 'refused' || l.msg === 'replied');
    assert.equal(tried.length, 50);
    for (const l of tried) {
      assert.equal(l.msg, 'refused');
      assert.equal((l.policy_fields as { message: string }).message, 'this PDU is answered by the smpp.forward(pdu) its handler returned');
    }
  });

  it('the answer does not wait for the sandbox: an isolate that never comes back from the forward result (killed at handler_timeout_ms) still has its PDU answered ESME_ROK', { timeout: 60_000 }, async () => {
    // Awaited instead, the same policy's PDUs would be answered as a handler that timed out.
    const r = await run('(pdu) => { const p = smpp.forward(pdu); void p.then(() => { for (;;); }); return p; }', 2, { sequential: true, tenant: { limits: { handler_timeout_ms: 50 } } });
    assert.deepEqual(r.statuses, [STATUS.ESME_ROK, STATUS.ESME_ROK]);
  });

  it('an async handler returning it, or one that awaits it, answers as the policy says last (here ESME_RSYSERR)', { timeout: 60_000 }, async () => {
    for (const handler of [
      'async (pdu) => { const p = smpp.forward(pdu); meddle(p, pdu); return p; }',
      '(pdu) => { const p = smpp.forward(pdu); meddle(p, pdu); return p.then((x) => x); }',
    ]) {
      const r = await run(handler, 20);
      assert.deepEqual([...new Set(r.statuses)], [STATUS.ESME_RSYSERR], handler);
      assert.equal(r.lines.filter((l) => l.msg === 'replied').length, 20, handler);
    }
  });
});
