// One file on purpose: reading, ${VAR} expansion, validation and the error messages that name a key (with "did you
// mean") are one pass over the same document and its key paths.
/**
 * Reading `config/sluice.yaml`: YAML → environment expansion → schema
 * (defaults filled, strings coerced) → checks the schema cannot express →
 * relative paths resolved → a deep-frozen {@link SluiceConfig}. Any problem is
 * one {@link ConfigError} listing every issue found, one per line, each naming
 * the file and key path.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { type Document, isNode, LineCounter, parseDocument } from 'yaml';
import { SluiceError } from '../errors';
import { STATUS } from '../wire/status';
import { expandEnv, type KeyPath } from './expand';
import { accountOf, configSchema, parseChainStep, SCHEMA_KEYWORDS, SECRET_KEYS, type PathKind, type SluiceConfig } from './schema';

/** Options of {@link parseConfig}. */
export interface ParseConfigOptions {
  /** Name of the file the text came from, as it should appear in messages. */
  readonly file: string;
  /** Environment for `${VAR}` expansion; defaults to `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Directory that relative paths in the text (policies, certificates, CA
   * bundles, a `sqlite://` file) resolve against: the config file's own
   * directory ({@link loadConfig} passes it). Defaults to `process.cwd()`.
   */
  readonly cwd?: string;
}

/** One problem in a configuration file. */
export interface ConfigIssue {
  /** Dotted/indexed key path (`tenants[0].binds[1].port`), `line:column` for YAML syntax errors, or '' for the file itself. */
  readonly path: string;
  /** What was expected; never contains a secret's value. */
  readonly message: string;
}

/**
 * A configuration that cannot be used. `code` is always `SLUICE_ERR_CONFIG`;
 * `message` has one line per issue (`file: path: what was expected`), and the
 * same issues are kept in `issues` for callers that render them differently.
 */
export class ConfigError extends SluiceError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];
  constructor(file: string, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super('SLUICE_ERR_CONFIG', issues.map((i) => formatIssue(file, i)).join('\n'), options);
    this.file = file;
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i })));
  }
}

function formatIssue(file: string, issue: ConfigIssue): string {
  if (issue.path === '') return `${file}: ${issue.message}`;
  // YAML positions read as file:line:column, like a compiler's.
  if (/^\d+:\d+$/.test(issue.path)) return `${file}:${issue.path}: ${issue.message}`;
  return `${file}: ${issue.path}: ${issue.message}`;
}

/**
 * Read, validate and freeze a configuration file. Relative paths inside it
 * resolve against the file's own directory, wherever the process was started,
 * and come back absolute.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): SluiceConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'file not found' : `cannot read file (${code})`;
    throw new ConfigError(file, [{ path: '', message: why }], { cause: err });
  }
  return parseConfig(text, { file, env, cwd: path.dirname(path.resolve(file)) });
}

/** Validate configuration text (YAML) and return it with defaults filled, relative paths resolved against `opts.cwd`, deep-frozen. */
export function parseConfig(text: string, opts: ParseConfigOptions): SluiceConfig {
  const { file } = opts;
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();

  const { value: raw, doc } = parseYaml(text, file);
  const expanded = expandEnv(raw, env, { secretKeys: SECRET_KEYS });
  const found: Located[] = expanded.issues.map((i) => locate(doc, i.path, i.message));
  // Values that failed to expand are left as written; don't also report them as the wrong type.
  const unexpanded = found.map((i) => i.path);

  const data = expanded.value;
  const validate = validator();
  if (!validate(data)) {
    for (const e of validate.errors ?? []) {
      const issue = describeSchemaError(e);
      if (!unexpanded.some((p) => isSameOrBelow(issue.path, p))) found.push(locate(doc, issue.segments, issue.message));
    }
  }
  for (const i of semanticIssues(data, cwd)) found.push(locate(doc, i.segments, i.message));

  if (found.length > 0) {
    // Report in the order the keys appear in the file (sort is stable).
    found.sort((a, b) => a.offset - b.offset);
    throw new ConfigError(file, dedupe(found.map(({ path: p, message }) => ({ path: p, message }))));
  }
  dropEmptyTokens(data);
  resolvePaths(configSchema, data, cwd);
  return deepFreeze(data) as SluiceConfig;
}

