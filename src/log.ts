// The one pino logger: JSON lines to stderr (pretty on a terminal) and, for `warren start`, to a log file in the
// data directory, rolled by size (pino-roll; `warren logs` reads it). Modules take child loggers.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import roll from 'pino-roll';

export type Logger = pino.Logger;

export interface LoggerOptions {
  level: string;
  /** Human-readable lines (for a person at a terminal) instead of JSON. */
  isPretty?: boolean;
  /** Also write to <logDir>/warren.N.log, current.log pointing at the one in use, at most five kept besides it. */
  logDir?: string;
  /** Roll the file at this size (pino-roll's units: '10m'). */
  maxFileSize?: string;
}

/** The log file in use (a link to the newest of the rolled files). */
export const currentLogFile = (logDir: string) => join(logDir, 'current.log');

export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const { level } = options;
  const terminal = options.isPretty
    ? pino.transport({ target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:HH:MM:ss' } })
    : pino.destination(2);
  if (!options.logDir) return pino({ level }, terminal);
  mkdirSync(options.logDir, { recursive: true, mode: 0o700 });
  const file = await roll({
    file: join(options.logDir, 'warren'),
    extension: '.log',
    size: options.maxFileSize ?? '10m',
    limit: { count: 5 },
    symlink: true,
    mode: 0o600,
  });
  return pino(
    { level },
    pino.multistream([
      { level, stream: terminal },
      { level, stream: file },
    ]),
  );
}

/** A logger that discards everything, for tests and one-shot CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
