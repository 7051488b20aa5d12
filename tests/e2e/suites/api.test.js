// The HTTP API of `herald serve` around the metadata endpoint: /healthz, /readyz (200, then 503
// with the reason when the schema is at another version or PostgreSQL is stopped, 200 again),
// /metrics (promtool finds nothing; counters and histograms match what the receiver saw; the
// status gauges; the WebSocket and GraphQL subscription series), the admin secret (401 on
// /v1/metadata and /metrics without it, health stays open), the listen address (non-loopback
// without a secret: exit 2; a busy port: exit 1; off),
// request limits (413, oversized headers and URLs, a slowloris client) and shutdown with API
// connections open. Each herald gets a free port (HERALD_LISTEN=127.0.0.1:0, see lib/herald.js).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { before, describe } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BACKENDS, e2eTest, forBackends, onBackend, serveTracked, stack, useCluster } from '../lib/fixture.js';
import { run, writeConfig } from '../lib/herald.js';
import { startPg } from '../lib/pg.js';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { waitUntil } from '../lib/util.js';

const cluster = useCluster();
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The backend of the cases that do not depend on one: SQLite when it runs (no cluster needed). */
const ANY = BACKENDS.includes('sqlite') ? 'sqlite' : 'postgres';
const SECRET = 'e2e-admin-secret';
const EXPORT = JSON.stringify({ type: 'export_metadata', args: {} });

