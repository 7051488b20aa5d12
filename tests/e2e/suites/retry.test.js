// Failed deliveries: retry until 2xx, current_retry counting, a stable webhook-id, dead events
// after max_retries, fixed and exponential backoff bounds, Retry-After within the policy's
// bounds, timeouts, 3xx/4xx as failures, connection errors. Every case runs on PostgreSQL and on
// SQLite.
//
// Timing checks here are bounds that a correct implementation cannot violate (a fixed 300ms
// backoff cannot retry after 200ms), with generous slack on upper bounds; they are not
// performance assertions.
import assert from 'node:assert/strict';
import {
  attemptsOf, countRows, delayedOf, forBackends, logRows, receiverTracked, stack, useCluster, waitSettled,
} from '../lib/fixture.js';
import { freePort } from '../lib/pg.js';
import { waitUntil } from '../lib/util.js';

const cluster = useCluster();

const ITEMS = 'CREATE TABLE items (id int PRIMARY KEY, v text)';
const rowId = (q) => q.json?.event?.data?.new?.id;
const TOLERANCE_MS = 25; // clock granularity between herald's timers and the receiver's clock
const SLACK_MS = 2500; // upper-bound slack for scheduling on a loaded 2-core CI machine

/** A stack with one insert trigger on items and the given retry policy. */
function itemsStack(backend, retry, extra = {}) {
  return stack(cluster, {
    backend,
    sql: ITEMS,
    ...extra,
    triggers: (r) => [{
      name: 'items', table: 'public.items', operations: ['insert'], webhook: (extra.webhook || r.url)('/items'),
      retry, start: 'beginning',
    }],
  });
}

/** Inserts one row and returns its herald.log id. */
async function insertRow(s, id) {
  await s.db.query("INSERT INTO items VALUES ($1, 'x')", [id]);
  const log = await logRows(s.db, 'public.items');
  return log.find((l) => l.new.id === id).id;
}

function gaps(reqs) {
  const out = [];
  for (let i = 1; i < reqs.length; i++) out.push(reqs[i].t - reqs[i - 1].t);
  return out;
}

/** Proves no further attempt of `eventId` comes: a later event (id `markerId`) settles first. */
async function assertNoMoreAttempts(s, eventId, count, markerId) {
  const markerEvent = await insertRow(s, markerId);
  await waitSettled(s.db, markerEvent);
  assert.equal(s.receiver.byEventId(eventId).length, count, `exactly ${count} deliveries of ${eventId}`);
  assert.equal((await attemptsOf(s.db, eventId)).length, count, `exactly ${count} attempts recorded`);
}

forBackends('500, 500, then 200: current_retry 0,1,2, same webhook-id, attempts recorded, not delayed any more', async (t, backend) => {
  const s = await itemsStack(backend, { max_retries: 5, interval: '100ms', max_interval: '1s', backoff: 'exponential' });
  s.receiver.respond = (req) => (rowId(req) === 1 && s.receiver.requests.filter((q) => rowId(q) === 1).length <= 2
    ? { status: 500, body: 'boom' } : undefined);
  const ev = await insertRow(s, 1);
  await s.receiver.waitFor(3);
  const reqs = s.receiver.byEventId(ev);
  assert.deepEqual(reqs.map((q) => q.json.delivery_info), [
    { max_retries: 5, current_retry: 0 }, { max_retries: 5, current_retry: 1 }, { max_retries: 5, current_retry: 2 },
  ]);
  assert.deepEqual(reqs.map((q) => q.headers['webhook-id']), [ev, ev, ev]);
  // Apart from delivery_info the body is the same on every attempt.
  const strip = (b) => ({ ...b, delivery_info: null });
  assert.deepEqual(strip(reqs[1].json), strip(reqs[0].json));
  assert.deepEqual(strip(reqs[2].json), strip(reqs[0].json));

  await waitSettled(s.db, ev);
  const attempts = await attemptsOf(s.db, ev);
  assert.deepEqual(attempts.map((a) => [a.attempt, a.status]), [[1, 500], [2, 500], [3, 200]]);
  assert.match(attempts[0].response, /boom/);
  await waitUntil(async () => (await delayedOf(s.db, ev)).length === 0, { message: 'the settled event leaves herald.delayed' });
  await assertNoMoreAttempts(s, ev, 3, 2);
});

