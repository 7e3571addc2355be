// The egress gateway's own certificate authority, one per install: its key (0600) and certificate in
// <dataDir>/egress-ca/, made on first start. Agent containers trust its certificate (a copy in their read-only
// socket folder); only the host holds the key. With it the gateway makes, on demand, a certificate for each host it
// adds a secret to, so it can read the agent's request and add the header (intercept.ts). Certificates are made with
// @peculiar/x509 over Node's WebCrypto: no certificate is assembled by hand.
// @peculiar/x509 resolves its parts through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const { subtle } = webcrypto;
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY_MS = 86_400_000;
/** A host certificate lives a week and is made again after a day, so a long-running host never serves an old one. */
const LEAF_DAYS = 7;
const LEAF_REUSE_MS = DAY_MS;

export interface EgressCa {
  /** The certificate containers trust, PEM. */
  certPem: string;
  /** A TLS context presenting a certificate for host (a name or an address), signed by this CA. */
  contextFor(host: string): Promise<tls.SecureContext>;
}

const pem = (label: string, der: ArrayBuffer) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trim()}\n-----END ${label}-----\n`;
const derOf = (text: string) => Buffer.from(text.replace(/-----[^-]+-----|\s/g, ''), 'base64');

async function exportKey(key: CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await subtle.exportKey('pkcs8', key));
}

/**
 * Makes a CA in a folder of its own (0700, the key 0600) and moves it into place whole: two starts at once (or a
 * crash half-way) never leave a key without its certificate. The loser of a race uses the winner's.
 */
async function createCa(dir: string, label: string): Promise<void> {
  const fresh = mkdtempSync(`${dir}.new-`);
  try {
    chmodSync(fresh, 0o700);
    const keys = (await subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      name: `CN=Warren egress gateway (${label})`,
      keys,
      notBefore: new Date(Date.now() - DAY_MS),
      notAfter: new Date(Date.now() + 10 * 365 * DAY_MS),
      signingAlgorithm: ALGORITHM,
      extensions: [
        // A CA that may sign host certificates only, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writeFileSync(path.join(fresh, 'ca.key'), await exportKey(keys.privateKey), { mode: 0o600, flag: 'wx' });
    writeFileSync(path.join(fresh, 'ca.pem'), caCert.toString('pem'), { mode: 0o644, flag: 'wx' });
    renameSync(fresh, dir);
  } catch (error) {
    if (!['EEXIST', 'ENOTEMPTY'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
}

/** Loads the install's CA, made on first use. */
export async function loadOrCreateCa(dir: string, label: string): Promise<EgressCa> {
  if (!existsSync(dir)) await createCa(dir, label);
  const caKey = await subtle.importKey(
    'pkcs8',
    derOf(readFileSync(path.join(dir, 'ca.key'), 'utf8')),
    ALGORITHM,
    false,
    ['sign'],
  );
  const caCert = new x509.X509Certificate(readFileSync(path.join(dir, 'ca.pem'), 'utf8'));
  // One key for every host certificate of this process: it never leaves the host's memory.
  const leafKeys = (await subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const leafKeyPem = await exportKey(leafKeys.privateKey);
  const made = new Map<string, { at: number; context: Promise<tls.SecureContext> }>();

  async function makeContext(host: string): Promise<tls.SecureContext> {
    const cert = await x509.X509CertificateGenerator.create({
      subject: `CN=${host}`,
      issuer: caCert.subject,
      publicKey: leafKeys.publicKey,
      signingKey: caKey,
      notBefore: new Date(Date.now() - DAY_MS),
      notAfter: new Date(Date.now() + LEAF_DAYS * DAY_MS),
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: net.isIP(host) ? 'ip' : 'dns', value: host }]),
      ],
    });
    return tls.createSecureContext({ key: leafKeyPem, cert: cert.toString('pem') });
  }

  return {
    certPem: caCert.toString('pem'),
    contextFor(host) {
      const cached = made.get(host);
      if (cached && Date.now() - cached.at < LEAF_REUSE_MS) return cached.context;
      const context = makeContext(host);
      made.set(host, { at: Date.now(), context });
      context.catch(() => made.delete(host));
      return context;
    },
  };
}
