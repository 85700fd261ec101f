/** SMPP 3.4 §7.1.1 times (`YYMMDDhhmmsstnnp`) and Appendix B receipt dates (`YYMMDDhhmm`). */

const TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d)(\d{2})([+\-R])$/;

/**
 * When an SMPP time falls, in ms since the epoch: absolute (`…tnn+` / `…tnn-`,
 * nn quarter hours from UTC) or relative to `now` (`…000R`). Undefined for
 * an empty string; throws for one that is not an SMPP time.
 */
export function smppTimeToMs(s: string, now: number): number | undefined {
  if (s === '') return undefined;
  const m = TIME.exec(s);
  if (!m) throw new Error(`"${s.slice(0, 20)}" is not an SMPP time (YYMMDDhhmmsstnnp)`);
  const [yy, mo, dd, hh, mi, ss, t, nn, p] = m.slice(1) as [string, string, string, string, string, string, string, string, string];
  if (p === 'R') {
    // Relative: years and months as 365 and 30 days, as SMSCs commonly read them.
    const days = Number(yy) * 365 + Number(mo) * 30 + Number(dd);
    return now + ((days * 24 + Number(hh)) * 60 + Number(mi)) * 60_000 + Number(ss) * 1000;
  }
  const utc = Date.UTC(2000 + Number(yy), Number(mo) - 1, Number(dd), Number(hh), Number(mi), Number(ss), Number(t) * 100);
  const offset = Number(nn) * 15 * 60_000;
  return p === '+' ? utc - offset : utc + offset;
}

/** An Appendix B receipt date: YYMMDDhhmm, UTC. */
export function receiptDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}
