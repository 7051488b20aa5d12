// Schedules (cron triggers): fires written to the log once and delivered on time with Hasura's
// scheduled-event body, catch-up after downtime within the tolerance (older fires dead with the
// reason), one event per fire with two herald processes on one PostgreSQL database, precise
// errors for bad cron strings, retries and dead events for a failing endpoint.
//
// Waiting for real minutes would make this suite slow: herald's schedules read their clock
// shifted by HERALD_TEST_CLOCK_OFFSET seconds (a testing aid, src/sched/scheduler.h), so a test
// puts herald two seconds before a minute boundary, or ten minutes after the schedule was
// created. Times asserted here are on that shifted clock.
import assert from 'node:assert/strict';
import {
  countRows, delayedOf, e2eTest, forBackends, logRows, onBackend, receiverTracked, serveTracked, stack, useCluster,
} from '../lib/fixture.js';
import { run, writeConfig } from '../lib/herald.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntil } from '../lib/util.js';

const cluster = useCluster();

/** The offset that puts the shifted clock at second `at` of a minute, `minutes` minutes on. */
function offsetTo(at, minutes = 0) {
  const s = Math.floor(Date.now() / 1000) % 60;
  return minutes * 60 + ((at - s + 60) % 60);
}

/** Waits, if the real clock is in the last seconds of a minute, until the next one has begun:
 * a schedule created (by herald apply) at real second 59 and served at offsetTo(58) would see
 * the shifted clock in the next minute, catch up its first fire at once and arrive ~58 s "late". */
async function clearOfMinuteEnd() {
  const s = (Date.now() / 1000) % 60;
  if (s >= 52) await sleep((61 - s) * 1000);
}

async function scheduleStack(backend, schedule, opts = {}) {
  const receiver = await receiverTracked();
  const s = await stack(cluster, {
    backend,
    receiver,
    triggers: () => [],
    config: { schedules: [{ webhook: receiver.url('/cron'), ...schedule }] },
    serve: false,
    ...opts,
  });
  return s;
}

const cronEvents = async (db, name) => (await logRows(db, name)).filter((r) => r.op === 'CRON');

forBackends('a schedule fires at its minute, once, with Hasura\'s scheduled-event body', async (t, backend) => {
  await clearOfMinuteEnd();
  const s = await scheduleStack(backend, {
    name: 'every_minute', cron: '* * * * *', payload: { kind: 'tick', n: [1, 2] }, comment: 'every minute',
  });
  const offset = offsetTo(58);
  await s.serve({ env: { HERALD_TEST_CLOCK_OFFSET: String(offset) } });
  const [req] = await s.receiver.waitFor(1, 20000, 'the first fire');
  const arrived = Date.now() / 1000 + offset;
  const body = req.json;
  assert.deepEqual(Object.keys(body).sort(), ['comment', 'id', 'name', 'payload', 'scheduled_time']);
  assert.equal(body.name, 'every_minute');
  assert.deepEqual(body.payload, { kind: 'tick', n: [1, 2] });
  assert.equal(body.comment, 'every minute');
  assert.match(body.scheduled_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/);
  const at = Date.parse(body.scheduled_time) / 1000;
  assert.ok(arrived >= at, `not before its time (arrived ${arrived}, scheduled ${at})`);
  assert.ok(arrived - at < 15, `on time (arrived ${arrived - at}s after it)`);
  assert.equal(req.headers['webhook-id'], body.id);
  const events = await cronEvents(s.db, 'every_minute');
  assert.equal(events.length, 1);
  assert.equal(events[0].id, body.id);
  assert.equal(events[0].new.scheduled_time, body.scheduled_time);
  assert.equal(await countRows(s.db, 'fires'), 1);
  await waitUntil(async () => (await delayedOf(s.db, body.id)).length === 0 && (await countRows(s.db, 'attempts')) === 1);
  // herald schedules lists it with its next fire, on the same clock.
  const listed = await run(['schedules', '-c', s.file, '--json'], { env: { HERALD_TEST_CLOCK_OFFSET: String(offset) } });
  assert.equal(listed.code, 0, listed.stderr);
  const [sched] = JSON.parse(listed.stdout);
  assert.equal(sched.name, 'every_minute');
  assert.equal(sched.cron, '* * * * *');
  assert.equal(sched.tolerance_seconds, 21600);
  assert.equal(sched.comment, 'every minute');
  assert.ok(Date.parse(sched.next_fire_at) > Date.parse(body.scheduled_time), sched.next_fire_at);
  assert.equal(await s.herald.stop(), 0);
});

