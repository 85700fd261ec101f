import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { PolicyHarness } from '../../src/testing/harness';
import '../helpers/ivm-teardown';

const ROOT = path.resolve(__dirname, '../../..');

describe('PolicyHarness: a policy in the real sandbox, no network', () => {
  it('runs the demo echo policy: bind, submit_sm, a receipt on a core timer', async () => {
    const h = await PolicyHarness.load(path.join(ROOT, 'policies/echo.ts'));
    assert.equal((await h.bind({ password: 'nope' })).accept, false);
    const b = await h.bind({ password: 'demo', sessionId: 'esme-1' });
    assert.equal(b.accept, true);
    const r = await h.pdu('submit_sm', { source_addr: '1000', destination_addr: '31600000001', short_message: 'hi', registered_delivery: 1 }, { sessionId: 'esme-1' });
    assert.equal(r.kind, 'reply');
    assert.equal(r.command_status, 'ESME_ROK');
    const id = String(r.fields!.message_id);
    assert.equal(h.timers.length, 1);
    const t = h.timers[0]!;
    assert.equal(t.name, `dlr:${id}`);
    await h.timer(t.name, t.payload);
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0]!.op, 'sendTo');
    assert.equal(h.sent[0]!.sessionId, 'esme-1');
    assert.match(String(h.sent[0]!.fields.short_message), new RegExp(`^id:${id} .*stat:DELIVRD`));
    h.close();
  });

  it('runs the gateway example of the policy API: route, correlate the DLR through the cache, deliver it back', async () => {
    const source = `
      smpp.onBind(async (bind) => bind.accept());
      smpp.onPdu("submit_sm", async (pdu, session) => {
        const ourId = smpp.newMessageId();
        try {
          const r = await smpp.submitVia("aggregator-eu", {
            source_addr: pdu.source_addr, destination_addr: pdu.destination_addr,
            short_message: pdu.short_message, data_coding: pdu.data_coding,
            esm_class: pdu.esm_class, registered_delivery: pdu.registered_delivery,
          });
          if (!r.ok) return pdu.reply({ command_status: r.command_status });
          await cache.set(\`dlr:aggregator-eu:\${r.message_id}\`, { session: session.sessionId, systemId: session.systemId, ourId }, 86_400_000);
        } catch (e) {
          return pdu.reply({ command_status: "ESME_RSUBMITFAIL" });
        }
        return pdu.reply({ message_id: ourId });
      });
      smpp.onPdu("deliver_sm", async (pdu, session) => {
        if (!pdu.isDlr) return;
        const c = await cache.get(\`dlr:\${session.bind}:\${pdu.receipt.id}\`);
        if (c) await smpp.deliverTo(c.session, { esm_class: 0x04, short_message: \`id:\${c.ourId} stat:\${pdu.receipt.stat} err:\${pdu.receipt.err}\` });
      });`;
    const h = await PolicyHarness.load({ source, filename: 'gateway.ts' }, { binds: ['aggregator-eu'] });
    await h.bind({ sessionId: 'e1' });
    const r = await h.pdu('submit_sm', { source_addr: '1000', destination_addr: '31600000001', short_message: new Uint8Array([0x48, 0x69]), registered_delivery: 1 }, { sessionId: 'e1' });
    assert.equal(r.command_status, 'ESME_ROK');
    assert.deepEqual([...(h.sent[0]!.fields.short_message as Uint8Array)], [0x48, 0x69], 'byte-exact forwarding');
    assert.ok(h.cache.has('dlr:aggregator-eu:up-1'));
    const d = await h.pdu('deliver_sm', { esm_class: 0x04, short_message: 'id:up-1 sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:' }, { kind: 'bind', bind: 'aggregator-eu', sessionId: 'b1' });
    assert.equal(d.kind, 'default', 'undefined → default ack');
    assert.equal(h.sent[1]!.op, 'sendTo');
    assert.match(String(h.sent[1]!.fields.short_message), /^id:[0-9a-z]+ stat:DELIVRD err:000$/);
    // The ESME unbinds before the next receipt: the gateway holds it for its next session, and so does the harness.
    await h.pdu('submit_sm', { source_addr: '1000', destination_addr: '31600000002', short_message: 'x', registered_delivery: 1 }, { sessionId: 'e1' });
    await h.session('unbound', { sessionId: 'e1' });
    assert.deepEqual(h.sessions, []);
    const upId = [...h.cache.keys()].find((k) => k.startsWith('dlr:') && k !== 'dlr:aggregator-eu:up-1')!.split(':')[2];
    await h.pdu('deliver_sm', { esm_class: 0x04, short_message: `id:${upId} sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:` }, { kind: 'bind', bind: 'aggregator-eu', sessionId: 'b1' });
    assert.equal(h.sent.at(-1)!.op, 'sendTo');
    assert.equal(h.sent.at(-1)!.held, true);
    // The upstream refusing: the ESME sees the upstream's status.
    const h2 = await PolicyHarness.load({ source, filename: 'gateway.ts' }, { binds: ['aggregator-eu'], onSend: () => ({ ok: false, command_status: 'ESME_RINVDSTADR' }) });
    assert.equal((await h2.pdu('submit_sm', { short_message: 'x' })).command_status, 'ESME_RINVDSTADR');
    // A bind that does not exist throws UNKNOWN_BIND into the policy, which answers SUBMITFAIL.
    const h3 = await PolicyHarness.load({ source, filename: 'gateway.ts' }, { binds: [] });
    assert.equal((await h3.pdu('submit_sm', { short_message: 'x' })).command_status, 'ESME_RSUBMITFAIL');
    h.close();
    h2.close();
    h3.close();
  });

  it('reports a handler that throws with the line:column of the tenant source', async () => {
    const h = await PolicyHarness.load({ source: "interface X { a: number }\n\nsmpp.onPdu('submit_sm', (pdu: unknown) => {\n  const x: X = { a: 1 };\n  throw new Error('boom ' + x.a);\n});\n", filename: 'thrower.ts' });
    const r = await h.pdu('submit_sm', { short_message: 'x' });
    assert.equal(r.kind, 'error');
    assert.equal(r.command_status, 'ESME_RSYSERR');
    assert.match(r.error!, /boom 1 \(thrower\.ts:5:\d+\)/);
    h.close();
  });

  it('an unknown status name throws at once inside the policy', async () => {
    const h = await PolicyHarness.load({ source: "smpp.onPdu('submit_sm', (pdu) => pdu.reply({ command_status: 'ESME_NOPE' }));" });
    const r = await h.pdu('submit_sm', {});
    assert.equal(r.kind, 'error');
    assert.match(r.error!, /unknown command_status/);
    h.close();
  });

  it('replyQuery answers query_sm', async () => {
    const h = await PolicyHarness.load({ source: "smpp.onPdu('query_sm', (pdu) => pdu.replyQuery({ message_state: 2, final_date: '260101000000000+' }));" });
    const r = await h.pdu('query_sm', { message_id: 'abc', source_addr: '1' });
    assert.deepEqual(r, { kind: 'reply', command_status: 'ESME_ROK', fields: { message_id: 'abc', message_state: 2, final_date: '260101000000000+', error_code: 0 } });
    h.close();
  });
});

