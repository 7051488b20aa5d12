// bench/graphql_fanout.js: GraphQL subscription fan-out (issue 6's benchmark; run by `make bench`).
//
// A throwaway PostgreSQL, herald (the release build) with one table trigger delivering to
// `herald sink --quiet`, and SUBS (1,000) WebSocket clients speaking graphql-transport-ws, each
// subscribed to
//     events_stream(cursor: {initial_value: {seq: S}, ordering: ASC}, batch_size: BATCH)
//       { seq created_at }
// Then EVENTS (10,000) single-row INSERTs are written by pgbench at RATE events/s (0: as fast
// as WRITERS connections go). For every event the script keeps the time the first and the last subscriber
// received it; fan-out latency = last receipt - created_at (the writing transaction's start,
// which for a one-statement transaction is within a fraction of a millisecond of its commit).
// It also reports herald's RSS before the clients connect, with them connected, and its peak,
// and herald's CPU seconds over the write phase. Every subscriber must receive every event
// exactly once and in seq order, or the run fails.
//
// The clients are deliberately thin (raw `ws`, one JSON.parse per message) and run in this one
// process: on a 2-core machine they compete with herald and PostgreSQL for the CPU, so the
// figures are an upper bound of what herald itself costs.
//
// Environment: SUBS, EVENTS, RATE, BATCH, WRITERS (4, pgbench clients), HERALD_BIN (default
// build/herald), PGBENCH (default pgbench on the PATH), OUT
// (append the markdown table to this file).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { cleanup, cpuSeconds, freePort, nowMs, pct, procStatus, run, serve, startPg, streamSubscriber, waitUntil, writeConfig } from './lib.js';


const SUBS = Number(process.env.SUBS || 1000);
const EVENTS = Number(process.env.EVENTS || 10000);
const RATE = Number(process.env.RATE ?? 1000);
const BATCH = Number(process.env.BATCH || 100);
const WRITERS = Number(process.env.WRITERS || 4);

const log = (...a) => console.error('bench(graphql):', ...a);


