// The operator commands: status (backlog while herald is not serving; delayed and dead after
// failures), events (list, --trigger with delivery states, --dead, --pending, paging), event ID
// (the event, its deliveries, every attempt), redeliver (a dead event is delivered again with
// current_retry 0), replay (by seq and by time, for one trigger only), emit, argument errors
// (exit 2) and unknown names (exit 1), and the --json shapes documented in docs/cli.md.
// The cases with a database run on PostgreSQL (they look into herald.delayed and friends);
// the argument checks need none.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { attemptsOf, e2eTest, logRows, onBackend, stack, useCluster, waitSettled } from '../lib/fixture.js';
import { run, writeConfig } from '../lib/herald.js';
import { RFC3339_RE, UUID_RE, waitUntil } from '../lib/util.js';

const cluster = useCluster();

const ITEMS = 'CREATE TABLE items (id int PRIMARY KEY, v text)';
const NO_ENV_DB = { HERALD_DATABASE_URL: undefined };

/** `herald ARGS -c FILE`; with json, parses stdout (and checks the exit code is 0). */
async function herald(s, args, { json = false, env } = {}) {
  const r = await run([...args, '-c', s.file, ...(json ? ['--json'] : [])], { env: { ...NO_ENV_DB, ...(env || {}) } });
  if (json) {
    assert.equal(r.code, 0, `herald ${args.join(' ')} --json exited ${r.code}: ${r.stderr}`);
    assert.equal(r.stderr, '', `herald ${args.join(' ')}: nothing on stderr`);
    return JSON.parse(r.stdout);
  }
  return r;
}

const byTrigger = (rows) => Object.fromEntries(rows.map((r) => [r.trigger, r]));

async function insertRows(s, ids) {
  for (const id of ids) await s.db.query("INSERT INTO items VALUES ($1, 'x')", [id]);
  const log = await logRows(s.db, 'public.items');
  return ids.map((id) => log.find((l) => l.new.id === id));
}

async function delayedOf(db, eventId) {
  const { rows } = await db.query('SELECT trigger, attempts, dead FROM herald.delayed WHERE event_id = $1 ORDER BY trigger', [eventId]);
  return rows;
}

function assertEventShape(e, { deliveries }) {
  const keys = ['id', 'seq', 'created_at', 'source', 'op', 'data', 'session_variables'];
  assert.deepEqual(Object.keys(e).sort(), [...keys, ...(deliveries ? ['deliveries'] : [])].sort());
  assert.match(e.id, UUID_RE);
  assert.equal(typeof e.seq, 'number');
  assert.match(e.created_at, RFC3339_RE);
  assert.match(e.created_at, /\.\d{6}Z$/, 'UTC with microseconds');
  assert.deepEqual(Object.keys(e.data).sort(), ['new', 'old']);
  if (deliveries) for (const d of e.deliveries) assertDeliveryShape(d);
}

function assertDeliveryShape(d) {
  assert.deepEqual(Object.keys(d).sort(), ['attempts', 'delivered_at', 'last_error', 'next_attempt_at', 'state', 'trigger']);
  assert.ok(['pending', 'delivered', 'retrying', 'dead'].includes(d.state), d.state);
  assert.equal(typeof d.attempts, 'number');
  for (const k of ['delivered_at', 'next_attempt_at']) if (d[k] !== null) assert.match(d[k], RFC3339_RE);
}

function assertAttemptShape(a) {
  assert.deepEqual(Object.keys(a).sort(), ['at', 'attempt', 'error', 'event_id', 'id', 'latency_ms', 'response', 'seq', 'status', 'trigger']);
  assert.match(a.event_id, UUID_RE);
  assert.match(a.at, RFC3339_RE);
  assert.equal(typeof a.latency_ms, 'number');
}

/**
 * Three triggers on items: ok (answers 200), bad (500, one retry 100ms later, then dead),
 * slow (500, next retry in an hour: stays delayed). Not serving until s.serve().
 */
