// The command line: version, help, exit codes, `check` with config errors that name file, line
// and key, and `apply` (what it prints, idempotence, removal, refusing unknown tables/columns
// without installing anything). apply and serve run on PostgreSQL and on SQLite.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { e2eTest, forBackends, freshDb, heraldTable, serveTracked, useCluster } from '../lib/fixture.js';
import { run, writeConfig } from '../lib/herald.js';
import { PGEXT } from '../lib/pg.js';

const cluster = useCluster();

const lines = (s) => s.split('\n').map((l) => l.trimEnd()).filter(Boolean);

describe('basic commands', () => {
  e2eTest('version prints herald <semver> and exits 0', async () => {
    const r = await run(['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^herald \d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?\n?$/);
  });

  e2eTest('--help prints usage and exits 0', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /usage/i);
    for (const cmd of ['serve', 'apply', 'check', 'version']) assert.match(r.stdout, new RegExp(`\\b${cmd}\\b`), `usage mentions ${cmd}`);
  });

  e2eTest('an unknown command exits 2 and says so on stderr', async () => {
    const r = await run(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /frobnicate/);
    assert.equal(r.stdout, '');
  });

  e2eTest('check of a missing file exits 2 and names the file', async () => {
    const r = await run(['check', '/nonexistent/herald-e2e.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\/nonexistent\/herald-e2e\.yaml/);
  });
});

const VALID = `# a complete configuration
database: postgres://postgres@127.0.0.1:5432/app
log_level: info
shutdown_grace: 10s
triggers:
  - name: order_events
    table: public.orders
    operations: [insert, update, delete]
    columns: [status]
    payload: [id, status]
    webhook: http://127.0.0.1:9000/orders
    headers: { X-Api-Key: "{{ORDERS_KEY}}" }
    retry: { max_retries: 5, interval: 2s, backoff: exponential, max_interval: 10m, timeout: 30s }
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    start: now
    concurrency: 64
  - name: custom
    events: [order.placed, "invoice.*"]
    webhook: "http://127.0.0.1:9000/{{HOOK_PATH}}"
    retry:
      max_retries: 0
      interval: 250ms
      backoff: fixed
      max_interval: 1h
      timeout: 5
    start: beginning
`;

describe('check', () => {
  e2eTest('a valid file: exit 0, stdout starts with ok: (positional and -c)', async () => {
    const file = writeConfig(VALID);
    for (const args of [['check', file], ['check', '-c', file]]) {
      const r = await run(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stdout.startsWith('ok:'), `stdout: ${JSON.stringify(r.stdout)}`);
    }
  });

  // Each bad config has exactly one problem. `line` is 1-based; `keys` lists acceptable key
  // paths (one unless the problem can fairly be reported at more than one place); `mention` must
  // appear in the line (the offending value or key).
  const HEAD = [
    'database: postgres://postgres@127.0.0.1:5432/app', // 1
    'log_level: info', // 2
    'triggers:', // 3
    '  - name: order_events', // 4
    '    table: public.orders', // 5
    '    operations: [insert, update]', // 6
    '    webhook: http://127.0.0.1:9000/orders', // 7
  ];
  const cfg = (...ls) => ls.join('\n') + '\n';
  const CASES = [
    {
      name: 'unknown key in a trigger',
      text: cfg(...HEAD, '    colour: red'),
      line: [8], keys: ['triggers[0].colour'], mention: 'colour',
    },
    {
      name: 'unknown top-level key',
      text: cfg(HEAD[0], 'listen_adress: 127.0.0.1:8080', ...HEAD.slice(2)),
      line: [2], keys: ['listen_adress'], mention: 'listen_adress',
    },
    {
      name: 'bad duration',
      text: cfg(...HEAD, '    retry:', '      interval: 2 parsecs'),
      line: [9], keys: ['triggers[0].retry.interval'], mention: '2 parsecs',
    },
    {
      name: 'bad top-level duration',
      text: cfg(HEAD[0], HEAD[1], 'shutdown_grace: soon', ...HEAD.slice(2)),
      line: [3], keys: ['shutdown_grace'], mention: 'soon',
    },
    {
      name: 'duplicate trigger name',
      text: cfg(...HEAD, '  - name: order_events', '    events: [order.placed]', '    webhook: http://127.0.0.1:9000/x'),
      line: [8], keys: ['triggers[1].name'], mention: 'order_events',
    },
    {
      name: 'missing webhook',
      text: cfg(...HEAD.slice(0, 6), '    start: now'),
      line: [4], keys: ['triggers[0]', 'triggers[0].webhook'], mention: 'webhook',
    },
    {
      name: 'table and events both',
      text: cfg(...HEAD, '    events: [order.placed]'),
      line: [4, 5, 8], keys: ['triggers[0]', 'triggers[0].table', 'triggers[0].events'], mention: 'events',
    },
    {
      name: 'bad operation',
      text: cfg(...HEAD.slice(0, 5), '    operations: [insert, upsert]', HEAD[6]),
      line: [6], keys: ['triggers[0].operations', 'triggers[0].operations[1]'], mention: 'upsert',
    },
    {
      name: 'bad backoff',
      text: cfg(...HEAD, '    retry:', '      backoff: linear'),
      line: [9], keys: ['triggers[0].retry.backoff'], mention: 'linear',
    },
    {
      name: 'bad trigger name characters',
      text: cfg(...HEAD.slice(0, 3), '  - name: "order events!"', ...HEAD.slice(4)),
      line: [4], keys: ['triggers[0].name'], mention: 'order events!',
    },
    {
      name: 'trigger name longer than 64',
      text: cfg(...HEAD.slice(0, 3), `  - name: ${'n'.repeat(65)}`, ...HEAD.slice(4)),
      line: [4], keys: ['triggers[0].name'], mention: 'n'.repeat(65),
    },
    {
      name: 'bad start',
      text: cfg(...HEAD, '    start: yesterday'),
      line: [8], keys: ['triggers[0].start'], mention: 'yesterday',
    },
    {
      name: 'bad log_level',
      text: cfg(HEAD[0], 'log_level: loud', ...HEAD.slice(2)),
      line: [2], keys: ['log_level'], mention: 'loud',
    },
    {
      name: 'negative max_retries',
      text: cfg(...HEAD, '    retry:', '      max_retries: -1'),
      line: [9], keys: ['triggers[0].retry.max_retries'], mention: '-1',
    },
  ];

  for (const c of CASES) {
    e2eTest(`config error: ${c.name} → exit 2, file:line: key: message`, async () => {
      const file = writeConfig(c.text);
      const r = await run(['check', file]);
      assert.equal(r.code, 2, `exit code; stdout=${r.stdout} stderr=${r.stderr}`);
      assert.ok(!r.stdout.startsWith('ok:'), 'stdout must not claim ok');
      const found = lines(r.stderr).map((l) => /^(.+?):(\d+): ([^\s:]+): (.+)$/.exec(l)).filter(Boolean);
      assert.ok(found.length > 0, `no "file:line: key: message" line in stderr:\n${r.stderr}`);
      const match = found.find((m) => m[1] === file && c.line.includes(Number(m[2])) && c.keys.includes(m[3]));
      assert.ok(match, `expected ${file}:${c.line.join('|')}: ${c.keys.join('|')}: … in stderr:\n${r.stderr}`);
      assert.ok(match[0].includes(c.mention), `message should mention ${JSON.stringify(c.mention)}: ${match[0]}`);
    });
  }

  e2eTest('config error: YAML syntax error → exit 2, file:line: naming the line', async () => {
    const file = writeConfig(cfg(...HEAD.slice(0, 4), '    table: public.orders: oops', ...HEAD.slice(5)));
    const r = await run(['check', file]);
    assert.equal(r.code, 2, r.stderr);
    const ok = lines(r.stderr).some((l) => l.startsWith(`${file}:5: `));
    assert.ok(ok, `expected a line starting ${file}:5: in stderr:\n${r.stderr}`);
  });

  e2eTest('serve with an invalid config exits 2 with the same message', async () => {
    const file = writeConfig(cfg(...HEAD, '    retry:', '      backoff: linear'));
    const r = await run(['serve', '-c', file], { timeoutMs: 20000 });
    assert.equal(r.code, 2);
    assert.ok(lines(r.stderr).some((l) => l.startsWith(`${file}:9: triggers[0].retry.backoff: `)), r.stderr);
  });
});

const TABLES = `
  CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, note text, total numeric(10,2));
  CREATE TABLE customers (id int PRIMARY KEY, name text);
`;

/** Everything apply may create, with oids, so that a re-creation counts as a change. On SQLite:
 * herald's objects as sqlite_master keeps them and the schema cookie, which every CREATE and DROP
 * (even of an identical object) increments. */
async function snapshot(db) {
  if (db.backend === 'sqlite') {
    const objects = await db.query(
      "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name LIKE 'herald%' ORDER BY type, name");
    const cookie = await db.query('PRAGMA schema_version');
    const defs = await db.query('SELECT name, definition FROM herald_triggers ORDER BY name');
    return {
      schemaVersion: cookie.rows[0].schema_version,
      objects: objects.rows,
      triggers: objects.rows.filter((o) => o.type === 'trigger' && o.name.startsWith('herald_capture_'))
        .map((o) => ({ ...o, rel: o.tbl_name })),
      definitions: defs.rows.map((d) => ({ name: d.name, definition: JSON.parse(d.definition) })),
    };
  }
  const trig = await db.query(`
    SELECT t.oid::bigint AS oid, t.tgrelid::regclass::text AS rel, t.tgname, t.tgfoid::regprocedure::text AS fn,
           t.tgtype, t.tgenabled
      FROM pg_trigger t WHERE NOT t.tgisinternal ORDER BY rel, t.tgname`);
  const defs = await db.query('SELECT name, definition FROM herald.triggers ORDER BY name');
  const procs = await db.query(`
    SELECT p.oid::bigint AS oid, p.oid::regprocedure::text AS sig, md5(p.prosrc) AS src
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'herald' ORDER BY sig`);
  const rels = await db.query(`
    SELECT c.oid::bigint AS oid, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'herald' ORDER BY c.relname`);
  return { triggers: trig.rows, definitions: defs.rows, functions: procs.rows, relations: rels.rows };
}

async function nothingInstalled(db) {
  if (db.backend === 'sqlite') {
    const { rows } = await db.query("SELECT type, name FROM sqlite_master WHERE name LIKE 'herald%' OR type = 'trigger'");
    assert.deepEqual(rows, [], 'no herald table, view or trigger may exist');
    return;
  }
  const ns = await db.query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'herald'");
  assert.equal(ns.rows[0].n, 0, 'schema herald must not exist');
  const tg = await db.query('SELECT tgrelid::regclass::text AS rel, tgname FROM pg_trigger WHERE NOT tgisinternal');
  assert.deepEqual(tg.rows, [], 'no trigger may be installed on any table');
  const fn = await db.query("SELECT proname FROM pg_proc WHERE proname ILIKE '%herald%'");
  assert.deepEqual(fn.rows, [], 'no herald function may be installed');
}

function trig(name, table, extra = {}) {
  return { name, table, operations: ['insert', 'update', 'delete'], webhook: 'http://127.0.0.1:9/hook', ...extra };
}

describe('apply', () => {
  forBackends('installs, is idempotent, updates and removes triggers', async (t, backend) => {
    const { url, db } = await freshDb(cluster, TABLES, backend);
    const triggers = [
      trig('order_events', 'public.orders'),
      trig('order_status', 'public.orders', { operations: ['update'], columns: ['status'] }),
      trig('customer_events', 'public.customers'),
    ];
    const file = writeConfig({ database: url, triggers });

    const first = await run(['apply', file]);
    assert.equal(first.code, 0, first.stderr);
    const out = lines(first.stdout);
    // A capture line may go on with details (e.g. the operations captured): match its start.
    const has = (expected) => out.filter((l) => l === expected || l.startsWith(`${expected} `)).length;
    for (const expected of [
      // PostgreSQL's schema 3 is the leaner capture (json row images, the session as text).
      `schema: installed version ${backend === 'postgres' ? 4 : 2}`,
      'capture: installed on public.orders',
      'capture: installed on public.customers',
      'trigger order_events: created',
      'trigger order_status: created',
      'trigger customer_events: created',
      // PostgreSQL: the capture mode chosen (key capture, auto: native when the server loads it).
      ...(backend === 'postgres' ? [PGEXT ? 'capture: native' : 'capture: plpgsql'] : []),
    ]) assert.ok(has(expected) > 0, `apply output lacks "${expected}":\n${first.stdout}`);
    assert.equal(has('capture: installed on public.orders'), 1,
      'capture is installed once per table, whatever the number of triggers');
    assert.equal(out.length, backend === 'postgres' ? 7 : 6, `one line per change:\n${first.stdout}`);

    const before = await snapshot(db);
    assert.deepEqual(before.definitions.map((d) => d.name), ['customer_events', 'order_events', 'order_status']);
    assert.ok(before.triggers.some((t) => t.rel === 'orders'), 'a capture trigger on orders');
    assert.ok(before.triggers.some((t) => t.rel === 'customers'), 'a capture trigger on customers');

    const second = await run(['apply', '-c', file]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim(), 'no changes');
    assert.deepEqual(await snapshot(db), before, 'a second apply must not touch any herald object');

    // Change one trigger, drop another.
    const file2 = writeConfig({
      database: url,
      triggers: [triggers[0], { ...triggers[1], webhook: 'http://127.0.0.1:9/other' }],
    });
    const third = await run(['apply', file2]);
    assert.equal(third.code, 0, third.stderr);
    const out3 = lines(third.stdout);
    assert.ok(out3.includes('trigger order_status: updated'), third.stdout);
    assert.ok(out3.includes('trigger customer_events: removed'), third.stdout);
    assert.ok(!out3.some((l) => l.startsWith('trigger order_events:')), `order_events did not change:\n${third.stdout}`);
    const after = await snapshot(db);
    assert.deepEqual(after.definitions.map((d) => d.name), ['order_events', 'order_status']);
    assert.notDeepEqual(after.definitions.find((d) => d.name === 'order_status').definition,
      before.definitions.find((d) => d.name === 'order_status').definition);
    assert.deepEqual(after.definitions.find((d) => d.name === 'order_events'),
      before.definitions.find((d) => d.name === 'order_events'));

    const fourth = await run(['apply', file2]);
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.equal(fourth.stdout.trim(), 'no changes');
    assert.deepEqual(await snapshot(db), after);
  });

  forBackends('HERALD_DATABASE_URL overrides database', async (t, backend) => {
    const { url, db } = await freshDb(cluster, TABLES, backend);
    const nowhere = backend === 'sqlite' ? 'sqlite:/nonexistent/herald-e2e.db' : 'postgres://postgres@127.0.0.1:1/nowhere';
    const file = writeConfig({ database: nowhere, triggers: [trig('o', 'public.orders')] });
    const r = await run(['apply', file], { env: { HERALD_DATABASE_URL: url } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lines(r.stdout).includes('trigger o: created'), r.stdout);
    const { rows } = await db.query(`SELECT name FROM ${heraldTable(db, 'triggers')}`);
    assert.deepEqual(rows, [{ name: 'o' }]);
  });

  forBackends('unknown table: exit 2, names it, installs nothing', async (t, backend) => {
    const { url, db } = await freshDb(cluster, TABLES, backend);
    const file = writeConfig({ database: url, triggers: [trig('good', 'public.orders'), trig('bad', 'public.nope')] });
    const r = await run(['apply', file]);
    assert.equal(r.code, 2, `stdout=${r.stdout} stderr=${r.stderr}`);
    assert.match(r.stderr, /nope/);
    await nothingInstalled(db);
  });

  forBackends('unknown column in columns: exit 2, names it, installs nothing', async (t, backend) => {
    const { url, db } = await freshDb(cluster, TABLES, backend);
    const file = writeConfig({ database: url, triggers: [trig('o', 'public.orders', { columns: ['statuz'] })] });
    const r = await run(['apply', file]);
    assert.equal(r.code, 2, `stdout=${r.stdout} stderr=${r.stderr}`);
    assert.match(r.stderr, /statuz/);
    await nothingInstalled(db);
  });

  forBackends('unknown column in payload: exit 2, names it, installs nothing', async (t, backend) => {
    const { url, db } = await freshDb(cluster, TABLES, backend);
    const file = writeConfig({ database: url, triggers: [trig('o', 'public.orders', { payload: ['id', 'amount'] })] });
    const r = await run(['apply', file]);
    assert.equal(r.code, 2, `stdout=${r.stdout} stderr=${r.stderr}`);
    assert.match(r.stderr, /amount/);
    await nothingInstalled(db);
  });

  forBackends('a failing apply leaves an existing installation untouched', async (t, backend) => {
    const { url, db } = await freshDb(cluster, TABLES, backend);
    const good = writeConfig({ database: url, triggers: [trig('order_events', 'public.orders')] });
    const r1 = await run(['apply', good]);
    assert.equal(r1.code, 0, r1.stderr);
    const before = await snapshot(db);
    // Applied, this file would remove order_events: it must fail as a whole instead.
    const bad = writeConfig({ database: url, triggers: [trig('customer_events', 'public.customers'), trig('x', 'public.missing_table')] });
    const r2 = await run(['apply', bad]);
    assert.equal(r2.code, 2, `stdout=${r2.stdout} stderr=${r2.stderr}`);
    assert.match(r2.stderr, /missing_table/);
    assert.deepEqual(await snapshot(db), before);
  });
});

describe('serve', () => {
  forBackends('logs msg=ready, exits 0 on SIGINT and on SIGTERM', async (t, backend) => {
    const { url } = await freshDb(cluster, TABLES, backend);
    const file = writeConfig({ database: url, triggers: [trig('o', 'public.orders')] });
    const r = await run(['apply', file]);
    assert.equal(r.code, 0, r.stderr);
    for (const sig of ['SIGINT', 'SIGTERM']) {
      const h = await serveTracked(file);
      assert.match(h.stderr, /msg=ready/);
      assert.equal(await h.stop(sig), 0, `exit code after ${sig}:\n${h.tail()}`);
    }
  });
});
