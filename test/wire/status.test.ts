import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ESME_RBINDFAIL, ESME_RINVSYSID, statusLabel, statusName, statusValue } from '../../src/wire/status';

describe('command_status names', () => {
  it('statusLabel gives the name and the value, never a bare hex value', () => {
    assert.equal(statusLabel(ESME_RBINDFAIL), 'ESME_RBINDFAIL (0x0000000d)');
    assert.equal(statusLabel(ESME_RINVSYSID), 'ESME_RINVSYSID (0x0000000f)');
    assert.equal(statusLabel(0), 'ESME_ROK (0x00000000)');
    assert.equal(statusLabel(0x400), '0x00000400 (SMSC vendor-specific, no SMPP 3.4 name)');
    assert.equal(statusLabel(0x10), '0x00000010 (reserved, no SMPP 3.4 name)');
  });

  it('statusName and statusValue go both ways, unnamed values as 0x + 8 hex digits', () => {
    for (const v of [0, 0x0d, 0x58, 0x400, 0x10]) assert.equal(statusValue(statusName(v)), v);
  });
});
