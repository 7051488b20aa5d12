// bench/lib.js: what the GraphQL bench scripts share — herald's binary, the e2e fixtures, and
// readings of a process from /proc.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// The release build unless HERALD_BIN names another; set before the fixtures read it.
process.env.HERALD_BIN ||= path.resolve(here, '../../../build/herald');
export const { serve, writeConfig, run, cleanup } = await import('../lib/herald.js');
export const { startPg, freePort } = await import('../lib/pg.js');
export const { waitUntil } = await import('../lib/util.js');

/** Wall-clock milliseconds with sub-millisecond precision. */
export const nowMs = () => performance.timeOrigin + performance.now();

/** RSS now and its peak (VmHWM) of process pid, in MiB. */
export function procStatus(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)[1]);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** CPU seconds (user + system) process pid has used so far. */
export function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // clock ticks of 1/100 s
}

/** The p-th percentile of an ascending array (NaN when empty). */
export function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
