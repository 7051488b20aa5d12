// The usual arrangement of a delivery test: one PostgreSQL cluster per test file, and per test a
// fresh database with the test's tables, a receiver, a config, `herald apply`, `herald serve`.
//
//   const cluster = useCluster();                      // at file level: before/after hooks
//   e2eTest('name', async () => {
//     const s = await stack(cluster, {
//       sql: 'CREATE TABLE orders (...)',
//       triggers: (r) => [{ name: 'o', table: 'public.orders', webhook: r.url('/o'), start: 'beginning' }],
//     });
//     await s.db.query('INSERT ...');
//     await s.receiver.waitFor(1);
//   });
//
// e2eTest appends the tail of herald's stderr and of the PostgreSQL log to a failing test's error.
import { after, before, test } from 'node:test';
import pg from 'pg';
import { cleanup as heraldCleanup, run, serve, writeConfig } from './herald.js';
import { startPg } from './pg.js';
import { startReceiver } from './receiver.js';
import { waitUntil } from './util.js';

let dbSeq = 0;
let current = null; // resources of the running test (tests in a file run one at a time)

/** Starts a cluster before the file's tests and stops it (and any herald left) after them. */
export function useCluster() {
  const ctx = { pg: null };
  before(async () => {
    ctx.pg = await startPg();
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

/** A fresh database in the cluster with a pool on it. */
export async function freshDb(cluster, sql) {
  const name = `t${process.pid}_${++dbSeq}`;
  const url = await cluster.pg.createDb(name);
  if (current) current.cluster = cluster.pg;
  const db = track('pools', new pg.Pool({ connectionString: url, max: 8 }));
  db.on('error', () => {});
  if (sql) await db.query(sql);
  return { name, url, db };
}

/**
 * Database + receiver + config + apply + serve.
 * opts: sql (setup), triggers (receiver → trigger list), config (extra top-level keys),
 *       env (herald's environment), serve (default true).
 */
export async function stack(cluster, opts = {}) {
  const { name, url, db } = await freshDb(cluster, opts.sql);
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
  const s = { dbName: name, url, db, receiver, file, config, applied, herald: null, env: opts.env };
  s.serve = async (more) => {
    s.herald = await serveTracked(file, { env: opts.env, ...(more || {}) });
    return s.herald;
  };
  if (opts.serve !== false) await s.serve();
  return s;
}

/** herald.attempts rows of an event, oldest first. */
export async function attemptsOf(db, eventId) {
  const { rows } = await db.query(
    'SELECT trigger, attempt, status, error, response, latency_ms FROM herald.attempts WHERE event_id = $1 ORDER BY attempt',
    [eventId],
  );
  return rows;
}

/** Waits until an event has a recorded attempt with a 2xx status for the trigger. */
export function waitSettled(db, eventId, { trigger, timeoutMs = 30000 } = {}) {
  return waitUntil(async () => {
    const { rows } = await db.query(
      `SELECT 1 FROM herald.attempts WHERE event_id = $1 AND status BETWEEN 200 AND 299
         AND ($2::text IS NULL OR trigger = $2)`,
      [eventId, trigger ?? null],
    );
    return rows.length > 0;
  }, { timeoutMs, message: `a 2xx attempt of event ${eventId} in herald.attempts` });
}

/** herald.log rows whose source is `source`, in seq order. */
export async function logRows(db, source) {
  const { rows } = await db.query(
    'SELECT seq, id::text AS id, op, old, new, session FROM herald.log WHERE source = $1 ORDER BY seq',
    [source],
  );
  return rows;
}
