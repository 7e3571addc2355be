// What happened in a host, with times: replies by id, and per group its containers, ready events and runner logs.
import type { BenchHost } from './host-process.js';
import { monotonicMs } from './protocol.js';

export interface FolderTimes {
  containerStarts: number[];
  /** The host end of the latest run's model API socket. */
  apiSocket: string | null;
  readies: number[];
  /** Every runner output file (ready, turn-end, log, exit …) as it appeared on the host. */
  outputFiles: number[];
  exits: number[];
  /** Runner log lines, time converted to the monotonic clock. */
  logs: Array<{ message: string; at: number }>;
}

export interface Timeline {
  /** When the reply `re:<id>` was handed to the channel. */
  readonly replies: Map<string, number>;
  /** Texts that were not answers (retry and failure notices): there should be none. */
  readonly notices: string[];
  folder(name: string): FolderTimes;
  /** Resolves once check() holds (checked at every host event); rejects after timeoutMs. */
  waitFor(check: () => boolean, what: string, timeoutMs: number): Promise<void>;
  stop(): void;
}

/**
 * Wall-clock milliseconds (Date.now() in a container, docker events' timeNano / 1e6) to the monotonic clock.
 * Good to about a millisecond, which is what the container's own clock reading gives.
 */
export function wallToMonotonic(wallMs: number): number {
  return wallMs - (performance.timeOrigin + performance.now() - monotonicMs());
}

export function recordTimeline(host: BenchHost): Timeline {
  const replies = new Map<string, number>();
  const notices: string[] = [];
  const folders = new Map<string, FolderTimes>();
  const waiters = new Set<() => void>();
  const folder = (name: string): FolderTimes => {
    let times = folders.get(name);
    if (!times) {
      times = { containerStarts: [], apiSocket: null, readies: [], outputFiles: [], exits: [], logs: [] };
      folders.set(name, times);
    }
    return times;
  };
  const stop = host.listen((event) => {
    switch (event.type) {
      case 'sent': {
        const id = /^re:([\w-]+)$/.exec(event.text.trim())?.[1];
        if (id && !replies.has(id)) replies.set(id, event.at);
        else notices.push(event.text);
        break;
      }
      case 'container-start':
        folder(event.folder).containerStarts.push(event.at);
        folder(event.folder).apiSocket = event.apiSocket;
        break;
      case 'agent-ready':
        folder(event.folder).readies.push(event.at);
        break;
      case 'output-file':
        folder(event.folder).outputFiles.push(event.at);
        break;
      case 'container-exit':
        folder(event.folder).exits.push(event.at);
        break;
      case 'runner-log':
        folder(event.folder).logs.push({ message: event.message, at: wallToMonotonic(event.time) });
        break;
      default:
        return;
    }
    for (const waiter of waiters) waiter();
  });

  return {
    replies,
    notices,
    folder,
    waitFor(check, what, timeoutMs) {
      return new Promise((resolve, reject) => {
        const done = () => {
          if (!check()) return;
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(done);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        waiters.add(done);
        done();
      });
    },
    stop,
  };
}