describe('PolicyHarness: forwarding', () => {
  it('{ ...pdu } forwards every field byte-exact, unknown TLVs included', async () => {
    const h = await PolicyHarness.load(
      { source: "smpp.onPdu('submit_sm', async (pdu) => { const r = await smpp.submitVia('up', { ...pdu }); return pdu.reply({ message_id: r.message_id }); });" },
      { binds: ['up'] },
    );
    const r = await h.pdu('submit_sm', {
      source_addr: '1000',
      destination_addr: '31600000001',
      esm_class: 0x40,
      data_coding: 0,
      short_message: new Uint8Array([0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 0x48, 0x69]),
      validity_period: '000001000000000R',
      unknown_tlvs: [{ tag: 0x1401, value: new Uint8Array([9, 9]) }],
    });
    assert.equal(r.command_status, 'ESME_ROK');
    const f = h.sent[0]!.fields;
    assert.deepEqual([...(f.short_message as Uint8Array)], [0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 0x48, 0x69]);
    assert.equal(f.validity_period, '000001000000000R');
    assert.deepEqual((f.unknown_tlvs as { tag: number; value: Uint8Array }[]).map((t) => [t.tag, [...t.value]]), [[0x1401, [9, 9]]]);
    assert.equal('reply' in f, false);
    h.close();
  });
});
