// Media from chats, saved into the folder of the group that owns the chat under safe generated names; files out.
import { createHash } from 'node:crypto';
import { closeSync, readFile, writeFile } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { openRegularFile } from '../protocol/read.js';
import { groupDir } from '../sandbox/group-folder.js';
import {
  chownDescriptor,
  closeQuietly,
  createFileIn,
  describeOpenError,
  openDirectory,
  openDirectoryIn,
} from '../sandbox/safe-fs.js';
import type { Store } from '../store/store.js';

export type MediaKind = 'photo' | 'document' | 'voice' | 'audio' | 'video' | 'sticker';

export interface IncomingMedia {
  channel: string;
  chatId: string;
  /** The message's id: the saved name derives from it, so a redelivered message saves no second copy. */
  externalId: string;
  kind: MediaKind;
  /** As the sender named it: shown to the agent, never used as a path. */
  fileName?: string;
  mimeType?: string;
  /** The size the service reports, checked before anything is downloaded. */
  sizeBytes?: number;
  /** Fetches the bytes. Must stop and throw MediaTooLargeError once more than maxBytes arrive. */
  download(maxBytes: number): Promise<Buffer>;
}

export type MediaResult = { status: 'saved'; relativePath: string } | { status: 'skipped'; reason: string };

export interface MediaSaver {
  /** Never throws: a medium that cannot be saved is 'skipped' with the reason (told to the agent). */
  save(media: IncomingMedia): Promise<MediaResult>;
}

export class MediaTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`larger than ${formatSize(maxBytes)}`);
    this.name = 'MediaTooLargeError';
  }
}

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'image/heic': 'heic',
  'audio/ogg': 'ogg',
  'audio/opus': 'opus',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a',
  'audio/x-m4a': 'm4a',
  'audio/wav': 'wav',
  'video/mp4': 'mp4',
  'video/quicktime': 'mov',
  'video/webm': 'webm',
  'application/pdf': 'pdf',
  'application/json': 'json',
  'application/zip': 'zip',
  'text/plain': 'txt',
  'text/csv': 'csv',
  'text/markdown': 'md',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'pptx',
};
const KIND_DEFAULT_EXTENSION: Record<MediaKind, string> = {
  photo: 'jpg',
  voice: 'ogg',
  audio: 'mp3',
  video: 'mp4',
  sticker: 'webp',
  document: 'bin',
};

export const formatSize = (bytes: number) =>
  bytes >= 1024 * 1024
    ? `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`
    : `${Math.ceil(bytes / 1024)} KB`;

/** The extension of the saved file: from the MIME type, else a plain one from the sender's name, else by kind. */
export function extensionFor(media: Pick<IncomingMedia, 'kind' | 'mimeType' | 'fileName'>): string {
  const mime = media.mimeType?.split(';')[0]?.trim().toLowerCase();
  if (mime && EXTENSIONS[mime]) return EXTENSIONS[mime];
  const fromName = /\.([a-z0-9]{1,8})$/i.exec(media.fileName ?? '')?.[1]?.toLowerCase();
  return fromName ?? KIND_DEFAULT_EXTENSION[media.kind];
}

export function mimeTypeFor(fileName: string): string {
  const extension = path.extname(fileName).slice(1).toLowerCase();
  const found = Object.entries(EXTENSIONS).find(([, value]) => value === extension);
  if (found) return found[0];
  return extension === 'jpeg' ? 'image/jpeg' : 'application/octet-stream';
}

