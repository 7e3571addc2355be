// The container runtime contract: what a container is asked to be (ContainerSpec), how it ends, what every engine does.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { checkGroupFolder } from '../../store/store.js';

/** Labels on every container Warren starts; orphan clean-up matches on the install label only. */
export const LABEL_INSTALL = 'warren.install';
export const LABEL_GROUP = 'warren.group';
export const LABEL_MANAGED = 'warren.managed';

/** The uid:gid a container runs as unless the spec says otherwise; never root. */
export const DEFAULT_CONTAINER_USER = { uid: 1000, gid: 1000 };

export interface ContainerMount {
  hostPath: string;
  containerPath: string;
  isReadOnly: boolean;
}

export interface ContainerLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
}

export interface ContainerSpec {
  /** Build it with containerName(); validated again on start. */
  name: string;
  image: string;
  installId: string;
  groupFolder: string;
  mounts: ContainerMount[];
  /** Non-secret values only: container env is readable by everything inside and by `docker inspect`. */
  env: Record<string, string>;
  limits: ContainerLimits;
  /** Writable tmpfs directories besides /tmp (the root filesystem is read-only), e.g. parts of $HOME. */
  tmpfs?: string[];
  /** Size of each tmpfs; counts against the memory limit. Default 64. */
  tmpfsSizeMb?: number;
  /** Default 1000:1000. Must not be 0. */
  user?: { uid: number; gid: number };
  workdir?: string;
  /** Replaces the image's entrypoint (an absolute path in the image), for short jobs in the agent image. */
  entrypoint?: string;
  /** Replaces the image's command. */
  command?: string[];
  /** The host kills the container past this, whatever it is doing (reason 'timeout'). */
  hardRunTimeoutMs: number;
  /** Receives the container's output line by line (lines cut at 64 KiB). Must not throw. */
  onOutput?(output: { stream: 'stdout' | 'stderr'; line: string }): void;
}

export type ContainerEndReason =
  /** The container's main process ended by itself (exitCode says how). */
  | 'exited'
  /** stop() ended it. */
  | 'killed'
  /** The hard run timeout ended it. */
  | 'timeout'
  /** The kernel killed it for exceeding its memory limit. */
  | 'oom'
  /** It never ran: engine missing or down, image missing, bad mount source, command not found. */
  | 'start-failed';

export interface ContainerExit {
  exitCode: number | null;
  reason: ContainerEndReason;
  detail?: string;
}

export interface RunningContainer {
  readonly name: string;
  /** Resolves (never rejects) once the container has ended and been removed. */
  readonly exited: Promise<ContainerExit>;
  /** SIGTERM, then SIGKILL after graceMs (default 10 s). Resolves once exited has. Safe to call more than once. */
  stop(graceMs?: number): Promise<void>;
  /** Freezes (true) or thaws (false) every process in it; resolves true when the engine did. Never rejects. */
  pause(isPaused: boolean): Promise<boolean>;
  /** The last 8 KiB the container wrote to stderr. */
  stderrTail(): string;
}

export interface OwnedContainer {
  name: string;
  groupFolder: string;
  isRunning: boolean;
}

export type RuntimeAvailability = { ok: true; version: string } | { ok: false; reason: string; fix: string };

export interface BuildImageOptions {
  contextDir: string;
  /** Path of the Dockerfile, inside contextDir (sent even if .dockerignore leaves it out, as the docker CLI does). */
  dockerfile: string;
  tag: string;
  buildArgs: Record<string, string>;
  /** Each line the build prints. Must not throw. */
  onProgress(line: string): void;
  /** Default: no limit. */
  timeoutMs?: number;
}

export type BuildImageResult = { ok: true } | { ok: false; reason: string };

export type RuntimeKind = 'docker' | 'podman' | 'gvisor';

/**
 * A container engine. start() rejects only for a spec that breaks the rules (a bug in the caller); an engine
 * or image problem shows up as exited with reason 'start-failed'. listOwned/removeOrphans reject when the
 * engine cannot be asked; checkAvailable, cpuCount, hasImage and buildImage never reject for engine failures.
 */
export interface ContainerRuntime {
  readonly kind: RuntimeKind;
  start(spec: ContainerSpec): Promise<RunningContainer>;
  /** Containers (running or not) labelled with this install id. */
  listOwned(installId: string): Promise<OwnedContainer[]>;
  /**
   * Force-removes every container labelled with this install id, running or not, and returns their names.
   * Meant for start-up, when no container of this install can legitimately be running.
   */
  removeOrphans(installId: string): Promise<string[]>;
  checkAvailable(): Promise<RuntimeAvailability>;
  /** CPUs the engine can give one container (its VM's, on Docker Desktop or a podman machine); null: unknown. */
  cpuCount(): Promise<number | null>;
  hasImage(tag: string): Promise<boolean>;
  buildImage(options: BuildImageOptions): Promise<BuildImageResult>;
}

