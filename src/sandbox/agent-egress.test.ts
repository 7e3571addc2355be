import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { registerTestGroup, tempDir } from '../../test/harness.js';
import { silentLogger } from '../log.js';
import { openStore } from '../store/store.js';
import type { AgentEvent } from '../types.js';
import { createAgentEgress } from './agent-egress.js';

const connectStatus = (socketPath: string, authority: string) =>
  new Promise<number>((resolve, reject) => {
    const req = http.request({ socketPath, method: 'CONNECT', path: authority });
    req.on('connect', (res: http.IncomingMessage, socket: net.Socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });

describe('the egress gateway as runs use it', () => {
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it("reads the group's rules from the store, audits every connection, and tells the chat of a cap once", async () => {
    const dataDir = tempDir();
    const store = openStore(path.join(dataDir, 'warren.db'));
    closers.push(() => store.close());
    registerTestGroup(store, dataDir, 'sales', { now: Date.now() });
    const upstream = net.createServer((socket) => socket.end());
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    closers.push(() => upstream.close());
    const port = (upstream.address() as net.AddressInfo).port;
    store.egress.set('sales', { host: 'crm.lan', port, action: 'allow', isLan: true }, Date.now());
    const emitted: AgentEvent[] = [];
    const egress = createAgentEgress({
      store,
      audit: (entry) => store.audit.record(entry, Date.now()),
      now: Date.now,
      log: silentLogger(),
      config: { egressRequestsPerMinute: 1, egressMbPerDay: 0, egressCaFile: '', dataDir },
      installId: 'test',
      runs: new Map([['sales', { runId: 'r1', budgetRefused: false, emit: (event) => emitted.push(event) }]]),
      resolve: async () => ['127.0.0.1'],
    });
    const socketPath = path.join(dataDir, 'egress.sock');
    await egress.listen('sales', socketPath);
    closers.push(() => egress.close());

    expect(await connectStatus(socketPath, `crm.lan:${port}`)).toBe(200);
    expect(await connectStatus(socketPath, `crm.lan:${port}`)).toBe(429);
    expect(await connectStatus(socketPath, `crm.lan:${port}`)).toBe(429);
    expect(emitted).toEqual([
      expect.objectContaining({
        type: 'agent-notice',
        text: '⚠️ Network: more than 1 connections in a minute.',
      }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the allowed tunnel is audited when it closes
    const rows = store.audit.find({ groupFolder: 'sales', action: 'egress' }, 10);
    expect(rows.map((row) => [row.decision, row.count])).toEqual(
      expect.arrayContaining([
        ['allow', 1],
        ['deny', 2],
      ]),
    );
    expect(rows.find((row) => row.decision === 'allow')?.actor).toBe('agent:sales');
  });
});
