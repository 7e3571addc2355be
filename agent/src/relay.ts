// A loopback TCP → unix socket relay: the SDK speaks HTTP to 127.0.0.1, the bytes go to the host's credential proxy.
// Why: the container has no network, and pointing ANTHROPIC_BASE_URL at a local port is the documented way to
// redirect the SDK; its unix-socket setting is undocumented.
import net from 'node:net';
import type { Log } from './log.js';

export interface Relay {
  /** The base URL to give the SDK, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and cuts open connections. */
  close(): Promise<void>;
}

export interface RelayOptions {
  socketPath: string;
  log: Log;
  /** 0 (default) picks a free port. */
  port?: number;
}

export function startRelay(options: RelayOptions): Promise<Relay> {
  const { socketPath, log } = options;
  const open = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    open.add(client);
    open.add(upstream);
    const cleanUp = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', cleanUp);
    client.on('close', cleanUp);
    upstream.on('error', (error) => {
      log.warn({ err: error, socketPath }, 'model API socket connection failed');
      cleanUp();
    });
    upstream.on('close', cleanUp);
    client.pipe(upstream);
    upstream.pipe(client);
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('relay has no TCP address'));
        return;
      }
      const port = address.port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        close() {
          for (const socket of open) socket.destroy();
          open.clear();
          return new Promise<void>((done) => server.close(() => done()));
        },
      });
    });
  });
}
