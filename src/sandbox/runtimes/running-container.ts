// One running container as a child process: its output, its hard timeout, stop and kill, and how it ended.
import { spawn } from 'node:child_process';
import type { Logger } from '../../log.js';
import type { CliFlavor } from './cli-engine.js';
import { ENGINE_QUESTION_TIMEOUT_MS, engineEnv, LineSplitter, runCommand, TailBuffer } from './process.js';
import type { ContainerExit, ContainerSpec, RunningContainer } from './runtime.js';

const STDERR_TAIL_BYTES = 8 * 1024;
/** `docker run` exits 125 when the engine failed, 126/127 when the command could not be run. */
const START_FAILURE_CODES = new Set([125, 126, 127]);

/**
 * Runs the container attached (`run` without --detach) so its end is seen at once and its output streams
 * straight to us. No --rm: the container is inspected (OOM?) and then removed by us before exited resolves.
 */
export function startContainer(
  flavor: CliFlavor,
  spec: ContainerSpec,
  args: string[],
  log?: Logger,
): RunningContainer {
  const name = spec.name;
  const stderrTail = new TailBuffer(STDERR_TAIL_BYTES);
  let endRequest: 'killed' | 'timeout' | null = null;
  let spawnError: string | undefined;
  let hasClosed = false;
  let killLoop: Promise<void> | null = null;
  let resolveClosed!: (code: number | null) => void;
  const closed = new Promise<number | null>((resolve) => {
    resolveClosed = resolve;
  });

  const child = spawn(flavor.binary, args, {
    stdio: [spec.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: engineEnv(),
  });
  log?.debug({ container: name, group: spec.groupFolder }, 'container starting');

  const splitter = (stream: 'stdout' | 'stderr') => {
    const onOutput = spec.onOutput;
    if (!onOutput) return null;
    return new LineSplitter((line) => {
      try {
        onOutput({ stream, line });
      } catch (error) {
        log?.warn({ container: name, err: error }, 'container output handler threw');
      }
    });
  };
  const stdoutLines = splitter('stdout');
  const stderrLines = splitter('stderr');
  child.stdout?.on('data', (chunk: Buffer) => stdoutLines?.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail.push(chunk);
    stderrLines?.push(chunk);
  });
  if (child.stdin) {
    child.stdin.on('error', () => {});
    child.stdin.end(spec.stdin);
  }

  const markClosed = (code: number | null) => {
    if (hasClosed) return;
    hasClosed = true;
    resolveClosed(code);
  };
  child.on('error', (error) => {
    // Only a failure to spawn matters here; a later error (a failed kill) is followed by 'close' anyway.
    if (child.pid !== undefined) return;
    spawnError = error.message;
    markClosed(null);
  });
  child.on('close', (code) => markClosed(code));

  const timer = setTimeout(() => {
    endRequest ??= 'timeout';
    void forceKill();
  }, spec.hardRunTimeoutMs);

  /** Resolves when the CLI has ended or after ms, whichever is first (leaving no timer behind). */
  function closedWithin(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      void closed.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Kills until the CLI reports the end: a kill sent before the engine created the container fails, so retry. */
  function forceKill(): Promise<void> {
    killLoop ??= (async () => {
      for (let attempt = 0; attempt < 40 && !hasClosed; attempt++) {
        await runCommand(flavor.binary, ['kill', name], { timeoutMs: 10_000 });
        await closedWithin(attempt === 0 ? 200 : 500);
      }
      // The engine does not answer: stop waiting for it; removeOrphans finds the container later.
      if (!hasClosed) child.kill('SIGKILL');
    })();
    return killLoop;
  }

  const exited = closed.then(async (code): Promise<ContainerExit> => {
    clearTimeout(timer);
    stdoutLines?.flush();
    stderrLines?.flush();
    const exit = await classifyExit(code);
    // Removing ourselves (instead of --rm) leaves time to ask about OOM first; it also clears a 'created' leftover.
    await runCommand(flavor.binary, ['rm', '--force', name], { timeoutMs: ENGINE_QUESTION_TIMEOUT_MS });
    log?.debug({ container: name, group: spec.groupFolder, ...exit }, 'container ended');
    return exit;
  });

  async function classifyExit(code: number | null): Promise<ContainerExit> {
    if (spawnError !== undefined) {
      return {
        exitCode: null,
        reason: 'start-failed',
        detail: `${flavor.binary} could not be run: ${spawnError}`,
      };
    }
    if (code !== null && START_FAILURE_CODES.has(code) && endRequest === null) {
      return { exitCode: code, reason: 'start-failed', detail: lastLines(stderrTail.toString(), 5) };
    }
    if (endRequest === 'timeout') {
      return { exitCode: code, reason: 'timeout', detail: `hard run timeout of ${spec.hardRunTimeoutMs} ms` };
    }
    if (endRequest === 'killed') return { exitCode: code, reason: 'killed' };
    if (code === 137) {
      const state = await runCommand(flavor.binary, ['inspect', '--format', '{{.State.OOMKilled}}', name], {
        timeoutMs: ENGINE_QUESTION_TIMEOUT_MS,
      });
      if (state.stdout.trim() === 'true') {
        return { exitCode: code, reason: 'oom', detail: `memory limit ${spec.limits.memoryMb} MB` };
      }
    }
    return { exitCode: code, reason: 'exited' };
  }

  return {
    name,
    exited,
    stderrTail: () => stderrTail.toString(),
    async pause(isPaused) {
      if (hasClosed) return false;
      const result = await runCommand(flavor.binary, [isPaused ? 'pause' : 'unpause', name], {
        timeoutMs: ENGINE_QUESTION_TIMEOUT_MS,
      });
      return result.exitCode === 0;
    },
    async stop(graceMs = 10_000) {
      if (!hasClosed) {
        endRequest ??= 'killed';
        const seconds = Math.max(0, Math.ceil(graceMs / 1000));
        await runCommand(flavor.binary, ['stop', '--time', String(seconds), name], {
          timeoutMs: graceMs + 15_000,
        });
        await closedWithin(2_000);
        if (!hasClosed) await forceKill();
      }
      await exited;
    },
  };
}

function lastLines(text: string, count: number): string {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(-count)
    .join('\n');
}
