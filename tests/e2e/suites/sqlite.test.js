// What only SQLite has: herald's tables in the application's own file, other processes writing
// it while herald runs, one herald per file, triggers generated from the table's columns (and
// regenerated when they change), the herald_emit view, sqlite:PATH resolution and the embedded
// default, and an idle herald that costs nothing. The backend-independent cases (payloads,
// rollback, retries, kill -9, …) run on SQLite in the other suites.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BACKENDS, e2eTest, freshDb, logRows, receiverTracked, serveTracked, sqliteDirectory, stack, useCluster,
  waitSettled,
} from '../lib/fixture.js';
import { HERALD_BIN, run, serve, writeConfig } from '../lib/herald.js';
import { freePort } from '../lib/pg.js';
import { sqliteDb, startWriter } from '../lib/sqlite.js';
import { waitUntil } from '../lib/util.js';

const cluster = useCluster();
const backend = 'sqlite';
const sqliteTest = BACKENDS.includes('sqlite') ? e2eTest : () => {};

const ITEMS = 'CREATE TABLE items (id INTEGER PRIMARY KEY, k int UNIQUE NOT NULL, note text)';
const kOf = (q) => q.json?.event?.data?.new?.k;
const distinctK = (reqs) => new Set(reqs.map(kOf).filter((k) => k !== undefined));

function itemsStack(extra = {}) {
  return stack(cluster, {
    backend,
    sql: ITEMS,
    triggers: (r) => [{
      name: 'items', table: 'items', operations: ['insert'], webhook: r.url('/items'), start: 'beginning',
      retry: { max_retries: 20, interval: '100ms', max_interval: '1s' },
    }],
    ...extra,
  });
}

/** CPU time (user + system, in clock ticks of 10 ms) a process has used so far. */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

sqliteTest('sqlite: application processes write while herald runs: every event delivered, no SQLITE_BUSY', async (t) => {
  const s = await itemsStack();
  const N = 3000;
  // Three application processes: two write one row per transaction, one writes ten-row
  // transactions; all at full speed while herald reads, delivers and settles.
  const writers = [startWriter(s.db.file), startWriter(s.db.file), startWriter(s.db.file)];
  let k = 0;
  while (k < N) {
    const w = k % 3;
    if (w < 2) {
      k++;
      await writers[w].write(`INSERT INTO items (k) VALUES (${k});`);
    } else {
      const rows = [];
      for (let i = 0; i < 10 && k < N; i++) rows.push(`INSERT INTO items (k) VALUES (${++k});`);
      await writers[w].write(`BEGIN; ${rows.join(' ')} COMMIT;`);
    }
  }
  const results = await Promise.all(writers.map((w) => w.end()));
  for (const r of results) {
    assert.equal(r.stderr, '', 'an application process saw an error (SQLITE_BUSY?)');
    assert.equal(r.code, 0);
  }
  await s.receiver.waitFor((reqs) => distinctK(reqs).size >= N, 120000, `${N} rows delivered`);
  const seen = distinctK(s.receiver.requests);
  for (let i = 1; i <= N; i++) assert.ok(seen.has(i), `row ${i} delivered`);
  t.diagnostic(`${s.receiver.requests.length} requests for ${N} rows`);
  assert.equal(s.receiver.requests.length, N, 'no redelivery without a failure');
  assert.doesNotMatch(s.herald.stderr, /level=(warn|error)/, 'herald logged no warning');
});

sqliteTest('sqlite: a failed statement and a rolled-back transaction of another process leave no event', async () => {
  const s = await itemsStack();
  const w = startWriter(s.db.file);
  await w.write('INSERT INTO items (k) VALUES (1);');
  await w.write('INSERT INTO items (k) VALUES (2), (3), (1);'); // fails on the last row: no row of it stays
  await w.write('BEGIN; INSERT INTO items (k) VALUES (4); UPDATE items SET note = \'x\'; ROLLBACK;');
  await w.write('INSERT INTO items (k) VALUES (5);');
  const { stderr } = await w.end();
  assert.match(stderr, /UNIQUE constraint failed/);
  await s.receiver.waitFor((reqs) => distinctK(reqs).has(5));
  const log = await logRows(s.db, 'public.items');
  assert.deepEqual(log.map((l) => l.new.k), [1, 5], 'only committed rows are in herald_log');
  for (const l of log) await waitSettled(s.db, l.id);
  assert.deepEqual(s.receiver.requests.map(kOf).sort(), [1, 5]);
});

