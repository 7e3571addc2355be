// Scenario 4: a busy group chat whose messages trigger no agent: how fast the host stores and routes them, and its RSS.
import { type BenchContext, loadAverage, type ScenarioResult } from './context.js';
import { cpuSeconds, memory } from './proc.js';
import { mb } from './report.js';

const CHUNK = 500;
const INGEST_TIMEOUT_MS = 600_000;

export async function measureIngest(context: BenchContext, count: number): Promise<ScenarioResult> {
  const load = loadAverage();
  const host = await context.startHost('ingest');
  // 'mention': the chat's messages are stored as context and wake nothing unless they name the assistant.
  await host.order({ type: 'register', folders: ['busy'], trigger: 'mention' });
  const before = memory(host.pid);
  const cpuBefore = cpuSeconds(host.pid);
  const reply = await host.order({ type: 'ingest', chatId: 'busy', count, chunk: CHUNK }, INGEST_TIMEOUT_MS);
  const cpuUsed = cpuSeconds(host.pid) - cpuBefore;
  const after = memory(host.pid);
  const ms = reply.ingest?.ms ?? Number.NaN;
  const stats = await host.stats();
  const stored = stats.messages.reduce((sum, row) => sum + row.count, 0);
  const rate = count / (ms / 1000);
  return {
    section: {
      title: `Ingest: ${count.toLocaleString('en-US')} messages that trigger no agent`,
      load,
      latency: [],
      values: [
        { label: 'Messages stored and routed per second', value: rate.toFixed(0) },
        { label: 'Host CPU per message', value: `${((cpuUsed / count) * 1e6).toFixed(0)} µs` },
        { label: 'Messages in the store afterwards', value: stored.toLocaleString('en-US') },
        { label: 'Host RSS before', value: mb(before.rssBytes) },
        { label: `Host RSS after ${count.toLocaleString('en-US')}`, value: mb(after.rssBytes) },
        { label: 'Host peak RSS (VmHWM)', value: mb(after.peakRssBytes) },
      ],
      notes: [
        `One group chat with trigger 'mention'; the fake channel hands the host ${CHUNK} messages per event-loop turn, each through the same onMessage path a real adapter uses (router: chat upsert, message insert, trigger check).`,
      ],
    },
    figures: { ingestRate: rate, ingestRssMb: after.rssBytes / 1024 / 1024, stored },
  };
}
