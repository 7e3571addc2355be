// The runner's logger: pino-compatible JSON lines on stderr, which the host captures with the container's output.

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
type Level = keyof typeof LEVELS;
export type Log = Record<Level, (fields: Record<string, unknown>, message: string) => void>;

export function createLog(threshold: Level = 'info'): Log {
  const emit = (level: Level) => (fields: Record<string, unknown>, message: string) => {
    if (LEVELS[level] < LEVELS[threshold]) return;
    const record = { level: LEVELS[level], time: Date.now(), name: 'agent-runner', ...fields, msg: message };
    process.stderr.write(`${JSON.stringify(record, serializeError)}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that discards everything, for tests. */
export const silentLog = (): Log => ({ debug() {}, info() {}, warn() {}, error() {} });

/** Errors as pino writes them, wherever they are in the fields (JSON.stringify would make them `{}`). */
function serializeError(_key: string, value: unknown): unknown {
  return value instanceof Error ? { type: value.name, message: value.message, stack: value.stack } : value;
}

/** The message of anything thrown, for logs and error fields. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
