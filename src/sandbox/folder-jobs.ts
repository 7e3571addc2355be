// Jobs on folders an agent can write that the host will not do itself (walking a tree): each runs in a throwaway
// container of the agent image that sees only those folders, as the agent's user, with no network, so it cannot
// reach further than the agent could, whatever links or races the agent prepared.
import { rmdirSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { ContainerUser } from './group-folder.js';
import {
  type ContainerMount,
  type ContainerRuntime,
  containerName,
  type RunningContainer,
} from './runtimes/index.js';

export type FolderUse = { ok: true; bytes: number; entries: number } | { ok: false; error: string };

export const JOB_NAME_SUFFIX = '-job';
const CLEAR_TIMEOUT_MS = 10 * 60_000;
const MEASURE_TIMEOUT_MS = 2 * 60_000;
/** chmod first: the agent may have left folders it made unreadable; both run as that same user, on its own files. */
const CLEAR_SCRIPT = 'chmod -R u+rwX /clean 2>/dev/null; find /clean -mindepth 1 -delete';
/** du counts allocated blocks (a sparse file counts what it really uses) and never follows links. */
const MEASURE_SCRIPT = 'du -s -B1 -c /measure/* | tail -n 1 && du -s --inodes -c /measure/* | tail -n 1';

type JobResult = Promise<{ ok: true; lines: string[] } | { ok: false; error: string }>;

export function createFolderJobs(deps: {
  runtime: ContainerRuntime;
  installId: string;
  image: string;
  user: ContainerUser;
  log: Logger;
}) {
  const log = deps.log.child({ module: 'folder-jobs' });
  const clearing = new Map<string, Promise<void>>();
  /** Every job's container from the moment its start is asked for, until it has ended. */
  const jobs = new Set<Promise<RunningContainer>>();
  let isClosed = false;

  async function run(
    groupFolder: string,
    mounts: ContainerMount[],
    script: string,
    timeoutMs: number,
  ): JobResult {
    const lines: string[] = [];
    if (isClosed) return { ok: false, error: 'Warren is shutting down' };
    let starting: Promise<RunningContainer> | undefined;
    try {
      starting = deps.runtime.start({
        // Told apart from the group's agent by name; the labels still make it this install's, for orphan clean-up.
        name: `${containerName(deps.installId, groupFolder)}${JOB_NAME_SUFFIX}`,
        image: deps.image,
        installId: deps.installId,
        groupFolder,
        mounts,
        env: {},
        limits: { memoryMb: 128, cpus: 1, pids: 64 },
        user: deps.user,
        entrypoint: '/bin/sh',
        command: ['-c', script],
        hardRunTimeoutMs: timeoutMs,
        onOutput: ({ stream, line }) => {
          if (stream === 'stdout' && lines.length < 10) lines.push(line);
        },
      });
      jobs.add(starting);
      const container = await starting;
      const exit = await container.exited;
      if (exit.reason === 'exited' && exit.exitCode === 0) return { ok: true, lines };
      const why = `${exit.reason} (exit ${exit.exitCode ?? 'none'})`;
      const tail = container.stderrTail().trim().split('\n').slice(-2).join(' | ');
      return { ok: false, error: tail ? `${why}: ${tail}` : why };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    } finally {
      if (starting) jobs.delete(starting);
    }
  }

  async function clearOne(groupFolder: string, dir: string): Promise<void> {
    const mounts = [{ hostPath: dir, containerPath: '/clean', isReadOnly: false }];
    const result = await run(groupFolder, mounts, CLEAR_SCRIPT, CLEAR_TIMEOUT_MS);
    const context = { group: groupFolder, dir };
    if (!result.ok)
      return log.warn({ ...context, error: result.error }, 'clean-up container failed; tried again later');
    try {
      // Its parent is the host's alone: the emptied folder goes by its path.
      rmdirSync(dir);
      log.info(context, 'cleared a folder an agent left in its IPC output');
    } catch (error) {
      log.warn({ ...context, err: error }, 'cannot remove a cleared folder');
    }
  }

  return {
    /** Empties set-aside folders in the background, then removes them; one job per folder at a time. Never throws. */
    clear(groupFolder: string, dirs: string[]) {
      for (const dir of dirs) {
        if (clearing.has(dir)) continue;
        clearing.set(
          dir,
          clearOne(groupFolder, dir).finally(() => clearing.delete(dir)),
        );
      }
    },

    /** Disk blocks (bytes) and entries used by these folders, links not followed. Never rejects. */
    async measure(groupFolder: string, dirs: string[]): Promise<FolderUse> {
      const result = await run(
        groupFolder,
        dirs.map((dir, index) => ({ hostPath: dir, containerPath: `/measure/${index}`, isReadOnly: true })),
        MEASURE_SCRIPT,
        MEASURE_TIMEOUT_MS,
      );
      if (!result.ok) return { ok: false, error: `cannot measure the group's folders: ${result.error}` };
      const [bytes, entries] = result.lines.map((line) => Number(line.split(/\s+/)[0]));
      if (!Number.isSafeInteger(bytes) || !Number.isSafeInteger(entries)) {
        return { ok: false, error: `unexpected du output: ${result.lines.join(' | ').slice(0, 200)}` };
      }
      return { ok: true, bytes: bytes as number, entries: entries as number };
    },

    /** Stops every job under way (shutdown); a set-aside folder not yet cleared is cleared after the next run. */
    async close() {
      isClosed = true;
      // A start under way is waited for, then stopped: the engine takes a moment to create and start a container.
      await Promise.all([...jobs].map((job) => job.then((container) => container.stop(0)).catch(() => {})));
    },
  };
}
