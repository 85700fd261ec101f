// The demo tenant's policy: accept the demo ESME, ack every submit_sm with a
// message id of our own, and when the ESME asked for a receipt, send it a
// delivery receipt through deliverTo shortly after the submit_sm_resp.

const DEMO_PASSWORD = 'demo';

interface DlrJob {
  session: string;
  id: string;
  from: string;
  to: string;
  submitted: string;
}

/** SMPP 3.4 Appendix B dates: YYMMDDhhmm. */
function smppDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

smpp.onBind((bind) => (bind.password === DEMO_PASSWORD ? bind.accept() : bind.reject('ESME_RINVPASWD', 'bad password')));

smpp.onPdu('submit_sm', async (pdu, session) => {
  const id = smpp.newMessageId();
  if ((pdu.registered_delivery & 0x03) !== 0) {
    const job: DlrJob = { session: session.sessionId, id, from: pdu.destination_addr, to: pdu.source_addr, submitted: smppDate(new Date()) };
    // A core timer: the receipt goes out after this submit_sm_resp, on whatever version is current then.
    await smpp.timers.after(10, `dlr:${id}`, job);
  }
  return pdu.reply({ message_id: id });
});

smpp.onTimer('dlr', async (payload) => {
  const job = payload as DlrJob;
  const done = smppDate(new Date());
  try {
    await smpp.deliverTo(job.session, {
      source_addr: job.from,
      destination_addr: job.to,
      esm_class: 0x04,
      short_message: `id:${job.id} sub:001 dlvrd:001 submit date:${job.submitted} done date:${done} stat:DELIVRD err:000 text:`,
    });
  } catch (e) {
    // The ESME unbound in the meantime: nothing to deliver to.
    log.debug('receipt not delivered', { id: job.id, code: (e as { code?: string }).code });
  }
});

smpp.onSession('bound', (session) => log.info('esme bound', { systemId: session.systemId }));
