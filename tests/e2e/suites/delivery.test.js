// What arrives at the webhook: exact Hasura-compatible payloads for INSERT/UPDATE/DELETE and
// emitted events, headers, signatures, session variables; what must not arrive (rolled-back
// writes, filtered updates, non-matching event types); and no event lost to commit order.
// Every case runs on PostgreSQL and on SQLite except those about PostgreSQL itself (session
// variables, snapshots under concurrent commits).
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import {
  attemptsOf, emit, emitSql, forBackends, insertSeries, logRows, onBackend, serveTracked, stack, transaction,
  useCluster, waitSettled,
} from '../lib/fixture.js';
import { heraldVersion, run, writeConfig } from '../lib/herald.js';
import { RFC3339_RE, UUID_RE, parallel } from '../lib/util.js';

const cluster = useCluster();

const ORDERS = {
  postgres: `CREATE TABLE orders (
    id int PRIMARY KEY, status text NOT NULL, note text, total numeric(10,2), placed_at timestamptz,
    tags text[], meta jsonb)`,
  // SQLite: a declared type containing JSON makes capture embed the column's JSON text as JSON.
  sqlite: `CREATE TABLE orders (
    id int PRIMARY KEY, status text NOT NULL, note text, total numeric(10,2), placed_at text,
    tags json, meta json)`,
};

const rowId = (q) => (q.json?.event?.data?.new ?? q.json?.event?.data?.old)?.id;

function assertEnvelope(body, { trigger, table, op, maxRetries, currentRetry = 0 }) {
  assert.deepEqual(Object.keys(body).sort(), ['created_at', 'delivery_info', 'event', 'id', 'table', 'trigger']);
  assert.match(body.id, UUID_RE);
  assert.match(body.created_at, RFC3339_RE);
  assert.deepEqual(body.trigger, { name: trigger });
  assert.deepEqual(body.table, table);
  assert.equal(body.event.op, op);
  assert.equal(body.event.trace_context, null);
  assert.deepEqual(body.delivery_info, { max_retries: maxRetries, current_retry: currentRetry });
}

