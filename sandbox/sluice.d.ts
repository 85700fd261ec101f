// One file on purpose: the whole API a policy author sees, in the one declaration file their editor
// and `sluice check` read (its status list and TLVs are checked against the codec by the suite).
/**
 * Sluice policy API — what a tenant policy can see and call.
 *
 * A policy is ONE TypeScript or JavaScript file, run as a script (not a
 * module) in its own isolate. Its top level registers handlers and does
 * nothing else; handlers run once per bind, PDU, session event or timer.
 * The sandbox gives it the standard ECMAScript library (ES2022) and three
 * globals: `smpp`, `cache` and `log`. There is no `process`, `require`,
 * `console`, `setTimeout`, `fetch`, `eval`, `Function(...)`, `WeakRef`,
 * `FinalizationRegistry`, `SharedArrayBuffer`, `Atomics` or `WebAssembly`.
 *
 * Types live in the `Sluice` namespace: `(pdu: Sluice.SubmitSm) => …`.
 * Editors: `/// <reference path="sluice.d.ts" />` at the top of a policy, or
 * `import type { Pdu } from "sluice";` (type-only imports are erased).
 * Check a policy with `sluice check <policy>`.
 *
 * Everything that crosses into or out of the sandbox is copied: plain data
 * only (null, booleans, finite numbers, strings, Uint8Array, arrays, plain
 * objects). Hard failures of host calls reject with a {@link Sluice.SluiceError}
 * carrying a `code`.
 */

declare namespace Sluice {
  // ---------------------------------------------------------------------------
  // Plain data

