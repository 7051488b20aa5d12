// `herald sink`, the local webhook receiver: what it prints, how it answers (200, --status,
// --fail-rate, --delay), Standard Webhooks verification with --secret (bodies signed by the
// npm standardwebhooks package), --quiet/--count, flag errors (exit 2), SIGTERM/SIGINT (exit 0),
// and real herald delivering to it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { e2eTest, forBackends, stack, useCluster } from '../lib/fixture.js';
import { HERALD_BIN, run } from '../lib/herald.js';
import { waitUntil } from '../lib/util.js';

const cluster = useCluster();
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

const sinks = new Set();
after(() => {
  for (const p of sinks) p.kill('SIGKILL');
});

/**
 * Starts `herald sink --listen 127.0.0.1:0 ARGS`; resolves once it logs msg=ready (with its URL).
 * Returns { url(path), lines() (stdout lines so far), waitForLine(re), stop(signal) -> {code,
 * signal, stdout}, stderr (getter) }.
 */
function startSink(args = [], { readyTimeoutMs = 15000 } = {}) {
  const child = spawn(HERALD_BIN, ['sink', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  sinks.add(child);
  let stdout = '';
  let stderr = '';
  const waiters = new Set();
  const check = () => {
    for (const w of [...waiters]) {
      const line = stdout.split('\n').find((l) => w.re.test(l));
      if (line) {
        waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(line);
      }
    }
  };
  child.stdout.on('data', (d) => {
    stdout += d;
    check();
  });
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      sinks.delete(child);
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new Error(`sink exited (${code}, ${signal}) before printing ${w.re}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      }
      waiters.clear();
      resolve({ code, signal, stdout, stderr });
    });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sink not ready within ${readyTimeoutMs} ms:\n${stderr}`));
    }, readyTimeoutMs);
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`sink exited with ${code} before it was ready:\n${stderr}`));
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /msg=ready url=(http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
      if (!m) return;
      clearTimeout(timer);
      const base = m[1];
      resolve({
        url: (p = '/') => base + p,
        lines: () => stdout.split('\n').filter(Boolean),
        get stderr() {
          return stderr;
        },
        waitForLine(re, timeoutMs = 15000) {
          return new Promise((res, rej) => {
            const w = { re, resolve: res, reject: rej, timer: null };
            w.timer = setTimeout(() => {
              waiters.delete(w);
              rej(new Error(`sink did not print ${re} within ${timeoutMs} ms; stdout:\n${stdout}`));
            }, timeoutMs);
            waiters.add(w);
            check();
          });
        },
        async stop(signal = 'SIGTERM') {
          child.kill(signal);
          return exited;
        },
      });
    });
  });
}

function hasuraBody({ id = '5c0e8f4e-8a7b-4b57-9a1c-2f7f6f0a1b2c', trigger = 'order_events', op = 'INSERT', retry = 0 } = {}) {
  return JSON.stringify({
    id,
    created_at: '2026-11-23T12:00:00.123456Z',
    trigger: { name: trigger },
    table: { schema: 'public', name: 'orders' },
    event: { op, data: { old: null, new: { id: 1, status: 'new' } }, session_variables: null, trace_context: null },
    delivery_info: { max_retries: 5, current_retry: retry },
  });
}

async function post(url, body, headers = {}) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: r.status, text: await r.text() };
}

function signed(body, { id = 'msg_p5jXN8AQM9LWM0D4loKWxJek', at = new Date(), secret = SECRET } = {}) {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}

