// Building an image through the engine's API (the legacy builder): the context packed here as the docker CLI packs it.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import dockerignore from '@balena/dockerignore';
import type Docker from 'dockerode';
import { pack } from 'tar-fs';
import { z } from 'zod';
import { parseJson } from '../protocol/read.js';
import { engineMessage, LineSink } from '../sandbox/runtimes/container.js';
import { assertImageTag, ContainerSpecError } from '../sandbox/runtimes/runtime.js';
import { createRuntime, engineClient, type RuntimeConfig } from './engine-setup.js';

export interface BuildImageOptions {
  contextDir: string;
  /** Inside contextDir (sent even if .dockerignore leaves it out, as the docker CLI does). */
  dockerfile: string;
  tag: string;
  buildArgs: Record<string, string>;
  labels?: Record<string, string>;
  /** Each line the build prints. Must not throw. */
  onProgress(line: string): void;
  timeoutMs?: number;
}

export type BuildImageResult = { ok: true } | { ok: false; reason: string };

/** Images on the engine: no method rejects for engine failures. */
export interface ImageEngine {
  hasImage(tag: string): Promise<boolean>;
  /** One label of an image: null when the image or the label is not there. */
  labelOf(tag: string, label: string): Promise<string | null>;
  buildImage(options: BuildImageOptions): Promise<BuildImageResult>;
}

export function createImageEngine(config: RuntimeConfig): ImageEngine {
  const { docker } = engineClient(config);
  return {
    hasImage: createRuntime(config).hasImage,
    labelOf: (tag, label) =>
      docker
        .getImage(tag)
        .inspect()
        .then((image) => image.Config?.Labels?.[label] ?? null)
        .catch(() => null),
    buildImage: (options) => buildImage(docker, options),
  };
}

const buildEventSchema = z.object({ stream: z.string().optional(), error: z.string().optional() });

/**
 * The files of the context the docker CLI would send: .dockerignore applied with docker's rules (not git's), the
 * Dockerfile and .dockerignore always in. A folder left out is not walked unless an exception ('!') reaches into it.
 */
export function contextFiles(contextDir: string, dockerfile: string): string[] {
  const ignoreFile = path.join(contextDir, '.dockerignore');
  const listed = fs.existsSync(ignoreFile) ? fs.readFileSync(ignoreFile, 'utf8').split('\n') : [];
  const rules = [...listed.map((rule) => rule.trim()), '!.dockerignore', `!${dockerfile}`];
  const ignore = dockerignore.default({ ignorecase: false }).add(rules);
  const exceptions = rules.filter((rule) => rule.startsWith('!')).map((rule) => rule.replace(/^!\/*/, ''));
  const walk = (dir: string): string[] =>
    fs.readdirSync(path.join(contextDir, dir), { withFileTypes: true }).flatMap((entry) => {
      const file = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (!entry.isDirectory()) return ignore.ignores(file) ? [] : [file];
      const isReached = exceptions.some((rule) => rule.startsWith(`${file}/`));
      return !ignore.ignores(file) || isReached ? walk(file) : [];
    });
  return walk('');
}

export async function buildImage(docker: Docker, build: BuildImageOptions): Promise<BuildImageResult> {
  assertImageTag(build.tag);
  const badArg = Object.keys(build.buildArgs).find((key) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key));
  if (badArg !== undefined) throw new ContainerSpecError(`build arg name is invalid: ${badArg}`);
  const contextDir = path.resolve(build.contextDir);
  const dockerfile = path.relative(contextDir, path.resolve(build.dockerfile));
  if (dockerfile.startsWith('..') || path.isAbsolute(dockerfile))
    return { ok: false, reason: `the Dockerfile is outside the build context: ${build.dockerfile}` };
  const lastLines: string[] = [];
  const progress = (line: string) => {
    lastLines.push(line);
    if (lastLines.length > 20) lastLines.shift();
    build.onProgress(line);
  };
  let failure: string | null = null;
  // The engine cancels a build (and removes its step container) when the request is cut.
  const deadline = build.timeoutMs === undefined ? undefined : AbortSignal.timeout(build.timeoutMs);
  // The engine answers with JSON lines: {"stream": "Step 1/7 : FROM …\n"}, … and {"error": "…"} when a step fails.
  const events = new LineSink((json) => {
    const parsed = buildEventSchema.safeParse(parseJson(json));
    const event = parsed.success ? parsed.data : {};
    for (const line of (event.stream ?? '').split('\n')) if (line.trim() !== '') progress(line.trimEnd());
    if (event.error !== undefined) {
      failure = event.error;
      progress(event.error);
    }
  });
  try {
    // Owned by root in the archive, as the docker CLI sends it: the same context builds the same layers for anyone.
    const entries = contextFiles(contextDir, dockerfile);
    const context = pack(contextDir, { entries, map: (header) => ({ ...header, uid: 0, gid: 0 }) });
    const output = await docker.buildImage(context, {
      t: build.tag,
      dockerfile,
      buildargs: build.buildArgs,
      ...(build.labels ? { labels: build.labels } : {}),
      // A failed step's container is removed too, not left behind.
      forcerm: true,
      ...(deadline === undefined ? {} : { abortSignal: deadline }),
    });
    await pipeline(output, events);
  } catch (error) {
    if (failure === null) {
      failure = deadline?.aborted ? 'build timed out' : engineMessage(error);
      progress(failure);
    }
  }
  return failure === null ? { ok: true } : { ok: false, reason: lastLines.join('\n').trim() };
}