forBackends('INSERT, UPDATE, DELETE: exact payloads, headers, {{VAR}} expansion, log rows', async (t, backend) => {
  const version = await heraldVersion();
  const s = await stack(cluster, {
    backend,
    sql: ORDERS,
    env: { ORDERS_KEY: 'key-123', HOOK_PATH: 'orders-hook' },
    triggers: (r) => [{
      name: 'order_events',
      table: 'public.orders',
      operations: ['insert', 'update', 'delete'],
      webhook: r.url('/{{HOOK_PATH}}'),
      headers: { 'X-Api-Key': '{{ORDERS_KEY}}', 'X-Static': 'plain value' },
      retry: { max_retries: 3, interval: '1s' },
      start: 'beginning',
    }],
  });
  const r = s.receiver;
  const row = {
    id: 1, status: 'new', note: null, total: 12.5, placed_at: '2024-01-02T03:04:05Z', tags: ['a', 'b'], meta: { k: 1, s: 'x' },
  };
  await s.db.query(
    'INSERT INTO orders (id, status, note, total, placed_at, tags, meta) VALUES (1, $1, NULL, 12.50, $2, $3, $4)',
    ['new', row.placed_at, row.tags, row.meta],
  );
  await r.waitFor(1);
  await s.db.query("UPDATE orders SET status = 'paid', note = 'n1' WHERE id = 1");
  await r.waitFor(2);
  await s.db.query('DELETE FROM orders WHERE id = 1');
  await r.waitFor(3);

  const log = await logRows(s.db, 'public.orders');
  assert.deepEqual(log.map((l) => l.op), ['INSERT', 'UPDATE', 'DELETE']);

  const normalise = (data) => data && { ...data, placed_at: data.placed_at && new Date(data.placed_at).toISOString() };
  const iso = new Date(row.placed_at).toISOString();
  const expected = [
    { op: 'INSERT', old: null, new: { ...row, placed_at: iso } },
    { op: 'UPDATE', old: { ...row, placed_at: iso }, new: { ...row, status: 'paid', note: 'n1', placed_at: iso } },
    { op: 'DELETE', old: { ...row, status: 'paid', note: 'n1', placed_at: iso }, new: null },
  ];
  for (let i = 0; i < 3; i++) {
    const q = r.requests[i];
    const body = q.json;
    assert.ok(body, `request ${i + 1} has a JSON body: ${q.body}`);
    assertEnvelope(body, { trigger: 'order_events', table: { schema: 'public', name: 'orders' }, op: expected[i].op, maxRetries: 3 });
    assert.deepEqual(Object.keys(body.event).sort(), ['data', 'op', 'session_variables', 'trace_context']);
    assert.deepEqual(Object.keys(body.event.data).sort(), ['new', 'old']);
    assert.deepEqual(normalise(body.event.data.old), expected[i].old);
    assert.deepEqual(normalise(body.event.data.new), expected[i].new);
    assert.equal(typeof (body.event.data.new ?? body.event.data.old).placed_at, 'string', 'timestamps arrive as strings');
    assert.equal(body.event.session_variables, null);
    // The body's id is the log's id; created_at is the log's time.
    assert.equal(body.id, log[i].id);
    assert.ok(Math.abs(Date.parse(body.created_at) - log[i].at.getTime()) <= 1,
      `created_at ${body.created_at} vs herald.log.at ${log[i].at.toISOString()}`);

    assert.equal(q.method, 'POST');
    assert.equal(q.url, '/orders-hook');
    assert.match(q.headers['content-type'], /^application\/json\b/);
    assert.equal(q.headers['user-agent'], `herald/${version}`);
    assert.equal(q.headers['webhook-id'], body.id);
    assert.match(q.headers['webhook-timestamp'], /^\d+$/);
    assert.ok(Math.abs(Number(q.headers['webhook-timestamp']) - Date.now() / 1000) < 300, 'webhook-timestamp is now, in seconds');
    assert.equal(q.headers['webhook-signature'], undefined, 'no signature without a secret');
    assert.equal(q.headers['x-api-key'], 'key-123');
    assert.equal(q.headers['x-static'], 'plain value');
  }
  assert.equal(r.requests.length, 3);
  for (const l of log) await waitSettled(s.db, l.id);
  const attempts = await attemptsOf(s.db, log[0].id);
  assert.deepEqual(attempts.map((a) => [a.trigger, a.attempt, a.status]), [['order_events', 1, 200]]);
  assert.match(attempts[0].response, /"ok":\s*true/);
  assert.equal(typeof attempts[0].latency_ms, 'number');
});

forBackends('atomicity: rolled-back writes (whole transaction or savepoint) produce no event', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: ORDERS,
    triggers: (r) => [{ name: 'ins', table: 'public.orders', operations: ['insert'], webhook: r.url('/ins'), start: 'beginning' }],
  });
  await transaction(s.db, [
    'BEGIN',
    "INSERT INTO orders (id, status) VALUES (100, 'rolled back')",
    'ROLLBACK',
    'BEGIN',
    "INSERT INTO orders (id, status) VALUES (101, 'kept')",
    'SAVEPOINT sp',
    "INSERT INTO orders (id, status) VALUES (102, 'rolled back to savepoint')",
    'ROLLBACK TO SAVEPOINT sp',
    'COMMIT',
    "INSERT INTO orders (id, status) VALUES (103, 'marker')",
  ]);
  await s.receiver.waitFor((reqs) => reqs.some((q) => rowId(q) === 103));
  const log = await logRows(s.db, 'public.orders');
  assert.deepEqual(log.map((l) => l.new.id), [101, 103], 'herald.log holds only committed rows');
  await waitSettled(s.db, log[1].id);
  assert.deepEqual(s.receiver.requests.map(rowId).sort(), [101, 103]);
});