/**
 * Make every value the schema marks `resolvePath` absolute, against `base`:
 * defaults and values from the environment too, so one file means the same
 * from any working directory. Runs on valid data, after the file checks
 * (whose messages quote the path as written).
 */
function resolvePaths(schema: unknown, data: unknown, base: string): void {
  if (!isObj(schema)) return;
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v === 'string') data[i] = resolvePath(schema.items, v, base);
      else resolvePaths(schema.items, v, base);
    }
    return;
  }
  if (!isObj(data) || !isObj(schema.properties)) return;
  for (const [key, sub] of Object.entries(schema.properties)) {
    const v = data[key];
    if (typeof v === 'string') data[key] = resolvePath(sub, v, base);
    else resolvePaths(sub, v, base);
  }
}

function resolvePath(schema: unknown, value: string, base: string): string {
  const kind = isObj(schema) ? (schema.resolvePath as PathKind | undefined) : undefined;
  if (kind === 'file') return path.resolve(base, value);
  if (kind === 'sqlite-url' && value.startsWith('sqlite://')) {
    const location = value.slice('sqlite://'.length);
    // An empty path is the store's error to report; `:memory:` is no file.
    if (location === '' || location === ':memory:') return value;
    return `sqlite://${path.resolve(base, location)}`;
  }
  return value;
}

// `token: ${SLUICE_ADMIN_TOKEN:-}` with the variable unset means "no token",
// never "the empty string is the token".
function dropEmptyTokens(data: unknown): void {
  if (!isObj(data)) return;
  if (isObj(data.admin) && data.admin.token === '') delete data.admin.token;
  for (const t of list(data.tenants)) if (isObj(t) && t.upload_token === '') delete t.upload_token;
}

interface Located extends ConfigIssue {
  readonly offset: number;
}

interface PathIssue {
  readonly segments: KeyPath;
  readonly path: string;
  readonly message: string;
}

// Source offset of the nearest node along `segments` that exists in the document.
function locate(doc: Document, segments: KeyPath, message: string): Located {
  let offset = Number.MAX_SAFE_INTEGER;
  for (let n = segments.length; n >= 0; n--) {
    const node: unknown = n === 0 ? doc.contents : doc.getIn(segments.slice(0, n), true);
    if (isNode(node) && node.range) {
      offset = node.range[0];
      break;
    }
  }
  return { path: formatKeyPath(segments), message, offset };
}

// ---------------------------------------------------------------------------
// YAML

const MAX_YAML_ERRORS = 5;

function parseYaml(text: string, file: string): { value: unknown; doc: Document } {
  const lineCounter = new LineCounter();
  // failsafe + null: every scalar is a string (or null), so the schema alone
  // decides types. YAML 1.2's own guessing would turn `password: 0123` into 123.
  const doc = parseDocument(text, {
    schema: 'failsafe',
    customTags: ['null'],
    merge: true,
    uniqueKeys: true,
    prettyErrors: true,
    lineCounter,
  });
  if (doc.errors.length > 0) {
    // One syntax slip often cascades into dozens of errors; the first few say it all.
    const all = dedupe(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
        return { path: `${pos.line}:${pos.col}`, message: yamlReason(e.message) };
      }),
    );
    const shown = all.slice(0, MAX_YAML_ERRORS);
    const more = all.length - shown.length;
    if (more > 0) shown.push({ path: '', message: `... and ${more} more YAML syntax error(s)` });
    throw new ConfigError(file, shown);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `invalid YAML: ${yamlReason(String((err as Error).message))}` }], {
      cause: err,
    });
  }
  if (value === null || value === undefined) return { value: {}, doc }; // empty file: all defaults
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(file, [{ path: ROOT, message: `must be a mapping (got ${describeValue(value, false)})` }]);
  }
  return { value: dropNulls(value), doc };
}

// The parser's message ends with " at line L, column C:" and a source excerpt;
// the excerpt may hold a secret, and the position is reported separately.
function yamlReason(message: string): string {
  const first = message.split('\n', 1)[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?\s*$/, '').trim();
}

// `key:` with nothing after it (or `~`, `null`) means "not set": the default applies.
function dropNulls(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(dropNulls);
  if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (v === null) delete (node as Record<string, unknown>)[k];
      else (node as Record<string, unknown>)[k] = dropNulls(v);
    }
  }
  return node;
}

