/**
 * For test files that run isolates in this process. isolated-vm 5 can abort
 * a process that ends by draining its event loop while V8 is part-way
 * through marking and some of its handles are still awaiting collection:
 * the last collection then runs after isolated-vm has torn down, and its
 * handles' weak callbacks assert ("environment != nullptr"). Sandbox
 * processes end by exit() or SIGKILL and never meet it. Here, one full
 * collection after the file's tests, while everything is still up, leaves
 * nothing for that last one (`npm test` runs with --expose-gc).
 */
import { after } from 'node:test';

after(() => {
  (globalThis as { gc?: () => void }).gc?.();
});
