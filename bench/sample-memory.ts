/**
 * What a bench child's memory is made of while it works: the peaks, each on its own, of
 * process.memoryUsage() (rss, heapUsed, heapTotal, external, arrayBuffers) and of the physical
 * size of V8's young (`newSpace`) and old (`oldSpace`) generations, sampled every 10 ms.
 */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const MB = 1024 * 1024;

/** Starts sampling; the returned function stops and gives the peaks in MB (one decimal). */
export function sampleMemory(): () => Record<string, number> {
  const peak: Record<string, number> = {};
  const sample = () => {
    const spaces = getHeapSpaceStatistics();
    const space = (name: string) => spaces.find((s) => s.space_name === name)?.physical_space_size ?? 0;
    const now = { ...process.memoryUsage(), newSpace: space('new_space'), oldSpace: space('old_space') };
    for (const [key, value] of Object.entries(now)) peak[key] = Math.max(peak[key] ?? 0, value);
  };
  sample();
  const timer = setInterval(sample, 10);
  return () => {
    clearInterval(timer);
    sample();
    return Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round((v / MB) * 10) / 10]));
  };
}

/**
 * This process's own peak RSS so far, in MB: Linux's VmHWM (/proc/self/status), the high-water
 * mark of this process image alone. Not `process.resourceUsage().maxRSS` (getrusage's ru_maxrss):
 * Linux carries that across exec, so in a child it also counts the parent's pages the child held
 * between fork and exec, and a child of a 400 MB parent reports at least ~400 MB whatever it does
 * itself. Elsewhere (no /proc) that maxRSS is all there is.
 */
export function peakRssMB(): number {
  try {
    const kB = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kB) return Number(kB) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}
