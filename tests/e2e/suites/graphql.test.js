// /v1/graphql's service (docs/graphql.md), on both backends: introspection validated by graphql's
// buildClientSchema + assertValidSchema; queries (triggers, schedules, events with where /
// order_by / limit / offset, event with deliveries and attempts, stats); mutations (emit,
// invoke, redeliver); and subscriptions through the npm graphql-ws client with ws:
// events_stream (in order, batch_size, resume from a seq without gaps or repeats, where, a
// stream with no trigger reading), event(id) (emit -> delivered; a failing receiver -> retrying
// -> dead; redeliver -> delivered), stats; and bad arguments answered with errors.
// Every wait is on a condition (a subscription's messages, the receiver), never a sleep.
import assert from 'node:assert/strict';
import { buildClientSchema, assertValidSchema, getIntrospectionQuery } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { forBackends, logRows, onBackend, stack, useCluster } from '../lib/fixture.js';
import { UUID_RE } from '../lib/util.js';

const cluster = useCluster();
const ITEMS = 'CREATE TABLE items (id int PRIMARY KEY, v text)';

/** A stack with a trigger on items (insert, update, manual) and one on emitted order.* events. */
function gqlStack(backend, { retry, itemsRetry, env } = {}) {
  return stack(cluster, {
    backend,
    ...(env ? { env } : {}),
    sql: ITEMS,
    triggers: (r) => [
      {
        name: 'items', table: 'public.items', operations: ['insert', 'update', 'manual'],
        webhook: r.url('/items'), start: 'beginning', ...(itemsRetry ? { retry: itemsRetry } : {}),
      },
      {
        name: 'orders', events: ['order.*'], webhook: r.url('/orders'), start: 'beginning',
        ...(retry ? { retry } : {}),
      },
    ],
  });
}

/** POST /v1/graphql: the parsed answer ({data, errors}). */
async function gql(s, query, variables) {
  const r = await fetch(s.herald.url('/v1/graphql'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (HTTP ${r.status}): ${text.slice(0, 300)}`);
  }
}

/** gql() that must succeed: its data. */
async function ok(s, query, variables) {
  const r = await gql(s, query, variables);
  assert.equal(r.errors, undefined, `errors: ${JSON.stringify(r.errors)}`);
  return r.data;
}

/** A graphql-ws client on herald s, closed with the test. */
function wsClient(t, s) {
  const client = createClient({
    url: s.herald.url('/v1/graphql').replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
  });
  t.after(() => client.dispose());
  return client;
}

/**
 * A subscription collecting its results: sub.results (each {data, errors}), sub.error,
 * sub.until(pred, what) resolves when pred(results) holds (checked on every message),
 * sub.dispose().
 */
function subscribe(client, query, variables) {
  const sub = { results: [], error: null, done: false, waiters: new Set() };
  const check = () => {
    for (const w of [...sub.waiters]) {
      let hit = false;
      try {
        hit = w.pred(sub.results);
      } catch (e) {
        sub.waiters.delete(w);
        clearTimeout(w.timer);
        w.reject(e);
        continue;
      }
      if (hit) {
        sub.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(sub.results);
      } else if (sub.error || sub.done) {
        sub.waiters.delete(w);
        clearTimeout(w.timer);
        w.reject(new Error(`subscription ended (${JSON.stringify(sub.error)}) before: ${w.what}`));
      }
    }
  };
  sub.dispose = client.subscribe({ query, variables }, {
    next: (r) => {
      sub.results.push(r);
      check();
      sub.onEnd?.();
    },
    error: (e) => {
      sub.error = e;
      check();
      sub.onEnd?.();
    },
    complete: () => {
      sub.done = true;
      check();
      sub.onEnd?.();
    },
  });
  sub.until = (pred, what = pred.toString().slice(0, 160), timeoutMs = 30000) =>
    new Promise((resolve, reject) => {
      const w = { pred, what, resolve, reject, timer: null };
      w.timer = setTimeout(() => {
        sub.waiters.delete(w);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(sub.results).slice(0, 1500)}`));
      }, timeoutMs);
      sub.waiters.add(w);
      check();
    });
  /** Resolves with the error the server answered the subscription with. */
  sub.failed = (timeoutMs = 10000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no error came')), timeoutMs);
    sub.onEnd = () => {
      clearTimeout(timer);
      if (sub.error) resolve(sub.error);
      else reject(new Error(`no error: ${JSON.stringify(sub.results).slice(0, 500)}`));
    };
    if (sub.error || sub.done || sub.results.length) sub.onEnd();
  });
  return sub;
}

