import * as path from 'node:path';
import { loadConfig } from '../config/load';
import { isSluiceError } from '../errors';
import { createLogger } from '../log/logger';
import { startSluice, withoutPassword } from '../runtime';
import type { Command } from './args';

export const start: Command = {
  name: 'start',
  synopsis: '[-c config/sluice.yaml]',
  summary: 'run the gateway (SIGHUP re-reads the config file)',
  options: { config: { type: 'string', short: 'c' } },
  usage: `usage: sluice start [-c config/sluice.yaml]

Run the gateway: SMPP listeners, outbound binds, sandbox processes and the
admin API, as the config file says; JSON log lines on stdout. SIGHUP (or
POST /v1/reload) re-reads the file, SIGTERM or SIGINT stops cleanly. A file
that does not load is reported with its key, before any port is opened
(exit 2); a port that is taken or a store that cannot be opened exits 1.

  -c, --config FILE             the config file (default config/sluice.yaml)
  -h, --help                    print this text
`,
  async run(args) {
    const file = args.string('config') ?? 'config/sluice.yaml';
    let config;
    try {
      config = loadConfig(file);
    } catch (err) {
      // A bad config names the file and key and stops before any port is opened.
      if (isSluiceError(err, 'SLUICE_ERR_CONFIG')) {
        process.stderr.write(`${err.message}\n`);
        return 2;
      }
      throw err;
    }
    const logger = createLogger({ level: config.log.level });
    let sluice;
    try {
      sluice = await startSluice({ config, logger, admin: true, configFile: file });
    } catch (err) {
      // A port that is taken, a store that cannot be opened: say so and exit non-zero, not run half started.
      const e = err as NodeJS.ErrnoException;
      logger.fatal({ err: e.message, code: e.code }, 'sluice could not start');
      logger.flush();
      process.stderr.write(`sluice: could not start: ${e.message}\n`);
      return 1;
    }
    // The store with its absolute path: relative ones resolved against the config file's directory.
    logger.info({ port: sluice.port, tlsPort: sluice.tlsPort, adminPort: sluice.adminPort, tenants: config.tenants.length, sandbox_processes: config.sandbox.processes, config: path.resolve(file), store: withoutPassword(config.cache.url) }, 'sluice started');
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        logger.info({ signal }, 'stopping');
        sluice.stop().then(resolve, resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      // Re-read the config file: tenants, limits, binds and routing; an invalid file is refused whole and logged.
      process.on('SIGHUP', () => {
        sluice.reloadConfig().catch((err: Error) => logger.error({ err: err.message }, 'config reload refused; the running config stays'));
      });
    });
    logger.flush();
    return 0;
  },
};