forBackends('update column filter: only a change of a listed column is delivered', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: `${ORDERS[backend]}; INSERT INTO orders (id, status, note) VALUES (1, 'new', 'a')`,
    triggers: (r) => [{
      name: 'status_changes', table: 'public.orders', operations: ['update'], columns: ['status'],
      webhook: r.url('/status'), start: 'beginning',
    }],
  });
  await s.db.query("INSERT INTO orders (id, status) VALUES (2, 'new')"); // insert: not an operation of the trigger
  await s.db.query("UPDATE orders SET note = 'b' WHERE id = 1"); // unlisted column
  await s.db.query('UPDATE orders SET status = status, note = $1 WHERE id = 1', ['c']); // listed column, unchanged
  await s.db.query("UPDATE orders SET status = 'paid' WHERE id = 1"); // delivered: the marker
  await s.receiver.waitFor(1);
  const marker = (await logRows(s.db, 'public.orders')).find((l) => l.op === 'UPDATE' && l.new.status === 'paid');
  assert.ok(marker, 'the status change is in herald.log');
  await waitSettled(s.db, marker.id);
  assert.equal(s.receiver.requests.length, 1);
  const body = s.receiver.requests[0].json;
  assert.equal(body.id, marker.id);
  assert.equal(body.event.op, 'UPDATE');
  assert.deepEqual(body.event.data.old, { id: 1, status: 'new', note: 'c', total: null, placed_at: null, tags: null, meta: null });
  assert.deepEqual(body.event.data.new, { id: 1, status: 'paid', note: 'c', total: null, placed_at: null, tags: null, meta: null });
  const { rows } = await s.db.query(backend === 'sqlite'
    ? 'SELECT DISTINCT event_id AS id FROM herald_attempts'
    : 'SELECT DISTINCT event_id::text AS id FROM herald.attempts');
  assert.deepEqual(rows, [{ id: marker.id }], 'no attempt for filtered events');
});

forBackends('payload column selection keeps only the listed columns in old and new', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: ORDERS,
    triggers: (r) => [{
      name: 'slim', table: 'public.orders', operations: ['insert', 'update', 'delete'], payload: ['id', 'status'],
      webhook: r.url('/slim'), start: 'beginning',
    }],
  });
  await s.db.query("INSERT INTO orders (id, status, note, total) VALUES (5, 'new', 'secret', 9.99)");
  await s.receiver.waitFor(1);
  await s.db.query("UPDATE orders SET status = 'paid', note = 'other' WHERE id = 5");
  await s.receiver.waitFor(2);
  await s.db.query('DELETE FROM orders WHERE id = 5');
  await s.receiver.waitFor(3);
  const data = s.receiver.requests.map((q) => q.json.event.data);
  assert.deepEqual(data, [
    { old: null, new: { id: 5, status: 'new' } },
    { old: { id: 5, status: 'new' }, new: { id: 5, status: 'paid' } },
    { old: { id: 5, status: 'paid' }, new: null },
  ]);
  // The log itself keeps whole rows: selection happens when reading.
  const log = await logRows(s.db, 'public.orders');
  assert.equal(log[0].new.note, 'secret');
});

forBackends('emit: exact type and prefix* patterns delivered; other types and rolled-back emits not', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    triggers: (r) => [{ name: 'custom', events: ['order.placed', 'invoice.*'], webhook: r.url('/custom'), start: 'beginning', retry: { max_retries: 1 } }],
  });
  await emit(s.db, 'order.placed', { a: 1 });
  await emit(s.db, 'invoice.paid', { n: 2 });
  await emit(s.db, 'order.cancelled', { no: 1 });
  await emit(s.db, 'invoice', { no: 2 });
  await emit(s.db, 'invoicex.paid', { no: 3 });
  await transaction(s.db, ['BEGIN', [emitSql(s.db), ['order.placed', '{"no":5}']], 'ROLLBACK']);
  await emit(s.db, 'order.placed', { marker: true });

  await s.receiver.waitFor((reqs) => reqs.some((q) => q.json?.event?.data?.new?.marker === true));
  const marker = (await logRows(s.db, 'order.placed')).find((l) => l.new.marker === true);
  assert.ok(marker, 'the marker is in herald.log with source = its type');
  await waitSettled(s.db, marker.id);

  const got = s.receiver.requests.map((q) => q.json);
  assert.deepEqual(got.map((b) => [b.event.type, b.event.data.new]).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))),
    [['invoice.paid', { n: 2 }], ['order.placed', { a: 1 }], ['order.placed', { marker: true }]]);
  const first = got.find((b) => b.event.data.new.a === 1);
  assertEnvelope(first, { trigger: 'custom', table: null, op: 'EMIT', maxRetries: 1 });
  assert.deepEqual(first.event, {
    op: 'EMIT', type: 'order.placed', data: { old: null, new: { a: 1 } }, session_variables: null, trace_context: null,
  });
  const placed = await logRows(s.db, 'order.placed');
  assert.deepEqual(placed.map((l) => l.new), [{ a: 1 }, { marker: true }], 'the rolled-back emit left no log row');
  assert.equal(first.id, placed[0].id);
});