  /** A value `JSON.stringify` keeps as it is: what the cache stores and timers carry. */
  type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json | undefined };

  /**
   * `T` when it survives `JSON.stringify` as it is — strings, numbers,
   * booleans, null, and arrays and objects of those, interfaces included —
   * else a type no value has, so the call does not compile. Catches a
   * `Uint8Array`, `Date`, `Map`, function, `bigint` or `undefined` headed for
   * the cache before it is silently mangled.
   */
  type JsonCompatible<T> = T extends Json
    ? T
    : T extends undefined | symbol | bigint | ((...args: never[]) => unknown) | ArrayBufferView | ArrayBufferLike | Date | RegExp | Map<unknown, unknown> | Set<unknown> | Promise<unknown>
      ? never
      : { [K in keyof T]: JsonMember<T[K]> };

  /** An object member or array element: like {@link JsonCompatible}, but `undefined` is fine (JSON drops it). */
  type JsonMember<T> = T extends undefined ? undefined : JsonCompatible<T>;

  /** A handler's result: the value itself or a promise of it. */
  type Awaitable<T> = T | Promise<T>;

  /** Message content to send: raw bytes (sent byte-exact) or text (encoded per `data_coding`). */
  type MessageBody = Uint8Array | string;

  // ---------------------------------------------------------------------------
  // Statuses

  /** SMPP 3.4 command_status names (with the SMPP 5.0 additions the codec knows). */
  type StatusName =
    /** 0x00 No error. */
    | 'ESME_ROK'
    /** 0x01 Message length is invalid. */
    | 'ESME_RINVMSGLEN'
    /** 0x02 Command length is invalid. */
    | 'ESME_RINVCMDLEN'
    /** 0x03 Invalid command id. */
    | 'ESME_RINVCMDID'
    /** 0x04 Incorrect bind status for the given command. */
    | 'ESME_RINVBNDSTS'
    /** 0x05 ESME already in bound state. */
    | 'ESME_RALYBND'
    /** 0x06 Invalid priority flag. */
    | 'ESME_RINVPRTFLG'
    /** 0x07 Invalid registered delivery flag. */
    | 'ESME_RINVREGDLVFLG'
    /** 0x08 System error. */
    | 'ESME_RSYSERR'
    /** 0x0A Invalid source address. */
    | 'ESME_RINVSRCADR'
    /** 0x0B Invalid destination address. */
    | 'ESME_RINVDSTADR'
    /** 0x0C Message id is invalid. */
    | 'ESME_RINVMSGID'
    /** 0x0D Bind failed. */
    | 'ESME_RBINDFAIL'
    /** 0x0E Invalid password. */
    | 'ESME_RINVPASWD'
    /** 0x0F Invalid system id. */
    | 'ESME_RINVSYSID'
    /** 0x11 cancel_sm failed. */
    | 'ESME_RCANCELFAIL'
    /** 0x13 replace_sm failed. */
    | 'ESME_RREPLACEFAIL'
    /** 0x14 Message queue full. */
    | 'ESME_RMSGQFUL'
    /** 0x15 Invalid service type. */
    | 'ESME_RINVSERTYP'
    /** 0x33 Invalid number of destinations. */
    | 'ESME_RINVNUMDESTS'
    /** 0x34 Invalid distribution list name. */
    | 'ESME_RINVDLNAME'
    /** 0x40 Destination flag is invalid (submit_multi). */
    | 'ESME_RINVDESTFLAG'
    /** 0x42 Invalid submit-with-replace request. */
    | 'ESME_RINVSUBREP'
    /** 0x43 Invalid esm_class field data. */
    | 'ESME_RINVESMCLASS'
    /** 0x44 Cannot submit to distribution list. */
    | 'ESME_RCNTSUBDL'
    /** 0x45 submit_sm or submit_multi failed. */
    | 'ESME_RSUBMITFAIL'
    /** 0x48 Invalid source address TON. */
    | 'ESME_RINVSRCTON'
    /** 0x49 Invalid source address NPI. */
    | 'ESME_RINVSRCNPI'
    /** 0x50 Invalid destination address TON. */
    | 'ESME_RINVDSTTON'
    /** 0x51 Invalid destination address NPI. */
    | 'ESME_RINVDSTNPI'
    /** 0x53 Invalid system_type field. */
    | 'ESME_RINVSYSTYP'
    /** 0x54 Invalid replace_if_present flag. */
    | 'ESME_RINVREPFLAG'
    /** 0x55 Invalid number of messages. */
    | 'ESME_RINVNUMMSGS'
    /** 0x58 Throttling error: the ESME exceeded its allowed message rate. */
    | 'ESME_RTHROTTLED'
    /** 0x61 Invalid scheduled delivery time. */
    | 'ESME_RINVSCHED'
    /** 0x62 Invalid message validity period (expiry time). */
    | 'ESME_RINVEXPIRY'
    /** 0x63 Predefined message is invalid or not found. */
    | 'ESME_RINVDFTMSGID'
    /** 0x64 ESME receiver temporary application error. */
    | 'ESME_RX_T_APPN'
    /** 0x65 ESME receiver permanent application error. */
    | 'ESME_RX_P_APPN'
    /** 0x66 ESME receiver reject message error. */
    | 'ESME_RX_R_APPN'
    /** 0x67 query_sm failed. */
    | 'ESME_RQUERYFAIL'
    /** 0xC0 Error in the optional part of the PDU body. */
    | 'ESME_RINVTLVSTREAM'
    /** 0xC1 Optional parameter (TLV) not allowed. */
    | 'ESME_RTLVNOTALLWD'
    /** 0xC2 Invalid parameter length. */
    | 'ESME_RINVTLVLEN'
    /** 0xC3 Expected optional parameter missing. */
    | 'ESME_RMISSINGTLV'
    /** 0xC4 Invalid optional parameter value. */
    | 'ESME_RINVTLVVAL'
    /** 0xFE Delivery failure (data_sm_resp). */
    | 'ESME_RDELIVERYFAILURE'
    /** 0xFF Unknown error. */
    | 'ESME_RUNKNOWNERR'
    /** 0x100 ESME not authorised to use the specified service type (SMPP 5.0). */
    | 'ESME_RSERTYPUNAUTH'
    /** 0x101 ESME prohibited from using the specified operation (SMPP 5.0). */
    | 'ESME_RPROHIBITED'
    /** 0x102 Specified service type is unavailable (SMPP 5.0). */
    | 'ESME_RSERTYPUNAVAIL'
    /** 0x103 Specified service type is denied (SMPP 5.0). */
    | 'ESME_RSERTYPDENIED'
    /** 0x104 Invalid data coding scheme (SMPP 5.0). */
    | 'ESME_RINVDCS'
    /** 0x105 Source address subunit is invalid (SMPP 5.0). */
    | 'ESME_RINVSRCADDRSUBUNIT'
    /** 0x106 Destination address subunit is invalid (SMPP 5.0). */
    | 'ESME_RINVDSTADDRSUBUNIT'
    /** 0x107 Broadcast frequency interval is invalid (SMPP 5.0). */
    | 'ESME_RINVBCASTFREQINT'
    /** 0x108 Broadcast alias name is invalid (SMPP 5.0). */
    | 'ESME_RINVBCASTALIAS_NAME'
    /** 0x109 Broadcast area format is invalid (SMPP 5.0). */
    | 'ESME_RINVBCASTAREAFMT'
    /** 0x10A Number of broadcast areas is invalid (SMPP 5.0). */
    | 'ESME_RINVNUMBCAST_AREAS'
    /** 0x10B Broadcast content type is invalid (SMPP 5.0). */
    | 'ESME_RINVBCASTCNTTYPE'
    /** 0x10C Broadcast message class is invalid (SMPP 5.0). */
    | 'ESME_RINVBCASTMSGCLASS'
    /** 0x10D broadcast_sm failed (SMPP 5.0). */
    | 'ESME_RBCASTFAIL'
    /** 0x10E query_broadcast_sm failed (SMPP 5.0). */
    | 'ESME_RBCASTQUERYFAIL'
    /** 0x10F cancel_broadcast_sm failed (SMPP 5.0). */
    | 'ESME_RBCASTCANCELFAIL'
    /** 0x110 Number of repeated broadcasts is invalid (SMPP 5.0). */
    | 'ESME_RINVBCAST_REP'
    /** 0x111 Broadcast service group is invalid (SMPP 5.0). */
    | 'ESME_RINVBCASTSRVGRP'
    /** 0x112 Broadcast channel indicator is invalid (SMPP 5.0). */
    | 'ESME_RINVBCASTCHANIND';

  /** A command_status SMPP has no name for, as 8 hex digits (`"0x00000400"`), as an upstream sent it. */
  type UnnamedStatus = `0x${string}`;

  /** A command_status as Sluice reports it: its name, or its hex form when it has none. */
  type Status = StatusName | UnnamedStatus;

  // ---------------------------------------------------------------------------
  // Errors

  /** Codes of the errors host calls reject with. */
  type ErrorCode =
    /** A field handed to a send helper, reply or cache cannot be encoded (bad type, unrepresentable text, too long, not JSON). */
    | 'INVALID_FIELD'
    /** The named outbound bind is not bound right now. */
    | 'BIND_DOWN'
    /** The peer did not answer within its response timer. */
    | 'TIMEOUT'
    /** Refused by a token bucket, a full window, or too many host calls in flight (`max_pending`). */
    | 'THROTTLED'
    /** This tenant has no outbound bind of that name. */
    | 'UNKNOWN_BIND'
    /** This tenant has no bound session of that id (any more). */
    | 'UNKNOWN_SESSION'
    /** The session closed before the peer answered. */
    | 'SESSION_CLOSED'
    /** A command_status name that does not exist (thrown at once by `reply`/`reject`). */
    | 'UNKNOWN_STATUS'
    /** A cache write over the tenant's `max_cache_mb` / `max_value_kb`; nothing was written. */
    | 'QUOTA_EXCEEDED'
    /** The shared store did not answer, so a message for an ESME not bound here could not be held. */
    | 'STORE_UNAVAILABLE'
    /** The call failed for a reason of the host's own; the message says no more. */
    | 'HOST_ERROR';

  /**
   * What a host call rejects with. An ordinary `Error` (there is no
   * `SluiceError` constructor to test with `instanceof`): match it by `code`.
   */
  interface SluiceError extends Error {
    /** Always "SluiceError". */
    readonly name: 'SluiceError';
    /** Which failure this is; stable, unlike the message. */
    readonly code: ErrorCode;
  }

  // ---------------------------------------------------------------------------
  // Binds and sessions

  /** An inbound `bind_transceiver` to authorise. No handler, or no decision → rejected. */
  interface BindRequest {
    /** Id of the new session; the `sessionId` of `deliverTo`/`dataTo`/`alertTo` once bound. */
    readonly sessionId: string;
    /** `system_id` the ESME bound with (it already maps to this tenant). */
    readonly systemId: string;
    /** `password` the ESME bound with, to compare against your own store. */
    readonly password: string;
    /** `system_type` the ESME bound with ('' when none). */
    readonly systemType: string;
    /** `interface_version` the ESME bound with (0x34 for SMPP 3.4). */
    readonly interfaceVersion: number;
    /** Remote address of the ESME, `host:port`. */
    readonly clientAddr: string;
    /** Accept the bind. */
    accept(): BindResult;
    /** Refuse the bind with a status (e.g. ESME_RINVPASWD); `reason` is logged, never sent. An unknown name throws UNKNOWN_STATUS. */
    reject(status: StatusName | number, reason?: string): BindResult;
  }

  /** A bind decision made by `bind.accept()` / `bind.reject()`; return it from the handler. */
  interface BindResult {
    /** Brand: only `accept()` and `reject()` make one. */
    readonly __sluiceBindResult: true;
  }

  /** An inbound ESME bound to us. */
  type EsmeSession = {
    /** An ESME session. */
    readonly kind: 'esme';
    /** Session id; pass it to `deliverTo`/`dataTo`/`alertTo`. */
    readonly sessionId: string;
    /** The ESME's `system_id`. */
    readonly systemId: string;
    /** The ESME's remote address, `host:port`. */
    readonly clientAddr: string;
    /** Only bind sessions name an outbound bind. */
    readonly bind?: undefined;
  };

  /** One of this tenant's outbound binds to an upstream SMSC. */
  type BindSession = {
    /** An outbound bind session. */
    readonly kind: 'bind';
    /** Session id of this bind connection. */
    readonly sessionId: string;
    /** The `system_id` we bound with. */
    readonly systemId: string;
    /** The upstream's address, `host:port`. */
    readonly clientAddr: string;
    /** Name of the outbound bind (`binds[].name`), as used with `submitVia`. */
    readonly bind: string;
  };

  /** A session: an inbound ESME or one of our outbound binds. Narrow on `kind`. */
  type Session = EsmeSession | BindSession;

  /** Session lifecycle events. */
  type SessionEvent = 'bound' | 'unbound';

  // ---------------------------------------------------------------------------
  // PDUs

  /** Message PDUs a policy can handle with `smpp.onPdu`. */
  type Command =
    | 'submit_sm'
    | 'submit_sm_multi'
    | 'data_sm'
    | 'cancel_sm'
    | 'query_sm'
    | 'replace_sm'
    | 'deliver_sm'
    | 'alert_notification';

  /** A TLV Sluice has no name for, kept byte-exact; pass it back in a send to forward it. */
  interface UnknownTlv {
    /** The TLV tag. */
    readonly tag: number;
    /** The TLV value. */
    readonly value: Uint8Array;
  }

  /** A submit_sm_multi destination: an SME address. */
  type DestinationAddress = {
    /** Type of number of the destination. */
    readonly dest_addr_ton: number;
    /** Numbering plan indicator of the destination. */
    readonly dest_addr_npi: number;
    /** The destination address. */
    readonly destination_addr: string;
  };

  /** A submit_sm_multi destination: a distribution list held by the SMSC. */
  type DistributionList = {
    /** Name of the distribution list. */
    readonly dl_name: string;
  };

  /** One destination of submit_sm_multi. Narrow with `"dl_name" in d`. */
  type Destination = DestinationAddress | DistributionList;

  /**
   * A delivery receipt, read from the SMPP 3.4 Appendix B text body
   * (`id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`),
   * with the receipt TLVs filling what the body lacks. Values are kept as text.
   */
  type Receipt = {
    /** The message id the receipt is for (body `id:`, else `receipted_message_id`). */
    readonly id: string;
    /** Number of messages originally submitted (`sub:`). */
    readonly sub?: string;
    /** Number of messages delivered (`dlvrd:`). */
    readonly dlvrd?: string;
    /** When the message was submitted, as written (`submit date:`). */
    readonly submit_date?: string;
    /** When it reached its final state, as written (`done date:`). */
    readonly done_date?: string;
    /** Final state, upper case: DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, ENROUTE… */
    readonly stat: string;
    /** Network error code (`err:`, else from `network_error_code`). */
    readonly err?: string;
    /** The first characters of the original message (`text:`). */
    readonly text?: string;
    /** The receipt body as received ('' when there was none). */
    readonly raw: string;
  };

  /** Named TLVs (optional parameters) of SMPP 3.4, plus the SMPP 5.0 ones the codec knows. */
  interface Tlvs {
    /** 0x0005 Subunit of the destination MS (0 unknown, 1 display, 2 mobile equipment, 3 SIM, 4 external unit). */
    dest_addr_subunit?: number;
    /** 0x0006 Network type of the destination. */
    dest_network_type?: number;
    /** 0x0007 Bearer type to deliver over. */
    dest_bearer_type?: number;
    /** 0x0008 Telematics id of the destination. */
    dest_telematics_id?: number;
    /** 0x000D Subunit of the originating MS. */
    source_addr_subunit?: number;
    /** 0x000E Network type of the originator. */
    source_network_type?: number;
    /** 0x000F Bearer type of the originator. */
    source_bearer_type?: number;
    /** 0x0010 Telematics id of the originator. */
    source_telematics_id?: number;
    /** 0x0017 Seconds the message lives before it expires. */
    qos_time_to_live?: number;
    /** 0x0019 Payload type (0 default/WDP, 1 WCMP). */
    payload_type?: number;
    /** 0x001D Free-text detail of a status. */
    additional_status_info_text?: string;
    /** 0x001E The message id a delivery receipt refers to. */
    receipted_message_id?: string;
    /** 0x0030 Message-waiting indication (voicemail, fax, e-mail, other). */
    ms_msg_wait_facilities?: number;
    /** 0x0201 Privacy level (0 not restricted … 3 secret). */
    privacy_indicator?: number;
    /** 0x0202 Subaddress of the originator. */
    source_subaddress?: Uint8Array;
    /** 0x0203 Subaddress of the destination. */
    dest_subaddress?: Uint8Array;
    /** 0x0204 The ESME's own reference for the message. */
    user_message_reference?: number;
    /** 0x0205 Application response code (e.g. a menu choice). */
    user_response_code?: number;
    /** 0x020A Originating application port (WAP/WDP). */
    source_port?: number;
    /** 0x020B Destination application port (WAP/WDP). */
    dest_port?: number;
    /** 0x020C Concatenated message reference number (SAR). */
    sar_msg_ref_num?: number;
    /** 0x020D Language of the message. */
    language_indicator?: number;
    /** 0x020E Number of segments of the concatenated message (SAR). */
    sar_total_segments?: number;
    /** 0x020F Sequence number of this segment, from 1 (SAR). */
    sar_segment_seqnum?: number;
    /** 0x0210 SMPP version supported by the SMSC. */
    sc_interface_version?: number;
    /** 0x0302 Presentation/screening of each callback number. */
    callback_num_pres_ind?: readonly number[];
    /** 0x0303 Alphanumeric display tag of each callback number. */
    callback_num_atag?: readonly Uint8Array[];
    /** 0x0304 Number of messages waiting in the mailbox. */
    number_of_messages?: number;
    /** 0x0381 Callback numbers. */
    callback_num?: readonly Uint8Array[];
    /** 0x0420 Whether a delivery-pending flag was set (data_sm_resp). */
    dpf_result?: number;
    /** 0x0421 Request an alert_notification when the MS becomes available. */
    set_dpf?: number;
    /** 0x0422 Availability of the MS (alert_notification: 0 available, 1 denied, 2 unavailable). */
    ms_availability_status?: number;
    /** 0x0423 Network error: 3 octets, network type then a 2-octet error code. */
    network_error_code?: Uint8Array;
    /** 0x0424 The message content when it does not fit `short_message` (up to 64 KB). */
    message_payload?: Uint8Array;
    /** 0x0425 Why a data_sm delivery failed. */
    delivery_failure_reason?: number;
    /** 0x0426 More messages follow for the same destination. */
    more_messages_to_send?: number;
    /** 0x0427 Message state in a receipt (1 ENROUTE, 2 DELIVERED, 3 EXPIRED, 4 DELETED, 5 UNDELIVERABLE, 6 ACCEPTED, 7 UNKNOWN, 8 REJECTED). */
    message_state?: number;
    /** 0x0428 Congestion of the SMSC, 0–100 (SMPP 5.0). */
    congestion_state?: number;
    /** 0x0501 USSD service operation. */
    ussd_service_op?: number;
    /** 0x0600 Cell broadcast channel indicator (SMPP 5.0). */
    broadcast_channel_indicator?: number;
    /** 0x0601 Cell broadcast content type (SMPP 5.0). */
    broadcast_content_type?: Uint8Array;
    /** 0x0602 Cell broadcast content type information (SMPP 5.0). */
    broadcast_content_type_info?: string;
    /** 0x0603 Cell broadcast message class (SMPP 5.0). */
    broadcast_message_class?: number;
    /** 0x0604 Number of repeated broadcasts (SMPP 5.0). */
    broadcast_rep_num?: number;
    /** 0x0605 Broadcast frequency interval (SMPP 5.0). */
    broadcast_frequency_interval?: Uint8Array;
    /** 0x0606 Broadcast areas (SMPP 5.0). */
    broadcast_area_identifier?: readonly Uint8Array[];
    /** 0x0607 Broadcast error statuses (SMPP 5.0). */
    broadcast_error_status?: readonly number[];
    /** 0x0608 Broadcast success rate, percent (SMPP 5.0). */
    broadcast_area_success?: number;
    /** 0x0609 Broadcast end time (SMPP 5.0). */
    broadcast_end_time?: string;
    /** 0x060A Broadcast service group (SMPP 5.0). */
    broadcast_service_group?: string;
    /** 0x060B Billing information (SMPP 5.0). */
    billing_identification?: Uint8Array;
    /** 0x060D Network id of the originator (SMPP 5.0). */
    source_network_id?: string;
    /** 0x060E Network id of the destination (SMPP 5.0). */
    dest_network_id?: string;
    /** 0x060F Node id of the originator (SMPP 5.0). */
    source_node_id?: string;
    /** 0x0610 Node id of the destination (SMPP 5.0). */
    dest_node_id?: string;
    /** 0x0611 Number portability resolution (SMPP 5.0). */
    dest_addr_np_resolution?: number;
    /** 0x0612 Number portability information (SMPP 5.0). */
    dest_addr_np_information?: string;
    /** 0x0613 Number portability country (SMPP 5.0). */
    dest_addr_np_country?: number;
    /** 0x1201 How the MS displays the message. */
    display_time?: number;
    /** 0x1203 Alerting signal for the message. */
    sms_signal?: number;
    /** 0x1204 How long the MS keeps the message. */
    ms_validity?: Uint8Array;
    /** 0x130C Ask the MS to alert the user on delivery. */
    alert_on_message_delivery?: number;
    /** 0x130C The same TLV under its other name. */
    alert_on_msg_delivery?: number;
    /** 0x1380 Reply method for an ITS (interactive teleservice). */
    its_reply_type?: number;
    /** 0x1383 ITS session information. */
    its_session_info?: Uint8Array;
    /** 0x0606 Broadcast areas that failed (SMPP 5.0). */
    failed_broadcast_area_identifier?: readonly Uint8Array[];
  }

  /**
   * What every received PDU has. SMPP 3.4 field names with the raw values
   * off the wire (addresses and times as strings, flags as numbers, byte
   * fields as `Uint8Array`), named TLVs, and `unknown_tlvs`.
   */
  interface PduBase<C extends Command> extends Tlvs {
    /** The SMPP command; narrows {@link Pdu}. */
    readonly command: C;
    /** The PDU's sequence_number. */
    readonly sequence_number: number;
    /** TLVs Sluice has no name for, byte-exact in arrival order. */
    unknown_tlvs?: UnknownTlv[];
    /** Any other field or TLV the codec decoded. */
    [field: string]: unknown;
  }

  /** Fields of a received message that carries content (submit_sm, submit_sm_multi, deliver_sm, data_sm, replace_sm). */
  interface ContentFields {
    /** The message as received, raw bytes (any UDH included) so forwarding is byte-exact. */
    short_message: Uint8Array;
    /** The text of `message_payload` (or else `short_message`) decoded per `data_coding` (GSM 03.38, IA5, Latin-1, UCS-2), UDH removed; absent for binary codings. */
    text?: string;
    /** The user data header (its UDHL length octet included) when `esm_class` has UDHI (0x40) set. */
    udh?: Uint8Array;
  }

  /** Source address fields. */
  interface SourceAddress {
    /** Type of number of the source address (0 unknown, 1 international, 5 alphanumeric, …). */
    source_addr_ton: number;
    /** Numbering plan indicator of the source address (0 unknown, 1 E.164, …). */
    source_addr_npi: number;
    /** The source address ('' when the SMSC should fill it). */
    source_addr: string;
  }

  /** Destination address fields. */
  interface DestAddress {
    /** Type of number of the destination address. */
    dest_addr_ton: number;
    /** Numbering plan indicator of the destination address. */
    dest_addr_npi: number;
    /** The destination address. */
    destination_addr: string;
  }

  /** Message options shared by submit_sm, submit_sm_multi and deliver_sm. */
  interface MessageOptions {
    /** Service type ('' for the default). */
    service_type: string;
    /** Message mode and type: 0x04 delivery receipt, 0x40 UDHI, 0x80 reply path, … */
    esm_class: number;
    /** GSM protocol id. */
    protocol_id: number;
    /** Priority (0 lowest … 3 highest). */
    priority_flag: number;
    /** When to deliver, SMPP time format ('' for now). */
    schedule_delivery_time: string;
    /** When the message expires, SMPP time format, absolute or relative ('' for the SMSC default). */
    validity_period: string;
    /** Receipts requested: bits 0–1 SMSC receipt (1 always, 2 on failure), 2–3 SME acks, 4 intermediate notifications. */
    registered_delivery: number;
    /** Replace a pending message with the same source, destination and service type (1) or not (0). */
    replace_if_present_flag: number;
    /** Data coding scheme of `short_message` (0 SMSC default/GSM, 1 IA5, 3 Latin-1, 8 UCS-2, 4 binary, …). */
    data_coding: number;
    /** Id of a predefined SMSC message (0 for none). */
    sm_default_msg_id: number;
  }

  /** A reply with a message id: submit_sm, submit_sm_multi, data_sm. */
  interface IdReply {
    /** The message id to give the ESME; omitted → Sluice generates one. Ignored with an error status. */
    message_id?: string;
    /** The response status; omitted → ESME_ROK. An unknown name throws UNKNOWN_STATUS. */
    command_status?: Status | number;
  }

  /** A reply that carries only a status: cancel_sm, replace_sm, deliver_sm, query_sm errors. */
  interface StatusReply {
    /** The response status; omitted → ESME_ROK. An unknown name throws UNKNOWN_STATUS. */
    command_status?: Status | number;
  }

  /** A successful query_sm answer. */
  interface QueryReply {
    /** State of the queried message (1 ENROUTE, 2 DELIVERED, 3 EXPIRED, 4 DELETED, 5 UNDELIVERABLE, 6 ACCEPTED, 7 UNKNOWN, 8 REJECTED). */
    message_state: number;
    /** When it reached its final state, SMPP absolute time ('' when not final). */
    final_date?: string;
    /** Network error code for a failed delivery (0 for none). */
    error_code?: number;
  }

  /**
   * The answer a handler made with `pdu.reply()` / `pdu.replyQuery()`.
   * Return it (or just call `reply`); returning nothing takes the default of
   * the operation table.
   */
  interface PduReply {
    /** Brand: only `reply()` and `replyQuery()` make one. */
    readonly __sluicePduReply: true;
  }

  /** submit_sm from one of our ESMEs. Default with no handler or no reply: ESME_ROK with a generated message_id. */
  interface SubmitSm extends PduBase<'submit_sm'>, SourceAddress, DestAddress, MessageOptions, ContentFields {
    /** Answer the submit: `{ message_id }` or `{ command_status }`. */
    reply(answer?: IdReply): PduReply;
  }

  /** submit_sm_multi from one of our ESMEs. Default: ESME_RSYSERR. */
  interface SubmitSmMulti extends PduBase<'submit_sm_multi'>, SourceAddress, MessageOptions, ContentFields {
    /** Where the message goes: SME addresses and distribution lists. */
    destinations: Destination[];
    /** Answer the submit: `{ message_id }` or `{ command_status }`. */
    reply(answer?: IdReply): PduReply;
  }

  /** deliver_sm on one of our outbound binds: a mobile-originated message or a delivery receipt. Default: ESME_ROK. */
  interface DeliverSm extends PduBase<'deliver_sm'>, SourceAddress, DestAddress, MessageOptions, ContentFields {
    /** True when esm_class marks a delivery receipt or intermediate notification. */
    isDlr: boolean;
    /** The parsed receipt, when `isDlr` and the body or TLVs name a message id. */
    receipt?: Receipt;
    /** Answer the deliver_sm: `reply()` acks, `{ command_status }` refuses. */
    reply(answer?: StatusReply): PduReply;
  }

  /** data_sm, from one of our ESMEs or on one of our binds (then possibly a receipt). Default: ESME_RSYSERR. */
  interface DataSm extends PduBase<'data_sm'>, SourceAddress, DestAddress {
    /** Service type ('' for the default). */
    service_type: string;
    /** Message mode and type: 0x04 delivery receipt, 0x40 UDHI, … */
    esm_class: number;
    /** Receipts requested (see submit_sm). */
    registered_delivery: number;
    /** Data coding scheme of `message_payload`. */
    data_coding: number;
    /** The message text decoded from `message_payload` per `data_coding`, UDH removed; absent for binary codings. */
    text?: string;
    /** The user data header (UDHL included) when `esm_class` has UDHI set. */
    udh?: Uint8Array;
    /** True when esm_class marks a delivery receipt or intermediate notification. */
    isDlr: boolean;
    /** The parsed receipt, when `isDlr` and the body or TLVs name a message id. */
    receipt?: Receipt;
    /** Answer the data_sm: `{ message_id }` or `{ command_status }`. */
    reply(answer?: IdReply): PduReply;
  }

  /** cancel_sm from one of our ESMEs. Default: ESME_RCANCELFAIL. */
  interface CancelSm extends PduBase<'cancel_sm'>, SourceAddress, DestAddress {
    /** Service type of the message(s) to cancel. */
    service_type: string;
    /** Id of the message to cancel ('' to cancel by source, destination and service type). */
    message_id: string;
    /** Answer the cancel: `reply()` for success, `{ command_status }` to refuse. */
    reply(answer?: StatusReply): PduReply;
  }

  /** query_sm from one of our ESMEs. Default: ESME_RQUERYFAIL. */
  interface QuerySm extends PduBase<'query_sm'>, SourceAddress {
    /** Id of the message being queried (an id this gateway gave the ESME). */
    message_id: string;
    /** Answer with the message's state. */
    replyQuery(answer: QueryReply): PduReply;
    /** Refuse the query: `{ command_status: "ESME_RQUERYFAIL" }`. */
    reply(answer?: StatusReply): PduReply;
  }

  /** replace_sm from one of our ESMEs. Default: ESME_RREPLACEFAIL. */
  interface ReplaceSm extends PduBase<'replace_sm'>, SourceAddress {
    /** Id of the message to replace. */
    message_id: string;
    /** New scheduled delivery time ('' to keep). */
    schedule_delivery_time: string;
    /** New validity period ('' to keep). */
    validity_period: string;
    /** New receipt request. */
    registered_delivery: number;
    /** New predefined message id (0 for none). */
    sm_default_msg_id: number;
    /** The new message, raw bytes. */
    short_message: Uint8Array;
    /** The new message decoded per the original's data coding, when known. */
    text?: string;
    /** Answer the replace: `reply()` for success, `{ command_status }` to refuse. */
    reply(answer?: StatusReply): PduReply;
  }

  /** alert_notification on one of our binds: an MS became reachable. It has no response. */
  interface AlertNotification extends PduBase<'alert_notification'>, SourceAddress {
    /** Type of number of the ESME address. */
    esme_addr_ton: number;
    /** Numbering plan indicator of the ESME address. */
    esme_addr_npi: number;
    /** The ESME address the alert is for. */
    esme_addr: string;
  }

  /** The PDU type each command's handler receives. */
  interface PduMap {
    /** submit_sm from an ESME. */
    submit_sm: SubmitSm;
    /** submit_sm_multi from an ESME. */
    submit_sm_multi: SubmitSmMulti;
    /** data_sm from an ESME or on a bind. */
    data_sm: DataSm;
    /** cancel_sm from an ESME. */
    cancel_sm: CancelSm;
    /** query_sm from an ESME. */
    query_sm: QuerySm;
    /** replace_sm from an ESME. */
    replace_sm: ReplaceSm;
    /** deliver_sm on a bind. */
    deliver_sm: DeliverSm;
    /** alert_notification on a bind. */
    alert_notification: AlertNotification;
  }

  /** The session each command arrives on. */
  interface SessionMap {
    /** From an ESME. */
    submit_sm: EsmeSession;
    /** From an ESME. */
    submit_sm_multi: EsmeSession;
    /** From an ESME or on a bind. */
    data_sm: Session;
    /** From an ESME. */
    cancel_sm: EsmeSession;
    /** From an ESME. */
    query_sm: EsmeSession;
    /** From an ESME. */
    replace_sm: EsmeSession;
    /** On a bind. */
    deliver_sm: BindSession;
    /** On a bind. */
    alert_notification: BindSession;
  }

  /** Any received PDU; narrow on `pdu.command`. */
  type Pdu = PduMap[Command];

  /** The received PDU type of one command: `PduOf<"submit_sm">` is {@link SubmitSm}. */
  type PduOf<C extends Command> = PduMap[C];

  // ---------------------------------------------------------------------------
  // Sending

  /** Named TLVs as sent: like {@link Tlvs}, but `message_payload` may also be text. */
  interface OutgoingTlvs extends Omit<Tlvs, 'message_payload'> {
    /** Content too long for `short_message`: bytes as they are, or text encoded per `data_coding`. */
    message_payload?: MessageBody;
  }

  /**
   * Fields common to every send. Omitted fields take their SMPP defaults (0 or '').
   * Derived keys of a received PDU (`text`, `isDlr`, `receipt`, `command`, …)
   * are ignored, so `{ ...pdu, destination_addr }` forwards a PDU.
   */
  interface SendFieldsBase extends OutgoingTlvs {
    /** Unknown TLVs to send as they are (e.g. `pdu.unknown_tlvs`, to forward them). */
    unknown_tlvs?: readonly UnknownTlv[];
  }

  /** Content of a send: bytes sent byte-exact, or text encoded per `data_coding`. */
  interface OutgoingContent {
    /** Bytes (any UDH included) or text; text over 254 octets once encoded needs `message_payload`. */
    short_message?: MessageBody;
    /** Data coding; omitted with text → GSM 03.38 when it can carry the text, else UCS-2 (8). */
    data_coding?: number;
    /** A UDH (UDHL octet first) put before a text `short_message`/`message_payload`; sets UDHI in esm_class. */
    udh?: Uint8Array;
  }

  /** Optional source address of a send. */
  interface OutgoingSource {
    /** Type of number of the source address. */
    source_addr_ton?: number;
    /** Numbering plan indicator of the source address. */
    source_addr_npi?: number;
    /** The source address. */
    source_addr?: string;
  }

  /** Optional message options of a send (see {@link MessageOptions}). */
  interface OutgoingOptions {
    /** Service type. */
    service_type?: string;
    /** esm_class: 0x04 marks a delivery receipt, 0x40 UDHI. */
    esm_class?: number;
    /** GSM protocol id. */
    protocol_id?: number;
    /** Priority, 0–3. */
    priority_flag?: number;
    /** Scheduled delivery time, SMPP time format. */
    schedule_delivery_time?: string;
    /** Validity period, SMPP time format. */
    validity_period?: string;
    /** Receipts requested. */
    registered_delivery?: number;
    /** Replace a pending message (1) or not (0). */
    replace_if_present_flag?: number;
    /** Predefined message id. */
    sm_default_msg_id?: number;
  }

  /** Fields of `smpp.submitVia`. */
  interface SubmitFields extends SendFieldsBase, OutgoingSource, OutgoingOptions, OutgoingContent {
    /** Type of number of the destination. */
    dest_addr_ton?: number;
    /** Numbering plan indicator of the destination. */
    dest_addr_npi?: number;
    /** Where the message goes. */
    destination_addr: string;
  }

  /** Fields of `smpp.submitMultiVia`. */
  interface SubmitMultiFields extends SendFieldsBase, OutgoingSource, OutgoingOptions, OutgoingContent {
    /** 1–254 destinations: SME addresses and distribution lists. */
    destinations: readonly OutgoingDestination[];
  }

  /** A submit_sm_multi destination to send to: an address (TON/NPI default 0) or a distribution list. */
  type OutgoingDestination =
    | {
        /** Type of number of the destination (default 0). */
        readonly dest_addr_ton?: number;
        /** Numbering plan indicator of the destination (default 0). */
        readonly dest_addr_npi?: number;
        /** The destination address. */
        readonly destination_addr: string;
      }
    | DistributionList;

  /** Fields of `smpp.dataVia` and `smpp.dataTo` (content goes in `message_payload`). */
  interface DataFields extends SendFieldsBase, OutgoingSource {
    /** Service type. */
    service_type?: string;
    /** Type of number of the destination. */
    dest_addr_ton?: number;
    /** Numbering plan indicator of the destination. */
    dest_addr_npi?: number;
    /** Where the message goes (for `dataTo`, usually the ESME's address). */
    destination_addr?: string;
    /** esm_class: 0x04 marks a delivery receipt, 0x40 UDHI. */
    esm_class?: number;
    /** Receipts requested. */
    registered_delivery?: number;
    /** Data coding of a text `message_payload`. */
    data_coding?: number;
    /** A UDH put before a text `message_payload`; sets UDHI in esm_class. */
    udh?: Uint8Array;
  }

  /** Fields of `smpp.cancelVia`. */
  interface CancelFields extends SendFieldsBase, OutgoingSource {
    /** Service type of the message(s) to cancel. */
    service_type?: string;
    /** Id the upstream gave the message ('' to cancel by source, destination and service type). */
    message_id?: string;
    /** Type of number of the destination. */
    dest_addr_ton?: number;
    /** Numbering plan indicator of the destination. */
    dest_addr_npi?: number;
    /** Destination of the message(s) to cancel. */
    destination_addr?: string;
  }

  /** Fields of `smpp.queryVia`. */
  interface QueryFields extends SendFieldsBase, OutgoingSource {
    /** Id the upstream gave the message. */
    message_id: string;
  }

  /** Fields of `smpp.replaceVia`. */
  interface ReplaceFields extends SendFieldsBase, OutgoingSource {
    /** Id the upstream gave the message. */
    message_id: string;
    /** New scheduled delivery time. */
    schedule_delivery_time?: string;
    /** New validity period. */
    validity_period?: string;
    /** New receipt request. */
    registered_delivery?: number;
    /** New predefined message id. */
    sm_default_msg_id?: number;
    /** The new message: bytes, or text encoded per `data_coding`. */
    short_message?: MessageBody;
    /** Data coding used to encode a text `short_message`. */
    data_coding?: number;
  }

  /** Fields of `smpp.deliverTo`: a mobile-originated message or a receipt (`esm_class: 0x04`) for an ESME. */
  interface DeliverFields extends SendFieldsBase, OutgoingSource, OutgoingOptions, OutgoingContent {
    /** Type of number of the destination. */
    dest_addr_ton?: number;
    /** Numbering plan indicator of the destination. */
    dest_addr_npi?: number;
    /** The destination address (usually the ESME's own). */
    destination_addr?: string;
  }

  /** Fields of `smpp.alertTo`. */
  interface AlertFields extends SendFieldsBase, OutgoingSource {
    /** Type of number of the ESME address. */
    esme_addr_ton?: number;
    /** Numbering plan indicator of the ESME address. */
    esme_addr_npi?: number;
    /** The ESME address the alert is for. */
    esme_addr?: string;
  }

  /** The peer accepted the request (ESME_ROK). */
  interface Accepted {
    /** The peer answered ESME_ROK. */
    readonly ok: true;
    /** Always ESME_ROK. */
    readonly command_status: 'ESME_ROK';
    /** Sent, not held. */
    readonly held?: undefined;
  }

  /**
   * `deliverTo` / `dataTo` / `alertTo` to a session of this tenant's that
   * is not bound on this replica (bound on another, or unbound a moment ago),
   * or that is not answering. The message is held in the shared store and sent when a session of the
   * same `system_id` is bound, on whichever replica; no response yet.
   */
  interface Held {
    readonly ok: true;
    readonly command_status: 'ESME_ROK';
    readonly held: true;
    readonly message_id?: undefined;
  }

  /** The peer refused the request with an error status. Transport failures throw instead. */
  interface Refused {
    /** The peer answered with an error status. */
    readonly ok: false;
    /** The status the peer answered with. */
    readonly command_status: Status;
  }

  /** Result of a send whose response carries a message id (submit_sm, submit_sm_multi, data_sm). */
  type SubmitResult =
    | (Accepted & {
        /** The id the peer gave the message; correlate its receipts with it. */
        readonly message_id: string;
      })
    | (Refused & {
        /** No id when refused. */
        readonly message_id?: undefined;
      });

  /** Result of a send whose response is only a status (cancel_sm, replace_sm, deliver_sm, alert_notification). */
  type SendResult = Accepted | Refused | Held;

  /** Result of `queryVia`. */
  type QueryResult =
    | (Accepted & {
        /** The message id queried. */
        readonly message_id?: string;
        /** The message's state (1 ENROUTE, 2 DELIVERED, 3 EXPIRED, 4 DELETED, 5 UNDELIVERABLE, 6 ACCEPTED, 7 UNKNOWN, 8 REJECTED). */
        readonly message_state: number;
        /** When it reached its final state, SMPP absolute time ('' when not final). */
        readonly final_date: string;
        /** Network error code (0 for none). */
        readonly error_code: number;
      })
    | (Refused & {
        /** No state when refused. */
        readonly message_state?: undefined;
        /** No date when refused. */
        readonly final_date?: undefined;
        /** No error code when refused. */
        readonly error_code?: undefined;
      });

  // ---------------------------------------------------------------------------
  // Read-only views

  /** Per-tenant limits (SECURITY.md, limits). */
  type Limits = {
    /** Isolate heap limit, MB. */
    readonly memory_mb: number;
    /** CPU budget per second of wall time, ms. */
    readonly cpu_ms_per_s: number;
    /** CPU time allowed to one handler call, ms. */
    readonly handler_timeout_ms: number;
    /** Wall time allowed to one PDU's handler, awaits included, ms. */
    readonly handler_deadline_ms: number;
    /** Cache quota, MB. */
    readonly max_cache_mb: number;
    /** Largest cache value, KB. */
    readonly max_value_kb: number;
    /** Largest policy script, KB. */
    readonly max_script_kb: number;
    /** Log lines per second before lines are dropped. */
    readonly max_log_per_s: number;
    /** Host calls (sends, cache, timers) in flight at once. */
    readonly max_pending: number;
    /** ESME sessions bound at once, over all the tenant's system_ids. */
    readonly max_sessions: number;
  };

  /** How an outbound bind binds. */
  type BindType = 'transceiver' | 'transmitter' | 'receiver';

  /** An outbound bind's configuration, secrets left out. */
  type BindConfig = {
    /** Name to use with `submitVia` and in routing chains. */
    readonly name: string;
    /** Upstream host. */
    readonly host: string;
    /** Upstream port. */
    readonly port: number;
    /** `system_id` we bind with. */
    readonly system_id: string;
    /** Bind type. */
    readonly bind_type: BindType;
    /** Submits per second on this bind (0 = unlimited); pacing only ever delays. */
    readonly max_msg_per_sec: number;
    /** Requests in flight on this bind. */
    readonly window: number;
  };

  /** This tenant's configuration, without secrets. */
  type TenantConfig = {
    /** The tenant id. */
    readonly id: string;
    /** Inbound `system_id`s that belong to this tenant. */
    readonly system_ids: readonly string[];
    /** This tenant's limits. */
    readonly limits: Limits;
    /** This tenant's outbound binds. */
    readonly binds: readonly BindConfig[];
  };

  /**
   * State of an outbound bind: bound, connecting (TCP), binding (bind sent),
   * backoff (waiting to reconnect), stopped (by the operator), standby (a
   * `single: true` bind that another replica holds: sends through it fail
   * with `BIND_DOWN`).
   */
  type BindState = 'bound' | 'connecting' | 'binding' | 'backoff' | 'stopped' | 'standby';

  /** An outbound bind and its state right now. */
  type BindStatus = {
    /** Name of the bind. */
    readonly name: string;
    /** Its state. */
    readonly state: BindState;
    /** Upstream host. */
    readonly host: string;
    /** Upstream port. */
    readonly port: number;
    /** Session id of the bind connection, while there is one. */
    readonly sessionId?: string;
  };

  /** One step of a routing chain: an outbound bind by name, hold in the queue, or reject. */
  type ChainStep = `bind:${string}` | 'queue' | 'reject';

  /** A routing rule: destinations starting with `prefix` take `chain`. */
  type RoutingRule = {
    /** Leading digits of `destination_addr`. */
    readonly prefix: string;
    /** Name of the rule. */
    readonly name: string;
    /** Steps to try in order. */
    readonly chain: readonly ChainStep[];
  };

  /** This tenant's routing table (config `routing`); applying it is the policy's job. */
  type RoutingRules = {
    /** Steps tried when no rule matches. */
    readonly default_chain: readonly ChainStep[];
    /** Rules, in configuration order. */
    readonly rules: readonly RoutingRule[];
  };

  // ---------------------------------------------------------------------------
  // Handlers

  /** Authorises an inbound bind; must return `bind.accept()` or `bind.reject(…)`. */
  type BindHandler = (bind: BindRequest) => Awaitable<BindResult>;

  /** Handles one PDU; returns (or just makes) `pdu.reply(…)`, or nothing for the default. */
  type PduHandler<C extends Command> = (pdu: PduMap[C], session: SessionMap[C]) => Awaitable<PduReply | void>;

  /** Called when a session binds or unbinds. */
  type SessionHandler = (session: Session) => Awaitable<void>;

  /** Called when a timer fires, with the payload given to `timers.after` (undefined for `every`) and the timer's full name. */
  type TimerHandler<T = unknown> = (payload: T | undefined, name: string) => Awaitable<void>;

  // ---------------------------------------------------------------------------
  // The globals

  /** Core-owned timers; they fire into the current policy version, survive reloads, and are dispatched like PDUs. */
  interface Timers {
    /** Fire timer `name` once after `ms`, with a JSON `payload`; replaces a pending timer of that name. */
    after<T = undefined>(ms: number, name: string, payload?: T & JsonCompatible<T>): Promise<void>;
    /** Fire timer `name` every `ms` until cancelled; replaces a timer of that name. */
    every(ms: number, name: string): Promise<void>;
    /** Cancel timer `name`; no error when there is none. */
    cancel(name: string): Promise<void>;
  }

  /** Options of `smpp.forward`. */
  interface ForwardOptions {
    /** Steps to take instead of the routing table's: `bind:<name>`, `queue`, `reject`, `reject:<status>`. */
    chain?: readonly string[];
    /** Take the routing rule of this `name` instead of the longest prefix match. */
    rule?: string;
    /** An MO message (a deliver_sm that is not a receipt): the system_id of the ESME it is for. */
    to?: string;
    /** Fields to change on the way (e.g. `{ source_addr: "ACME" }`); everything else goes byte for byte. */
    fields?: Partial<SubmitFields>;
  }

  /**
   * What `smpp.forward` did. It is an answer too: return it (or pass it to
   * `pdu.reply`) and the PDU is answered with its status and our message id.
   */
  interface ForwardResult extends PduReply {
    readonly ok: boolean;
    readonly command_status: Status;
    /** Submits: our id, as the ESME is answered with (receipts carry it too). */
    readonly message_id?: string;
    /** The bind that took it. */
    readonly via?: string;
    /** Durably queued; the core sends it on, retrying until it expires. */
    readonly queued?: true;
    /** For an ESME not bound here: held for its next session. */
    readonly held?: true;
    /** Receipts: it named a message we know (`early`: it came before that message's submit_sm_resp, and is kept until it does). */
    readonly matched?: boolean;
    readonly early?: true;
    /** Receipts: this one had been delivered already. */
    readonly duplicate?: true;
    /** query_sm: what the core knows of the message. */
    readonly message_state?: number;
    readonly final_date?: string;
    readonly error_code?: number;
  }

  /** The gateway, as this tenant's policy sees it. */
  interface Smpp {
    /**
     * Hand a PDU to the core's store and forward, byte for byte:
     * - submit_sm, data_sm, submit_sm_multi from an ESME: routed by the routing table (longest
     *   prefix, else `default_chain`) or `options`; answered with our own message id once an
     *   upstream took it or it is durably queued; its receipts come back to the ESME with that id.
     * - query_sm, cancel_sm, replace_sm from an ESME: answered from what the core knows of the message.
     * - deliver_sm / data_sm on a bind: a receipt is correlated and delivered to its ESME (held
     *   while it is not bound); any other message goes to the ESME named by `options.to`.
     * Rejects with STORE_UNAVAILABLE when the store cannot be written (nothing was accepted).
     *
     * A handler that returns this promise itself (`return smpp.forward(pdu)`, not awaited first)
     * is answered by the core with the forward's result the moment it has it, one trip to the
     * sandbox sooner; `pdu.reply()` on that PDU then throws. Await it instead to decide the answer
     * from the result.
     */
    forward(pdu: SubmitSm | SubmitSmMulti | DataSm | CancelSm | QuerySm | ReplaceSm | DeliverSm, options?: ForwardOptions): Promise<ForwardResult>;
    /** This tenant's `settings` from the config (read-only); they may hold secrets such as ESME passwords. */
    settings<T = Record<string, unknown>>(): Readonly<T>;
    /** This tenant's id. */
    readonly tenant: string;
    /** Authorise inbound binds (replaces an earlier handler). Without one, every bind is rejected. */
    onBind(handler: BindHandler): void;
    /** Handle a message PDU (replaces an earlier handler for that command). */
    onPdu<C extends Command>(command: C, handler: PduHandler<C>): void;
    /** Listen for sessions (ESMEs and our binds) binding or unbinding; every listener runs. */
    onSession(event: SessionEvent, handler: SessionHandler): void;
    /** Handle timer `name`, and timers `name:…` that have no handler of their own (replaces an earlier handler for that name). `T` is the payload you scheduled; it is not checked at run time. */
    onTimer<T = unknown>(name: string, handler: TimerHandler<T>): void;
    /** Send a submit_sm on this tenant's outbound bind `bind`. Throws BIND_DOWN, TIMEOUT, THROTTLED, UNKNOWN_BIND, INVALID_FIELD. */
    submitVia(bind: string, fields: SubmitFields): Promise<SubmitResult>;
    /** Send a submit_sm_multi on outbound bind `bind`. Throws like `submitVia`. */
    submitMultiVia(bind: string, fields: SubmitMultiFields): Promise<SubmitResult>;
    /** Send a data_sm on outbound bind `bind`. Throws like `submitVia`. */
    dataVia(bind: string, fields: DataFields): Promise<SubmitResult>;
    /** Send a cancel_sm on outbound bind `bind`. Throws like `submitVia`. */
    cancelVia(bind: string, fields: CancelFields): Promise<SendResult>;
    /** Send a query_sm on outbound bind `bind`. Throws like `submitVia`. */
    queryVia(bind: string, fields: QueryFields): Promise<QueryResult>;
    /** Send a replace_sm on outbound bind `bind`. Throws like `submitVia`. */
    replaceVia(bind: string, fields: ReplaceFields): Promise<SendResult>;
    /**
     * Send a deliver_sm (a message or, with `esm_class: 0x04`, a receipt) to this tenant's bound ESME.
     * A session bound on another replica, or unbound a moment ago, gets it later: the result is `held`.
     * So does one with a window's worth of requests unanswered; one that leaves this request
     * unanswered for `response_timer_ms` is closed and the message held (delivered at least once).
     * Throws UNKNOWN_SESSION for an id this tenant never had bound (or too long ago), THROTTLED, INVALID_FIELD, STORE_UNAVAILABLE.
     */
    deliverTo(sessionId: string, fields: DeliverFields): Promise<SendResult>;
    /** Send a data_sm to this tenant's bound ESME. Throws like `deliverTo`. */
    dataTo(sessionId: string, fields: DataFields): Promise<SubmitResult | Held>;
    /** Send an alert_notification to this tenant's bound ESME; it has no response, so this resolves `ok` once it is sent. Throws like `deliverTo`. */
    alertTo(sessionId: string, fields: AlertFields): Promise<SendResult>;
    /** This tenant's configuration, secrets left out (read-only). */
    config(): TenantConfig;
    /** This tenant's outbound binds and their state right now. */
    binds(): readonly BindStatus[];
    /** This tenant's routing table (read-only). */
    routingRules(): RoutingRules;
    /** This tenant's ESME sessions bound right now (outbound binds: `binds()`). */
    sessions(): readonly EsmeSession[];
    /** Core-owned timers; handle them with `onTimer`. */
    readonly timers: Timers;
    /** A new unique id in the ESME-facing message id space (for `reply({ message_id })`). */
    newMessageId(): string;
  }

  /**
   * This tenant's key/value store: JSON values, shared by every version of the
   * policy, durable with a durable store, namespaced per tenant.
   */
  interface Cache {
    /** The value at `key`, or undefined. `T` is what you stored there; it is not checked at run time. */
    get<T = unknown>(key: string): Promise<T | undefined>;
    /** Store a JSON `value` at `key`, for `ttlMs` ms or for ever. Rejects with QUOTA_EXCEEDED over quota, INVALID_FIELD for non-JSON. */
    set<T>(key: string, value: T & JsonCompatible<T>, ttlMs?: number): Promise<void>;
    /** Remove `key`; true when it was there. */
    delete(key: string): Promise<boolean>;
    /** Whether `key` holds a value. */
    has(key: string): Promise<boolean>;
  }

  /** Structured log fields: copied, size-bounded, secrets redacted by the host. */
  interface LogFields {
    /** Any field; values are copied as plain data. */
    readonly [field: string]: unknown;
  }

  /** The host's log, tagged with this tenant and rate-limited (`max_log_per_s`; excess lines are dropped and counted). */
  interface Log {
    /** Log at debug level. */
    debug(msg: string, fields?: LogFields): void;
    /** Log at info level. */
    info(msg: string, fields?: LogFields): void;
    /** Log at warn level. */
    warn(msg: string, fields?: LogFields): void;
    /** Log at error level. */
    error(msg: string, fields?: LogFields): void;
  }
}

/** The gateway: register handlers, send on binds and to ESMEs, read this tenant's views. */
declare const smpp: Sluice.Smpp;
/** This tenant's JSON key/value store. */
declare const cache: Sluice.Cache;
/** The host's log, tagged with this tenant. */
declare const log: Sluice.Log;

/** The same types as a module, for `import type { SubmitSm } from "sluice"` (type-only: erased). */
declare module 'sluice' {
  export = Sluice;
}
