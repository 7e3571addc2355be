// The owner's secrets for the egress gateway: values in <dataDir>/secrets.json, mode 0600, in the data directory's
// root, which no container mounts. The host alone reads them: the gateway, to add a header to a bound host's
// requests and to recognise a value leaving for anywhere else. The CLI writes them; no chat ever carries one.
import {
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const FILE = 'secrets.json';
export const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const MAX_SECRET_BYTES = 8 * 1024;
const fileSchema = z.record(z.string().regex(SECRET_NAME), z.string());

/** Every secret by name; none when there is no file. A file that does not parse throws: nothing is guessed. */
export function readSecrets(dataDir: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path.join(dataDir, FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  // JSON.parse's own message quotes the text near a mistake, which may be a secret: it is never passed on.
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${path.join(dataDir, FILE)} is not a map of secret names to values`);
  return new Map(Object.entries(parsed.data));
}

/**
 * readSecrets for the gateway, which looks at every connection: read again only when the file changed (its size,
 * modification time or inode), so a change applies at once and an unchanged file costs one stat.
 */
export function secretsReader(dataDir: string): () => Map<string, string> {
  let last: { key: string; secrets: Map<string, string> } | null = null;
  return () => {
    const stat = statSync(path.join(dataDir, FILE), { throwIfNoEntry: false });
    const key = stat ? `${stat.ino}:${stat.size}:${stat.mtimeMs}` : 'none';
    if (last?.key !== key) last = { key, secrets: readSecrets(dataDir) };
    return last.secrets;
  };
}

/** Why a value cannot be a secret, or null: printable ASCII only (tokens and keys are). */
export function badSecretValue(value: string): string | null {
  if (value.length === 0) return 'the secret is empty';
  if (Buffer.byteLength(value) > MAX_SECRET_BYTES) return `the secret is over ${MAX_SECRET_BYTES} bytes`;
  // A line break would let it add headers of its own; HTTP header values take nothing past Latin-1 either.
  if (!/^[\x20-\x7e]+$/.test(value))
    return 'the secret holds a line break, a control character or non-ASCII text';
  return null;
}

/** Replaces the file whole: written to a new 0600 file (never one that exists), synced, renamed over the old. */
function writeSecrets(dataDir: string, secrets: Map<string, string>): void {
  const target = path.join(dataDir, FILE);
  const temporary = `${target}.${process.pid}.tmp`;
  rmSync(temporary, { force: true });
  const fd = openSync(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, `${JSON.stringify(Object.fromEntries(secrets), null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, target);
}

/** Stores (or replaces) a secret; throws with the reason when the name or the value cannot be one. */
export function setSecret(dataDir: string, name: string, value: string): void {
  if (!SECRET_NAME.test(name))
    throw new Error(`'${name}' is not a secret name: a letter, then letters, digits or _`);
  const bad = badSecretValue(value);
  if (bad) throw new Error(bad);
  const secrets = readSecrets(dataDir);
  secrets.set(name, value);
  writeSecrets(dataDir, secrets);
}

/** Forgets a secret; false when there was none by that name. */
export function removeSecret(dataDir: string, name: string): boolean {
  const secrets = readSecrets(dataDir);
  if (!secrets.delete(name)) return false;
  writeSecrets(dataDir, secrets);
  return true;
}
