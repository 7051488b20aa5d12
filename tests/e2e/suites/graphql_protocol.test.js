// The transport of /v1/graphql: GraphQL over HTTP (POST, GET, Accept negotiation, status codes,
// the admin secret) and over WebSocket — graphql-transport-ws with the graphql-ws client and raw
// `ws` sockets for every close code, ping/pong and message shape; the legacy graphql-ws
// protocol with subscriptions-transport-ws' client and raw sockets (ka, start/data/complete,
// stop, errors, connection_error). The schema's content is the service's (graphql.test.js):
// these cases use `triggers`, the `emit` mutation and the `events_stream` subscription only.
// One herald (SQLite, or PostgreSQL when only it runs) with an admin secret serves every case;
// its stream starts after the events that exist when the case subscribes.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { createClient } from 'graphql-ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';
import { BACKENDS, e2eTest, stack, useCluster } from '../lib/fixture.js';
import { waitUntil } from '../lib/util.js';

const cluster = useCluster();
const ANY = BACKENDS.includes('sqlite') ? 'sqlite' : 'postgres';
const SECRET = 'e2e-graphql-secret';
const AUTH = { 'x-herald-admin-secret': SECRET };
const GQL = 'application/graphql-response+json';
const TRIGGERS = '{ triggers { name } }';
const STREAM = (seq) =>
  `subscription S { events_stream(cursor: [{initial_value: {seq: ${seq}}}], batch_size: 10) { seq source } }`;

let s = null; // the stack: herald with a secret
let base = null; // http://127.0.0.1:PORT
let wsUrl = null;

before(async () => {
  // Node 20 runs a file's top-level before hooks together: wait for useCluster's.
  if (ANY === 'postgres') await waitUntil(() => cluster.pg, { timeoutMs: 60000, message: 'the PostgreSQL cluster' });
  s = await stack(cluster, { backend: ANY, triggers: () => [], env: { HERALD_ADMIN_SECRET: SECRET } });
  base = s.herald.url('/v1/graphql');
  wsUrl = base.replace(/^http/, 'ws');
});

after(async () => {
  // Started outside a test: not tracked by e2eTest's cleanup.
  if (s?.herald?.running) assert.equal(await s.herald.stop(), 0);
  await s?.receiver?.close();
  if (s?.db?.end) await s.db.end();
});

