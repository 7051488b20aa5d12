// Waiting on conditions with a deadline. The deadline bounds a failure; it is never a timing
// assertion. Use the receiver's event-driven waitFor for HTTP arrivals; use waitUntil for
// conditions that can only be observed by asking (database rows, process state).

/** Polls fn() until it returns a truthy value; resolves with that value. */
export async function waitUntil(fn, { timeoutMs = 30000, intervalMs = 50, message } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
      lastErr = undefined;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const why = lastErr ? ` (last error: ${lastErr.message})` : ` (last value: ${JSON.stringify(last)})`;
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${message || fn.toString().slice(0, 160)}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Runs fn(i) for i in [0, n) with at most `width` promises in flight. */
export async function parallel(n, width, fn) {
  let next = 0;
  const workers = [];
  for (let w = 0; w < Math.min(width, n); w++) {
    workers.push((async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        await fn(i, w);
      }
    })());
  }
  await Promise.all(workers);
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// RFC 3339 date-time: full date, 'T' (or space is not allowed), time, optional fraction, offset.
export const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** mulberry32: a small seeded PRNG returning numbers in [0, 1), so that a failure reproduces. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
