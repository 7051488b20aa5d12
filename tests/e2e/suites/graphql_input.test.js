// Bad input to the real /v1/graphql: malformed documents, deep nesting, huge documents, bad
// variables and random mutations of valid requests, over HTTP and over a graphql-transport-ws
// socket. Each gets a specific error (never a crash, never a hang), and herald keeps answering
// afterwards on the same connection. The engine's own answers are checked case by case against
// graphql-js in gql_engine.test.js; this suite checks that the server around it holds up.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import WebSocket from 'ws';
import { BACKENDS, e2eTest, stack, useCluster } from '../lib/fixture.js';
import { prng, waitUntil } from '../lib/util.js';

const cluster = useCluster();
const ANY = BACKENDS.includes('sqlite') ? 'sqlite' : 'postgres';

let s = null;
let base = null;

before(async () => {
  // Node 20 runs a file's top-level before hooks together: wait for useCluster's.
  if (ANY === 'postgres') await waitUntil(() => cluster.pg, { timeoutMs: 60000, message: 'the PostgreSQL cluster' });
  s = await stack(cluster, { backend: ANY, triggers: () => [] });
  base = s.herald.url('/v1/graphql');
});

after(async () => {
  if (s?.herald?.running) assert.equal(await s.herald.stop(), 0);
  await s?.receiver?.close();
  if (s?.db?.end) await s.db.end();
});

async function post(body) {
  const r = await fetch(base, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* asserted by the caller */
  }
  return { status: r.status, json, text };
}