function failingStack() {
  return stack(cluster, {
    sql: ITEMS,
    serve: false,
    triggers: (r) => [
      { name: 'ok', table: 'public.items', operations: ['insert', 'update'], webhook: r.url('/ok'), start: 'beginning' },
      { name: 'bad', table: 'public.items', operations: ['insert'], webhook: r.url('/bad'), start: 'beginning',
        retry: { max_retries: 1, interval: '100ms', backoff: 'fixed' } },
      { name: 'slow', table: 'public.items', operations: ['insert'], webhook: r.url('/slow'), start: 'beginning',
        retry: { max_retries: 3, interval: '1h', max_interval: '1h', backoff: 'fixed' } },
    ],
  });
}

/** Serves until ok has delivered `events`, bad has them dead and slow has them delayed. */
async function failAndSettle(s, events) {
  s.receiver.respond = (req) => (req.url === '/ok' ? undefined : { status: 500, body: 'nope' });
  await s.serve();
  for (const e of events) {
    await waitSettled(s.db, e.id, { trigger: 'ok' });
    await waitUntil(async () => {
      const d = await delayedOf(s.db, e.id);
      return d.length === 2 && d[0].trigger === 'bad' && d[0].dead && d[1].trigger === 'slow' && !d[1].dead;
    }, { message: `event ${e.id}: dead for bad, delayed for slow` });
  }
}

describe('status', () => {
  onBackend('postgres', 'backlog while herald is not serving; delayed, dead and last delivery after failures', async () => {
    const s = await failingStack();
    const events = await insertRows(s, [1, 2, 3]);
    await s.db.query("UPDATE items SET v = 'y' WHERE id = 1"); // ok reads updates, the others do not

    let st = await herald(s, ['status'], { json: true });
    assert.ok(Array.isArray(st));
    for (const row of st) {
      assert.deepEqual(Object.keys(row).sort(), ['backlog', 'dead', 'delayed', 'lag_seconds', 'last_delivery_at', 'trigger']);
    }
    let t = byTrigger(st);
    assert.deepEqual(Object.keys(t).sort(), ['bad', 'ok', 'slow']);
    assert.equal(t.ok.backlog, 4);
    assert.equal(t.bad.backlog, 3);
    assert.equal(t.slow.backlog, 3);
    for (const row of st) {
      assert.equal(row.delayed, 0);
      assert.equal(row.dead, 0);
      assert.equal(row.last_delivery_at, null);
      assert.equal(typeof row.lag_seconds, 'number');
      assert.ok(row.lag_seconds >= 0 && row.lag_seconds < 120, `lag ${row.lag_seconds}`);
    }

    const human = await herald(s, ['status']);
    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^TRIGGER\s+BACKLOG\s+DELAYED\s+DEAD\s+LAST DELIVERY\s+LAG$/);
    assert.match(human.stdout, /^ok\s+4\s+0\s+0\s+-\s+\d/m);

    await failAndSettle(s, events);
    st = await herald(s, ['status'], { json: true });
    t = byTrigger(st);
    assert.deepEqual([t.ok.backlog, t.ok.delayed, t.ok.dead, t.ok.lag_seconds], [0, 0, 0, null]);
    assert.match(t.ok.last_delivery_at, RFC3339_RE);
    assert.deepEqual([t.bad.backlog, t.bad.delayed, t.bad.dead, t.bad.last_delivery_at], [0, 0, 3, null]);
    assert.deepEqual([t.slow.backlog, t.slow.delayed, t.slow.dead], [0, 3, 0]);
  });
});