forBackends('dead after max_retries: exactly 1 + max_retries attempts, herald.delayed dead=true', async (t, backend) => {
  const s = await itemsStack(backend, { max_retries: 2, interval: '100ms', max_interval: '1s' });
  s.receiver.respond = (req) => (rowId(req) === 1 ? { status: 500, body: 'always failing' } : undefined);
  const ev = await insertRow(s, 1);
  await s.receiver.waitFor(3);
  const rows = await waitUntil(async () => {
    const d = await delayedOf(s.db, ev);
    return d.length === 1 && d[0].dead ? d : null;
  }, { message: 'a dead row in herald.delayed' });
  assert.equal(rows[0].trigger, 'items');
  assert.equal(rows[0].attempts, 3);
  assert.match(rows[0].last_error, /500/);
  const attempts = await attemptsOf(s.db, ev);
  assert.deepEqual(attempts.map((a) => [a.trigger, a.attempt, a.status]), [['items', 1, 500], ['items', 2, 500], ['items', 3, 500]]);
  assert.deepEqual(s.receiver.byEventId(ev).map((q) => q.json.delivery_info.current_retry), [0, 1, 2]);
  await assertNoMoreAttempts(s, ev, 3, 2);
  // Dead events stay listed.
  const after = await delayedOf(s.db, ev);
  assert.equal(after.length, 1);
  assert.equal(after[0].dead, true);
});

forBackends('fixed backoff: every retry waits at least the interval', async (t, backend) => {
  const s = await itemsStack(backend, { max_retries: 3, interval: '300ms', backoff: 'fixed', max_interval: '10s' });
  s.receiver.respond = () => ({ status: 503 });
  const ev = await insertRow(s, 1);
  await s.receiver.waitFor(4);
  const g = gaps(s.receiver.byEventId(ev));
  assert.equal(g.length, 3);
  for (const gap of g) {
    assert.ok(gap >= 300 - TOLERANCE_MS, `gap ${gap.toFixed(1)}ms < fixed interval 300ms`);
    assert.ok(gap <= 300 + SLACK_MS, `gap ${gap.toFixed(1)}ms far beyond fixed interval 300ms`);
  }
  await waitUntil(async () => (await delayedOf(s.db, ev))[0]?.dead === true, { message: 'dead after 3 retries' });
});

forBackends('exponential backoff: retry n waits at most min(max_interval, interval·2^(n-1)) (+ slack)', async (t, backend) => {
  const s = await itemsStack(backend, { max_retries: 4, interval: '100ms', backoff: 'exponential', max_interval: '300ms' });
  s.receiver.respond = () => ({ status: 500 });
  const ev = await insertRow(s, 1);
  await s.receiver.waitFor(5);
  const g = gaps(s.receiver.byEventId(ev));
  const bounds = [100, 200, 300, 300];
  g.forEach((gap, i) => assert.ok(gap <= bounds[i] + SLACK_MS, `retry ${i + 1}: gap ${gap.toFixed(1)}ms, bound ${bounds[i]}ms`));
  await waitUntil(async () => (await delayedOf(s.db, ev))[0]?.dead === true, { message: 'dead after 4 retries' });
  assert.equal((await attemptsOf(s.db, ev)).length, 5);
});

for (const status of [503, 429]) {
  forBackends(`Retry-After: 1 on ${status} delays the next attempt by at least 1s (interval 50ms)`, async (t, backend) => {
    const s = await itemsStack(backend, { max_retries: 3, interval: '50ms', max_interval: '5s', backoff: 'exponential' });
    s.receiver.respond = (req, n) => (n === 1 ? { status, headers: { 'retry-after': '1' } } : undefined);
    const ev = await insertRow(s, 1);
    await s.receiver.waitFor(2, 15000);
    const [gap] = gaps(s.receiver.byEventId(ev));
    assert.ok(gap >= 1000 - TOLERANCE_MS, `next attempt after ${gap.toFixed(1)}ms, Retry-After asked for 1000ms`);
    await waitSettled(s.db, ev);
    assert.deepEqual((await attemptsOf(s.db, ev)).map((a) => a.status), [status, 200]);
  });
}

forBackends('Retry-After: 100 is capped by max_interval 1s', async (t, backend) => {
  const s = await itemsStack(backend, { max_retries: 3, interval: '50ms', max_interval: '1s', backoff: 'exponential' });
  s.receiver.respond = (req, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '100' } } : undefined);
  const ev = await insertRow(s, 1);
  await s.receiver.waitFor(2, 10000, 'the retry well before 100s');
  const [gap] = gaps(s.receiver.byEventId(ev));
  assert.ok(gap <= 1000 + SLACK_MS, `retry after ${gap.toFixed(1)}ms; max_interval is 1s`);
  await waitSettled(s.db, ev);
});

forBackends('timeout: a hanging endpoint is cut off, recorded with null status and a timeout error, retried', async (t, backend) => {
  const s = await itemsStack(backend, { max_retries: 3, interval: '100ms', backoff: 'fixed', timeout: '500ms' });
  s.receiver.respond = (req, n) => (n === 1 ? { hang: true } : undefined);
  const ev = await insertRow(s, 1);
  await s.receiver.waitFor(2, 15000);
  const reqs = s.receiver.byEventId(ev);
  assert.deepEqual(reqs.map((q) => q.json.delivery_info.current_retry), [0, 1]);
  const [gap] = gaps(reqs);
  assert.ok(gap >= 500 + 100 - 50, `retry ${gap.toFixed(1)}ms after the first request: timeout 500ms + interval 100ms`);
  await waitSettled(s.db, ev);
  const attempts = await attemptsOf(s.db, ev);
  assert.equal(attempts.length, 2);
  assert.equal(attempts[0].status, null);
  assert.match(attempts[0].error ?? '', /time[d]?[ -]?out/i);
  assert.equal(attempts[1].status, 200);
  // herald gave up on the first request: the receiver saw its connection close unanswered.
  await s.receiver.waitFor(() => reqs[0].aborted, 5000, 'the hung request to be abandoned by herald');
});

