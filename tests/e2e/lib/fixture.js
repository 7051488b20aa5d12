// The usual arrangement of a delivery test: a database per test — PostgreSQL (one cluster per
// test file) or SQLite (a file in a temporary directory) — with the test's tables, a receiver, a
// config, `herald apply`, `herald serve`. A backend-independent case runs once per backend:
//
//   const cluster = useCluster();                      // at file level: before/after hooks
//   forBackends('name', async (t, backend) => {        // "postgres: name", "sqlite: name"
//     const s = await stack(cluster, {
//       backend,
//       sql: 'CREATE TABLE orders (...)',              // or { postgres: '…', sqlite: '…' }
//       triggers: (r) => [{ name: 'o', table: 'public.orders', webhook: r.url('/o'), start: 'beginning' }],
//     });
//     await s.db.query('INSERT ...');                  // $1… parameters on both backends
//     await s.receiver.waitFor(1);
//   });
//
// s.db is a pg.Pool (PostgreSQL) or an sqliteDb handle (lib/sqlite.js), both with
// query(sql, params) -> { rows } and db.backend. The helpers below (logRows, attemptsOf,
// delayedOf, waitSettled, countRows, emit, transaction, insertSeries) hide the differences:
// herald.log versus herald_log, jsonb versus JSON text, booleans versus 0/1.
// HERALD_E2E_BACKENDS=postgres (or sqlite) runs one backend only.
//
// e2eTest appends the tail of herald's stderr and of the PostgreSQL log to a failing test's error.
import { after, before, test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { cleanup as heraldCleanup, run, serve, writeConfig } from './herald.js';
import { startPg } from './pg.js';
import { startReceiver } from './receiver.js';
import { inline, sqliteDb } from './sqlite.js';
import { waitUntil } from './util.js';

/** The backends the suites run on: both unless HERALD_E2E_BACKENDS names some. */
export const BACKENDS = (process.env.HERALD_E2E_BACKENDS || 'postgres,sqlite')
  .split(',').map((b) => b.trim()).filter(Boolean);

let dbSeq = 0;
let current = null; // resources of the running test (tests in a file run one at a time)

/** Starts a cluster before the file's tests (when PostgreSQL is one of the backends) and stops
 * it (and any herald left) after them. */
export function useCluster() {
  const ctx = { pg: null };
  before(async () => {
    if (BACKENDS.includes('postgres')) ctx.pg = await startPg();
  });
  after(async () => {
    await heraldCleanup();
    if (ctx.pg) await ctx.pg.stop();
  });
  return ctx;
}

/** node:test's test() with diagnostics on failure and cleanup of what the test started. */
export function e2eTest(name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts;
    opts = {};
  }
  return test(name, opts, async (t) => {
    const res = { heralds: [], receivers: [], pools: [], cluster: null };
    current = res;
    try {
      await fn(t);
    } catch (e) {
      let diag = '';
      for (const h of res.heralds) diag += `\n--- herald serve (pid ${h.pid}) stderr tail ---\n${h.tail(40)}`;
      if (res.cluster) diag += `\n--- postgres log tail ---\n${res.cluster.logTail(20)}`;
      if (e && typeof e === 'object' && typeof e.message === 'string') {
        try {
          e.message += diag;
        } catch {
          /* read-only message */
        }
      }
      throw e;
    } finally {
      current = null;
      for (const h of res.heralds) if (h.running) await h.kill9();
      for (const r of res.receivers) await r.close().catch(() => {});
      for (const p of res.pools) await p.end().catch(() => {});
    }
  });
}

/** One e2eTest per backend, named "<backend>: name"; fn(t, backend). */
export function forBackends(name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts;
    opts = {};
  }
  for (const backend of BACKENDS) e2eTest(`${backend}: ${name}`, opts, (t) => fn(t, backend));
}

/** A case that only makes sense on one backend (PostgreSQL's snapshots, SQLite's file lock). */
export function onBackend(backend, name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts;
    opts = {};
  }
  if (BACKENDS.includes(backend)) e2eTest(`${backend}: ${name}`, opts, (t) => fn(t, backend));
}

/** Registers a serve handle / receiver / pool with the running test for cleanup and diagnostics. */
export function track(kind, obj) {
  if (current) current[kind].push(obj);
  return obj;
}