/** The events of a stream's messages, flattened. */
const streamed = (results, field = 'events_stream') => results.flatMap((r) => r.data?.[field] ?? []);
const seqs = (events) => events.map((e) => Number(e.seq));

const STREAM = `subscription S($seq: bigint!, $n: Int!, $where: events_bool_exp) {
  events_stream(cursor: {initial_value: {seq: $seq}, ordering: ASC}, batch_size: $n, where: $where) {
    id seq source op data created_at
  }
}`;

const EVENT = `subscription E($id: uuid!) {
  event(id: $id) { id seq op source deliveries { trigger state attempts_count last_error
    attempts(limit: 5) { attempt status error } } }
}`;

const states = (results, trigger) => results
  .map((r) => r.data?.event?.deliveries?.find((d) => d.trigger === trigger)?.state)
  .filter(Boolean);

forBackends('introspection builds a valid client schema with the documented types', async (t, backend) => {
  const s = await gqlStack(backend);
  const data = await ok(s, getIntrospectionQuery());
  const schema = buildClientSchema(data);
  assertValidSchema(schema);
  for (const name of ['Event', 'Delivery', 'Attempt', 'Trigger', 'Schedule', 'TriggerStats',
    'events_bool_exp', 'events_order_by', 'bigint', 'uuid', 'timestamptz', 'jsonb']) {
    assert.ok(schema.getType(name), `type ${name}`);
  }
  assert.deepEqual(Object.keys(schema.getSubscriptionType().getFields()).sort(), ['event', 'events_stream', 'stats']);
  assert.deepEqual(Object.keys(schema.getMutationType().getFields()).sort(), ['emit', 'invoke', 'redeliver']);
  const q = schema.getQueryType().getFields();
  assert.deepEqual(q.events.args.map((a) => a.name).sort(), ['limit', 'offset', 'order_by', 'where']);
});