sqliteTest('sqlite: awkward names (spaces, quotes, mixed case); a changed table gets new capture on apply', async () => {
  const table = 'Order "Items" 2024';
  const s = await stack(cluster, {
    backend,
    sql: `CREATE TABLE "Order ""Items"" 2024" ("Item Name" text, "it's" int, MixedCase text, "Data" JSON);
          CREATE TABLE CamelCase (Id INTEGER PRIMARY KEY, Value TEXT);`,
    triggers: (r) => [
      {
        name: 'awkward', table: '"Order ""Items"" 2024"', operations: ['insert', 'update'], columns: ['Item Name'],
        webhook: r.url('/awkward'), start: 'beginning',
      },
      // Unquoted names fold to lower case; SQLite finds camelcase as CamelCase.
      { name: 'camel', table: 'camelcase', operations: ['insert'], webhook: r.url('/camel'), start: 'beginning' },
    ],
  });
  assert.match(s.applied.stdout, /capture: installed on "public"\."Order ""Items"" 2024" \(insert, update\)/);
  await s.db.query(`INSERT INTO "Order ""Items"" 2024" VALUES ('a b', 1, 'Mc', '{"deep":[1,{"x":null}]}')`);
  await s.db.query(`UPDATE "Order ""Items"" 2024" SET "it's" = 2`); // not a listed column: no event
  await s.db.query(`UPDATE "Order ""Items"" 2024" SET "Item Name" = 'c d'`);
  await s.db.query("INSERT INTO CamelCase (Value) VALUES ('v')");
  await s.receiver.waitFor(3);
  const awkward = s.receiver.requests.filter((q) => q.url === '/awkward').map((q) => q.json);
  assert.deepEqual(awkward.map((b) => b.table), [{ schema: 'public', name: table }, { schema: 'public', name: table }]);
  assert.deepEqual(awkward[0].event.data.new, { 'Item Name': 'a b', "it's": 1, MixedCase: 'Mc', Data: { deep: [1, { x: null }] } });
  assert.equal(awkward[1].event.op, 'UPDATE');
  assert.deepEqual([awkward[1].event.data.old['Item Name'], awkward[1].event.data.new['Item Name']], ['a b', 'c d']);
  const camel = s.receiver.requests.find((q) => q.url === '/camel').json;
  assert.deepEqual(camel.table, { schema: 'public', name: 'camelcase' });
  assert.deepEqual(camel.event.data.new, { Id: 1, Value: 'v' });

  // A new column: capture still writes the old columns until apply regenerates it.
  await s.db.exec(`ALTER TABLE "Order ""Items"" 2024" ADD COLUMN "new ""col""" int DEFAULT 7`);
  const again = await run(['apply', s.file]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /capture: changed on "public"\."Order ""Items"" 2024" \(insert, update\)/);
  assert.equal((await run(['apply', s.file])).stdout.trim(), 'no changes');
  await s.db.query(`INSERT INTO "Order ""Items"" 2024" ("Item Name") VALUES ('e')`);
  await s.receiver.waitFor(4);
  const last = s.receiver.requests[3].json;
  assert.deepEqual(last.event.data.new, { 'Item Name': 'e', "it's": null, MixedCase: null, Data: null, 'new "col"': 7 });
});

sqliteTest('sqlite: BLOBs arrive as hex, JSON columns as JSON, nothing the application stores breaks capture', async () => {
  const s = await stack(cluster, {
    backend,
    sql: 'CREATE TABLE things (id INTEGER PRIMARY KEY, b BLOB, j JSON, anything)',
    triggers: (r) => [{ name: 'things', table: 'things', operations: ['insert'], webhook: r.url('/t'), start: 'beginning' }],
  });
  await s.db.exec(`INSERT INTO things VALUES (1, X'00FF', '[1,2]', 'text');
                   INSERT INTO things VALUES (2, NULL, 'not json', X'01');
                   INSERT INTO things VALUES (3, 'b as text', X'02', 2.5)`);
  await s.receiver.waitFor(3);
  const rows = s.receiver.requests.map((q) => q.json.event.data.new).sort((a, b) => a.id - b.id);
  assert.deepEqual(rows, [
    { id: 1, b: '00FF', j: [1, 2], anything: 'text' },
    { id: 2, b: null, j: 'not json', anything: '01' },
    { id: 3, b: 'b as text', j: '02', anything: 2.5 },
  ]);
});

