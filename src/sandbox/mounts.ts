// What a group's container may see: the fixed layout under the data directory, and the extra folders the owner's
// allowlist (read by src/mount-allowlist-file.ts) allows, under the rules no allowlist lifts: blocked names (keys,
// credentials) as asked and as resolved, the data directory, the allowlist's own folder, protected paths.
import fs from 'node:fs';
import path from 'node:path';
import type { MountAllowlist } from '../mount-allowlist-file.js';
import { CONTAINER_PATHS } from '../protocol/ipc.js';
import { checkGroupFolder } from '../store/store.js';
import type { ContainerMount } from './runtimes/runtime.js';

export type Mount = ContainerMount;

export interface ExtraMountRequest {
  hostPath: string;
  /** The folder name under /workspace/extra/; default the host folder's own name. */
  containerName?: string;
  /** Default true. Read-write needs a root that allows it (and, with nonAdminReadOnly, the admin group). */
  isReadOnly?: boolean;
}

/**
 * Path components that are never mounted, whatever the allowlist says. Globs: `*` is any run of characters
 * within one component; a pattern with '/' matches consecutive components. Matched case-insensitively.
 */
const DEFAULT_BLOCKED_PATTERNS: readonly string[] = [
  '.ssh',
  '.gnupg',
  '.gpg',
  '.aws',
  '.azure',
  '.gcloud',
  '.config/gcloud',
  '.kube',
  '.docker',
  '.env',
  '.env.*',
  '.netrc',
  '.npmrc',
  '.pypirc',
  'credentials',
  'id_rsa',
  'id_dsa',
  'id_ecdsa',
  'id_ed25519',
  'private_key',
  '.secret',
  'secrets',
];

