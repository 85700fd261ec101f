import type * as TS from 'typescript';

// Loaded on first compile: the compiler is ~50 MB of heap, and a sandbox
// process hosting only idle tenants should not pay for it.
let tsLib: typeof TS | undefined;
export const ts = new Proxy({} as typeof TS, { get: (_t, key) => (tsLib ??= require('typescript') as typeof TS)[key as keyof typeof TS] });
