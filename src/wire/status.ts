import * as smpp from 'smpp';
import { SluiceError } from '../errors';

/** SMPP 3.4 command_status names → values (the codec's table, plus ESME_RINVOPTPARSTREAM aliases). */
export const STATUS: Readonly<Record<string, number>> = Object.freeze({ ...smpp.errors });

const NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(STATUS)) if (!NAMES.has(value)) NAMES.set(value, name);

export const ESME_ROK = 0x00;
export const ESME_RINVCMDLEN = 0x02;
export const ESME_RINVCMDID = 0x03;
export const ESME_RINVBNDSTS = 0x04;
export const ESME_RALYBND = 0x05;
export const ESME_RSYSERR = 0x08;
export const ESME_RBINDFAIL = 0x0d;
export const ESME_RINVSYSID = 0x0f;
export const ESME_RMSGQFUL = 0x14;
export const ESME_RTHROTTLED = 0x58;

/** The name of a status value, or its hex form when SMPP 3.4 has no name for it. */
export function statusName(value: number): string {
  return NAMES.get(value) ?? `0x${value.toString(16).padStart(8, '0')}`;
}

/** SMPP 3.4 §5.1.3: 0x400-0x4FF are the SMSC vendor's own statuses; every other unnamed value is reserved. */
export function isVendorStatus(value: number): boolean {
  return value >= 0x400 && value <= 0x4ff;
}

/**
 * A status for people: its name and its value, `ESME_RBINDFAIL (0x0000000d)`;
 * a value the table has no name for says so instead of standing bare.
 */
export function statusLabel(value: number): string {
  const hex = `0x${value.toString(16).padStart(8, '0')}`;
  const name = NAMES.get(value);
  if (name !== undefined) return `${name} (${hex})`;
  return `${hex} (${isVendorStatus(value) ? 'SMSC vendor-specific' : 'reserved'}, no SMPP 3.4 name)`;
}

/** A status given by name or number → its value. Unknown names throw UNKNOWN_STATUS at once. */
export function statusValue(status: string | number): number {
  if (typeof status === 'number') {
    if (!Number.isInteger(status) || status < 0 || status > 0xffffffff) {
      throw new SluiceError('UNKNOWN_STATUS', `command_status ${status} is not a 32-bit unsigned integer`);
    }
    return status;
  }
  // statusName() writes statuses SMPP 3.4 has no name for as 0x + 8 hex digits; they go back the same way.
  if (/^0x[0-9a-fA-F]{8}$/.test(status)) return parseInt(status.slice(2), 16);
  const v = STATUS[status];
  if (v === undefined) throw new SluiceError('UNKNOWN_STATUS', `unknown command_status "${String(status).slice(0, 40)}"`);
  return v;
}
