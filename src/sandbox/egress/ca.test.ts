import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateCa } from './ca.js';

describe('egress CA', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('makes a CA once (its key 0600), keeps it across loads, and signs host certificates a client trusts', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-ca-'));
    dirs.push(root);
    const dir = path.join(root, 'egress-ca');
    const ca = await loadOrCreateCa(dir, 'test');
    expect(fs.statSync(path.join(dir, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    const again = await loadOrCreateCa(dir, 'test');
    expect(again.certPem).toBe(ca.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(caCert.ca).toBe(true);

    // A real TLS handshake: the client trusts only the CA and checks the name.
    const server = https.createServer(
      { SNICallback: (name, done) => void again.contextFor(name).then((c) => done(null, c), done) },
      (_req, res) => res.end('hi'),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const ask = (servername: string) =>
      new Promise<string>((resolve, reject) => {
        https
          .get(
            { host: '127.0.0.1', port, servername, ca: ca.certPem, headers: { host: servername } },
            async (res) => {
              let body = '';
              for await (const chunk of res) body += chunk;
              resolve(body);
            },
          )
          .on('error', reject);
      });
    try {
      expect(await ask('api.example.com')).toBe('hi');
      const leaf = await new Promise<X509Certificate>((resolve, reject) => {
        const request = https.get(
          { host: '127.0.0.1', port, servername: 'crm.test', ca: ca.certPem },
          (res) => {
            resolve(
              new X509Certificate(
                (
                  res.socket as unknown as { getPeerX509Certificate(): X509Certificate }
                ).getPeerX509Certificate().raw,
              ),
            );
            res.resume();
          },
        );
        request.on('error', reject);
      });
      expect(leaf.subjectAltName).toBe('DNS:crm.test');
      expect(leaf.ca).toBe(false);
      expect(leaf.checkIssued(caCert)).toBe(true);
    } finally {
      server.close();
    }
  });
});
