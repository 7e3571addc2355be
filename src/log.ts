// The one pino logger: JSON lines to a file or stderr, pretty on a terminal; modules take child loggers.
import pino from 'pino';

export type Logger = pino.Logger;

export interface LoggerOptions {
  level: string;
  /** Human-readable lines (for a person at a terminal) instead of JSON. */
  isPretty?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  if (options.isPretty) {
    return pino({
      level: options.level,
      transport: { target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:HH:MM:ss' } },
    });
  }
  return pino({ level: options.level }, pino.destination(2));
}

/** A logger that discards everything, for tests and one-shot CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
