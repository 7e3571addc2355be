// The one way either side writes an IPC file (the host into input/, the runner into output/). Shared with the agent
// image like ipc.ts; imports only node built-ins.
import { randomUUID } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Writes the text under a dot-temp name in the directory (created, never an existing name opened), then renames it
 * into place: a reader sees the whole file or nothing. 0644: the other side's user must read it (the data directory,
 * 0700, keeps other host users out). Throws when that fails, the temp file removed.
 */
export function writeAtomic(directory: string, name: string, text: string): void {
  const temp = path.join(directory, `.tmp-${randomUUID()}`);
  try {
    writeFileSync(temp, text, { flag: 'wx', mode: 0o644 });
    renameSync(temp, path.join(directory, name));
  } catch (error) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // The write's own error is the one to report; a temp file left behind is only clutter.
    }
    throw error;
  }
}
