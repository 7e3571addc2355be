// Builds (once per engine and tag) a ~2 MB busybox image for container tests, from the host's static busybox.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TEST_IMAGE_TAG = 'warren-test-busybox:1';

/** Where Debian's busybox-static puts its binary (the dynamic `busybox` package uses the same path: checked below). */
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

const building = new Map<string, Promise<string>>();

/**
 * Returns the tag of the test image, importing it first if the engine lacks it. Needs a static busybox on the
 * host (Debian/Ubuntu: apt-get install busybox-static). The image has /bin/busybox with one symlink per applet,
 * a 1777 /tmp, /etc/passwd with `agent` as uid 1000, and /bin/sh as its command.
 */
export function ensureTestImage(options: { engine?: 'docker' | 'podman' } = {}): Promise<string> {
  const engine = options.engine ?? 'docker';
  let promise = building.get(engine);
  if (!promise) {
    promise = buildTestImage(engine);
    building.set(engine, promise);
    promise.catch(() => building.delete(engine));
  }
  return promise;
}

async function buildTestImage(engine: string): Promise<string> {
  const existing = await run(engine, ['image', 'inspect', '--format', '{{.Id}}', TEST_IMAGE_TAG]);
  if (existing.code === 0) return TEST_IMAGE_TAG;

  const busybox = BUSYBOX_CANDIDATES.find((candidate) => fs.existsSync(candidate));
  if (!busybox || !isStaticElf(busybox)) {
    throw new Error('container tests need a static busybox on the host: apt-get install -y busybox-static');
  }
  const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-test-rootfs-'));
  try {
    for (const dir of ['bin', 'etc', 'tmp', 'home/agent', 'proc', 'sys', 'dev', 'workspace']) {
      fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
    }
    fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
    fs.copyFileSync(busybox, path.join(rootfs, 'bin/busybox'));
    fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
    const applets = await run(busybox, ['--list']);
    if (applets.code !== 0) throw new Error(`${busybox} --list failed: ${applets.stderr}`);
    for (const applet of applets.stdout.split('\n')) {
      if (!/^[a-z0-9_.[-]+$/.test(applet) || applet === 'busybox') continue;
      fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
    }
    fs.writeFileSync(
      path.join(rootfs, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n',
    );
    fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nagent:x:1000:\n');

    const tar = spawn('tar', ['--owner=0', '--group=0', '--numeric-owner', '-C', rootfs, '-c', '.'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const imported = run(engine, ['import', '--change', 'CMD ["/bin/sh"]', '-', TEST_IMAGE_TAG], tar.stdout);
    const [tarCode, result] = await Promise.all([
      new Promise<number | null>((resolve) => tar.on('close', resolve)),
      imported,
    ]);
    if (tarCode !== 0 || result.code !== 0) {
      throw new Error(`importing ${TEST_IMAGE_TAG} into ${engine} failed: ${result.stderr.trim()}`);
    }
    return TEST_IMAGE_TAG;
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
}

/** An ELF file without a PT_INTERP program header needs no dynamic loader, so it runs in an empty image. */
function isStaticElf(file: string): boolean {
  const data = fs.readFileSync(file);
  if (data.readUInt32BE(0) !== 0x7f454c46 || data[4] !== 2) return false; // ELF, 64-bit
  const headerOffset = Number(data.readBigUInt64LE(0x20));
  const headerSize = data.readUInt16LE(0x36);
  const headerCount = data.readUInt16LE(0x38);
  for (let index = 0; index < headerCount; index++) {
    if (data.readUInt32LE(headerOffset + index * headerSize) === 3) return false; // PT_INTERP
  }
  return true;
}

function run(
  binary: string,
  args: string[],
  stdin?: NodeJS.ReadableStream,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(binary, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    if (stdin && child.stdin) stdin.pipe(child.stdin);
    child.on('error', (error) => resolve({ code: null, stdout, stderr: error.message }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