describe('events and event', () => {
  onBackend('postgres', 'events: the log newest first, --trigger with states, --dead, --pending, --limit/--offset', async () => {
    const s = await failingStack();
    const events = await insertRows(s, [1, 2, 3]);
    const seqs = events.map((e) => Number(e.seq));

    // Not serving: everything is pending for every trigger.
    let list = await herald(s, ['events'], { json: true });
    assert.deepEqual(list.map((e) => e.seq), [...seqs].reverse());
    list.forEach((e) => assertEventShape(e, { deliveries: false }));
    assert.deepEqual(list.map((e) => [e.source, e.op, e.data.old, e.data.new]).reverse(),
      [1, 2, 3].map((id) => ['public.items', 'INSERT', null, { id, v: 'x' }]));
    list = await herald(s, ['events', '--trigger', 'bad'], { json: true });
    list.forEach((e) => assertEventShape(e, { deliveries: true }));
    assert.deepEqual(list.map((e) => e.deliveries.map((d) => [d.trigger, d.state, d.attempts])),
      [[['bad', 'pending', 0]], [['bad', 'pending', 0]], [['bad', 'pending', 0]]]);
    assert.equal((await herald(s, ['events', '--trigger', 'bad', '--pending'], { json: true })).length, 3);

    await failAndSettle(s, events);
    list = await herald(s, ['events', '--trigger', 'ok'], { json: true });
    assert.deepEqual(list.map((e) => e.deliveries[0].state), ['delivered', 'delivered', 'delivered']);
    assert.ok(list.every((e) => RFC3339_RE.test(e.deliveries[0].delivered_at)));
    list = await herald(s, ['events', '--trigger', 'bad'], { json: true });
    assert.deepEqual(list.map((e) => [e.deliveries[0].state, e.deliveries[0].attempts, e.deliveries[0].last_error]),
      [['dead', 2, 'HTTP status 500'], ['dead', 2, 'HTTP status 500'], ['dead', 2, 'HTTP status 500']]);
    list = await herald(s, ['events', '--trigger', 'slow'], { json: true });
    for (const e of list) {
      assert.equal(e.deliveries[0].state, 'retrying');
      assert.match(e.deliveries[0].next_attempt_at, RFC3339_RE);
    }

    // --dead: across triggers and per trigger; --pending: not delivered and not dead.
    assert.deepEqual((await herald(s, ['events', '--dead'], { json: true })).map((e) => e.seq), [...seqs].reverse());
    assert.equal((await herald(s, ['events', '--dead', '--trigger', 'bad'], { json: true })).length, 3);
    assert.equal((await herald(s, ['events', '--dead', '--trigger', 'ok'], { json: true })).length, 0);
    assert.equal((await herald(s, ['events', '--pending', '--trigger', 'ok'], { json: true })).length, 0);
    assert.equal((await herald(s, ['events', '--pending', '--trigger', 'slow'], { json: true })).length, 3);
    assert.equal((await herald(s, ['events', '--pending', '--trigger', 'bad'], { json: true })).length, 0);

    // Paging, newest first.
    assert.deepEqual((await herald(s, ['events', '--limit', '1'], { json: true })).map((e) => e.seq), [seqs[2]]);
    assert.deepEqual((await herald(s, ['events', '--limit', '2', '--offset', '1'], { json: true })).map((e) => e.seq),
      [seqs[1], seqs[0]]);
    assert.deepEqual(await herald(s, ['events', '--offset', '3'], { json: true }), []);

    // The table.
    const human = await herald(s, ['events', '--trigger', 'bad']);
    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^SEQ\s+ID\s+CREATED\s+SOURCE\s+OP\s+STATE\s+ATTEMPTS\s+LAST ERROR$/);
    assert.equal(lines.length, 4);
    assert.match(lines[1], new RegExp(`^\\s*${seqs[2]}\\s+${events[2].id}\\s+\\S+Z\\s+public\\.items\\s+INSERT\\s+dead\\s+2\\s+HTTP status 500$`));
  });

  onBackend('postgres', 'event ID: the event, a delivery per trigger and every attempt, newest first', async () => {
    const s = await failingStack();
    const [ev] = await insertRows(s, [7]);
    const pending = await herald(s, ['event', ev.id], { json: true });
    const { attempts: none, ...pendingEvent } = pending;
    assertEventShape(pendingEvent, { deliveries: true });
    assert.deepEqual(none, []);
    assert.deepEqual(pending.deliveries, [], 'no trigger has attempted it yet');

    await failAndSettle(s, [ev]);
    const e = await herald(s, ['event', ev.id], { json: true });
    const { attempts, ...rest } = e;
    assert.ok(Array.isArray(attempts));
    assertEventShape(rest, { deliveries: true });
    assert.equal(e.id, ev.id);
    assert.equal(e.seq, Number(ev.seq));
    assert.deepEqual(e.data, { old: null, new: { id: 7, v: 'x' } });
    assert.equal(e.session_variables, null);
    assert.deepEqual(e.deliveries.map((d) => [d.trigger, d.state, d.attempts]),
      [['bad', 'dead', 2], ['ok', 'delivered', 1], ['slow', 'retrying', 1]]);
    attempts.forEach(assertAttemptShape);
    const stored = await attemptsOf(s.db, ev.id);
    assert.equal(attempts.length, stored.length);
    assert.equal(attempts.length, 4);
    assert.deepEqual(attempts.map((a) => a.id), [...attempts.map((a) => a.id)].sort((x, y) => y - x), 'newest first');
    const bad = attempts.filter((a) => a.trigger === 'bad');
    assert.deepEqual(bad.map((a) => [a.attempt, a.status, a.error, a.response]),
      [[2, 500, 'HTTP status 500', 'nope'], [1, 500, 'HTTP status 500', 'nope']]);
    assert.deepEqual(attempts.find((a) => a.trigger === 'ok').status, 200);

    const human = await herald(s, ['event', ev.id]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^event ${ev.id}$`, 'm'));
    assert.match(human.stdout, /^\s+new\s+\{("v":"x","id":7|"id":7,"v":"x")\}$/m);
    assert.match(human.stdout, /^\s+bad\s+dead\s+2\s/m);
    assert.match(human.stdout, /^\s+ok\s+delivered\s+1\s/m);
    assert.equal((human.stdout.match(/HTTP status 500\s+nope$/gm) || []).length, 3, human.stdout);
  });
});

describe('redeliver', () => {
  onBackend('postgres', 'a dead event is delivered again with current_retry 0; without --trigger every trigger that tried it', async () => {
    const s = await failingStack();
    const [ev] = await insertRows(s, [1]);
    await failAndSettle(s, [ev]);
    const before = s.receiver.byEventId(ev.id).filter((q) => q.url === '/bad').length;
    assert.equal(before, 2);

    s.receiver.respond = undefined; // everything answers 200 now
    const r = await herald(s, ['redeliver', ev.id, '--trigger', 'bad']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `queued event ${ev.id} for 1 trigger\n`);
    await s.receiver.waitFor(() => s.receiver.byEventId(ev.id).filter((q) => q.url === '/bad').length === before + 1);
    const again = s.receiver.byEventId(ev.id).filter((q) => q.url === '/bad').at(-1);
    assert.deepEqual(again.json.delivery_info, { max_retries: 1, current_retry: 0 });
    await waitSettled(s.db, ev.id, { trigger: 'bad' });
    await waitUntil(async () => (await delayedOf(s.db, ev.id)).every((d) => d.trigger !== 'bad'), { message: 'bad no longer delayed' });
    let st = byTrigger(await herald(s, ['status'], { json: true }));
    assert.equal(st.bad.dead, 0);
    let e = await herald(s, ['event', ev.id], { json: true });
    assert.equal(e.deliveries.find((d) => d.trigger === 'bad').state, 'delivered');
    assert.equal(e.deliveries.find((d) => d.trigger === 'bad').attempts, 3);
    assert.equal(s.receiver.byEventId(ev.id).filter((q) => q.url === '/ok').length, 1, 'ok not touched');

    // Without --trigger: every trigger with attempts or a delayed row (ok, bad, slow).
    const n = s.receiver.byEventId(ev.id).length;
    const all = await herald(s, ['redeliver', ev.id], { json: true });
    assert.deepEqual(all, { event_id: ev.id, queued: 3 });
    const { rows } = await s.db.query(
      'SELECT trigger, attempts, dead, due_at <= now() AS due FROM herald.delayed WHERE event_id = $1 AND trigger = $2', [ev.id, 'slow']);
    assert.deepEqual(rows, [{ trigger: 'slow', attempts: 0, dead: false, due: true }], 'slow queued again, due now');
    await s.receiver.waitFor(() => ['/ok', '/bad'].every((u) => s.receiver.byEventId(ev.id).slice(n).some((q) => q.url === u)));
    assert.ok(s.receiver.byEventId(ev.id).slice(n).every((q) => q.json.delivery_info.current_retry === 0));
    st = byTrigger(await herald(s, ['status'], { json: true }));
    assert.deepEqual([st.bad.dead, st.ok.dead], [0, 0]);
  });

  // A trigger whose next retry is an hour away still looks at its delayed queue every second, so
  // a redelivered event does not wait behind the far-future retry.
  onBackend('postgres', 'redeliver reaches a trigger whose next retry is far away within seconds', async () => {
    const s = await failingStack();
    const [ev] = await insertRows(s, [1]);
    await failAndSettle(s, [ev]);
    s.receiver.respond = undefined;
    const r = await herald(s, ['redeliver', ev.id, '--trigger', 'slow']);
    assert.equal(r.code, 0, r.stderr);
    await s.receiver.waitFor(() => s.receiver.byEventId(ev.id).filter((q) => q.url === '/slow').length === 2, 10000);
  });

  onBackend('postgres', 'unknown event or trigger: exit 1, not found; a trigger that never matched the event: exit 2', async () => {
    const s = await failingStack();
    const [ev] = await insertRows(s, [1]);
    let r = await herald(s, ['redeliver', '00000000-0000-4000-8000-000000000000']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^herald: redeliver: event 00000000-0000-4000-8000-000000000000 not found\n$/);
    r = await herald(s, ['redeliver', ev.id, '--trigger', 'nope']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /trigger nope not found/);
    r = await herald(s, ['redeliver', ev.id]);
    assert.equal(r.code, 1, 'no trigger has tried it yet');
    assert.match(r.stderr, /--trigger/);
    await s.db.query("UPDATE items SET v = 'y' WHERE id = 1");
    const upd = (await logRows(s.db, 'public.items')).find((l) => l.op === 'UPDATE');
    r = await herald(s, ['redeliver', upd.id, '--trigger', 'bad']); // bad does not read updates
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not one that trigger bad delivers/);
    r = await herald(s, ['event', '00000000-0000-4000-8000-000000000000']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not found/);
    r = await herald(s, ['events', '--trigger', 'nope']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^herald: events: trigger nope not found\n$/);
    r = await herald(s, ['replay', 'nope', '--from', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^herald: replay: trigger nope not found\n$/);
    assert.equal(r.stdout, '');
  });
});

describe('replay', () => {
  /** Two insert triggers on items, a and b, both answering 200; five rows delivered to both. */
  async function twoTriggers() {
    const s = await stack(cluster, {
      sql: ITEMS,
      triggers: (r) => [
        { name: 'a', table: 'public.items', operations: ['insert'], webhook: r.url('/a'), start: 'beginning' },
        { name: 'b', table: 'public.items', operations: ['insert'], webhook: r.url('/b'), start: 'beginning' },
      ],
    });
    return s;
  }
  const to = (s, path) => s.receiver.requests.filter((q) => q.url === path);
  /** Waits until both triggers have settled these events (their cursors moved past them). */
  async function settledForBoth(s, events) {
    for (const e of events) for (const trigger of ['a', 'b']) await waitSettled(s.db, e.id, { trigger });
  }
  /** Event ids of requests, in log order (concurrent requests may arrive in any order). */
  const idsInSeqOrder = (reqs, events) => {
    const seqOf = new Map(events.map((e) => [e.id, Number(e.seq)]));
    return reqs.map((q) => q.json.id).sort((x, y) => seqOf.get(x) - seqOf.get(y));
  };

  onBackend('postgres', 'from a seq: exactly that range again, for that trigger only', async () => {
    const s = await twoTriggers();
    const events = await insertRows(s, [1, 2, 3, 4, 5]);
    await settledForBoth(s, events);
    const seq = events.map((e) => Number(e.seq));

    const r = await herald(s, ['replay', 'a', '--from', String(seq[1]), '--to', String(seq[3])]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'queued 3 events for trigger a\n');
    await s.receiver.waitFor(13);
    const replayed = to(s, '/a').slice(5);
    assert.deepEqual(idsInSeqOrder(replayed, events), [events[1].id, events[2].id, events[3].id], 'the range');
    assert.ok(replayed.every((q) => q.json.delivery_info.current_retry === 0));
    assert.ok(replayed.every((q) => q.json.event.op === 'INSERT' && q.json.table.name === 'items'));

    // A later row settles for both triggers; b got nothing extra, a nothing beyond the range.
    const [marker] = await insertRows(s, [6]);
    await waitSettled(s.db, marker.id, { trigger: 'a' });
    await waitSettled(s.db, marker.id, { trigger: 'b' });
    await s.receiver.waitFor(15);
    assert.equal(to(s, '/b').length, 6);
    assert.equal(to(s, '/a').length, 9);
    const st = byTrigger(await herald(s, ['status'], { json: true }));
    assert.deepEqual([st.a.delayed, st.a.dead, st.a.backlog], [0, 0, 0]);

    // --from alone runs to the end of the log; --json.
    const j = await herald(s, ['replay', 'b', '--from', String(seq[4])], { json: true });
    assert.deepEqual(j, { trigger: 'b', queued: 2 });
    await s.receiver.waitFor(17);
    assert.deepEqual(idsInSeqOrder(to(s, '/b').slice(6), [...events, marker]), [events[4].id, marker.id]);
  });

  onBackend('postgres', 'by time: --from inclusive, --to exclusive (RFC 3339)', async () => {
    const s = await twoTriggers();
    const now = async () => (await s.db.query(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`)).rows[0].t;
    const t0 = await now();
    const early = await insertRows(s, [1, 2]);
    const t1 = await now();
    const late = await insertRows(s, [3, 4]);
    await settledForBoth(s, [...early, ...late]);

    let r = await herald(s, ['replay', 'a', '--from', t1]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'queued 2 events for trigger a\n');
    await s.receiver.waitFor(10);
    assert.deepEqual(idsInSeqOrder(to(s, '/a').slice(4), late), late.map((e) => e.id));

    // An offset other than Z names the same instant.
    const t1plus2 = t1.replace(/^(\d{4}-\d{2}-\d{2}T)(\d{2})(.*)Z$/, (m, d, h, rest) => {
      const hh = (Number(h) + 2) % 24;
      return hh >= 2 ? `${d}${String(hh).padStart(2, '0')}${rest}+02:00` : m;
    });
    r = await herald(s, ['replay', 'a', '--from', t0, '--to', t1plus2]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'queued 2 events for trigger a\n');
    await s.receiver.waitFor(12);
    assert.deepEqual(idsInSeqOrder(to(s, '/a').slice(6), early), early.map((e) => e.id));
    assert.equal(to(s, '/b').length, 4);
  });
});