forBackends('queries: triggers, events with where / order_by / limit / offset, event with deliveries, stats', async (t, backend) => {
  const s = await gqlStack(backend);
  for (let i = 1; i <= 5; i++) await s.db.query('INSERT INTO items VALUES ($1, $2)', [i, `v${i}`]);
  await s.db.query("UPDATE items SET v = 'changed' WHERE id = 2");
  await s.receiver.waitFor(6);

  const { triggers } = await ok(s, '{ triggers { name table operations events webhook retry { num_retries } } }');
  assert.deepEqual(triggers.map((x) => x.name).sort(), ['items', 'orders']);
  const items = triggers.find((x) => x.name === 'items');
  assert.equal(items.table, 'public.items');
  assert.deepEqual(items.operations, ['insert', 'update', 'manual']);
  assert.deepEqual(triggers.find((x) => x.name === 'orders').events, ['order.*']);
  assert.deepEqual((await ok(s, '{ schedules { name } }')).schedules, []);

  const all = (await ok(s, '{ events { seq op source data } }')).events;
  assert.equal(all.length, 6);
  assert.deepEqual(seqs(all), [...seqs(all)].sort((a, b) => a - b), 'seq ascending by default');
  const inserts = (await ok(s, `{ events(where: {op: {_eq: "INSERT"}}, order_by: [{seq: desc}], limit: 2, offset: 1) { seq op data } }`)).events;
  assert.deepEqual(inserts.map((e) => e.data.new.id), [4, 3]);
  const between = (await ok(s, `query Q($a: bigint, $b: bigint) { events(where: {_and: [{seq: {_gt: $a}}, {seq: {_lte: $b}}]}) { seq } }`,
    { a: all[1].seq, b: all[3].seq })).events;
  assert.deepEqual(seqs(between), seqs(all.slice(2, 4)));
  const either = (await ok(s, `{ events(where: {_or: [{op: {_in: ["UPDATE"]}}, {_not: {source: {_neq: "public.items"}}, seq: {_eq: ${all[0].seq}}}]}) { op } }`)).events;
  assert.deepEqual(either.map((e) => e.op).sort(), ['INSERT', 'UPDATE']);
  const future = (await ok(s, '{ events(where: {created_at: {_gt: "2999-01-01T00:00:00Z"}}) { seq } }')).events;
  assert.deepEqual(future, []);
  const delivered = (await ok(s, '{ events(where: {deliveries: {trigger: {_eq: "items"}, state: {_eq: delivered}}}) { seq } }')).events;
  assert.equal(delivered.length, 6);

  const one = (await ok(s, `query E($id: uuid!) { event(id: $id) { id seq deliveries { trigger state attempts_count delivered_at attempts { attempt status latency_ms } } } }`,
    { id: all[0].id ?? (await logRows(s.db, 'public.items'))[0].id })).event;
  assert.match(one.id, UUID_RE);
  assert.equal(one.deliveries.length, 1);
  assert.equal(one.deliveries[0].state, 'delivered');
  assert.equal(one.deliveries[0].attempts_count, 1);
  assert.equal(one.deliveries[0].attempts[0].status, 200);
  assert.equal((await ok(s, '{ event(id: "00000000-0000-4000-8000-000000000000") { id } }')).event, null);

  const stats = (await ok(s, '{ stats { trigger backlog delayed dead lag_seconds last_delivery_at } }')).stats;
  const st = stats.find((x) => x.trigger === 'items');
  assert.equal(Number(st.dead), 0);
  assert.ok(st.last_delivery_at);
});

forBackends('bad arguments get errors', async (t, backend) => {
  const s = await gqlStack(backend);
  const cases = [
    ['{ events(where: {seq: {_like: "1"}}) { seq } }', /_like/],
    ['{ events(where: {source: {_gt: "a"}}) { seq } }', /_gt/],
    ['{ events(where: {created_at: {_gt: "yesterday"}}) { seq } }', /RFC 3339/],
    ['{ events(limit: 5000) { seq } }', /limit/],
    ['{ event(id: "nope") { id } }', /uuid/],
    ['{ events(order_by: [{nothing: asc}]) { seq } }', /.+/],
    ['mutation { invoke(trigger: "orders", payload: {}) { id } }', /manual/],
    ['mutation { redeliver(event_id: "00000000-0000-4000-8000-000000000000") { id } }', /not found/],
  ];
  for (const [q, re] of cases) {
    const r = await gql(s, q);
    assert.ok(r.errors?.length, `${q}: expected errors, got ${JSON.stringify(r)}`);
    assert.match(r.errors.map((e) => e.message).join(' | '), re, q);
  }
  const client = wsClient(t, s);
  for (const [q, v] of [
    [STREAM, { seq: 0, n: 0 }],
    [STREAM, { seq: -1, n: 1 }],
    [STREAM, { seq: 0, n: 1, where: { deliveries: { trigger: { _eq: 'x' } } } }],
    ['subscription { events_stream(cursor: {initial_value: {seq: 0}, ordering: DESC}, batch_size: 1) { seq } }', {}],
  ]) {
    const sub = subscribe(client, q, v);
    const err = await sub.failed();
    assert.ok(Array.isArray(err) ? err.length : err, `error for ${JSON.stringify(v)}`);
  }
});

