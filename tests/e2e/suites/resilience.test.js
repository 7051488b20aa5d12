// Nothing is lost: herald killed with SIGKILL mid-stream, PostgreSQL restarted mid-stream, and a
// graceful SIGTERM that lets in-flight requests finish and records them, so nothing settled is
// delivered again. Every case but the PostgreSQL restart runs on PostgreSQL and on SQLite.
import assert from 'node:assert/strict';
import {
  attemptsOf, forBackends, heraldTable, insertSeries, logRows, onBackend, stack, useCluster, waitSettled,
} from '../lib/fixture.js';
import { startWriter } from '../lib/sqlite.js';
import { parallel } from '../lib/util.js';

const cluster = useCluster();

const ITEMS = {
  postgres: 'CREATE TABLE items (id serial PRIMARY KEY, k int UNIQUE NOT NULL)',
  sqlite: 'CREATE TABLE items (id INTEGER PRIMARY KEY, k int UNIQUE NOT NULL)',
};
const kOf = (q) => q.json?.event?.data?.new?.k;
const distinctK = (reqs) => new Set(reqs.map(kOf).filter((k) => k !== undefined));

function assertAllDelivered(reqs, n) {
  const seen = distinctK(reqs);
  const missing = [];
  for (let k = 1; k <= n; k++) if (!seen.has(k)) missing.push(k);
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${n} rows never delivered`);
  assert.equal(seen.size, n);
}

/**
 * Inserts k = 1..n, one row per transaction, from `writers` concurrent clients: pool connections
 * on PostgreSQL, separate application processes (sqlite3 shells) on SQLite, whose stderr must stay
 * empty (no SQLITE_BUSY).
 */
async function writeRows(s, n, writers = 4) {
  if (s.backend !== 'sqlite') {
    await parallel(n, writers, (i) => s.db.query('INSERT INTO items (k) VALUES ($1)', [i + 1]));
    return;
  }
  const ws = Array.from({ length: writers }, () => startWriter(s.db.file));
  for (let i = 0; i < n; i++) await ws[i % writers].write(`INSERT INTO items (k) VALUES (${i + 1});`);
  for (const r of await Promise.all(ws.map((w) => w.end()))) {
    assert.equal(r.stderr, '', 'an application writer saw an error');
    assert.equal(r.code, 0);
  }
}

forBackends('kill -9 during a stream of 5,000 events: after a restart every row is delivered at least once', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: ITEMS,
    triggers: (r) => [{
      name: 'items', table: 'public.items', operations: ['insert'], webhook: r.url('/items'), start: 'beginning',
      retry: { max_retries: 20, interval: '100ms', max_interval: '1s' },
    }],
  });
  const N = 5000;
  // Several clients insert single-row transactions while herald delivers.
  const writing = writeRows(s, N);
  await s.receiver.waitFor((reqs) => distinctK(reqs).size >= 1000, 90000, '1,000 rows delivered');
  const killed = await s.herald.kill9();
  assert.equal(killed.signal, 'SIGKILL');
  const atKill = distinctK(s.receiver.requests).size;
  await writing;

  await s.serve();
  await s.receiver.waitFor((reqs) => distinctK(reqs).size >= N, 150000, `${N} distinct rows delivered`);
  assertAllDelivered(s.receiver.requests, N);
  const { rows } = await s.db.query(
    `SELECT count(*) AS n, count(DISTINCT id) AS ids FROM ${heraldTable(s.db, 'log')} WHERE source = 'public.items'`);
  assert.deepEqual({ n: Number(rows[0].n), ids: Number(rows[0].ids) }, { n: N, ids: N }, 'one log row per insert');
  assert.ok(atKill < N, `the kill happened mid-stream (${atKill} of ${N} delivered at the kill)`);
  t.diagnostic(`${atKill} rows delivered at the kill; ${s.receiver.requests.length - N} redeliveries in all`);
  assert.ok(s.herald.running, 'the restarted herald keeps running');
});

onBackend('postgres', 'PostgreSQL restart mid-stream: herald reconnects and delivers all 2,000 events', async (t) => {
  const s = await stack(cluster, {
    sql: ITEMS,
    triggers: (r) => [{
      name: 'items', table: 'public.items', operations: ['insert'], webhook: r.url('/items'), start: 'beginning',
      concurrency: 4, retry: { max_retries: 20, interval: '100ms', max_interval: '1s' },
    }],
  });
  // A slow receiver and a small concurrency keep the stream going while the database restarts.
  s.receiver.respond = () => ({ delayMs: 10 });
  for (let b = 0; b < 10; b++) {
    await s.db.query('INSERT INTO items (k) SELECT g FROM generate_series($1::int, $2::int) g', [b * 100 + 1, b * 100 + 100]);
  }
  await s.receiver.waitFor((reqs) => distinctK(reqs).size >= 200, 60000, '200 rows delivered');
  await cluster.pg.restart();
  const duringRestart = distinctK(s.receiver.requests).size;
  // The pool's connections died with the server; a fresh one writes the second half.
  const c = cluster.pg.client(s.dbName);
  await c.connect();
  try {
    for (let b = 10; b < 20; b++) {
      await c.query('INSERT INTO items (k) SELECT g FROM generate_series($1::int, $2::int) g', [b * 100 + 1, b * 100 + 100]);
    }
  } finally {
    await c.end();
  }
  await s.receiver.waitFor((reqs) => distinctK(reqs).size >= 2000, 120000, '2,000 distinct rows delivered');
  assertAllDelivered(s.receiver.requests, 2000);
  assert.ok(duringRestart < 1000, `the restart happened mid-stream (${duringRestart} delivered)`);
  t.diagnostic(`${duringRestart} rows delivered when the restart completed; ${s.receiver.requests.length - 2000} redeliveries`);
  assert.ok(s.herald.running, `herald is still running:\n${s.herald.tail()}`);
  assert.match(s.herald.stderr, /reconnect/i);
});

// The idle dispatcher's change probe (src/store/pg_probe.c): one pg_current_snapshot() every
// ~10 ms instead of a log read per trigger. A commit below the snapshot's xmax (a long
// transaction that started before others committed) only shrinks the running set, so a probe
// that compared xmax alone would miss it until the next full poll; the token must catch it.
onBackend('postgres', 'a long transaction committed after the probe saw others commit is delivered', async () => {
  const s = await stack(cluster, {
    sql: ITEMS,
    triggers: (r) => [{ name: 'items', table: 'public.items', operations: ['insert'], webhook: r.url('/items'), start: 'beginning' }],
  });
  const long = cluster.pg.client(s.dbName);
  await long.connect();
  try {
    await long.query('BEGIN');
    await long.query('INSERT INTO items (k) VALUES (1)'); // takes its xid now
    // Commits after the long transaction's xid: the probe sees them, herald delivers them.
    for (let k = 2; k <= 3; k++) {
      await s.db.query('INSERT INTO items (k) VALUES ($1)', [k]);
      await s.receiver.waitFor((reqs) => distinctK(reqs).has(k), 30000, `k=${k} delivered`);
    }
    assert.equal(distinctK(s.receiver.requests).has(1), false, 'the open transaction is not delivered');
    await long.query('COMMIT');
  } finally {
    await long.end();
  }
  await s.receiver.waitFor((reqs) => distinctK(reqs).has(1), 30000, 'k=1 delivered after its commit');
  assertAllDelivered(s.receiver.requests, 3);
  assert.ok(s.herald.running, s.herald.tail());
});

onBackend('postgres', 'an idle herald across a PostgreSQL restart: failed probes do not stop reads', async () => {
  const s = await stack(cluster, {
    sql: ITEMS,
    triggers: (r) => [{ name: 'items', table: 'public.items', operations: ['insert'], webhook: r.url('/items'), start: 'beginning' }],
  });
  await s.db.query('INSERT INTO items (k) VALUES (1)');
  await s.receiver.waitFor(1, 30000, 'k=1 delivered before the restart');
  // Idle while the server goes away and comes back: probes and polls fail, then reconnect.
  await cluster.pg.restart();
  const c = cluster.pg.client(s.dbName);
  await c.connect();
  try {
    for (let k = 2; k <= 4; k++) {
      await c.query('INSERT INTO items (k) VALUES ($1)', [k]);
      await s.receiver.waitFor((reqs) => distinctK(reqs).has(k), 60000, `k=${k} delivered after the restart`);
    }
  } finally {
    await c.end();
  }
  assertAllDelivered(s.receiver.requests, 4);
  assert.ok(s.herald.running, s.herald.tail());
});

forBackends('graceful shutdown: SIGTERM lets in-flight requests finish and records them; no redelivery', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: ITEMS,
    config: { shutdown_grace: '10s' },
    triggers: (r) => [{
      name: 'items', table: 'public.items', operations: ['insert'], webhook: r.url('/items'), start: 'beginning',
      retry: { max_retries: 5, interval: '100ms' },
    }],
  });
  s.receiver.respond = () => ({ delayMs: 500 });
  await insertSeries(s.db, 'items', 'k', 1, 10); // one transaction, one page
  await s.receiver.waitFor(10, 30000);
  const inFlight = s.receiver.requests.filter((q) => !q.finished).length;
  assert.ok(inFlight > 0, 'requests are in flight when SIGTERM is sent');
  t.diagnostic(`${inFlight} requests in flight at SIGTERM`);
  const code = await s.herald.stop('SIGTERM');
  assert.equal(code, 0, `exit code after SIGTERM:\n${s.herald.tail()}`);
  const first = s.receiver.requests.slice(0, 10);
  for (const q of first) {
    assert.equal(q.aborted, false, `request for k=${kOf(q)} was cut off`);
    assert.equal(q.finished, true, `request for k=${kOf(q)} completed`);
  }
  const log = await logRows(s.db, 'public.items');
  assert.equal(log.length, 10);
  for (const l of log) {
    const a = await attemptsOf(s.db, l.id);
    assert.deepEqual(a.map((x) => x.status), [200], `event k=${l.new.k} recorded as delivered before exit`);
  }

  // A new instance resumes after the settled events: only the new row is delivered.
  s.receiver.respond = undefined;
  const before = s.receiver.requests.length;
  await s.serve();
  await s.db.query('INSERT INTO items (k) VALUES (11)');
  await s.receiver.waitFor((reqs) => reqs.some((q) => kOf(q) === 11), 30000);
  const marker = (await logRows(s.db, 'public.items')).find((l) => l.new.k === 11);
  await waitSettled(s.db, marker.id);
  assert.deepEqual(s.receiver.requests.slice(before).map(kOf), [11], 'no settled event was delivered again');
  for (const l of log) assert.equal(s.receiver.byEventId(l.id).length, 1);
});

forBackends('a second serve after SIGTERM of an idle herald starts cleanly', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: ITEMS,
    triggers: (r) => [{ name: 'items', table: 'public.items', operations: ['insert'], webhook: r.url('/items'), start: 'beginning' }],
  });
  assert.equal(await s.herald.stop('SIGTERM'), 0);
  await s.db.query('INSERT INTO items (k) VALUES (1)'); // committed while no herald runs
  await s.serve();
  await s.receiver.waitFor(1, 30000);
  assert.equal(kOf(s.receiver.requests[0]), 1);
  const h2 = s.herald;
  assert.equal(await h2.stop('SIGINT'), 0);
});
