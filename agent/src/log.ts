// The runner's logger: pino-compatible JSON lines on stderr, which the host captures with the container's output.

export type LogFields = Record<string, unknown>;

export interface Log {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export function createLog(
  options: { level?: keyof typeof LEVELS; write?: (line: string) => void } = {},
): Log {
  const threshold = LEVELS[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const emit = (level: keyof typeof LEVELS) => (fields: LogFields, message: string) => {
    if (LEVELS[level] < threshold) return;
    const record = {
      level: LEVELS[level],
      time: Date.now(),
      name: 'agent-runner',
      ...serializeErrors(fields),
      msg: message,
    };
    write(`${JSON.stringify(record)}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that discards everything, for tests. */
export function silentLog(): Log {
  const ignore = () => {};
  return { debug: ignore, info: ignore, warn: ignore, error: ignore };
}

function serializeErrors(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] =
      value instanceof Error ? { type: value.name, message: value.message, stack: value.stack } : value;
  }
  return out;
}

/** The message of anything thrown, for logs and error fields. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
