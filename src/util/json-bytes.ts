/**
 * JSON with bytes: Uint8Array values become `{ $b64: … }` and back, so a
 * PDU's fields (raw short_message, UDH, TLVs) survive a trip through a
 * JSON store byte for byte.
 */

/** A copy of `v` with every Uint8Array as `{ $b64 }`. */
export function bytesToJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $b64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (Array.isArray(v)) return v.map(bytesToJson);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytesToJson(x)]));
  return v;
}

/** The inverse of `bytesToJson`: `{ $b64 }` back to a Buffer. */
export function jsonToBytes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(jsonToBytes);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '$b64' && typeof o.$b64 === 'string') return Buffer.from(o.$b64, 'base64');
    return Object.fromEntries(keys.map((k) => [k, jsonToBytes(o[k])]));
  }
  return v;
}
