/** sluice check: a policy type-checked against sandbox/sluice.d.ts and nothing else; the declarations kept true to the codec. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as smppLib from 'smpp';
import * as ts from 'typescript';
import { clearCompileCache } from '../../src/policy-compiler/compile';
import { checkPolicyFile, checkPolicySource, findSluiceDeclarations, POLICY_LIBS } from '../../src/policy-compiler/typecheck';
import '../helpers/ivm-teardown';
import { ROOT, fixture, read } from '../helpers/policy-fixtures';

describe('checkPolicyFile / checkPolicySource', () => {
  it('finds sandbox/sluice.d.ts from the build output and from the sources', () => {
    const want = path.join(ROOT, 'sandbox', 'sluice.d.ts');
    assert.equal(findSluiceDeclarations(path.join(ROOT, 'dist/src/isolates')), want);
    assert.equal(findSluiceDeclarations(path.join(ROOT, 'src/isolates')), want);
    assert.equal(findSluiceDeclarations(), want);
    assert.throws(() => findSluiceDeclarations('/'), /not found/);
  });

  for (const name of ['echo.ts.txt', 'gateway.ts.txt', 'api.ts.txt', 'plain.js']) {
    it(`${name} type-checks clean`, () => {
      assert.deepEqual(checkPolicyFile(fixture(name)), []);
    });
  }

  it('the demo policy in policies/ type-checks clean', (t) => {
    const demo = path.join(ROOT, 'policies/echo.ts');
    if (!fs.existsSync(demo)) return t.skip('no policies/echo.ts');
    assert.deepEqual(checkPolicyFile(demo), []);
  });

  it('a JavaScript policy opts in to type checking with // @ts-check', () => {
    assert.deepEqual(checkPolicySource(`// @ts-check\n${read('plain.js')}`, 'plain.js'), []);
    const d = checkPolicySource('// @ts-check\nsmpp.submitVia(1, { destination_addr: "1" });\n', 'p.js');
    assert.deepEqual(d.map((x) => [x.line, x.column, x.code]), [[2, 16, 'TS2345']]);
    assert.deepEqual(checkPolicySource('smpp.submitVia(1, { destination_addr: "1" });\n', 'p.js'), [], 'unchecked without it');
  });

  it('type-error.ts has exactly one error, at its line:column', () => {
    const d = checkPolicyFile(fixture('type-error.ts.txt'));
    assert.equal(d.length, 1, JSON.stringify(d));
    assert.deepEqual({ ...d[0], message: undefined }, { file: fixture('type-error.ts.txt'), line: 5, column: 34, code: 'TS2345', message: undefined });
    assert.match(d[0]!.message, /'number' is not assignable to parameter of type 'string'/);
  });

  it('syntax errors come back alone, as tsc does', () => {
    assert.deepEqual(checkPolicyFile(fixture('syntax-error.ts.txt')).map((d) => [d.line, d.column, d.code]), [[5, 59, 'TS1005']]);
  });

  it('a value import is refused at its position', () => {
    const d = checkPolicyFile(fixture('imports.ts.txt'));
    assert.deepEqual(d[0] && [d[0].line, d[0].column, d[0].code], [4, 1, 'SLUICE_POLICY_MODULE']);
  });

  it('the sandbox has no DOM, no Node, and none of the globals the prelude removes', () => {
    const cases = [
      'console.log("x");',
      'process.exit(1);',
      'const fs = require("fs");',
      'setTimeout(() => {}, 10);',
      'void fetch("https://example.com");',
      'const b = Buffer.from("x");',
      'new WeakRef({});',
      'new FinalizationRegistry(() => {});',
      'const s = new SharedArrayBuffer(8);',
      'Atomics.wait(new Int32Array(1), 0, 0);',
      'const t = new TextEncoder();',
      'const w = window;',
    ];
    for (const src of cases) {
      const d = checkPolicySource(src, 'p.ts');
      assert.ok(d.length >= 1 && d.every((x) => x.line === 1), `${src} → ${JSON.stringify(d)}`);
    }
  });

  it('a policy cannot pull in other declarations; the editor reference to sluice.d.ts is fine', () => {
    const d = checkPolicySource('/// <reference lib="dom" />\n/// <reference types="node" />\n/// <reference path="./other.ts" />\n/// <reference path="../sandbox/sluice.d.ts" />\nconst n = 1;\n', 'p.ts');
    assert.deepEqual(d.map((x) => [x.line, x.code]), [[1, 'SLUICE_POLICY_REFERENCE'], [2, 'SLUICE_POLICY_REFERENCE'], [3, 'SLUICE_POLICY_REFERENCE']]);
    assert.doesNotMatch(JSON.stringify(d), /node_modules|__sluice/, 'no host or virtual paths');
  });

  it('the declarations catch misuse of the API', () => {
    const cases: [string, string][] = [
      ['smpp.onPdu("bind_transceiver", () => {});', 'unknown command'],
      ['smpp.onPdu("submit_sm", (pdu) => pdu.reply({ command_status: "ESME_NOPE" }));', 'unknown status name'],
      ['smpp.onPdu("submit_sm", (pdu) => pdu.replyQuery({ message_state: 2 }));', 'replyQuery only on query_sm'],
      ['smpp.onPdu("cancel_sm", (pdu) => pdu.reply({ message_id: "x" }));', 'cancel_sm_resp has no message_id'],
      ['smpp.onPdu("alert_notification", (pdu) => pdu.reply());', 'alert_notification has no response'],
      ['smpp.onPdu("deliver_sm", (pdu) => { const id: string = pdu.receipt.id; });', 'receipt may be absent'],
      ['smpp.onPdu("submit_sm", (pdu, session) => { const b: string = session.bind; });', 'submit_sm comes from an ESME'],
      ['smpp.onPdu("submit_sm", (pdu) => { pdu.short_message.toUpperCase(); });', 'short_message is bytes'],
      ['smpp.onBind((bind) => { if (bind.password) return bind.accept(); });', 'a bind decision on every path'],
      ['smpp.onBind((bind) => bind.reject("NOT_A_STATUS"));', 'unknown status name'],
      ['void smpp.submitVia("b", { short_message: "x" });', 'destination_addr is required'],
      ['void smpp.submitVia("b", { destination_addr: "1", destinaton_addr: "2" });', 'typo in a field name'],
      ['void smpp.queryVia("b", {});', 'message_id is required'],
      ['void cache.set("k", { bytes: new Uint8Array(2) });', 'bytes are not JSON'],
      ['void cache.set("k", { when: new Date() });', 'a Date is not JSON'],
      ['void cache.set("k", undefined);', 'undefined is not JSON'],
      ['void smpp.timers.after(10, "t", () => 1);', 'a function is not a payload'],
      ['smpp.onSession("closed", () => {});', 'unknown event'],
      ['void smpp.submitVia("b", { destination_addr: "1" }).then((r) => r.message_id.length);', 'message_id only when ok'],
      ['const s: Sluice.BindState = "up";', 'unknown bind state'],
      ['smpp.tenant = "other";', 'read-only'],
      ['log.info({ msg: "x" });', 'message first'],
    ];
    for (const [src, why] of cases) {
      assert.notDeepEqual(checkPolicySource(src, 'p.ts'), [], `${why}: ${src}`);
    }
  });

  it('StatusName is exactly the codec\'s list of command_status names', () => {
    const dts = fs.readFileSync(path.join(ROOT, 'sandbox/sluice.d.ts'), 'utf8');
    const block = dts.slice(dts.indexOf('type StatusName ='), dts.indexOf(';', dts.indexOf('type StatusName =')));
    const names = [...block.matchAll(/\|\s*'([A-Z_]+)'/g)].map((m) => m[1]);
    assert.deepEqual(names, Object.keys(smppLib.errors));
  });

  it('every TLV the codec knows is declared by name, with the codec\'s value type', () => {
    const dts = fs.readFileSync(path.join(ROOT, 'sandbox/sluice.d.ts'), 'utf8');
    const block = dts.slice(dts.indexOf('interface Tlvs {'), dts.indexOf('\n  }', dts.indexOf('interface Tlvs {')));
    const declared = new Map([...block.matchAll(/^\s+(\w+)\?: (.+);$/gm)].map((m) => [m[1]!, m[2]!]));
    const kind = (t: smppLib.FieldType): string => {
      const tlv = smppLib.types.tlv;
      if (t === tlv.int8 || t === tlv.int16 || t === tlv.int32) return 'number';
      if (t === tlv.cstring || t === tlv.string) return 'string';
      return 'Uint8Array';
    };
    for (const [name, def] of Object.entries(smppLib.tlvs)) {
      const want = def.multiple ? `readonly ${kind(def.type)}[]` : kind(def.type);
      assert.equal(declared.get(name), want, name);
    }
    assert.equal(declared.size, Object.keys(smppLib.tlvs).length);
  });

  it('POLICY_LIBS is ES2022 minus shared memory and weak references; sandbox/tsconfig.json agrees', () => {
    const libDir = path.dirname(ts.getDefaultLibFilePath({}));
    const closure = new Set<string>();
    const visit = (lib: string): void => {
      if (closure.has(lib)) return;
      closure.add(lib);
      const text = fs.readFileSync(path.join(libDir, `lib.${lib}.d.ts`), 'utf8');
      for (const m of text.matchAll(/<reference lib="([^"]+)"/g)) visit(m[1]!);
    };
    visit('es2022');
    const aggregates = /^es20\d\d$|^decorators/;
    const removed = ['es2017.sharedmemory', 'es2020.sharedmemory', 'es2021.weakref'];
    const want = [...closure].filter((l) => !aggregates.test(l) && !removed.includes(l)).sort();
    assert.deepEqual([...POLICY_LIBS].sort(), want);

    const cfg = ts.readConfigFile(path.join(ROOT, 'sandbox/tsconfig.json'), ts.sys.readFile);
    assert.equal(cfg.error, undefined);
    assert.deepEqual([...(cfg.config as { compilerOptions: { lib: string[] } }).compilerOptions.lib].sort(), want);
  });

  it('sandbox/sluice.d.ts itself is valid under `tsc -p sandbox` (full lib check)', () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'sandbox/tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)) });
    assert.ok(parsed);
    const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
    const diags = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    assert.deepEqual(diags, []);
  });

  after(() => clearCompileCache());
});