let promtool = null;
before(() => {
  // Fetched once per machine into tests/e2e/.tmp (apt-get download + dpkg-deb -x; never installed).
  promtool = execFileSync('bash', [path.join(REPO, 'scripts/promtool.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
});

/** An HTTP request to herald h: { status, headers, text, json }. */
async function http(h, p, { method = 'GET', headers = {}, body } = {}) {
  const r = await fetch(h.url(p), { method, headers, body });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: r.status, headers: r.headers, text, json };
}

/** Prometheus text → [{ name, labels, value }] (samples only). */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels = {};
    if (m[2]) for (const [, k, v] of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample name{labels…}, or undefined. */
function sample(samples, name, labels = {}) {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(hits.length <= 1, `${name} ${JSON.stringify(labels)}: ${hits.length} samples`);
  return hits[0]?.value;
}

async function scrape(h, headers = {}) {
  const r = await http(h, '/metrics', { headers });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return { text: r.text, samples: parseMetrics(r.text) };
}

function promtoolCheck(text) {
  const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool check metrics exited ${r.status}:\n${r.stdout}${r.stderr}\n--- metrics ---\n${text}`);
  assert.equal(r.stdout + r.stderr, '', 'promtool check metrics reports nothing');
}

/** Checks a histogram of one trigger: cumulative buckets, +Inf equal to _count; returns count. */
function histogram(samples, name, trigger) {
  const buckets = samples.filter((s) => s.name === `${name}_bucket` && s.labels.trigger === trigger);
  assert.ok(buckets.length > 2, `${name}{trigger="${trigger}"} has buckets`);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, `${name} buckets are cumulative`);
  const inf = buckets[buckets.length - 1];
  assert.equal(inf.labels.le, '+Inf');
  const count = sample(samples, `${name}_count`, { trigger });
  assert.equal(inf.value, count, `${name}: +Inf bucket equals _count`);
  return { count, sum: sample(samples, `${name}_sum`, { trigger }) };
}

const noTriggers = () => [];

describe('health', () => {
  forBackends('/healthz and /readyz answer 200 {"status":"ok"}; unknown paths 404, other methods 405', async (t, backend) => {
    const s = await stack(cluster, { backend, triggers: noTriggers });
    assert.match(s.herald.listen, /^127\.0\.0\.1:\d+$/);
    for (const p of ['/healthz', '/readyz']) {
      const r = await http(s.herald, p);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      assert.deepEqual(r.json, { status: 'ok' });
      assert.match(r.headers.get('content-type'), /^application\/json/);
    }
    // Concurrent readiness checks share one answer.
    const many = await Promise.all(Array.from({ length: 20 }, () => http(s.herald, '/readyz')));
    assert.deepEqual(many.map((r) => r.status), Array(20).fill(200));
    assert.equal((await http(s.herald, '/nope')).status, 404);
    const r = await http(s.herald, '/healthz', { method: 'POST', body: '{}' });
    assert.equal(r.status, 405);
    assert.match(r.headers.get('allow'), /GET/);
  });

  forBackends("/readyz is 503 with the reason while herald's schema is at another version, 200 once it is back", async (t, backend) => {
    const s = await stack(cluster, { backend, triggers: noTriggers });
    const meta = backend === 'sqlite' ? 'herald_meta' : 'herald.meta';
    assert.equal((await http(s.herald, '/readyz')).status, 200);
    const { rows } = await s.db.query(`SELECT value FROM ${meta} WHERE key = 'schema_version'`);
    const current = String(rows[0].value);
    await s.db.query(`UPDATE ${meta} SET value = '99' WHERE key = 'schema_version'`);
    const r = await http(s.herald, '/readyz');
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.status, 'unavailable');
    assert.match(r.json.reason, /version 99|newer/);
    assert.equal((await http(s.herald, '/healthz')).status, 200, 'the process is still alive');
    await s.db.query(`UPDATE ${meta} SET value = $1 WHERE key = 'schema_version'`, [current]);
    assert.equal((await http(s.herald, '/readyz')).status, 200);
    assert.equal(await s.herald.stop(), 0);
  });

  onBackend('postgres', '/readyz is 503 while PostgreSQL is stopped and 200 after it restarts; /healthz and /metrics keep answering', async () => {
    // A cluster of its own: the file's cluster serves the other tests.
    const pg = await startPg();
    try {
      const s = await stack({ pg }, {
        backend: 'postgres',
        sql: 'CREATE TABLE items (id int PRIMARY KEY)',
        triggers: (r) => [{ name: 'items', table: 'items', operations: ['insert'], webhook: r.url('/i'), start: 'beginning' }],
      });
      assert.equal((await http(s.herald, '/readyz')).status, 200);
      await scrape(s.herald); // the status gauges are read once while the database is up
      await s.db.end();
      await pgCtlStop(pg);

      const down = await waitUntil(async () => {
        const r = await http(s.herald, '/readyz');
        return r.status === 503 ? r : null;
      }, { timeoutMs: 20000, message: '/readyz 503 after PostgreSQL stopped' });
      assert.equal(down.json.status, 'unavailable');
      assert.ok(down.json.reason.length > 0, 'a reason');
      assert.equal((await http(s.herald, '/healthz')).status, 200);
      const t0 = Date.now();
      const m = await scrape(s.herald);
      assert.ok(Date.now() - t0 < 5000, '/metrics answers without waiting for the database');
      promtoolCheck(m.text);
      assert.equal(sample(m.samples, 'herald_backlog_events', { trigger: 'items' }), 0, 'the last values are kept');

      await pg.restart();
      await waitUntil(async () => (await http(s.herald, '/readyz')).status === 200,
        { timeoutMs: 30000, message: '/readyz 200 after PostgreSQL restarted' });
      const after = await scrape(s.herald);
      assert.ok(sample(after.samples, 'herald_database_reconnects_total') >= 1, 'the reconnect is counted');
      assert.equal(await s.herald.stop(), 0);
    } finally {
      await pg.stop();
    }
  });
});

/** pg_ctl stop -m fast, keeping the data directory (pg.restart() starts it again). */
async function pgCtlStop(pg) {
  const bin = path.join(process.env.PG_BIN || '/usr/lib/postgresql/15/bin', 'pg_ctl');
  const args = ['stop', '-D', path.join(pg.dir, 'data'), '-m', 'fast', '-w', '-t', '60'];
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  assert.equal(r.status, 0, `pg_ctl stop: ${r.stdout}${r.stderr}`);
}

describe('metrics', () => {
  forBackends('/metrics passes promtool and its counters match what the receiver saw', async (t, backend) => {
    const s = await stack(cluster, {
      backend,
      sql: 'CREATE TABLE items (id int PRIMARY KEY, v text); CREATE TABLE other (id int PRIMARY KEY);',
      triggers: (r) => [
        { name: 'ok', table: 'items', operations: ['insert'], webhook: r.url('/ok'), start: 'beginning',
          retry: { max_retries: 2, interval: '100ms', backoff: 'fixed' } },
        { name: 'doomed', table: 'other', operations: ['insert'], webhook: r.url('/doomed'), start: 'beginning',
          retry: { max_retries: 1, interval: '100ms', backoff: 'fixed' } },
      ],
    });
    // ok: items 6 and 7 fail once, then succeed; doomed: always 500, so dead after one retry.
    s.receiver.respond = (req) => {
      if (req.url === '/doomed') return { status: 500, body: 'no' };
      const { id } = req.json.event.data.new;
      return id >= 6 && req.json.delivery_info.current_retry === 0 ? { status: 500, body: 'later' } : undefined;
    };
    const first = await scrape(s.herald);
    promtoolCheck(first.text);
    assert.equal(sample(first.samples, 'herald_deliveries_total', { trigger: 'ok', outcome: 'success' }), 0);

    for (let id = 1; id <= 7; id++) await s.db.query('INSERT INTO items VALUES ($1, $2)', [id, 'x']);
    for (let id = 1; id <= 2; id++) await s.db.query('INSERT INTO other VALUES ($1)', [id]);
    const at = (u) => s.receiver.requests.filter((q) => q.url === u);
    await s.receiver.waitFor(() => at('/ok').length >= 9 && at('/doomed').length >= 4, 30000, '9 requests to /ok, 4 to /doomed');

    // The receiver sees a request a moment before herald records its answer: ask until all are in.
    const final = await waitUntil(async () => {
      const m = await scrape(s.herald);
      const done = sample(m.samples, 'herald_deliveries_total', { trigger: 'ok', outcome: 'success' }) === 7 &&
        sample(m.samples, 'herald_deliveries_total', { trigger: 'doomed', outcome: 'dead' }) === 2 &&
        sample(m.samples, 'herald_dead_events', { trigger: 'doomed' }) === 2 &&
        sample(m.samples, 'herald_delayed_events', { trigger: 'ok' }) === 0;
      return done ? m : null;
    }, { timeoutMs: 30000, message: 'the metrics to show every attempt and the status gauges to catch up' });
    promtoolCheck(final.text);
    const m = final.samples;
    assert.equal(at('/ok').length, 9);
    assert.equal(at('/doomed').length, 4);
    const d = (trigger, outcome) => sample(m, 'herald_deliveries_total', { trigger, outcome });
    assert.deepEqual([d('ok', 'success'), d('ok', 'failure'), d('ok', 'dead')], [7, 2, 0]);
    assert.deepEqual([d('doomed', 'success'), d('doomed', 'failure'), d('doomed', 'dead')], [0, 2, 2]);
    assert.equal(sample(m, 'herald_events_read_total', { trigger: 'ok' }), 7);
    assert.equal(sample(m, 'herald_events_read_total', { trigger: 'doomed' }), 2);

    // Every HTTP attempt is one observation of the duration; every 2xx one of the lag.
    const dur = histogram(m, 'herald_delivery_duration_seconds', 'ok');
    assert.equal(dur.count, at('/ok').length);
    assert.ok(dur.sum >= 0 && dur.sum < 30, `duration sum ${dur.sum}`);
    assert.equal(histogram(m, 'herald_delivery_duration_seconds', 'doomed').count, at('/doomed').length);
    const lag = histogram(m, 'herald_delivery_lag_seconds', 'ok');
    assert.equal(lag.count, 7);
    assert.ok(lag.sum > 0 && lag.sum < 7 * 60, `lag sum ${lag.sum}`);
    assert.equal(histogram(m, 'herald_delivery_lag_seconds', 'doomed').count, 0);

    assert.equal(sample(m, 'herald_triggers'), 2);
    assert.equal(sample(m, 'herald_deliveries_in_flight', { trigger: 'ok' }), 0);
    assert.equal(sample(m, 'herald_backlog_events', { trigger: 'ok' }), 0);
    assert.equal(sample(m, 'herald_backlog_oldest_age_seconds', { trigger: 'ok' }), 0);
    assert.equal(sample(m, 'herald_delayed_events', { trigger: 'doomed' }), 0);
    assert.equal(sample(m, 'herald_build_info', { backend }), 1);
    assert.equal(sample(m, 'herald_database_reconnects_total'), 0);
    assert.ok(sample(m, 'herald_status_age_seconds') < 10);
    assert.ok(sample(m, 'herald_http_requests_total') >= 2);
    assert.ok(sample(m, 'herald_http_requests_in_flight') >= 1, 'the scrape itself');
    assert.equal(await s.herald.stop(), 0, 'a clean exit (the sanitizers find no leak)');
  });

  e2eTest(`${ANY}: WebSocket sessions and GraphQL subscriptions by kind`, async (t) => {
    const s = await stack(cluster, { backend: ANY, triggers: () => [] });
    const m0 = (await scrape(s.herald)).samples;
    assert.equal(sample(m0, 'herald_websocket_sessions'), 0);
    assert.equal(sample(m0, 'herald_websocket_upgrades_total', { outcome: 'accepted' }), 0);
    assert.equal(sample(m0, 'herald_websocket_upgrades_total', { outcome: 'refused' }), 0);
    assert.equal(sample(m0, 'herald_websocket_slow_closes_total'), 0);
    for (const kind of ['events_stream', 'event', 'stats']) assert.equal(sample(m0, 'herald_graphql_subscriptions', { kind }), 0);
    const wsUrl = s.herald.url('/v1/graphql').replace(/^http/, 'ws');
    // An unknown subprotocol is refused with 400.
    const refused = new WebSocket(wsUrl, ['nope']);
    await new Promise((resolve) => {
      refused.on('unexpected-response', resolve);
      refused.on('error', resolve);
    });
    const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    t.after(() => client.dispose());
    const sub = (query) => new Promise((resolve, reject) => {
      const dispose = client.subscribe({ query }, { next: () => resolve(dispose), error: reject, complete: () => {} });
    });
    const seen = (m, a, b, c) => sample(m, 'herald_graphql_subscriptions', { kind: 'events_stream' }) === a &&
      sample(m, 'herald_graphql_subscriptions', { kind: 'event' }) === b &&
      sample(m, 'herald_graphql_subscriptions', { kind: 'stats' }) === c;
    client.subscribe({ query: 'subscription { events_stream(cursor: {initial_value: {seq: 0}}, batch_size: 10) { seq } }' }, { next() {}, error() {}, complete() {} });
    client.subscribe({ query: 'subscription { events_stream(cursor: {initial_value: {seq: 0}}, batch_size: 5) { seq } }' }, { next() {}, error() {}, complete() {} });
    client.subscribe({ query: 'subscription { event(id: "00000000-0000-4000-8000-000000000000") { id } }' }, { next() {}, error() {}, complete() {} });
    const stats = await sub('subscription { stats { trigger } }');
    const m1 = await waitUntil(async () => {
      const x = await scrape(s.herald);
      return seen(x.samples, 2, 1, 1) ? x : null;
    }, { message: 'two events_stream, one event, one stats subscription' });
    promtoolCheck(m1.text);
    assert.equal(sample(m1.samples, 'herald_websocket_sessions'), 1);
    assert.equal(sample(m1.samples, 'herald_websocket_upgrades_total', { outcome: 'accepted' }), 1);
    assert.equal(sample(m1.samples, 'herald_websocket_upgrades_total', { outcome: 'refused' }), 1);
    stats();
    await waitUntil(async () => seen((await scrape(s.herald)).samples, 2, 1, 0), { message: 'the stats subscription ended' });
    await client.dispose();
    const m2 = await waitUntil(async () => {
      const x = await scrape(s.herald);
      return seen(x.samples, 0, 0, 0) && sample(x.samples, 'herald_websocket_sessions') === 0 ? x : null;
    }, { message: 'no session, no subscription' });
    promtoolCheck(m2.text);
    assert.equal(sample(m2.samples, 'herald_websocket_upgrades_total', { outcome: 'accepted' }), 1);
  });

  forBackends('the status gauges count a backlog while the receiver stalls', async (t, backend) => {
    const s = await stack(cluster, {
      backend,
      sql: 'CREATE TABLE items (id int PRIMARY KEY)',
      triggers: (r) => [{ name: 'stall', table: 'items', operations: ['insert'], webhook: r.url('/s'), start: 'beginning',
        concurrency: 1, retry: { timeout: '30s' } }],
    });
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    s.receiver.respond = async () => {
      await gate;
      return undefined;
    };
    for (let id = 1; id <= 3; id++) await s.db.query('INSERT INTO items VALUES ($1)', [id]);
    await s.receiver.waitFor(1);
    // The page of three is in flight: one request at a time, none settled, so nothing is
    // settled and the cursor has not moved; the backlog counts all three.
    const m = await waitUntil(async () => {
      const x = await scrape(s.herald);
      return sample(x.samples, 'herald_backlog_events', { trigger: 'stall' }) === 3 &&
        sample(x.samples, 'herald_backlog_oldest_age_seconds', { trigger: 'stall' }) > 0 ? x : null;
    }, { message: 'herald_backlog_events{trigger="stall"} 3 and the age of the oldest' });
    assert.equal(sample(m.samples, 'herald_deliveries_in_flight', { trigger: 'stall' }), 1);
    promtoolCheck(m.text);
    release();
    await s.receiver.waitFor(3);
    assert.equal(await s.herald.stop(), 0);
  });
});

describe('admin secret', () => {
  forBackends('with a secret, /v1/metadata and /metrics answer 401 without it; /healthz and /readyz stay open', async (t, backend) => {
    const s = await stack(cluster, { backend, triggers: noTriggers, env: { HERALD_ADMIN_SECRET: SECRET } });
    const post = (headers) => http(s.herald, '/v1/metadata', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: EXPORT });
    for (const headers of [{}, { 'x-herald-admin-secret': 'wrong' }, { 'x-hasura-admin-secret': `${SECRET}x` }, { authorization: `Bearer ${SECRET}` }]) {
      const r = await post(headers);
      assert.equal(r.status, 401, `/v1/metadata with ${JSON.stringify(headers)}: ${r.text}`);
      assert.equal(r.json.code, 'access-denied');
    }
    for (const headers of [{ 'x-herald-admin-secret': SECRET }, { 'x-hasura-admin-secret': SECRET }]) {
      const r = await post(headers);
      assert.equal(r.status, 200, r.text);
      assert.ok(Array.isArray(r.json.sources), 'export_metadata answered');
    }
    for (const headers of [{}, { 'x-herald-admin-secret': 'wrong' }, { authorization: 'Bearer wrong' }, { authorization: SECRET }]) {
      const r = await http(s.herald, '/metrics', { headers });
      assert.equal(r.status, 401, `/metrics with ${JSON.stringify(headers)}`);
      assert.equal(r.json.code, 'access-denied');
      assert.ok(!r.text.includes('herald_'), 'no metrics leak');
    }
    for (const headers of [{ 'x-herald-admin-secret': SECRET }, { 'x-hasura-admin-secret': SECRET }, { authorization: `Bearer ${SECRET}` }]) {
      promtoolCheck((await scrape(s.herald, headers)).text);
    }
    for (const p of ['/healthz', '/readyz']) assert.equal((await http(s.herald, p)).status, 200, p);
    assert.equal(await s.herald.stop(), 0);
  });

  e2eTest(`${ANY}: without a secret /v1/metadata and /metrics are open (loopback only)`, async () => {
    const s = await stack(cluster, { backend: ANY, triggers: noTriggers, env: { HERALD_ADMIN_SECRET: undefined } });
    const r = await http(s.herald, '/v1/metadata', { method: 'POST', headers: { 'content-type': 'application/json' }, body: EXPORT });
    assert.equal(r.status, 200, r.text);
    promtoolCheck((await scrape(s.herald)).text);
  });
});

describe('listen', () => {
  /** A config on a fresh database of the ANY backend, not applied (serve does not need it for these). */
  async function config(extra = {}) {
    const s = await stack(cluster, { backend: ANY, triggers: noTriggers, serve: false });
    return writeConfig({ ...s.config, ...extra });
  }

  e2eTest('a non-loopback address without an admin secret: exit 2 with the reason; with one, herald serves', async () => {
    const file = await config();
    for (const listen of ['0.0.0.0:0', '[::]:0', '*:0', '192.0.2.1:8080', 'example.com:8080']) {
      const r = await run(['serve', '-c', file], { env: { HERALD_LISTEN: listen, HERALD_ADMIN_SECRET: undefined }, timeoutMs: 20000 });
      assert.equal(r.code, 2, `${listen}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`refusing to listen on ${listen.replace(/[[\]*.]/g, '\\$&')} without an admin secret: set HERALD_ADMIN_SECRET`));
    }
    const h = await serveTracked(file, { env: { HERALD_LISTEN: '0.0.0.0:0', HERALD_ADMIN_SECRET: SECRET } });
    assert.match(h.listen, /^0\.0\.0\.0:\d+$/);
    const port = h.listen.split(':')[1];
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(await h.stop(), 0);
  });

  e2eTest('loopback addresses need no secret: 127.x.y.z and localhost', async () => {
    const file = await config();
    for (const listen of ['127.0.0.2:0', 'localhost:0']) {
      const h = await serveTracked(file, { env: { HERALD_LISTEN: listen, HERALD_ADMIN_SECRET: undefined } });
      const port = h.listen.split(':').pop();
      const host = listen.startsWith('127.0.0.2') ? '127.0.0.2' : '127.0.0.1';
      assert.equal((await fetch(`http://${host}:${port}/healthz`)).status, 200, listen);
      assert.equal(await h.stop(), 0);
    }
  });

  e2eTest('a port in use: exit 1 with a clear message', async () => {
    const file = await config();
    const busy = net.createServer();
    await new Promise((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = busy.address();
      const r = await run(['serve', '-c', file], { env: { HERALD_LISTEN: `127.0.0.1:${port}` }, timeoutMs: 20000 });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`herald: serve: listen 127\\.0\\.0\\.1:${port}: Address already in use`));
    } finally {
      busy.close();
    }
  });

  e2eTest('listen: off runs no HTTP server (and needs no secret)', async () => {
    const file = await config({ listen: 'off' });
    const h = await serveTracked(file, { env: { HERALD_ADMIN_SECRET: undefined } });
    assert.equal(h.listen, 'off');
    assert.equal(await h.stop(), 0);
  });
});

