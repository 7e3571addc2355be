// Global memory (`<dataDir>/global`) is the host's: read-only in every container, changed only by the owner's
// approval. Earlier versions gave the folder to the container's user (the admin agent could write it): ownership is
// taken back through descriptors, and a memory file that is not a plain file is replaced.
import { fchmodSync, writeFileSync } from 'node:fs';
import { chownDescriptor, closeQuietly, createFileIn, inFolder, openFileIn, unlinkIn } from './safe-fs.js';

export function prepareGlobalMemory(globalDir: string): void {
  const host = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  inFolder(globalDir, 0o755, (dirFd) => {
    chownDescriptor(dirFd, host);
    let fileFd: number | null = null;
    try {
      try {
        fileFd = openFileIn(dirFd, 'CLAUDE.md').fd;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') unlinkIn(dirFd, 'CLAUDE.md');
        fileFd = createFileIn(dirFd, 'CLAUDE.md', 0o644);
        writeFileSync(fileFd, GLOBAL_MEMORY_TEMPLATE);
      }
      chownDescriptor(fileFd, host);
      fchmodSync(fileFd, 0o644);
    } finally {
      closeQuietly(fileFd);
    }
  });
}

const GLOBAL_MEMORY_TEMPLATE =
  "# Shared memory\n\nEvery group can read this file. Changes the admin group proposes wait for the owner's approval.\n";
