/**
 * What a policy must not have, removed as the prelude loads (SECURITY.md,
 * "Tenant policies: what holds today"): code generation from strings,
 * WebAssembly, shared memory, weak references, `console`, and a stack
 * formatter of the policy's own.
 */
import { defineProperty, ErrorCtor } from './intrinsics';

const globals = globalThis as unknown as Record<string, unknown>;

const throwing = function (): never {
  throw new ErrorCtor('code generation from strings is not available in a Sluice policy');
};
// `console` is V8's, not ECMAScript's: a no-op here, and one more thing a policy need not see.
for (const name of ['eval', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry', 'WeakRef', 'console']) {
  try {
    delete globals[name];
  } catch (_) {
    /* non-configurable: leave it */
  }
}
// Function('...') and friends compile strings; there is nothing for them to
// reach here, but no policy needs them either.
for (const F of [Function, (async function () {}).constructor, function* () {}.constructor, (async function* () {}).constructor]) {
  defineProperty(F.prototype, 'constructor', { value: throwing, writable: false, configurable: false, enumerable: false });
}
throwing.prototype = Function.prototype;
defineProperty(globals, 'Function', { value: throwing, writable: false, configurable: false, enumerable: false });
// A policy-installed stack formatter would run host-invisible code on every error.
defineProperty(ErrorCtor, 'prepareStackTrace', { value: undefined, writable: false, configurable: false });
