import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES, HOST_ONLY_CODES, SluiceError, isSluiceError, type ErrorCode } from '../src/errors';

const ROOT = path.resolve(__dirname, '../..');

describe('error registry', () => {
  it('every code has a one-line doc comment where it is defined', () => {
    const src = readFileSync(path.join(ROOT, 'src/errors.ts'), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) {
      assert.match(src, new RegExp(`/\\*\\* [^\\n]+ \\*/\\n  ${code}:`), `${code} is documented`);
    }
  });

  it('the codes a policy can see are exactly those sandbox/sluice.d.ts declares, each with its doc comment', () => {
    const dts = readFileSync(path.join(ROOT, 'sandbox/sluice.d.ts'), 'utf8');
    const union = /type ErrorCode =([\s\S]*?');/.exec(dts)?.[1] ?? '';
    const declared = [...union.matchAll(/\/\*\* [^\n]+ \*\/\s*\| '([A-Z_]+)'/g)].map((m) => m[1]);
    const visible = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => !HOST_ONLY_CODES.has(c));
    assert.deepEqual([...declared].sort(), [...visible].sort());
  });

  it('errors carry their code and a default message', () => {
    const e = new SluiceError('BIND_DOWN');
    assert.equal(e.code, 'BIND_DOWN');
    assert.equal(e.message, ERROR_CODES.BIND_DOWN);
    assert.ok(isSluiceError(e, 'BIND_DOWN'));
    assert.ok(!isSluiceError(new Error('x')));
  });
});