onBackend('postgres', 'session variables: herald.session, hasura.user fallback, none → null', async () => {
  const s = await stack(cluster, {
    sql: ORDERS,
    triggers: (r) => [{ name: 'sess', table: 'public.orders', operations: ['insert'], webhook: r.url('/s'), start: 'beginning' }],
  });
  const c = await s.db.connect();
  try {
    const tx = async (id, settings) => {
      await c.query('BEGIN');
      for (const [k, v] of Object.entries(settings)) await c.query('SELECT set_config($1, $2, true)', [k, v]);
      await c.query("INSERT INTO orders (id, status) VALUES ($1, 'x')", [id]);
      await c.query('COMMIT');
    };
    await tx(1, { 'herald.session': '{"x-hasura-user-id":"7","x-hasura-role":"user"}' });
    await tx(2, { 'hasura.user': '{"x-hasura-user-id":"8"}' });
    await tx(3, { 'herald.session': '{"x-hasura-user-id":"9"}', 'hasura.user': '{"x-hasura-user-id":"10"}' });
    // Same connection, nothing set: the settings were transaction-local (they now read as '').
    await tx(4, {});
  } finally {
    c.release();
  }
  const fresh = cluster.pg.client(s.dbName);
  await fresh.connect();
  await fresh.query("INSERT INTO orders (id, status) VALUES (5, 'x')");
  await fresh.end();

  await s.receiver.waitFor(5);
  const byId = Object.fromEntries(s.receiver.requests.map((q) => [rowId(q), q.json.event.session_variables]));
  assert.deepEqual(byId, {
    1: { 'x-hasura-user-id': '7', 'x-hasura-role': 'user' },
    2: { 'x-hasura-user-id': '8' },
    3: { 'x-hasura-user-id': '9' },
    4: null,
    5: null,
  });
  const log = await logRows(s.db, 'public.orders');
  assert.deepEqual(log.map((l) => l.session), [byId[1], byId[2], byId[3], null, null]);
});

