// What a group's container may see: the fixed layout under the data directory plus allowlisted extra folders
// (mount-allowlist.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { MountAllowlist } from '../mount-allowlist-file.js';
import { CONTAINER_PATHS } from '../protocol/ipc.js';
import { checkGroupFolder } from '../store/store.js';
import { createExtraMountDecider, type ExtraMountRequest, isInsideOrEqual } from './mount-allowlist.js';
import type { ContainerMount } from './runtimes/runtime.js';

export type { ExtraMountRequest } from './mount-allowlist.js';
export type Mount = ContainerMount;

/**
 * The mounts for one group's container. Throws for a bad folder or a layout path that escapes the data
 * directory (bugs: folders are validated at registration). Extra mounts are never thrown for: each one is
 * either mounted or comes back in denials with its reason, for the caller to audit.
 * Creates missing layout folders; making them writable for the container's user is the caller's job.
 */
export function buildMounts(input: {
  dataDir: string;
  groupFolder: string;
  isAdmin: boolean;
  extraMounts: ExtraMountRequest[];
  /** null: no allowlist file, so no extra mount is allowed (fail closed). */
  allowlist: MountAllowlist | null;
  /** Host folders that must never be mounted, nor any folder holding them (host code, config, credentials). */
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

  if (allowlist === null) {
    const reason = 'no mount allowlist exists, so no extra mounts are allowed';
    return { mounts, denials: input.extraMounts.map((request) => ({ path: request.hostPath, reason })) };
  }
  const decide = createExtraMountDecider(allowlist, {
    isAdmin: input.isAdmin,
    dataDir: dataReal,
    protectedPaths: input.protectedPaths,
  });
  const denials: Array<{ path: string; reason: string }> = [];
  for (const request of input.extraMounts) {
    const decision = decide(request);
    if ('mount' in decision) mounts.push(decision.mount);
    const reason = 'reason' in decision ? decision.reason : decision.note;
    if (reason) denials.push({ path: request.hostPath, reason });
  }
  return { mounts, denials };
}
