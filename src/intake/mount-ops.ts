// The owner's extra-mount operations, for the one table in owner-ops.ts: a host folder a group's agent may see,
// checked against the mount allowlist now for a clear answer (the allowlist decides again at every container start).
import path from 'node:path';
import { loadMountAllowlist } from '../mount-allowlist-file.js';
import { buildMounts } from '../sandbox/mounts.js';
import type { Group } from '../store/records.js';
import { type Store, StoreError } from '../store/store.js';

export type MountOp =
  | { op: 'mount'; folder: string; hostPath: string; as?: string; isReadOnly: boolean }
  | { op: 'unmount'; folder: string; name: string };

export interface MountOpDeps {
  store: Store;
  dataDir: string;
  mountAllowlistPath: string;
  /** Host paths no mount may expose (the package itself). */
  protectedPaths: string[];
}

/** Runs one operation on an existing group's extra mounts; a refusal is a StoreError. */
export function mountOp(deps: MountOpDeps, group: Group, request: MountOp): string {
  const current = deps.store.groups.extraMounts(group.id);
  if (request.op === 'unmount') {
    const { name } = request;
    const kept = current.filter((entry) => entry.containerName !== name && entry.hostPath !== name);
    if (kept.length === current.length)
      throw new StoreError(`group '${group.folder}' has no extra mount '${name}'`);
    deps.store.groups.setExtraMounts(group.id, kept);
    return `Group '${group.folder}' no longer asks for ${name} (from its next run).`;
  }
  const { as: containerName, isReadOnly } = request;
  const wanted = { hostPath: path.resolve(request.hostPath), containerName, isReadOnly };
  // Checked now for a clear answer; the allowlist decides again at every container start (it may change).
  const allowlist = loadMountAllowlist(deps.mountAllowlistPath);
  if (!allowlist.ok) throw new StoreError(allowlist.reason);
  const check = buildMounts({
    dataDir: deps.dataDir,
    groupFolder: group.folder,
    isAdmin: group.isAdmin,
    extraMounts: [wanted],
    allowlist: allowlist.allowlist,
    protectedPaths: deps.protectedPaths,
  });
  if (check.denials.length > 0) {
    const reasons = check.denials.map((denial) => denial.reason).join('; ');
    throw new StoreError(`the mount allowlist (${deps.mountAllowlistPath}) does not allow it: ${reasons}`);
  }
  const others = current.filter((entry) => entry.hostPath !== wanted.hostPath);
  deps.store.groups.setExtraMounts(group.id, [...others, wanted]);
  const how = `${isReadOnly ? 'read-only' : 'read-write'} under /workspace/extra/`;
  return `Group '${group.folder}' will see ${wanted.hostPath} ${how} (from its next run).`;
}
