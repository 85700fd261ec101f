import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { eachLine } from './sluice-process';

const BIN = path.resolve(__dirname, '../../../bin/sluice.js');

/** What `sluice sim --log-events` prints, one JSON object a line. */
export interface SimEvent {
  ev: string;
  id?: string;
  rid?: string;
  text?: string;
  acked?: boolean;
  [k: string]: unknown;
}

/** A real `sluice sim --log-events` in a child process on a given port, its events collected. */
export class SimProcess {
  readonly events: SimEvent[] = [];
  private readonly exited: Promise<unknown>;
  private readonly ready: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    let ready!: () => void;
    this.ready = new Promise((r) => (ready = r));
    eachLine(child.stdout!, (line) => {
      if (line.startsWith('sluice sim: SMSC simulator listening')) ready();
      if (!line.startsWith('{')) return;
      try {
        this.events.push(JSON.parse(line) as SimEvent);
      } catch {
        /* not an event */
      }
    });
    this.exited = new Promise((r) => child.once('exit', r));
  }

  /** Start on `port` with extra flags; resolves once it listens. */
  static async start(port: number, flags: string[] = []): Promise<SimProcess> {
    const p = new SimProcess(spawn(process.execPath, [BIN, 'sim', '--port', String(port), '--log-events', ...flags], { stdio: ['ignore', 'pipe', 'inherit'] }));
    await Promise.race([p.ready, p.exited.then(() => Promise.reject(new Error('sim exited before it listened')))]);
    return p;
  }

  /** Texts of the submits it accepted (one entry per accepted submit, duplicates included). */
  submitted(): string[] {
    return this.events.filter((e) => e.ev === 'submit').map((e) => String(e.text));
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}
