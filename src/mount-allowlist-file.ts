// The owner's mount allowlist file, read and checked: which roots extra mounts may come from. The owner's own file,
// never an agent's; what it allows is decided per mount in src/sandbox/mounts.ts, with the rules no
// allowlist lifts (and the file's own folder is never mountable, so an agent cannot edit its allowlist).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const allowlistSchema = z.strictObject({
  allowedRoots: z.array(
    z.strictObject({
      path: z.string().min(1),
      allowReadWrite: z.boolean().optional(),
      description: z.string().optional(),
    }),
  ),
  /** Added to DEFAULT_BLOCKED_PATTERNS, which always apply. */
  blockedPatterns: z
    .array(z.string().refine((pattern) => !pattern.split('/').includes(''), 'a pattern has an empty segment'))
    .optional(),
  /** Only the admin group may get read-write extra mounts. */
  nonAdminReadOnly: z.boolean().optional(),
});

export type MountAllowlist = z.infer<typeof allowlistSchema> & {
  /** The file it was read from: that file's folder is never mountable, so an agent cannot edit its own allowlist. */
  sourcePath?: string;
};

/**
 * Reads the mount allowlist. A missing file is not an error: it means no extra mounts. Anything unreadable,
 * not JSON, or not in the expected shape (unknown keys included) is an error result, never a partial list.
 * Root paths must be absolute or start with `~/` (expanded with homeDir).
 */
export function loadMountAllowlist(
  filePath: string,
  options: { homeDir?: string } = {},
): { ok: true; allowlist: MountAllowlist | null } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(filePath, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, allowlist: null };
    const what = error instanceof SyntaxError ? 'is not valid JSON' : 'cannot be read';
    return { ok: false, reason: `mount allowlist ${filePath} ${what}: ${(error as Error).message}` };
  }
  const parsed = allowlistSchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      reason: `mount allowlist ${filePath} is malformed: ${z.prettifyError(parsed.error)}`,
    };
  }
  const homeDir = options.homeDir ?? os.homedir();
  const allowedRoots = parsed.data.allowedRoots.map((root) => {
    const isHome = root.path === '~' || root.path.startsWith('~/');
    return { ...root, path: isHome ? path.join(homeDir, root.path.slice(1)) : root.path };
  });
  const relative = allowedRoots.find((root) => !path.isAbsolute(root.path));
  if (relative) {
    return {
      ok: false,
      reason: `mount allowlist ${filePath}: root ${JSON.stringify(relative.path)} is not an absolute path`,
    };
  }
  let sourcePath: string;
  try {
    sourcePath = fs.realpathSync(filePath);
  } catch {
    sourcePath = path.resolve(filePath);
  }
  return {
    ok: true,
    allowlist: {
      ...parsed.data,
      allowedRoots: allowedRoots.map((root) => ({ ...root, path: path.resolve(root.path) })),
      sourcePath,
    },
  };
}
