// Native capture (pgext/herald_capture.c, herald.capture_native, key `capture`) on PostgreSQL:
//
// - parity: the same statements against a table captured with `capture: plpgsql` and one captured
//   with `capture: native` (two databases of one cluster) write the same log rows, text for text:
//   every column type an application is likely to have (arrays, json and jsonb, bytea, a domain,
//   an enum, a generated column, a dropped column, a fast-default column, a ~1 MB TOASTed value),
//   single-row, multi-row, INSERT … SELECT and upsert statements, updates and deletes of several
//   rows, each way of setting (or not) the session, savepoints and rolled-back transactions; a
//   row's xid and at are its writing transaction's, its id a unique v4 UUID;
// - delivery across mode switches (plpgsql → native → plpgsql): the triggers of each mode, the
//   lines apply prints, and every event delivered once, in order, with its payload;
// - the general path: while herald.log is not exactly herald's (an expression or partial index, a
//   deferrable unique constraint, an added column, a trigger, a CHECK constraint, row security, a
//   NOT NULL on session — a write without one fails as with PL/pgSQL —, a rule on herald.log)
//   captured rows go through the executor and stay correct, and every index of the log agrees
//   with the heap (amcheck's bt_index_check with heapallindexed), after direct writes (bulk,
//   concurrent, with more plain b-tree indexes) as well;
// - errors: no herald.log means the application's write fails, and nothing of it commits;
// - mode selection: auto without the module falls back to PL/pgSQL and says why, native without
//   it fails, changes nothing and prints nothing on stdout; the metadata API's edits follow the
//   mode apply recorded;
// - partitioned tables, both modes: row-level triggers on the parent (the partitions' clones left
//   to PostgreSQL), an UPDATE moving a row between partitions logged as DELETE + INSERT, each
//   event delivered once; statement-level capture installed the old way is switched to row-level.
//
// The module comes from HERALD_PGEXT (`make test` sets it): the tests that need it fail, and say
// so, when it is not set.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe } from 'node:test';
import { freshDb, onBackend, receiverTracked, serveTracked, stack, useCluster, waitSettled } from '../lib/fixture.js';
import { run, writeConfig } from '../lib/herald.js';
import { PGEXT, startPg, withClient } from '../lib/pg.js';
import { UUID_RE, parallel } from '../lib/util.js';

const cluster = useCluster();

const lines = (s) => s.split('\n').map((l) => l.trimEnd()).filter(Boolean);
const UUID_V4_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const OPS = ['insert', 'update', 'delete'];
const NO_ENV_DB = { HERALD_DATABASE_URL: undefined };

/** Fails (never skips) a test that needs herald's module when HERALD_PGEXT does not name it. */
function requireModule() {
  assert.ok(PGEXT, 'HERALD_PGEXT is required: these tests need herald\'s native capture module; set ' +
    'HERALD_PGEXT to the built build/pgext/herald_capture.so (make test does)');
  assert.ok(fs.existsSync(PGEXT), `HERALD_PGEXT is required to name the built module, but ${PGEXT} does not exist`);
}

/** A trigger on table with every row operation; the webhook is never called unless served. */
function trig(name, table, webhook = 'http://127.0.0.1:9/unused', extra = {}) {
  return { name, table, operations: OPS, webhook, start: 'beginning', ...extra };
}

