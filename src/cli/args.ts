import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The options of one command, as `node:util` parseArgs takes them. */
export type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A command line that is wrong: an unknown option, a missing argument, a
 * value that does not parse. `sluice` prints it with a pointer to the
 * command's `--help` and exits 2.
 */
export class UsageError extends Error {}

/** One command's parsed command line. */
export interface Parsed {
  readonly positionals: readonly string[];
  /** A string option's value, or undefined when not given. */
  string(name: string): string | undefined;
  /** Whether a boolean option was given. */
  flag(name: string): boolean;
  /** A number option's value, `dflt` when not given; not a number is a {@link UsageError}. */
  number(name: string, dflt: number): number;
}

/** A `sluice` command: its help, its options, what it runs. */
export interface Command {
  /** The word after `sluice`. */
  readonly name: string;
  /** Its arguments in `sluice --help`, after the name (`<tenant> <policy.ts> [--admin URL] …`). */
  readonly synopsis: string;
  /** One line for `sluice --help`. */
  readonly summary: string;
  /** `sluice <name> --help`, beginning `usage: sluice <name>`; `-h, --help` is in every command's list. */
  readonly usage: string;
  /** Its options; `-h, --help` is added to every command. */
  readonly options: Options;
  /** Its positional arguments, named as the usage names them: required ones, optional ones, and whether more may follow. */
  readonly positionals?: { required?: readonly string[]; optional?: readonly string[]; more?: boolean };
  /** Runs it; resolves with the exit code. */
  run(args: Parsed): Promise<number>;
}

const HELP: Options = { help: { type: 'boolean', short: 'h' } };

/**
 * Parse a command's arguments. `'help'` when `-h` or `--help` is among them
 * (anywhere before `--`); a {@link UsageError} naming what is wrong otherwise.
 */
export function parseCommand(cmd: Command, args: string[]): Parsed | 'help' {
  const options: Options = { ...cmd.options, ...HELP };
  // A lenient pass first: it finds --help wherever it is, and names an unknown option as it was written.
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) if (t.kind === 'option' && t.name === 'help') return 'help';
  for (const t of tokens) if (t.kind === 'option' && !Object.hasOwn(options, t.name)) throw new UsageError(`unknown option '${t.rawName}'`);
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    // A string option with no value, a value given to a flag, a value that looks like an option.
    if (String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message);
    throw err;
  }
  const { required = [], optional = [], more = false } = cmd.positionals ?? {};
  const { positionals, values } = parsed;
  if (positionals.length < required.length) throw new UsageError(`missing ${required.slice(positionals.length).join(' ')}`);
  if (!more && positionals.length > required.length + optional.length) throw new UsageError(`unexpected argument "${positionals[required.length + optional.length]}"`);
  const value = (name: string): string | boolean | undefined => {
    const v = values[name];
    return Array.isArray(v) ? v[v.length - 1] : v;
  };
  return {
    positionals,
    string: (name) => {
      const v = value(name);
      return typeof v === 'string' ? v : undefined;
    },
    flag: (name) => value(name) === true,
    number: (name, dflt) => {
      const v = value(name);
      if (typeof v !== 'string') return dflt;
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number (got "${v}")`);
      return n;
    },
  };
}
