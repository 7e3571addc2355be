// Serving an HTTP server on a unix socket a container connects to (the credential proxy's, the egress gateway's).
import { once } from 'node:events';
import { chmod, lstat, rm } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';

/** Listens on socketPath: a leftover socket is replaced; anything else there is refused, never deleted. */
export async function serveOnSocket(server: http.Server, socketPath: string): Promise<void> {
  const resolved = path.resolve(socketPath);
  const stale = await lstat(resolved).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  // A file or a symlink there is not ours to delete.
  if (stale && !stale.isSocket()) throw new Error(`refusing to replace ${resolved}: it is not a socket`);
  if (stale) await rm(resolved);
  await once(server.listen(resolved), 'listening');
  // 0666 so the container's uid can connect. Safe because the socket sits in a directory the host controls, mounted
  // into this group's container only; the socket carries no secret itself.
  await chmod(resolved, 0o666);
}