forBackends('mutations: emit returns the event at once, invoke and redeliver queue it', async (t, backend) => {
  const s = await gqlStack(backend);
  const { emit } = await ok(s, 'mutation { emit(type: "order.placed", payload: {total: 12}) { id seq op source data deliveries { trigger } } }');
  assert.match(emit.id, UUID_RE);
  assert.equal(emit.op, 'EMIT');
  assert.equal(emit.source, 'order.placed');
  assert.deepEqual(emit.data.new, { total: 12 });
  await s.receiver.waitFor((reqs) => reqs.some((q) => q.json?.id === emit.id));

  const { invoke } = await ok(s, 'mutation { invoke(trigger: "items", payload: {id: 99}) { id op deliveries { trigger state } } }');
  assert.equal(invoke.op, 'MANUAL');
  assert.deepEqual(invoke.deliveries.map((d) => d.trigger), ['items']);
  await s.receiver.waitFor((reqs) => reqs.some((q) => q.json?.id === invoke.id));

  const { redeliver } = await ok(s, 'mutation R($id: uuid!) { redeliver(event_id: $id, trigger: "orders") { id } }', { id: emit.id });
  assert.equal(redeliver.id, emit.id);
  await s.receiver.waitFor((reqs) => reqs.filter((q) => q.json?.id === emit.id).length === 2);
});

forBackends('events_stream: every insert in seq order, batch_size per message, resume without gaps or repeats', async (t, backend) => {
  const s = await gqlStack(backend);
  await s.db.query("INSERT INTO items VALUES (1, 'before')");
  const client = wsClient(t, s);
  const a = subscribe(client, STREAM, { seq: 0, n: 2 });
  await a.until((r) => streamed(r).length === 1, 'the event already in the log');
  for (let i = 2; i <= 7; i++) await s.db.query('INSERT INTO items VALUES ($1, $2)', [i, `v${i}`]);
  await a.until((r) => streamed(r).length === 7, '7 events');
  const evs = streamed(a.results);
  const log = await logRows(s.db, 'public.items');
  assert.deepEqual(seqs(evs), log.map((l) => Number(l.seq)), 'exactly the log, in order');
  assert.deepEqual(evs.map((e) => e.data.new.id), [1, 2, 3, 4, 5, 6, 7]);
  for (const r of a.results) assert.ok(r.data.events_stream.length >= 1 && r.data.events_stream.length <= 2, 'batch_size 2');

  // Resume from the third event: the first one streamed is the fourth.
  const b = subscribe(client, STREAM, { seq: evs[2].seq, n: 100 });
  await b.until((r) => streamed(r).length === 4, 'events 4..7');
  assert.deepEqual(seqs(streamed(b.results)), seqs(evs.slice(3)));
  // Both now at the tail: new events reach both, once each.
  await s.db.query("INSERT INTO items VALUES (8, 'v8'), (9, 'v9')");
  await a.until((r) => streamed(r).length === 9, 'a: 9 events');
  await b.until((r) => streamed(r).length === 6, 'b: 6 events');
  const all = seqs(streamed(a.results));
  assert.equal(new Set(all).size, all.length, 'no repeats');
  assert.deepEqual(seqs(streamed(b.results)), all.slice(3));
  // Many subscribers (here resuming from various seqs) share the tail; each sees everything once.
  const many = [];
  for (let i = 0; i < 20; i++) many.push(subscribe(client, STREAM, { seq: evs[i % 7].seq, n: 10 }));
  await s.db.query("INSERT INTO items VALUES (10, 'v10')");
  await a.until((r) => streamed(r).length === 10, 'a: 10 events');
  const everything = seqs(streamed(a.results));
  for (let i = 0; i < many.length; i++) {
    const want = everything.slice((i % 7) + 1);
    await many[i].until((r) => streamed(r).length >= want.length, `subscriber ${i}: ${want.length} events`);
    assert.deepEqual(seqs(streamed(many[i].results)), want, `subscriber ${i}`);
  }
});

