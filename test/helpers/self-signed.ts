// A self-signed certificate for one name or more, made by openssl (no certificate is made by hand here), for loopback HTTPS
// fakes: the egress tests and the bench.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function selfSignedCertificate(name: string, ...more: string[]): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warren-cert-'));
  try {
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    execFileSync(
      'openssl',
      [
        ...[
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
        ],
        ...[
          '-subj',
          `/CN=${name}`,
          '-addext',
          `subjectAltName=${[name, ...more].map((n) => `DNS:${n}`).join(',')}`,
        ],
        ...['-keyout', key, '-out', cert],
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
