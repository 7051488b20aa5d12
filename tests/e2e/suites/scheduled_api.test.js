// Scheduled events through /v1/metadata (docs/api.md): one-off events (create_scheduled_event,
// delete_scheduled_event) delivered by the pseudo-trigger "@one_off" within a second of their time
// and never before it, dead with the reason when past their tolerance, cancelled while pending;
// cron triggers (create_cron_trigger, delete_cron_trigger, get_cron_triggers) in Hasura's shapes
// with a delivered fire, kept by export → replace_metadata; bad cron strings and timestamps
// rejected with the precise code and path; `herald schedules` lists pending one-off events.
import assert from 'node:assert/strict';
import {
  delayedOf, forBackends, logRows, stack, useCluster,
} from '../lib/fixture.js';
import { run } from '../lib/herald.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntil } from '../lib/util.js';

const cluster = useCluster();
const SUCCESS = { message: 'success' };

async function post(h, body) {
  const res = await fetch(h.url('/v1/metadata'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text), text };
}

async function ok(s, type, args) {
  const r = await post(s.herald, args === undefined ? { type } : { type, args });
  assert.equal(r.status, 200, `${type}: ${r.text}`);
  return r.json;
}

async function fails(s, body, code, path, re) {
  const r = await post(s.herald, body);
  assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 200)} → ${r.text}`);
  assert.equal(r.json.code, code, r.text);
  assert.equal(r.json.path, path, r.text);
  if (re) assert.match(r.json.error, re);
  return r.json;
}

async function stopClean(s) {
  const code = await s.herald.stop();
  assert.equal(code, 0, s.herald.tail(20));
  assert.doesNotMatch(s.herald.stderr, /Sanitizer|runtime error/);
}

/** The offset that puts the shifted clock at second `at` of a minute. */
function offsetTo(at) {
  const s = Math.floor(Date.now() / 1000) % 60;
  return (at - s + 60) % 60;
}

const iso = (ms) => new Date(ms).toISOString();

forBackends('a one-off event is delivered within a second of its time, never before, with Hasura\'s body', async (t, backend) => {
  const s = await stack(cluster, { backend, triggers: () => [] });
  const at = Math.ceil(Date.now() / 1000) * 1000 + 3000;
  const created = await ok(s, 'create_scheduled_event', {
    webhook: s.receiver.url('/once'),
    schedule_at: iso(at),
    payload: { k: 'v' },
    headers: [{ name: 'X-One', value: 'off' }],
    comment: 'once',
  });
  assert.deepEqual(Object.keys(created).sort(), ['event_id', 'message']);
  assert.equal(created.message, 'success');
  // Pending: herald schedules lists it.
  const listed = await run(['schedules', '-c', s.file, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const one = JSON.parse(listed.stdout).find((e) => e.one_off && e.id === created.event_id);
  assert.ok(one, listed.stdout);
  assert.equal(one.webhook, s.receiver.url('/once'));
  assert.equal(Date.parse(one.next_fire_at), at);
  assert.equal(one.attempts, 0);
  const text = await run(['schedules', '-c', s.file]);
  assert.match(text.stdout, new RegExp(`ONE-OFF EVENT.*\\n${created.event_id}`));
  const [req] = await s.receiver.waitFor(1, 15000, 'the one-off event');
  assert.ok(req.at >= at, `not before its time (arrived ${req.at - at} ms early)`);
  assert.ok(req.at - at < 5000, `on time (arrived ${req.at - at} ms after it)`);
  assert.equal(req.url, '/once');
  assert.equal(req.headers['x-one'], 'off');
  assert.equal(req.headers['webhook-id'], created.event_id);
  const body = req.json;
  assert.deepEqual(Object.keys(body).sort(), ['comment', 'created_at', 'id', 'payload', 'scheduled_time']);
  assert.equal(body.id, created.event_id);
  assert.deepEqual(body.payload, { k: 'v' });
  assert.equal(body.comment, 'once');
  assert.equal(Date.parse(body.scheduled_time), at);
  // The log holds it as ONE_OFF under the pseudo-trigger, which the status never lists.
  const [row] = await logRows(s.db, '@one_off');
  assert.equal(row.op, 'ONE_OFF');
  assert.equal(row.id, created.event_id);
  await waitUntil(async () => (await delayedOf(s.db, created.event_id)).length === 0);
  // Redelivered like any event, to @one_off.
  assert.deepEqual(await ok(s, 'pg_redeliver_event', { event_id: created.event_id }), SUCCESS);
  const again = await s.receiver.waitFor(2, 10000, 'the redelivery');
  assert.equal(again[1].json.id, created.event_id);
  const status = await run(['status', '-c', s.file, '--json']);
  assert.doesNotMatch(status.stdout, /@one_off/);
  await stopClean(s);
});

forBackends('a one-off event past its tolerance is dead with the reason; a failing one retries by its own retry_conf', async (t, backend) => {
  const s = await stack(cluster, { backend, triggers: () => [] });
  const late = await ok(s, 'create_scheduled_event', {
    webhook: s.receiver.url('/late'),
    schedule_at: iso(Date.now() - 120000),
    retry_conf: { tolerance_seconds: 60 },
  });
  const failing = await ok(s, 'create_scheduled_event', {
    webhook: 'http://127.0.0.1:9/nothing-listens',
    schedule_at: iso(Date.now()),
    retry_conf: { num_retries: 1, retry_interval_seconds: 1, timeout_seconds: 2 },
  });
  await waitUntil(async () => (await delayedOf(s.db, late.event_id)).some((d) => d.dead), { timeoutMs: 10000 });
  const [d] = await delayedOf(s.db, late.event_id);
  assert.equal(d.trigger, '@one_off');
  assert.match(d.last_error, /^missed by 2m\d*s?, beyond the 1m tolerance$/);
  await waitUntil(async () => (await delayedOf(s.db, failing.event_id)).some((x) => x.dead), { timeoutMs: 15000 });
  const [f] = await delayedOf(s.db, failing.event_id);
  assert.equal(f.attempts, 2);
  assert.equal(s.receiver.requests.filter((q) => q.url === '/late').length, 0);
  await stopClean(s);
});

forBackends('delete_scheduled_event stops a pending one-off event', async (t, backend) => {
  const s = await stack(cluster, { backend, triggers: () => [] });
  const at = Date.now() + 3000;
  const { event_id: id } = await ok(s, 'create_scheduled_event', { webhook: s.receiver.url('/never'), schedule_at: iso(at) });
  assert.deepEqual(await ok(s, 'delete_scheduled_event', { type: 'one_off', event_id: id }), SUCCESS);
  await fails(s, { type: 'delete_scheduled_event', args: { type: 'one_off', event_id: id } }, 'not-exists', '$.args.event_id');
  await fails(s, { type: 'delete_scheduled_event', args: { type: 'cron', event_id: id } }, 'not-exists', '$.args.event_id');
  await fails(s, { type: 'delete_scheduled_event', args: { type: 'later', event_id: id } }, 'parse-failed', '$.args.type');
  await sleep(Math.max(0, at - Date.now()) + 1500);
  assert.equal(s.receiver.requests.length, 0);
  const [d] = await delayedOf(s.db, id);
  assert.equal(d.dead, true);
  assert.match(d.last_error, /cancelled by delete_scheduled_event/);
  await stopClean(s);
});

forBackends('cron triggers through /v1/metadata: create, get, a delivered fire, delete keeps the log', async (t, backend) => {
  const s = await stack(cluster, { backend, triggers: () => [], serve: false });
  const offset = offsetTo(57);
  await s.serve({ env: { HERALD_TEST_CLOCK_OFFSET: String(offset) } });
  const args = {
    name: 'api_cron',
    webhook: s.receiver.url('/cron'),
    schedule: '* * * * *',
    payload: { a: 1 },
    headers: [{ name: 'X-Cron', value: 'yes' }],
    retry_conf: { num_retries: 2, retry_interval_seconds: 5, timeout_seconds: 30, tolerance_seconds: 600 },
    include_in_metadata: true,
    comment: 'made here',
  };
  assert.deepEqual(await ok(s, 'create_cron_trigger', args), SUCCESS);
  await fails(s, { type: 'create_cron_trigger', args }, 'already-exists', '$.args.name');
  assert.deepEqual(await ok(s, 'create_cron_trigger', { ...args, replace: true }), SUCCESS);
  const got = await ok(s, 'get_cron_triggers', {});
  assert.deepEqual(got, {
    cron_triggers: [{
      name: 'api_cron',
      webhook: args.webhook,
      schedule: '* * * * *',
      include_in_metadata: true,
      payload: { a: 1 },
      retry_conf: args.retry_conf,
      headers: args.headers,
      comment: 'made here',
    }],
  });
  // Not an event trigger.
  await fails(s, { type: 'pg_delete_event_trigger', args: { name: 'api_cron' } }, 'not-exists', '$.args.name');
  const [req] = await s.receiver.waitFor(1, 20000, 'the first fire');
  assert.equal(req.json.name, 'api_cron');
  assert.deepEqual(req.json.payload, { a: 1 });
  assert.equal(req.json.comment, 'made here');
  assert.equal(req.headers['x-cron'], 'yes');
  assert.deepEqual(await ok(s, 'delete_cron_trigger', { name: 'api_cron' }), SUCCESS);
  await fails(s, { type: 'delete_cron_trigger', args: { name: 'api_cron' } }, 'not-exists', '$.args.name');
  assert.deepEqual(await ok(s, 'get_cron_triggers'), { cron_triggers: [] });
  const fires = (await logRows(s.db, 'api_cron')).filter((r) => r.op === 'CRON');
  assert.ok(fires.length >= 1);
  assert.equal(fires[0].id, req.json.id);
  await stopClean(s);
});

forBackends('export → replace_metadata keeps cron triggers; bad cron strings and timestamps are rejected precisely', async (t, backend) => {
  const s = await stack(cluster, { backend, triggers: () => [] });
  await ok(s, 'create_cron_trigger', { name: 'nightly', webhook: s.receiver.url('/n'), schedule: '0 3 * * *', include_in_metadata: true });
  const before = await ok(s, 'export_metadata', {});
  assert.equal(before.cron_triggers.length, 1);
  assert.equal(before.cron_triggers[0].schedule, '0 3 * * *');
  assert.deepEqual(before.sources[0].tables, []);
  assert.deepEqual(before.herald.event_triggers, []);
  // Without cron_triggers, the document says nothing about them: they stay.
  await ok(s, 'replace_metadata', { version: 3, sources: [] });
  assert.deepEqual(await ok(s, 'export_metadata', {}), before);
  // With cron_triggers: [] they go; back from the export they return.
  await ok(s, 'replace_metadata', { version: 3, sources: [], cron_triggers: [] });
  assert.equal((await ok(s, 'export_metadata', {})).cron_triggers, undefined);
  await ok(s, 'replace_metadata', before);
  assert.deepEqual(await ok(s, 'export_metadata', {}), before);
  // bulk: staged with the rest, all or nothing.
  await fails(s, { type: 'bulk', args: [
    { type: 'delete_cron_trigger', args: { name: 'nightly' } },
    { type: 'create_cron_trigger', args: { name: 'x', webhook: 'http://h', schedule: 'nope' } },
  ] }, 'validation-failed', '$.args[1].args.schedule');
  assert.deepEqual(await ok(s, 'export_metadata', {}), before);

  const cron = (schedule) => ({ type: 'create_cron_trigger', args: { name: 'bad', webhook: 'http://h', schedule } });
  await fails(s, cron('61 * * * *'), 'validation-failed', '$.args.schedule', /minute: 61 is out of range 0-59/);
  await fails(s, cron('* * * *'), 'validation-failed', '$.args.schedule');
  await fails(s, cron('@reboot'), 'validation-failed', '$.args.schedule');
  await fails(s, cron('* * 32 * *'), 'validation-failed', '$.args.schedule');
  await fails(s, cron(5), 'parse-failed', '$.args.schedule');
  await fails(s, { type: 'replace_metadata', args: { version: 3, sources: [], cron_triggers: [{ name: 'c', webhook: 'http://h', schedule: 'x y' }] } },
    'validation-failed', '$.args.cron_triggers[0].schedule');
  const once = (scheduleAt) => ({ type: 'create_scheduled_event', args: { webhook: 'http://h', schedule_at: scheduleAt } });
  await fails(s, once('tomorrow'), 'parse-failed', '$.args.schedule_at', /invalid time/);
  await fails(s, once('2026-02-30T00:00:00Z'), 'parse-failed', '$.args.schedule_at');
  await fails(s, once('2026-01-01T12:00:00+25:00'), 'parse-failed', '$.args.schedule_at');
  await fails(s, once(12), 'parse-failed', '$.args.schedule_at');
  await fails(s, { type: 'create_scheduled_event', args: { webhook: 'http://h' } }, 'parse-failed', '$.args', /schedule_at/);
  // One namespace with event triggers.
  await fails(s, { type: 'create_cron_trigger', args: { name: 'nightly', webhook: 'http://h', schedule: '@daily' } }, 'already-exists', '$.args.name');
  await stopClean(s);
});