describe('request limits', () => {
  e2eTest(`${ANY}: a body over 1 MiB gets 413; headers or a URL over 8 KiB close the connection; herald keeps serving`, async () => {
    const s = await stack(cluster, { backend: ANY, triggers: noTriggers });
    const big = await http(s.herald, '/v1/metadata', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(1024 * 1024 + 1) });
    assert.equal(big.status, 413, big.text);
    const fits = JSON.stringify({ type: 'export_metadata', args: {}, pad: 'x'.repeat(900 * 1024) });
    const ok = await http(s.herald, '/v1/metadata', { method: 'POST', headers: { 'content-type': 'application/json' }, body: fits });
    assert.notEqual(ok.status, 413, 'a body under the cap is read');
    await assert.rejects(fetch(s.herald.url('/healthz'), { headers: { 'x-big': 'a'.repeat(10 * 1024) } }), 'oversized headers');
    await assert.rejects(fetch(s.herald.url(`/healthz?${'a'.repeat(10 * 1024)}`)), 'an oversized URL');
    assert.equal((await http(s.herald, '/healthz')).status, 200);
  });

  e2eTest(`${ANY}: slowloris clients that never finish their headers are cut off after the 10 s request timeout; others are served meanwhile`, async () => {
    const s = await stack(cluster, { backend: ANY, triggers: noTriggers });
    const port = Number(s.herald.listen.split(':')[1]);
    const t0 = Date.now();
    const slow = Array.from({ length: 8 }, () => {
      const c = { closedAt: null, sock: net.connect(port, '127.0.0.1') };
      c.sock.on('connect', () => c.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
      c.sock.on('error', () => {});
      c.sock.on('close', () => (c.closedAt = Date.now() - t0));
      // One more header line every second: the request never completes.
      c.timer = setInterval(() => !c.sock.destroyed && c.sock.write('X-Drip: 1\r\n'), 1000);
      return c;
    });
    try {
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        const r = await http(s.herald, '/healthz');
        assert.equal(r.status, 200);
        assert.ok(Date.now() - started < 2000, 'served while the slow clients hang on');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      assert.ok(slow.every((c) => c.closedAt === null), 'the slow clients are still connected after ~3 s');
      await waitUntil(() => slow.every((c) => c.closedAt !== null), { timeoutMs: 30000, message: 'herald to close every slow client' });
      for (const c of slow) assert.ok(c.closedAt >= 9000, `closed after ${c.closedAt} ms, not before the timeout`);
      assert.equal((await http(s.herald, '/healthz')).status, 200);
    } finally {
      for (const c of slow) {
        clearInterval(c.timer);
        c.sock.destroy();
      }
    }
  });
});

describe('shutdown', () => {
  forBackends('SIGTERM with idle, half-sent and kept-alive API connections open: exit 0 at once', async (t, backend) => {
    const s = await stack(cluster, { backend, triggers: noTriggers });
    const port = Number(s.herald.listen.split(':')[1]);
    const socks = [];
    const open = (text) => new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        if (text) c.write(text);
        resolve(c);
      });
      c.on('error', () => {});
      socks.push(c);
    });
    await open(null); // idle
    await open('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // headers half sent
    await open('POST /v1/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"type"'); // body half sent
    const kept = await open('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'); // kept alive after its answer
    await new Promise((resolve) => kept.once('data', resolve));
    const t0 = Date.now();
    assert.equal(await s.herald.stop('SIGTERM'), 0, s.herald.tail());
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
    assert.match(s.herald.stderr, /msg=stopped/);
    for (const c of socks) c.destroy();
  });
});