forBackends('events_stream: where filters, and events no trigger reads are streamed too', async (t, backend) => {
  const s = await gqlStack(backend);
  const client = wsClient(t, s);
  const onlyUpdates = subscribe(client, STREAM, { seq: 0, n: 10, where: { op: { _eq: 'UPDATE' } } });
  const other = subscribe(client, STREAM, { seq: 0, n: 10, where: { source: { _in: ['audit.note'] } } });
  await s.db.query("INSERT INTO items VALUES (1, 'a')");
  await s.db.query("UPDATE items SET v = 'b' WHERE id = 1");
  await s.db.query("INSERT INTO items VALUES (2, 'c')");
  // No trigger reads audit.* events: the stream finds them by its own poll.
  await ok(s, 'mutation { emit(type: "audit.note", payload: {n: 1}) { id } }');
  await onlyUpdates.until((r) => streamed(r).length === 1, 'the update');
  await other.until((r) => streamed(r).length === 1, 'the audit event');
  assert.equal(streamed(onlyUpdates.results)[0].op, 'UPDATE');
  assert.equal(streamed(other.results)[0].source, 'audit.note');
  // Nothing else came meanwhile: a later matching update is the next message.
  await s.db.query("UPDATE items SET v = 'd' WHERE id = 2");
  await onlyUpdates.until((r) => streamed(r).length === 2, 'the second update');
  assert.deepEqual(streamed(onlyUpdates.results).map((e) => e.op), ['UPDATE', 'UPDATE']);
});

onBackend('postgres', 'events_stream: a lower seq that commits after a higher one is streamed first, never skipped', async (t) => {
  const s = await gqlStack('postgres');
  const client = wsClient(t, s);
  const sub = subscribe(client, STREAM, { seq: 0, n: 100, where: { source: { _in: ['order.early', 'order.late'] } } });
  const c = await s.db.connect();
  try {
    await lowerSeqLater(s, c, sub);
  } finally {
    await c.query('ROLLBACK').catch(() => {});
    c.release();
  }
});

async function lowerSeqLater(s, c, sub) {
  await c.query('BEGIN');
  const { rows: [a] } = await c.query("SELECT herald.emit('order.early', '{}')::text AS id");
  const { emit: b } = await ok(s, 'mutation { emit(type: "order.late", payload: {}) { id seq } }');
  // The dispatcher delivers b (its snapshot ranges do not wait for a); meanwhile the hub has
  // probed the horizon many times, and must not have streamed b ahead of a.
  await s.receiver.waitFor((reqs) => reqs.some((q) => q.json?.id === b.id));
  assert.equal(streamed(sub.results).length, 0, 'nothing streamed while the lower seq is in flight');
  await c.query('COMMIT');
  await sub.until((r) => streamed(r).length === 2, 'both events');
  const evs = streamed(sub.results);
  assert.deepEqual(evs.map((e) => e.id), [a.id, b.id]);
  assert.ok(Number(evs[0].seq) < Number(evs[1].seq));
}