describe('answers and output', () => {
  e2eTest('prints one line per request (Hasura body: event, trigger, op, attempt) and answers 200', async () => {
    const s = await startSink();
    const r = await post(s.url('/orders'), hasuraBody({ retry: 2, op: 'UPDATE' }));
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { ok: true });
    const line = await s.waitForLine(/event=/);
    assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z status=200 event=5c0e8f4e-8a7b-4b57-9a1c-2f7f6f0a1b2c trigger=order_events op=UPDATE attempt=3 path=\/orders$/);

    // Any other body: method, path, size; any method and path is accepted.
    assert.equal((await post(s.url('/x/y'), 'plain text')).status, 200);
    assert.match(await s.waitForLine(/path=\/x\/y/), / status=200 method=POST path=\/x\/y bytes=10$/);
    const g = await fetch(s.url('/health?x=1'));
    assert.equal(g.status, 200);
    assert.match(await s.waitForLine(/method=GET/), / status=200 method=GET path=\/health bytes=0$/);
    assert.equal((await s.stop()).code, 0);
  });

  e2eTest('--status 503 answers every request with 503', async () => {
    const s = await startSink(['--status', '503']);
    for (let i = 0; i < 5; i++) assert.equal((await post(s.url('/h'), hasuraBody())).status, 503);
    await waitUntil(() => s.lines().length === 5);
    for (const l of s.lines()) assert.match(l, / status=503 /);
    await s.stop();
  });

  e2eTest('--fail-rate 1 fails all (503 by default, or --status), --fail-rate 0 none, 0.5 some', async () => {
    let s = await startSink(['--fail-rate', '1']);
    for (let i = 0; i < 20; i++) assert.equal((await post(s.url('/h'), 'x')).status, 503);
    await s.stop();
    s = await startSink(['--fail-rate=1', '--status=429']);
    for (let i = 0; i < 5; i++) assert.equal((await post(s.url('/h'), 'x')).status, 429);
    await s.stop();
    s = await startSink(['--fail-rate', '0', '--status', '500']);
    for (let i = 0; i < 20; i++) assert.equal((await post(s.url('/h'), 'x')).status, 200);
    await s.stop();
    s = await startSink(['--fail-rate', '0.5', '--quiet']);
    let failed = 0;
    for (let i = 0; i < 200; i++) if ((await post(s.url('/h'), 'x')).status === 503) failed++;
    assert.ok(failed > 40 && failed < 160, `about half of 200 failed: ${failed}`);
    await s.stop();
  });

  e2eTest('--delay delays every answer (lower bound)', async () => {
    const s = await startSink(['--delay', '300ms']);
    const t0 = performance.now();
    const rs = await Promise.all([1, 2, 3].map(() => post(s.url('/d'), hasuraBody())));
    const elapsed = performance.now() - t0;
    for (const r of rs) assert.equal(r.status, 200);
    assert.ok(elapsed >= 295, `answered after ${elapsed} ms`);
    await s.stop();
  });

  e2eTest('--quiet prints nothing per request; --count prints running totals and a final total', async () => {
    const s = await startSink(['--quiet', '--count', '--fail-rate', '0']);
    for (let i = 0; i < 7; i++) await post(s.url('/c'), hasuraBody());
    const line = await s.waitForLine(/count=7 /, 5000);
    assert.match(line, /count=7 ok=7 failed=0 rejected=0 rate=\d+\/s$/);
    const { code, stdout } = await s.stop();
    assert.equal(code, 0);
    assert.ok(!/status=/.test(stdout), 'no per-request lines');
    assert.match(stdout, /\ntotal=7 ok=7 failed=0 rejected=0\n$/);
  });
});

describe('signatures (--secret)', () => {
  e2eTest('a body signed with standardwebhooks is accepted; tampered, stale or unsigned ones get 401', async () => {
    const s = await startSink(['--secret', SECRET, '--count']);
    const body = hasuraBody();
    assert.equal((await post(s.url('/signed'), body, signed(body))).status, 200);
    await s.waitForLine(/status=200 event=/);

    // Several signatures: one valid v1 among others is enough.
    const h = signed(body);
    h['webhook-signature'] = `v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v2,xyz ${h['webhook-signature']}`;
    assert.equal((await post(s.url('/signed'), body, h)).status, 200);

    const tampered = body.replace('"INSERT"', '"DELETE"');
    const r = await post(s.url('/signed'), tampered, signed(body));
    assert.equal(r.status, 401);
    assert.match(r.text, /signature mismatch/);
    assert.match(await s.waitForLine(/status=401/), /op=DELETE .*reject="signature mismatch"$/);

    const other = signed(body, { secret: 'whsec_' + Buffer.from('another key entirely').toString('base64') });
    assert.equal((await post(s.url('/signed'), body, other)).status, 401);
    const old = signed(body, { at: new Date(Date.now() - 10 * 60 * 1000) });
    const ro = await post(s.url('/signed'), body, old);
    assert.equal(ro.status, 401);
    assert.match(ro.text, /too old/);
    const ru = await post(s.url('/signed'), body);
    assert.equal(ru.status, 401);
    assert.match(ru.text, /missing webhook-id/);
    const swapped = { ...signed(body), 'webhook-id': 'msg_other' };
    assert.equal((await post(s.url('/signed'), body, swapped)).status, 401);

    const { code, stdout } = await s.stop('SIGINT');
    assert.equal(code, 0);
    assert.match(stdout, /\ntotal=7 ok=2 failed=0 rejected=5\n$/);
  });
});