forBackends('3xx and 4xx are failures; redirects are not followed', async (t, backend) => {
  const s = await itemsStack(backend, { max_retries: 3, interval: '100ms', backoff: 'fixed' });
  s.receiver.respond = (req, n) => {
    if (req.url !== '/items') return undefined;
    if (n === 1) return { status: 302, headers: { location: s.receiver.url('/elsewhere') }, body: '' };
    if (n === 2) return { status: 404, body: 'not here' };
    return undefined;
  };
  const ev = await insertRow(s, 1);
  await s.receiver.waitFor(3);
  await waitSettled(s.db, ev);
  assert.deepEqual(s.receiver.requests.map((q) => q.url), ['/items', '/items', '/items']);
  assert.deepEqual(s.receiver.requests.map((q) => q.json.delivery_info.current_retry), [0, 1, 2]);
  assert.deepEqual((await attemptsOf(s.db, ev)).map((a) => a.status), [302, 404, 200]);
});

forBackends('connection refused is retried until the endpoint comes up', async (t, backend) => {
  const port = await freePort();
  const s = await itemsStack(backend, { max_retries: 100, interval: '200ms', backoff: 'fixed' }, {
    webhook: (p) => `http://127.0.0.1:${port}${p}`,
  });
  const ev = await insertRow(s, 1);
  const failed = await waitUntil(async () => {
    const a = await attemptsOf(s.db, ev);
    return a.length >= 2 ? a : null;
  }, { message: 'two failed attempts recorded' });
  for (const a of failed.slice(0, 2)) {
    assert.equal(a.status, null);
    assert.ok(a.error && a.error.length > 0, 'a connection error is recorded');
  }
  const late = await receiverTracked({ port });
  await late.waitFor(1, 15000);
  await waitSettled(s.db, ev);
  const body = late.requests[0].json;
  assert.equal(body.id, ev);
  assert.ok(body.delivery_info.current_retry >= 2, `current_retry ${body.delivery_info.current_retry}`);
  assert.equal(body.delivery_info.current_retry, (await attemptsOf(s.db, ev)).length - 1);
});

forBackends('a failing event waits in herald.delayed without holding back later events of its trigger', async (t, backend) => {
  const s = await itemsStack(backend, { max_retries: 5, interval: '30s', backoff: 'fixed' });
  s.receiver.respond = (req) => (rowId(req) === 1 ? { status: 500 } : undefined);
  const ev = await insertRow(s, 1);
  await s.receiver.waitFor(1);
  const later = [];
  for (let id = 2; id <= 5; id++) later.push(await insertRow(s, id));
  for (const e of later) await waitSettled(s.db, e);
  assert.equal(s.receiver.byEventId(ev).length, 1, 'the failed event is not retried before its due time');
  const d = await delayedOf(s.db, ev);
  assert.equal(d.length, 1);
  assert.equal(d[0].dead, false);
  assert.equal(d[0].attempts, 1);
  const [first] = await attemptsOf(s.db, ev);
  const ms = d[0].due_at.getTime() - first.at.getTime();
  assert.ok(Math.abs(ms - 30000) < 2000, `due_at is the fixed interval after the attempt (${ms}ms)`);
});

forBackends('a failing trigger does not hold back another trigger on the same table', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: ITEMS,
    triggers: (r) => [
      { name: 'broken', table: 'public.items', operations: ['insert'], webhook: r.url('/broken'), start: 'beginning',
        retry: { max_retries: 5, interval: '30s', backoff: 'fixed' } },
      { name: 'healthy', table: 'public.items', operations: ['insert'], webhook: r.url('/healthy'), start: 'beginning' },
    ],
  });
  s.receiver.respond = (req) => (req.url === '/broken' ? { status: 500 } : undefined);
  const evs = [];
  for (let id = 1; id <= 5; id++) evs.push(await insertRow(s, id));
  for (const e of evs) await waitSettled(s.db, e, { trigger: 'healthy' });
  await s.receiver.waitFor((reqs) => reqs.filter((q) => q.url === '/broken').length >= 5, 30000);
  const healthy = s.receiver.requests.filter((q) => q.url === '/healthy');
  assert.deepEqual(healthy.map(rowId).sort(), [1, 2, 3, 4, 5]);
  assert.ok(healthy.every((q) => q.json.trigger.name === 'healthy'));
  await waitUntil(async () => (await countRows(s.db, 'delayed', "trigger = 'broken' AND NOT dead")) === 5,
    { message: 'the 5 failed events of the broken trigger wait in herald.delayed' });
});
