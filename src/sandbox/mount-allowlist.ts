// Extra folders a group's container may see, decided by the owner's allowlist (read by src/mount-allowlist-file.ts)
// and the rules no allowlist lifts: blocked names (keys, credentials) as asked and as resolved, the data directory,
// the allowlist's own folder, protected paths.
import fs from 'node:fs';
import path from 'node:path';
import type { MountAllowlist } from '../mount-allowlist-file.js';
import type { ContainerMount } from './runtimes/runtime.js';

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
export const DEFAULT_BLOCKED_PATTERNS: readonly string[] = [
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
 * Decides extra mounts one at a time against the allowlist and the rules no allowlist lifts: a mount (read-only unless
 * its root allows read-write, and with nonAdminReadOnly the group is the admin group; a note says when read-write was
 * refused), or the reason it is refused. Each container name is given once.
 */
export function createExtraMountDecider(
  allowlist: MountAllowlist,
  /** dataDir resolved; protectedPaths as buildMounts takes them. */
  options: { isAdmin: boolean; dataDir: string; protectedPaths?: string[] },
): (request: ExtraMountRequest) => { reason: string } | { mount: ContainerMount; note?: string } {
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
      path: realpathOrResolved(protectedPath),
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
      const why = codeOf(error) === 'ENOENT' ? 'does not exist' : messageOf(error);
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
    if (refusal !== null) return { mount, note: `read-write denied (${refusal}); mounted read-only` };
    return { mount: { ...mount, isReadOnly: false } };
  };
}

interface CompiledPattern {
  source: string;
  segments: RegExp[];
}

/** Each segment a case-insensitive regular expression: every character literal but `*` (any run) and `?` (one). */
function compilePattern(pattern: string): CompiledPattern {
  const segments = pattern.split('/').map((segment) => {
    const body = segment.replace(/[.*+?^${}()|[\]\\]/g, (character) =>
      character === '*' ? '.*' : character === '?' ? '.' : `\\${character}`,
    );
    return new RegExp(`^${body}$`, 'i');
  });
  return { source: pattern, segments };
}

/** The first pattern that matches any run of consecutive components (a multi-segment pattern needs all of its). */
function findBlockedComponent(
  parts: string[],
  patterns: CompiledPattern[],
  mustEndAtLast = false,
): string | null {
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

/**
 * A blocked name directly inside the folder (mounting a home folder would expose its .ssh). Deeper levels are
 * not scanned: mount the narrowest folder that does the job.
 */
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

function components(absolutePath: string): string[] {
  return absolutePath.split(path.sep).filter((part) => part !== '');
}

export function isInsideOrEqual(child: string, parent: string): boolean {
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

function realpathOrResolved(target: string): string {
  return realpathOrNull(target) ?? path.resolve(target);
}

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException | null)?.code;
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
