/** Config text parsed as the loader parses it, errors read back, and the repository root, for the config tests. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isSluiceError } from '../../src/errors';
import { ConfigError, parseConfig, type SluiceConfig } from '../../src/config';

// The compiled test may live outside the repository (any outDir), so look
// for the repository from here first, then from the working directory.
export function findRepoRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = path.resolve(start);
    for (;;) {
      const pkg = path.join(dir, 'package.json');
      if (fs.existsSync(pkg)) {
        try {
          if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'sluice') return dir;
        } catch {
          // not ours; keep walking
        }
      }
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error('cannot find the sluice repository root');
}

export const REPO = findRepoRoot();
export const FILE = 'config/sluice.yaml';

export function parse(text: string, env: NodeJS.ProcessEnv = {}, cwd?: string): SluiceConfig {
  return parseConfig(text, cwd === undefined ? { file: FILE, env } : { file: FILE, env, cwd });
}

/** Parse text that must fail; return the error's message after checking its class and code. */
export function errorOf(text: string, env: NodeJS.ProcessEnv = {}, cwd?: string): string {
  try {
    parse(text, env, cwd);
  } catch (err) {
    assert.ok(isSluiceError(err, 'SLUICE_ERR_CONFIG'), `expected SLUICE_ERR_CONFIG, got ${String(err)}`);
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail('expected the configuration to be rejected');
}

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-config-'));
}

export const BIND = '{ name: up, host: 127.0.0.1, port: 2776, system_id: acme }';
