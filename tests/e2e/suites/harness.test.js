// The harness itself, against PostgreSQL and Node alone (no herald): if these fail, every other
// suite's failures are about the test machinery, not herald.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { toYaml } from '../lib/herald.js';
import { startPg, withClient } from '../lib/pg.js';
import { startReceiver } from '../lib/receiver.js';

let cluster;
before(async () => {
  cluster = await startPg();
});
after(async () => {
  await cluster?.stop();
});

test('postgres: a throwaway cluster accepts connections, DDL and DML', async () => {
  assert.match(cluster.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
  const { rows } = await cluster.query('SELECT current_setting(\'server_version_num\')::int AS v, current_user AS u');
  assert.ok(rows[0].v >= 150000 && rows[0].v < 160000, `PostgreSQL 15 expected, got ${rows[0].v}`);
  assert.equal(rows[0].u, 'postgres');
  const url = await cluster.createDb('smoke');
  await withClient(url, async (c) => {
    await c.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    await c.query('INSERT INTO t VALUES (1, $1), (2, $2)', ['a', 'b']);
    const r = await c.query('SELECT count(*)::int AS n FROM t');
    assert.equal(r.rows[0].n, 2);
  });
});

test('postgres: restart keeps data and accepts connections again', async () => {
  const url = await cluster.createDb('smoke_restart');
  await withClient(url, (c) => c.query('CREATE TABLE t (id int); INSERT INTO t VALUES (7)'));
  const held = cluster.client('smoke_restart');
  await held.connect();
  await cluster.restart();
  // The connection held across the restart is gone; a new one works and sees the data.
  await assert.rejects(held.query('SELECT 1'));
  await withClient(url, async (c) => {
    const r = await c.query('SELECT id FROM t');
    assert.deepEqual(r.rows, [{ id: 7 }]);
  });
});

function post(url, body, agent) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('receiver: records requests, programmable responses, event-driven waitFor, keep-alive', async () => {
  const r = await startReceiver();
  try {
    r.respond = (req, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '1' }, body: 'busy' } : undefined);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const waiting = r.waitFor(2, 5000);
    const a = await post(r.url('/x'), '{"id":"e1"}', agent);
    const b = await post(r.url('/y?q=1'), 'not json', agent);
    await waiting;
    assert.equal(a.status, 503);
    assert.equal(a.headers['retry-after'], '1');
    assert.equal(a.text, 'busy');
    assert.equal(b.status, 200);
    assert.equal(b.text, '{"ok":true}');
    assert.equal(r.requests.length, 2);
    assert.equal(r.requests[0].url, '/x');
    assert.deepEqual(r.requests[0].json, { id: 'e1' });
    assert.equal(r.requests[1].json, null);
    assert.equal(r.requests[1].body, 'not json');
    assert.equal(r.byEventId('e1').length, 1);
    // Both requests travelled over one kept-alive connection.
    assert.equal(r.requests[1].remotePort, r.requests[0].remotePort);
    agent.destroy();
    await assert.rejects(r.waitFor(3, 100), /timed out/);
  } finally {
    await r.close();
  }
});

test('receiver: delayed and hanging responses are recorded as finished / aborted', async () => {
  const r = await startReceiver();
  try {
    r.respond = (req) => (req.url === '/hang' ? { hang: true } : { delayMs: 50 });
    const ok = post(r.url('/slow'), '{}');
    await r.waitFor((reqs) => reqs.some((q) => q.url === '/slow'), 5000);
    assert.equal(r.requests[0].finished, false);
    await ok;
    await r.waitFor((reqs) => reqs[0].finished, 5000);
    const ac = new AbortController();
    const hung = fetch(r.url('/hang'), { method: 'POST', body: '{}', signal: ac.signal }).catch((e) => e);
    await r.waitFor((reqs) => reqs.some((q) => q.url === '/hang'), 5000);
    ac.abort();
    await hung;
    await r.waitFor((reqs) => reqs.find((q) => q.url === '/hang').aborted, 5000);
  } finally {
    await r.close();
  }
});

test('yaml emitter: block style, quoting where YAML needs it', () => {
  const y = toYaml({
    database: 'postgres://postgres@127.0.0.1:5432/db',
    shutdown_grace: '10s',
    triggers: [
      { name: 'a', table: 'public.orders', operations: ['insert', 'update'], headers: { 'X-Key': '{{K}}' }, retry: { max_retries: 2, interval: '100ms' } },
      { name: 'b', events: ['order.placed', 'invoice.*'], webhook: 'http://x/y' },
    ],
  });
  assert.equal(y, [
    'database: "postgres://postgres@127.0.0.1:5432/db"',
    'shutdown_grace: 10s',
    'triggers:',
    '  - name: a',
    '    table: public.orders',
    '    operations: [insert, update]',
    '    headers:',
    '      X-Key: "{{K}}"',
    '    retry:',
    '      max_retries: 2',
    '      interval: 100ms',
    '  - name: b',
    '    events: [order.placed, "invoice.*"]',
    '    webhook: "http://x/y"',
    '',
  ].join('\n'));
});