sqliteTest('sqlite: herald_emit is the outbox; an empty type or invalid JSON fails the statement', async () => {
  const s = await stack(cluster, {
    backend,
    sql: ITEMS,
    triggers: (r) => [{ name: 'custom', events: ['order.*'], webhook: r.url('/c'), start: 'beginning' }],
  });
  await s.db.exec(`BEGIN;
    INSERT INTO items (k) VALUES (1);
    INSERT INTO herald_emit (type, payload) VALUES ('order.placed', json_object('k', 1));
    COMMIT`);
  await assert.rejects(s.db.exec("INSERT INTO herald_emit (type, payload) VALUES ('', '{}')"), /type must not be empty/);
  await assert.rejects(s.db.exec("INSERT INTO herald_emit (type, payload) VALUES ('order.x', '{oops')"), /malformed JSON/);
  await s.receiver.waitFor(1);
  const body = s.receiver.requests[0].json;
  assert.deepEqual(body.event, {
    op: 'EMIT', type: 'order.placed', data: { old: null, new: { k: 1 } }, session_variables: null, trace_context: null,
  });
  const { rows } = await s.db.query("SELECT count(*) AS n FROM herald_log WHERE op = 'EMIT'");
  assert.equal(rows[0].n, 1);
});

sqliteTest('sqlite: a second serve on the same file is refused; it starts once the first stops', async () => {
  const s = await itemsStack();
  const second = await run(['serve', '-c', s.file], { timeoutMs: 20000 });
  assert.equal(second.code, 1, second.stderr);
  assert.match(second.stderr, /another herald serve is running on .*\.db/);
  // Another configuration file naming the same database is refused too.
  const other = writeConfig({ ...s.config, triggers: [] });
  const third = await run(['serve', '-c', other], { timeoutMs: 20000 });
  assert.equal(third.code, 1);
  assert.match(third.stderr, /another herald serve is running/);
  // apply and the operator commands still work beside the running serve.
  assert.equal((await run(['apply', s.file])).code, 0);
  assert.equal(await s.herald.stop('SIGTERM'), 0);
  const h = await serveTracked(s.file);
  await s.db.query('INSERT INTO items (k) VALUES (1)');
  await s.receiver.waitFor(1);
  assert.equal(await h.stop('SIGTERM'), 0);
});

sqliteTest('sqlite: no database configured: herald.db beside the config file, and says so', async () => {
  const dir = fs.mkdtempSync(path.join(sqliteDirectory(), 'default-'));
  const db = sqliteDb(path.join(dir, 'herald.db'));
  await db.exec(ITEMS);
  const receiver = await receiverTracked();
  const file = path.join(dir, 'herald.yaml');
  fs.writeFileSync(file, `triggers:
  - name: items
    table: items
    operations: [insert]
    webhook: ${receiver.url('/items')}
    start: beginning
`);
  // From another working directory: the database is found beside the file, not in the cwd.
  const applied = await run(['apply', file], { cwd: sqliteDirectory(), env: { HERALD_DATABASE_URL: '' } });
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stderr, new RegExp(`no database configured .*: using sqlite:${dir}/herald\\.db`));
  assert.ok(!fs.existsSync(path.join(sqliteDirectory(), 'herald.db')), 'nothing created in the cwd');
  const h = await serveTracked(file, { cwd: sqliteDirectory(), env: { HERALD_DATABASE_URL: '' } });
  assert.match(h.stderr, /no database configured: using the embedded default.*database=sqlite:\S+herald\.db/);
  await db.query('INSERT INTO items (k) VALUES (1)');
  await receiver.waitFor(1);
  assert.equal(await h.stop('SIGTERM'), 0);
});

sqliteTest('sqlite: sqlite:PATH is relative to the config file; HERALD_DATABASE_URL to the working directory', async () => {
  const dir = fs.mkdtempSync(path.join(sqliteDirectory(), 'rel-'));
  fs.mkdirSync(path.join(dir, 'conf', 'data'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'work'));
  const inConf = sqliteDb(path.join(dir, 'conf', 'data', 'app.db'));
  const inWork = sqliteDb(path.join(dir, 'work', 'env.db'));
  await inConf.exec(ITEMS);
  await inWork.exec(ITEMS);
  const file = path.join(dir, 'conf', 'herald.yaml');
  fs.writeFileSync(file, `database: sqlite:data/app.db
triggers:
  - name: items
    table: items
    operations: [insert]
    webhook: http://127.0.0.1:9/items
`);
  const a = await run(['apply', file], { cwd: path.join(dir, 'work'), env: { HERALD_DATABASE_URL: '' } });
  assert.equal(a.code, 0, a.stderr);
  assert.deepEqual((await inConf.query('SELECT name FROM herald_triggers')).rows, [{ name: 'items' }]);
  const b = await run(['apply', file], { cwd: path.join(dir, 'work'), env: { HERALD_DATABASE_URL: 'sqlite:env.db' } });
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual((await inWork.query('SELECT name FROM herald_triggers')).rows, [{ name: 'items' }]);
});

