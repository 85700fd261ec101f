/**
 * `log`: a policy's log lines, rate-limited here (a token bucket of
 * `maxLogPerSec`, full at boot) and again on the host (the sandbox's tenant
 * runtime), with the lines dropped here counted on the next line that passes.
 * Message and fields are cut to `maxLogBytes`.
 */
import { send } from './host';
import { cut, freeze, min, now, StringCtor } from './intrinsics';
import { plain } from './plain';
import { LIMITS } from './tenant';

type Level = 'debug' | 'info' | 'warn' | 'error';

let logTokens = 0; // a full bucket at boot
let logStamp = now();
let logDropped = 0;

/** At boot: a full bucket, from now. */
export function startLog(): void {
  logTokens = LIMITS.maxLogPerSec;
  logStamp = now();
}

function logAt(level: Level) {
  return function (msg: unknown, fields?: unknown): void {
    const t = now();
    logTokens = min(LIMITS.maxLogPerSec, logTokens + ((t - logStamp) * LIMITS.maxLogPerSec) / 1000);
    logStamp = t;
    if (logTokens < 1) {
      logDropped++;
      return;
    }
    logTokens -= 1;
    let m = StringCtor(msg);
    if (m.length > LIMITS.maxLogBytes) m = cut(m, LIMITS.maxLogBytes) + '…';
    let f: unknown;
    try {
      f = fields === undefined ? undefined : plain(fields, { left: LIMITS.maxLogBytes * 2, seen: null }, 0);
    } catch (e) {
      f = { fields_dropped: 'fields are not plain data within the size limit' };
    }
    send('log', 0, { level, msg: m, fields: f, dropped: logDropped });
    logDropped = 0;
  };
}

export const log = freeze({ debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') });
