// Several herald serve processes on one PostgreSQL database (dispatcher.c "Several processes",
// pg_lease.c): each trigger, and the one-off pseudo-trigger, is delivered by the one process that
// holds its lease in herald.leases.
//
// - two processes: each trigger is taken by exactly one of them, the other says another process
//   delivers it, and every event is delivered once (without leases each process delivers every
//   event: twice);
// - failover on exit: the holder stopped with SIGTERM, then a holder killed with SIGKILL; each
//   time the other process takes the leases over before they expire (the holder's backend is
//   gone), and every event written meanwhile is delivered;
// - failover by expiry: a holder that stops renewing (SIGSTOP, its connection still open) loses
//   its leases once they expire, not before; after SIGCONT it says so and delivers nothing more.
// - a PostgreSQL restart ends every session: each process confirms its leases on its new session
//   before reading again, so events written after it are still delivered once.
import assert from 'node:assert/strict';
import { insertSeries, onBackend, serveTracked, stack, useCluster } from '../lib/fixture.js';
import { waitUntil } from '../lib/util.js';

const cluster = useCluster();

const TABLES = `CREATE TABLE a_items (id serial PRIMARY KEY, k int NOT NULL);
                CREATE TABLE b_items (id serial PRIMARY KEY, k int NOT NULL);`;
const TRIGGERS = ['ta', 'tb', '@one_off'];

function setup() {
  return stack(cluster, {
    sql: TABLES,
    serve: false,
    triggers: (r) => [
      { name: 'ta', table: 'public.a_items', operations: ['insert'], webhook: r.url('/a'), start: 'beginning' },
      { name: 'tb', table: 'public.b_items', operations: ['insert'], webhook: r.url('/b'), start: 'beginning' },
    ],
  });
}

const tookRe = (t) => new RegExp(`trigger=${t.replace('@', '\\@')} msg="lease taken`);
const took = (h, t) => tookRe(t).test(h.stderr);

/** Waits until every trigger was taken by exactly one of hs (counting log lines); returns, per
 * trigger, the process that took it. */
async function holders(hs) {
  await waitUntil(() => TRIGGERS.every((t) => hs.filter((h) => took(h, t)).length === 1), {
    timeoutMs: 20000, message: `each of ${TRIGGERS} taken by one process`,
  });
  return Object.fromEntries(TRIGGERS.map((t) => [t, hs.find((h) => took(h, t))]));
}

/** The lease row of trigger t. */
async function lease(db, t) {
  const { rows } = await db.query(
    'SELECT owner, expires_at, now() AS now FROM herald.leases WHERE trigger = $1', [t]);
  return rows[0];
}

/** Waits until trigger t's lease has another owner than old's; returns the new lease row. */
async function takenOver(db, t, old, message) {
  let now;
  await waitUntil(async () => {
    now = await lease(db, t);
    return now.owner !== old.owner;
  }, { timeoutMs: 30000, message });
  return now;
}

/** The pid in a lease owner's id (host:pid:random). */
const ownerPid = (l) => l.owner.split(':')[1];

/** The k values delivered to path, with how many times each. */
function deliveredK(receiver, path) {
  const n = new Map();
  for (const q of receiver.requests) {
    if (q.url !== path) continue;
    const k = q.json?.event?.data?.new?.k;
    n.set(k, (n.get(k) || 0) + 1);
  }
  return n;
}

/** Resolves once every k in from..to was delivered to path (re-checked at each arrival). */
async function waitDelivered(receiver, path, from, to) {
  await receiver.waitFor(() => {
    const n = deliveredK(receiver, path);
    for (let k = from; k <= to; k++) if (!n.has(k)) return false;
    return true;
  }, 30000, `${path}: k ${from}..${to} delivered`);
}

function assertOnce(receiver, path, from, to) {
  const n = deliveredK(receiver, path);
  const twice = [...n].filter(([k, c]) => k >= from && k <= to && c !== 1);
  assert.deepEqual(twice, [], `${path}: every event of k ${from}..${to} delivered exactly once`);
}

onBackend('postgres', 'two serve processes: each trigger is delivered by one of them, every event once', async () => {
  const s = await setup();
  const [a, b] = await Promise.all([serveTracked(s.file), serveTracked(s.file)]);
  const by = await holders([a, b]);
  for (const t of TRIGGERS) {
    const other = by[t] === a ? b : a;
    await other.waitForLog(new RegExp(`trigger=${t.replace('@', '\\@')} msg="another process holds the lease`), 20000);
    assert.equal(ownerPid(await lease(s.db, t)), String(by[t].pid), `${t}: the lease row names its holder`);
  }
  // /metrics says which process delivers each trigger.
  for (const h of [a, b]) {
    const text = await (await fetch(h.url('/metrics'))).text();
    for (const t of ['ta', 'tb']) {
      const m = new RegExp(`^herald_trigger_lease_held\\{trigger="${t}"\\} (\\d)$`, 'm').exec(text);
      assert.ok(m, `herald_trigger_lease_held for ${t} in:\n${text}`);
      assert.equal(m[1], by[t] === h ? '1' : '0', `${t}: herald_trigger_lease_held of pid ${h.pid}`);
    }
  }
  await insertSeries(s.db, 'a_items', 'k', 1, 300);
  await insertSeries(s.db, 'b_items', 'k', 1, 300);
  await waitDelivered(s.receiver, '/a', 1, 300);
  await waitDelivered(s.receiver, '/b', 1, 300);
  // Every page settled (each trigger's cursor past its events) before counting: a second
  // delivery, had there been one, came before its page settled.
  await waitUntil(async () => Number((await s.db.query('SELECT count(*) AS n FROM herald.attempts')).rows[0].n) >= 600);
  assertOnce(s.receiver, '/a', 1, 300);
  assertOnce(s.receiver, '/b', 1, 300);
  assert.equal(s.receiver.requests.length, 600);
  assert.equal(Number((await s.db.query('SELECT count(*) AS n FROM herald.attempts')).rows[0].n), 600, 'one attempt per event');
});

