// A throwaway PostgreSQL 15 cluster per test file.
//
// startPg() runs initdb in a fresh temporary directory and starts the server with pg_ctl on
// 127.0.0.1 and a free port, with its Unix socket inside that directory. PostgreSQL refuses to
// run as root: when the tests run as root (CI), the directory is handed to the `postgres` user
// and initdb/pg_ctl run through `runuser -u postgres --`. The cluster is stopped by stop()
// (call it from an `after` hook) and, as a fallback, when the test process exits.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

const liveClusters = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveClusters) c.stopSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      for (const c of liveClusters) c.stopSync();
      process.exit(128 + (os.constants.signals[sig] || 0));
    });
  }
}

/** Resolves with a port that was free a moment ago (bind port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function asPg(cmd, args) {
  return IS_ROOT ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

/** Runs a PostgreSQL tool (as the postgres user when root); rejects with its output on failure. */
function runTool(tool, args, { cwd, timeoutMs = 60000 } = {}) {
  const [cmd, argv] = asPg(path.join(PG_BIN, tool), args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${tool} ${args.join(' ')} failed (code ${code}, signal ${signal}):\n${out}`));
    });
  });
}

function readTail(file, lines) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Path of herald's native capture module (pgext/herald_capture.c) as built; `make test` sets it. */
export const PGEXT = process.env.HERALD_PGEXT || '';

/**
 * Starts a cluster. With nativeCapture (the default) and HERALD_PGEXT set, the server can load
 * herald's native capture module: it is copied into the cluster's directory, which
 * dynamic_library_path names (so `capture: auto` picks it). Returns
 *   { url, port, dir, client(), query(sql, params), restart(), stop(), createDb(name), logTail(n) }.
 * url is postgres://postgres@127.0.0.1:PORT/postgres.
 */
export async function startPg({ maxConnections = 100, nativeCapture = true } = {}) {
  installExitHook();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-pg-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  if (IS_ROOT) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    fs.chownSync(dir, uid, gid);
  }
  await runTool('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8',
    '--locale=C', '--no-instructions'], { cwd: dir });
  // The cluster's own directory comes first, so that a module installed in the server's library
  // directory (make install-pgext) is never the one tested; without nativeCapture the path holds
  // only an empty directory, so that no herald_capture can be loaded at all (extensions name
  // their libraries with $libdir/ explicitly and are not affected).
  const lib = path.join(dir, 'lib');
  fs.mkdirSync(lib, { mode: 0o755 });
  if (nativeCapture && PGEXT) fs.copyFileSync(PGEXT, path.join(lib, 'herald_capture.so'));
  fs.appendFileSync(path.join(data, 'postgresql.conf'),
    `dynamic_library_path = '${nativeCapture ? `${lib}:$libdir` : lib}'\n`);

  let port;
  let opts;
  let started = false;
  let lastErr;
  // Another process may grab the port between freePort() and the server binding it: retry.
  for (let attempt = 0; attempt < 5 && !started; attempt++) {
    port = await freePort();
    opts = [
      `-p ${port}`,
      `-c listen_addresses=127.0.0.1`,
      `-c unix_socket_directories=${dir}`,
      `-c max_connections=${maxConnections}`,
      `-c fsync=off`,
      `-c full_page_writes=off`,
      `-c TimeZone=UTC`,
    ].join(' ');
    try {
      await runTool('pg_ctl', ['start', '-D', data, '-l', logFile, '-w', '-t', '60', '-o', opts], { cwd: dir });
      started = true;
    } catch (e) {
      lastErr = e;
    }
  }
  if (!started) throw new Error(`could not start PostgreSQL: ${lastErr?.message}\n${readTail(logFile, 30)}`);

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let pool = null;
  const getPool = () => {
    if (!pool) {
      pool = new pg.Pool({ connectionString: url, max: 4 });
      pool.on('error', () => {}); // idle clients die on restart; the pool drops them
    }
    return pool;
  };
  const endPool = async () => {
    if (pool) {
      const p = pool;
      pool = null;
      await p.end().catch(() => {});
    }
  };

  const cluster = {
    url,
    port,
    dir,
    logFile,
    /** URL of another database of this cluster. */
    urlFor(db) {
      return `postgres://postgres@127.0.0.1:${port}/${db}`;
    },
    /** A new (not yet connected) pg.Client; db defaults to postgres. */
    client(db = 'postgres') {
      const c = new pg.Client({ connectionString: this.urlFor(db) });
      c.on('error', () => {}); // a server restart must not crash the test process
      return c;
    },
    /** Runs one statement on the postgres database through a small pool. */
    query(sql, params) {
      return getPool().query(sql, params);
    },
    async createDb(name) {
      await getPool().query(`CREATE DATABASE "${name}"`);
      return this.urlFor(name);
    },
    /** pg_ctl restart -m fast; resolves once the server accepts connections again. */
    async restart() {
      await endPool();
      await runTool('pg_ctl', ['restart', '-D', data, '-m', 'fast', '-w', '-t', '60', '-l', logFile, '-o', opts], { cwd: dir });
    },
    async stop() {
      await endPool();
      if (!liveClusters.has(cluster)) return;
      liveClusters.delete(cluster);
      await runTool('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60'], { cwd: dir }).catch(() => {
        cluster.stopSync();
      });
      if (!process.env.HERALD_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    },
    /** Synchronous last-resort stop, for process exit. */
    stopSync() {
      liveClusters.delete(cluster);
      const [cmd, argv] = asPg(path.join(PG_BIN, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '20']);
      spawnSync(cmd, argv, { cwd: dir, stdio: 'ignore' });
      if (!process.env.HERALD_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    },
    logTail(lines = 40) {
      return readTail(logFile, lines);
    },
  };
  liveClusters.add(cluster);
  return cluster;
}

/** Connects a pg.Client to url, runs fn(client), always ends the client. */
export async function withClient(url, fn) {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}
