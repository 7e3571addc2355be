// Reading one IPC file the other side wrote: the host reads the agent's output/, the runner the host's input/.
// Shared with the agent image like ipc-protocol.ts; imports only node built-ins.
import { constants, promises as fs } from 'node:fs';

export type ReadResult = { ok: true; text: string } | { ok: false; error: string };

/**
 * Reads a file as UTF-8 text. Never throws. Refuses symlinks (O_NOFOLLOW), anything but a regular file (a fifo
 * is opened non-blocking, so it cannot stall the reader) and files over maxBytes, without reading more than
 * maxBytes + 1 whatever the file claims.
 */
export async function readIpcFileText(filePath: string, maxBytes: number): Promise<ReadResult> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, error: code === 'ELOOP' ? 'symlink refused' : `cannot open (${code ?? error})` };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { ok: false, error: 'not a regular file' };
    if (stat.size > maxBytes) return { ok: false, error: `file too large (${stat.size} bytes)` };
    // One byte more than stat said: a file that grows while it is read is refused, not cut.
    const buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > stat.size) return { ok: false, error: 'file changed while being read' };
    return { ok: true, text: buffer.subarray(0, length).toString('utf8') };
  } catch (error) {
    return { ok: false, error: `cannot read (${String(error)})` };
  } finally {
    await handle.close().catch(() => {});
  }
}