/** serve() whose handle is killed at the end of the running test. */
export async function serveTracked(file, opts) {
  const h = await serve(file, opts);
  return track('heralds', h);
}

export async function receiverTracked(opts) {
  return track('receivers', await startReceiver(opts));
}

let sqliteDir = null;
/** A directory for this test process's SQLite files, removed at exit. */
export function sqliteDirectory() {
  if (!sqliteDir) {
    sqliteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-sqlite-'));
    process.on('exit', () => {
      if (!process.env.HERALD_E2E_KEEP) fs.rmSync(sqliteDir, { recursive: true, force: true });
    });
  }
  return sqliteDir;
}

/** The setup SQL for a backend: a string (both), { postgres, sqlite }, or backend => string. */
function sqlFor(sql, backend) {
  if (!sql) return null;
  if (typeof sql === 'function') return sql(backend);
  if (typeof sql === 'object') return sql[backend] ?? null;
  return sql;
}

/**
 * A fresh database with a handle on it: a new database in the cluster (a pg.Pool), or a new
 * SQLite file (an sqliteDb handle). Resolves with { name, url, db }.
 */
export async function freshDb(cluster, sql, backend = 'postgres') {
  const name = `t${process.pid}_${++dbSeq}`;
  const setup = sqlFor(sql, backend);
  if (backend === 'sqlite') {
    const db = sqliteDb(path.join(sqliteDirectory(), `${name}.db`));
    if (setup) await db.exec(setup);
    else await db.exec('PRAGMA user_version = 0'); // creates the file
    return { name, url: db.url, db };
  }
  const url = await cluster.pg.createDb(name);
  if (current) current.cluster = cluster.pg;
  const db = track('pools', new pg.Pool({ connectionString: url, max: 8 }));
  db.on('error', () => {});
  db.backend = 'postgres';
  db.exec = (script) => db.query(script);
  if (setup) await db.query(setup);
  return { name, url, db };
}

/**
 * Database + receiver + config + apply + serve.
 * opts: backend ('postgres' or 'sqlite'; default postgres), sql (setup, see sqlFor), triggers
 *       (receiver → trigger list), config (extra top-level keys), env (herald's environment),
 *       serve (default true).
 */
export async function stack(cluster, opts = {}) {
  const backend = opts.backend || 'postgres';
  const { name, url, db } = await freshDb(cluster, opts.sql, backend);
  const receiver = opts.receiver || (await receiverTracked());
  const config = {
    database: url,
    log_level: 'info',
    shutdown_grace: '10s',
    ...(opts.config || {}),
    triggers: opts.triggers(receiver),
  };
  const file = writeConfig(config);
  const applied = await run(['apply', file], { env: opts.env });
  if (applied.code !== 0) {
    throw new Error(`herald apply failed (exit ${applied.code}):\nstdout: ${applied.stdout}\nstderr: ${applied.stderr}`);
  }
  const s = { backend, dbName: name, url, db, receiver, file, config, applied, herald: null, env: opts.env };
  s.serve = async (more) => {
    s.herald = await serveTracked(file, { env: opts.env, ...(more || {}) });
    return s.herald;
  };
  if (opts.serve !== false) await s.serve();
  return s;
}

/** The name of herald's table `name` on db's backend: herald.log or herald_log. */
export function heraldTable(db, name) {
  return db.backend === 'sqlite' ? `herald_${name}` : `herald.${name}`;
}

const sessionJson = (v) => {
  if (v === null || v === undefined) return null;
  try { return JSON.parse(v); } catch { return v; }
};
const sqliteJson = (v) => (v === null || v === undefined ? null : JSON.parse(v));
const toDate = (v) => (v === null || v === undefined ? null : v instanceof Date ? v : new Date(v));

/** herald.attempts rows of an event, oldest first: trigger, attempt, status, error, response,
 * latency_ms, at (a Date). */
export async function attemptsOf(db, eventId) {
  const { rows } = await db.query(
    `SELECT trigger, attempt, status, error, response, latency_ms, at FROM ${heraldTable(db, 'attempts')}
      WHERE event_id = $1 ORDER BY attempt, id`,
    [eventId],
  );
  return rows.map((r) => ({ ...r, at: toDate(r.at) }));
}