sqliteTest('sqlite: a schema newer than this herald is refused by apply and serve', async () => {
  const { url, db } = await freshDb(cluster, ITEMS, backend);
  const file = writeConfig({ database: url, triggers: [{ name: 'items', table: 'items', operations: ['insert'], webhook: 'http://127.0.0.1:9/' }] });
  assert.equal((await run(['apply', file])).code, 0);
  await db.exec("UPDATE herald_meta SET value = '99' WHERE key = 'schema_version'");
  const a = await run(['apply', file]);
  assert.equal(a.code, 1);
  assert.match(a.stderr, /schema version 99, newer than this herald/);
  await assert.rejects(serve(file, { readyTimeoutMs: 15000 }), /newer than this herald/);
});

sqliteTest('sqlite: an idle herald uses almost no CPU', async (t) => {
  const s = await itemsStack();
  await s.db.query('INSERT INTO items (k) VALUES (1)');
  await s.receiver.waitFor(1);
  await new Promise((r) => setTimeout(r, 500)); // the poll backs off to its idle period
  const before = cpuTicks(s.herald.pid);
  const started = Date.now();
  await new Promise((r) => setTimeout(r, 3000));
  const ticks = cpuTicks(s.herald.pid) - before;
  const share = (ticks * 10) / (Date.now() - started);
  t.diagnostic(`${ticks} ticks of CPU in ${Date.now() - started} ms idle (${(share * 100).toFixed(2)}%)`);
  assert.ok(share < 0.05, `idle herald used ${(share * 100).toFixed(1)}% of a CPU`);
  // And it still wakes up.
  await s.db.query('INSERT INTO items (k) VALUES (2)');
  await waitUntil(() => distinctK(s.receiver.requests).has(2), { message: 'the next row delivered' });
});

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Runs scripts/run-quickstart.sh (what `make run` runs) without a terminal, on a copy of the
 * example whose webhooks point at port. Output (stdout and stderr) accumulates in .out. */