/** Runs fn(client) inside BEGIN … COMMIT on one connection of db. */
async function inTx(db, fn) {
  const c = await db.connect();
  try {
    await c.query('BEGIN');
    await fn(c);
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

onBackend('postgres', 'a session setting that is not JSON reaches the webhook as a JSON string', async () => {
  const s = await stack(cluster, {
    sql: ORDERS,
    triggers: (r) => [{ name: 'sess_text', table: 'public.orders', operations: ['insert'], webhook: r.url('/s'), start: 'beginning' }],
  });
  await inTx(s.db, async (c) => {
    await c.query("SELECT set_config('herald.session', 'admin {not json', true)");
    await c.query("INSERT INTO orders (id, status) VALUES (1, 'x')");
  });
  await inTx(s.db, async (c) => {
    await c.query("SELECT set_config('hasura.user', '\"just a string\"', true)");
    await c.query("INSERT INTO orders (id, status) VALUES (2, 'x')");
  });
  await s.receiver.waitFor(2);
  const byId = Object.fromEntries(s.receiver.requests.map((q) => [rowId(q), q.json.event.session_variables]));
  assert.deepEqual(byId, { 1: 'admin {not json', 2: 'just a string' });
  const log = await logRows(s.db, 'public.orders');
  assert.deepEqual(log.map((l) => l.session), ['admin {not json', 'just a string']);
});

// Schema 3 turned herald.log's row images into json and the session into text. A database
// captured under schema 2 (jsonb everywhere, the to_jsonb capture functions) migrates on apply,
// and the events captured before read back and deliver exactly as they would have.
onBackend('postgres', 'schema 2 → 4 on apply: log column types change, the leases table, events captured before deliver the same', async () => {
  const s = await stack(cluster, {
    sql: ORDERS,
    serve: false,
    // Schema 2 had only the PL/pgSQL capture functions, which this test puts back.
    config: { capture: 'plpgsql' },
    triggers: (r) => [{ name: 'mig', table: 'public.orders', operations: ['insert', 'update', 'delete'], webhook: r.url('/m'), start: 'beginning' }],
  });
  // Back to schema 2: its column types and its capture functions (migration 1's text), and no
  // table of migration 4.
  await s.db.query(`
    DROP TABLE herald.leases;
    ALTER TABLE herald.log ALTER old TYPE jsonb USING old::jsonb, ALTER new TYPE jsonb USING new::jsonb,
      ALTER session TYPE jsonb USING session::jsonb;
    CREATE OR REPLACE FUNCTION herald.capture_row() RETURNS trigger LANGUAGE plpgsql AS $f$
     BEGIN
      IF TG_OP = 'UPDATE' THEN
       INSERT INTO herald.log (source, op, old, new, session)
       VALUES (TG_ARGV[0], 'UPDATE', to_jsonb(OLD), to_jsonb(NEW), herald.session());
      ELSIF TG_OP = 'INSERT' THEN
       INSERT INTO herald.log (source, op, new, session)
       VALUES (TG_ARGV[0], 'INSERT', to_jsonb(NEW), herald.session());
      ELSE
       INSERT INTO herald.log (source, op, old, session)
       VALUES (TG_ARGV[0], 'DELETE', to_jsonb(OLD), herald.session());
      END IF;
      RETURN NULL;
     END $f$;
    CREATE OR REPLACE FUNCTION herald.capture_insert() RETURNS trigger LANGUAGE plpgsql AS $f$
    #variable_conflict use_variable
     DECLARE herald_session_ jsonb := herald.session();
     BEGIN
      INSERT INTO herald.log (source, op, new, session)
      SELECT TG_ARGV[0], 'INSERT', to_jsonb(r.*), herald_session_ FROM herald_new r;
      RETURN NULL;
     END $f$;
    CREATE OR REPLACE FUNCTION herald.capture_delete() RETURNS trigger LANGUAGE plpgsql AS $f$
    #variable_conflict use_variable
     DECLARE herald_session_ jsonb := herald.session();
     BEGIN
      INSERT INTO herald.log (source, op, old, session)
      SELECT TG_ARGV[0], 'DELETE', to_jsonb(r.*), herald_session_ FROM herald_old r;
      RETURN NULL;
     END $f$;
    UPDATE herald.meta SET value = '2' WHERE key = 'schema_version';`);
  const types = async () => (await s.db.query(
    `SELECT column_name, data_type FROM information_schema.columns
      WHERE table_schema = 'herald' AND table_name = 'log' AND column_name IN ('old', 'new', 'session')
      ORDER BY column_name`)).rows.map((r) => `${r.column_name} ${r.data_type}`);
  assert.deepEqual(await types(), ['new jsonb', 'old jsonb', 'session jsonb']);
  const capture = async (n, session) => inTx(s.db, async (c) => {
    if (session) await c.query("SELECT set_config('herald.session', $1, true)", [session]);
    await c.query(`INSERT INTO orders (id, status, total, tags, meta) VALUES (${n}, 'new', 12.50, '{a,b}', '{"k": [1, 2.0]}')`);
    await c.query(`UPDATE orders SET status = 'paid' WHERE id = ${n}`);
    if (n % 2) await c.query(`DELETE FROM orders WHERE id = ${n}`);
  });
  await capture(1, '{"x-hasura-role": "user", "x-hasura-user-id": "7"}');
  await capture(2, 'admin {not json');
  await capture(3, null);
  const before = await logRows(s.db, 'public.orders');
  assert.equal(before.length, 8);

  const r = await run(['apply', s.file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /migrated from version 2 to 4/);
  assert.equal((await s.db.query("SELECT to_regclass('herald.leases')::text AS t")).rows[0].t, 'herald.leases');
  assert.deepEqual(await types(), ['new json', 'old json', 'session text']);
  const after = await logRows(s.db, 'public.orders');
  assert.deepEqual(after, before);
  assert.deepEqual(after.map((l) => l.session), [
    ...Array(3).fill({ 'x-hasura-role': 'user', 'x-hasura-user-id': '7' }), ...Array(2).fill('admin {not json'), null, null, null]);

  // The same statements under schema 3's capture functions log the same rows.
  await capture(11, '{"x-hasura-role": "user", "x-hasura-user-id": "7"}');
  await capture(12, 'admin {not json');
  await capture(13, null);
  await s.serve();
  await s.receiver.waitFor(16);
  const key = (q) => `${q.json.event.op} ${rowId(q) % 10}`;
  const shape = (q) => ({ op: q.json.event.op, data: q.json.event.data, session: q.json.event.session_variables });
  const byKey = (ids) => Object.fromEntries(s.receiver.requests.filter((q) => ids.includes(rowId(q))).map((q) => [key(q), shape(q)]));
  const old = byKey([1, 2, 3]);
  const fresh = byKey([11, 12, 13]);
  assert.equal(Object.keys(old).length, 8);
  for (const [k, v] of Object.entries(old)) {
    const f = fresh[k];
    assert.ok(f, k);
    const strip = (d) => d && { ...d, id: d.id % 10 };
    assert.deepEqual({ ...f, data: { old: strip(f.data.old), new: strip(f.data.new) } },
      { ...v, data: { old: strip(v.data.old), new: strip(v.data.new) } }, k);
  }
  assert.deepEqual(old['INSERT 1'].data.new, { id: 1, status: 'new', note: null, total: 12.5, placed_at: null, tags: ['a', 'b'], meta: { k: [1, 2.0] } });
  assert.deepEqual(old['INSERT 2'].session, 'admin {not json');
  assert.equal(old['INSERT 3'].session, null);
});

forBackends('Standard Webhooks signature verifies with the standardwebhooks client; tampering fails', async (t, backend) => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const s = await stack(cluster, {
    backend,
    sql: ORDERS,
    triggers: (r) => [{ name: 'signed', table: 'public.orders', operations: ['insert'], webhook: r.url('/signed'), secret, start: 'beginning' }],
  });
  await s.db.query("INSERT INTO orders (id, status, note) VALUES (1, 'new', 'ünïcødé ✓')");
  await s.receiver.waitFor(1);
  const q = s.receiver.requests[0];
  assert.match(q.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*( v1,[A-Za-z0-9+/]+=*)*$/);
  const wh = new Webhook(secret);
  const verified = wh.verify(q.body, q.headers);
  assert.deepEqual(verified, q.json);
  assert.equal(verified.event.data.new.note, 'ünïcødé ✓');
  assert.throws(() => wh.verify(q.body.replace('"new"', '"NEW"'), q.headers));
  assert.throws(() => wh.verify(q.body, { ...q.headers, 'webhook-id': 'msg_other' }));
  assert.throws(() => new Webhook('whsec_' + Buffer.from('another key entirely').toString('base64')).verify(q.body, q.headers));
});

forBackends('start: now delivers only events logged after apply; start: beginning replays the log', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: ORDERS,
    serve: false,
    triggers: (r) => [{ name: 'from_start', table: 'public.orders', operations: ['insert'], webhook: r.url('/a'), start: 'beginning' }],
  });
  await s.db.query("INSERT INTO orders (id, status) VALUES (1, 'before')"); // logged; no serve yet
  const file = writeConfig({
    ...s.config,
    triggers: [
      ...s.config.triggers,
      { name: 'from_now', table: 'public.orders', operations: ['insert'], webhook: s.receiver.url('/b'), start: 'now' },
      { name: 'late_beginning', table: 'public.orders', operations: ['insert'], webhook: s.receiver.url('/c'), start: 'beginning' },
    ],
  });
  const r = await run(['apply', file]);
  assert.equal(r.code, 0, r.stderr);
  await s.db.query("INSERT INTO orders (id, status) VALUES (2, 'after')"); // after the cursors exist, before serve
  await serveTracked(file);
  await s.receiver.waitFor((reqs) => reqs.filter((q) => q.url === '/a').length >= 2 && reqs.filter((q) => q.url === '/c').length >= 2
    && reqs.some((q) => q.url === '/b'));
  const log = await logRows(s.db, 'public.orders');
  for (const l of log) await waitSettled(s.db, l.id, { trigger: 'late_beginning' });
  await waitSettled(s.db, log[1].id, { trigger: 'from_now' });
  const ids = (path) => s.receiver.requests.filter((q) => q.url === path).map(rowId).sort();
  assert.deepEqual(ids('/a'), [1, 2]);
  assert.deepEqual(ids('/b'), [2]);
  assert.deepEqual(ids('/c'), [1, 2]);
});