forBackends('events_stream: concurrent writing transactions, every event once and in seq order', async (t, backend) => {
  const s = await gqlStack(backend);
  const client = wsClient(t, s);
  const sub = subscribe(client, STREAM, { seq: 0, n: 1000, where: { source: { _eq: 'public.items' } } });
  // Three writers, 20 transactions of 50 rows each: seqs interleave and commit out of order.
  const writer = async (w) => {
    for (let k = 0; k < 20; k++) {
      const base = w * 100000 + k * 50;
      if (backend === 'postgres') {
        // Each transaction stays open a little after its insert, so that the hub probes while
        // seqs are taken and not visible (the case a snapshot's xmin/xmax cannot see).
        const c = await s.db.connect();
        try {
          await c.query('BEGIN');
          await c.query('INSERT INTO items SELECT g, $2 FROM generate_series($1::int, $1::int + 49) g', [base, `w${w}`]);
          await c.query('SELECT pg_sleep(0.01)');
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      } else {
        const values = Array.from({ length: 50 }, (_, i) => `(${base + i}, 'w${w}')`).join(', ');
        await s.db.query(`INSERT INTO items VALUES ${values}`);
      }
    }
  };
  await Promise.all([writer(1), writer(2), writer(3)]);
  const log = await logRows(s.db, 'public.items');
  assert.equal(log.length, 3000);
  await sub.until((r) => streamed(r).length >= 3000, '3000 events');
  assert.deepEqual(seqs(streamed(sub.results)), log.map((l) => Number(l.seq)).sort((a, b) => a - b));
});

forBackends('event(id): emit, subscribe, see it delivered', async (t, backend) => {
  const s = await gqlStack(backend);
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  s.receiver.respond = async () => { await gate; return { status: 200 }; };
  const { emit } = await ok(s, 'mutation { emit(type: "order.paid", payload: {n: 1}) { id } }');
  const client = wsClient(t, s);
  const sub = subscribe(client, EVENT, { id: emit.id });
  await sub.until((r) => r.length >= 1, 'the current state');
  assert.equal(sub.results[0].data.event.id, emit.id);
  const first = states(sub.results, 'orders');
  assert.ok(first.length === 0 || first[0] === 'pending', `first state: ${first}`);
  release();
  await sub.until((r) => states(r, 'orders').includes('delivered'), 'delivered');
  const last = sub.results.at(-1).data.event.deliveries.find((d) => d.trigger === 'orders');
  assert.equal(last.attempts_count, 1);
  assert.equal(last.attempts[0].status, 200);
});

forBackends('event(id): a failing receiver shows retrying then dead; redeliver brings it to delivered', async (t, backend) => {
  const s = await gqlStack(backend, { retry: { max_retries: 1, interval: '300ms', backoff: 'fixed' } });
  s.receiver.respond = () => ({ status: 500, body: 'down' });
  const client = wsClient(t, s);
  const { emit } = await ok(s, 'mutation { emit(type: "order.failed", payload: {}) { id } }');
  const sub = subscribe(client, EVENT, { id: emit.id });
  await sub.until((r) => states(r, 'orders').includes('dead'), 'dead');
  const seen = states(sub.results, 'orders');
  assert.ok(seen.indexOf('retrying') >= 0 && seen.indexOf('retrying') < seen.indexOf('dead'), `states: ${seen}`);
  const dead = sub.results.at(-1).data.event.deliveries.find((d) => d.trigger === 'orders');
  assert.equal(dead.attempts_count, 2);
  assert.equal(dead.attempts[0].status, 500);
  assert.match(dead.last_error, /500/);

  s.receiver.respond = null;
  await ok(s, 'mutation R($id: uuid!) { redeliver(event_id: $id) { id } }', { id: emit.id });
  await sub.until((r) => states(r, 'orders').at(-1) === 'delivered', 'delivered after redeliver');
  // Every message differs from the one before (pushed on change only).
  for (let i = 1; i < sub.results.length; i++) assert.notDeepEqual(sub.results[i], sub.results[i - 1]);
});

forBackends('event(id) before the event exists: nothing until it appears', async (t, backend) => {
  const s = await gqlStack(backend);
  const client = wsClient(t, s);
  // Subscribe to an id that does not exist yet, then write an event with exactly that id is not
  // possible: watch an id that never comes, and one that comes from a write after subscribing.
  const ghost = subscribe(client, EVENT, { id: '00000000-0000-4000-8000-000000000000' });
  const stream = subscribe(client, STREAM, { seq: 0, n: 10 });
  await s.db.query("INSERT INTO items VALUES (1, 'x')");
  const [ev] = streamed(await stream.until((r) => streamed(r).length === 1, 'the insert'));
  const live = subscribe(client, EVENT, { id: ev.id });
  await live.until((r) => states(r, 'items').includes('delivered'), 'delivered');
  assert.equal(ghost.results.length, 0, `nothing pushed for an event that does not exist: ${JSON.stringify(ghost.results)}`);
});

forBackends('stats: pushed at once, again when a count changes', async (t, backend) => {
  const s = await gqlStack(backend, { retry: { max_retries: 0 } });
  const client = wsClient(t, s);
  const sub = subscribe(client, 'subscription { stats { trigger backlog delayed dead lag_seconds last_delivery_at } }', {});
  const dead = (r) => Number(r.data.stats.find((x) => x.trigger === 'orders')?.dead ?? -1);
  await sub.until((r) => r.length >= 1 && dead(r.at(-1)) === 0, 'the first statistics');
  s.receiver.respond = () => ({ status: 500 });
  await ok(s, 'mutation { emit(type: "order.x", payload: {}) { id } }');
  await sub.until((r) => dead(r.at(-1)) === 1, 'one dead event');
  for (let i = 1; i < sub.results.length; i++) assert.notDeepEqual(sub.results[i], sub.results[i - 1], 'pushed on change only');
});

// ---- load: slow clients and many catch-ups (docs/graphql.md, "Slow clients") ----

/** herald's resident memory in bytes (/proc/<pid>/status VmRSS). */
async function rss(s) {
  const { readFile } = await import('node:fs/promises');
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${s.herald.pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/**
 * A raw graphql-transport-ws socket past connection_ack: c.sock, c.events (the events_stream
 * events of every "next", in order), c.closed, c.until(pred, what).
 */
async function rawClient(t, s) {
  const sock = new WebSocket(s.herald.url('/v1/graphql').replace(/^http/, 'ws'), ['graphql-transport-ws']);
  const c = { sock, events: [], messages: 0, closed: null, acked: false, waiters: new Set() };
  t.after(() => sock.terminate());
  const check = () => {
    for (const w of [...c.waiters]) {
      if (w.pred(c)) {
        c.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve();
      } else if (c.closed) {
        c.waiters.delete(w);
        clearTimeout(w.timer);
        w.reject(new Error(`closed ${JSON.stringify(c.closed)} before ${w.what} (${c.events.length} events)`));
      }
    }
  };
  sock.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (m.type === 'connection_ack') c.acked = true;
    if (m.type === 'next') {
      c.messages++;
      for (const e of m.payload.data.events_stream) c.events.push(e);
    }
    check();
  });
  sock.on('close', (code, reason) => {
    c.closed = { code, reason: reason.toString() };
    check();
  });
  sock.on('error', () => {});
  c.until = (pred, what, timeoutMs = 60000) => new Promise((resolve, reject) => {
    const w = { pred, what, resolve, reject };
    w.timer = setTimeout(() => {
      c.waiters.delete(w);
      reject(new Error(`timed out waiting for ${what} (${c.events.length} events, closed ${JSON.stringify(c.closed)})`));
    }, timeoutMs);
    c.waiters.add(w);
    check();
  });
  await new Promise((resolve, reject) => {
    sock.once('open', resolve);
    sock.once('error', reject);
  });
  sock.send(JSON.stringify({ type: 'connection_init' }));
  await c.until((x) => x.acked, 'connection_ack', 10000);
  c.subscribe = (id, variables) => sock.send(JSON.stringify({ id, type: 'subscribe', payload: { query: STREAM, variables } }));
  return c;
}

/** Connects a graphql-transport-ws client from a child process: {code 0, out "ack <ms>"} or not. */
async function ackProbe(s) {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const url = s.herald.url('/v1/graphql').replace(/^http/, 'ws');
  const script = `const WebSocket = require('ws'); const t0 = Date.now();
    const w = new WebSocket(${JSON.stringify(url)}, ['graphql-transport-ws']);
    w.on('open', () => w.send(JSON.stringify({type: 'connection_init'})));
    w.on('message', (d) => { if (JSON.parse(d).type === 'connection_ack') { console.log('ack', Date.now() - t0); process.exit(0); } });
    w.on('close', (c, r) => { console.log('closed', c, String(r)); process.exit(1); });
    w.on('error', (e) => { console.log('error', e.message); process.exit(1); });
    setTimeout(() => { console.log('no answer in 20 s'); process.exit(1); }, 20000);`;
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out: out.trim() }));
  });
}