forBackends('fires missed while herald was down: within the tolerance delivered, older ones dead with the reason', async (t, backend) => {
  const s = await scheduleStack(backend, {
    name: 'catch_up', cron: '* * * * *', tolerance: '5m', payload: 'p',
  });
  // Herald runs (on the real clock) and stops; what it fired, if a minute began, is not counted.
  await s.serve();
  await s.herald.waitForLog(/msg=scheduling/);
  assert.equal(await s.herald.stop(), 0);
  const before = new Set((await cronEvents(s.db, 'catch_up')).map((e) => e.id));
  // Back "ten minutes later", at second 30 of a minute: fires are 30 s, 90 s, … late, so none is
  // near the 5 minute border.
  const offset = offsetTo(30, 10);
  const now = Date.now() / 1000 + offset;
  await s.serve({ env: { HERALD_TEST_CLOCK_OFFSET: String(offset) } });
  await s.herald.waitForLog(/catching up missed fires.*count=\d+/);
  const caughtUp = async () => (await cronEvents(s.db, 'catch_up')).filter((e) => !before.has(e.id));
  await waitUntil(async () => {
    const evs = await caughtUp();
    if (evs.length < 9) return false;
    const settled = await countRows(s.db, 'attempts');
    return settled >= evs.length + before.size;
  }, { timeoutMs: 30000, message: 'every caught-up fire attempted or dead' });
  const evs = await caughtUp();
  assert.ok(evs.length >= 9 && evs.length <= 11, `${evs.length} fires caught up`);
  let delivered = 0;
  let dead = 0;
  for (const ev of evs) {
    const late = now - Date.parse(ev.new.scheduled_time) / 1000;
    const got = s.receiver.requests.filter((q) => q.json?.id === ev.id);
    const rows = await delayedOf(s.db, ev.id);
    if (late < 300) {
      assert.equal(got.length, 1, `fire ${ev.new.scheduled_time} (${late}s late) delivered`);
      delivered++;
    } else {
      assert.equal(got.length, 0, `fire ${ev.new.scheduled_time} (${late}s late) not sent`);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].dead, true);
      assert.match(rows[0].last_error, /^missed by (\d+m)?\d+s, beyond the 5m tolerance$/);
      dead++;
    }
  }
  assert.equal(delivered, 5);
  assert.ok(dead >= 4);
  // A restart does not fire them again.
  assert.equal(await s.herald.stop(), 0);
  await s.serve({ env: { HERALD_TEST_CLOCK_OFFSET: String(offset) } });
  await s.herald.waitForLog(/msg=scheduling/);
  assert.equal((await caughtUp()).length, evs.length);
  assert.equal(await countRows(s.db, 'fires'), evs.length + before.size);
});

onBackend('postgres', 'two herald processes on one database write each fire once', async () => {
  const s = await scheduleStack('postgres', { name: 'shared', cron: '* * * * *' });
  // Both start three minutes and 58 s on: each catches up the same missed fires, then both fire
  // at the next minute boundary.
  const offset = offsetTo(58, 3);
  const env = { HERALD_TEST_CLOCK_OFFSET: String(offset) };
  const [a, b] = await Promise.all([serveTracked(s.file, { env }), serveTracked(s.file, { env })]);
  await waitUntil(async () => (await countRows(s.db, 'fires')) >= 4, { timeoutMs: 20000 });
  await new Promise((r) => setTimeout(r, 1000));
  const fires = await countRows(s.db, 'fires', "schedule = 'shared'");
  const evs = await cronEvents(s.db, 'shared');
  assert.equal(evs.length, fires, 'one log event per fire');
  assert.equal(new Set(evs.map((e) => e.new.scheduled_time)).size, evs.length, 'no fire twice');
  const written = [a, b].reduce((n, h) => n + (h.stderr.match(/msg="fired"/g) || []).length, 0);
  assert.equal(written, fires, 'each fire written by exactly one process');
  await s.receiver.waitFor((reqs) => evs.every((e) => reqs.some((q) => q.json?.id === e.id)), 20000);
});

forBackends('a failing endpoint: retries, then dead', async (t, backend) => {
  const s = await scheduleStack(backend, {
    name: 'failing', cron: '* * * * *', retry: { max_retries: 2, interval: '100ms', max_interval: '200ms' },
  });
  s.receiver.respond = () => ({ status: 500, body: 'no' });
  await s.serve({ env: { HERALD_TEST_CLOCK_OFFSET: String(offsetTo(58)) } });
  await s.receiver.waitFor(3, 20000, 'three attempts');
  const [ev] = await cronEvents(s.db, 'failing');
  await waitUntil(async () => (await delayedOf(s.db, ev.id))[0]?.dead === true, { timeoutMs: 10000 });
  const [row] = await delayedOf(s.db, ev.id);
  assert.equal(row.attempts, 3);
  assert.equal(row.last_error, 'HTTP status 500');
  assert.equal(s.receiver.requests.length, 3);
  assert.ok(s.receiver.requests.every((q) => q.json.id === ev.id && q.json.name === 'failing'));
});

e2eTest('bad cron strings and names are rejected with file:line: key: message', async () => {
  const file = writeConfig({
    database: 'sqlite:unused.db',
    triggers: [{ name: 'dup', events: ['x'], webhook: 'http://127.0.0.1:1/' }],
    schedules: [
      { name: 'a', cron: '*/0 * * * *', webhook: 'http://127.0.0.1:1/' },
      { name: 'b', cron: '0 25 * * *', webhook: 'http://127.0.0.1:1/' },
      { name: 'c', cron: '0 0 * * MON-XYZ', webhook: 'http://127.0.0.1:1/' },
      { name: 'd', cron: '@reboot', webhook: 'http://127.0.0.1:1/' },
      { name: 'e', cron: '0 0 30 2 *', webhook: 'http://127.0.0.1:1/' },
      { name: 'f', cron: '* * * *', webhook: 'http://127.0.0.1:1/' },
      { name: 'dup', cron: '@daily', webhook: 'http://127.0.0.1:1/' },
    ],
  });
  const r = await run(['check', file]);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  const want = [
    /:\d+: schedules\[0\]\.cron: cron "\*\/0 \* \* \* \*": minute: /,
    /:\d+: schedules\[1\]\.cron: cron "0 25 \* \* \*": hour: 25 is out of range 0-23/,
    /:\d+: schedules\[2\]\.cron: cron "0 0 \* \* MON-XYZ": day-of-week: /,
    /:\d+: schedules\[3\]\.cron: cron "@reboot": /,
    /:\d+: schedules\[4\]\.cron: cron "0 0 30 2 \*" never fires/,
    /:\d+: schedules\[5\]\.cron: cron "\* \* \* \*": /,
    /:\d+: schedules\[6\]\.name: "dup" is also the name of a trigger \(triggers\[0\]\)/,
  ];
  for (const re of want) assert.ok(lines.some((l) => re.test(l)), `${re} in:\n${r.stderr}`);
});
