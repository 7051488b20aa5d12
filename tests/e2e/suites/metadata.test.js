// POST /v1/metadata, Hasura's metadata API for event triggers (docs/api.md): a trigger made
// through it delivers and is the same thing as one from herald.yaml (herald status, export,
// herald apply); replace; delete keeps past events; manual invoke (op MANUAL, one trigger only,
// 400 without enable_manual); redeliver of a dead event (current_retry 0); the event log,
// invocation log and event-by-id shapes; export_metadata → replace_metadata round trip; bulk
// (results in order, atomic definition changes); bad bodies with their code and path; the
// admin secret. The cases that touch the database run on both backends.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { BACKENDS, e2eTest, forBackends, logRows, stack, useCluster, waitSettled } from '../lib/fixture.js';
import { run } from '../lib/herald.js';
import { RFC3339_RE, UUID_RE, waitUntil } from '../lib/util.js';

const cluster = useCluster();

const ITEMS = 'CREATE TABLE items (id int PRIMARY KEY, v text, w text)';
const NO_ENV_DB = { HERALD_DATABASE_URL: undefined };
const SUCCESS = { message: 'success' };

/** POSTs body (an object, or raw text) to herald's /v1/metadata: { status, json, text }. */
async function post(h, body, headers = {}) {
  const res = await fetch(h.url('/v1/metadata'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text };
}

/** A query that must succeed: its answer. */
async function ok(s, type, args, headers) {
  const r = await post(s.herald, args === undefined ? { type } : { type, args }, headers);
  assert.equal(r.status, 200, `${type}: ${r.text}`);
  return r.json;
}

/** A query that must fail with status, code and path (and a message matching re). */
async function fails(s, body, status, code, path, re) {
  const r = await post(s.herald, body);
  assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 200)} → ${r.text}`);
  assert.deepEqual(Object.keys(r.json).sort(), ['code', 'error', 'path']);
  assert.equal(r.json.code, code, r.text);
  assert.equal(r.json.path, path, r.text);
  if (re) assert.match(r.json.error, re);
  return r.json;
}

/** A stack on `items` with the triggers of herald.yaml (none by default), serving. */
function itemsStack(backend, triggers = () => [], extra = {}) {
  return stack(cluster, { backend, sql: ITEMS, triggers, ...extra });
}

/** pg_create_event_trigger args on items. */
function createArgs(s, name, more = {}) {
  return {
    name,
    table: { schema: 'public', name: 'items' },
    webhook: s.receiver.url(`/${name}`),
    insert: { columns: '*' },
    ...more,
  };
}

/** Stops herald with SIGTERM: it exits 0, and an ASan/LSan build reports no leak or error. */
async function stopClean(s) {
  const code = await s.herald.stop();
  assert.equal(code, 0, s.herald.tail(20));
  assert.doesNotMatch(s.herald.stderr, /Sanitizer|runtime error/);
}

const to = (s, p) => s.receiver.requests.filter((q) => q.url === p);

async function herald(s, args) {
  const r = await run([...args, '-c', s.file, '--json'], { env: NO_ENV_DB });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Inserts a row and returns its event id (from herald's log). */
async function insert(s, id, v = 'x') {
  await s.db.query('INSERT INTO items (id, v) VALUES ($1, $2)', [id, v]);
  const rows = await logRows(s.db, 'public.items');
  return rows.filter((r) => r.op === 'INSERT' && r.new.id === id).at(-1).id;
}

/** The event trigger names of an export_metadata answer (table triggers, then custom ones). */
function exportedNames(md) {
  const names = [];
  for (const src of md.sources) for (const t of src.tables) for (const et of t.event_triggers || []) names.push(et.name);
  for (const et of md.herald?.event_triggers || []) names.push(et.name);
  return names;
}

describe('triggers made through /v1/metadata', () => {
  forBackends('one created here delivers, herald status and export_metadata see it, herald apply removes it', async (t, backend) => {
    const s = await itemsStack(backend, (r) => [
      { name: 'from_yaml', table: 'items', operations: ['delete'], webhook: r.url('/from_yaml') },
    ], { env: { HERALD_E2E_HEADER: 'from-env' } });
    const created = await ok(s, 'pg_create_event_trigger', createArgs(s, 'm', {
      update: { columns: ['v'] },
      retry_conf: { num_retries: 2, interval_sec: 1, timeout_sec: 5 },
      headers: [{ name: 'X-From', value: 'api' }, { name: 'X-Env', value_from_env: 'HERALD_E2E_HEADER' }],
    }));
    assert.deepEqual(created, SUCCESS);

    await insert(s, 1);
    await s.receiver.waitFor((reqs) => to(s, '/m').length === 1);
    const [first] = to(s, '/m');
    assert.equal(first.json.trigger.name, 'm');
    assert.deepEqual(first.json.table, { schema: 'public', name: 'items' });
    assert.equal(first.json.event.op, 'INSERT');
    assert.deepEqual(first.json.event.data, { old: null, new: { id: 1, v: 'x', w: null } });
    assert.deepEqual(first.json.delivery_info, { max_retries: 2, current_retry: 0 });
    assert.equal(first.headers['x-from'], 'api');
    assert.equal(first.headers['x-env'], 'from-env');

    // update.columns [v]: a change of w alone is not delivered, a change of v is.
    await s.db.query("UPDATE items SET w = 'w' WHERE id = 1");
    await s.db.query("UPDATE items SET v = 'y' WHERE id = 1");
    await s.receiver.waitFor((reqs) => to(s, '/m').length === 2);
    assert.equal(to(s, '/m')[1].json.event.op, 'UPDATE');
    assert.equal(to(s, '/m')[1].json.event.data.new.v, 'y');

    // The same trigger as one from herald.yaml: herald status, export_metadata.
    const st = await herald(s, ['status']);
    assert.deepEqual(st.map((r) => r.trigger).sort(), ['from_yaml', 'm']);
    const md = await ok(s, 'export_metadata', {});
    assert.equal(md.version, 3);
    assert.equal(md.sources[0].name, 'default');
    assert.deepEqual(md.sources[0].tables.map((x) => x.table), [{ schema: 'public', name: 'items' }]);
    const m = md.sources[0].tables[0].event_triggers.find((et) => et.name === 'm');
    // herald keeps headers as a mapping: their order is not kept.
    m.headers.sort((x, y) => x.name.localeCompare(y.name));
    assert.deepEqual(m, {
      name: 'm',
      definition: { enable_manual: false, insert: { columns: '*' }, update: { columns: ['v'] } },
      retry_conf: { num_retries: 2, interval_sec: 1, timeout_sec: 5 },
      webhook: s.receiver.url('/m'),
      headers: [{ name: 'X-Env', value_from_env: 'HERALD_E2E_HEADER' }, { name: 'X-From', value: 'api' }],
    });
    assert.deepEqual(exportedNames(md).sort(), ['from_yaml', 'm']);

    // herald apply makes the database match the file: the trigger made through the API goes.
    const applied = await run(['apply', s.file], { env: NO_ENV_DB });
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /^trigger m: removed$/m);
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})), ['from_yaml']);
    await fails(s, { type: 'pg_get_event_logs', args: { name: 'm' } }, 400, 'not-exists', '$.args.name',
      /^event trigger "m" does not exist$/);
  });

  forBackends('replace: false answers already-exists, true replaces the definition (the cursor stays)', async (t, backend) => {
    const s = await itemsStack(backend);
    await ok(s, 'pg_create_event_trigger', createArgs(s, 'r'));
    await fails(s, { type: 'pg_create_event_trigger', args: createArgs(s, 'r') }, 400, 'already-exists', '$.args.name',
      /^Event trigger with name "r" already exists$/);
    await fails(s, { type: 'pg_create_event_trigger', args: { ...createArgs(s, 'r'), replace: false } }, 400,
      'already-exists', '$.args.name');
    await insert(s, 1);
    await s.receiver.waitFor((reqs) => to(s, '/r').length === 1);

    await ok(s, 'pg_create_event_trigger', { ...createArgs(s, 'r'), webhook: s.receiver.url('/r2'), replace: true });
    await s.herald.waitForLog(/trigger=r msg="definition updated"/);
    const md = await ok(s, 'export_metadata', {});
    assert.equal(md.sources[0].tables[0].event_triggers[0].webhook, s.receiver.url('/r2'));
    await insert(s, 2);
    await s.receiver.waitFor((reqs) => to(s, '/r2').length === 1);
    assert.equal(to(s, '/r2')[0].json.event.data.new.id, 2);
    assert.equal(to(s, '/r').length, 1, 'row 1 was not delivered again');

    // Unknown table and column: validation-failed, nothing made.
    await fails(s, { type: 'pg_create_event_trigger', args: { ...createArgs(s, 'bad'), table: { schema: 'public', name: 'nope' } } },
      400, 'validation-failed', '$.args.table', /nope/);
    await fails(s, { type: 'pg_create_event_trigger', args: { ...createArgs(s, 'bad'), update: { columns: ['zz'] } } },
      400, 'validation-failed', '$.args', /zz/);
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})), ['r']);
  });

  forBackends('delete: success, past events stay, a second delete is not-exists', async (t, backend) => {
    const s = await itemsStack(backend);
    await ok(s, 'pg_create_event_trigger', createArgs(s, 'd'));
    const id = await insert(s, 1);
    await waitSettled(s.db, id, { trigger: 'd' });
    assert.deepEqual(await ok(s, 'pg_delete_event_trigger', { name: 'd', source: 'default' }), SUCCESS);
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})), []);
    await fails(s, { type: 'pg_delete_event_trigger', args: { name: 'd' } }, 400, 'not-exists', '$.args.name',
      /^event trigger "d" does not exist$/);
    // The event and its attempt are kept.
    assert.equal((await logRows(s.db, 'public.items')).length, 1);
    const byId = await ok(s, 'pg_get_event_by_id', { event_id: id });
    assert.equal(byId.event.id, id);
    assert.equal(byId.invocations.length, 1);
    assert.equal(byId.invocations[0].http_status, 200);
    await fails(s, { type: 'pg_delete_event_trigger', args: { name: 'd', source: 'elsewhere' } }, 400, 'not-exists',
      '$.args.source', /^source with name "elsewhere" does not exist$/);
  });
});

describe('events', () => {
  forBackends('a manual invoke delivers op MANUAL to that trigger only; without enable_manual: 400', async (t, backend) => {
    const s = await itemsStack(backend);
    await ok(s, 'pg_create_event_trigger', createArgs(s, 'a', { enable_manual: true }));
    await ok(s, 'pg_create_event_trigger', createArgs(s, 'b', { enable_manual: true }));
    await ok(s, 'pg_create_event_trigger', createArgs(s, 'c'));

    const res = await ok(s, 'pg_invoke_event_trigger', { name: 'a', source: 'default', payload: { order: 42, tags: ['x'] } });
    assert.deepEqual(Object.keys(res), ['event_id']);
    assert.match(res.event_id, UUID_RE);
    await s.receiver.waitFor((reqs) => to(s, '/a').length === 1);
    const body = to(s, '/a')[0].json;
    assert.equal(body.id, res.event_id);
    assert.equal(body.trigger.name, 'a');
    assert.deepEqual(body.table, { schema: 'public', name: 'items' });
    assert.equal(body.event.op, 'MANUAL');
    assert.deepEqual(body.event.data, { old: null, new: { order: 42, tags: ['x'] } });
    assert.deepEqual(body.delivery_info, { max_retries: 0, current_retry: 0 });

    // b and c get a later row, never the manual event.
    await insert(s, 1);
    await s.receiver.waitFor((reqs) => to(s, '/b').length >= 1 && to(s, '/c').length >= 1 && to(s, '/a').length >= 2);
    assert.equal(s.receiver.byEventId(res.event_id).length, 1);

    await fails(s, { type: 'pg_invoke_event_trigger', args: { name: 'c', payload: {} } }, 400, 'not-supported', '$.args.name',
      /manual mode is not enabled for event trigger "c"/);
    await fails(s, { type: 'pg_invoke_event_trigger', args: { name: 'zz', payload: {} } }, 400, 'not-exists', '$.args.name');
    await fails(s, { type: 'pg_invoke_event_trigger', args: { name: 'a' } }, 400, 'parse-failed', '$.args',
      /key "payload" not found/);
    await stopClean(s);
  });

  forBackends('redeliver of a dead event delivers with current_retry 0; the log, invocation and event shapes', async (t, backend) => {
    const s = await itemsStack(backend);
    s.receiver.respond = () => ({ status: 500, body: 'down' });
    await ok(s, 'pg_create_event_trigger', createArgs(s, 'x', {
      retry_conf: { num_retries: 1, interval_sec: 0.1, timeout_sec: 30 },
      update: { columns: '*' },
    }));
    const dead = await insert(s, 1);
    await s.receiver.waitFor((reqs) => to(s, '/x').length === 2);
    // Dead once its second attempt is recorded.
    let logs;
    await waitUntil(async () => {
      logs = await ok(s, 'pg_get_event_logs', { name: 'x', status: 'processed' });
      return logs.length === 1;
    }, { message: 'the event is processed (dead)' });
    assert.deepEqual(Object.keys(logs[0]).sort(), ['archived', 'created_at', 'delivered', 'error', 'id', 'locked',
      'next_retry_at', 'payload', 'schema_name', 'table_name', 'tries', 'trigger_name']);
    assert.deepEqual(logs[0], {
      id: dead, schema_name: 'public', table_name: 'items', trigger_name: 'x',
      payload: { op: 'INSERT', data: { old: null, new: { id: 1, v: 'x', w: null } }, session_variables: null, trace_context: null },
      delivered: false, error: true, tries: 2, created_at: logs[0].created_at, locked: null, next_retry_at: null, archived: false,
    });
    assert.match(logs[0].created_at, RFC3339_RE);

    const inv = await ok(s, 'pg_get_event_invocation_logs', { name: 'x', limit: 10 });
    assert.equal(inv.length, 2);
    for (const i of inv) {
      assert.deepEqual(Object.keys(i).sort(), ['attempt', 'created_at', 'error', 'event_id', 'http_status', 'id',
        'latency_ms', 'request', 'response', 'trigger_name']);
      assert.equal(typeof i.id, 'string');
      assert.equal(i.trigger_name, 'x');
      assert.equal(i.event_id, dead);
      assert.equal(i.http_status, 500);
      assert.deepEqual(i.response, { type: 'webhook_response', data: { status: 500, body: 'down', headers: [] }, version: '2' });
      assert.match(i.created_at, RFC3339_RE);
    }
    assert.deepEqual(inv.map((i) => i.attempt), [2, 1], 'newest first');
    assert.equal((await ok(s, 'pg_get_event_invocation_logs', { name: 'x', offset: 1 })).length, 1);

    // A second event still pending: the receiver answers it only after 4 s.
    s.receiver.respond = (req) => (req.json?.event?.data?.new?.id === 2 ? { delayMs: 4000 } : undefined);
    const pending = await insert(s, 2);
    await s.receiver.waitFor((reqs) => s.receiver.byEventId(pending).length === 1);
    const all = await ok(s, 'pg_get_event_logs', { name: 'x' });
    assert.deepEqual(all.map((e) => e.id), [pending, dead], 'newest first');
    assert.deepEqual((await ok(s, 'pg_get_event_logs', { name: 'x', status: 'pending' })).map((e) => e.id), [pending]);
    assert.deepEqual((await ok(s, 'pg_get_event_logs', { name: 'x', status: 'all', limit: 1, offset: 1 })).map((e) => e.id), [dead]);
    assert.deepEqual(await ok(s, 'pg_get_event_logs', { name: 'x', status: 'processed', offset: 1 }), []);

    // Redeliver: retries start again from 0.
    assert.deepEqual(await ok(s, 'pg_redeliver_event', { event_id: dead, source: 'default' }), SUCCESS);
    await s.receiver.waitFor((reqs) => s.receiver.byEventId(dead).length === 3);
    assert.deepEqual(s.receiver.byEventId(dead)[2].json.delivery_info, { max_retries: 1, current_retry: 0 });
    await waitUntil(async () => (await ok(s, 'pg_get_event_by_id', { event_id: dead })).event.delivered,
      { message: 'delivered after redelivery' });

    const byId = await ok(s, 'pg_get_event_by_id', { event_id: dead, invocation_log_limit: 2, invocation_log_offset: 0 });
    assert.deepEqual(Object.keys(byId).sort(), ['event', 'invocations']);
    assert.equal(byId.event.id, dead);
    assert.equal(byId.event.trigger_name, 'x');
    assert.equal(byId.event.delivered, true);
    assert.equal(byId.event.error, false);
    assert.deepEqual(byId.event.deliveries.map((d) => [d.trigger, d.state]), [['x', 'delivered']]);
    assert.deepEqual(byId.invocations.map((i) => i.http_status), [200, 500]);
    // An id in upper case names the same event.
    assert.equal((await ok(s, 'pg_get_event_by_id', { event_id: dead.toUpperCase() })).event.id, dead);

    await fails(s, { type: 'pg_redeliver_event', args: { event_id: '00000000-0000-4000-8000-000000000000' } }, 400,
      'not-exists', '$.args.event_id', /^event not found$/);
    await fails(s, { type: 'pg_redeliver_event', args: { event_id: 'nope' } }, 400, 'not-exists', '$.args.event_id');
    await fails(s, { type: 'pg_get_event_by_id', args: { event_id: '00000000-0000-4000-8000-000000000000' } }, 400,
      'not-exists', '$.args.event_id', /does not exist/);
    await fails(s, { type: 'pg_get_event_logs', args: { name: 'x', status: 'done' } }, 400, 'parse-failed', '$.args.status');
    await fails(s, { type: 'pg_get_event_logs', args: { name: 'x', limit: 0 } }, 400, 'validation-failed', '$.args.limit');
    await fails(s, { type: 'pg_get_event_invocation_logs', args: { name: 'nope' } }, 400, 'not-exists', '$.args.name');
    await stopClean(s);
  });
});

describe('export_metadata, replace_metadata, bulk', () => {
  forBackends('export → replace_metadata round trip; custom-event triggers in herald\'s extension', async (t, backend) => {
    const s = await itemsStack(backend, (r) => [
      { name: 'yaml_items', table: 'items', operations: ['insert', 'update'], columns: ['v'], payload: ['id', 'v'],
        webhook: r.url('/yaml_items'), retry: { max_retries: 3, interval: '250ms', backoff: 'exponential', max_interval: '1m' },
        secret: '{{HERALD_E2E_SECRET}}', start: 'beginning', concurrency: 4 },
      { name: 'orders', events: ['order.*'], webhook: r.url('/orders') },
    ], {
      env: { HERALD_E2E_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
      // A schedule is no event trigger: not exported, never replaced or deleted here.
      config: { schedules: [{ name: 'nightly', cron: '0 3 * * *', webhook: 'http://127.0.0.1:9/cron' }] },
    });
    const schedules = async () => (await herald(s, ['schedules'])).map((x) => x.name);
    await ok(s, 'pg_create_event_trigger', createArgs(s, 'api_made', { delete: { columns: '*' }, enable_manual: true }));
    const before = await ok(s, 'export_metadata', {});
    assert.deepEqual(exportedNames(before), ['api_made', 'yaml_items', 'orders']);
    assert.deepEqual(before.herald.event_triggers[0].events, ['order.*']);
    const stBefore = (await herald(s, ['status'])).map((r) => r.trigger).sort();
    await fails(s, { type: 'pg_create_event_trigger', args: { ...createArgs(s, 'nightly'), replace: true } }, 400,
      'already-exists', '$.args.name', /a schedule \(cron trigger\) is named "nightly"/);
    await fails(s, { type: 'pg_delete_event_trigger', args: { name: 'nightly' } }, 400, 'not-exists', '$.args.name');
    await fails(s, { type: 'pg_get_event_logs', args: { name: 'nightly' } }, 400, 'not-exists', '$.args.name');

    // Without herald's extension the custom-event triggers stay; the table triggers go.
    assert.deepEqual(await ok(s, 'replace_metadata', { version: 3, sources: [] }), SUCCESS);
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})), ['orders']);
    // With it, everything goes.
    await ok(s, 'replace_metadata', { version: 3, sources: [], herald: { event_triggers: [] } });
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})), []);
    assert.deepEqual((await herald(s, ['status'])).map((r) => r.trigger), ['nightly']);
    assert.deepEqual(await schedules(), ['nightly']);
    // A document naming an event trigger like the schedule is refused.
    await fails(s, { type: 'replace_metadata', args: { sources: [{ name: 'default', tables: [{ table: 'items', event_triggers: [
      { name: 'nightly', definition: { insert: { columns: '*' } }, webhook: 'http://h' }] }] }] } },
    400, 'already-exists', '$.args', /schedule/);

    // Back from the export, in Hasura's newer form {"metadata": …}.
    await ok(s, 'replace_metadata', { allow_inconsistent_metadata: false, metadata: before });
    assert.deepEqual(await ok(s, 'export_metadata', {}), before);
    assert.deepEqual((await herald(s, ['status'])).map((r) => r.trigger).sort(), stBefore);
    // Again: no change at all.
    await ok(s, 'replace_metadata', before);
    assert.deepEqual(await ok(s, 'export_metadata', {}), before);
    await ok(s, 'bulk', [{ type: 'replace_metadata', args: before }, { type: 'pg_delete_event_trigger', args: { name: 'api_made' } },
      { type: 'pg_create_event_trigger', args: createArgs(s, 'api_made', { delete: { columns: '*' }, enable_manual: true }) }]);
    assert.deepEqual(await ok(s, 'export_metadata', {}), before);
    assert.deepEqual(await schedules(), ['nightly']);
    // export_metadata with "version": 2.
    const v2 = await post(s.herald, { type: 'export_metadata', version: 2, args: {} });
    assert.equal(v2.status, 200);
    assert.deepEqual(v2.json.metadata, before);

    // The restored triggers deliver.
    await insert(s, 1);
    await s.receiver.waitFor((reqs) => to(s, '/api_made').length === 1 && to(s, '/yaml_items').length === 1);
    assert.deepEqual(to(s, '/yaml_items')[0].json.event.data.new, { id: 1, v: 'x' });

    // A bad document changes nothing.
    const broken = structuredClone(before);
    broken.sources[0].tables[0].event_triggers[0].retry_conf.num_retries = 'three';
    await fails(s, { type: 'replace_metadata', args: broken }, 400, 'parse-failed',
      '$.args.sources[0].tables[0].event_triggers[0].retry_conf.num_retries');
    broken.sources[0].tables[0].event_triggers[0].retry_conf.num_retries = 1;
    broken.sources[0].tables[0].table.name = 'nope';
    await fails(s, { type: 'replace_metadata', args: { metadata: broken } }, 400, 'validation-failed', '$.args.metadata', /nope/);
    assert.deepEqual(await ok(s, 'export_metadata', {}), before);
    await stopClean(s);
  });

  forBackends('bulk: results in order; a failing item applies none of the trigger changes', async (t, backend) => {
    const s = await itemsStack(backend);
    await ok(s, 'pg_create_event_trigger', createArgs(s, 'keep'));
    const create = (name, more) => ({ type: 'pg_create_event_trigger', args: createArgs(s, name, more) });

    // The third item names a table that does not exist: the first two are not applied either.
    await fails(s, {
      type: 'bulk',
      args: [create('one'), { type: 'pg_delete_event_trigger', args: { name: 'keep' } },
        create('two', { table: { schema: 'public', name: 'nope' } })],
    }, 400, 'validation-failed', '$.args[2].args', /nope/);
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})), ['keep']);
    // A parse error names the item's path.
    await fails(s, { type: 'bulk', args: [create('one'), create('two', { retry_conf: { num_retries: [] } })] },
      400, 'parse-failed', '$.args[1].args.retry_conf.num_retries');
    await fails(s, { type: 'bulk', args: [create('one'), create('one')] }, 400, 'already-exists', '$.args[1].args.name');
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})), ['keep']);

    // Success: every answer, in order; the export inside sees the staged changes; the invoke
    // acts on the trigger created before it.
    const res = await ok(s, 'bulk', [
      create('one', { enable_manual: true }),
      { type: 'pg_delete_event_trigger', args: { name: 'keep' } },
      { type: 'export_metadata', args: {} },
      { type: 'pg_invoke_event_trigger', args: { name: 'one', payload: { n: 1 } } },
      { type: 'bulk', args: [create('two')] },
    ]);
    assert.equal(res.length, 5);
    assert.deepEqual(res[0], SUCCESS);
    assert.deepEqual(res[1], SUCCESS);
    assert.deepEqual(exportedNames(res[2]), ['one']);
    assert.match(res[3].event_id, UUID_RE);
    assert.deepEqual(res[4], [SUCCESS]);
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})).sort(), ['one', 'two']);
    await s.receiver.waitFor((reqs) => s.receiver.byEventId(res[3].event_id).length === 1);
    assert.deepEqual(await ok(s, 'bulk', []), []);
    await stopClean(s);
  });
});

describe('bad requests', () => {
  const backend = BACKENDS[0];
  e2eTest(`${backend}: each bad body gets its code and path; herald keeps serving`, async () => {
    const s = await itemsStack(backend);
    const create = (more) => ({ type: 'pg_create_event_trigger', args: { ...createArgs(s, 'b'), ...more } });
    const cases = [
      ['{"type": "export_metadata", "args": {}', 400, 'invalid-json', '$', /^invalid JSON: /],
      ['', 400, 'invalid-json', '$'],
      ['{"type": "export_metadata", "type": "bulk", "args": {}}', 400, 'invalid-json', '$', /duplicate/],
      ['[]', 400, 'parse-failed', '$', /expected an object/],
      [{ args: {} }, 400, 'parse-failed', '$', /^key "type" not found$/],
      [{ type: 7, args: {} }, 400, 'parse-failed', '$.type', /expected a string/],
      [{ type: 'pg_create_cron_trigger', args: {} }, 400, 'parse-failed', '$.type', /unknown metadata type "pg_create_cron_trigger"/],
      [{ type: 'pg_create_event_trigger' }, 400, 'parse-failed', '$', /^key "args" not found$/],
      [{ type: 'export_metadata', args: {}, extra: 1 }, 400, 'parse-failed', '$.extra', /unknown field "extra"/],
      [{ type: 'export_metadata', args: { verbose: true } }, 400, 'parse-failed', '$.args.verbose'],
      [{ type: 'pg_create_event_trigger', args: 'x' }, 400, 'parse-failed', '$.args', /expected an object/],
      [create({ retry_conf: { num_retries: '3' } }), 400, 'parse-failed', '$.args.retry_conf.num_retries', /expected an integer, got a string/],
      [create({ retry_conf: { num_retries: 3, interval: 10 } }), 400, 'parse-failed', '$.args.retry_conf.interval', /unknown field "interval"/],
      [create({ colour: 'red' }), 400, 'parse-failed', '$.args.colour', /unknown field "colour"/],
      [create({ insert: { columns: '*', payload: 7 } }), 400, 'parse-failed', '$.args.insert.payload'],
      [create({ headers: [{ name: 'X', valu: 'y' }] }), 400, 'parse-failed', '$.args.headers[0].valu'],
      [create({ name: 'send-email' }), 400, 'validation-failed', '$.args.name', /no '-'.*"send_email"/],
      [create({ name: 'x'.repeat(65) }), 400, 'parse-failed', '$.args.name'],
      [create({ webhook: 'ftp://x' }), 400, 'validation-failed', '$.args.webhook'],
      [create({ insert: undefined }), 400, 'parse-failed', '$.args', /at least one of insert/],
      [create({ insert: { columns: '*', payload: ['v'] }, update: { columns: '*' } }), 400, 'validation-failed', '$.args.update.payload'],
      [create({ source: 'other' }), 400, 'not-exists', '$.args.source'],
      [create({ request_transform: { url: 'x' } }), 400, 'not-supported', '$.args.request_transform'],
      [{ type: 'pg_delete_event_trigger', args: { name: 1 } }, 400, 'parse-failed', '$.args.name'],
      [{ type: 'pg_redeliver_event', args: {} }, 400, 'parse-failed', '$.args', /key "event_id" not found/],
      [{ type: 'replace_metadata', args: { version: 3, sources: [], cron_triggers: [{ name: 'c' }] } }, 400, 'parse-failed', '$.args.cron_triggers[0]'],
      [{ type: 'bulk', args: {} }, 400, 'parse-failed', '$.args', /expected an array/],
      [{ type: 'bulk', args: Array.from({ length: 1001 }, () => ({ type: 'export_metadata', args: {} })) }, 400, 'validation-failed', '$.args'],
      [{ type: 'bulk', args: [{ type: 'bulk', args: [{ type: 'bulk', args: [{ type: 'bulk', args: [{ type: 'bulk', args: [] }] }] }] }] }, 400,
        'validation-failed', '$.args[0].args[0].args[0].args[0].args', /nest at most/],
      ['['.repeat(100000), 400, 'invalid-json', '$'],
    ];
    for (const [body, status, code, path, re] of cases) await fails(s, body, status, code, path, re);

    // Not POST: 405; too big: 413.
    const get = await fetch(s.herald.url('/v1/metadata'));
    assert.equal(get.status, 405);
    const big = await post(s.herald, { type: 'export_metadata', args: {}, pad: 'x'.repeat(2 * 1024 * 1024) });
    assert.equal(big.status, 413);
    // Still serving, nothing made.
    assert.deepEqual(exportedNames(await ok(s, 'export_metadata', {})), []);
    assert.equal(s.herald.running, true);
    await stopClean(s);
  });

  forBackends('admin secret: missing or wrong → 401 access-denied; x-herald-admin-secret or x-hasura-admin-secret', async (t, backend) => {
    const s = await itemsStack(backend, () => [], { env: { HERALD_ADMIN_SECRET: 'e2e-s3cret' } });
    const body = { type: 'export_metadata', args: {} };
    let r = await post(s.herald, body);
    assert.equal(r.status, 401);
    assert.equal(r.json.code, 'access-denied');
    assert.equal(r.json.path, '$');
    assert.match(r.json.error, /required, but not found/);
    r = await post(s.herald, body, { 'x-herald-admin-secret': 'e2e-s3cre' });
    assert.equal(r.status, 401);
    assert.equal(r.json.code, 'access-denied');
    assert.match(r.json.error, /invalid admin secret/);
    r = await post(s.herald, body, { 'x-hasura-admin-secret': 'e2e-s3cret-' });
    assert.equal(r.status, 401);
    // A request refused for the secret changes nothing, even when it would be valid.
    r = await post(s.herald, { type: 'pg_create_event_trigger', args: createArgs(s, 'nope') });
    assert.equal(r.status, 401);
    r = await post(s.herald, body, { 'x-herald-admin-secret': 'e2e-s3cret' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(exportedNames(r.json), []);
    r = await post(s.herald, body, { 'x-hasura-admin-secret': 'e2e-s3cret' });
    assert.equal(r.status, 200, r.text);
  });
});
