// What every scenario gets from the driver: the fake model, a way to start measured hosts, and a voice.
import os from 'node:os';
import type { BenchHost } from './host-process.js';
import type { BenchModel } from './model.js';
import type { Section } from './report.js';

export interface BenchContext {
  packageRoot: string;
  agentImage: string;
  model: BenchModel;
  /** Install id of containers the driver starts itself (the `docker run` floor). */
  floorInstallId: string;
  /**
   * Starts a Warren host in its own process with Warren's defaults plus env. The driver shuts it down and removes
   * its containers by their install label, whatever happens.
   */
  startHost(name: string, env?: Record<string, string>): Promise<BenchHost>;
  say(line: string): void;
}

export interface ScenarioResult {
  section: Section;
  /** Figures the targets are judged on. */
  figures: Record<string, number>;
}

/** The 1-minute load average: other work on the machine shows here, and goes into the report. */
export function loadAverage(): number {
  return os.loadavg()[0] ?? 0;
}
