/**
 * Every command's --help, and what a wrong command line gets: the real
 * `sluice` in a child process (regression: `--help` on start, check, push,
 * bench and soak failed with "Unknown option '--help'").
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { COMMANDS } from '../../src/cli/main';
import { runSluice } from '../helpers/sluice-process';

const ROOT = path.resolve(__dirname, '../../..');

describe('sluice --help and usage errors', () => {
  for (const cmd of COMMANDS) {
    it(`${cmd.name} --help and -h print its usage and exit 0, doing nothing else`, async () => {
      for (const flag of ['--help', '-h']) {
        // Arguments it would otherwise act on: help wins wherever it stands.
        const r = await runSluice([cmd.name, 'x', flag, 'y']);
        assert.equal(r.code, 0, `${cmd.name} ${flag}: ${r.stderr}`);
        assert.equal(r.stdout, cmd.usage);
        assert.ok(r.stdout.startsWith(`usage: sluice ${cmd.name}`));
        assert.match(r.stdout, /-h, --help/);
        assert.equal(r.stderr, '');
      }
    });
  }

  it('every option of a command is in its --help', () => {
    for (const cmd of COMMANDS) for (const name of Object.keys(cmd.options)) assert.match(cmd.usage, new RegExp(`--${name}\\b`), `${cmd.name} --help lacks --${name}`);
  });

  it('sluice --help lists every command; `sluice help <command>` is that command\'s --help', async () => {
    const top = await runSluice(['--help']);
    assert.equal(top.code, 0);
    for (const cmd of COMMANDS) assert.match(top.stdout, new RegExp(`^  ${cmd.name} `, 'm'));
    const push = await runSluice(['help', 'push']);
    assert.equal(push.code, 0);
    assert.equal(push.stdout, COMMANDS.find((c) => c.name === 'push')!.usage);
  });

  it('an unknown option is named, with a pointer to --help, exit 2', async () => {
    for (const [args, named] of [
      [['start', '--frobnicate'], '--frobnicate'],
      [['push', 'acme', 'p.ts', '--tokn', 'x'], '--tokn'],
      [['bench', '-x'], '-x'],
      [['status', '--jsn'], '--jsn'],
    ] as const) {
      const r = await runSluice([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, `sluice ${args[0]}: unknown option '${named}'\nsee: sluice ${args[0]} --help\n`);
      assert.equal(r.stdout, '');
    }
  });

  it('a missing argument, an extra one, a value that is not a number or an option without its value: exit 2, saying which', async () => {
    const cases: [string[], RegExp][] = [
      [['push', 'acme'], /^sluice push: missing <policy\.ts>\n/],
      [['versions'], /^sluice versions: missing <tenant>\n/],
      [['rollback', 'acme', '3', '4'], /^sluice rollback: unexpected argument "4"\n/],
      [['rollback', 'acme', 'v3', '--token', 't'], /^sluice rollback: the version must be a positive whole number/],
      [['bench', '--port', 'abc'], /^sluice bench: --port must be a number \(got "abc"\)\n/],
      [['start', '-c'], /^sluice start: Option '-c, --config <value>' argument missing\n/],
      [['sim', '--receipts-on', 'nowhere'], /^sluice sim: --receipts-on must be one of carrier, other, spread/],
      [['status', '--admin', 'ftp://x', '--token', 't'], /^sluice status: --admin must be an http:\/\/ or https:\/\/ URL/],
    ];
    for (const [args, expected] of cases) {
      const r = await runSluice(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, expected);
      assert.match(r.stderr, new RegExp(`see: sluice ${args[0]} --help\\n$`));
    }
  });

  it('docs/cli.md documents every command and every option', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/cli.md'), 'utf8');
    for (const cmd of COMMANDS) {
      const at = doc.indexOf(`\n## \`sluice ${cmd.name}`);
      assert.ok(at >= 0, `docs/cli.md has no section for sluice ${cmd.name}`);
      const next = doc.indexOf('\n## ', at + 1);
      const section = doc.slice(at, next < 0 ? undefined : next);
      for (const name of Object.keys(cmd.options)) assert.match(section, new RegExp(`--${name}\\b`), `docs/cli.md: sluice ${cmd.name} lacks --${name}`);
    }
  });
});
