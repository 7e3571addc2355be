// Running an engine CLI as a child process: argument arrays only, bounded time, bounded output, a scrubbed env.
import { spawn } from 'node:child_process';

export interface CommandOptions {
  /** The CLI is killed (SIGKILL) past this; the result then has isTimedOut true. */
  timeoutMs: number;
  /** Written to the CLI's stdin, which is then closed. Without it, stdin is /dev/null. */
  stdin?: string;
  /** Each of stdout and stderr keeps at most this many bytes; the rest is dropped (isTruncated). */
  maxOutputBytes?: number;
  /** Receives each output line as it arrives (both streams). Must not throw. */
  onLine?(line: string): void;
}

export interface CommandResult {
  /** null when the CLI was killed by a signal or could not be spawned. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  isTimedOut: boolean;
  isTruncated: boolean;
  /** Set when the CLI could not be run at all (e.g. ENOENT: not installed). */
  spawnError?: string;
}

const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
/** How long the quick engine questions (inspect, kill, rm, ps) may take before we stop waiting. */
export const ENGINE_QUESTION_TIMEOUT_MS = 30_000;

/**
 * The environment an engine CLI gets: only what it needs to find its engine. The host's own environment may
 * hold secrets (model API keys, channel tokens) that no child process should inherit.
 */
export function engineEnv(source: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (ENGINE_ENV_KEYS.has(key) || key.startsWith('DOCKER_') || key.startsWith('CONTAINERS_'))
      env[key] = value;
  }
  return env;
}

const ENGINE_ENV_KEYS = new Set([
  'PATH',
  'HOME',
  'USER',
  'LANG',
  'LC_ALL',
  'TMPDIR',
  'XDG_RUNTIME_DIR',
  'XDG_CONFIG_HOME',
  'XDG_DATA_HOME',
  'CONTAINER_HOST',
  'CONTAINER_CONNECTION',
  'REGISTRY_AUTH_FILE',
]);

/** Runs a CLI to completion. Never throws and never rejects: failures are in the result. */
export function runCommand(binary: string, args: string[], options: CommandOptions): Promise<CommandResult> {
  const maxBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  return new Promise((resolve) => {
    const stdout = new CappedBuffer(maxBytes);
    const stderr = new CappedBuffer(maxBytes);
    let isTimedOut = false;
    let spawnError: string | undefined;
    let isSettled = false;

    const child = spawn(binary, args, {
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: engineEnv(),
    });
    const timer = setTimeout(() => {
      isTimedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);

    // One splitter per stream, so partial lines of stdout and stderr never mix.
    const stdoutLines = options.onLine ? new LineSplitter(options.onLine) : null;
    const stderrLines = options.onLine ? new LineSplitter(options.onLine) : null;
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      stdoutLines?.push(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      stderrLines?.push(chunk);
    });
    if (child.stdin) {
      // The CLI may exit before reading everything (EPIPE): that is reported by its exit code, not here.
      child.stdin.on('error', () => {});
      child.stdin.end(options.stdin);
    }

    const settle = (exitCode: number | null): void => {
      if (isSettled) return;
      isSettled = true;
      clearTimeout(timer);
      stdoutLines?.flush();
      stderrLines?.flush();
      resolve({
        exitCode,
        stdout: stdout.toString(),
        stderr: stderr.toString(),
        isTimedOut,
        isTruncated: stdout.isTruncated || stderr.isTruncated,
        ...(spawnError === undefined ? {} : { spawnError }),
      });
    };
    child.on('error', (error) => {
      // A spawn failure may not be followed by 'close'; a later error (a failed kill) is, and changes nothing.
      if (child.pid !== undefined) return;
      spawnError = error.message;
      settle(null);
    });
    child.on('close', (code) => settle(code));
  });
}

/** Keeps the first maxBytes bytes of a stream. */
export class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  isTruncated = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    const room = this.maxBytes - this.size;
    if (room <= 0) {
      if (chunk.length > 0) this.isTruncated = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.isTruncated = true;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  toString(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** Keeps the last maxBytes bytes of a stream (for "what did it say before it died"). */
export class TailBuffer {
  private buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    const joined = Buffer.concat([this.buffer, chunk]);
    this.buffer = joined.length > this.maxBytes ? joined.subarray(joined.length - this.maxBytes) : joined;
  }

  toString(): string {
    return this.buffer.toString('utf8');
  }
}

const MAX_LINE_BYTES = 64 * 1024;

/** Splits a byte stream into lines; a line longer than 64 KiB is cut there (so memory stays bounded). */
export class LineSplitter {
  private pending = Buffer.alloc(0);

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const newline = data.indexOf(0x0a);
      if (newline === -1) break;
      this.emit(data.subarray(0, newline));
      data = data.subarray(newline + 1);
    }
    while (data.length > MAX_LINE_BYTES) {
      this.emit(data.subarray(0, MAX_LINE_BYTES));
      data = data.subarray(MAX_LINE_BYTES);
    }
    this.pending = Buffer.from(data);
  }

  flush(): void {
    if (this.pending.length > 0) this.emit(this.pending);
    this.pending = Buffer.alloc(0);
  }

  private emit(line: Buffer): void {
    const text = line.toString('utf8');
    this.onLine(text.endsWith('\r') ? text.slice(0, -1) : text);
  }
}