/** A GraphQL request over HTTP: { status, type, json, headers }. */
async function gql(opts = {}) {
  const { method = 'POST', headers = {}, body, query, auth = true } = opts;
  const h = { ...(auth ? AUTH : {}), ...headers };
  let url = base;
  let payload;
  if (method === 'GET') {
    url += '?' + new URLSearchParams(query).toString();
  } else {
    if (!('content-type' in h)) h['content-type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const r = await fetch(url, { method, headers: h, body: payload });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: r.status, type: r.headers.get('content-type'), headers: r.headers, json, text };
}

/** The log's newest seq (events_stream starts after it). */
async function lastSeq() {
  const r = await gql({ body: { query: '{ events(order_by: [{seq: desc}], limit: 1) { seq } }' } });
  assert.equal(r.status, 200, r.text);
  const e = r.json.data.events[0];
  return e ? Number(e.seq) : 0;
}

async function emit(type) {
  const r = await gql({ body: { query: 'mutation M($t: String!) { emit(type: $t, payload: {a: 1}) { id seq } }', variables: { t: type } } });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.data.emit.id, r.text);
  return r.json.data.emit;
}

// ---- a raw WebSocket client: messages queued, waited for by predicate ----

function open(protocol, { headers = {} } = {}) {
  const sock = new WebSocket(wsUrl, protocol === null ? [] : [protocol], { headers });
  const c = { sock, messages: [], closed: null, waiters: [] };
  const check = () => {
    c.waiters = c.waiters.filter((w) => !w());
  };
  sock.on('message', (data, isBinary) => {
    c.messages.push(isBinary ? data : JSON.parse(data.toString()));
    check();
  });
  sock.on('close', (code, reason) => {
    c.closed = { code, reason: reason.toString() };
    check();
  });
  sock.on('error', () => {});
  c.opened = new Promise((resolve, reject) => {
    sock.once('open', resolve);
    sock.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, res })));
    sock.once('error', reject);
  });
  c.send = (m) => sock.send(typeof m === 'string' ? m : JSON.stringify(m));
  /** Resolves with the first message (from index `from`) matching pred. */
  c.next = (pred, { from = 0, timeoutMs = 15000 } = {}) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching message; got ${JSON.stringify(c.messages)} closed=${JSON.stringify(c.closed)}`)), timeoutMs);
      const w = () => {
        const m = c.messages.slice(from).find(pred);
        if (m) {
          clearTimeout(t);
          resolve(m);
          return true;
        }
        if (c.closed) {
          clearTimeout(t);
          reject(new Error(`closed ${JSON.stringify(c.closed)} before a matching message; got ${JSON.stringify(c.messages)}`));
          return true;
        }
        return false;
      };
      if (!w()) c.waiters.push(w);
    });
  /** Resolves with {code, reason} once closed. */
  c.close = ({ timeoutMs = 15000 } = {}) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`not closed; got ${JSON.stringify(c.messages)}`)), timeoutMs);
      const w = () => {
        if (!c.closed) return false;
        clearTimeout(t);
        resolve(c.closed);
        return true;
      };
      if (!w()) c.waiters.push(w);
    });
  return c;
}

/** A graphql-transport-ws socket past connection_ack. */
async function ready(params = AUTH) {
  const c = open('graphql-transport-ws');
  await c.opened;
  c.send({ type: 'connection_init', payload: params });
  await c.next((m) => m.type === 'connection_ack');
  return c;
}

async function expectClose(c, code, reason) {
  const got = await c.close();
  assert.equal(got.code, code, JSON.stringify(got));
  if (reason instanceof RegExp) assert.match(got.reason, reason);
  else if (reason !== undefined) assert.equal(got.reason, reason);
}

// ---- HTTP ----

e2eTest('http: POST answers application/graphql-response+json by default, application/json on request', async () => {
  let r = await gql({ body: { query: TRIGGERS } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.type, `${GQL}; charset=utf-8`);
  assert.deepEqual(r.json, { data: { triggers: [] } });
  for (const [accept, type] of [
    [GQL, GQL],
    ['*/*', GQL],
    ['application/*', GQL],
    [`application/json, ${GQL}`, GQL],
    [`${GQL};q=0.9, application/json`, 'application/json'],
    ['application/json', 'application/json'],
    ['text/html, application/json;q=0.5', 'application/json'],
  ]) {
    r = await gql({ body: { query: TRIGGERS }, headers: { accept } });
    assert.equal(r.status, 200, `${accept}: ${r.text}`);
    assert.equal(r.type, `${type}; charset=utf-8`, accept);
  }
  for (const accept of ['text/html', `${GQL};q=0, application/json;q=0`]) {
    r = await gql({ body: { query: TRIGGERS }, headers: { accept } });
    assert.equal(r.status, 406, accept);
    assert.match(r.json.errors[0].message, /Accept/);
  }
});

e2eTest('http: variables, operationName and the mutation emit', async () => {
  const doc = 'query A { triggers { name } } mutation B($t: String!) { emit(type: $t) { id source op } }';
  let r = await gql({ body: { query: doc, operationName: 'B', variables: { t: 'http.post' } } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.emit.source, 'http.post');
  r = await gql({ body: { query: doc, operationName: 'A', variables: null, extensions: {} } });
  assert.deepEqual(r.json, { data: { triggers: [] } });
  // No operationName with two operations: a request error.
  r = await gql({ body: { query: doc } });
  assert.equal(r.status, 400, r.text);
  assert.ok(r.json.errors.length >= 1);
});

e2eTest('http: GET runs queries; a mutation gets 405 with Allow: POST', async () => {
  let r = await gql({ method: 'GET', query: { query: 'query Q($n: Int) { events(limit: $n) { seq } }', variables: '{"n": 1}', operationName: 'Q' } });
  assert.equal(r.status, 200, r.text);
  assert.ok(Array.isArray(r.json.data.events));
  // A query text holding '&', '=' and '+' survives the query string.
  r = await gql({ method: 'GET', query: { query: 'query Q($t: String) { events(where: {source: {_eq: $t}}) { seq } }', variables: JSON.stringify({ t: 'a&b=c+d' }) } });
  assert.equal(r.status, 200, r.text);
  r = await gql({ method: 'GET', query: { query: 'mutation { emit(type: "x") { id } }' } });
  assert.equal(r.status, 405, r.text);
  assert.equal(r.headers.get('allow'), 'POST');
  assert.match(r.json.errors[0].message, /POST/);
  r = await gql({ method: 'GET', query: {} });
  assert.equal(r.status, 400);
  r = await gql({ method: 'GET', query: { query: TRIGGERS, variables: '[1]' } });
  assert.equal(r.status, 400);
  assert.match(r.json.errors[0].message, /variables/);
});

e2eTest('http: request errors: 400, or 200 with errors for a GraphQL error answered as application/json', async () => {
  // Not a GraphQL request at all: 400 whatever the media type.
  for (const accept of [GQL, 'application/json']) {
    for (const body of ['{not json', '[1]', '{}', '{"query": ""}', '{"query": 5}', '{"query": "{ triggers { name } }", "variables": [1]}', '{"query": "{ triggers { name } }", "operationName": 5}']) {
      const r = await gql({ body, headers: { accept } });
      assert.equal(r.status, 400, `${accept} ${body}: ${r.text}`);
      assert.equal(r.type, `${accept}; charset=utf-8`);
      assert.ok(r.json.errors[0].message, r.text);
    }
  }
  // Parse and validation errors: 400 with graphql-response+json, 200 with json.
  for (const query of ['{ triggers { name }', '{ nope }', 'query ($n: Int!) { events(limit: $n) { seq } }']) {
    let r = await gql({ body: { query } });
    assert.equal(r.status, 400, `${query}: ${r.text}`);
    assert.ok(r.json.errors.length >= 1 && !('data' in r.json), r.text);
    r = await gql({ body: { query }, headers: { accept: 'application/json' } });
    assert.equal(r.status, 200, `${query}: ${r.text}`);
    assert.ok(r.json.errors.length >= 1 && !('data' in r.json), r.text);
  }
  const r = await gql({ body: { query: '{ triggers { name }' } });
  assert.ok(r.json.errors[0].locations, r.text);
  // A subscription needs a WebSocket.
  const sub = await gql({ body: { query: STREAM(0) } });
  assert.equal(sub.status, 400, sub.text);
  assert.match(sub.json.errors[0].message, /WebSocket/);
  // A body that is not JSON by its Content-Type.
  const t = await gql({ body: { query: TRIGGERS }, headers: { 'content-type': 'text/plain' } });
  assert.equal(t.status, 415, t.text);
});

e2eTest('http: the admin secret, as for /v1/metadata: 401 with a GraphQL error', async () => {
  for (const headers of [{}, { 'x-herald-admin-secret': 'wrong' }, { 'x-hasura-admin-secret': `${SECRET}x` }]) {
    for (const method of ['POST', 'GET']) {
      const r = await gql({ method, auth: false, headers, body: { query: TRIGGERS }, query: { query: TRIGGERS } });
      assert.equal(r.status, 401, `${method} ${JSON.stringify(headers)}`);
      assert.equal(r.json.errors[0].extensions.code, 'access-denied');
    }
  }
  const r = await gql({ auth: false, headers: { 'x-hasura-admin-secret': SECRET }, body: { query: TRIGGERS } });
  assert.equal(r.status, 200);
});

// ---- graphql-transport-ws ----

e2eTest('graphql-transport-ws: the graphql-ws client runs a query, a mutation and a subscription', async () => {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: AUTH, retryAttempts: 0 });
  try {
    const once = (query, variables) =>
      new Promise((resolve, reject) => {
        let result;
        client.subscribe({ query, variables }, { next: (v) => (result = v), error: reject, complete: () => resolve(result) });
      });
    assert.deepEqual(await once(TRIGGERS), { data: { triggers: [] } });
    const emitted = await once('mutation ($t: String!) { emit(type: $t) { source } }', { t: 'ws.client' });
    assert.deepEqual(emitted, { data: { emit: { source: 'ws.client' } } });

    const from = await lastSeq();
    const seen = [];
    let done = false;
    const dispose = client.subscribe(
      { query: STREAM(from) },
      { next: (v) => seen.push(...v.data.events_stream), error: (e) => assert.fail(JSON.stringify(e)), complete: () => (done = true) },
    );
    for (let i = 0; i < 3; i++) await emit(`ws.stream.${i}`);
    await waitUntil(() => seen.length >= 3, { timeoutMs: 15000, message: 'three streamed events' });
    assert.deepEqual(seen.map((e) => e.source), ['ws.stream.0', 'ws.stream.1', 'ws.stream.2']);
    assert.ok(seen.every((e, i) => Number(e.seq) > from && (i === 0 || Number(e.seq) > Number(seen[i - 1].seq))));
    dispose();
    assert.equal(done, false);
    // A validation error reaches the client's error callback.
    const err = await new Promise((resolve) => client.subscribe({ query: 'subscription { nope }' }, { next: () => {}, error: resolve, complete: () => resolve(null) }));
    assert.ok(Array.isArray(err) && err[0].message, JSON.stringify(err));
  } finally {
    await client.dispose();
  }
});

e2eTest('graphql-transport-ws: the graphql-ws client without the secret: closed with 4403', async () => {
  for (const params of [{}, { 'x-herald-admin-secret': 'wrong' }]) {
    const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: params, retryAttempts: 0 });
    const err = await new Promise((resolve) => client.subscribe({ query: TRIGGERS }, { next: () => {}, error: resolve, complete: () => resolve(null) }));
    assert.equal(err?.code, 4403, String(err));
    assert.equal(err.reason, 'Forbidden');
    await client.dispose();
  }
});

e2eTest('graphql-transport-ws: the secret in x-hasura-admin-secret, in a headers object, or in the upgrade request', async () => {
  for (const params of [{ 'x-hasura-admin-secret': SECRET }, { headers: { 'X-Hasura-Admin-Secret': SECRET } }, { headers: { 'x-herald-admin-secret': SECRET } }]) {
    const c = await ready(params);
    c.sock.close();
  }
  const c = open('graphql-transport-ws', { headers: AUTH });
  await c.opened;
  c.send({ type: 'connection_init' });
  await c.next((m) => m.type === 'connection_ack');
  c.sock.close();
  // A wrong secret in connectionParams wins over a right one in the headers.
  const d = open('graphql-transport-ws', { headers: AUTH });
  await d.opened;
  d.send({ type: 'connection_init', payload: { 'x-herald-admin-secret': 'wrong' } });
  await expectClose(d, 4403, 'Forbidden');
});

e2eTest('graphql-transport-ws: query and mutation: one next, then complete; a failed prepare: error without complete', async () => {
  const c = await ready();
  c.send({ id: 'q1', type: 'subscribe', payload: { query: TRIGGERS } });
  const n = await c.next((m) => m.id === 'q1' && m.type === 'next');
  assert.deepEqual(n, { id: 'q1', type: 'next', payload: { data: { triggers: [] } } });
  await c.next((m) => m.id === 'q1' && m.type === 'complete');
  c.send({ id: 'e"1', type: 'subscribe', payload: { query: '{ nope }' } });
  const e = await c.next((m) => m.id === 'e"1');
  assert.equal(e.type, 'error');
  assert.ok(Array.isArray(e.payload) && e.payload[0].message, JSON.stringify(e));
  // The same id is free again; nothing else came for e"1.
  c.send({ id: 'e"1', type: 'subscribe', payload: { query: TRIGGERS, variables: null, operationName: null, extensions: {} } });
  const at = c.messages.length;
  await c.next((m) => m.id === 'e"1' && m.type === 'complete', { from: at });
  assert.equal(c.messages.filter((m) => m.id === 'e"1' && m.type === 'complete').length, 1);
  c.sock.close(1000);
});

e2eTest('graphql-transport-ws: subscribe, next for each batch, client complete stops it; ids are per socket', async () => {
  const c = await ready();
  const from = await lastSeq();
  c.send({ id: 'a', type: 'subscribe', payload: { query: STREAM(from) } });
  await emit('ws.raw.1');
  const first = await c.next((m) => m.id === 'a' && m.type === 'next');
  assert.equal(first.payload.data.events_stream[0].source, 'ws.raw.1');
  c.send({ id: 'a', type: 'complete' });
  c.send({ id: 'unknown', type: 'complete' }); // ignored
  // A second subscription from the same point sees the next event; 'a' sees nothing more.
  const mark = c.messages.length;
  c.send({ id: 'b', type: 'subscribe', payload: { query: STREAM(from) } });
  await emit('ws.raw.2');
  await c.next((m) => m.id === 'b' && m.type === 'next' && m.payload.data.events_stream.some((e) => e.source === 'ws.raw.2'), { from: mark });
  assert.equal(c.messages.slice(mark).filter((m) => m.id === 'a').length, 0);
  // Another socket may use the id 'b' too.
  const d = await ready();
  d.send({ id: 'b', type: 'subscribe', payload: { query: TRIGGERS } });
  await d.next((m) => m.id === 'b' && m.type === 'complete');
  d.sock.close();
  c.sock.close();
});

e2eTest('graphql-transport-ws: at most 1,000 subscriptions per socket: the next one gets an error', async () => {
  const c = await ready();
  const from = await lastSeq();
  for (let i = 0; i <= 1000; i++) c.send({ id: `s${i}`, type: 'subscribe', payload: { query: STREAM(from) } });
  const e = await c.next((m) => m.id === 's1000');
  assert.equal(e.type, 'error');
  assert.match(e.payload[0].message, /too many subscriptions/);
  assert.equal(c.messages.filter((m) => m.type === 'error').length, 1);
  // One ends: room for another.
  c.send({ id: 's0', type: 'complete' });
  c.send({ id: 'again', type: 'subscribe', payload: { query: STREAM(from) } });
  c.send({ id: 'q', type: 'subscribe', payload: { query: TRIGGERS } });
  await c.next((m) => m.id === 'q' && m.type === 'complete');
  assert.equal(c.messages.filter((m) => m.type === 'error').length, 1);
  c.sock.close();
});

e2eTest('graphql-transport-ws: ping gets pong with the same payload; pong is ignored', async () => {
  const c = open('graphql-transport-ws');
  await c.opened;
  c.send({ type: 'ping' }); // allowed before connection_init
  assert.deepEqual(await c.next((m) => m.type === 'pong'), { type: 'pong' });
  c.send({ type: 'connection_init', payload: AUTH });
  await c.next((m) => m.type === 'connection_ack');
  c.send({ type: 'pong', payload: { x: 1 } });
  c.send({ type: 'ping', payload: { n: 42, s: 'é' } });
  assert.deepEqual(await c.next((m) => m.type === 'pong' && m.payload), { type: 'pong', payload: { n: 42, s: 'é' } });
  c.sock.close();
});

e2eTest('graphql-transport-ws: 4408: no connection_init within 3 s', async () => {
  const c = open('graphql-transport-ws');
  await c.opened;
  const t0 = Date.now();
  await expectClose(c, 4408, 'Connection initialisation timeout');
  assert.ok(Date.now() - t0 >= 2500, `closed after ${Date.now() - t0} ms`);
});

e2eTest('graphql-transport-ws: 4429: a second connection_init', async () => {
  const c = await ready();
  c.send({ type: 'connection_init', payload: AUTH });
  await expectClose(c, 4429, 'Too many initialisation requests');
});

e2eTest('graphql-transport-ws: 4401: subscribe before connection_ack', async () => {
  const c = open('graphql-transport-ws');
  await c.opened;
  c.send({ id: '1', type: 'subscribe', payload: { query: TRIGGERS } });
  await expectClose(c, 4401, 'Unauthorized');
});

e2eTest('graphql-transport-ws: 4403: missing or wrong secret', async () => {
  for (const payload of [undefined, null, {}, { 'x-herald-admin-secret': 'nope' }, { headers: { 'x-hasura-admin-secret': 'nope' } }]) {
    const c = open('graphql-transport-ws');
    await c.opened;
    c.send(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload });
    await expectClose(c, 4403, 'Forbidden');
  }
});

e2eTest('graphql-transport-ws: 4409: a subscribe with an id that is active', async () => {
  const c = await ready();
  const from = await lastSeq();
  c.send({ id: 'dup', type: 'subscribe', payload: { query: STREAM(from) } });
  // The stream stays open; a query under its id closes the socket.
  c.send({ id: 'dup', type: 'subscribe', payload: { query: TRIGGERS } });
  await expectClose(c, 4409, 'Subscriber for dup already exists');
});

e2eTest('graphql-transport-ws: 4400: malformed JSON, unknown and misplaced types, bad fields, binary frames', async () => {
  const cases = [
    ['{not json', /JSON/],
    ['[1,2]', /type/],
    [{ type: 5 }, /type/],
    [{ type: 'nope' }, /nope/],
    [{ type: 'next', id: '1', payload: {} }, /Unexpected message of type next/],
    [{ type: 'connection_ack' }, /Unexpected message of type connection_ack/],
    [{ type: 'subscribe', payload: { query: TRIGGERS } }, /id/],
    [{ type: 'subscribe', id: '', payload: { query: TRIGGERS } }, /id/],
    [{ type: 'subscribe', id: '1', payload: { query: 5 } }, /query/],
    [{ type: 'subscribe', id: '1', payload: { query: TRIGGERS, variables: [1] } }, /variables/],
    [{ type: 'subscribe', id: '1' }, /payload/],
    [{ type: 'complete' }, /id/],
    [{ type: 'ping', payload: 'x' }, /payload/],
  ];
  for (const [msg, reason] of cases) {
    const c = await ready();
    c.send(msg);
    await expectClose(c, 4400, reason);
  }
  const c = await ready();
  c.sock.send(Buffer.from([1, 2, 3]), { binary: true });
  await expectClose(c, 4400, /Binary/);
});

e2eTest('graphql-transport-ws: herald stopping closes sockets with 1001 and exits', async () => {
  const t = await stack(cluster, { backend: ANY, triggers: () => [] });
  const sock = new WebSocket(t.herald.url('/v1/graphql').replace(/^http/, 'ws'), ['graphql-transport-ws']);
  const closed = new Promise((resolve) => sock.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => {
    sock.on('message', (d) => JSON.parse(d).type === 'connection_ack' && resolve());
    sock.on('error', reject);
    sock.on('open', () => sock.send(JSON.stringify({ type: 'connection_init' })));
  });
  const from = await lastSeq();
  sock.send(JSON.stringify({ id: 'x', type: 'subscribe', payload: { query: STREAM(from) } }));
  const code = t.herald.stop();
  assert.deepEqual(await closed, { code: 1001, reason: 'server shutting down' });
  assert.equal(await code, 0);
});

e2eTest('graphql-transport-ws: upgrades without a supported subprotocol get an HTTP answer', async () => {
  for (const protocol of [null, 'graphql-nope']) {
    const c = open(protocol);
    const err = await c.opened.then(() => null, (e) => e);
    assert.equal(err?.status, 400, String(err));
  }
  const sock = new WebSocket(base.replace(/^http/, 'ws').replace('/v1/graphql', '/v1/metadata'), ['graphql-transport-ws']);
  const status = await new Promise((resolve) => {
    sock.on('unexpected-response', (req, res) => resolve(res.statusCode));
    sock.on('open', () => resolve('open'));
    sock.on('error', () => {});
  });
  assert.equal(status, 404);
});

// ---- graphql-ws (legacy) ----

e2eTest('graphql-ws: SubscriptionClient runs a query and a subscription', async () => {
  const client = new SubscriptionClient(wsUrl, { connectionParams: AUTH, reconnect: false }, WebSocket);
  try {
    const result = await new Promise((resolve, reject) => {
      let r;
      client.request({ query: TRIGGERS }).subscribe({ next: (v) => (r = v), error: reject, complete: () => resolve(r) });
    });
    assert.deepEqual(result, { data: { triggers: [] } });
    const from = await lastSeq();
    const seen = [];
    const sub = client.request({ query: STREAM(from) }).subscribe({ next: (v) => seen.push(...v.data.events_stream), error: (e) => assert.fail(JSON.stringify(e)) });
    await emit('legacy.1');
    await emit('legacy.2');
    await waitUntil(() => seen.length >= 2, { timeoutMs: 15000, message: 'two streamed events' });
    assert.deepEqual(seen.map((e) => e.source), ['legacy.1', 'legacy.2']);
    sub.unsubscribe();
    const err = await new Promise((resolve) => {
      client.request({ query: 'subscription { nope }' }).subscribe({ next: () => resolve(null), error: resolve, complete: () => resolve(null) });
    });
    assert.ok(err?.message, JSON.stringify(err));
  } finally {
    client.close();
  }
});

e2eTest('graphql-ws: raw: ack then ka at once and again, start/data/complete, error, stop, terminate', { timeout: 60000 }, async () => {
  const c = open('graphql-ws');
  await c.opened;
  c.send({ type: 'connection_init', payload: AUTH });
  await c.next((m) => m.type === 'ka');
  assert.deepEqual(c.messages.slice(0, 2), [{ type: 'connection_ack' }, { type: 'ka' }]);
  c.send({ id: '1', type: 'start', payload: { query: TRIGGERS } });
  assert.deepEqual(await c.next((m) => m.id === '1' && m.type === 'data'), { id: '1', type: 'data', payload: { data: { triggers: [] } } });
  await c.next((m) => m.id === '1' && m.type === 'complete');
  c.send({ id: '2', type: 'start', payload: { query: '{ nope }' } });
  const e = await c.next((m) => m.id === '2');
  assert.equal(e.type, 'error');
  assert.ok(e.payload[0].message);
  const from = await lastSeq();
  c.send({ id: '3', type: 'start', payload: { query: STREAM(from) } });
  await emit('legacy.raw');
  await c.next((m) => m.id === '3' && m.type === 'data');
  c.send({ id: '3', type: 'stop' });
  await c.next((m) => m.id === '3' && m.type === 'complete');
  // Bad messages get an error message; the socket stays.
  c.send('{oops');
  await c.next((m) => m.type === 'error' && !m.id && /JSON/.test(m.payload.message));
  c.send({ id: '4', type: 'whatever' });
  await c.next((m) => m.type === 'error' && m.id === '4');
  // The keep-alive comes again after ~10 s.
  const kas = () => c.messages.filter((m) => m.type === 'ka').length;
  await waitUntil(() => kas() >= 2, { timeoutMs: 20000, intervalMs: 100, message: 'a second ka' });
  c.send({ type: 'connection_terminate' });
  const closed = await c.close();
  assert.equal(closed.code, 1000);
});

e2eTest('graphql-ws: raw: a wrong secret gets connection_error, then the socket closes', async () => {
  const c = open('graphql-ws');
  await c.opened;
  c.send({ type: 'connection_init', payload: { 'x-herald-admin-secret': 'wrong' } });
  const m = await c.next((x) => x.type === 'connection_error');
  assert.match(m.payload.message, /secret/);
  await expectClose(c, 4403, 'Forbidden');
  // start before connection_init: an error for that id.
  const d = open('graphql-ws');
  await d.opened;
  d.send({ id: '1', type: 'start', payload: { query: TRIGGERS } });
  const e = await d.next((x) => x.id === '1');
  assert.equal(e.type, 'error');
  d.sock.close();
  // No connection_init at all: 4408, as with graphql-transport-ws.
  await expectClose(open('graphql-ws'), 4408, 'Connection initialisation timeout');
});

// ---- the result cap (docs/api.md: 16 MiB) ----

/**
 * A query within every engine cap (64 KiB, 10,000 tokens, 2,000 selections) whose result is tens
 * of MB: `spreads` root aliases of __schema { types { fields { ...F } } }, F asking k times for a
 * field's name under aliases of 100 characters.
 */
const HUGE = (spreads, k) => {
  const key = (i) => `k${String(i).padStart(99, '0')}`;
  const roots = Array.from({ length: spreads }, (_, i) => `r${i}: __schema { types { fields { ...F } } }`);
  const names = Array.from({ length: k }, (_, i) => `${key(i)}: name`);
  return `{ ${roots.join(' ')} } fragment F on __Field { ${names.join(' ')} }`;
};

e2eTest('a result over 16 MiB is answered with RESULT_TOO_LARGE, over HTTP and WebSocket; a smaller one whole', async () => {
  const small = await gql({ body: { query: HUGE(1, 10) } });
  assert.equal(small.status, 200, small.text.slice(0, 300));
  assert.equal(small.json.errors, undefined);
  const query = HUGE(4, 480);
  assert.ok(query.length < 64 * 1024);
  const expected = (small.text.length * 4 * 480) / 10;
  assert.ok(expected > 20 * 1024 * 1024, `the big query would answer about ${expected} bytes: under the cap`);
  const r = await gql({ body: { query } });
  assert.equal(r.status, 200);
  assert.ok(r.text.length < 4096, `the answer is ${r.text.length} bytes`);
  assert.equal(r.json.data, undefined);
  assert.equal(r.json.errors[0].extensions.code, 'RESULT_TOO_LARGE');
  assert.match(r.json.errors[0].message, /larger than 16777216 bytes/);
  // The same over graphql-transport-ws: a next with the error, then complete; the socket stays.
  const c = await ready();
  c.send({ id: 'big', type: 'subscribe', payload: { query } });
  const next = await c.next((m) => m.id === 'big' && m.type === 'next', { timeoutMs: 60000 });
  assert.equal(next.payload.errors[0].extensions.code, 'RESULT_TOO_LARGE');
  await c.next((m) => m.id === 'big' && m.type === 'complete');
  c.send({ id: 'after', type: 'subscribe', payload: { query: TRIGGERS } });
  const after = await c.next((m) => m.id === 'after' && m.type === 'next');
  assert.ok(Array.isArray(after.payload.data.triggers));
  c.sock.close();
});
