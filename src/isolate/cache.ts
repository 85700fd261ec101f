/**
 * `cache`: the tenant's cache, through the host (op `cache`). Values cross
 * as JSON text: written with the `stringify` the prelude captured, read back
 * with its `parse`.
 */
import { hostCall } from './host-call';
import { freeze, parse, promiseReject, StringCtor, stringify, then } from './intrinsics';
import { sluiceError } from './plain';

export const cache = freeze({
  get: (key: unknown) => then(hostCall('cache', { op: 'get', key: StringCtor(key) }), (json) => (json === undefined || json === null ? undefined : parse(json as string))),
  set: (key: unknown, value: unknown, ttlMs?: unknown) => {
    let json: string | undefined;
    try {
      json = stringify(value);
    } catch (e) {
      return promiseReject(sluiceError('INVALID_FIELD', 'cache values must be JSON'));
    }
    if (json === undefined) return promiseReject(sluiceError('INVALID_FIELD', 'cache values must be JSON'));
    return then(hostCall('cache', { op: 'set', key: StringCtor(key), json, ttlMs: ttlMs as number | undefined }), () => undefined);
  },
  delete: (key: unknown) => hostCall('cache', { op: 'delete', key: StringCtor(key) }),
  has: (key: unknown) => hostCall('cache', { op: 'has', key: StringCtor(key) }),
});