onBackend('postgres', 'events_stream: a client that stops reading holds bounded memory, then gets every event once, in order', { timeout: 240000 }, async (t) => {
  // ASan keeps freed memory in quarantine (256 MiB by default): RSS would show that, not herald.
  const s = await gqlStack('postgres', { env: { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:quarantine_size_mb=0` } });
  const slow = await rawClient(t, s);
  slow.subscribe('slow', { seq: 0, n: 100 });
  const client = wsClient(t, s);
  const reader = subscribe(client, STREAM, { seq: 0, n: 100 });
  // Both at the tail (an event streamed to each), then the slow one stops reading its socket.
  await s.db.query("INSERT INTO items VALUES (0, 'first')");
  await slow.until((c) => c.events.length === 1, 'the first event');
  await reader.until((r) => streamed(r).length === 1, 'the first event');
  slow.sock._socket.pause();
  const before = await rss(s);
  // About 40 MB of events: over the 16 MiB a socket may queue before being closed with 1008
  // (which is what happened before slow subscribers were held back).
  const N = 10000;
  for (let k = 0; k < N; k += 1000) {
    await s.db.query("INSERT INTO items SELECT g, repeat('x', 4000) FROM generate_series($1::int, $1::int + 999) g", [k + 1]);
  }
  await reader.until((r) => streamed(r).length === N + 1, 'every event at the reading client', 120000);
  const grown = (await rss(s)) - before;
  assert.ok(grown < 40 * 1024 * 1024, `herald grew by ${(grown / 1048576).toFixed(1)} MiB while a client did not read`);
  assert.equal(slow.closed, null, 'the slow client is not disconnected');
  // It reads again: every event once, in order, and it rejoins the tail.
  slow.sock._socket.resume();
  await slow.until((c) => c.events.length >= N + 1, 'every event at the slow client', 120000);
  const want = seqs(streamed(reader.results));
  assert.deepEqual(seqs(slow.events), want);
  await s.db.query("INSERT INTO items VALUES (-1, 'after')");
  await slow.until((c) => c.events.length === N + 2, 'the next event');
  await reader.until((r) => streamed(r).length === N + 2, 'the next event');
  assert.deepEqual(seqs(slow.events), seqs(streamed(reader.results)));
});

onBackend('postgres', '200 subscribers catching up over a 5,000-event backlog all complete in order; new clients are acknowledged meanwhile', { timeout: 240000 }, async (t) => {
  const s = await gqlStack('postgres');
  const N = 5000;
  await s.db.query("INSERT INTO items SELECT g, repeat('y', 500) FROM generate_series(1, $1::int) g", [N]);
  const log = (await logRows(s.db, 'public.items')).map((l) => Number(l.seq)).sort((a, b) => a - b);
  assert.equal(log.length, N);
  const subs = await Promise.all(Array.from({ length: 200 }, () => rawClient(t, s)));
  for (const c of subs) c.subscribe('s', { seq: 0, n: 100 });
  // While they catch up, new sockets get connection_ack, not 4408 (connection_init within 3 s).
  // The probe runs in a process of its own: this one is busy parsing the subscribers' messages.
  let probes = 0;
  while (subs.some((c) => c.events.length < N) && probes < 20) {
    const r = await ackProbe(s);
    assert.equal(r.code, 0, `a new client during the catch-up: ${r.out}`);
    probes++;
  }
  await Promise.all(subs.map((c, i) => c.until((x) => x.events.length >= N, `subscriber ${i}: ${N} events`, 180000)));
  for (const c of subs) {
    assert.equal(c.closed, null);
    assert.deepEqual(seqs(c.events), log);
  }
  assert.ok(probes >= 1);
});
