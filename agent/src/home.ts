// Makes sure Claude Code gets a writable HOME whose .claude/projects is the group's session transcripts.
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Log } from './log.js';

export interface HomeOptions {
  /** The intended HOME: a tmpfs writable by the agent user (see docs/IPC.md). */
  home: string;
  /** The group's session transcripts, mounted at <home>/.claude/projects. */
  claudeState: string;
  /** A writable scratch folder (the /tmp tmpfs) for the fallback. */
  scratch: string;
  log: Log;
}

export interface PreparedHome {
  home: string;
  /** Problems the host should hear about (a misconfigured mount). */
  notices: string[];
}

/**
 * Returns the HOME to give Claude Code. When the intended one is not writable (a tmpfs mounted without
 * uid=1000 is root's), Claude Code cannot write ~/.claude.json and every start takes seconds longer; then a
 * HOME under scratch, whose .claude/projects links to the transcripts, is used instead. Never throws.
 */
export async function prepareHome(options: HomeOptions): Promise<PreparedHome> {
  const { home, claudeState } = options;
  const notices: string[] = [];
  if (!(await isWritable(claudeState))) {
    notices.push(`${claudeState} is not writable by the agent user: sessions will not persist`);
  }
  if (await isWritable(home)) return { home, notices };

  const fallback = path.join(options.scratch, 'warren-home');
  try {
    const claudeDirectory = path.join(fallback, '.claude');
    await fs.mkdir(claudeDirectory, { recursive: true, mode: 0o700 });
    await fs
      .symlink(claudeState, path.join(claudeDirectory, path.basename(claudeState)))
      .catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
    notices.push(`${home} is not writable: mount a tmpfs there owned by uid 1000; using ${fallback} instead`);
    return { home: fallback, notices };
  } catch (error) {
    options.log.warn({ err: error, home }, 'cannot make a fallback HOME');
    notices.push(`${home} is not writable: mount a tmpfs there owned by uid 1000`);
    return { home, notices };
  }
}

async function isWritable(directory: string): Promise<boolean> {
  try {
    await fs.access(directory, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