onBackend('postgres', 'failover on exit: SIGTERM, then SIGKILL of the holder; the other takes the leases before they expire', async () => {
  const s = await setup();
  const first = await Promise.all([serveTracked(s.file), serveTracked(s.file)]);
  const by = await holders(first);
  // The holder of ta; it may hold tb and the one-off trigger too.
  const h1 = by.ta;
  const h2 = first.find((h) => h !== h1);
  await insertSeries(s.db, 'a_items', 'k', 1, 100);
  await waitDelivered(s.receiver, '/a', 1, 100);

  const old1 = await lease(s.db, 'ta');
  assert.equal(await h1.stop('SIGTERM'), 0);
  await insertSeries(s.db, 'a_items', 'k', 101, 200);
  await insertSeries(s.db, 'b_items', 'k', 1, 100);
  let at = await takenOver(s.db, 'ta', old1, 'ta taken over after SIGTERM');
  assert.equal(ownerPid(at), String(h2.pid));
  assert.ok(at.now < old1.expires_at, `taken over (${at.now.toISOString()}) before the old lease expired (${old1.expires_at.toISOString()})`);
  await waitDelivered(s.receiver, '/a', 101, 200);
  await waitDelivered(s.receiver, '/b', 1, 100);

  // A third process starts as a standby, then the holder is killed.
  const h3 = await serveTracked(s.file);
  await h3.waitForLog(/trigger=ta msg="another process holds the lease/, 20000);
  const old2 = await lease(s.db, 'ta');
  await h2.kill9();
  await insertSeries(s.db, 'a_items', 'k', 201, 300);
  at = await takenOver(s.db, 'ta', old2, 'ta taken over after SIGKILL');
  assert.equal(ownerPid(at), String(h3.pid));
  assert.ok(at.now < old2.expires_at, `taken over (${at.now.toISOString()}) before the old lease expired (${old2.expires_at.toISOString()})`);
  await h3.waitForLog(/trigger=ta msg="lease taken/, 20000);
  await waitDelivered(s.receiver, '/a', 201, 300);
});

onBackend('postgres', 'failover by expiry: a holder that stops renewing loses its leases when they expire, then delivers nothing', async () => {
  const s = await setup();
  const hs = await Promise.all([serveTracked(s.file), serveTracked(s.file)]);
  const by = await holders(hs);
  const stopped = by.ta;
  const other = hs.find((h) => h !== stopped);
  const before = await lease(s.db, 'ta');
  stopped.proc.kill('SIGSTOP');
  try {
    await insertSeries(s.db, 'a_items', 'k', 1, 50);
    const at = await takenOver(s.db, 'ta', before, 'ta taken over once the stopped holder\'s lease expired');
    assert.equal(ownerPid(at), String(other.pid));
    // Its connection is open and its backend alive: only expiry lets the lease go.
    assert.ok(at.now >= before.expires_at, `taken over (${at.now.toISOString()}) once the lease had expired (${before.expires_at.toISOString()})`);
    await waitDelivered(s.receiver, '/a', 1, 50);
  } finally {
    stopped.proc.kill('SIGCONT');
  }
  await stopped.waitForLog(/trigger=ta msg="lease lost: another process delivers it"/, 20000);
  await insertSeries(s.db, 'a_items', 'k', 51, 150);
  await waitDelivered(s.receiver, '/a', 51, 150);
  await waitUntil(async () => Number((await s.db.query(
    "SELECT count(*) AS n FROM herald.attempts WHERE trigger = 'ta'")).rows[0].n) >= 150);
  assertOnce(s.receiver, '/a', 51, 150);
});

onBackend('postgres', 'PostgreSQL restarted: leases are confirmed on the new sessions before anything is read; later events delivered once', async () => {
  const s = await setup();
  const hs = await Promise.all([serveTracked(s.file), serveTracked(s.file)]);
  await holders(hs);
  await insertSeries(s.db, 'a_items', 'k', 1, 50);
  await waitDelivered(s.receiver, '/a', 1, 50);
  await cluster.pg.restart();
  // Both processes reconnect; the old sessions are gone, so either may hold ta now, never both.
  await waitUntil(() => hs.every((h) => /msg="database reconnected"/.test(h.stderr)), {
    timeoutMs: 30000, message: 'both processes reconnected',
  });
  await waitUntil(async () => {
    try {
      const l = await lease(s.db, 'ta');
      return l && l.expires_at > l.now && hs.some((h) => ownerPid(l) === String(h.pid));
    } catch {
      return false; /* the pool's connections of before the restart */
    }
  }, { timeoutMs: 30000, message: 'ta held again after the restart' });
  await insertSeries(s.db, 'a_items', 'k', 51, 250);
  await waitDelivered(s.receiver, '/a', 51, 250);
  await waitUntil(async () => Number((await s.db.query(
    "SELECT count(*) AS n FROM herald.attempts WHERE trigger = 'ta'")).rows[0].n) >= 250);
  assertOnce(s.receiver, '/a', 1, 250);
});