onBackend('postgres', 'commit order: the transaction holding the smaller seq commits last; both delivered', async () => {
  const s = await stack(cluster, {
    sql: ORDERS,
    triggers: (r) => [{ name: 'ord', table: 'public.orders', operations: ['insert'], webhook: r.url('/o'), start: 'beginning' }],
  });
  const a = await s.db.connect();
  const b = await s.db.connect();
  try {
    await a.query('BEGIN');
    await a.query("INSERT INTO orders (id, status) VALUES (1, 'A: smaller seq, commits last')");
    await b.query('BEGIN');
    await b.query("INSERT INTO orders (id, status) VALUES (2, 'B: larger seq, commits first')");
    await b.query('COMMIT');
    // herald has read past B before A commits.
    await s.receiver.waitFor((reqs) => reqs.some((q) => rowId(q) === 2));
    const bId = (await logRows(s.db, 'public.orders'))[0].id;
    await waitSettled(s.db, bId);
    await a.query('COMMIT');
  } finally {
    a.release();
    b.release();
  }
  await s.receiver.waitFor((reqs) => reqs.some((q) => rowId(q) === 1));
  const log = await logRows(s.db, 'public.orders');
  assert.deepEqual(log.map((l) => l.new.id), [1, 2], 'A took the smaller seq');
  assert.deepEqual(s.receiver.requests.map(rowId), [2, 1]);
});