/** `herald apply` of { database: url, capture, triggers }: the result, its stdout lines, the file. */
async function apply(url, capture, triggers, { expectOk = true } = {}) {
  const file = writeConfig({ database: url, log_level: 'info', shutdown_grace: '10s', capture, triggers });
  const r = await run(['apply', file], { env: NO_ENV_DB });
  if (expectOk) {
    assert.equal(r.code, 0, `herald apply (capture: ${capture}) failed:\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { ...r, out: lines(r.stdout), file };
}

/** The capture triggers on table: name, function, and whether row-level (tgtype bit 0). */
async function captureTriggers(db, table) {
  const { rows } = await db.query(
    `SELECT tgname, tgfoid::regproc::text AS fn, (tgtype & 1) = 1 AS row_level, tgenabled
       FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE 'herald_capture_%' ORDER BY tgname`,
    [table]);
  return rows.map((r) => ({ name: r.tgname, fn: r.fn, row: r.row_level, enabled: r.tgenabled }));
}

/** What captureTriggers says for a (not partitioned) table captured for every row operation in a
 * mode: INSERT and DELETE per statement (transition tables), UPDATE per row, in both modes. */
function expectedTriggers(mode) {
  const fn = (plpgsql) => (mode === 'native' ? 'herald.capture_native' : plpgsql);
  return [
    { name: 'herald_capture_delete', fn: fn('herald.capture_delete'), row: false, enabled: 'O' },
    { name: 'herald_capture_insert', fn: fn('herald.capture_insert'), row: false, enabled: 'O' },
    { name: 'herald_capture_update', fn: fn('herald.capture_row'), row: true, enabled: 'O' },
  ];
}

async function recordedMode(db) {
  const { rows } = await db.query("SELECT value FROM herald.meta WHERE key = 'capture'");
  return rows.length ? rows[0].value : null;
}

/** Every index of herald.log passes amcheck's bt_index_check with heapallindexed (each heap
 * tuple is in the index) and bt_index_parent_check (the tree's structure); returns their names. */
async function checkLogIndexes(db) {
  await db.query('CREATE EXTENSION IF NOT EXISTS amcheck');
  const { rows } = await db.query(
    `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = 'herald.log'::regclass ORDER BY 1`);
  assert.ok(rows.length > 0, 'herald.log has indexes');
  for (const { name } of rows) {
    await db.query('SELECT bt_index_check($1::regclass, true)', [name]);
    await db.query('SELECT bt_index_parent_check($1::regclass, true)', [name]);
  }
  return rows.map((r) => r.name);
}

/** On one connection: BEGIN, settings (set_config local), fn(c), then checks that every log row
 * the transaction wrote carries its xid and its now(), before COMMIT (or ROLLBACK). Resolves with
 * the number of log rows the transaction left (none after a ROLLBACK, which it checks). */
async function txn(c, settings, fn, { rollback = false } = {}) {
  await c.query('BEGIN');
  const mark = Number((await c.query('SELECT coalesce(max(seq), 0) AS m FROM herald.log')).rows[0].m);
  for (const [k, v] of Object.entries(settings || {})) await c.query('SELECT set_config($1, $2, true)', [k, v]);
  await fn(c);
  const { rows: [own] } = await c.query(
    `SELECT count(*)::int AS n,
            count(*) FILTER (WHERE xid = pg_current_xact_id())::int AS xid_ok,
            count(*) FILTER (WHERE at = now())::int AS at_ok
       FROM herald.log WHERE seq > $1`, [mark]);
  assert.equal(own.xid_ok, own.n, `every log row of the transaction has its xid (pg_current_xact_id()): ${JSON.stringify(own)}`);
  assert.equal(own.at_ok, own.n, `every log row of the transaction has its now(): ${JSON.stringify(own)}`);
  await c.query(rollback ? 'ROLLBACK' : 'COMMIT');
  if (!rollback) return own.n;
  assert.ok(own.n > 0, 'the rolled-back transaction did write log rows');
  const { rows: [after] } = await c.query('SELECT count(*)::int AS n FROM herald.log WHERE seq > $1', [mark]);
  return after.n;
}

/** A connected pg.Client on a database of the file's cluster (the caller ends it). */
async function connect(dbName) {
  const c = cluster.pg.client(dbName);
  await c.connect();
  return c;
}

// ---- 1. parity ---------------------------------------------------------------------------------

// Set up before capture: a row written before a column was dropped (its tuple still holds the
// dropped value) and before a column with a default was added (its tuple lacks it: the default
// is the catalog's "missing value").
const RICH = String.raw`
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy "quoted"');
  CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
  CREATE TABLE rich (
    id int PRIMARY KEY,
    gone text,
    small int, big bigint, num numeric, f8 float8,
    t text, flag boolean, ts timestamptz, d date,
    ints int[], texts text[], jb jsonb, js json, bin bytea, u uuid,
    dom posint, m mood, "Odd ""Name"", with space" text,
    gen bigint GENERATED ALWAYS AS (id * 1000 + coalesce(small, 0)) STORED,
    tail text);
  INSERT INTO rich (id, gone, small, t) VALUES (0, 'the dropped column''s value', 1, 'written before capture');
  ALTER TABLE rich DROP COLUMN gone;
  ALTER TABLE rich ADD COLUMN late text DEFAULT 'late default';
`;

const COLS = `id, small, big, num, f8, t, flag, ts, d, ints, texts, jb, js, bin, u, dom, m, "Odd ""Name"", with space", tail`;

// Row literals (SQL text, the same in both databases).
const ROW1 = String.raw`(1, -32768, 9223372036854775807, 12345678901234567890.000000000001, 0.1,
  E'it''s "quoted" \\ back\\slash\nnew line\ttab é ü 日本 😀 \u0001 </script>', true,
  '2024-02-29 23:59:59.123456+05:30', '2024-02-29', '{1,NULL,3}', ARRAY['a"b', E'c\\d', NULL, 'é', ''],
  '{"k": [1, 2.50, {"z": null}], "a": "x\"y", "u": "\u00e9"}', '{ "spaced" :  1,"dup":1,"dup":2 }',
  '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 7, 'happy "quoted"', E'odd\r\n', NULL)`;
const ROW2 = String.raw`(2, 0, -9223372036854775808, 'NaN', 'Infinity', '', false, 'infinity', '-infinity',
  '{}', '{}', '[]', '"just a string"', '\x', '00000000-0000-0000-0000-000000000000', 1, 'sad', '', 'x')`;
const ROW3 = `(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`;
const ROW4 = String.raw`(4, 32767, 42, -0.000001, '-0', 'tab	inside, and a NUL-free \x7f', NULL,
  '1999-12-31 23:59:59.999999+00', '0001-01-01', '{{1,2},{3,4}}', ARRAY['{', '}', ',', '"', 'NULL'],
  '{"deep": {"deeper": {"deepest": [true, false, null]}}}', 'null', '\xdeadbeef',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', 2147483647, 'ok', E'\u2028\u2029', 'tail')`;

/** The ~1 MB value (30,000 md5 lines): TOASTed in the table, and in the log. */
const BIG = `(SELECT string_agg(md5(i::text), E'\\n') FROM generate_series(1, 30000) i)`;

const JSON_SESSION = '{"x-hasura-role":"admin","x-hasura-user-id":"42"}';

// Each step is one transaction: settings (set_config local), statements, the number of log rows
// it must write and their session (the setting's text, or null).
const STEPS = [
  {
    what: 'single-row insert, herald.session JSON',
    settings: { 'herald.session': JSON_SESSION },
    sql: [`INSERT INTO rich (${COLS}) VALUES ${ROW1}`],
    rows: 1, session: JSON_SESSION,
  },
  {
    what: 'multi-row insert, hasura.user only',
    settings: { 'hasura.user': '{"x-hasura-user-id":"8"}' },
    sql: [`INSERT INTO rich (${COLS}) VALUES ${ROW2}, ${ROW3}, ${ROW4}`],
    rows: 3, session: '{"x-hasura-user-id":"8"}',
  },
  {
    what: 'INSERT … SELECT, herald.session empty: hasura.user',
    settings: { 'herald.session': '', 'hasura.user': 'fallback user' },
    sql: [String.raw`INSERT INTO rich (id, small, t, ints, m, dom, late, texts)
      SELECT g, g, repeat(chr(64 + g), g) || E'\\', ARRAY[g, g * g], (ARRAY['sad', 'ok']::mood[])[1 + g % 2], g,
             CASE WHEN g % 2 = 0 THEN NULL ELSE 'late ' || g END, ARRAY[g::text, NULL]
        FROM generate_series(10, 14) g`],
    rows: 5, session: 'fallback user',
  },
  {
    what: 'a ~1 MB (TOASTed) value, both settings empty',
    settings: { 'herald.session': '', 'hasura.user': '' },
    sql: [`INSERT INTO rich (id, small, t, jb) VALUES (50, 5, ${BIG}, jsonb_build_object('big', ${BIG}))`],
    rows: 1, session: null,
  },
  {
    what: 'update of one row, a session that is not JSON',
    settings: { 'herald.session': 'admin {not json' },
    sql: [`UPDATE rich SET t = t || ' ✓', flag = NOT coalesce(flag, false), jb = jb || '{"added": true}',
             ints = ints || 4, m = 'ok' WHERE id = 1`],
    rows: 1, session: 'admin {not json',
  },
  {
    what: 'update of several rows (the pre-capture row, the TOASTed row), no session',
    settings: {},
    sql: [`UPDATE rich SET small = coalesce(small, 0) + 1, tail = 'touched' WHERE id IN (0, 2, 3, 10, 11, 50)`],
    rows: 6, session: null,
  },
  {
    what: 'delete of several rows, no session',
    settings: {},
    sql: ['DELETE FROM rich WHERE id IN (0, 3, 12, 50)'],
    rows: 4, session: null,
  },
  {
    // An upsert: both modes capture INSERT per statement and UPDATE per row, so a statement's
    // UPDATEs are logged before its INSERTs whatever the order of its rows (next case too).
    what: 'INSERT … ON CONFLICT DO UPDATE (update, then insert)',
    settings: { 'herald.session': '["an", "array"]' },
    sql: [`INSERT INTO rich (id, t, small) VALUES (13, 'upserted', 1), (400, 'inserted', 2)
             ON CONFLICT (id) DO UPDATE SET t = excluded.t, small = rich.small + excluded.small`],
    rows: 2, session: '["an", "array"]',
  },
  {
    what: 'INSERT … ON CONFLICT DO UPDATE (insert, then update)',
    settings: { 'herald.session': '["an", "array"]' },
    sql: [`INSERT INTO rich (id, t, small) VALUES (401, 'inserted', 3), (13, 'upserted again', 1)
             ON CONFLICT (id) DO UPDATE SET t = excluded.t, small = rich.small + excluded.small`],
    rows: 2, session: '["an", "array"]',
  },
  {
    what: 'a rolled-back savepoint: its rows are not logged',
    settings: { 'herald.session': '{"step":"savepoint"}' },
    sql: [
      "INSERT INTO rich (id, t) VALUES (100, 'kept')",
      'SAVEPOINT sp',
      "INSERT INTO rich (id, t) VALUES (101, 'rolled back')",
      "UPDATE rich SET t = 'rolled back' WHERE id = 100",
      'DELETE FROM rich WHERE id IN (10, 11)',
      'ROLLBACK TO SAVEPOINT sp',
      "INSERT INTO rich (id, t) VALUES (102, 'after the savepoint')",
      'SAVEPOINT sp2',
      "UPDATE rich SET t = 'released' WHERE id = 1",
      'RELEASE SAVEPOINT sp2',
    ],
    rows: 3, session: '{"step":"savepoint"}',
  },
  {
    what: 'a rolled-back transaction: nothing logged',
    settings: { 'herald.session': '{"step":"rollback"}' },
    sql: ["INSERT INTO rich (id, t) VALUES (200, 'rolled back')", 'UPDATE rich SET t = NULL', 'DELETE FROM rich WHERE id = 2'],
    rows: 0, rollback: true,
  },
  {
    // More rows than one batch of the native function's statement-level path (1,000): its
    // heap_multi_insert batches, and the rows' order, are checked against PL/pgSQL's.
    what: 'a bulk INSERT … SELECT of 2,500 rows, then a DELETE of them',
    settings: { 'herald.session': '{"step":"bulk"}' },
    sql: [
      "INSERT INTO rich (id, small, t) SELECT g, g % 100, 'bulk ' || g FROM generate_series(1000, 3499) g",
      'DELETE FROM rich WHERE id BETWEEN 1000 AND 3499',
    ],
    rows: 5000, session: '{"step":"bulk"}',
  },
  {
    what: 'after the rollback; statements touching no row',
    settings: {},
    sql: [
      "INSERT INTO rich (id, t) VALUES (300, 'last')",
      'DELETE FROM rich WHERE id < -100',
      'UPDATE rich SET t = t WHERE false',
      'INSERT INTO rich (id) SELECT 1 WHERE false',
    ],
    rows: 1, session: null,
  },
];

/** Runs STEPS on one connection of the database (TimeZone not UTC: both paths follow it). */
async function runSteps(dbName) {
  const c = await connect(dbName);
  try {
    await c.query("SET TimeZone = 'Asia/Kathmandu'");
    for (const step of STEPS) {
      const n = await txn(c, step.settings, async () => {
        for (const sql of step.sql) await c.query(sql);
      }, { rollback: step.rollback });
      assert.equal(n, step.rows, `${step.what}: log rows written`);
    }
  } finally {
    await c.end();
  }
}

/** herald.log as text, in seq order, with the xid and at of each row as the index of the first
 * row sharing it (the transactions' grouping, comparable across databases). */
async function logText(db) {
  const { rows } = await db.query(
    `SELECT source, op, old::text AS old, new::text AS new, session, id::text AS id,
            dense_rank() OVER (ORDER BY xid::text::bigint) AS xid_group,
            dense_rank() OVER (ORDER BY at) AS at_group
       FROM herald.log ORDER BY seq`);
  return rows;
}

/** Where two texts first differ, for a readable failure on a 1 MB value. */
function firstDifference(a, b) {
  if (a === null || b === null) return `${JSON.stringify(a)?.slice(0, 200)} vs ${JSON.stringify(b)?.slice(0, 200)}`;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `at char ${i} (lengths ${a.length}, ${b.length}): ${JSON.stringify(a.slice(Math.max(0, i - 40), i + 80))} vs ` +
    `${JSON.stringify(b.slice(Math.max(0, i - 40), i + 80))}`;
}

describe('parity', () => {
  onBackend('postgres', 'plpgsql and native capture write identical log rows for the same statements', async () => {
    requireModule();
    const dbs = {};
    for (const mode of ['plpgsql', 'native']) {
      const { name, url, db } = await freshDb(cluster, RICH);
      const a = await apply(url, mode, [trig('rich_events', 'public.rich')]);
      assert.ok(a.out.includes(mode === 'native' ? 'capture: native (herald_capture)' : 'capture: plpgsql'), a.stdout);
      assert.ok(a.out.includes(`capture: installed on public.rich (insert, update, delete; ${mode})`), a.stdout);
      assert.deepEqual(await captureTriggers(db, 'public.rich'), expectedTriggers(mode));
      assert.equal(await recordedMode(db), mode);
      await runSteps(name);
      dbs[mode] = db;
    }
    const plpgsql = await logText(dbs.plpgsql);
    const native = await logText(dbs.native);

    // What the steps must have written (checked on both, so that equal logs are not equally wrong).
    const total = STEPS.reduce((n, s) => n + s.rows, 0);
    const sessions = STEPS.flatMap((s) => Array(s.rows).fill(s.session));
    for (const [mode, log] of [['plpgsql', plpgsql], ['native', native]]) {
      assert.equal(log.length, total, `${mode}: log rows`);
      assert.deepEqual(log.map((r) => r.session), sessions, `${mode}: sessions`);
      assert.ok(log.every((r) => r.source === 'public.rich'), `${mode}: source`);
      assert.deepEqual(log.map((r) => r.op).join(' '), [
        'INSERT', 'INSERT INSERT INSERT', 'INSERT INSERT INSERT INSERT INSERT', 'INSERT',
        'UPDATE', 'UPDATE UPDATE UPDATE UPDATE UPDATE UPDATE', 'DELETE DELETE DELETE DELETE',
        'UPDATE INSERT', 'UPDATE INSERT', 'INSERT INSERT UPDATE',
        ...Array(2500).fill('INSERT'), ...Array(2500).fill('DELETE'), 'INSERT'].join(' '), `${mode}: ops`);
      const ids = log.flatMap((r) => [r.old, r.new]).filter(Boolean).map((j) => JSON.parse(j).id);
      for (const gone of [101, 200]) assert.ok(!ids.includes(gone), `${mode}: row ${gone} was rolled back`);
      for (const r of log) assert.match(r.id, UUID_V4_RE, `${mode}: id is a v4 UUID`);
      assert.equal(new Set(log.map((r) => r.id)).size, log.length, `${mode}: ids are unique`);
      // The dropped column is not in any image; the fast-default column is, with its default.
      const pre = JSON.parse(log.find((r) => r.old && JSON.parse(r.old).id === 0).old);
      assert.ok(!('gone' in pre) && !Object.keys(pre).some((k) => k.includes('dropped')), `${mode}: ${JSON.stringify(pre)}`);
      assert.equal(pre.late, 'late default', `${mode}: the fast default of a row written before the column`);
      assert.equal(pre['Odd "Name", with space'], null);
      const big = log.filter((r) => (r.new ?? '').length > 1_000_000 || (r.old ?? '').length > 1_000_000);
      assert.deepEqual(big.map((r) => r.op), ['INSERT', 'UPDATE', 'DELETE'], `${mode}: the TOASTed value's rows`);
      assert.ok(big[1].old.length > 1_000_000 && big[1].new.length > 1_000_000, `${mode}: in the update's old and new`);
    }
    // The same rows, text for text; the same transactions (xid) and times (at) grouping.
    for (let i = 0; i < total; i++) {
      for (const k of ['source', 'op', 'old', 'new', 'session', 'xid_group', 'at_group']) {
        if (plpgsql[i][k] !== native[i][k]) {
          assert.fail(`log row ${i + 1} (${plpgsql[i].op}), ${k} differs (plpgsql vs native) ${firstDifference(
            String(plpgsql[i][k]), String(native[i][k]))}`);
        }
      }
    }
    // Both databases' tables ended the same, too.
    const table = async (db) => (await db.query('SELECT to_json(r)::text AS j FROM rich r ORDER BY id')).rows.map((r) => r.j);
    assert.deepEqual(await table(dbs.native), await table(dbs.plpgsql));
  });
});

// ---- 1b. the native JSON writer ------------------------------------------------------------------

// A table of built-in types only, which native capture writes as JSON itself (pgext's row_json);
// arrays, composites and types that are not built in go through row_to_json, as in the parity
// test's table. The oracle is PostgreSQL's own row_to_json of the same row in the same session.
const FLAT = String.raw`
  CREATE DOMAIN short_text AS varchar(40);
  CREATE DOMAIN posint2 AS int CHECK (VALUE > 0);
  CREATE TYPE flat_mood AS ENUM ('happy', 'sad');
  CREATE TABLE flat (
    id int PRIMARY KEY,
    gone text,
    b boolean, i2 smallint, i4 int, i8 bigint, f4 real, f8 double precision, n numeric, n2 numeric(10, 2),
    d date, ts timestamp, tz timestamptz, tm time, ttz timetz, iv interval,
    t text, vc varchar(20), bp char(5), nm name, ch "char", u uuid, by bytea, ip inet, mc macaddr,
    js json, jb jsonb, x xml, o oid, money_ money, bits bit varying(8), pt point, rng int4range,
    dt short_text, dp posint2, "Odd ""Key"" é \ back" text);
  INSERT INTO flat (id, gone, t) VALUES (0, 'in the dropped column', 'before capture');
  ALTER TABLE flat DROP COLUMN gone;
  ALTER TABLE flat ADD COLUMN late text DEFAULT 'fast default';
`;
const FLAT_COLS = 'id, b, i2, i4, i8, f4, f8, n, n2, d, ts, tz, tm, ttz, iv, t, vc, bp, nm, ch, u, by, ip, mc, js, jb, x, o, money_, bits, pt, rng, dt, dp, "Odd ""Key"" é \\ back"';
const FLAT_ROWS = [
  String.raw`(1, true, -32768, 2147483647, -9223372036854775808, 1.5, 0.1, 12345678901234567890.000000000001, 3.14,
    '2024-02-29', '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59.123456+05:30', '12:34:56.789', '12:34:56+02',
    '1 year 2 mons 3 days 04:05:06.7', E'it''s "quoted" \\ back\\slash\nnew line\ttab é 日本 😀 \u0001 </script> \u2028',
    'vc', 'ab', 'a name', 'x', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10', '192.168.0.1/24', '08:00:2b:01:02:03',
    '{ "spaced" :  1,"dup":1,"dup":2 }', '{"k": [1, 2.50, {"z": null}], "a": "x\"y"}', '<a b="c">d &amp; e</a>', 4294967295,
    '-12.34', B'1011', '(1.5,-2)', '[1,10)', 'short', 7, 'odd')`,
  String.raw`(2, false, 0, 0, 0, 'NaN', 'Infinity', 'NaN', -0.5, 'infinity', '-infinity', 'infinity', '24:00', '00:00+00',
    '-1 days', '', '', '', '', '', '00000000-0000-0000-0000-000000000000', '\x', '::1', 'ff:ff:ff:ff:ff:ff',
    '"just a string"', 'null', '', 0, '0', B'', '(0,0)', 'empty', '', 1, '')`,
  String.raw`(3, NULL, NULL, NULL, NULL, '-Infinity', '-0', '-0.000001', NULL, '0001-01-01', '1999-12-31 23:59:59.999999',
    '0044-03-15 12:00:00 BC', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
];

describe('JSON writer', () => {
  onBackend('postgres', "native capture's JSON is row_to_json's, text for text, for every built-in type, under any session settings and across ALTER TABLE in one backend", async () => {
    requireModule();
    const { name, url, db } = await freshDb(cluster, FLAT);
    await apply(url, 'native', [trig('flat_events', 'public.flat')]);
    assert.deepEqual(await captureTriggers(db, 'public.flat'), expectedTriggers('native'));
    const c = await connect(name);
    let checked = 0;
    // Runs sql (a write), then checks every log row it wrote against row_to_json of the rows as
    // they are after it (INSERT, UPDATE new) or were before it (DELETE, UPDATE old).
    const check = async (what, sql) => {
      const before = new Map((await c.query('SELECT id, row_to_json(f)::text AS j FROM flat f')).rows.map((r) => [r.id, r.j]));
      const mark = Number((await c.query('SELECT coalesce(max(seq), 0) AS m FROM herald.log')).rows[0].m);
      await c.query(sql);
      const after = new Map((await c.query('SELECT id, row_to_json(f)::text AS j FROM flat f')).rows.map((r) => [r.id, r.j]));
      const { rows } = await c.query(
        'SELECT op, old::text AS old, new::text AS new FROM herald.log WHERE seq > $1 ORDER BY seq', [mark]);
      assert.ok(rows.length > 0, `${what}: log rows written`);
      for (const r of rows) {
        if (r.new !== null) {
          const id = JSON.parse(r.new).id;
          assert.equal(r.new, after.get(id), `${what}: ${r.op} of row ${id}, new image ${firstDifference(r.new, after.get(id))}`);
        }
        if (r.old !== null) {
          const id = JSON.parse(r.old).id;
          assert.equal(r.old, before.get(id), `${what}: ${r.op} of row ${id}, old image ${firstDifference(r.old, before.get(id))}`);
        }
        checked++;
      }
      return rows.length;
    };
    try {
      for (const [i, row] of FLAT_ROWS.entries()) {
        assert.equal(await check(`row ${i + 1}`, `INSERT INTO flat (${FLAT_COLS}) VALUES ${row}`), 1);
      }
      // The row written before capture: its tuple holds the dropped column, and lacks the added one.
      assert.equal(await check('the old row', "UPDATE flat SET t = 'updated' WHERE id = 0"), 1);
      // Output that depends on the session: time zone, date, interval and float settings.
      await c.query("SET TimeZone = 'America/St_Johns'");
      await c.query("SET DateStyle = 'SQL, DMY'");
      await c.query("SET IntervalStyle = 'sql_standard'");
      await c.query('SET extra_float_digits = 0');
      await c.query("SET bytea_output = 'escape'");
      assert.equal(await check('session settings', `INSERT INTO flat (${FLAT_COLS}) SELECT id + 10, b, i2, i4, i8, f4, f8, n, n2, d, ts, tz, tm, ttz, iv, t, vc, bp, nm, ch, u, by, ip, mc, js, jb, x, o, money_, bits, pt, rng, dt, dp, "Odd ""Key"" é \\ back" FROM flat WHERE id BETWEEN 1 AND 3`), 3);
      await c.query('RESET ALL');
      // A ~1 MB TOASTed value, single-row and in a bulk statement (two batches of the writer).
      assert.equal(await check('TOASTed', "INSERT INTO flat (id, t) SELECT 100, string_agg(md5(i::text), E'\\n') FROM generate_series(1, 30000) i"), 1);
      assert.equal(await check('bulk', "INSERT INTO flat (id, i8, t, tz) SELECT 1000 + i, i * 1000003, 'row ' || i, timestamptz '2026-01-01' + i * interval '1 minute' FROM generate_series(1, 1500) i"), 1500);
      assert.equal(await check('update', 'UPDATE flat SET f8 = f8 / 3, t = upper(t) WHERE id BETWEEN 1 AND 3'), 3);
      // The same backend after each kind of ALTER TABLE: the writer's description of the table
      // is made again, or the table goes through row_to_json (an array, an enum column).
      const alters = [
        ['a renamed column', 'ALTER TABLE flat RENAME COLUMN t TO t_renamed'],
        ['a column of another type', 'ALTER TABLE flat ALTER COLUMN i4 TYPE text'],
        ['an added column', "ALTER TABLE flat ADD COLUMN added numeric DEFAULT 'NaN'"],
        ['a dropped column', 'ALTER TABLE flat DROP COLUMN x'],
        ['an array column', "ALTER TABLE flat ADD COLUMN arr int[] DEFAULT '{1,NULL,3}'"],
        ['the array column dropped', 'ALTER TABLE flat DROP COLUMN arr'],
        ['an enum column', "ALTER TABLE flat ADD COLUMN mood flat_mood DEFAULT 'happy'"],
        ['the enum column dropped', 'ALTER TABLE flat DROP COLUMN mood'],
      ];
      for (const [k, [what, ddl]] of alters.entries()) {
        await c.query(ddl);
        assert.equal(await check(`after ${what}`, `INSERT INTO flat (id) VALUES (${5000 + k})`), 1);
        assert.equal(await check(`after ${what}, update`, `UPDATE flat SET i2 = ${k} WHERE id = 1`), 1);
      }
      const { rows: [{ n }] } = await c.query('SELECT count(*)::int AS n FROM flat WHERE id < 1000');
      assert.equal(n, 8, 'rows 0-3, 11-13 and 100');
      assert.equal(await check('delete', 'DELETE FROM flat WHERE id < 1000'), n);
    } finally {
      await c.end();
    }
    assert.ok(checked > 1500, `log rows checked: ${checked}`);
  });
});

// ---- 2. delivery across mode switches ----------------------------------------------------------

const ORDERS = 'CREATE TABLE orders (id int PRIMARY KEY, status text, tags text[], meta jsonb)';

describe('mode switches', () => {
  onBackend('postgres', 'plpgsql → native → plpgsql: each apply switches the triggers and says so; every event is delivered once, in order', async () => {
    requireModule();
    const receiver = await receiverTracked();
    const { url, db } = await freshDb(cluster, ORDERS);
    const triggers = [trig('order_events', 'public.orders', receiver.url('/orders'), { concurrency: 1 })];
    const captureLines = (a) => a.out.filter((l) => l.startsWith('capture:'));

    // The events each statement must produce, in statement order (within a statement, in any order).
    const groups = [];
    const state = new Map();
    const c = await db.connect();
    const inTx = async (settings, sql, params) => {
      await c.query('BEGIN');
      for (const [k, v] of Object.entries(settings)) await c.query('SELECT set_config($1, $2, true)', [k, v]);
      await c.query(sql, params);
      await c.query('COMMIT');
    };
    const session = (settings) => {
      const text = settings['herald.session'] || settings['hasura.user'];
      return text ? JSON.parse(text) : null;
    };
    const insert = async (rows, settings = {}) => {
      await inTx(settings, 'INSERT INTO orders SELECT * FROM json_populate_recordset(NULL::orders, $1)', [JSON.stringify(rows)]);
      groups.push(rows.map((r) => {
        const full = { id: r.id, status: r.status ?? null, tags: r.tags ?? null, meta: r.meta ?? null };
        state.set(r.id, full);
        return { op: 'INSERT', old: null, new: full, session: session(settings) };
      }));
    };
    const update = async (ids, status, settings = {}) => {
      await inTx(settings, 'UPDATE orders SET status = $2 WHERE id = ANY($1)', [ids, status]);
      groups.push(ids.map((id) => {
        const old = state.get(id);
        const now = { ...old, status };
        state.set(id, now);
        return { op: 'UPDATE', old, new: now, session: session(settings) };
      }));
    };
    const remove = async (ids, settings = {}) => {
      await inTx(settings, 'DELETE FROM orders WHERE id = ANY($1)', [ids]);
      groups.push(ids.map((id) => {
        const old = state.get(id);
        state.delete(id);
        return { op: 'DELETE', old, new: null, session: session(settings) };
      }));
    };

    try {
      // PL/pgSQL.
      const a1 = await apply(url, 'plpgsql', triggers);
      assert.deepEqual(captureLines(a1), ['capture: plpgsql', 'capture: installed on public.orders (insert, update, delete; plpgsql)'], a1.stdout);
      assert.deepEqual(await captureTriggers(db, 'public.orders'), expectedTriggers('plpgsql'));
      assert.equal(await recordedMode(db), 'plpgsql');
      await insert([{ id: 1, status: 'new', tags: ['a', 'b'], meta: { k: 1 } }, { id: 2, status: 'new' }]);
      await update([1], 'paid', { 'herald.session': '{"x-hasura-user-id":"1"}' });
      await remove([2]);

      // Native.
      const a2 = await apply(url, 'native', triggers);
      assert.deepEqual(captureLines(a2), ['capture: native (herald_capture)', 'capture: switched to native on public.orders (insert, update, delete)'], a2.stdout);
      assert.ok(!a2.out.some((l) => l.startsWith('trigger ')), `the trigger definition did not change:\n${a2.stdout}`);
      assert.deepEqual(await captureTriggers(db, 'public.orders'), expectedTriggers('native'));
      assert.equal(await recordedMode(db), 'native');
      await insert([{ id: 3, status: 'new', tags: [] }, { id: 4, meta: { deep: { x: [1, null] } } }, { id: 5, status: 'x' }],
        { 'herald.session': '{"x-hasura-role":"native"}' });
      await update([3, 4], 'shipped');
      await remove([1, 5]);

      // Back to PL/pgSQL.
      const a3 = await apply(url, 'plpgsql', triggers);
      assert.deepEqual(captureLines(a3), ['capture: plpgsql', 'capture: switched to plpgsql on public.orders (insert, update, delete)'], a3.stdout);
      assert.deepEqual(await captureTriggers(db, 'public.orders'), expectedTriggers('plpgsql'));
      assert.equal(await recordedMode(db), 'plpgsql');
      await insert([{ id: 6, status: 'last' }]);
      await update([3, 4, 6], 'done', { 'hasura.user': '{"x-hasura-user-id":"6"}' });
      await remove([3, 4, 6]);

      // The same mode again: nothing to say, nothing changed.
      const a4 = await apply(url, 'plpgsql', triggers);
      assert.deepEqual(a4.out, ['no changes'], a4.stdout);
      // auto resolves to native here: a switch like the explicit one.
      const a5 = await apply(url, 'auto', triggers);
      assert.deepEqual(captureLines(a5), ['capture: native (herald_capture)', 'capture: switched to native on public.orders (insert, update, delete)'], a5.stdout);
      assert.deepEqual(await captureTriggers(db, 'public.orders'), expectedTriggers('native'));
      await insert([{ id: 7, status: 'auto' }]);
    } finally {
      c.release();
    }

    const expected = groups.flat();
    const { rows: log } = await db.query("SELECT id::text AS id FROM herald.log WHERE source = 'public.orders' ORDER BY seq");
    assert.equal(log.length, expected.length, 'one log row per changed row');

    const file = writeConfig({ database: url, capture: 'auto', triggers });
    await serveTracked(file, { env: NO_ENV_DB });
    await receiver.waitFor(expected.length, 30000, `${expected.length} deliveries`);
    for (const l of log) await waitSettled(db, l.id, { trigger: 'order_events' });
    const got = receiver.requests;
    assert.equal(got.length, expected.length, 'each event is delivered exactly once');
    assert.deepEqual(got.map((q) => q.json.id), log.map((l) => l.id), 'delivered once each, in log order');
    // Statement by statement (rows of one statement in any order), the exact payload.
    const canon = (e) => JSON.stringify(e);
    let i = 0;
    for (const [g, group] of groups.entries()) {
      const seen = got.slice(i, i + group.length).map((q) => ({
        op: q.json.event.op, old: q.json.event.data.old, new: q.json.event.data.new, session: q.json.event.session_variables,
      }));
      assert.deepEqual(seen.map(canon).sort(), group.map(canon).sort(), `statement ${g + 1}`);
      i += group.length;
    }
    for (const q of got) {
      assert.equal(q.url, '/orders');
      assert.deepEqual(q.json.table, { schema: 'public', name: 'orders' });
      assert.match(q.json.id, UUID_RE);
    }
  });
});

// ---- 3. the general path (herald.log not exactly herald's) -------------------------------------

const GENERAL = `
  CREATE TABLE items (id int PRIMARY KEY, v text);
  CREATE TABLE probe (id serial PRIMARY KEY);
  CREATE TABLE forbidden (id int PRIMARY KEY);
  CREATE TABLE log_audit (seq bigint, source text);
  CREATE TABLE rule_audit (n serial PRIMARY KEY, source text, op text, old text, new text, session text);
  CREATE FUNCTION log_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO log_audit VALUES (NEW.seq, NEW.source); RETURN NULL; END $$;
`;

/** How a captured write reaches herald.log now: 'direct' (heap_insert) or 'sql' (the executor).
 * Found by a default on herald.log's at that only the executor applies, set and rolled back.
 * The probe write carries a session (a NOT NULL on herald.log's session must not fail it). */
async function writePath(db) {
  const c = await db.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('herald.session', '{"probe":true}', true)`);
    await c.query("ALTER TABLE herald.log ALTER COLUMN at SET DEFAULT '1999-01-01 00:00:00+00'");
    await c.query('INSERT INTO probe DEFAULT VALUES');
    const { rows } = await c.query(
      "SELECT at = '1999-01-01 00:00:00+00' AS by_sql FROM herald.log WHERE source = 'public.probe' ORDER BY seq DESC LIMIT 1");
    assert.equal(rows.length, 1, 'the probe write was captured');
    return rows[0].by_sql ? 'sql' : 'direct';
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
}

/** On client c, one transaction (session {"variant": tag}) inserting three items, updating two,
 * deleting one; checks xid and at (txn) and then the exact log rows. Returns their seqs. */
async function writeItems(c, tag, base) {
  const sessionText = JSON.stringify({ variant: tag });
  const mark = Number((await c.query('SELECT coalesce(max(seq), 0) AS m FROM herald.log')).rows[0].m);
  const n = await txn(c, { 'herald.session': sessionText }, async () => {
    await c.query('INSERT INTO items VALUES ($1, $4), ($2, $4), ($3, $4)', [base + 1, base + 2, base + 3, tag]);
    await c.query("UPDATE items SET v = v || '!' WHERE id IN ($1, $2)", [base + 1, base + 2]);
    await c.query('DELETE FROM items WHERE id = $1', [base + 3]);
  });
  assert.equal(n, 6, `${tag}: log rows`);
  const item = (id, v) => JSON.stringify({ id, v });
  const expected = [
    ['INSERT', null, item(base + 1, tag)], ['INSERT', null, item(base + 2, tag)], ['INSERT', null, item(base + 3, tag)],
    ['UPDATE', item(base + 1, tag), item(base + 1, `${tag}!`)], ['UPDATE', item(base + 2, tag), item(base + 2, `${tag}!`)],
    ['DELETE', item(base + 3, tag), null],
  ].map(([op, old, nw]) => ({ source: 'public.items', op, old, new: nw, session: sessionText }));
  const { rows } = await c.query(
    `SELECT seq, id::text AS id, source, op, old::text AS old, new::text AS new, session FROM herald.log WHERE seq > $1 ORDER BY seq`, [mark]);
  assert.deepEqual(rows.map(({ seq, id, ...r }) => r), expected, `${tag}: the log rows`);
  for (const r of rows) assert.match(r.id, UUID_V4_RE, `${tag}: id`);
  return rows.map((r) => Number(r.seq));
}

describe('general path', () => {
  onBackend('postgres', 'while herald.log is not exactly herald\'s, captured rows go through the executor, correct, and every index agrees with the heap', async () => {
    requireModule();
    const { url, db } = await freshDb(cluster, GENERAL);
    const a = await apply(url, 'native', [
      trig('items_events', 'public.items'),
      { name: 'probe_events', table: 'public.probe', operations: ['insert'], webhook: 'http://127.0.0.1:9/unused' },
      { name: 'forbidden_events', table: 'public.forbidden', operations: ['insert'], webhook: 'http://127.0.0.1:9/unused' },
    ]);
    assert.ok(a.out.includes('capture: native (herald_capture)'), a.stdout);
    assert.deepEqual(await captureTriggers(db, 'public.items'), expectedTriggers('native'));
    const c = await db.connect(); // one backend throughout: its cached view of herald.log must follow every change
    let base = 0;
    const next = () => (base += 100);
    try {
      // Herald's shape: the direct write. Many rows (b-tree page splits), then amcheck.
      assert.equal(await writePath(db), 'direct');
      await writeItems(c, 'direct', next());
      await c.query(`INSERT INTO items SELECT g, 'bulk ' || g FROM generate_series(100001, 103000) g`);
      await c.query(`UPDATE items SET v = v || '.' WHERE id > 100000`);
      // Concurrent single-row writers (8 connections), each its own transaction.
      await parallel(400, 8, (i) => db.query('INSERT INTO items VALUES ($1, $2)', [200001 + i, `w${i}`]));
      assert.equal(Number((await c.query("SELECT count(*) AS n FROM herald.log WHERE source = 'public.items'")).rows[0].n), 6 + 6000 + 400);
      const { rows: [dup] } = await c.query(
        "SELECT count(DISTINCT id)::int AS ids, count(DISTINCT (new->>'id'))::int AS items FROM herald.log WHERE (new->>'id')::int > 200000");
      assert.deepEqual(dup, { ids: 400, items: 400 });
      assert.deepEqual(await checkLogIndexes(db), ['herald.log_pkey', 'herald.log_xid_seq']);

      // An index built, then dropped, CONCURRENTLY while 6 connections write: each step of either
      // sends the invalidation that makes a backend list herald.log's indexes again. Every row
      // written is in the index (heapallindexed).
      const writers = parallel(600, 6, (i) => db.query('INSERT INTO items VALUES ($1, $2)', [300001 + i, `c${i}`]));
      await db.query('CREATE INDEX CONCURRENTLY log_at ON herald.log (at, seq)');
      await writers;
      await writeItems(c, 'after a concurrent index', next());
      assert.deepEqual(await checkLogIndexes(db), ['herald.log_at', 'herald.log_pkey', 'herald.log_xid_seq']);
      const writers2 = parallel(300, 6, (i) => db.query('INSERT INTO items VALUES ($1, $2)', [301001 + i, `d${i}`]));
      await db.query('DROP INDEX CONCURRENTLY herald.log_at');
      await writers2;
      assert.deepEqual(await checkLogIndexes(db), ['herald.log_pkey', 'herald.log_xid_seq']);
      assert.equal(Number((await c.query("SELECT count(*) AS n FROM herald.log WHERE (new->>'id')::int > 300000")).rows[0].n), 900,
        'the rows written around the concurrent index build and drop');

      // More plain b-tree indexes (a unique one, one on text columns) are still maintained by
      // the direct write; a long session (compressed in the heap and in the index) included.
      await db.query('CREATE UNIQUE INDEX log_id_unique ON herald.log (id)');
      await db.query('CREATE INDEX log_source_session ON herald.log (source, session, op)');
      assert.equal(await writePath(db), 'direct');
      await writeItems(c, 'plain indexes', next());
      const longSession = `{"x-hasura-user-id":"${'7'.repeat(3000)}"}`;
      await txn(c, { 'herald.session': longSession }, async () => {
        await c.query(`INSERT INTO items SELECT g, repeat('v', 5000) FROM generate_series(${next()}, ${base + 20}) g`);
      });
      assert.equal(Number((await c.query('SELECT count(*) AS n FROM herald.log WHERE session = $1', [longSession])).rows[0].n), 21);
      await checkLogIndexes(db);
      await db.query('DROP INDEX herald.log_id_unique, herald.log_source_session');

      const variants = [
        {
          what: 'an expression index',
          setup: 'CREATE INDEX log_lower_source ON herald.log ((lower(source)))',
          teardown: 'DROP INDEX herald.log_lower_source',
          async check() {
            const count = async () => Number((await c.query(
              "SELECT count(*) AS n FROM herald.log WHERE lower(source) = 'public.items'")).rows[0].n);
            const bySeqscan = await count();
            await c.query('SET enable_seqscan = off');
            try {
              const plan = (await c.query(
                "EXPLAIN SELECT count(*) FROM herald.log WHERE lower(source) = 'public.items'")).rows.map((r) => r['QUERY PLAN']).join('\n');
              assert.match(plan, /log_lower_source/, plan);
              assert.equal(await count(), bySeqscan, 'the expression index finds every row the heap has');
            } finally {
              await c.query('RESET enable_seqscan');
            }
          },
        },
        { what: 'a partial index', setup: "CREATE INDEX log_deletes ON herald.log (seq) WHERE op = 'DELETE'", teardown: 'DROP INDEX herald.log_deletes' },
        {
          what: 'a deferrable unique constraint',
          setup: 'ALTER TABLE herald.log ADD CONSTRAINT log_id_deferred UNIQUE (id) DEFERRABLE INITIALLY DEFERRED',
          teardown: 'ALTER TABLE herald.log DROP CONSTRAINT log_id_deferred',
        },
        {
          what: 'a trigger on herald.log',
          setup: 'CREATE TRIGGER audit AFTER INSERT ON herald.log FOR EACH ROW EXECUTE FUNCTION log_audit()',
          teardown: 'DROP TRIGGER audit ON herald.log',
          async check(seqs) {
            const { rows } = await c.query("SELECT seq FROM log_audit WHERE source = 'public.items' ORDER BY seq");
            assert.deepEqual(rows.map((r) => Number(r.seq)), seqs, 'the trigger on herald.log fired for each captured row');
          },
        },
        {
          what: 'a CHECK constraint',
          setup: "ALTER TABLE herald.log ADD CONSTRAINT no_forbidden CHECK (source <> 'public.forbidden')",
          teardown: 'ALTER TABLE herald.log DROP CONSTRAINT no_forbidden',
          async check() {
            await assert.rejects(c.query('INSERT INTO forbidden VALUES (1)'), /violates check constraint "no_forbidden"/);
            assert.equal(Number((await c.query('SELECT count(*) AS n FROM forbidden')).rows[0].n), 0);
          },
        },
        { what: 'row level security', setup: 'ALTER TABLE herald.log ENABLE ROW LEVEL SECURITY', teardown: 'ALTER TABLE herald.log DISABLE ROW LEVEL SECURITY' },
        {
          // writeItems sets a session: those rows go through; a write without one fails on the
          // executor's NOT NULL, as it does with PL/pgSQL capture (compared on a database of its own).
          what: 'NOT NULL on herald.log\'s session',
          // (The rows written so far without one are given one first, else SET NOT NULL fails.)
          setup: "UPDATE herald.log SET session = '{}' WHERE session IS NULL; ALTER TABLE herald.log ALTER COLUMN session SET NOT NULL",
          teardown: 'ALTER TABLE herald.log ALTER COLUMN session DROP NOT NULL',
          async check() {
            const failure = (p) => p.then(() => assert.fail('a captured write without a session succeeded'), (e) => e);
            const fields = (e) => ({ code: e.code, message: e.message, schema: e.schema, table: e.table, column: e.column });
            const expected = {
              code: '23502', message: 'null value in column "session" of relation "log" violates not-null constraint',
              schema: 'herald', table: 'log', column: 'session',
            };
            const native = await failure(c.query("INSERT INTO items VALUES (1, 'no session')"));
            assert.deepEqual(fields(native), expected, native.stack);
            assert.deepEqual(fields(await failure(c.query("UPDATE items SET v = 'no session' WHERE id = 101"))), expected);
            assert.deepEqual(fields(await failure(c.query('DELETE FROM items WHERE id = 101'))), expected);

            const p = await freshDb(cluster, 'CREATE TABLE items (id int PRIMARY KEY, v text)');
            await apply(p.url, 'plpgsql', [trig('items_events', 'public.items')]);
            await p.db.query('ALTER TABLE herald.log ALTER COLUMN session SET NOT NULL');
            const plpgsql = await failure(p.db.query("INSERT INTO items VALUES (1, 'no session')"));
            assert.deepEqual(fields(plpgsql), fields(native), 'the same error with PL/pgSQL capture');
            assert.equal(Number((await p.db.query('SELECT count(*) AS n FROM items')).rows[0].n), 0);
            const { rows: kept } = await c.query('SELECT id, v FROM items WHERE id IN (1, 101) ORDER BY id');
            assert.deepEqual(kept, [{ id: 101, v: 'direct!' }], 'none of the failed native writes committed');
          },
        },
        {
          // The SQL INSERT is rewritten: the rule's action runs once per captured row.
          what: 'a rule on herald.log',
          setup: `CREATE RULE log_rule_audit AS ON INSERT TO herald.log DO ALSO
                    INSERT INTO rule_audit (source, op, old, new, session) VALUES (NEW.source, NEW.op, NEW.old::text, NEW.new::text, NEW.session)`,
          teardown: 'DROP RULE log_rule_audit ON herald.log',
          async check(seqs) {
            const { rows: log } = await c.query(
              'SELECT source, op, old::text AS old, new::text AS new, session FROM herald.log WHERE seq = ANY($1) ORDER BY seq', [seqs]);
            const { rows: audit } = await c.query("SELECT source, op, old, new, session FROM rule_audit WHERE source = 'public.items' ORDER BY n");
            assert.equal(audit.length, 6);
            assert.deepEqual(audit, log, 'the rule\'s action ran for each captured row, with its values');
          },
        },
      ];
      for (const v of variants) {
        await db.query(v.setup);
        assert.equal(await writePath(db), 'sql', `${v.what}: the executor writes the log`);
        const seqs = await writeItems(c, v.what, next());
        if (v.check) await v.check(seqs);
        await checkLogIndexes(db);
        await db.query(v.teardown);
      }
      // Herald's shape again: the direct write again, on the same backend.
      assert.equal(await writePath(db), 'direct');
      const before = Number((await c.query('SELECT count(*) AS n FROM log_audit')).rows[0].n);
      const ruleBefore = Number((await c.query('SELECT count(*) AS n FROM rule_audit')).rows[0].n);
      await writeItems(c, 'direct again', next());
      await c.query('INSERT INTO forbidden VALUES (2)');
      assert.equal(Number((await c.query('SELECT count(*) AS n FROM log_audit')).rows[0].n), before, 'the dropped trigger no longer fires');
      assert.equal(Number((await c.query('SELECT count(*) AS n FROM rule_audit')).rows[0].n), ruleBefore, 'the dropped rule no longer fires');
      // The NOT NULL dropped: a write without a session is captured again (session NULL).
      const lone = next();
      await c.query("INSERT INTO items VALUES ($1, 'no session')", [lone]);
      const { rows: [noSession] } = await c.query("SELECT new->>'id' AS id, session FROM herald.log ORDER BY seq DESC LIMIT 1");
      assert.deepEqual(noSession, { id: String(lone), session: null });
      await checkLogIndexes(db);

      // An added column: the executor writes the row, and applies the column's default (first
      // the catalog's "missing" value would read the same: a second default tells them apart).
      await db.query("ALTER TABLE herald.log ADD COLUMN note text DEFAULT 'n'");
      assert.equal(await writePath(db), 'sql');
      const first = await writeItems(c, 'added column', next());
      await db.query("ALTER TABLE herald.log ALTER COLUMN note SET DEFAULT 'n2'");
      const second = await writeItems(c, 'added column, new default', next());
      const notes = async (seqs) => (await c.query('SELECT note FROM herald.log WHERE seq = ANY($1) ORDER BY seq', [seqs])).rows.map((r) => r.note);
      assert.deepEqual(await notes(first), Array(6).fill('n'));
      assert.deepEqual(await notes(second), Array(6).fill('n2'), 'the executor evaluated the column default');
      await checkLogIndexes(db);
    } finally {
      c.release();
    }
  });
});

// ---- 4. errors ------------------------------------------------------------------------------------

describe('errors', () => {
  onBackend('postgres', 'without herald.log a captured write fails with herald\'s message and nothing of it commits; renaming it back restores capture', async () => {
    requireModule();
    const { url, db } = await freshDb(cluster, 'CREATE TABLE items (id int PRIMARY KEY, v text)');
    await apply(url, 'native', [trig('items_events', 'public.items')]);
    assert.deepEqual(await captureTriggers(db, 'public.items'), expectedTriggers('native'));
    const c = await db.connect();
    try {
      await c.query("INSERT INTO items VALUES (1, 'before')"); // this backend has seen herald.log
      await db.query('ALTER TABLE herald.log RENAME TO log_away');
      const missing = (e) => {
        assert.match(e.message, /herald capture: table herald\.log does not exist/);
        assert.equal(e.code, '42P01');
        assert.equal(e.hint, 'Run herald apply.');
        return true;
      };
      await assert.rejects(c.query("INSERT INTO items VALUES (2, 'lost')"), missing);
      await assert.rejects(c.query("UPDATE items SET v = 'lost' WHERE id = 1"), missing);
      await assert.rejects(c.query('DELETE FROM items WHERE id = 1'), missing);
      // In a transaction: the statement fails, the transaction cannot commit.
      await c.query('BEGIN');
      await c.query('SELECT 1');
      await assert.rejects(c.query("INSERT INTO items VALUES (3, 'lost')"), missing);
      const commit = await c.query('COMMIT');
      assert.equal(commit.command, 'ROLLBACK', 'a failed transaction rolls back on COMMIT');
      // A backend that never saw herald.log says the same.
      await assert.rejects(db.query("INSERT INTO items VALUES (4, 'lost')"), missing);
      const { rows } = await db.query('SELECT id, v FROM items ORDER BY id');
      assert.deepEqual(rows, [{ id: 1, v: 'before' }], 'no write of the application committed');
      assert.equal(Number((await db.query('SELECT count(*) AS n FROM herald.log_away')).rows[0].n), 1);

      await db.query('ALTER TABLE herald.log_away RENAME TO log');
      await c.query("INSERT INTO items VALUES (5, 'after')");
      await c.query("UPDATE items SET v = 'after' WHERE id = 1");
      const { rows: log } = await db.query('SELECT op, old::text AS old, new::text AS new FROM herald.log ORDER BY seq');
      assert.deepEqual(log, [
        { op: 'INSERT', old: null, new: '{"id":1,"v":"before"}' },
        { op: 'INSERT', old: null, new: '{"id":5,"v":"after"}' },
        { op: 'UPDATE', old: '{"id":1,"v":"before"}', new: '{"id":1,"v":"after"}' },
      ]);
      await checkLogIndexes(db);
    } finally {
      c.release();
    }
  });
});

// ---- 5. mode selection ----------------------------------------------------------------------------

/** What apply may change about capture: triggers (with oids), herald's functions, meta, definitions. */
async function captureSnapshot(q) {
  const trig = await q(`SELECT t.oid::bigint AS oid, t.tgrelid::regclass::text AS rel, t.tgname, t.tgfoid::regproc::text AS fn, t.tgtype
                          FROM pg_trigger t WHERE NOT t.tgisinternal ORDER BY rel, t.tgname`);
  const procs = await q(`SELECT p.oid::bigint AS oid, p.oid::regprocedure::text AS sig, md5(p.prosrc) AS src
                           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'herald' ORDER BY sig`);
  const meta = await q('SELECT key, value FROM herald.meta ORDER BY key');
  const defs = await q('SELECT name, definition::text AS definition FROM herald.triggers ORDER BY name');
  return { triggers: trig.rows, functions: procs.rows, meta: meta.rows, definitions: defs.rows };
}

describe('mode selection', () => {
  onBackend('postgres', 'a server that cannot load the module: auto falls back to PL/pgSQL and says why; native fails and changes nothing', async () => {
    const noModule = await startPg({ nativeCapture: false });
    try {
      const q = (sql, params) => noModule.query(sql, params);
      await q('CREATE TABLE items (id int PRIMARY KEY, v text); CREATE TABLE more (id int PRIMARY KEY)');

      // native on a database herald never touched: an error, and no herald schema.
      const fresh = await noModule.createDb('fresh');
      await withClient(fresh, (f) => f.query('CREATE TABLE items (id int PRIMARY KEY, v text)'));
      const f1 = await apply(fresh, 'native', [trig('items_events', 'public.items')], { expectOk: false });
      const failMsg = (r) => {
        assert.equal(r.code, 2, `a configuration that cannot be applied exits 2:\n${r.stderr}`);
        // Nothing on stdout: apply's lines are printed only once its transaction committed (on
        // the fresh database, no "schema: installed version 3" for the schema it rolled back).
        assert.equal(r.stdout, '', `a failed apply prints nothing on stdout:\n${r.stdout}`);
        const errLine = lines(r.stderr).find((l) => l.includes('capture: native:'));
        assert.ok(errLine, `apply says why:\n${r.stderr}`);
        assert.match(errLine, /^herald: apply: capture: native: the server cannot load herald's module: .*"herald_capture"/, errLine);
        assert.ok(lines(r.stderr).includes('herald: apply: nothing was changed'), r.stderr);
      };
      failMsg(f1);
      await withClient(fresh, async (f) => {
        const { rows } = await f.query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'herald'");
        assert.equal(rows[0].n, 0, 'the failed apply was rolled back entirely');
        const tg = await f.query('SELECT tgname FROM pg_trigger WHERE NOT tgisinternal');
        assert.deepEqual(tg.rows, []);
      });

      // auto: PL/pgSQL, with the server's reason.
      const a1 = await apply(noModule.url, 'auto', [trig('items_events', 'public.items')]);
      const why = a1.out.find((l) => l.startsWith('capture: plpgsql'));
      assert.ok(why, a1.stdout);
      assert.ok(why.startsWith('capture: plpgsql (native capture unavailable: '), why);
      assert.match(why, /herald_capture/, why);
      assert.ok(a1.out.includes('capture: installed on public.items (insert, update, delete; plpgsql)'), a1.stdout);
      assert.deepEqual(await captureTriggers({ query: q }, 'public.items'), expectedTriggers('plpgsql'));
      assert.equal(await recordedMode({ query: q }), 'plpgsql');
      const fn = await q("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'capture_native'");
      assert.equal(fn.rows[0].n, 0, 'herald.capture_native was not left behind');
      await q("INSERT INTO items VALUES (1, 'x')");
      const log = await q('SELECT op, new::text AS new FROM herald.log');
      assert.deepEqual(log.rows, [{ op: 'INSERT', new: '{"id":1,"v":"x"}' }]);

      // native (with one more trigger, which would change things): fails, nothing changes.
      const before = await captureSnapshot(q);
      const a2 = await apply(noModule.url, 'native', [trig('items_events', 'public.items'), trig('more_events', 'public.more')], { expectOk: false });
      failMsg(a2);
      assert.deepEqual(await captureSnapshot(q), before, 'the failed apply changed nothing');

      // auto again: the same mode, nothing to say.
      const a3 = await apply(noModule.url, 'auto', [trig('items_events', 'public.items')]);
      assert.deepEqual(a3.out, ['no changes'], a3.stdout);
      assert.deepEqual(await captureSnapshot(q), before);
    } finally {
      await noModule.stop();
    }
  });

  onBackend('postgres', 'a trigger made through /v1/metadata is captured in the mode the last apply recorded', async () => {
    requireModule();
    const s = await stack(cluster, {
      sql: 'CREATE TABLE base (id int PRIMARY KEY); CREATE TABLE items (id int PRIMARY KEY, v text)',
      config: { capture: 'plpgsql' },
      env: NO_ENV_DB,
      triggers: (r) => [{ name: 'from_yaml', table: 'public.base', operations: ['insert'], webhook: r.url('/base') }],
    });
    assert.ok(lines(s.applied.stdout).includes('capture: plpgsql'), s.applied.stdout);
    const create = async (name) => {
      const res = await fetch(s.herald.url('/v1/metadata'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'pg_create_event_trigger',
          args: {
            name, table: { schema: 'public', name: 'items' }, webhook: s.receiver.url(`/${name}`),
            insert: { columns: '*' }, update: { columns: '*' }, delete: { columns: '*' },
          },
        }),
      });
      assert.equal(res.status, 200, await res.text());
    };

    await create('m1');
    assert.deepEqual(await captureTriggers(s.db, 'public.items'), expectedTriggers('plpgsql'));

    // apply with auto: native; the file's trigger switches, the API's goes (the file has not got it).
    const yaml = { ...s.config, capture: 'auto' };
    const applied = await run(['apply', writeConfig(yaml)], { env: NO_ENV_DB });
    assert.equal(applied.code, 0, applied.stderr);
    const out = lines(applied.stdout);
    for (const l of ['capture: native (herald_capture)', 'capture: switched to native on public.base (insert)',
      'capture: removed from public.items', 'trigger m1: removed']) assert.ok(out.includes(l), `"${l}" in:\n${applied.stdout}`);
    assert.equal(await recordedMode(s.db), 'native');
    assert.deepEqual(await captureTriggers(s.db, 'public.items'), []);

    await create('m2');
    assert.deepEqual(await captureTriggers(s.db, 'public.items'), expectedTriggers('native'));
    await s.db.query("INSERT INTO items VALUES (1, 'native')");
    await s.db.query("UPDATE items SET v = 'native!' WHERE id = 1");
    await s.receiver.waitFor((reqs) => reqs.filter((q) => q.url === '/m2').length >= 2, 30000, 'two events at /m2');
    const m2 = s.receiver.requests.filter((q) => q.url === '/m2').map((q) => [q.json.event.op, q.json.event.data]);
    assert.deepEqual(m2, [
      ['INSERT', { old: null, new: { id: 1, v: 'native' } }],
      ['UPDATE', { old: { id: 1, v: 'native' }, new: { id: 1, v: 'native!' } }],
    ]);
    assert.equal(s.receiver.requests.filter((q) => q.url === '/m1').length, 0);
  });
});

// ---- 6. partitioned tables -----------------------------------------------------------------------

// readings_late is made on its own, its columns in another order (and with a dropped one), then
// attached: a row's image is its partition's row, so its JSON keys come in the partition's column
// order (v, day, id there; id, day, v in readings_early). Images are compared parsed, by content.
const READINGS = `
  CREATE TABLE readings (id int NOT NULL, day int NOT NULL, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
  CREATE TABLE readings_early PARTITION OF readings FOR VALUES FROM (0) TO (100);
  CREATE TABLE readings_late (v text, gone int, day int NOT NULL, id int NOT NULL);
  ALTER TABLE readings_late DROP COLUMN gone;
  ALTER TABLE readings ATTACH PARTITION readings_late FOR VALUES FROM (100) TO (200);
`;

/** What captureTriggers says for a partitioned table captured for every row operation. */
function expectedPartitionedTriggers(mode) {
  const fn = mode === 'native' ? 'herald.capture_native' : 'herald.capture_row';
  return ['delete', 'insert', 'update'].map((op) => ({ name: `herald_capture_${op}`, fn, row: true, enabled: 'O' }));
}

/** Every herald_capture_* trigger of the database with its oid and, for the clones PostgreSQL
 * makes on partitions, the parent trigger's table and name. */
async function allCaptureTriggers(db) {
  const { rows } = await db.query(
    `SELECT t.oid::bigint::text AS oid, t.tgrelid::regclass::text AS rel, t.tgname AS name, t.tgfoid::regproc::text AS fn,
            (t.tgtype & 1) = 1 AS row, p.tgrelid::regclass::text AS parent_rel, p.tgname AS parent_name
       FROM pg_trigger t LEFT JOIN pg_trigger p ON p.oid = t.tgparentid
      WHERE t.tgname LIKE 'herald_capture_%' ORDER BY rel, name`);
  return rows;
}

const reading = (id, day, v) => ({ id, day, v });
const READING_SESSION = '{"x-hasura-user-id":"9"}';

// Each statement its own transaction: SQL, the session it sets, the log rows it must write in
// order: [op, old, new].
const READING_STEPS = [
  { sql: "INSERT INTO readings VALUES (1, 10, 'a')", rows: [['INSERT', null, reading(1, 10, 'a')]] },
  {
    sql: "INSERT INTO readings VALUES (2, 20, 'b'), (3, 150, 'c'), (4, 160, 'd')",
    session: READING_SESSION,
    rows: [['INSERT', null, reading(2, 20, 'b')], ['INSERT', null, reading(3, 150, 'c')], ['INSERT', null, reading(4, 160, 'd')]],
  },
  { sql: "UPDATE readings SET v = 'c2' WHERE id = 3", rows: [['UPDATE', reading(3, 150, 'c'), reading(3, 150, 'c2')]] },
  {
    // Moves the row early → late: the old image's DELETE, then the new image's INSERT.
    sql: "UPDATE readings SET day = 170, v = 'moved' WHERE id = 1",
    rows: [['DELETE', reading(1, 10, 'a'), null], ['INSERT', null, reading(1, 170, 'moved')]],
  },
  {
    // And late → early.
    sql: 'UPDATE readings SET day = 30 WHERE id = 4',
    session: READING_SESSION,
    rows: [['DELETE', reading(4, 160, 'd'), null], ['INSERT', null, reading(4, 30, 'd')]],
  },
  { sql: "INSERT INTO readings_late (id, day, v) VALUES (5, 199, 'into the partition')", rows: [['INSERT', null, reading(5, 199, 'into the partition')]] },
  {
    sql: 'DELETE FROM readings WHERE id IN (2, 3, 5)',
    rows: [['DELETE', reading(2, 20, 'b'), null], ['DELETE', reading(3, 150, 'c2'), null], ['DELETE', reading(5, 199, 'into the partition'), null]],
  },
];

/** Runs READING_STEPS on one connection; returns the log rows they must write, in order. */
async function runReadingSteps(db) {
  const c = await db.connect();
  try {
    for (const step of READING_STEPS) {
      await c.query('BEGIN');
      if (step.session) await c.query("SELECT set_config('herald.session', $1, true)", [step.session]);
      await c.query(step.sql);
      await c.query('COMMIT');
    }
  } finally {
    c.release();
  }
  return READING_STEPS.flatMap((step) => step.rows.map(([op, old, nw]) => ({
    source: 'public.readings', op, old, new: nw, session: step.session ?? null,
  })));
}

/** herald.log in seq order: id, the images' text, and the row with the images parsed. */
async function readingsLog(db) {
  const { rows } = await db.query(
    'SELECT id::text AS id, source, op, old::text AS old, new::text AS new, session FROM herald.log ORDER BY seq');
  return rows.map((r) => ({
    id: r.id, text: { old: r.old, new: r.new },
    row: { source: r.source, op: r.op, old: r.old && JSON.parse(r.old), new: r.new && JSON.parse(r.new), session: r.session },
  }));
}

describe('partitioned tables', () => {
  onBackend('postgres', 'plpgsql and native: row-level triggers on the parent, an UPDATE moving a row between partitions logged as DELETE + INSERT, each event delivered once', async () => {
    requireModule();
    const receiver = await receiverTracked();
    const texts = {};
    for (const mode of ['plpgsql', 'native']) {
      const { url, db } = await freshDb(cluster, READINGS);
      const triggers = [trig('reading_events', 'public.readings', receiver.url(`/${mode}`), { concurrency: 1 })];
      const a1 = await apply(url, mode, triggers);
      assert.ok(a1.out.includes(`capture: installed on public.readings (insert, update, delete; ${mode})`), a1.stdout);
      // On the parent: all three FOR EACH ROW, with the row function (PL/pgSQL too: statement-level
      // INSERT and DELETE triggers do not fire for the rows an UPDATE moves between partitions).
      assert.deepEqual(await captureTriggers(db, 'public.readings'), expectedPartitionedTriggers(mode), mode);
      // On the partitions: PostgreSQL's clones of them.
      const installed = await allCaptureTriggers(db);
      const fn = expectedPartitionedTriggers(mode)[0].fn;
      assert.deepEqual(installed.map(({ oid, ...t }) => t), ['readings', 'readings_early', 'readings_late'].flatMap((rel) =>
        ['delete', 'insert', 'update'].map((op) => ({
          rel, name: `herald_capture_${op}`, fn, row: true,
          parent_rel: rel === 'readings' ? null : 'readings', parent_name: rel === 'readings' ? null : `herald_capture_${op}`,
        }))), mode);
      // A second apply leaves them alone (the clones are not herald's to switch or remove).
      const a2 = await apply(url, mode, triggers);
      assert.deepEqual(a2.out, ['no changes'], `${mode}: ${a2.stdout}`);
      assert.deepEqual(await allCaptureTriggers(db), installed, `${mode}: the same triggers (oids) after the second apply`);

      const expected = await runReadingSteps(db);
      const log = await readingsLog(db);
      assert.deepEqual(log.map((l) => l.row), expected, `${mode}: the log rows (by content)`);
      texts[mode] = log.map((l) => l.text);

      await serveTracked(writeConfig({ database: url, capture: mode, triggers }), { env: NO_ENV_DB });
      await receiver.waitFor((reqs) => reqs.filter((q) => q.url === `/${mode}`).length >= log.length, 30000, `${log.length} deliveries at /${mode}`);
      for (const l of log) await waitSettled(db, l.id, { trigger: 'reading_events' });
      const got = receiver.requests.filter((q) => q.url === `/${mode}`);
      assert.equal(got.length, log.length, `${mode}: each event is delivered exactly once`);
      assert.deepEqual(got.map((q) => q.json.id), log.map((l) => l.id), `${mode}: in log order`);
      assert.deepEqual(got.map((q) => ({
        op: q.json.event.op, old: q.json.event.data.old, new: q.json.event.data.new, session: q.json.event.session_variables,
      })), expected.map((e) => ({ op: e.op, old: e.old, new: e.new, session: e.session && JSON.parse(e.session) })), `${mode}: payloads`);
      for (const q of got) assert.deepEqual(q.json.table, { schema: 'public', name: 'readings' });
    }
    // Both modes wrote the same images, text for text (key order included).
    assert.deepEqual(texts.native, texts.plpgsql);
  });

  onBackend('postgres', 'a partitioned table captured the old way (statement-level INSERT and DELETE): apply switches it to row-level, and moved rows are logged', async () => {
    const { url, db } = await freshDb(cluster, READINGS);
    const triggers = [trig('reading_events', 'public.readings')];
    await apply(url, 'plpgsql', triggers);
    // What an apply before row-level capture of partitioned tables installed: INSERT and DELETE
    // per statement with a transition table (UPDATE was per row already).
    await db.query(`
      BEGIN;
      DROP TRIGGER herald_capture_insert ON readings;
      DROP TRIGGER herald_capture_delete ON readings;
      CREATE TRIGGER herald_capture_insert AFTER INSERT ON readings REFERENCING NEW TABLE AS herald_new
        FOR EACH STATEMENT EXECUTE FUNCTION herald.capture_insert('public.readings');
      CREATE TRIGGER herald_capture_delete AFTER DELETE ON readings REFERENCING OLD TABLE AS herald_old
        FOR EACH STATEMENT EXECUTE FUNCTION herald.capture_delete('public.readings');
      COMMIT`);
    assert.deepEqual(await captureTriggers(db, 'public.readings'), expectedTriggers('plpgsql'));
    const logged = async () => (await readingsLog(db)).map((l) => l.row);
    await db.query("INSERT INTO readings VALUES (1, 10, 'a'), (2, 150, 'b')");
    assert.equal((await logged()).length, 2);
    // What those triggers lose: a row moved between partitions.
    await db.query('UPDATE readings SET day = 20 WHERE id = 2');
    assert.equal((await logged()).length, 2, 'with the statement-level triggers, the moved row is not logged');

    const a = await apply(url, 'plpgsql', triggers);
    assert.deepEqual(a.out, ['capture: switched to plpgsql on public.readings (insert, update, delete)'], a.stdout);
    assert.deepEqual(await captureTriggers(db, 'public.readings'), expectedPartitionedTriggers('plpgsql'));
    const partitions = (await allCaptureTriggers(db)).filter((t) => t.rel !== 'readings');
    assert.equal(partitions.length, 6, 'the row-level triggers are cloned on both partitions');

    await db.query('UPDATE readings SET day = 199 WHERE id = 1');
    await db.query("INSERT INTO readings VALUES (3, 30, 'c'), (4, 130, 'd')");
    await db.query('DELETE FROM readings WHERE id IN (1, 4)');
    const src = (row) => ({ source: 'public.readings', session: null, ...row });
    assert.deepEqual((await logged()).slice(2), [
      src({ op: 'DELETE', old: reading(1, 10, 'a'), new: null }),
      src({ op: 'INSERT', old: null, new: reading(1, 199, 'a') }),
      src({ op: 'INSERT', old: null, new: reading(3, 30, 'c') }),
      src({ op: 'INSERT', old: null, new: reading(4, 130, 'd') }),
      src({ op: 'DELETE', old: reading(1, 199, 'a'), new: null }),
      src({ op: 'DELETE', old: reading(4, 130, 'd'), new: null }),
    ], 'the moved row is logged, and every other row once');
    const again = await apply(url, 'plpgsql', triggers);
    assert.deepEqual(again.out, ['no changes'], again.stdout);
  });
});
