// Unmounts every file system a test or bench host left under its data directory: a group's own file system
// (src/sandbox/volumes.ts) stays mounted after a host stops, by design, so whoever made the data directory unmounts.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readMounts } from '../../src/sandbox/volumes.js';

const run = promisify(execFile);

/** Binds before the volumes they come from, deeper before shallower. Never rejects. */
export async function unmountUnder(dataDir: string): Promise<void> {
  const volumesDir = `${dataDir}/volumes/`;
  const isVolume = (mount: string) => mount.startsWith(volumesDir);
  const inside = [...readMounts().keys()].filter((mount) => mount.startsWith(`${dataDir}/`));
  inside.sort((a, b) => Number(isVolume(a)) - Number(isVolume(b)) || b.length - a.length);
  for (const mount of inside) await run('umount', [mount]).catch(() => {});
}