const EXTRA_CONTAINER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Characters that would break the engine's --mount syntax: never in a mount source, whatever the API could carry. */
const UNSAFE_PATH_CHARACTERS = /[,:"'\\\n\r\t\0]/;

/**
 * The mounts for one group's container (missing layout folders made; a bad folder or a layout path outside the data
 * directory throws: bugs). Each extra mount is mounted or comes back in denials, for the caller to audit.
 */
export function buildMounts(input: {
  dataDir: string;
  groupFolder: string;
  isAdmin: boolean;
  extraMounts: ExtraMountRequest[];
  /** null: no allowlist file, so no extra mount is allowed (fail closed). */
  allowlist: MountAllowlist | null;
  /** Host folders never mounted, nor any folder holding them (host code, config, credentials). */
  protectedPaths?: string[];
}): { mounts: Mount[]; denials: Array<{ path: string; reason: string }> } {
  const { groupFolder, allowlist } = input;
  if (checkGroupFolder(groupFolder) !== null) {
    throw new Error(`invalid group folder: ${JSON.stringify(groupFolder)}`);
  }
  const dataReal = fs.realpathSync(input.dataDir);
  const layout: Array<[string, string, boolean]> = [
    [path.join(dataReal, 'groups', groupFolder), CONTAINER_PATHS.group, false],
    // Shared memory: no group may write what every other group reads, the admin group included (a prompt-injected
    // admin agent would reach every group). Changes go through update_global_memory and the owner's approval.
    [path.join(dataReal, 'global'), CONTAINER_PATHS.global, true],
    // Only the SDK's transcripts persist (resume needs nothing else); HOME itself is a fresh tmpfs each run, so
    // settings, hooks or shell snapshots an injected agent writes there are gone by its next run.
    [path.join(dataReal, 'sessions', groupFolder), CONTAINER_PATHS.claudeState, false],
    // The credential proxy socket: connecting needs no write access to the folder, and read-only means the
    // agent cannot swap the socket for something of its own.
    [path.join(dataReal, 'sockets', groupFolder), '/run/warren', true],
  ];
  const mounts: Mount[] = layout.map(([hostPath, containerPath, isReadOnly]) => {
    fs.mkdirSync(hostPath, { recursive: true });
    const real = fs.realpathSync(hostPath);
    if (!isInsideOrEqual(real, dataReal) || real === dataReal) {
      throw new Error(`mount source ${hostPath} resolves to ${real}, outside the data directory ${dataReal}`);
    }
    return { hostPath: real, containerPath, isReadOnly };
  });

  const decide = allowlist
    ? createExtraMountDecider(allowlist, { ...input, dataDir: dataReal })
    : () => ({ mount: undefined, reason: 'no mount allowlist exists, so no extra mounts are allowed' });
  const denials: Array<{ path: string; reason: string }> = [];
  for (const request of input.extraMounts) {
    const { mount, reason } = decide(request);
    if (mount) mounts.push(mount);
    if (reason) denials.push({ path: request.hostPath, reason });
  }
  return { mounts, denials };
}

/**
 * Decides extra mounts one at a time: a mount (read-only unless its root allows read-write and, with
 * nonAdminReadOnly, the group is the admin group; else the reason says read-write was refused), or the reason it is
 * refused. Each container name is given once.
 */
function createExtraMountDecider(
  allowlist: MountAllowlist,
  /** dataDir resolved. */
  options: { isAdmin: boolean; dataDir: string; protectedPaths?: string[] },
): (request: ExtraMountRequest) => { mount?: ContainerMount; reason?: string } {
  const roots = allowlist.allowedRoots.flatMap((root) => {
    const real = realpathOrNull(root.path);
    return real === null ? [] : [{ ...root, real }];
  });
  const blocked = [...DEFAULT_BLOCKED_PATTERNS, ...(allowlist.blockedPatterns ?? [])].map(compilePattern);
  const protectedPaths = [
    { path: options.dataDir, what: 'the Warren data directory' },
    ...(allowlist.sourcePath
      ? [{ path: path.dirname(allowlist.sourcePath), what: 'the mount allowlist folder' }]
      : []),
    ...(options.protectedPaths ?? []).map((protectedPath) => ({
      path: realpathOrNull(protectedPath) ?? path.resolve(protectedPath),
      what: 'a protected host folder',
    })),
  ];
  const usedNames = new Set<string>();

  return (request) => {
    if (typeof request.hostPath !== 'string' || !path.isAbsolute(request.hostPath)) {
      return { reason: 'host path must be absolute' };
    }
    const requested = path.resolve(request.hostPath);
    let real: string;
    try {
      real = fs.realpathSync(requested);
    } catch (error) {
      const why =
        (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (error as Error).message;
      return { reason: `host path cannot be resolved (${why})` };
    }
    if (UNSAFE_PATH_CHARACTERS.test(real)) {
      return {
        reason: `host path ${real} contains a character the container engine cannot take (, : quotes, backslash, control)`,
      };
    }
    // Both the path as asked and as resolved: a symlink into .ssh is caught, and so is a link named .ssh.
    for (const candidate of new Set([requested, real])) {
      const hit = findBlockedComponent(components(candidate), blocked);
      if (hit) return { reason: `path matches blocked pattern '${hit}'` };
    }
    const inside = findBlockedInside(real, blocked);
    if (inside) return { reason: `folder directly contains ${inside}, which matches a blocked pattern` };
    for (const protectedPath of protectedPaths) {
      if (isInsideOrEqual(real, protectedPath.path))
        return { reason: `path is inside ${protectedPath.what}` };
      if (isInsideOrEqual(protectedPath.path, real)) return { reason: `path contains ${protectedPath.what}` };
    }
    // The most specific root decides (its allowReadWrite applies).
    const root = roots
      .filter((candidate) => isInsideOrEqual(real, candidate.real))
      .sort((a, b) => b.real.length - a.real.length)[0];
    if (!root) return { reason: `path ${real} is not under any allowed root` };

    const name = request.containerName ?? path.basename(real);
    if (!EXTRA_CONTAINER_NAME_PATTERN.test(name)) {
      return { reason: `container name ${JSON.stringify(name)} is not a safe single folder name` };
    }
    const mount = { hostPath: real, containerPath: `/workspace/extra/${name}`, isReadOnly: true };
    if (usedNames.has(mount.containerPath)) {
      return { reason: `container name ${JSON.stringify(name)} is already used` };
    }
    usedNames.add(mount.containerPath);
    if (request.isReadOnly !== false) return { mount };
    const refusal =
      root.allowReadWrite !== true
        ? `root ${root.path} does not allow read-write`
        : allowlist.nonAdminReadOnly === true && !options.isAdmin
          ? 'read-write extra mounts are for the admin group only'
          : null;
    if (refusal !== null) return { mount, reason: `read-write denied (${refusal}); mounted read-only` };
    return { mount: { ...mount, isReadOnly: false } };
  };
}

type CompiledPattern = ReturnType<typeof compilePattern>;

/** Each segment a case-insensitive regular expression: every character literal but `*` (any run) and `?` (one). */
function compilePattern(pattern: string) {
  const segments = pattern.split('/').map((segment) => {
    const body = segment.replace(/[.*+?^${}()|[\]\\]/g, (character) =>
      character === '*' ? '.*' : character === '?' ? '.' : `\\${character}`,
    );
    return new RegExp(`^${body}$`, 'i');
  });
  return { source: pattern, segments };
}

/** The first pattern that matches any run of consecutive components (a multi-segment pattern needs all of its). */
function findBlockedComponent(parts: string[], patterns: CompiledPattern[], mustEndAtLast = false) {
  for (const pattern of patterns) {
    const width = pattern.segments.length;
    const firstStart = mustEndAtLast ? parts.length - width : 0;
    for (let start = Math.max(0, firstStart); start + width <= parts.length; start++) {
      if (pattern.segments.every((segment, index) => segment.test(parts[start + index] ?? ''))) {
        return pattern.source;
      }
    }
  }
  return null;
}

/** A blocked name directly inside the folder (a home folder's .ssh). Deeper levels are not scanned. */
function findBlockedInside(real: string, patterns: CompiledPattern[]): string | null {
  let entries: string[];
  try {
    entries = fs.readdirSync(real);
  } catch {
    return null; // Not a folder, or not readable.
  }
  const base = components(real);
  const entry = entries.find((name) => findBlockedComponent([...base, name], patterns, true));
  if (entry !== undefined) return entry;
  const nested = patterns.find(
    (pattern) =>
      pattern.segments.length > 1 &&
      !/[*?]/.test(pattern.source) &&
      fs.existsSync(path.join(real, pattern.source)),
  );
  return nested?.source ?? null;
}

const components = (absolutePath: string) => absolutePath.split(path.sep).filter((part) => part !== '');

function isInsideOrEqual(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return (
    relative === '' ||
    (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
  );
}

function realpathOrNull(target: string): string | null {
  try {
    return fs.realpathSync(target);
  } catch {
    return null;
  }
}
