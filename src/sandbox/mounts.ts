// What a group's container may see: the fixed layout under the data directory plus allowlisted extra folders.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
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

export interface AllowedRoot {
  path: string;
  allowReadWrite?: boolean;
  description?: string;
}

export interface MountAllowlist {
  allowedRoots: AllowedRoot[];
  /** Added to DEFAULT_BLOCKED_PATTERNS, which always apply. */
  blockedPatterns?: string[];
  /** Only the admin group may get read-write extra mounts. */
  nonAdminReadOnly?: boolean;
  /** The file it was read from: that file's folder is never mountable, so an agent cannot edit its own allowlist. */
  sourcePath?: string;
}

export type LoadAllowlistResult =
  | { ok: true; allowlist: MountAllowlist | null }
  | { ok: false; reason: string };

export interface MountDenial {
  path: string;
  reason: string;
}

export interface BuildMountsInput {
  dataDir: string;
  groupFolder: string;
  isAdmin: boolean;
  extraMounts: ExtraMountRequest[];
  /** null: no allowlist file, so no extra mount is allowed (fail closed). */
  allowlist: MountAllowlist | null;
  /** Host folders that must never be mounted, nor any folder holding them (host code, config, credentials). */
  protectedPaths?: string[];
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
/** Characters that would break the engine's --mount parsing. */
const UNSAFE_PATH_CHARACTERS = /[,:"'\\\n\r\t\0]/;

const allowlistSchema = z.strictObject({
  allowedRoots: z.array(
    z.strictObject({
      path: z.string().min(1),
      allowReadWrite: z.boolean().optional(),
      description: z.string().optional(),
    }),
  ),
  blockedPatterns: z.array(z.string().min(1)).optional(),
  nonAdminReadOnly: z.boolean().optional(),
});

/**
 * Reads the mount allowlist. A missing file is not an error: it means no extra mounts. Anything unreadable,
 * not JSON, or not in the expected shape (unknown keys included) is an error result, never a partial list.
 * Root paths must be absolute or start with `~/` (expanded with homeDir).
 */
export function loadMountAllowlist(
  filePath: string,
  options: { homeDir?: string } = {},
): LoadAllowlistResult {
  let text: string;
  try {
    text = fs.readFileSync(filePath, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return { ok: true, allowlist: null };
    return { ok: false, reason: `mount allowlist ${filePath} cannot be read: ${errorMessage(error)}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `mount allowlist ${filePath} is not valid JSON: ${errorMessage(error)}` };
  }
  const parsed = allowlistSchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      reason: `mount allowlist ${filePath} is malformed: ${z.prettifyError(parsed.error)}`,
    };
  }
  const homeDir = options.homeDir ?? os.homedir();
  const allowedRoots: AllowedRoot[] = [];
  for (const root of parsed.data.allowedRoots) {
    const expanded =
      root.path === '~'
        ? homeDir
        : root.path.startsWith('~/')
          ? path.join(homeDir, root.path.slice(2))
          : root.path;
    if (!path.isAbsolute(expanded)) {
      return {
        ok: false,
        reason: `mount allowlist ${filePath}: root ${JSON.stringify(root.path)} is not an absolute path`,
      };
    }
    allowedRoots.push({ ...root, path: path.resolve(expanded) });
  }
  for (const pattern of parsed.data.blockedPatterns ?? []) {
    if (pattern.split('/').some((segment) => segment === '')) {
      return {
        ok: false,
        reason: `mount allowlist ${filePath}: blocked pattern ${JSON.stringify(pattern)} has an empty segment`,
      };
    }
  }
  return { ok: true, allowlist: { ...parsed.data, allowedRoots, sourcePath: realpathOrResolved(filePath) } };
}

/**
 * The mounts for one group's container. Throws for a bad folder or a layout path that escapes the data
 * directory (bugs: folders are validated at registration). Extra mounts are never thrown for: each one is
 * either mounted or comes back in denials with its reason, for the caller to audit.
 * Creates missing layout folders; making them writable for the container's user is the caller's job.
 */
export function buildMounts(input: BuildMountsInput): { mounts: Mount[]; denials: MountDenial[] } {
  const { dataDir, groupFolder, isAdmin } = input;
  if (checkGroupFolder(groupFolder) !== null)
    throw new Error(`invalid group folder: ${JSON.stringify(groupFolder)}`);
  const dataReal = fs.realpathSync(dataDir);
  const layout: Array<{ hostPath: string; containerPath: string; isReadOnly: boolean }> = [
    {
      hostPath: path.join(dataReal, 'groups', groupFolder),
      containerPath: CONTAINER_PATHS.group,
      isReadOnly: false,
    },
    // Shared memory: no group may write what every other group reads, the admin group included (a prompt-injected
    // admin agent would reach every group). Changes go through update_global_memory and the owner's approval.
    { hostPath: path.join(dataReal, 'global'), containerPath: CONTAINER_PATHS.global, isReadOnly: true },
    // Only the SDK's transcripts persist (resume needs nothing else); HOME itself is a fresh tmpfs each run, so
    // settings, hooks or shell snapshots an injected agent writes there are gone by its next run.
    {
      hostPath: path.join(dataReal, 'sessions', groupFolder),
      containerPath: CONTAINER_PATHS.claudeState,
      isReadOnly: false,
    },
    // The credential proxy socket: connecting needs no write access to the folder, and read-only means the
    // agent cannot swap the socket for something of its own.
    { hostPath: path.join(dataReal, 'sockets', groupFolder), containerPath: '/run/warren', isReadOnly: true },
  ];
  const mounts: Mount[] = layout.map((entry) => {
    fs.mkdirSync(entry.hostPath, { recursive: true });
    const real = fs.realpathSync(entry.hostPath);
    if (!isInsideOrEqual(real, dataReal) || real === dataReal) {
      throw new Error(
        `mount source ${entry.hostPath} resolves to ${real}, outside the data directory ${dataReal}`,
      );
    }
    return { ...entry, hostPath: real };
  });

  const denials: MountDenial[] = [];
  if (input.extraMounts.length === 0) return { mounts, denials };
  const { allowlist } = input;
  if (allowlist === null) {
    for (const request of input.extraMounts) {
      denials.push({
        path: request.hostPath,
        reason: 'no mount allowlist exists, so no extra mounts are allowed',
      });
    }
    return { mounts, denials };
  }

  const protectedPaths = [
    { path: dataReal, what: 'the Warren data directory' },
    ...(allowlist.sourcePath
      ? [{ path: path.dirname(allowlist.sourcePath), what: 'the mount allowlist folder' }]
      : []),
    ...(input.protectedPaths ?? []).map((protectedPath) => ({
      path: realpathOrResolved(protectedPath),
      what: 'a protected host folder',
    })),
  ];
  const roots = allowlist.allowedRoots.flatMap((root) => {
    const real = realpathOrNull(root.path);
    return real === null ? [] : [{ ...root, real }];
  });
  const blocked = [...DEFAULT_BLOCKED_PATTERNS, ...(allowlist.blockedPatterns ?? [])].map(compilePattern);
  const usedNames = new Set<string>();

  for (const request of input.extraMounts) {
    const decision = decideExtraMount(request, {
      isAdmin,
      allowlist,
      roots,
      blocked,
      protectedPaths,
      usedNames,
    });
    if ('reason' in decision) {
      denials.push({ path: request.hostPath, reason: decision.reason });
      continue;
    }
    usedNames.add(decision.mount.containerPath);
    mounts.push(decision.mount);
    if (decision.note) denials.push({ path: request.hostPath, reason: decision.note });
  }
  return { mounts, denials };
}

interface DecisionContext {
  isAdmin: boolean;
  allowlist: MountAllowlist;
  roots: Array<AllowedRoot & { real: string }>;
  blocked: CompiledPattern[];
  protectedPaths: Array<{ path: string; what: string }>;
  usedNames: Set<string>;
}

type Decision = { reason: string } | { mount: Mount; note?: string };

function decideExtraMount(request: ExtraMountRequest, context: DecisionContext): Decision {
  if (typeof request.hostPath !== 'string' || !path.isAbsolute(request.hostPath)) {
    return { reason: 'host path must be absolute' };
  }
  const requested = path.resolve(request.hostPath);
  let real: string;
  try {
    real = fs.realpathSync(requested);
  } catch (error) {
    return {
      reason: `host path cannot be resolved (${isErrnoCode(error, 'ENOENT') ? 'does not exist' : errorMessage(error)})`,
    };
  }
  if (UNSAFE_PATH_CHARACTERS.test(real)) {
    return {
      reason: `host path ${real} contains a character the container engine cannot take (, : quotes, backslash, control)`,
    };
  }
  // Both the path as asked and as resolved: a symlink into .ssh is caught, and so is a link named .ssh.
  for (const candidate of new Set([requested, real])) {
    const hit = findBlockedComponent(components(candidate), context.blocked);
    if (hit) return { reason: `path matches blocked pattern '${hit}'` };
  }
  const inside = findBlockedInside(real, context.blocked);
  if (inside) return { reason: `folder directly contains ${inside}, which matches a blocked pattern` };
  for (const protectedPath of context.protectedPaths) {
    if (isInsideOrEqual(real, protectedPath.path)) return { reason: `path is inside ${protectedPath.what}` };
    if (isInsideOrEqual(protectedPath.path, real)) return { reason: `path contains ${protectedPath.what}` };
  }
  // The most specific root decides (its allowReadWrite applies).
  const root = context.roots
    .filter((candidate) => isInsideOrEqual(real, candidate.real))
    .sort((a, b) => b.real.length - a.real.length)[0];
  if (!root) return { reason: `path ${real} is not under any allowed root` };

  const name = request.containerName ?? path.basename(real);
  if (!EXTRA_CONTAINER_NAME_PATTERN.test(name)) {
    return { reason: `container name ${JSON.stringify(name)} is not a safe single folder name` };
  }
  const containerPath = `/workspace/extra/${name}`;
  if (context.usedNames.has(containerPath))
    return { reason: `container name ${JSON.stringify(name)} is already used` };

  const wantsReadWrite = request.isReadOnly === false;
  if (!wantsReadWrite) return { mount: { hostPath: real, containerPath, isReadOnly: true } };
  let refusal: string | null = null;
  if (root.allowReadWrite !== true) refusal = `root ${root.path} does not allow read-write`;
  else if (context.allowlist.nonAdminReadOnly === true && !context.isAdmin) {
    refusal = 'read-write extra mounts are for the admin group only';
  }
  if (refusal === null) return { mount: { hostPath: real, containerPath, isReadOnly: false } };
  return {
    mount: { hostPath: real, containerPath, isReadOnly: true },
    note: `read-write denied (${refusal}); mounted read-only`,
  };
}

interface CompiledPattern {
  source: string;
  segments: RegExp[];
}

function compilePattern(pattern: string): CompiledPattern {
  const segments = pattern.split('/').map((segment) => {
    const body = segment
      .split('')
      .map((character) => (character === '*' ? '.*' : character === '?' ? '.' : escapeRegExp(character)))
      .join('');
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
      if (pattern.segments.every((segment, index) => segment.test(parts[start + index] ?? '')))
        return pattern.source;
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
    if (!fs.statSync(real).isDirectory()) return null;
    entries = fs.readdirSync(real);
  } catch {
    return null;
  }
  const base = components(real);
  for (const entry of entries) {
    if (findBlockedComponent([...base, entry], patterns, true)) return entry;
  }
  for (const pattern of patterns) {
    if (
      pattern.segments.length > 1 &&
      !/[*?]/.test(pattern.source) &&
      fs.existsSync(path.join(real, pattern.source))
    ) {
      return pattern.source;
    }
  }
  return null;
}

function components(absolutePath: string): string[] {
  return absolutePath.split(path.sep).filter((part) => part !== '');
}

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

function realpathOrResolved(target: string): string {
  return realpathOrNull(target) ?? path.resolve(target);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function isErrnoCode(error: unknown, code: string): boolean {
  return error instanceof Error && 'code' in error && error.code === code;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