const cluster = await startPg({ maxConnections: 50 });
let sink = null;
try {
  const url = await cluster.createDb('fanout');
  const db = new pg.Pool({ connectionString: url, max: WRITERS });
  await db.query('CREATE TABLE ticks (id bigserial PRIMARY KEY, n int NOT NULL)');

  const sinkPort = await freePort();
  sink = spawn(process.env.HERALD_BIN, ['sink', '--listen', `127.0.0.1:${sinkPort}`, '--quiet'], {
    stdio: 'ignore',
  });
  const config = writeConfig({
    database: url,
    log_level: 'info',
    triggers: [{ name: 'ticks', table: 'public.ticks', operations: ['insert'],
      webhook: `http://127.0.0.1:${sinkPort}/t`, start: 'beginning' }],
  });
  const applied = await run(['apply', config]);
  if (applied.code !== 0) throw new Error(`herald apply failed: ${applied.stderr}`);
  const herald = await serve(config);
  const wsUrl = herald.url('/v1/graphql').replace('http:', 'ws:');
  const idle = procStatus(herald.pid);

  // Per event (index seq - 1): receipts, first and last receipt time, created_at.
  const count = new Uint32Array(EVENTS);
  const first = new Float64Array(EVENTS);
  const last = new Float64Array(EVENTS);
  const created = new Float64Array(EVENTS);
  let received = 0;
  let failure = null;
  const query = `subscription S($seq: bigint!, $k: Int!) {
    events_stream(cursor: {initial_value: {seq: $seq}, ordering: ASC}, batch_size: $k) { seq created_at } }`;

  const clients = [];
  const connectOne = (i) => streamSubscriber(wsUrl, query, BATCH, {
    name: `subscriber ${i}`,
    onEvents: (events, t) => {
      for (const e of events) {
        const k = Number(e.seq) - 1;
        if (k < 0 || k >= EVENTS) {
          failure ||= `subscriber ${i}: unexpected seq ${e.seq}`;
          continue;
        }
        if (count[k]++ === 0) {
          first[k] = t;
          created[k] = Date.parse(e.created_at) + Number((/\.\d{3}(\d*)/.exec(e.created_at) || [, ''])[1].padEnd(3, '0').slice(0, 3)) / 1000;
        }
        last[k] = t;
        received++;
      }
    },
    onFail: (message) => (failure ||= message),
    done: () => received >= SUBS * EVENTS,
  });
  const t0 = nowMs();
  for (let i = 0; i < SUBS; i += 50) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(50, SUBS - i) }, (_, j) => connectOne(i + j)))));
  }
  log(`${SUBS} subscribers connected in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
  // Let every subscription reach the (empty) tail before writing: one round trip per socket.
  await new Promise((r) => setTimeout(r, 500));
  const connected = procStatus(herald.pid);

  const cpu0 = cpuSeconds(herald.pid);
  const client0 = process.cpuUsage();
  const w0 = nowMs();
  // The writes come from pgbench, in a process of its own, so that the clients' work does not
  // slow the writer down (and the other way round).
  const script = path.join(path.dirname(config), 'insert.sql');
  fs.writeFileSync(script, 'INSERT INTO ticks (n) VALUES (1);\n');
  const perClient = Math.ceil(EVENTS / WRITERS);
  if (perClient * WRITERS !== EVENTS) throw new Error('EVENTS must be a multiple of WRITERS');
  const u = new URL(url);
  const args = ['-h', u.hostname, '-p', u.port, '-U', u.username, '-n', '-f', script,
    '-c', String(WRITERS), '-j', '1', '-t', String(perClient)];
  if (RATE > 0) args.push('-R', String(RATE));
  args.push(u.pathname.slice(1));
  await new Promise((resolve, reject) => {
    const p = spawn(process.env.PGBENCH || 'pgbench', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pgbench failed (${code}): ${err}`))));
  });
  const writeS = (nowMs() - w0) / 1000;
  await waitUntil(() => failure || received >= SUBS * EVENTS, {
    timeoutMs: 300000,
    intervalMs: 100,
    message: `fan-out incomplete: ${received} of ${SUBS * EVENTS} receipts`,
  });
  if (failure) throw new Error(failure);
  const doneS = (nowMs() - w0) / 1000;
  const cpu = cpuSeconds(herald.pid) - cpu0;
  const c1 = process.cpuUsage(client0);
  const clientCpu = (c1.user + c1.system) / 1e6;
  const peak = procStatus(herald.pid);
  for (let k = 0; k < EVENTS; k++) if (count[k] !== SUBS) throw new Error(`event ${k + 1}: ${count[k]} receipts`);

  const lastLat = Array.from(last, (t, k) => t - created[k]).sort((a, b) => a - b);
  const firstLat = Array.from(first, (t, k) => t - created[k]).sort((a, b) => a - b);
  const f = (x) => x.toFixed(1);
  const table = [
    `| subscribers | events | rate (ev/s) | batch_size | commit → every subscriber p50 / p99 / max (ms) | commit → first subscriber p50 / p99 (ms) | write s / last receipt s | herald / clients CPU s | RSS idle / connected / peak (MiB) |`,
    `|---|---|---|---|---|---|---|---|---|`,
    `| ${SUBS} | ${EVENTS} | ${RATE || 'max'} | ${BATCH} | ${f(pct(lastLat, 50))} / ${f(pct(lastLat, 99))} / ${f(lastLat[lastLat.length - 1])} | ${f(pct(firstLat, 50))} / ${f(pct(firstLat, 99))} | ${writeS.toFixed(1)} / ${doneS.toFixed(1)} | ${cpu.toFixed(2)} / ${clientCpu.toFixed(2)} | ${idle.rss.toFixed(1)} / ${connected.rss.toFixed(1)} / ${peak.hwm.toFixed(1)} |`,
  ].join('\n');
  console.log(table);
  if (process.env.OUT) fs.appendFileSync(process.env.OUT, `\n${table}\n`);
  for (const ws of clients) ws.terminate();
  await db.end();
  await herald.stop();
} finally {
  if (sink) sink.kill('SIGTERM');
  await cleanup();
  await cluster.stop();
}