// ---------------------------------------------------------------------------
// Schema

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({
      useDefaults: true,
      coerceTypes: true,
      allErrors: true,
      verbose: true,
      allowUnionTypes: true,
      strict: true,
    });
    ajv.addVocabulary([...SCHEMA_KEYWORDS]);
    compiled = ajv.compile(configSchema);
  }
  return compiled;
}

const ROOT = '(top level)';
const SECRETS = new Set(SECRET_KEYS);

const TYPE_NAMES: Readonly<Record<string, string>> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'a boolean (true or false)',
  object: 'a mapping',
  array: 'a list',
  null: 'null',
};

function describeSchemaError(e: ErrorObject): PathIssue {
  const segments: (string | number)[] = pointerToSegments(e.instancePath);
  const params = e.params as Record<string, unknown>;
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;

  if (e.keyword === 'required') {
    segments.push(String(params.missingProperty));
    return { segments, path: formatKeyPath(segments), message: 'is required' };
  }
  if (e.keyword === 'additionalProperties') {
    const key = String(params.additionalProperty);
    segments.push(key);
    const allowed = Object.keys((parent.properties ?? {}) as object);
    const near = closest(key, allowed);
    const hint = near === undefined ? '' : `; did you mean "${near}"?`;
    return { segments, path: formatKeyPath(segments), message: `unknown key (allowed: ${allowed.join(', ')})${hint}` };
  }

  const last = segments[segments.length - 1];
  const secret = typeof last === 'string' && SECRETS.has(last);
  const got = `(got ${describeValue(e.data, secret)})`;
  // The schema's words for what a string must be (`expected`), where it has them.
  const shape = typeof parent.expected === 'string' ? parent.expected : undefined;
  let expected: string;
  switch (e.keyword) {
    case 'type': {
      const types = ([] as unknown[]).concat(params.type).map((t) => TYPE_NAMES[String(t)] ?? String(t));
      expected = `must be ${types.join(' or ')}`;
      break;
    }
    case 'enum':
      expected = `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
      break;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      expected = `must be ${String(params.comparison)} ${String(params.limit)}`;
      break;
    case 'minLength':
      expected = shape ? `must be ${shape}` : `must be at least ${String(params.limit)} characters`;
      break;
    case 'maxLength':
      expected = shape ? `must be ${shape}` : `must be at most ${String(params.limit)} characters`;
      break;
    case 'pattern':
      expected = shape ? `must be ${shape}` : `must match /${String(params.pattern)}/`;
      break;
    default:
      expected = e.message ?? `fails "${e.keyword}"`;
  }
  return { segments, path: formatKeyPath(segments), message: `${expected} ${got}` };
}

function pointerToSegments(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    // The schema has no numeric keys, so an all-digit segment is a list index.
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Render a key path as `a.b[0].c`; keys that are not identifiers are quoted (`a["x.y"]`). */
export function formatKeyPath(segments: KeyPath): string {
  if (segments.length === 0) return ROOT;
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

function isSameOrBelow(p: string, ancestor: string): boolean {
  return p === ancestor || p.startsWith(`${ancestor}.`) || p.startsWith(`${ancestor}[`);
}

function describeValue(value: unknown, secret: boolean): string {
  if (secret) return '<redacted>';
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  // Never print a whole mapping: it may hold a secret.
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  }
  return String(value);
}

// Suggest a known key within edit distance 2 ("prot" → "port").
function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

// ---------------------------------------------------------------------------
// Checks the schema cannot express. They run even when the schema failed, so
// one run reports everything; hence every access is guarded.

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function semanticIssues(data: unknown, cwd: string): PathIssue[] {
  const issues: PathIssue[] = [];
  const add = (segments: KeyPath, message: string): void => {
    issues.push({ segments, path: formatKeyPath(segments), message });
  };
  if (!isObj(data)) return issues;

  // ajv coerces "Infinity" to a number and then skips every range check on it.
  const finite = (node: unknown, at: (string | number)[]): void => {
    if (typeof node === 'number' && !Number.isFinite(node)) add(at, `must be a finite number (got ${node})`);
    else if (Array.isArray(node)) node.forEach((v, i) => finite(v, [...at, i]));
    else if (isObj(node)) for (const [k, v] of Object.entries(node)) finite(v, [...at, k]);
  };
  finite(data, []);

  const server = isObj(data.server) ? data.server : {};
  const tls = isObj(server.tls) ? server.tls : undefined;
  const admin = isObj(data.admin) ? data.admin : {};

  // admin.listen
  let adminAddr: ListenAddress | undefined;
  const listen = str(admin.listen);
  if (listen !== undefined) {
    adminAddr = parseListenAddress(listen);
    if (!adminAddr) {
      add(
        ['admin', 'listen'],
        `must be host:port with a port from 0 to 65535, IPv6 hosts in brackets ([::1]:8075) (got ${describeValue(listen, false)})`,
      );
    }
  }

  // Listener ports.
  const serverAddr = listenerAddress(server.bind_address, server.port);
  const tlsAddr = tls ? listenerAddress(tls.bind_address ?? server.bind_address, tls.port) : undefined;
  if (tls && typeof tls.port === 'number' && tls.port === server.port && tls.port !== 0) {
    add(['server', 'tls', 'port'], `must differ from server.port (both are ${tls.port})`);
  }
  if (adminAddr && serverAddr && listenersClash(adminAddr, serverAddr)) {
    add(['admin', 'listen'], `port ${adminAddr.port} is already taken by server.port on ${serverAddr.host}`);
  }
  if (adminAddr && tlsAddr && listenersClash(adminAddr, tlsAddr)) {
    add(['admin', 'listen'], `port ${adminAddr.port} is already taken by server.tls.port on ${tlsAddr.host}`);
  }

  // Files the TLS listener needs.
  if (tls) {
    for (const key of ['cert_path', 'key_path', 'ca_path']) {
      const p = str(tls[key]);
      if (p) checkReadableFile(p, cwd, ['server', 'tls', key], add);
    }
  }

  // Tenants.
  const tenantIds = new Map<string, KeyPath>();
  const systemIds = new Map<string, { tenant: string; at: KeyPath }>();
  list(data.tenants).forEach((t, ti) => {
    if (!isObj(t)) return;
    const tp: KeyPath = ['tenants', ti];
    const id = str(t.id);
    if (id !== undefined) {
      // Ids name URLs, files and metrics labels: "Acme" and "acme" would collide.
      const prior = tenantIds.get(id.toLowerCase());
      if (prior) add([...tp, 'id'], `duplicate tenant id "${id}" (already used at ${formatKeyPath(prior)}; ids are compared case-insensitively)`);
      else tenantIds.set(id.toLowerCase(), [...tp, 'id']);
    }
    const tenantName = id ?? `#${ti}`;

    list(t.system_ids).forEach((s, si) => {
      if (typeof s !== 'string') return;
      const at: KeyPath = [...tp, 'system_ids', si];
      const prior = systemIds.get(s);
      if (!prior) systemIds.set(s, { tenant: tenantName, at });
      else if (prior.at[1] === ti) add(at, `duplicate system_id "${s}" (also at ${formatKeyPath(prior.at)})`);
      else add(at, `system_id "${s}" already belongs to tenant "${prior.tenant}" (${formatKeyPath(prior.at)}); a system_id may belong to one tenant only`);
    });

    const limits = isObj(t.limits) ? t.limits : {};
    if (
      typeof limits.max_value_kb === 'number' &&
      typeof limits.max_cache_mb === 'number' &&
      limits.max_value_kb > limits.max_cache_mb * 1024
    ) {
      add(
        [...tp, 'limits', 'max_value_kb'],
        `must be <= max_cache_mb × 1024 (${limits.max_cache_mb * 1024}) (got ${limits.max_value_kb})`,
      );
    }

    const bindNames = new Map<string, KeyPath>();
    // Binds of one upstream account share its receipt correlations, so they read its ids one way.
    const accounts = new Map<string, { form: string; at: KeyPath }>();
    list(t.binds).forEach((b, bi) => {
      if (!isObj(b)) return;
      const bp: KeyPath = [...tp, 'binds', bi];
      const name = str(b.name);
      if (name !== undefined) {
        const prior = bindNames.get(name);
        if (prior) add([...bp, 'name'], `duplicate bind name "${name}" in tenant "${tenantName}" (already used at ${formatKeyPath(prior)})`);
        else bindNames.set(name, [...bp, 'name']);
      }
      const port = typeof b.port === 'number' ? b.port : undefined;
      const host = str(b.host);
      const sys = str(b.system_id);
      if (host !== undefined && port !== undefined && sys !== undefined) {
        const account = accountOf({ account: str(b.account), host, port, system_id: sys });
        const form = str(b.receipt_id) ?? 'auto';
        const prior = accounts.get(account);
        if (!prior) accounts.set(account, { form, at: [...bp, 'receipt_id'] });
        else if (prior.form !== form) {
          add([...bp, 'receipt_id'], `binds of one upstream account ("${account}") must read receipt ids alike: "${form}" here, "${prior.form}" at ${formatKeyPath(prior.at)}`);
        }
      }
      if (isObj(b.tls)) {
        const ca = str(b.tls.ca_path);
        if (ca) checkReadableFile(ca, cwd, [...bp, 'tls', 'ca_path'], add);
      }
    });

    const routing = isObj(t.routing) ? t.routing : {};
    const checkChain = (chain: unknown, cp: KeyPath): void => {
      list(chain).forEach((step, si) => {
        if (typeof step !== 'string') return;
        const parsed = parseChainStep(step);
        if (parsed?.kind === 'reject' && parsed.status !== undefined && STATUS[parsed.status] === undefined) {
          add([...cp, si], `"${parsed.status}" is not an SMPP command_status name`);
          return;
        }
        if (parsed?.kind !== 'bind' || bindNames.has(parsed.bind)) return;
        const known = [...bindNames.keys()];
        const theirs = known.length ? `its binds: ${known.join(', ')}` : 'it has no binds';
        add([...cp, si], `bind "${parsed.bind}" is not a bind of tenant "${tenantName}" (${theirs})`);
      });
    };
    checkChain(routing.default_chain, [...tp, 'routing', 'default_chain']);
    const prefixes = new Map<string, KeyPath>();
    list(routing.rules).forEach((r, ri) => {
      if (!isObj(r)) return;
      const rp: KeyPath = [...tp, 'routing', 'rules', ri];
      checkChain(r.chain, [...rp, 'chain']);
      const prefix = str(r.prefix);
      if (prefix === undefined) return;
      const prior = prefixes.get(prefix);
      if (prior) add([...rp, 'prefix'], `duplicate prefix "${prefix}" (already routed by ${formatKeyPath(prior)})`);
      else prefixes.set(prefix, [...rp, 'prefix']);
    });
  });

  return issues;
}

