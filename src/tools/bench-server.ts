/**
 * Child-process entry for `sluice bench --compare`: runs one server under
 * test on 127.0.0.1:0 so the load generator and the server each get a core.
 *   raw    — a bare npm `smpp` echo server (the baseline)
 *   sluice — the Sluice gateway with a plain in-process echo handler
 * Reports { port } over IPC; answers 'rss' with its memory; exits on 'exit'.
 */
import * as smpp from 'smpp';
import { stringify } from 'yaml';
import { parseConfig } from '../config/load';
import { accept, InProcessPolicyHost, reply } from '../dispatch/in-process';
import type { PolicyHost } from '../dispatch/policy-host';
import { Gateway } from '../gateway';
import { silentLogger } from '../log/logger';

let counter = 0;

function rawEcho(): Promise<number> {
  const server = smpp.createServer({}, (session: smpp.Session) => {
    session.on('error', () => {});
    session.on('bind_transceiver', (pdu: smpp.PDU) => session.send((pdu as unknown as { response(o?: object): smpp.PDU }).response()));
    session.on('enquire_link', (pdu: smpp.PDU) => session.send((pdu as unknown as { response(o?: object): smpp.PDU }).response()));
    session.on('submit_sm', (pdu: smpp.PDU) => session.send((pdu as unknown as { response(o?: object): smpp.PDU }).response({ message_id: String(++counter) })));
    session.on('unbind', (pdu: smpp.PDU) => {
      session.send((pdu as unknown as { response(o?: object): smpp.PDU }).response());
      session.close();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

/** The in-process echo policy: accept binds, ack submits, send a receipt when one is asked for. */
export function echoPolicy(gateway: () => Gateway): PolicyHost {
  return new InProcessPolicyHost({
    bench: {
      bind: () => accept(),
      pdu: {
        submit_sm: (pdu, session) => {
          const id = `m${++counter}`;
          if ((Number(pdu.registered_delivery) & 1) === 1) {
            setImmediate(() => {
              gateway()
                .sendTo('bench', session.sessionId, 'deliver_sm', {
                  source_addr: String(pdu.destination_addr ?? ''),
                  destination_addr: String(pdu.source_addr ?? ''),
                  esm_class: 0x04,
                  short_message: `id:${id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:DELIVRD err:000 text:`,
                })
                .catch(() => {});
            });
          }
          return reply({ message_id: id });
        },
      },
    },
  });
}

async function sluice(): Promise<number> {
  const config = parseConfig(
    stringify({ server: { bind_address: '127.0.0.1', port: 0, window: 1024 }, log: { level: 'silent' }, tenants: [{ id: 'bench', system_ids: ['bench'] }] }),
    { file: 'bench', env: {} },
  );
  let g: Gateway | undefined;
  g = new Gateway({ config, logger: silentLogger, policy: echoPolicy(() => g!) });
  return (await g.start()).port;
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  const port = kind === 'raw' ? await rawEcho() : await sluice();
  process.send!({ port });
  process.on('message', (m: string) => {
    if (m === 'rss') {
      global.gc?.();
      process.send!({ rss: process.memoryUsage().rss });
    } else if (m === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module) void main();
