// bench/graphql_catchup.js: many GraphQL subscribers catching up over a backlog at once (the
// case of docs/graphql.md's "Slow clients": catch-up reads bounded and taking turns).
//
// A throwaway PostgreSQL, herald (the release build, no trigger), EVENTS (10,000) rows written
// before anyone subscribes, then SUBS (1,000) graphql-transport-ws clients subscribing to
//     events_stream(cursor: {initial_value: {seq: 0}}, batch_size: BATCH) { seq created_at data }
// all at once. Meanwhile a child process opens a new socket every 250 ms and times its
// connection_ack (herald closes a socket that sent no connection_init within 3 s with 4408; a
// loop held by the catch-up shows there). Every subscriber must receive every event exactly once
// and in seq order, or the run fails. Reports the time until the last subscriber has everything,
// herald's CPU seconds and peak RSS, and the probes' acks (count, 4408s, slowest).
//
// Environment: SUBS, EVENTS, BATCH (100), PAD (500: bytes of padding in each event's data),
// HERALD_BIN (default build/herald), OUT (append the
// markdown table to this file).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { cleanup, cpuSeconds, nowMs, procStatus, run, serve, startPg, streamSubscriber, waitUntil, writeConfig } from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));


const SUBS = Number(process.env.SUBS || 1000);
const EVENTS = Number(process.env.EVENTS || 10000);
const BATCH = Number(process.env.BATCH || 100);
const PAD = Number(process.env.PAD ?? 500);

const log = (...a) => console.error('bench(graphql catch-up):', ...a);


// The probe: its own process, so that this one's work on the subscribers' messages does not
// delay it. Prints one line per socket: "ack <ms>" or "closed <code>".
const PROBE = `const WebSocket = require('ws');
const url = process.argv[1];
function one() {
  const t0 = Date.now();
  const w = new WebSocket(url, ['graphql-transport-ws']);
  let done = false;
  const end = (line) => { if (!done) { done = true; console.log(line); w.terminate(); } };
  w.on('open', () => w.send(JSON.stringify({ type: 'connection_init' })));
  w.on('message', (d) => { if (JSON.parse(d).type === 'connection_ack') end('ack ' + (Date.now() - t0)); });
  w.on('close', (c) => end('closed ' + c));
  w.on('error', (e) => end('error ' + e.message));
}
setInterval(one, 250);`;

const cluster = await startPg({ maxConnections: 50 });
try {
  const url = await cluster.createDb('catchup');
  const db = new pg.Pool({ connectionString: url, max: 2 });
  await db.query('CREATE TABLE ticks (id bigserial PRIMARY KEY, n int NOT NULL)');
  const config = writeConfig({ database: url, log_level: 'info', triggers: [] });
  const applied = await run(['apply', config]);
  if (applied.code !== 0) throw new Error(`herald apply failed: ${applied.stderr}`);
  await db.query("SELECT herald.emit('tick', jsonb_build_object('n', g, 'pad', repeat('x', $2::int))) FROM generate_series(1, $1::int) g", [EVENTS, PAD]);
  const herald = await serve(config);
  const wsUrl = herald.url('/v1/graphql').replace('http:', 'ws:');
  const idle = procStatus(herald.pid);

  let received = 0;
  let failure = null;
  const query = `subscription S($seq: bigint!, $k: Int!) {
    events_stream(cursor: {initial_value: {seq: $seq}, ordering: ASC}, batch_size: $k) { seq created_at data } }`;
  const clients = [];
  const connectOne = (i) => {
    let mine = 0;
    return streamSubscriber(wsUrl, query, BATCH, {
      name: `subscriber ${i}`,
      onEvents: (events) => {
        mine += events.length;
        received += events.length;
      },
      onFail: (message) => (failure ||= message),
      done: () => mine >= EVENTS,
    });
  };

  const probe = spawn(process.execPath, ['-e', PROBE, wsUrl], { cwd: path.resolve(here, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
  let probeOut = '';
  probe.stdout.on('data', (d) => (probeOut += d));
  const cpu0 = cpuSeconds(herald.pid);
  const t0 = nowMs();
  for (let i = 0; i < SUBS; i += 100) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(100, SUBS - i) }, (_, j) => connectOne(i + j)))));
  }
  log(`${SUBS} subscribers connected in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
  await waitUntil(() => failure || received >= SUBS * EVENTS, {
    timeoutMs: 600000,
    intervalMs: 100,
    message: `catch-up incomplete: ${received} of ${SUBS * EVENTS} receipts`,
  });
  const doneS = (nowMs() - t0) / 1000;
  probe.kill('SIGTERM');
  if (failure) throw new Error(failure);
  const cpu = cpuSeconds(herald.pid) - cpu0;
  const peak = procStatus(herald.pid);
  const lines = probeOut.trim().split('\n').filter(Boolean);
  const acks = lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
  const refused = lines.length - acks.length;
  const table = [
    '| subscribers | backlog (data bytes) | batch_size | all caught up (s) | herald CPU s | RSS idle / peak (MiB) | new sockets: acked / closed, slowest ack (ms) |',
    '|---|---|---|---|---|---|---|',
    `| ${SUBS} | ${EVENTS} (${PAD}) | ${BATCH} | ${doneS.toFixed(1)} | ${cpu.toFixed(2)} | ${idle.rss.toFixed(1)} / ${peak.hwm.toFixed(1)} | ${acks.length} / ${refused}, ${acks.length ? Math.max(...acks) : '-'} |`,
  ].join('\n');
  console.log(table);
  if (process.env.OUT) fs.appendFileSync(process.env.OUT, `\n${table}\n`);
  for (const ws of clients) ws.terminate();
  await db.end();
  await herald.stop();
} finally {
  await cleanup();
  await cluster.stop();
}