describe('emit', () => {
  onBackend('postgres', 'emit TYPE JSON: prints the id; an events trigger delivers it', async () => {
    const s = await stack(cluster, {
      triggers: (r) => [{ name: 'orders', events: ['order.*'], webhook: r.url('/orders'), start: 'beginning' }],
    });
    const r = await herald(s, ['emit', 'order.placed', '{"order": 42, "big": 12345678901234567890123}']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, UUID_RE);
    assert.equal(r.stdout, `${id}\n`);
    await s.receiver.waitFor(1);
    const body = s.receiver.requests[0].json;
    assert.equal(body.id, id);
    assert.equal(body.event.op, 'EMIT');
    assert.equal(body.event.type, 'order.placed');
    assert.equal(body.event.data.new.order, 42);
    const [row] = await logRows(s.db, 'order.placed');
    assert.equal(row.id, id);

    const j = await herald(s, ['emit', 'order.cancelled', '[1, "two"]'], { json: true });
    assert.match(j.event_id, UUID_RE);
    assert.deepEqual(Object.keys(j), ['event_id']);
    await s.receiver.waitFor(2);
    assert.deepEqual(s.receiver.requests[1].json.event.data.new, [1, 'two']);
    await waitSettled(s.db, j.event_id);
    const e = await herald(s, ['event', j.event_id], { json: true });
    assert.equal(e.source, 'order.cancelled');
    assert.equal(e.op, 'EMIT');
    assert.deepEqual(e.deliveries.map((d) => [d.trigger, d.state]), [['orders', 'delivered']]);
    // An integer beyond 64 bits is kept as a number (a real) in the JSON output.
    const first = await herald(s, ['event', id], { json: true });
    assert.equal(first.data.new.order, 42);
    assert.equal(typeof first.data.new.big, 'number');
  });
});