/** A name from a sender, made safe to show in a prompt: one line, no quotes or control characters, short. */
function displayName(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
  return name.replace(/[\u0000-\u001f\u007f"\\\u2028\u2029]/g, '').slice(0, 100);
}

/** The line the agent sees for a medium, e.g. `[photo saved: media/2026-11-25-3f9a1c2b7d4e.jpg]`. */
export function describeMedia(media: Pick<IncomingMedia, 'kind' | 'fileName'>, result: MediaResult): string {
  const name = media.fileName ? ` "${displayName(media.fileName)}"` : '';
  return result.status === 'saved'
    ? `[${media.kind}${name} saved: ${result.relativePath}]`
    : `[${media.kind}${name} not saved: ${result.reason}]`;
}

/** Reads a fetch response body, refusing (MediaTooLargeError) once it passes maxBytes. */
export async function readCapped(response: Response, maxBytes: number): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new MediaTooLargeError(maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  if (!response.body) return Buffer.alloc(0);
  for await (const chunk of response.body) {
    total += (chunk as Uint8Array).byteLength;
    if (total > maxBytes) {
      await response.body.cancel().catch(() => {});
      throw new MediaTooLargeError(maxBytes);
    }
    chunks.push(Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks);
}

/**
 * Opens (or makes) `<group folder>/media` and returns its descriptor, or why not. The group folder is the agent's to
 * write: the media folder is reached through the group folder's descriptor, never through a link (safe-fs.ts), and
 * given to the container's user through its own descriptor.
 */
function openMediaFolder(
  folderPath: string,
  owner: { uid: number; gid: number } | undefined,
): number | string {
  const groupFd = openDirectory(folderPath);
  try {
    const mediaFd = openDirectoryIn(groupFd, 'media', 0o755);
    if (owner) chownDescriptor(mediaFd, owner);
    return mediaFd;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') return 'the media folder is not a plain folder';
    throw error;
  } finally {
    closeQuietly(groupFd);
  }
}

/** Creates `name` in the media folder with the data; an existing name (the same message again) is left as it is. */
async function writeNewFile(
  mediaFd: number,
  name: string,
  data: Buffer,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  let fileFd: number;
  try {
    fileFd = createFileIn(mediaFd, name, 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw error;
  }
  try {
    if (owner) chownDescriptor(fileFd, owner);
    await new Promise<void>((resolve, reject) =>
      writeFile(fileFd, data, (error) => (error ? reject(error) : resolve())),
    );
  } finally {
    closeQuietly(fileFd);
  }
}

export function createMediaSaver(deps: {
  dataDir: string;
  store: Store;
  maxBytes: number;
  now(): number;
  log: Logger;
  /** Who saved media belongs to (the container's user) when the host runs as root; otherwise the host's own. */
  owner?: { uid: number; gid: number };
}): MediaSaver {
  const log = deps.log.child({ module: 'media' });
  return {
    async save(media) {
      try {
        // The folder comes from the store's binding of this chat, never from anything in the message.
        const chat = deps.store.chats.get(media.channel, media.chatId);
        const group = chat?.groupId != null ? deps.store.groups.byId(chat.groupId) : null;
        if (!group) return { status: 'skipped', reason: 'the chat is not registered' };
        if (media.sizeBytes !== undefined && media.sizeBytes > deps.maxBytes) {
          return {
            status: 'skipped',
            reason: `too large (${formatSize(media.sizeBytes)}; the limit is ${formatSize(deps.maxBytes)})`,
          };
        }
        const owner = process.getuid?.() === 0 ? deps.owner : undefined;
        const mediaFd = openMediaFolder(groupDir(deps.dataDir, group.folder), owner);
        if (typeof mediaFd === 'string') {
          log.warn({ group: group.folder, reason: mediaFd }, 'media not saved');
          return { status: 'skipped', reason: mediaFd };
        }
        let data: Buffer;
        const day = new Date(deps.now()).toISOString().slice(0, 10);
        const hash = createHash('sha256')
          .update([media.channel, media.chatId, media.externalId, media.kind].join('\0'))
          .digest('hex')
          .slice(0, 12);
        const name = `${day}-${hash}.${extensionFor(media)}`;
        try {
          try {
            data = await media.download(deps.maxBytes);
          } catch (error) {
            if (error instanceof MediaTooLargeError) {
              return { status: 'skipped', reason: `too large (the limit is ${formatSize(deps.maxBytes)})` };
            }
            log.warn({ err: error, group: group.folder, kind: media.kind }, 'media download failed');
            return { status: 'skipped', reason: 'the download failed' };
          }
          await writeNewFile(mediaFd, name, data, owner);
        } finally {
          closeQuietly(mediaFd);
        }
        log.debug({ group: group.folder, kind: media.kind, bytes: data.length }, 'media saved');
        return { status: 'saved', relativePath: `media/${name}` };
      } catch (error) {
        log.error({ err: error, channel: media.channel }, 'saving media failed');
        return { status: 'skipped', reason: 'it could not be saved' };
      }
    },
  };
}

/** Reads a whole file from its descriptor, without blocking the event loop. */
const readFileAt = promisify(
  (fd: number, callback: (error: NodeJS.ErrnoException | null, data: Buffer) => void) =>
    readFile(fd, callback),
);

export type OutgoingFile =
  | { status: 'ok'; data: Buffer; fileName: string; mimeType: string }
  | { status: 'failed'; reason: string };

/** Reads a file to send: a regular file (not through a symlink, opened as protocol/read.ts opens) of at most maxBytes. Never throws. */
export async function openOutgoingFile(filePath: string, maxBytes: number): Promise<OutgoingFile> {
  let file: ReturnType<typeof openRegularFile>;
  try {
    file = openRegularFile(filePath);
  } catch (error) {
    return { status: 'failed', reason: describeOpenError(error, 'no such file') };
  }
  try {
    if (file.stat.size > maxBytes) {
      return {
        status: 'failed',
        reason: `file is ${formatSize(file.stat.size)}; the limit is ${formatSize(maxBytes)}`,
      };
    }
    const fileName = path.basename(filePath);
    return { status: 'ok', data: await readFileAt(file.fd), fileName, mimeType: mimeTypeFor(fileName) };
  } catch (error) {
    return { status: 'failed', reason: describeOpenError(error, 'no such file') };
  } finally {
    closeSync(file.fd);
  }
}
