// bench/lib.js: what the GraphQL bench scripts share — herald's binary, the e2e fixtures, an
// events_stream subscriber, and readings of a process from /proc.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

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

/**
 * One graphql-transport-ws client subscribed to query, an events_stream subscription with
 * variables {seq: 0, k}; resolves with its socket once the subscription is sent. Each batch goes
 * to onEvents(events, arrival ms). onFail(message) hears of anything else: an unexpected message
 * or error payload, a seq not above the previous one, a close before done() says it has all.
 */
export function streamSubscriber(wsUrl, query, k, { name, onEvents, onFail, done }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, 'graphql-transport-ws');
    let lastSeq = 0;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init' })));
    ws.on('error', reject);
    ws.on('close', (code, why) => {
      if (!done()) onFail(`${name} closed: ${code} ${why}`);
    });
    ws.on('message', (raw) => {
      const m = JSON.parse(raw);
      if (m.type === 'connection_ack') {
        ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables: { seq: 0, k } } }));
        resolve(ws);
        return;
      }
      if (m.type === 'ping') return ws.send('{"type":"pong"}');
      if (m.type !== 'next' || m.payload.errors) {
        onFail(`${name}: unexpected ${String(raw).slice(0, 300)}`);
        return;
      }
      const t = nowMs();
      const events = m.payload.data.events_stream;
      for (const e of events) {
        const seq = Number(e.seq);
        if (seq <= lastSeq) onFail(`${name}: seq ${seq} after ${lastSeq}`);
        lastSeq = seq;
      }
      onEvents(events, t);
    });
  });
}
