import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as ts from 'typescript';

/**
 * The process boundary is the folder layout (docs/design.md, "The process
 * boundary"): code of the core (the process that holds the sockets) and code
 * of a sandbox process meet only in src/sandbox-protocol/. This reads every
 * import of every source file, type-only and dynamic ones included, and
 * fails on an arrow the layout does not allow.
 */

// Runs from dist/test/ after the build; the sources stay at the root.
const SRC = path.join(__dirname, '..', '..', 'src');

type Zone = 'core' | 'sandbox-process' | 'sandbox-protocol' | 'policy-compiler' | 'testing' | 'isolate' | 'shared' | 'entry';

/** Where a source file (path relative to src/, with '/') runs. */
function zoneOf(rel: string): Zone {
  const top = rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : rel;
  switch (top) {
    case 'sandbox-process':
    case 'sandbox-protocol':
    case 'policy-compiler':
    case 'testing':
    case 'isolate':
      return top;
    // Libraries with no process of their own: the codec, the PDU model, errors, the clock, the token bucket, the config schema and loader.
    case 'wire':
    case 'pdu':
    case 'util':
    case 'config':
    case 'throttle':
    case 'types':
    case 'errors.ts':
      return 'shared';
    // The package's entry re-exports the test harness for tenants (`import { PolicyHarness } from 'sluice'`).
    case 'index.ts':
      return 'entry';
    default:
      return 'core';
  }
}

/** Which zones each zone may import. */
const ALLOWED: Record<Zone, readonly Zone[]> = {
  core: ['core', 'sandbox-protocol', 'policy-compiler', 'shared'],
  'sandbox-process': ['sandbox-process', 'sandbox-protocol', 'policy-compiler', 'shared'],
  'sandbox-protocol': ['sandbox-protocol', 'policy-compiler', 'shared'],
  'policy-compiler': ['policy-compiler', 'shared'],
  // A tenant's test process runs the tenant runtime in-process, with no core around it.
  testing: ['testing', 'sandbox-process', 'sandbox-protocol', 'policy-compiler', 'shared'],
  // The prelude, inside every isolate: no file imports it (policy-compiler/prelude-bundle.ts reads its
  // compiled output), and outside its folder it takes only types, the protocol's host calls and the
  // error codes: at run time its bundle resolves nothing but its own modules (isolate-bundle.ts).
  isolate: ['isolate', 'sandbox-protocol', 'shared'],
  shared: ['shared'],
  entry: ['core', 'sandbox-protocol', 'policy-compiler', 'shared', 'testing'],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every relative module specifier in a file: import, import type, export … from, import(), require(). */
function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) out.push(n.moduleSpecifier.text);
    else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) out.push(n.moduleReference.expression.text);
    else if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) {
      const a = n.arguments[0];
      if (a && ts.isStringLiteralLike(a)) out.push(a.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out.filter((s) => s.startsWith('.'));
}

/** The source file (relative to src/) a specifier names. */
function target(fromRel: string, spec: string): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(fromRel), spec));
  for (const c of [`${base}.ts`, `${base}/index.ts`, base]) {
    try {
      readFileSync(path.join(SRC, c));
      return c;
    } catch {
      // Not this form.
    }
  }
  return base;
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of sources(SRC)) {
    const rel = path.relative(SRC, file).split(path.sep).join('/');
    const from = zoneOf(rel);
    for (const spec of importsOf(file)) {
      const to = target(rel, spec);
      if (to.startsWith('..')) continue;
      const zone = zoneOf(to);
      if (!ALLOWED[from].includes(zone)) out.push(`${rel} (${from}) imports ${to} (${zone})`);
    }
  }
  return out;
}

/** Import edges between source files (relative to src/), and between top-level folders (a file at the top is its own). */
function graphs(): { files: Map<string, Set<string>>; folders: Map<string, Set<string>> } {
  const files = new Map<string, Set<string>>();
  const folders = new Map<string, Set<string>>();
  const folderOf = (rel: string): string => rel.split('/')[0]!;
  for (const file of sources(SRC)) {
    const rel = path.relative(SRC, file).split(path.sep).join('/');
    const deps = new Set(importsOf(file).map((spec) => target(rel, spec)).filter((t) => !t.startsWith('..')));
    files.set(rel, deps);
    const f = folderOf(rel);
    if (!folders.has(f)) folders.set(f, new Set());
    for (const d of deps) if (folderOf(d) !== f) folders.get(f)!.add(folderOf(d));
  }
  return { files, folders };
}

/** Every cycle's members (strongly connected components of more than one node, or a node importing itself). */
function cycles(g: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || g.get(v)?.has(v)) out.push(scc.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('the process boundary in the layout', () => {
  it('core and sandbox-process code meet only in src/sandbox-protocol/; shared libraries import nothing of either', () => {
    assert.deepEqual(violations(), []);
  });

  it('no import cycles: not between files (type-only imports included), not between folders', () => {
    const { files, folders } = graphs();
    assert.deepEqual(cycles(files), []);
    assert.deepEqual(cycles(folders), []);
    // The finder itself, on a cycle of three and a self-import.
    const g = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['d'])], ['e', new Set(['a'])]]);
    assert.deepEqual(cycles(g), [['a', 'b', 'c'], ['d']]);
  });

  it('the check sees type-only, dynamic and re-export imports, and fails on a crossing', () => {
    assert.deepEqual(
      importsOf(
        'probe.ts',
        "import type { X } from '../sandbox-process/tenant-runtime';\nexport { Y } from './y';\nconst m = import('../testing/harness');\nimport z = require('../gateway');\nimport 'node:fs';",
      ),
      ['../sandbox-process/tenant-runtime', './y', '../testing/harness', '../gateway'],
    );
    // The rule itself: the pool may not reach into the child, nor the child into the core.
    assert.equal(ALLOWED[zoneOf('policy-host/sandbox-pool.ts')].includes(zoneOf(target('policy-host/sandbox-pool.ts', '../sandbox-process/main'))), false);
    assert.equal(ALLOWED[zoneOf('sandbox-process/main.ts')].includes(zoneOf(target('sandbox-process/main.ts', '../gateway'))), false);
    assert.equal(ALLOWED[zoneOf('sandbox-protocol/messages.ts')].includes(zoneOf(target('sandbox-protocol/messages.ts', '../policy-host/sandbox-pool'))), false);
    assert.equal(ALLOWED[zoneOf('wire/codec.ts')].includes(zoneOf(target('wire/codec.ts', '../forward/forwarder'))), false);
    // Nothing imports the prelude's modules (their compiled output is bundled), and they import nothing of a process.
    assert.equal(ALLOWED[zoneOf('sandbox-process/policy-isolate.ts')].includes(zoneOf(target('sandbox-process/policy-isolate.ts', '../isolate/prelude'))), false);
    assert.equal(ALLOWED[zoneOf('isolate/host.ts')].includes(zoneOf(target('isolate/host.ts', '../sandbox-process/policy-isolate'))), false);
  });
});
