import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES, SluiceError, isSluiceError } from '../src/errors';

const ROOT = path.resolve(__dirname, '../..');

describe('error registry', () => {
  it('every code has a one-line doc comment where it is defined', () => {
    const src = readFileSync(path.join(ROOT, 'src/errors.ts'), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) {
      assert.match(src, new RegExp(`/\\*\\* [^\\n]+ \\*/\\n  ${code}:`), `${code} is documented`);
    }
  });

  it('every code a policy can see is declared for policy authors', () => {
    const dts = readFileSync(path.join(ROOT, 'sandbox/sluice.d.ts'), 'utf8');
    for (const code of ['BIND_DOWN', 'TIMEOUT', 'THROTTLED', 'UNKNOWN_BIND', 'UNKNOWN_SESSION', 'INVALID_FIELD', 'QUOTA_EXCEEDED', 'UNKNOWN_STATUS']) {
      assert.ok(dts.includes(`'${code}'`), `${code} in sandbox/sluice.d.ts`);
    }
  });

  it('errors carry their code and a default message', () => {
    const e = new SluiceError('BIND_DOWN');
    assert.equal(e.code, 'BIND_DOWN');
    assert.equal(e.message, ERROR_CODES.BIND_DOWN);
    assert.ok(isSluiceError(e, 'BIND_DOWN'));
    assert.ok(!isSluiceError(new Error('x')));
  });
});