describe('flags and signals', () => {
  e2eTest('bad flags exit 2 with a precise message', async () => {
    const cases = [
      [['--fail-rate', '2'], /--fail-rate: expected a number from 0 to 1, got '2'/],
      [['--fail-rate', 'half'], /--fail-rate: .*'half'/],
      [['--status', 'abc'], /--status: expected an HTTP status from 200 to 599, got 'abc'/],
      [['--status', '42'], /--status: .*'42'/],
      [['--delay', 'soon'], /--delay: expected a duration .*'soon'/],
      [['--secret', 'not base64!'], /--secret: .*base64/],
      [['--listen', 'nowhere'], /listen.*nowhere/i],
      [['--listen'], /--listen needs a value/],
      [['--bogus'], /unknown argument '--bogus'/],
    ];
    for (const [args, re] of cases) {
      const r = await run(['sink', ...args], { timeoutMs: 10000 });
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stdout, '');
    }
    const help = await run(['sink', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--fail-rate/);
  });

  e2eTest('a busy port is a runtime failure (exit 1)', async () => {
    const s = await startSink();
    const port = new URL(s.url()).port;
    const r = await run(['sink', '--listen', `127.0.0.1:${port}`], { timeoutMs: 10000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /in use/);
    await s.stop();
  });

  e2eTest('SIGTERM stops it cleanly (exit 0), also with delayed answers pending', async () => {
    const s = await startSink(['--delay', '10s']);
    const pending = post(s.url('/p'), hasuraBody()).catch((e) => e);
    await s.waitForLine(/status=200/);
    const t0 = performance.now();
    const { code, signal } = await s.stop('SIGTERM');
    assert.equal(code, 0);
    assert.equal(signal, null);
    assert.ok(performance.now() - t0 < 5000, 'did not wait for the delay');
    const r = await pending;
    assert.ok(r instanceof Error || r.status === 200, `pending request: ${r}`);
  });
});

forBackends('herald serve delivers to herald sink --secret; the sink counts every event', async (t, backend) => {
  const sink = await startSink(['--secret', SECRET, '--count']);
  const N = 50;
  const s = await stack(cluster, {
    backend,
    sql: 'CREATE TABLE orders (id int PRIMARY KEY, status text)',
    triggers: () => [{ name: 'to_sink', table: 'public.orders', operations: ['insert'], webhook: sink.url('/orders'), secret: SECRET, start: 'beginning' }],
  });
  for (let i = 1; i <= N; i++) await s.db.query('INSERT INTO orders (id, status) VALUES ($1, $2)', [i, 'new']);
  await sink.waitForLine(new RegExp(`count=${N} ok=${N} failed=0 rejected=0`), 30000);
  const events = sink.lines().filter((l) => / event=/.test(l));
  assert.equal(events.length, N);
  for (const l of events) assert.match(l, / status=200 event=[0-9a-f-]{36} trigger=to_sink op=INSERT attempt=1 path=\/orders$/);
  assert.equal(new Set(events.map((l) => / event=(\S+)/.exec(l)[1])).size, N, 'distinct event ids');
  await s.herald.stop();
  const { code, stdout } = await sink.stop();
  assert.equal(code, 0);
  assert.match(stdout, new RegExp(`\\ntotal=${N} ok=${N} failed=0 rejected=0\\n$`));
});
