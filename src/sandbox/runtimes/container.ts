// One container's life through the engine's API: create, attach, start, pause, stop or time out, tell how it ended.
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { Logger } from '../../log.js';
import type { ContainerExit, ContainerSpec, RunningContainer } from './runtime.js';

/** How long a quick engine request (create, start, inspect, kill, remove, list) may take before we stop waiting. */
export const ENGINE_TIMEOUT_MS = 30_000;
const MAX_LINE_BYTES = 64 * 1024;

/** Creates, attaches to (before start: no output missed), starts. No AutoRemove: it is inspected (OOM?), then removed. */
export async function startContainer(
  docker: Docker,
  spec: ContainerSpec,
  options: Docker.ContainerCreateOptions,
  log?: Logger,
): Promise<RunningContainer> {
  const container = docker.getContainer(spec.name);
  const sink = (stream: 'stdout' | 'stderr', tailBytes = 0) =>
    new LineSink((line) => {
      try {
        spec.onOutput?.({ stream, line });
      } catch (error) {
        log?.warn({ container: spec.name, err: error }, 'container output handler threw');
      }
    }, tailBytes);
  const stdout = sink('stdout');
  const stderr = sink('stderr', 8 * 1024);
  const remove = () => within(ENGINE_TIMEOUT_MS, container.remove({ force: true })).catch(() => {});
  let drained: Promise<unknown> = Promise.resolve();
  log?.debug({ container: spec.name, group: spec.groupFolder }, 'container starting');
  const starting = (async () => {
    await docker.createContainer(options);
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    // The engine ends the attach stream once the container has ended and all its output is sent.
    drained = finished(stream).catch(() => {});
    docker.modem.demuxStream(stream, stdout, stderr);
    await container.start();
  })();
  const startError = await within(ENGINE_TIMEOUT_MS, starting).then(() => null, engineMessage);
  // A start we gave up on may still complete and run without the hard timeout: remove it once the engine is done.
  if (startError !== null) void starting.then(remove, remove);

  let endRequest: 'killed' | 'timeout' | null = null;
  let hasEnded = false;
  let isFrozen = false;
  let lostEngine: string | null = null;
  const waiting = new AbortController();
  const ended: Promise<number | null> =
    startError !== null
      ? Promise.resolve(null)
      : container.wait({ condition: 'not-running', abortSignal: waiting.signal }).then(
          (result: { StatusCode: number }) => result.StatusCode,
          (error: unknown) => {
            lostEngine = engineMessage(error);
            return null;
          },
        );
  const endsWithin = (ms: number) => Promise.race([ended.then(() => true), sleep(ms, false, { ref: false })]);
  async function kill(): Promise<void> {
    await within(ENGINE_TIMEOUT_MS, container.kill()).catch(() => {});
    // An engine that does not answer: stop waiting for it; removeOrphans finds the container later.
    if (!(await endsWithin(ENGINE_TIMEOUT_MS))) waiting.abort();
  }
  const timer = setTimeout(() => {
    endRequest ??= 'timeout';
    void kill();
  }, spec.hardRunTimeoutMs);

  async function describe(exitCode: number | null): Promise<ContainerExit> {
    if (startError !== null) return { exitCode: null, reason: 'start-failed', detail: startError };
    if (endRequest === 'timeout')
      return { exitCode, reason: 'timeout', detail: `hard run timeout of ${spec.hardRunTimeoutMs} ms` };
    if (endRequest === 'killed') return { exitCode, reason: 'killed' };
    // 137 is any SIGKILL: only the engine knows whether the kernel's OOM killer sent it.
    const info =
      exitCode === 137 ? await within(ENGINE_TIMEOUT_MS, container.inspect()).catch(() => null) : null;
    if (info?.State.OOMKilled)
      return { exitCode, reason: 'oom', detail: `memory limit ${spec.limits.memoryMb} MB` };
    const detail = lostEngine === null ? {} : { detail: `lost track: ${lostEngine}` };
    return { exitCode, reason: 'exited', ...detail };
  }

  const exited = ended.then(async (exitCode) => {
    hasEnded = true;
    clearTimeout(timer);
    await within(2_000, drained).catch(() => {});
    stdout.flush();
    stderr.flush();
    const exit = await describe(exitCode);
    await remove();
    log?.debug({ container: spec.name, group: spec.groupFolder, ...exit }, 'container ended');
    return exit;
  });

  return {
    name: spec.name,
    exited,
    stderrTail: () => stderr.tail(),
    async pause(isPaused) {
      if (hasEnded) return false;
      return within(ENGINE_TIMEOUT_MS, isPaused ? container.pause() : container.unpause()).then(
        () => {
          isFrozen = isPaused;
          return true;
        },
        () => false,
      );
    },
    async stop(graceMs = 10_000) {
      if (!hasEnded) {
        endRequest ??= 'killed';
        // Not every engine can signal a frozen container (gVisor refuses for a paused sandbox, and the stop hangs until
        // it gives up, the agent thawed and writing meanwhile): thawed first, then killed at once when there is no grace.
        if (isFrozen) {
          isFrozen = false;
          await within(ENGINE_TIMEOUT_MS, container.unpause()).catch(() => {});
        }
        if (graceMs === 0) {
          await kill();
        } else {
          // The engine sends SIGTERM, then SIGKILL once the grace is over; it answers when the container has stopped.
          const stopping = container.stop({ t: Math.ceil(graceMs / 1000) });
          await within(graceMs + ENGINE_TIMEOUT_MS, stopping).catch(() => {});
          if (!(await endsWithin(2_000))) await kill();
        }
      }
      await exited;
    },
  };
}

/** Settles as promise does, or rejects after ms (the request itself is left to the engine). */
export function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  const late = sleep(ms, undefined, { ref: false }).then(() => {
    throw new Error(`the container engine did not answer within ${ms / 1000} s`);
  });
  return Promise.race([promise, late]);
}

/** The engine's own words for a failed request (its JSON message), else the error's. */
export function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  if (typeof json?.message === 'string') return json.message;
  return error instanceof Error ? error.message : String(error);
}

/** Cuts a byte stream into lines (a line over 64 KiB is cut there, so memory stays bounded); keeps a tail. */
export class LineSink extends Writable {
  private pending = Buffer.alloc(0);
  private last = Buffer.alloc(0);

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly tailBytes = 0,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    if (this.tailBytes > 0) this.last = Buffer.concat([this.last, chunk]).subarray(-this.tailBytes);
    let data = Buffer.concat([this.pending, chunk]);
    // A longer line goes in 64 KiB pieces: at most 64 KiB waits for the rest of its line.
    for (let end = data.indexOf(0x0a); end !== -1 || data.length > MAX_LINE_BYTES; end = data.indexOf(0x0a)) {
      const cut = end === -1 ? MAX_LINE_BYTES : Math.min(end, MAX_LINE_BYTES);
      this.line(data.subarray(0, cut));
      data = data.subarray(cut === end ? cut + 1 : cut);
    }
    this.pending = Buffer.from(data);
    done();
  }

  override _final(done: () => void): void {
    this.flush();
    done();
  }

  flush(): void {
    if (this.pending.length > 0) this.line(this.pending);
    this.pending = Buffer.alloc(0);
  }

  tail(): string {
    return this.last.toString('utf8');
  }

  private line(bytes: Buffer): void {
    const text = bytes.toString('utf8');
    this.onLine(text.endsWith('\r') ? text.slice(0, -1) : text);
  }
}