onBackend('postgres', 'commit order: a transaction held open across 1,000 committed ones is delivered when it commits', async () => {
  const s = await stack(cluster, {
    sql: 'CREATE TABLE items (id int PRIMARY KEY, v text)',
    triggers: (r) => [{ name: 'items', table: 'public.items', operations: ['insert'], webhook: r.url('/i'), start: 'beginning' }],
  });
  const held = await s.db.connect();
  try {
    await held.query('BEGIN');
    await held.query("INSERT INTO items VALUES (0, 'held')");
    await parallel(1000, 4, (i) => s.db.query('INSERT INTO items VALUES ($1, $2)', [i + 1, 'x']));
    const seen = () => new Set(s.receiver.requests.map(rowId));
    await s.receiver.waitFor(() => seen().size >= 1000, 90000, '1,000 committed rows delivered');
    assert.ok(!seen().has(0), 'the open transaction was not delivered');
    await held.query('COMMIT');
  } finally {
    held.release();
  }
  await s.receiver.waitFor((reqs) => reqs.some((q) => rowId(q) === 0), 30000, 'the late commit delivered');
  const ids = new Set(s.receiver.requests.map(rowId));
  assert.equal(ids.size, 1001);
  for (let i = 0; i <= 1000; i++) assert.ok(ids.has(i), `row ${i} delivered`);
  const { rows } = await s.db.query("SELECT min(seq) = (SELECT seq FROM herald.log WHERE new->>'id' = '0') AS first FROM herald.log");
  assert.equal(rows[0].first, true, 'the held transaction took the smallest seq');
});

forBackends('concurrency caps the requests a trigger has in flight', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: 'CREATE TABLE items (id int PRIMARY KEY)',
    triggers: (r) => [{ name: 'capped', table: 'public.items', operations: ['insert'], webhook: r.url('/c'), concurrency: 2, start: 'beginning' }],
  });
  s.receiver.respond = () => ({ delayMs: 150 });
  await insertSeries(s.db, 'items', 'id', 1, 8);
  await s.receiver.waitFor((reqs) => reqs.length >= 8 && reqs.every((q) => q.finished), 30000);
  const reqs = s.receiver.requests;
  // How many requests had arrived and not yet been answered when each request arrived.
  const overlap = reqs.map((q) => reqs.filter((o) => o.t <= q.t && (o.finishedT === undefined || q.t < o.finishedT)).length);
  assert.ok(Math.max(...overlap) <= 2, `at most 2 requests in flight, saw ${Math.max(...overlap)}`);
  assert.deepEqual(reqs.map(rowId).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
});
