// A real HTTP webhook receiver on 127.0.0.1 that records every request.
//
//   const r = await startReceiver();
//   r.url('/orders')                      -> http://127.0.0.1:PORT/orders
//   r.respond = (req, n) => ({ status, headers, body, delayMs, hang })   // n: 1-based arrival index
//   await r.waitFor(3)  or  await r.waitFor((reqs) => ..., 10000)
//
// Each recorded request: { n, method, url, headers, body (raw string), json (parsed or null),
// at (Date.now() at arrival), t (performance.now() at arrival), finished (response fully written),
// aborted (connection closed before the response was written), status (status sent),
// remotePort (the client's port: equal on requests that shared a kept-alive connection) }.
// waitFor is event-driven: the condition is re-checked on every arrival and every completed or
// aborted response, never on a timer; the timeout only bounds the wait.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const DEFAULT_RESPONSE = { status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };

export async function startReceiver({ port = 0 } = {}) {
  const requests = [];
  const waiters = new Set();
  const openSockets = new Set();
  const check = () => {
    for (const w of [...waiters]) {
      let ok = false;
      try {
        ok = w.pred(requests);
      } catch (e) {
        waiters.delete(w);
        clearTimeout(w.timer);
        w.reject(e);
        continue;
      }
      if (ok) {
        waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(requests);
      }
    }
  };

  const r = {
    requests,
    respond: null,
    port: 0,
    server: null,
    url(p = '/') {
      return `http://127.0.0.1:${r.port}${p.startsWith('/') ? p : '/' + p}`;
    },
    /** Requests whose JSON body has this event id. */
    byEventId(id) {
      return requests.filter((q) => q.json && q.json.id === id);
    },
    /** Resolves when pred(requests) holds (pred may be a count of requests). */
    waitFor(pred, timeoutMs = 30000, what) {
      const fn = typeof pred === 'number' ? (reqs) => reqs.length >= pred : pred;
      const label = what || (typeof pred === 'number' ? `${pred} requests` : pred.toString().slice(0, 200));
      return new Promise((resolve, reject) => {
        const w = { pred: fn, resolve, reject, timer: null };
        w.timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`receiver: timed out after ${timeoutMs}ms waiting for ${label}; ` +
            `${requests.length} requests recorded`));
        }, timeoutMs);
        waiters.add(w);
        check();
      });
    },
    async close() {
      for (const w of waiters) clearTimeout(w.timer);
      waiters.clear();
      await new Promise((resolve) => {
        r.server.close(() => resolve());
        r.server.closeAllConnections();
        for (const s of openSockets) s.destroy();
      });
    },
  };

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json = null;
      try {
        json = body.length ? JSON.parse(body) : null;
      } catch {
        json = null;
      }
      const rec = {
        n: requests.length + 1,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body,
        json,
        at: Date.now(),
        t: performance.now(),
        finished: false,
        aborted: false,
        status: null,
        remotePort: req.socket.remotePort,
      };
      requests.push(rec);
      res.on('finish', () => {
        rec.finished = true;
        rec.finishedT = performance.now();
        check();
      });
      res.on('close', () => {
        if (!rec.finished) {
          rec.aborted = true;
          check();
        }
      });
      check();
      let spec;
      try {
        spec = r.respond ? await r.respond(rec, rec.n) : null;
      } catch (e) {
        spec = { status: 599, body: String(e) };
      }
      spec = { ...DEFAULT_RESPONSE, ...(spec || {}) };
      if (spec.hang) return; // never answer; the client gives up (or close() ends it)
      const send = () => {
        if (res.destroyed) return;
        rec.status = spec.status;
        const b = typeof spec.body === 'string' ? spec.body : JSON.stringify(spec.body ?? '');
        res.writeHead(spec.status, { 'content-length': Buffer.byteLength(b), ...(spec.headers || {}) });
        res.end(b);
      };
      if (spec.delayMs) setTimeout(send, spec.delayMs);
      else send();
    });
  });
  server.keepAliveTimeout = 60000;
  server.headersTimeout = 65000;
  server.requestTimeout = 0;
  server.on('connection', (s) => {
    openSockets.add(s);
    s.on('close', () => openSockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  r.server = server;
  r.port = server.address().port;
  return r;
}