function checkReadableFile(
  p: string,
  cwd: string,
  at: KeyPath,
  add: (segments: KeyPath, message: string) => void,
): void {
  const resolved = path.resolve(cwd, p);
  const shown = resolved === p ? `"${p}"` : `"${p}" (${resolved})`;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(resolved);
  } catch {
    add(at, `file ${shown} not found`);
    return;
  }
  if (!stat.isFile()) {
    add(at, `${shown} is not a file`);
    return;
  }
  try {
    fs.accessSync(resolved, fs.constants.R_OK);
  } catch (err) {
    add(at, `file ${shown} is not readable (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** A parsed `host:port`. */
export interface ListenAddress {
  /** Host without IPv6 brackets. */
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Parse a listen address such as `127.0.0.1:8075`, `localhost:0` or
 * `[::1]:8075`; `undefined` if it is not one.
 */
export function parseListenAddress(listen: string): ListenAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const v6 = m[1];
  if (v6 !== undefined) return net.isIPv6(v6) ? { host: v6, port } : undefined;
  const host = m[2] as string;
  return net.isIPv4(host) || HOSTNAME.test(host) ? { host, port } : undefined;
}

function listenerAddress(host: unknown, port: unknown): ListenAddress | undefined {
  return typeof host === 'string' && typeof port === 'number' ? { host, port } : undefined;
}

// Only clashes that are certain: a hostname may resolve anywhere.
function listenersClash(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  if (a.host === b.host) return true;
  if (a.host === '::' || b.host === '::') return true; // dual-stack wildcard
  if (a.host === '0.0.0.0') return net.isIPv4(b.host);
  if (b.host === '0.0.0.0') return net.isIPv4(a.host);
  return false;
}

function dedupe(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
