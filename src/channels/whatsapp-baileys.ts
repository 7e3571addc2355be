// The real WhatsApp connector: Baileys sockets with the auth state in <dataDir>/whatsapp-auth (host only, 0700).
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Transform } from 'node:stream';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { MediaTooLargeError } from './media.js';
import type { WhatsAppConnector, WhatsAppEvent, WhatsAppSocket } from './whatsapp-socket.js';

export const WHATSAPP_AUTH_DIR = 'whatsapp-auth';

/** Paired credentials name the account they belong to. */
const pairedCredsSchema = z.object({ me: z.object({ id: z.string() }) });

export function whatsappAuthDir(dataDir: string): string {
  return path.join(dataDir, WHATSAPP_AUTH_DIR);
}

async function readCapped(stream: Transform, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      stream.destroy();
      throw new MediaTooLargeError(maxBytes);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Builds sockets with Baileys, loaded only when WhatsApp is enabled. The auth folder holds the keys of a linked
 * device: it lives in the data directory, readable by the owner only, and is never mounted into a container.
 */
export function createBaileysConnector(options: { dataDir: string; log: Logger }): WhatsAppConnector {
  const authDir = whatsappAuthDir(options.dataDir);
  const logger = options.log.child({ module: 'baileys' }, { level: 'warn' });
  const events: WhatsAppEvent[] = ['connection.update', 'messages.upsert', 'groups.upsert'];
  // Read once and kept: the socket opened right after pairing (WhatsApp asks for a restart) must see the new
  // credentials even if their file write has not finished.
  let auth: Awaited<ReturnType<typeof loadAuth>> | null = null;

  async function loadAuth() {
    const baileys = await import('@whiskeysockets/baileys');
    mkdirSync(authDir, { recursive: true, mode: 0o700 });
    chmodSync(authDir, 0o700);
    return baileys.useMultiFileAuthState(authDir);
  }

  return {
    async open(): Promise<WhatsAppSocket> {
      const baileys = await import('@whiskeysockets/baileys');
      auth ??= await loadAuth();
      const { state, saveCreds } = auth;
      const sock = baileys.makeWASocket({
        auth: { creds: state.creds, keys: baileys.makeCacheableSignalKeyStore(state.keys, logger) },
        logger,
        markOnlineOnConnect: false,
        syncFullHistory: false,
        // Old conversations are not ours to store: only messages that arrive from now on count.
        shouldSyncHistoryMessage: () => false,
        generateHighQualityLinkPreview: false,
      });
      sock.ev.on('creds.update', saveCreds);
      return {
        get user() {
          return sock.user ? { id: sock.user.id, lid: sock.user.lid } : undefined;
        },
        on: (event, listener) => sock.ev.on(event, listener),
        sendMessage: (jid, content, sendOptions) => sock.sendMessage(jid, content, sendOptions),
        sendPresenceUpdate: (presence, jid) => sock.sendPresenceUpdate(presence, jid),
        requestPairingCode: (phoneNumber) => sock.requestPairingCode(phoneNumber),
        groupMetadata: async (jid) => ({ subject: (await sock.groupMetadata(jid)).subject }),
        async downloadMedia(message, maxBytes) {
          const stream = await baileys.downloadMediaMessage(
            message,
            'stream',
            {},
            { logger, reuploadRequest: sock.updateMediaMessage },
          );
          return readCapped(stream, maxBytes);
        },
        end() {
          for (const event of events) sock.ev.removeAllListeners(event);
          void sock.end(undefined);
        },
      };
    },

    async isPaired() {
      if (auth) return auth.state.creds.me !== undefined;
      try {
        const raw: unknown = JSON.parse(readFileSync(path.join(authDir, 'creds.json'), 'utf8'));
        return pairedCredsSchema.safeParse(raw).success;
      } catch {
        return false;
      }
    },

    async clearAuth() {
      auth = null;
      rmSync(authDir, { recursive: true, force: true });
    },
  };
}
