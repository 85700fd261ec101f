import { DEFAULT_ADMIN, TOKEN_VARIABLE } from './admin-client';
import { parseCommand, UsageError, type Command } from './args';
import { POLICY_COMMANDS } from './policy-commands';
import { start } from './start-command';
import { status } from './status-command';
import { bench, configDoc, sim, soak } from './tool-commands';

/** Every `sluice` command, in the order `sluice --help` lists them. */
export const COMMANDS: readonly Command[] = [start, configDoc, ...POLICY_COMMANDS, status, sim, bench, soak];

const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));

/** `sluice --help`: a line or two per command. */
export const USAGE = `usage: sluice <command> [options]
       sluice <command> --help      that command's usage and every option

${COMMANDS.map((c) => `  ${c.name} ${c.synopsis}\n      ${c.summary}`).join('\n')}

push, unpin, status, versions and rollback call the admin API: --admin URL
(default ${DEFAULT_ADMIN}), --token T or $${TOKEN_VARIABLE}.
Exit status: 0 done, 1 failed (errors found, refused, unreachable), 2 a wrong command line.
`;

/** The `sluice` command line. Resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stdout.write(USAGE);
    return 1;
  }
  if (name === '-h' || name === '--help' || name === 'help') {
    // `sluice help push` is `sluice push --help`.
    const cmd = name === 'help' && rest[0] !== undefined ? BY_NAME.get(rest[0]) : undefined;
    if (name === 'help' && rest[0] !== undefined && !cmd) {
      process.stderr.write(`sluice: unknown command "${rest[0]}"\n${USAGE}`);
      return 1;
    }
    process.stdout.write(cmd ? cmd.usage : USAGE);
    return 0;
  }
  const cmd = BY_NAME.get(name);
  if (!cmd) {
    process.stderr.write(`sluice: unknown command "${name}"\n${USAGE}`);
    return 1;
  }
  try {
    const args = parseCommand(cmd, rest);
    if (args === 'help') {
      process.stdout.write(cmd.usage);
      return 0;
    }
    return await cmd.run(args);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`sluice ${name}: ${err.message}\nsee: sluice ${name} --help\n`);
      return 2;
    }
    // An admin call refused, a bind refused, a port taken: said under the command's name.
    process.stderr.write(`sluice ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
