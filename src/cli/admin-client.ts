import { UsageError, type Options, type Parsed } from './args';

/** Where the admin API listens unless `--admin` says otherwise (`admin.listen` of config/sluice.yaml). */
export const DEFAULT_ADMIN = 'http://127.0.0.1:8075';

/** The environment variable holding the admin API's token: the one the shipped configs read for `admin.token`. */
export const TOKEN_VARIABLE = 'SLUICE_ADMIN_TOKEN';

/** The variable `sluice push` and `unpin` once read; still read, with a warning, when SLUICE_ADMIN_TOKEN is unset. */
export const DEPRECATED_TOKEN_VARIABLE = 'SLUICE_TOKEN';

/** How long the CLI waits for an answer from the admin API. */
const ANSWER_MS = 30_000;

/** The options of every command that talks to the admin API. */
export const ADMIN_OPTIONS: Options = { admin: { type: 'string' }, token: { type: 'string' } };

/** Their lines in a command's `--help`. */
export const ADMIN_OPTIONS_USAGE = `  --admin URL                   the admin API (default ${DEFAULT_ADMIN}: admin.listen of the config)
  --token T                     its bearer token (default: $${TOKEN_VARIABLE}): admin.token, or a tenant's
                                upload_token, which reaches only that tenant`;

/**
 * An admin call that did not do what was asked, said for people: the
 * gateway cannot be reached, refused the token, has no such tenant, or
 * refused the request. The command prints it and exits 1.
 */
export class AdminError extends Error {}

/** An answer of the admin API: its HTTP status and its JSON body (`{}` when it had none). */
export interface AdminAnswer {
  status: number;
  // The API's JSON, read field by field by each command.
  body: any;
}

/** A client of the admin API for one command: base URL and bearer token from `--admin`, `--token` and the environment. */
export class AdminClient {
  private constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  /**
   * The client a command's options ask for. `--token`, else
   * SLUICE_ADMIN_TOKEN, else the deprecated SLUICE_TOKEN (with a warning on
   * `warn`); none of them is an {@link AdminError}. A malformed `--admin` is
   * a {@link UsageError}.
   */
  static from(cmd: string, args: Parsed, env: NodeJS.ProcessEnv = process.env, warn: (line: string) => void = (l) => void process.stderr.write(`${l}\n`)): AdminClient {
    const base = adminUrl(args.string('admin') ?? DEFAULT_ADMIN);
    let token = args.string('token') ?? (env[TOKEN_VARIABLE] || undefined);
    if (token === undefined && env[DEPRECATED_TOKEN_VARIABLE]) {
      warn(`sluice ${cmd}: ${DEPRECATED_TOKEN_VARIABLE} is deprecated and will stop being read: set ${TOKEN_VARIABLE}, the variable the gateway's config reads`);
      token = env[DEPRECATED_TOKEN_VARIABLE];
    }
    if (!token) throw new AdminError(`a token is needed: set ${TOKEN_VARIABLE} or pass --token (admin.token of the gateway's config, or the tenant's upload_token)`);
    return new AdminClient(base, token);
  }

  /**
   * One request. Resolves with any answer but these, which are thrown as
   * {@link AdminError}: no connection, no answer in 30 s, 401, and 404 for a
   * tenant the gateway does not have (or the token does not reach).
   */
  async call(method: string, path: string, o: { body?: string; contentType?: string; tenant?: string } = {}): Promise<AdminAnswer> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (o.body !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, body: o.body, signal: AbortSignal.timeout(ANSWER_MS) });
    } catch (err) {
      const e = err as Error & { cause?: NodeJS.ErrnoException };
      if (e.name === 'TimeoutError') throw new AdminError(`the admin API at ${this.base} did not answer within ${ANSWER_MS / 1000} s`);
      const why = e.cause?.code ?? e.cause?.message ?? e.message;
      throw new AdminError(`cannot reach the admin API at ${this.base} (${why}): is \`sluice start\` running there? --admin sets the address (admin.listen of its config)`);
    }
    const text = await res.text();
    let body: any = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: `${res.statusText || 'an answer'} that is not JSON: is ${this.base} Sluice's admin API?` };
    }
    if (res.status === 401) throw new AdminError(`the admin API at ${this.base} refused the token (401): use admin.token of the gateway's config (${TOKEN_VARIABLE}), or the tenant's upload_token`);
    if (res.status === 404 && o.tenant !== undefined && body.error === 'no such tenant') {
      throw new AdminError(`no tenant "${o.tenant}" at ${this.base} (or the token is another tenant's upload_token)`);
    }
    return { status: res.status, body };
  }
}

/** `--admin` as a base URL without a trailing slash; `host:port` alone means http. */
function adminUrl(given: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--admin must be a URL such as ${DEFAULT_ADMIN} (got "${given}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--admin must be an http:// or https:// URL (got "${given}")`);
  return withScheme.replace(/\/+$/, '');
}

/** A refusal the caller has no better words for: the status and the gateway's own reason. */
export function refusal(a: AdminAnswer): AdminError {
  return new AdminError(`the admin API answered ${a.status}: ${typeof a.body.error === 'string' ? a.body.error : JSON.stringify(a.body)}`);
}
