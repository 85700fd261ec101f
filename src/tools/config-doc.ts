/**
 * docs/configuration.md, generated from the config schema
 * (src/config/schema.ts): every key with its type, default and meaning, so
 * the reference cannot drift from what the loader accepts. `sluice
 * config-doc` prints it; `npm run docs:config` writes the file, and a test
 * fails when the file differs or a key has no description.
 */
import type { SchemaObject } from 'ajv';
import { configSchema, SECRET_KEYS } from '../config/schema';

type Node = Record<string, unknown>;

function isNode(v: unknown): v is Node {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function propertiesOf(node: Node): [string, Node][] {
  return isNode(node.properties) ? Object.entries(node.properties).filter((e): e is [string, Node] => isNode(e[1])) : [];
}

/** A mapping with keys of its own, documented as a section: `server`, `tenants[].limits`. */
function isSection(node: Node): boolean {
  return node.type === 'object' && isNode(node.properties);
}

/** Key paths (`server.port`, `tenants[].binds[].tls.ca_path`) of the schema's properties that have no description. */
export function undescribed(schema: SchemaObject = configSchema): string[] {
  const missing: string[] = [];
  const walk = (node: Node, at: string): void => {
    for (const [key, sub] of propertiesOf(node)) {
      const p = at === '' ? key : `${at}.${key}`;
      if (typeof sub.description !== 'string' || sub.description.trim() === '') missing.push(p);
      walk(sub, p);
      if (isNode(sub.items)) walk(sub.items, `${p}[]`);
    }
  };
  walk(schema, '');
  return missing;
}

/** Key paths of the values that hold paths (`resolvePath`), with their kind. */
export function pathKeys(schema: SchemaObject = configSchema): { key: string; kind: string }[] {
  const out: { key: string; kind: string }[] = [];
  const walk = (node: Node, at: string): void => {
    for (const [key, sub] of propertiesOf(node)) {
      const p = at === '' ? key : `${at}.${key}`;
      if (typeof sub.resolvePath === 'string') out.push({ key: p, kind: sub.resolvePath });
      walk(sub, p);
      if (isNode(sub.items)) walk(sub.items, `${p}[]`);
    }
  };
  walk(schema, '');
  return out;
}

interface Row {
  key: string;
  type: string;
  dflt: string;
  meaning: string;
}

interface Section {
  key: string;
  description: string;
  rows: Row[];
}

const code = (v: string): string => `\`${v}\``;

/** A table cell: one line, pipes escaped. */
function cell(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

// GitHub's heading anchors: lower case, punctuation other than - and _ dropped, spaces as -.
function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');
}

function range(node: Node): string {
  const { minimum, maximum } = node;
  if (typeof minimum === 'number' && typeof maximum === 'number') return `${minimum} to ${maximum}`;
  if (typeof minimum === 'number') return `at least ${minimum}`;
  if (typeof maximum === 'number') return `at most ${maximum}`;
  return '';
}

function typeText(node: Node): string {
  if (Array.isArray(node.enum)) return `one of ${node.enum.map((v) => code(String(v))).join(', ')}`;
  if (node.resolvePath === 'file') return 'path';
  if (node.resolvePath === 'sqlite-url') return 'URL';
  const types = ([] as unknown[]).concat(node.type);
  if (types.includes('boolean') && types.includes('object')) return `${code('false')}, ${code('true')} or a mapping`;
  const expected = typeof node.expected === 'string' ? node.expected : undefined;
  switch (types[0]) {
    case 'integer':
    case 'number': {
      const r = range(node);
      return r ? `${types[0]}, ${r}` : String(types[0]);
    }
    case 'string':
      if (expected === 'a non-empty string') return 'string, not empty';
      return expected ? `string: ${expected}` : 'string';
    case 'boolean':
      return 'boolean';
    case 'array': {
      const items = isNode(node.items) ? node.items : {};
      if (isSection(items)) return 'list of mappings';
      const each = typeof items.expected === 'string' ? `, each ${items.expected}` : '';
      return `list of ${String(items.type ?? 'value')}s${each}`;
    }
    case 'object':
      return 'mapping';
    default:
      return String(types.join(' or '));
  }
}

const UNITS: [number, string][] = [
  [86_400_000, 'd'],
  [3_600_000, 'h'],
  [60_000, 'min'],
  [1000, 's'],
];

/** `86400000` → `86400000` (1 d), for keys in milliseconds. */
function duration(ms: number): string | undefined {
  for (const [size, unit] of UNITS) if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  return undefined;
}

function defaultText(key: string, node: Node, required: boolean): string {
  if (required) return 'required';
  const d = node.default;
  if (d === undefined) return 'unset';
  if (typeof d === 'number') {
    const human = key.endsWith('_ms') ? duration(d) : undefined;
    return human ? `${code(String(d))} (${human})` : code(String(d));
  }
  if (typeof d === 'string') return d === '' ? code('""') : code(d);
  return code(JSON.stringify(d));
}

function collect(node: Node, key: string, description: string, out: Section[]): void {
  const section: Section = { key, description, rows: [] };
  out.push(section);
  const required = new Set(Array.isArray(node.required) ? node.required.map(String) : []);
  const later: [Node, string, string][] = [];
  for (const [name, sub] of propertiesOf(node)) {
    const full = key === '' ? name : `${key}.${name}`;
    const meaning = String(sub.description ?? '');
    if (isSection(sub)) {
      later.push([sub, full, meaning]);
      continue;
    }
    const items = isNode(sub.items) ? sub.items : undefined;
    if (sub.type === 'array' && items && isSection(items)) {
      later.push([items, `${full}[]`, meaning]);
      continue;
    }
    let more = '';
    // A key that is `true`/`false` or a mapping (a bind's `tls`): its mapping's keys get a section.
    if (isNode(sub.properties)) {
      later.push([sub, full, `The keys of ${code(name)} when it is a mapping.`]);
      more = ` Its keys as a mapping: [${code(full)}](#${anchor(full)}).`;
    }
    const secret = SECRET_KEYS.includes(name) && !/secret/i.test(meaning) ? ' A secret.' : '';
    section.rows.push({ key: full, type: typeText(sub), dflt: defaultText(name, sub, required.has(name)), meaning: `${meaning}${secret}${more}` });
  }
  for (const [sub, full, meaning] of later) collect(sub, full, meaning, out);
}

const INTRO = `# Configuration

<!-- Generated from src/config/schema.ts by src/tools/config-doc.ts: do not edit.
     Change a key's description in the schema, then run \`npm run docs:config\`. -->

\`sluice start -c <file>\` reads one YAML file (default \`config/sluice.yaml\`).
[\`config/sluice.yaml\`](../config/sluice.yaml) is a small one with the
defaults written out; [\`config/example-gateway.yaml\`](../config/example-gateway.yaml)
is a store-and-forward gateway with two outbound binds. This page lists every
key: its type, its default, and what it means.

## How the file is read

- **Every key may be left out** unless it is marked *required*. A key left
  out, or written with nothing after it (\`key:\`, \`~\`, \`null\`), takes its
  default; *unset* means it has none, and its row says what that means.
- **Environment variables.** Every value accepts \`\${VAR}\` (an error if VAR
  is unset) and \`\${VAR:-default}\` (the default when VAR is unset or empty);
  \`$\${\` writes a literal \`\${\`. Types are checked after expansion, so
  \`port: \${SLUICE_PORT:-2775}\` is an integer.
- **Unknown keys are errors**, so a misspelt key is never silently ignored. A
  file that does not load is reported with the file, the key path and what
  was expected, one line per problem; \`sluice start\` then exits 2 before it
  opens any port.
- **Relative paths resolve against the directory of the config file**, not
  the directory Sluice is started from, so \`sluice start -c
  /etc/sluice/sluice.yaml\` finds the same files wherever it runs (from a
  systemd unit, from another shell). That holds for values that come from the
  environment and for defaults too: with no \`cache.url\`, the store is
  \`data/cache.sqlite\` next to the config file. Absolute paths are taken as
  written. The start-up line (\`sluice started\`) logs the config file and the
  store (\`store\`) with their absolute paths. The keys that hold paths:
PATH_KEYS
- **Secrets** (${SECRET_KEYS.map(code).join(', ')}) never appear in logs or in
  config errors.
- **Reloading.** \`kill -HUP <pid>\` or \`POST /v1/reload\` re-reads the file
  \`sluice start\` was given. \`tenants\` change in one step; the other
  sections wait for a restart (the reload reports them as
  \`restart_required\`). A file that does not load is refused whole.
`;

const PATH_KIND: Readonly<Record<string, string>> = {
  file: 'a file',
  'sqlite-url': 'the file of a `sqlite://` URL',
};

/** docs/configuration.md as the schema has it now. */
export function renderConfigDoc(schema: SchemaObject = configSchema): string {
  const sections: Section[] = [];
  collect(schema, '', '', sections);
  const top = sections.filter((s) => s.key !== '');
  const paths = pathKeys(schema)
    .map((p) => `  - ${code(p.key)}: ${PATH_KIND[p.kind] ?? p.kind}`)
    .join('\n');
  const out: string[] = [INTRO.replace('PATH_KEYS', paths)];
  out.push('## Sections\n');
  for (const s of top) out.push(`- [${code(s.key)}](#${anchor(s.key)})`);
  out.push('');
  for (const s of top) {
    out.push(`## ${code(s.key)}\n`);
    if (s.description) out.push(`${s.description}\n`);
    if (s.rows.length > 0) {
      out.push('| key | type | default | meaning |', '|---|---|---|---|');
      for (const r of s.rows) out.push(`| ${cell(code(r.key))} | ${cell(r.type)} | ${cell(r.dflt)} | ${cell(r.meaning)} |`);
      out.push('');
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}
