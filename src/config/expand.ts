/**
 * Environment expansion for configuration values.
 *
 * Grammar, applied to every string scalar (never to keys):
 * - `${NAME}`            the value of NAME; an error if NAME is unset
 *                        (set-but-empty expands to the empty string);
 * - `${NAME:-default}`   the value of NAME, or `default` if NAME is unset or empty;
 * - `$${`                a literal `${`;
 * - any other `$`        itself (so `$x` or `a$b` need no escaping).
 *
 * NAME is `[A-Za-z_][A-Za-z0-9_]*`. A default runs to the first `}` and cannot
 * contain another `${…}`. Anything else after `${` is an error rather than
 * literal text, so a typo never reaches a running gateway as a value.
 */

/** A key path: mapping keys and list indexes from the document root. */
export type KeyPath = readonly (string | number)[];

/** One expansion failure, at the key path of the string that failed. */
export interface ExpandIssue {
  readonly path: KeyPath;
  readonly message: string;
}

/** Result of expanding one string. */
export type ExpandStringResult =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly message: string };

/** Options of {@link expandString}. */
export interface ExpandStringOptions {
  /** The string is a secret: error messages must not quote any part of it. */
  readonly secret?: boolean;
}

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** Expand `${…}` references in one string against `env`. */
export function expandString(
  input: string,
  env: NodeJS.ProcessEnv,
  options: ExpandStringOptions = {},
): ExpandStringResult {
  if (!input.includes('$')) return { ok: true, value: input };
  let out = '';
  let i = 0;
  while (i < input.length) {
    const ch = input[i] as string;
    if (ch !== '$') {
      out += ch;
      i += 1;
      continue;
    }
    if (input.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (input[i + 1] !== '{') {
      out += ch;
      i += 1;
      continue;
    }
    const close = input.indexOf('}', i + 2);
    if (close < 0) {
      return { ok: false, message: 'unterminated "${" (write "$${" for a literal "${")' };
    }
    const body = input.slice(i + 2, close);
    const quoted = options.secret ? 'reference "${…}"' : `reference "\${${body}}"`;
    const m = REFERENCE.exec(body);
    if (!m) {
      return {
        ok: false,
        message: `invalid ${quoted}: expected \${NAME} or \${NAME:-default} (write "$\${" for a literal "\${")`,
      };
    }
    const name = m[1] as string;
    const dflt = m[2];
    if (dflt !== undefined && dflt.includes('${')) {
      return { ok: false, message: `nested references are not supported in ${quoted}` };
    }
    const value = env[name];
    if (dflt !== undefined) {
      out += value === undefined || value === '' ? dflt : value;
    } else if (value === undefined) {
      return {
        ok: false,
        message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)`,
      };
    } else {
      out += value;
    }
    i = close + 1;
  }
  return { ok: true, value: out };
}

/** Options of {@link expandEnv}. */
export interface ExpandEnvOptions {
  /** Keys whose values are secrets; their text is never quoted in an issue. */
  readonly secretKeys?: readonly string[];
}

/**
 * Expand every string scalar of a parsed document (plain objects, arrays and
 * scalars, as a YAML parser returns them). Returns a new tree; keys are
 * copied verbatim. A string that fails to expand is kept as written and
 * reported in `issues`, so the caller can report every failure at once.
 */
export function expandEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  options: ExpandEnvOptions = {},
): { readonly value: unknown; readonly issues: readonly ExpandIssue[] } {
  const issues: ExpandIssue[] = [];
  const secretKeys = new Set(options.secretKeys ?? []);

  const walk = (node: unknown, path: (string | number)[]): unknown => {
    if (typeof node === 'string') {
      const last = path[path.length - 1];
      const r = expandString(node, env, { secret: typeof last === 'string' && secretKeys.has(last) });
      if (r.ok) return r.value;
      issues.push({ path: [...path], message: r.message });
      return node;
    }
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...path, index]));
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(node)) {
        // defineProperty: a key named "__proto__" must stay an own key, not a prototype.
        Object.defineProperty(out, key, {
          value: walk(child, [...path, key]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    return node;
  };

  return { value: walk(value, []), issues };
}
