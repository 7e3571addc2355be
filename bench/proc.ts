// What Linux says about a process, read from /proc by the driver so that measuring costs the host nothing.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | null = null;

/** USER_HZ, the unit of the CPU times in /proc/<pid>/stat (100 on every Linux we know, but ask). */
function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

function statFields(pid: number): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU seconds the process itself has used (not its children). */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** Resident set size now and its peak over the process's life (VmRSS, VmHWM), in bytes. */
export function memory(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
}

/** The live child processes of a process (for the host: engine clients, none since it uses the API). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(Number(entry))[1]) === pid) children.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

/** CPU seconds a container has used, from its cgroup (v1 cpuacct or v2 cpu.stat); null when not found. */
export function containerCpuSeconds(containerId: string): number | null {
  const candidates: Array<[string, (text: string) => number]> = [
    [`/sys/fs/cgroup/cpuacct/docker/${containerId}/cpuacct.usage`, (text) => Number(text) / 1e9],
    [`/sys/fs/cgroup/cpu,cpuacct/docker/${containerId}/cpuacct.usage`, (text) => Number(text) / 1e9],
    [
      `/sys/fs/cgroup/system.slice/docker-${containerId}.scope/cpu.stat`,
      (text) => Number(/^usage_usec (\d+)/m.exec(text)?.[1] ?? Number.NaN) / 1e6,
    ],
  ];
  for (const [file, parse] of candidates) {
    try {
      const value = parse(readFileSync(file, 'utf8'));
      if (Number.isFinite(value)) return value;
    } catch {
      // Try the next layout.
    }
  }
  return null;
}
