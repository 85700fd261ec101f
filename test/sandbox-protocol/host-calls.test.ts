import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { SluiceError } from '../../src/errors';
import { preludeBundle } from '../../src/policy-compiler/prelude-bundle';
import { HOST_OPS, policyError, readHostCall, runHostCall, type HostCallHandlers } from '../../src/sandbox-protocol/host-calls';

const ROOT = path.resolve(__dirname, '../../..');

const invalid = (what: RegExp) => (err: unknown) => err instanceof SluiceError && err.code === 'INVALID_FIELD' && what.test(err.message);

describe('host calls: one typed protocol', () => {
  it('the prelude makes exactly the ops the protocol lists: in its sources, and in the script that runs', () => {
    // Each op's arguments are typed by HostCallArgs in the prelude's own hostCall (src/isolate/host-call.ts).
    const sources = readdirSync(path.join(ROOT, 'src/isolate'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(path.join(ROOT, 'src/isolate', f), 'utf8'))
      .join('\n');
    // `hostCall(op, …)`, or `call(op, …)` where the prelude keeps the arguments to mark (a returned forward).
    const made = new Set([...sources.matchAll(/\b(?:hostCall|call)\(\s*'(\w+)'/g)].map((m) => m[1]));
    assert.deepEqual([...made].sort(), [...HOST_OPS].sort());
    // Compiled, a call from another module reads `(0, host_call_1.hostCall)('sendVia', …)`.
    const bundled = new Set([...preludeBundle().matchAll(/\b(?:hostCall|call)\)?\(\s*'(\w+)'/g)].map((m) => m[1]));
    assert.deepEqual([...bundled].sort(), [...HOST_OPS].sort());
  });

  it('reads each op into its shape: strings made strings, options absent when not given', () => {
    assert.deepEqual(readHostCall('sendVia', { bind: 'up', command: 'submit_sm', fields: { short_message: 'hi' } }), {
      op: 'sendVia',
      args: { bind: 'up', command: 'submit_sm', fields: { short_message: 'hi' } },
    });
    assert.deepEqual(readHostCall('sendTo', { sessionId: 7, command: 'deliver_sm' }), { op: 'sendTo', args: { sessionId: '7', command: 'deliver_sm', fields: {} } });
    // A returned forward is marked `tail: true`; anything else there is not a mark.
    assert.deepEqual(readHostCall('forward', { command: 'submit_sm', tail: true }), { op: 'forward', args: { command: 'submit_sm', tail: true } });
    assert.deepEqual(readHostCall('forward', { command: 'submit_sm', tail: 'yes' }), { op: 'forward', args: { command: 'submit_sm' } });
    const frame = new Uint8Array(16);
    assert.deepEqual(readHostCall('forward', { command: 'submit_sm', frame, chain: ['bind:a', 3], rule: 'nl', overrides: null }), {
      op: 'forward',
      args: { command: 'submit_sm', frame, chain: ['bind:a', '3'], rule: 'nl' },
    });
    assert.deepEqual(readHostCall('cache', { op: 'set', key: 'k', json: '1', ttlMs: 500 }), { op: 'cache', args: { op: 'set', key: 'k', json: '1', ttlMs: 500 } });
    assert.deepEqual(readHostCall('cache', { op: 'get', key: 'k', json: 'ignored' }), { op: 'cache', args: { op: 'get', key: 'k' } });
    assert.deepEqual(readHostCall('timer', { kind: 'after', ms: 10, name: 't', payload: { a: 1 } }), { op: 'timer', args: { kind: 'after', ms: 10, name: 't', payload: { a: 1 } } });
    assert.deepEqual(readHostCall('timer', { kind: 'cancel', name: 't' }), { op: 'timer', args: { kind: 'cancel', name: 't' } });
  });

  it('refuses what a sandbox should never send, naming it: INVALID_FIELD', () => {
    assert.throws(() => readHostCall('exec', {}), invalid(/unknown host call exec/));
    assert.throws(() => readHostCall('__proto__', {}), invalid(/unknown host call/));
    assert.throws(() => readHostCall('sendVia', 'not an object'), invalid(/arguments must be an object/));
    assert.throws(() => readHostCall('sendVia', { bind: 'b', command: 'submit_sm', fields: [1] }), invalid(/fields must be an object/));
    assert.throws(() => readHostCall('forward', { command: 'submit_sm', frame: 'bytes?' }), invalid(/frame must be bytes/));
    assert.throws(() => readHostCall('forward', { command: 'submit_sm', chain: 'bind:a' }), invalid(/chain must be an array/));
    assert.throws(() => readHostCall('cache', { op: 'drop', key: 'k' }), invalid(/unknown cache operation/));
    assert.throws(() => readHostCall('cache', { op: 'set', key: 'k', json: '1', ttlMs: '5' }), invalid(/ttlMs must be a number/));
    assert.throws(() => readHostCall('timer', { kind: 'at', name: 't' }), invalid(/unknown timer call/));
  });

  it('runs the one handler of its op, with the caller\'s tenant', async () => {
    const seen: string[] = [];
    const handler = (op: string) => async (tenant: string, args: unknown) => {
      seen.push(`${tenant}:${op}:${JSON.stringify(args)}`);
      return op;
    };
    const handlers = Object.fromEntries(HOST_OPS.map((op) => [op, handler(op)])) as unknown as HostCallHandlers;
    assert.equal(await runHostCall(handlers, 'acme', readHostCall('cache', { op: 'has', key: 'k' })), 'cache');
    assert.deepEqual(seen, ['acme:cache:{"op":"has","key":"k"}']);
  });

  it('a failed call shows the policy a code it may see and our own message; anything else is HOST_ERROR', () => {
    assert.deepEqual(policyError(new SluiceError('BIND_DOWN', 'bind "up" is not bound')), { code: 'BIND_DOWN', message: 'bind "up" is not bound' });
    assert.deepEqual(policyError({ code: 'THROTTLED', message: 'more than 64 host calls in flight' }), { code: 'THROTTLED', message: 'more than 64 host calls in flight' });
    // A host-only code, a Node errno carrying a path, a bare throw: nothing of them reaches the policy.
    assert.deepEqual(policyError(new SluiceError('UNKNOWN_TENANT')), { code: 'HOST_ERROR', message: 'host call failed' });
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/etc/sluice/secret'"), { code: 'ENOENT' });
    assert.deepEqual(policyError(enoent), { code: 'HOST_ERROR', message: 'host call failed' });
    assert.deepEqual(policyError(undefined), { code: 'HOST_ERROR', message: 'host call failed' });
    assert.deepEqual(policyError({ code: 'toString' }), { code: 'HOST_ERROR', message: 'host call failed' });
  });
});
