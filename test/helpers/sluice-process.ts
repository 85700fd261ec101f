import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';

const BIN = path.resolve(__dirname, '../../../bin/sluice.js');
const REPO = path.resolve(__dirname, '../../..');

/** A temp dir holding copies of config/example-gateway.yaml and policies/gateway.ts, as an operator's checkout has them; the caller removes it. */
export function exampleGatewayDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  mkdirSync(path.join(dir, 'config'));
  mkdirSync(path.join(dir, 'policies'));
  copyFileSync(path.join(REPO, 'config/example-gateway.yaml'), path.join(dir, 'config/example-gateway.yaml'));
  copyFileSync(path.join(REPO, 'policies/gateway.ts'), path.join(dir, 'policies/gateway.ts'));
  return dir;
}

/** Call `fn` with each whole line a stream writes. */
export function eachLine(stream: Readable, fn: (line: string) => void): void {
  let buffered = '';
  stream.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      fn(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
}

/** A real `sluice start -c <file>` in a child process, its JSON log lines collected as they come. */
export class SluiceProcess {
  readonly lines: Record<string, unknown>[] = [];
  private readonly exited: Promise<unknown>;

  private constructor(readonly child: ChildProcess) {
    eachLine(child.stdout!, (line) => {
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    });
    this.exited = new Promise((r) => child.once('exit', r));
  }

  static start(configFile: string, cwd: string, env: NodeJS.ProcessEnv = {}): SluiceProcess {
    return new SluiceProcess(spawn(process.execPath, [BIN, 'start', '-c', configFile], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
  }

  /** The first log line from index `after` on with this message (and matching `where`), waiting up to `ms` (10 s) for it. */
  async logged(msg: string, after = 0, where: (l: Record<string, unknown>) => boolean = () => true, ms = 10_000): Promise<Record<string, unknown>> {
    for (let i = 0; i < ms / 20; i++) {
      const hit = this.lines.slice(after).find((l) => l.msg === msg && where(l));
      if (hit) return hit;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no "${msg}" in the log`);
  }

  /** SIGTERM (a clean stop), or SIGKILL (a crash); resolves once the process has exited. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

/** What a finished `sluice` command printed, and its exit code. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `sluice <args>` in a child process and wait for it (killed after
 * `timeoutMs`). The child's environment is this one's with `env` over it,
 * an undefined value removing a variable; the admin token variables are
 * removed unless `env` sets them, so the caller's shell does not leak in.
 */
export function runSluice(args: string[], o: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  const env = { ...process.env, SLUICE_ADMIN_TOKEN: undefined, SLUICE_TOKEN: undefined, ...o.env };
  const child = spawn(process.execPath, ['--no-node-snapshot', BIN, ...args], { cwd: o.cwd ?? REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