function quickstart(dir, port) {
  const child = spawn('bash', [path.join(REPO, 'scripts/run-quickstart.sh')], {
    cwd: REPO,
    env: { ...process.env, CI: 'true', HERALD_BIN, QUICKSTART_DIR: dir, SINK_LISTEN: `127.0.0.1:${port}`, HERALD_LISTEN: '127.0.0.1:0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const q = { child, out: '' };
  child.stdout.on('data', (d) => (q.out += d));
  child.stderr.on('data', (d) => (q.out += d));
  q.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  q.waitFor = (re, message) => waitUntil(() => re.test(q.out), { timeoutMs: 30000, message: `${message}; output:\n${q.out}` });
  return q;
}

sqliteTest("sqlite: make run's command without a terminal: the banner's insert is delivered and printed; Ctrl-C stops everything; a second run lists the events", async () => {
  const dir = fs.mkdtempSync(path.join(sqliteDirectory(), 'quickstart-'));
  for (const f of ['herald.yaml', 'schema.sql']) fs.copyFileSync(path.join(REPO, 'examples/quickstart', f), path.join(dir, f));
  const port = await freePort();
  const yaml = path.join(dir, 'herald.yaml');
  fs.writeFileSync(yaml, fs.readFileSync(yaml, 'utf8').replaceAll('127.0.0.1:9000', `127.0.0.1:${port}`));

  const first = quickstart(dir, port);
  try {
    await first.waitFor(/Ctrl-C stops herald/, 'the first screen');
    // Type what the first screen says to type.
    const insert = first.out.split('\n').map((l) => l.trim()).find((l) => l.startsWith('sqlite3 ') && l.includes('INSERT INTO orders'));
    assert.ok(insert, `the first screen shows an INSERT to type:\n${first.out}`);
    const typed = spawnSync('bash', ['-c', insert], { cwd: REPO, encoding: 'utf8' });
    assert.equal(typed.status, 0, typed.stderr);
    await first.waitFor(/status=200 event=\S+ trigger=orders op=INSERT attempt=1/, 'the delivery printed by herald sink');
  } finally {
    first.child.kill('SIGINT'); // what Ctrl-C sends (the script's children run in their own groups)
  }
  assert.deepEqual(await first.exited, { code: 0, signal: null }, first.out);
  assert.match(first.out, /msg=stopped/, 'herald serve stopped cleanly');
  const lock = spawnSync('flock', ['-n', path.join(dir, 'herald.db-herald.lock'), 'true']);
  assert.equal(lock.status, 0, 'no herald serve is left holding the database');
  const id = /status=200 event=(\S+) trigger=orders/.exec(first.out)[1];

  const second = quickstart(dir, port);
  try {
    await second.waitFor(/Ctrl-C stops herald/, 'the first screen of the second run');
    assert.match(second.out, /Events of earlier runs/);
    assert.ok(second.out.includes(id), `the second run lists event ${id}:\n${second.out}`);
  } finally {
    second.child.kill('SIGTERM');
  }
  assert.equal((await second.exited).code, 0, second.out);
});

/** `herald ARGS -c FILE --json`, parsed; the exit code must be 0. */
async function heraldJson(file, args) {
  const r = await run([...args, '-c', file, '--json'], { env: { HERALD_DATABASE_URL: '' } });
  assert.equal(r.code, 0, `herald ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

sqliteTest('sqlite: operator commands (status, events, event, redeliver, replay, emit) on the SQLite backend', async () => {
  const s = await stack(cluster, {
    backend,
    sql: ITEMS,
    triggers: (r) => [
      { name: 'ok', table: 'items', operations: ['insert'], webhook: r.url('/ok'), start: 'beginning' },
      { name: 'bad', table: 'items', operations: ['insert'], webhook: r.url('/bad'), start: 'beginning', retry: { max_retries: 0 } },
      { name: 'custom', events: ['order.*'], webhook: r.url('/custom'), start: 'beginning' },
    ],
  });
  let failing = true;
  s.receiver.respond = (req) => (req.url === '/bad' && failing ? { status: 500, body: 'down' } : undefined);
  await s.db.query('INSERT INTO items (k) VALUES (1)');
  const [ev] = await logRows(s.db, 'public.items');
  await waitSettled(s.db, ev.id, { trigger: 'ok' });
  await waitUntil(async () => (await heraldJson(s.file, ['status'])).find((x) => x.trigger === 'bad').dead === 1,
    { message: 'the bad trigger reports one dead event' });

  const status = Object.fromEntries((await heraldJson(s.file, ['status'])).map((x) => [x.trigger, x]));
  assert.deepEqual({ ...status.ok, last_delivery_at: typeof status.ok.last_delivery_at },
    { trigger: 'ok', backlog: 0, delayed: 0, dead: 0, last_delivery_at: 'string', lag_seconds: null });
  assert.equal(status.bad.dead, 1);

  const dead = await heraldJson(s.file, ['events', '--trigger', 'bad', '--dead']);
  assert.deepEqual(dead.map((e) => [e.id, e.deliveries[0].state, e.deliveries[0].last_error]), [[ev.id, 'dead', 'HTTP status 500']]);
  assert.match(dead[0].created_at, /\.\d{6}Z$/);
  const one = await heraldJson(s.file, ['event', ev.id]);
  assert.deepEqual(one.data, { old: null, new: { id: 1, k: 1, note: null } });
  assert.deepEqual(one.deliveries.map((d) => [d.trigger, d.state, d.attempts]), [['bad', 'dead', 1], ['ok', 'delivered', 1]]);
  assert.deepEqual(one.attempts.map((a) => [a.trigger, a.status]).sort(), [['bad', 500], ['ok', 200]]);

  // A dead event comes back with current_retry 0 once the endpoint recovers.
  failing = false;
  assert.deepEqual(await heraldJson(s.file, ['redeliver', ev.id, '--trigger', 'bad']), { event_id: ev.id, queued: 1 });
  await s.receiver.waitFor((reqs) => reqs.filter((q) => q.url === '/bad').length === 2);
  const again = s.receiver.requests.filter((q) => q.url === '/bad')[1].json;
  assert.equal(again.id, ev.id);
  assert.equal(again.delivery_info.current_retry, 0);

  // Replay for one trigger only.
  assert.deepEqual(await heraldJson(s.file, ['replay', 'ok', '--from', '1']), { trigger: 'ok', queued: 1 });
  await s.receiver.waitFor((reqs) => reqs.filter((q) => q.url === '/ok').length === 2);

  // emit appends an EMIT event that an events trigger delivers.
  const emitted = await heraldJson(s.file, ['emit', 'order.placed', '{"n": 12345678901234567890123}']);
  await s.receiver.waitFor((reqs) => reqs.some((q) => q.url === '/custom'));
  assert.equal(s.receiver.requests.find((q) => q.url === '/custom').json.id, emitted.event_id);
  const e = await heraldJson(s.file, ['event', emitted.event_id]);
  assert.equal(e.op, 'EMIT');
  assert.equal(typeof e.data.new.n, 'number', 'an integer beyond 64 bits is a number in the report');
});