/** Thrown for a spec or argument that breaks the rules: always a bug in the caller, never a user error. */
export class ContainerSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContainerSpecError';
  }
}

const INSTALL_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** Docker's own rule for names, bounded. Names and tags go into API URL paths: no '/' or '..' in a name. */
const CONTAINER_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
/** registry/name:tag@digest characters, and no '..' (a tag is part of the URL path of image requests). */
const IMAGE_PATTERN = /^(?!.*\.\.)[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}$/;
/** An '=' in a name would set another variable than the one named. */
const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export function isValidInstallId(installId: string): boolean {
  return INSTALL_ID_PATTERN.test(installId);
}

export function assertImageTag(tag: string): void {
  if (!IMAGE_PATTERN.test(tag)) throw new ContainerSpecError(`image tag is invalid: ${tag}`);
}

/** `warren-<installId>-<folder>-<8 hex>`: unique per run, so a name still held by the engine never blocks. */
export function containerName(installId: string, groupFolder: string): string {
  assertIdentity(installId, groupFolder);
  const name = `warren-${installId}-${groupFolder}-${randomBytes(4).toString('hex')}`;
  if (!CONTAINER_NAME_PATTERN.test(name)) throw new ContainerSpecError(`container name is invalid: ${name}`);
  return name;
}

/** The labels that make a container this install's and this group's: they must say exactly who it belongs to. */
function assertIdentity(installId: string, groupFolder: string): void {
  if (!isValidInstallId(installId))
    throw new ContainerSpecError(`install id is invalid: ${JSON.stringify(installId)}`);
  if (checkGroupFolder(groupFolder) !== null) {
    throw new ContainerSpecError(`group folder is invalid: ${JSON.stringify(groupFolder)}`);
  }
}

/** Throws ContainerSpecError for anything the engine must never be asked for. */
export function validateSpec(spec: ContainerSpec): void {
  assertIdentity(spec.installId, spec.groupFolder);
  if (!CONTAINER_NAME_PATTERN.test(spec.name))
    throw new ContainerSpecError(`container name is invalid: ${spec.name}`);
  assertImageTag(spec.image);
  const { memoryMb, cpus, pids } = spec.limits;
  if (!Number.isInteger(memoryMb) || memoryMb < 16)
    throw new ContainerSpecError(`memoryMb must be an integer >= 16`);
  if (!(Number.isFinite(cpus) && cpus > 0)) throw new ContainerSpecError('cpus must be > 0');
  if (!Number.isInteger(pids) || pids < 1) throw new ContainerSpecError('pids must be an integer >= 1');
  if (!(Number.isFinite(spec.hardRunTimeoutMs) && spec.hardRunTimeoutMs > 0)) {
    throw new ContainerSpecError('hardRunTimeoutMs must be > 0');
  }
  const user = spec.user ?? DEFAULT_CONTAINER_USER;
  if (!Number.isInteger(user.uid) || !Number.isInteger(user.gid) || user.uid <= 0 || user.gid <= 0) {
    throw new ContainerSpecError('user must be a non-root uid:gid');
  }
  if (spec.tmpfsSizeMb !== undefined && !(Number.isInteger(spec.tmpfsSizeMb) && spec.tmpfsSizeMb > 0)) {
    throw new ContainerSpecError('tmpfsSizeMb must be a positive integer');
  }
  for (const key of Object.keys(spec.env)) {
    if (!ENV_KEY_PATTERN.test(key))
      throw new ContainerSpecError(`env name is invalid: ${JSON.stringify(key)}`);
  }
  for (const mount of spec.mounts) {
    if (!path.isAbsolute(mount.hostPath))
      throw new ContainerSpecError(`mount host path must be absolute: ${mount.hostPath}`);
    assertContainerPath(mount.containerPath, 'mount container path');
  }
  for (const dir of spec.tmpfs ?? []) assertContainerPath(dir, 'tmpfs path');
  if (spec.workdir !== undefined) assertContainerPath(spec.workdir, 'workdir');
  if (spec.entrypoint !== undefined) assertContainerPath(spec.entrypoint, 'entrypoint');
}

/** A mount over '/' or a path that climbs out would hide or replace more than the one folder meant. */
function assertContainerPath(value: string, what: string): void {
  if (value === '/' || !path.posix.isAbsolute(value) || path.posix.normalize(value) !== value) {
    throw new ContainerSpecError(`${what} must be a normalized absolute path: ${JSON.stringify(value)}`);
  }
}
