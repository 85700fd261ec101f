import type { Clock } from './clock';

/** Returned by `withDeadline` when the deadline passed first. */
export const DEADLINE: unique symbol = Symbol('deadline');

/** Race a promise against a wall-time deadline on `clock`; a late result is discarded. */
export function withDeadline<T>(p: Promise<T>, ms: number, clock: Clock): Promise<T | typeof DEADLINE> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => resolve(DEADLINE), ms);
    p.then(
      (v) => {
        clock.clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clock.clearTimeout(timer);
        reject(err);
      },
    );
  });
}