/** herald still answers a plain query. */
async function alive() {
  const r = await post({ query: '{ triggers { name } }' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { data: { triggers: [] } });
  assert.ok(s.herald.running, 'herald is running');
}

function requestError(r, pattern) {
  assert.equal(r.status, 400, r.text);
  assert.ok(Array.isArray(r.json?.errors) && r.json.errors.length > 0, r.text);
  assert.equal(r.json.data, undefined, 'a request error carries no data');
  assert.match(r.json.errors[0].message, pattern, r.text);
}

e2eTest('graphql input: a malformed document is a 400 with the line and column', async () => {
  const r = await post({ query: '{\n  triggers {\n    name\n  \n' });
  requestError(r, /^Syntax Error: Expected Name, found <EOF>\./);
  assert.deepEqual(r.json.errors[0].locations, [{ line: 5, column: 1 }]);
  const r2 = await post({ query: '{ triggers { name } } }' });
  requestError(r2, /^Syntax Error: Unexpected "}"\./);
  assert.deepEqual(r2.json.errors[0].locations, [{ line: 1, column: 23 }]);
  const r3 = await post({ query: '{ nosuchfield }' });
  requestError(r3, /^Cannot query field "nosuchfield" on type "Query"\./);
  await alive();
});

e2eTest('graphql input: deep nesting of selections, lists and objects is refused, not recursed into', async () => {
  const n = 100000;
  for (const query of ['{'.repeat(n), `{ events(where: ${'{_and: ['.repeat(n)}`, `{ events(limit: ${'['.repeat(n)}1) { seq } }`]) {
    const r = await post({ query });
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.ok(r.json.errors.length > 0);
  }
  // Within the parser's limit but deeper than the executable depth cap (herald's own schema has
  // no cycle; introspection's ofType chain has).
  const deep = `{ __schema { types { fields { type { ${'ofType { '.repeat(30)} name ${'} '.repeat(30)} } } } } }`;
  const r = await post({ query: deep });
  requestError(r, /depth|nest/i);
  await alive();
});

e2eTest('graphql input: a huge document and a huge body are refused with the cap named', async () => {
  const big = '{ ' + Array.from({ length: 9000 }, (_, i) => `a${i}: triggers { name }`).join(' ') + ' }';
  assert.ok(big.length > 64 * 1024);
  const r = await post({ query: big });
  requestError(r, /document|size|too (large|big|long)|limit/i);
  // Over the server's 1 MiB body cap: refused before it is parsed.
  const r2 = await post({ query: `{ triggers { name } }${' '.repeat(2 * 1024 * 1024)}` });
  assert.equal(r2.status, 413, r2.text.slice(0, 300));
  await alive();
});

e2eTest('graphql input: bad variables are a 400 naming the variable; nothing is written', async () => {
  const before = await post({ query: '{ events(limit: 1000) { seq } }' });
  assert.equal(before.status, 200, before.text);
  const mutation = 'mutation M($t: String!, $p: jsonb) { emit(type: $t, payload: $p) { id } }';
  const cases = [
    [{ p: {} }, /Variable "\$t" of required type "String!" was not provided\./],
    [{ t: 42 }, /Variable "\$t" got invalid value 42; String cannot represent a non string value: 42/],
    [{ t: null }, /Variable "\$t" of non-null type "String!" must not be null\./],
  ];
  for (const [variables, pattern] of cases) requestError(await post({ query: mutation, variables }), pattern);
  requestError(await post({ query: mutation, variables: [1, 2] }), /variables|object/i);
  requestError(
    await post({ query: 'query Q($n: Int) { events(limit: $n) { seq } }', variables: { n: 2 ** 40 } }),
    /Int cannot represent non 32-bit signed integer value/,
  );
  const afterward = await post({ query: '{ events(limit: 1000) { seq } }' });
  assert.deepEqual(afterward.json, before.json, 'no event was emitted');
});

e2eTest('graphql input: bodies that are not GraphQL requests are 400s', async () => {
  for (const body of ['{"query": ', 'null', '[]', '{"query": 42}', '{"query": ""}', '{}', '\u0000\u0001garbage']) {
    const r = await post(body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.status} ${r.text.slice(0, 200)}`);
    assert.ok(r.json && Array.isArray(r.json.errors), r.text);
  }
  await alive();
});

e2eTest('graphql input: 500 random mutations of valid requests each get a JSON answer', async () => {
  const seeds = [
    '{ triggers { name table operations } schedules { name cron } }',
    'query Q($l: Int = 5) { events(limit: $l, where: {seq: {_gt: 0}}, order_by: [{seq: desc}]) { id seq data deliveries { state } } }',
    'mutation { emit(type: "x.y", payload: {a: [1, 2, {b: "c"}]}) { id seq } }',
    '{ __schema { types { name fields { name args { name type { name ofType { name } } } } } } }',
    'fragment F on Event { seq } query { events(limit: 2) { ...F ... on Event @include(if: true) { op } } }',
  ];
  const rand = prng(0x2545f491);
  const next = (k) => Math.floor(rand() * k);
  const alphabet = '{}[]()$@!:=,."\\ \n#&|.0123456789azAZ_-é\u0000';
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < 500; i++) {
    let q = seeds[next(seeds.length)];
    for (let m = 1 + next(4); m > 0; m--) {
      const at = next(q.length + 1);
      const op = next(3);
      if (op === 0) q = q.slice(0, at) + alphabet[next(alphabet.length)] + q.slice(at);
      else if (op === 1) q = q.slice(0, at) + q.slice(at + 1 + next(8));
      else q = q.slice(0, at) + q.slice(next(q.length)) ;
    }
    const r = await post({ query: q, variables: next(4) === 0 ? { l: next(3) ? next(100) : 'x' } : undefined });
    assert.ok(r.status === 200 || r.status === 400, `${JSON.stringify(q)} -> ${r.status} ${r.text.slice(0, 200)}`);
    assert.ok(r.json && (r.json.data !== undefined || Array.isArray(r.json.errors)), `${JSON.stringify(q)} -> ${r.text.slice(0, 200)}`);
    if (r.status === 200) ok++;
    else refused++;
  }
  assert.ok(refused > 0 && ok + refused === 500, `ok ${ok}, refused ${refused}`);
  await alive();
});

e2eTest('graphql input: over graphql-transport-ws, a bad document is an error message and the socket lives on', async () => {
  const sock = new WebSocket(base.replace(/^http/, 'ws'), ['graphql-transport-ws']);
  const messages = [];
  let closed = null;
  sock.on('message', (d) => messages.push(JSON.parse(d.toString())));
  sock.on('close', (code) => (closed = code));
  await new Promise((resolve, reject) => {
    sock.once('open', resolve);
    sock.once('error', reject);
  });
  const waitFor = (pred, what) => waitUntil(() => messages.find(pred) || closed !== null, { timeoutMs: 15000, message: what });
  sock.send(JSON.stringify({ type: 'connection_init' }));
  await waitFor((m) => m.type === 'connection_ack', 'connection_ack');
  const bad = [
    ['1', '{ triggers { name '],
    ['2', '{'.repeat(50000)],
    ['3', 'subscription { events_stream(cursor: {initial_value: {seq: "x"}}, batch_size: 1) { seq } }'],
    ['4', 'subscription { events_stream(batch_size: 0, cursor: {initial_value: {seq: 0}}) { seq } stats { trigger } }'],
  ];
  for (const [id, query] of bad) {
    sock.send(JSON.stringify({ id, type: 'subscribe', payload: { query } }));
    await waitFor((m) => m.id === id, `an answer to ${id}`);
    assert.equal(closed, null, `socket closed after ${id}`);
    const m = messages.find((x) => x.id === id);
    assert.equal(m.type, 'error', JSON.stringify(m));
    assert.ok(Array.isArray(m.payload) && m.payload.length > 0 && m.payload[0].message, JSON.stringify(m));
  }
  sock.send(JSON.stringify({ id: '5', type: 'subscribe', payload: { query: '{ triggers { name } }' } }));
  await waitFor((m) => m.id === '5' && m.type === 'complete', 'the query after the bad ones');
  assert.deepEqual(messages.find((m) => m.id === '5' && m.type === 'next').payload, { data: { triggers: [] } });
  sock.close(1000);
  await alive();
});
