// The seam to Baileys: the socket and connector the WhatsApp adapter uses, and what pairing and a closed connection mean.
import type { AnyMessageContent, BaileysEventMap, WAMessage } from '@whiskeysockets/baileys';
import type { ChannelState } from '../store/records.js';

/** Baileys' DisconnectReason codes that change what we do. */
const LOGGED_OUT = 401;
const FORBIDDEN = 403;
const TIMED_OUT = 408;
const RESTART_REQUIRED = 515;

export type WhatsAppEvent = 'connection.update' | 'messages.upsert' | 'groups.upsert';

/** The part of a Baileys socket the adapter uses: whatsapp-baileys.ts wraps the real one, tests use a fake. */
export interface WhatsAppSocket {
  readonly user: { id: string; lid?: string } | undefined;
  on<E extends WhatsAppEvent>(event: E, listener: (data: BaileysEventMap[E]) => void): void;
  sendMessage(
    jid: string,
    content: AnyMessageContent,
    options?: { messageId?: string },
  ): Promise<WAMessage | undefined>;
  sendPresenceUpdate(presence: 'composing' | 'paused', jid: string): Promise<void>;
  requestPairingCode(phoneNumber: string): Promise<string>;
  groupMetadata(jid: string): Promise<{ subject: string }>;
  /** Downloads a received medium; throws MediaTooLargeError past maxBytes. */
  downloadMedia(message: WAMessage, maxBytes: number): Promise<Buffer>;
  /** Closes the connection; the socket emits nothing more. */
  end(): void;
}

export interface WhatsAppConnector {
  /** Opens a new socket with the stored credentials; with none, the socket asks to be paired. */
  open(): Promise<WhatsAppSocket>;
  /** Whether credentials from a finished pairing are stored. */
  isPaired(): Promise<boolean>;
  /** Deletes the stored credentials (WhatsApp logged this device out; they are worthless now). */
  clearAuth(): Promise<void>;
}

const statusCodeOf = (error: unknown): number | undefined =>
  (error as { output?: { statusCode?: number } } | undefined)?.output?.statusCode;

const formatPairingCode = (code: string) =>
  code.length === 8 ? `${code.slice(0, 4)}-${code.slice(4)}` : code;

/** The state to show while the device waits to be paired: by a code typed on the phone, or by the QR code. */
export function pairingState(code?: string): ChannelState {
  const reason = code
    ? 'not paired: on your phone open WhatsApp → Linked devices → Link a device → Link with phone ' +
      `number instead, and enter ${formatPairingCode(code)}`
    : 'not paired: scan the QR code in the terminal where Warren runs (WhatsApp → Linked devices)';
  return { status: 'logged-out', reason };
}

/** How far pairing got on one socket: credentials stored before it opened, a QR code offered since. */
export interface PairingProgress {
  isPaired: boolean;
  hasOfferedQr: boolean;
}

export type CloseOutcome =
  | { kind: 'logged-out'; reason: string; clearAuth: boolean }
  | { kind: 'reconnect'; reason: string; delayMs?: number };

/** What a closed connection means: the device's pairing is over, or the connection is opened again. */
export function closeOutcome(error: Error | undefined, pairing: PairingProgress): CloseOutcome {
  const code = statusCodeOf(error);
  if (code === LOGGED_OUT || code === FORBIDDEN) {
    // The phone removed this device (or WhatsApp refused it): the stored keys are dead; pairing starts over.
    return {
      kind: 'logged-out',
      clearAuth: true,
      reason: `WhatsApp logged this device out (${code}): restart Warren and pair again (see docs/channels/whatsapp.md)`,
    };
  }
  // 408 is also a plain network timeout: only after QR codes were offered does it mean nobody paired.
  if (!pairing.isPaired && pairing.hasOfferedQr && code === TIMED_OUT) {
    return {
      kind: 'logged-out',
      clearAuth: false,
      reason: 'pairing timed out: restart Warren to get a new QR code or pairing code',
    };
  }
  const reason = `${error?.message ?? 'connection closed'}${code ? ` (${code})` : ''}`;
  // Right after pairing WhatsApp asks for a fresh connection: at once, not after a backoff.
  return { kind: 'reconnect', reason, delayMs: code === RESTART_REQUIRED ? 0 : undefined };
}
