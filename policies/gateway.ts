// The gateway policy: a store-and-forward SMS gateway in decisions only.
//
// The core does what every gateway would write again: it routes each
// message by the tenant's routing chains, keeps it in the durable journal
// until its final receipt, retries queued messages until they expire,
// correlates receipts whatever form the upstream writes their ids in, and
// holds what an unbound ESME cannot take yet. This file decides who may
// bind, what may be sent, and who owns an MO message. Its settings come
// from the tenant's `settings` in the config, so no secret lives here.

/** `tenants[].settings` as this policy reads them. */
interface GatewaySettings {
  /** system_id → password of each ESME that may bind. */
  esmes: Record<string, string>;
  /** MO routing: destination prefix → the system_id of the ESME that owns those numbers. */
  mo_routes?: Record<string, string>;
  /** The ESME that gets MO no prefix matches; without one, such MO is refused. */
  mo_default?: string;
  /** Source addresses ESMEs may not send from (numbers they do not own). */
  blocked_senders?: string[];
  /** system_id → routing rule name: that ESME's traffic takes the rule, whatever the destination. */
  esme_rules?: Record<string, string>;
}

const settings = (): GatewaySettings => smpp.settings<GatewaySettings>();

// ---- who may bind -----------------------------------------------------------------

smpp.onBind((bind) => {
  const expected = settings().esmes?.[bind.systemId];
  if (expected === undefined) return bind.reject('ESME_RINVSYSID', 'unknown system_id');
  if (bind.password !== expected) return bind.reject('ESME_RINVPASWD', 'bad password');
  return bind.accept();
});

// ---- messages from ESMEs ------------------------------------------------------------

/** What an ESME may send: a hook to add sender checks, content rules, per-customer quotas. */
function refuse(pdu: Sluice.SubmitSm | Sluice.SubmitSmMulti | Sluice.DataSm): Sluice.Status | undefined {
  if (settings().blocked_senders?.includes(pdu.source_addr)) return 'ESME_RINVSRCADR';
  return undefined;
}

/** Which routing rule a message takes, when not the longest prefix match of its destination. */
function ruleFor(session: Sluice.Session): string | undefined {
  return settings().esme_rules?.[session.systemId];
}

// Returned, not awaited: the core answers the ESME with the forward's result as soon as it has it.
function submit(pdu: Sluice.SubmitSm | Sluice.SubmitSmMulti | Sluice.DataSm, session: Sluice.Session) {
  const status = refuse(pdu);
  if (status !== undefined) return pdu.reply({ command_status: status });
  const rule = ruleFor(session);
  return smpp.forward(pdu, rule === undefined ? undefined : { rule });
}

smpp.onPdu('submit_sm', submit);
smpp.onPdu('submit_sm_multi', submit);
// query, cancel and replace are answered from what the core knows of the message.
smpp.onPdu('query_sm', (pdu) => smpp.forward(pdu));
smpp.onPdu('cancel_sm', (pdu) => smpp.forward(pdu));
smpp.onPdu('replace_sm', (pdu) => smpp.forward(pdu));

// ---- from upstream SMSCs: receipts and MO --------------------------------------------

/** The ESME that owns an MO message: the longest matching prefix of its destination. */
function moOwner(destination: string): string | undefined {
  let owner: string | undefined;
  let longest = -1;
  for (const [prefix, systemId] of Object.entries(settings().mo_routes ?? {})) {
    if (destination.startsWith(prefix) && prefix.length > longest) {
      owner = systemId;
      longest = prefix.length;
    }
  }
  return owner ?? settings().mo_default;
}

async function fromUpstream(pdu: Sluice.DeliverSm | Sluice.DataSm) {
  // A receipt finds its message and ESME in the core, and is delivered once.
  if (pdu.isDlr) return smpp.forward(pdu);
  const owner = moOwner(pdu.destination_addr);
  if (owner === undefined) {
    log.warn('MO for a number no ESME owns', { to: pdu.destination_addr });
    return pdu.reply({ command_status: 'ESME_RINVDSTADR' });
  }
  return smpp.forward(pdu, { to: owner });
}

smpp.onPdu('deliver_sm', fromUpstream);
smpp.onPdu('data_sm', (pdu, session) => (session.kind === 'esme' ? submit(pdu, session) : fromUpstream(pdu)));

// ---- lifecycle ---------------------------------------------------------------------------

smpp.onSession('bound', (s) => log.info(s.kind === 'esme' ? 'esme bound' : 'upstream bound', { id: s.systemId }));
smpp.onSession('unbound', (s) => log.info(s.kind === 'esme' ? 'esme unbound' : 'upstream lost', { id: s.systemId }));