/** Waits until an event has a recorded attempt with a 2xx status for the trigger. */
export function waitSettled(db, eventId, { trigger, timeoutMs = 30000 } = {}) {
  const sql = db.backend === 'sqlite'
    ? `SELECT 1 AS ok FROM herald_attempts WHERE event_id = $1 AND status BETWEEN 200 AND 299
         AND ($2 IS NULL OR trigger = $2)`
    : `SELECT 1 FROM herald.attempts WHERE event_id = $1 AND status BETWEEN 200 AND 299
         AND ($2::text IS NULL OR trigger = $2)`;
  return waitUntil(async () => {
    const { rows } = await db.query(sql, [eventId, trigger ?? null]);
    return rows.length > 0;
  }, { timeoutMs, message: `a 2xx attempt of event ${eventId} in herald's attempts` });
}

/** herald.log rows whose source is `source`, in seq order: seq, id, op, old, new, session (parsed
 * JSON), at (a Date). */
export async function logRows(db, source) {
  if (db.backend === 'sqlite') {
    const { rows } = await db.query(
      'SELECT seq, id, op, old, new, session, at FROM herald_log WHERE source = $1 ORDER BY seq', [source]);
    return rows.map((r) => ({
      ...r, old: sqliteJson(r.old), new: sqliteJson(r.new), session: sqliteJson(r.session), at: toDate(r.at),
    }));
  }
  const { rows } = await db.query(
    'SELECT seq, id::text AS id, op, old, new, session, at FROM herald.log WHERE source = $1 ORDER BY seq',
    [source],
  );
  // The session is the setting's text (schema 3): JSON when it is JSON, else a JSON string.
  return rows.map((r) => ({ ...r, session: sessionJson(r.session) }));
}

/** herald.delayed rows of an event: trigger, attempts, dead (a boolean), last_error, due_at (a Date). */
export async function delayedOf(db, eventId) {
  const { rows } = await db.query(
    `SELECT trigger, attempts, dead, last_error, due_at FROM ${heraldTable(db, 'delayed')} WHERE event_id = $1`,
    [eventId]);
  return rows.map((r) => ({ ...r, dead: Boolean(r.dead), due_at: toDate(r.due_at) }));
}

/** SELECT count(*) FROM herald's table `name` [WHERE where], as a number. */
export async function countRows(db, name, where = 'true', params = []) {
  const { rows } = await db.query(`SELECT count(*) AS n FROM ${heraldTable(db, name)} WHERE ${where}`, params);
  return Number(rows[0].n);
}

/** The SQL statement emitting a custom event with parameters $1 (type) and $2 (payload JSON text):
 * herald.emit on PostgreSQL, an INSERT into the herald_emit view on SQLite. */
export function emitSql(db) {
  return db.backend === 'sqlite'
    ? 'INSERT INTO herald_emit (type, payload) VALUES ($1, $2)'
    : 'SELECT herald.emit($1, $2::jsonb)';
}

/** Emits a custom event (payload: a JS value) in its own transaction. */
export function emit(db, type, payload) {
  return db.query(emitSql(db), [type, JSON.stringify(payload)]);
}

/**
 * Runs statements in order on one connection (PostgreSQL: a client of the pool; SQLite: one
 * shell process), so that BEGIN … ROLLBACK / SAVEPOINT scripts mean what they say. Each item is
 * SQL text or [sql, params].
 */
export async function transaction(db, statements) {
  const items = statements.map((x) => (Array.isArray(x) ? x : [x, []]));
  if (db.backend === 'sqlite') {
    await db.exec(items.map(([sql, params]) => inline(sql, params)).join(';\n'));
    return;
  }
  const c = await db.connect();
  try {
    for (const [sql, params] of items) await c.query(sql, params);
  } finally {
    c.release();
  }
}

/** INSERT INTO table (column) the integers from..to, in one statement (one transaction). */
export function insertSeries(db, table, column, from, to) {
  const f = Number(from);
  const t = Number(to);
  return db.query(`WITH RECURSIVE g(n) AS (SELECT ${f} UNION ALL SELECT n + 1 FROM g WHERE n < ${t})
    INSERT INTO ${table} (${column}) SELECT n FROM g`);
}
