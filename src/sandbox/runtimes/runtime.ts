// The container runtime contract: what a container is asked to be (ContainerSpec), how it ends, what every engine does.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { checkGroupFolder } from '../../store/store.js';

/** Labels on every container Warren starts; orphan clean-up matches on the install label only. */
export const LABEL_INSTALL = 'warren.install';
export const LABEL_GROUP = 'warren.group';
export const LABEL_MANAGED = 'warren.managed';

const installIdSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/);
/** Docker's own rule for names, bounded. Names and tags go into API URL paths: no '/' or '..' in a name. */
const containerNameSchema = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/);
/** registry/name:tag@digest characters, and no '..' (a tag is part of the URL path of image requests). */
const imageTagSchema = z.string().regex(/^(?!.*\.\.)[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}$/);
/** A mount over '/' or a path that climbs out would hide or replace more than the one folder meant. */
const containerPath = z
  .string()
  .refine((value) => value !== '/' && path.posix.isAbsolute(value) && path.posix.normalize(value) === value, {
    error: 'must be a normalized absolute path other than /',
  });
/** The labels that say exactly which install and group a container belongs to. */
const identitySchema = z.object({
  installId: installIdSchema,
  groupFolder: z.string().refine((folder) => checkGroupFolder(folder) === null, { error: 'a group folder' }),
});

const specSchema = identitySchema.extend({
  /** From containerName(). */
  name: containerNameSchema,
  image: imageTagSchema,
  mounts: z.array(
    z.object({
      hostPath: z.string().refine((value) => path.isAbsolute(value), { error: 'must be absolute' }),
      containerPath,
      isReadOnly: z.boolean(),
    }),
  ),
  /** Non-secret values only (`docker inspect` shows them); no '=' in a name (it would set another). */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string()),
  limits: z.object({ memoryMb: z.int().min(16), cpus: z.number().positive(), pids: z.int().min(1) }),
  /** Writable tmpfs folders besides /tmp (the root filesystem is read-only), e.g. $HOME. */
  tmpfs: z.array(containerPath).optional(),
  /** Default 1000:1000; never root. */
  user: z.object({ uid: z.int().positive(), gid: z.int().positive() }).optional(),
  workdir: containerPath.optional(),
  /** For short jobs in the agent image. */
  entrypoint: containerPath.optional(),
  command: z.array(z.string()).optional(),
  /** The host kills the container past this, whatever it is doing (reason 'timeout'). */
  hardRunTimeoutMs: z.number().positive(),
  /** The container's output line by line (cut at 64 KiB). Must not throw. */
  onOutput: z.custom<(output: { stream: 'stdout' | 'stderr'; line: string }) => void>().optional(),
});

/** What a container is asked to be; validateSpec checks it before the engine sees it. */
export type ContainerSpec = z.infer<typeof specSchema>;
export type ContainerMount = ContainerSpec['mounts'][number];

/**
 * How a container ended. exited: by itself; killed: by stop(); timeout: the hard run timeout; oom: over its memory
 * limit; start-failed: it never ran (engine down, image missing, bad mount source, command not found).
 */
export interface ContainerExit {
  exitCode: number | null;
  reason: 'exited' | 'killed' | 'timeout' | 'oom' | 'start-failed';
  detail?: string;
}

export interface RunningContainer {
  readonly name: string;
  /** Resolves (never rejects) once the container has ended and been removed. */
  readonly exited: Promise<ContainerExit>;
  /** SIGTERM, then SIGKILL after graceMs (default 10 s). Resolves once exited has. Safe to call more than once. */
  stop(graceMs?: number): Promise<void>;
  /** Freezes (true) or thaws (false) every process in it; true when the engine did. Never rejects. */
  pause(isPaused: boolean): Promise<boolean>;
  /** The last 8 KiB the container wrote to stderr. */
  stderrTail(): string;
}

export type OwnedContainer = { name: string; groupFolder: string; isRunning: boolean };

export type RuntimeAvailability = { ok: true; version: string } | { ok: false; reason: string; fix: string };

export type RuntimeKind = 'docker' | 'podman' | 'gvisor';

/**
 * A container engine. start() rejects only for a spec that breaks the rules (a bug in the caller); an engine
 * or image problem shows up as exited with reason 'start-failed'. listOwned/removeOrphans reject when the
 * engine cannot be asked; checkAvailable, cpuCount and hasImage never reject for engine failures.
 */
export interface ContainerRuntime {
  readonly kind: RuntimeKind;
  start(spec: ContainerSpec): Promise<RunningContainer>;
  /** Containers (running or not) labelled with this install id. */
  listOwned(installId: string): Promise<OwnedContainer[]>;
  /** Force-removes (at start-up) every container labelled with this install id; returns their names. */
  removeOrphans(installId: string): Promise<string[]>;
  checkAvailable(): Promise<RuntimeAvailability>;
  /** CPUs the engine can give one container (its VM's, on Docker Desktop or a podman machine); null: unknown. */
  cpuCount(): Promise<number | null>;
  hasImage(tag: string): Promise<boolean>;
}

/** Thrown for a spec or argument that breaks the rules: always a bug in the caller, never a user error. */
export class ContainerSpecError extends Error {
  override name = 'ContainerSpecError';
}

function check(schema: z.ZodType, value: unknown, what: string): void {
  const result = schema.safeParse(value);
  if (!result.success) throw new ContainerSpecError(`${what} is invalid: ${z.prettifyError(result.error)}`);
}

export const assertInstallId = (installId: string) =>
  check(installIdSchema, installId, `install id ${installId}`);
export const assertImageTag = (tag: string) => check(imageTagSchema, tag, `image tag ${tag}`);
/** Throws ContainerSpecError for anything the engine must never be asked for. */
export const validateSpec = (spec: ContainerSpec) => check(specSchema, spec, 'container spec');

/** `warren-<installId>-<folder>-<8 hex>`: unique per run, so a name still held by the engine never blocks. */
export function containerName(installId: string, groupFolder: string): string {
  check(identitySchema, { installId, groupFolder }, 'container identity');
  const name = `warren-${installId}-${groupFolder}-${randomBytes(4).toString('hex')}`;
  check(containerNameSchema, name, `container name ${name}`);
  return name;
}
