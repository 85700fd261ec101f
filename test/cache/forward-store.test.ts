import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';
import { ForwardStore, memoryForward, sqliteForward } from '../../src/cache/forward-store';
import { forwardSuite } from './forward-suite';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-forward-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'journal.sqlite');

forwardSuite({ name: 'memory', open: async () => new ForwardStore(memoryForward()) });
forwardSuite({
  name: 'SQLite',
  open: async () => new ForwardStore(await sqliteForward(file)),
  reopen: async () => new ForwardStore(await sqliteForward(file)),
});
