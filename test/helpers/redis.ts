import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, before } from 'node:test';
import { freePort } from './harness';

/** Whether a `redis-server` binary is on the PATH; suites that need one skip, saying why, where it is not. */
export const redisInstalled = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
export const redisSkip: string | false = redisInstalled ? false : 'redis-server not installed';

/**
 * A real redis-server on a loopback port, no persistence. `stop()` and
 * `start()` again bring it back on the same port (a store outage).
 */
export class RedisServer {
  private child: ChildProcess | undefined;
  private port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<string> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 5000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${out}`));
      });
    });
    return this.url;
  }

  /** Stop it and wait until it has exited (its port is free again). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

/** A redis-server for the calling test file: started before its tests and stopped after them, where one is installed. */
export function redisForThisFile(): RedisServer {
  const r = new RedisServer();
  if (redisInstalled) {
    before(() => r.start());
    after(() => r.stop());
  }
  return r;
}