describe('arguments', () => {
  const file = () => writeConfig({ database: 'postgres://nobody@127.0.0.1:1/none', triggers: [] });
  const cases = [
    [['events', '--limit', 'abc'], /^herald: events: --limit: expected an integer from 1 to \d+, got 'abc'\n$/],
    [['events', '--limit', '0'], /--limit: expected an integer/],
    [['events', '--offset', '-1'], /--offset: expected a non-negative integer, got '-1'/],
    [['events', '--frobnicate'], /^herald: events: unknown option '--frobnicate'\n$/],
    [['status', '--dead'], /^herald: status: unknown option '--dead'\n$/],
    [['events', '--limit'], /option '--limit' needs a value/],
    [['events', '--pending'], /--pending needs --trigger/],
    [['events', '--dead', '--pending', '--trigger', 't'], /--dead and --pending exclude each other/],
    [['emit', 'order.placed', '{"a": '], /^herald: emit: invalid JSON payload: .+ \(line 1, column \d+\)\n$/],
    [['emit', 'order.placed'], /missing JSON/],
    [['emit', '', '{}'], /the event type is empty/],
    [['event', 'not-a-uuid'], /^herald: event: 'not-a-uuid' is not an event id \(a UUID\)\n$/],
    [['event'], /missing EVENT_ID/],
    [['event', '00000000-0000-4000-8000-000000000000', 'extra'], /unexpected argument 'extra'/],
    [['redeliver', 'xyz'], /'xyz' is not an event id/],
    [['replay', 't'], /missing --from/],
    [['replay', 't', '--from', 'yesterday'], /^herald: replay: --from: expected a seq \(a number\) or an RFC 3339 time such as .+, got 'yesterday'\n$/],
    [['replay', 't', '--from', '2026-02-30T00:00:00Z'], /--from: expected a seq/],
    [['replay', 't', '--from', '2026-11-23 12:00'], /--from: expected a seq/],
    [['replay', 't', '--from', '1', '--to', '2026-11-23T25:00:00Z'], /--to: expected a seq/],
    [['replay', 't', '--from', '5', '--to', '2'], /--from 5 is after --to 2/],
  ];
  for (const [args, re] of cases) {
    e2eTest(`${args.join(' ') || '(none)'} → exit 2`, async () => {
      const r = await run([args[0], '-c', file(), ...args.slice(1)], { env: NO_ENV_DB });
      assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stdout, '');
    });
  }

  e2eTest('no database anywhere (the default sqlite:herald.db absent) → exit 2 naming the ways to give one; unreachable → exit 1', async () => {
    let r = await run(['status'], { env: NO_ENV_DB });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^herald: status: no database configured: pass -c FILE, create \.\/herald\.yaml, or set HERALD_DATABASE_URL \(the default sqlite:\/.+\/herald\.db does not exist\)\n$/);
    const noDb = writeConfig({ triggers: [] });
    r = await run(['events', '-c', noDb], { env: NO_ENV_DB });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no database configured: set 'database' in .+ or HERALD_DATABASE_URL/);
    r = await run(['status'], { env: { HERALD_DATABASE_URL: 'sqlite:/nonexistent/herald-e2e.db' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^herald: status: the database sqlite:\/nonexistent\/herald-e2e\.db does not exist: run herald apply first\n$/);
    r = await run(['status', '-c', '/nonexistent/herald.yaml'], { env: NO_ENV_DB });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\/nonexistent\/herald\.yaml/);
    r = await run(['status', '-c', file()], { env: NO_ENV_DB });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^herald: status: cannot connect to the database/);
  });

  onBackend('postgres', 'HERALD_DATABASE_URL without a file; it overrides the file', async () => {
    const s = await stack(cluster, { sql: ITEMS, serve: false, triggers: () => [] });
    let r = await run(['status', '--json'], { env: { HERALD_DATABASE_URL: s.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
    r = await run(['status'], { env: { HERALD_DATABASE_URL: s.url } });
    assert.equal(r.stdout, 'no triggers\n');
    r = await run(['events', '-c', file()], { env: { HERALD_DATABASE_URL: s.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'no events\n');
    // A database without herald's schema: exit 1, told to run apply.
    const bare = await cluster.pg.createDb(`bare_${process.pid}`);
    r = await run(['status'], { env: { HERALD_DATABASE_URL: bare } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /herald's schema is not installed in this database: run herald apply/);
  });
});
