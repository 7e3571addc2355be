// A loopback TCP → unix socket relay: the SDK speaks HTTP to 127.0.0.1, the bytes go to the host (its credential
// proxy; a second relay, its egress gateway).
// Why: the container has no network, and pointing ANTHROPIC_BASE_URL at a local port is the documented way to
// redirect the SDK; its unix-socket setting is undocumented.
import { once } from 'node:events';
import net from 'node:net';
import type { Log } from './log.js';

export async function startRelay({ socketPath, log }: { socketPath: string; log: Log }) {
  const open = new Set<() => void>();
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    const cleanUp = () => {
      client.destroy();
      upstream.destroy();
      open.delete(cleanUp);
    };
    open.add(cleanUp);
    client.on('error', cleanUp).on('close', cleanUp);
    upstream.on('close', cleanUp).on('error', (error) => {
      log.warn({ err: error, socketPath }, 'host socket connection failed');
      cleanUp();
    });
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    /** The base URL to give the SDK, e.g. http://127.0.0.1:41234. */
    url: `http://127.0.0.1:${port}`,
    /** Stops listening and cuts open connections. */
    close(): Promise<void> {
      for (const cleanUp of open) cleanUp();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
