// Driving the real herald binary.
//
//   const file = writeConfig({ database, triggers: [...] })   // or a YAML string
//   const { code, stdout, stderr } = await run(['apply', file])
//   const h = await serve(file, { env })   // resolves once stderr logs msg=ready
//   await fetch(h.url('/healthz'))         // its HTTP API (h.listen: "127.0.0.1:PORT")
//   await h.stop()                         // SIGTERM, resolves with the exit code
//
// serve() gives each herald a free port of its own (HERALD_LISTEN=127.0.0.1:0) unless the test
// sets HERALD_LISTEN in env or `listen` in the config file, so that heralds never compete for
// the default 127.0.0.1:8080.
//
// The binary is $HERALD_BIN, else build/herald at the repository root. Every process started
// here is killed by cleanup() (call it from an `after` hook) and, as a fallback, on exit.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const HERALD_BIN = process.env.HERALD_BIN
  ? path.resolve(process.env.HERALD_BIN)
  : path.resolve(here, '../../../build/herald');

const live = new Set();
let exitHook = false;
function installExitHook() {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const p of live) {
      try {
        p.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

function assertBinary() {
  if (!fs.existsSync(HERALD_BIN)) {
    throw new Error(`herald binary not found at ${HERALD_BIN} (build it, or set HERALD_BIN)`);
  }
}

let configDir = null;
let configSeq = 0;
function tmpDir() {
  if (!configDir) {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-cfg-'));
    process.on('exit', () => {
      if (!process.env.HERALD_E2E_KEEP) fs.rmSync(configDir, { recursive: true, force: true });
    });
  }
  return configDir;
}

// ---- a small YAML emitter (block style), so configs look like what users write ----

const PLAIN = /^(?:[A-Za-z_][A-Za-z0-9_.\/-]*|[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))$/;
const RESERVED = /^(?:y|n|yes|no|true|false|on|off|null|~)$/i;

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  if (PLAIN.test(s) && !RESERVED.test(s)) return s;
  return JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
}

function isScalar(v) {
  return v === null || typeof v !== 'object';
}

function emit(v, indent) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    if (v.every(isScalar)) return ` [${v.map(scalar).join(', ')}]\n`;
    let out = '\n';
    for (const item of v) {
      if (isScalar(item)) out += `${pad}- ${scalar(item)}\n`;
      else {
        const body = emitMap(item, indent + 2);
        out += `${pad}- ${body.slice(indent + 2)}`;
      }
    }
    return out;
  }
  if (v && typeof v === 'object') {
    if (Object.keys(v).length === 0) return ' {}\n';
    return '\n' + emitMap(v, indent);
  }
  return ` ${scalar(v)}\n`;
}

function emitMap(obj, indent) {
  const pad = ' '.repeat(indent);
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    out += `${pad}${scalar(k)}:${emit(v, indent + 2)}`;
  }
  return out;
}

/** Renders a config object as block-style YAML. */
export function toYaml(obj) {
  return emitMap(obj, 0);
}

/** Writes a config (object or YAML text) to a new file; returns its path. */
export function writeConfig(cfg, name) {
  const text = typeof cfg === 'string' ? cfg : toYaml(cfg);
  const file = path.join(tmpDir(), name || `herald-${process.pid}-${++configSeq}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}

function childEnv(env) {
  const e = { ...process.env, ...(env || {}) };
  for (const [k, v] of Object.entries(e)) if (v === undefined || v === null) delete e[k];
  return e;
}

/** Runs `herald ARGS` (in cwd, default this process's), resolves with { code, signal, stdout, stderr }. */
export function run(args, { env, timeoutMs = 60000, stdin, cwd } = {}) {
  assertBinary();
  installExitHook();
  return new Promise((resolve, reject) => {
    const child = spawn(HERALD_BIN, args, { env: childEnv(env), cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    if (stdin !== undefined) child.stdin.end(stdin);
    else child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      live.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Starts `herald serve -c FILE`; resolves once a stderr line contains msg=ready.
 * Returns { proc, pid, stderr (getter), stdout (getter), exited (promise of {code, signal}),
 *           waitForLog(re, timeoutMs), stop(signal = 'SIGTERM', timeoutMs) -> exit code, kill9() }.
 */
export function serve(configPath, { env, readyTimeoutMs = 30000, args = [], cwd } = {}) {
  assertBinary();
  installExitHook();
  const e = childEnv(env);
  if (!(env && env.HERALD_LISTEN !== undefined)) {
    let text = '';
    try {
      text = fs.readFileSync(path.resolve(cwd || '.', configPath), 'utf8');
    } catch {
      /* herald reports it */
    }
    if (/^listen\s*:/m.test(text)) delete e.HERALD_LISTEN;
    else e.HERALD_LISTEN = '127.0.0.1:0';
  }
  const child = spawn(HERALD_BIN, ['serve', '-c', configPath, ...args], {
    env: e,
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stderr = '';
  let stdout = '';
  const logWaiters = new Set();
  const checkLogs = () => {
    for (const w of [...logWaiters]) {
      if (w.re.test(stderr)) {
        logWaiters.delete(w);
        clearTimeout(w.timer);
        w.resolve();
      }
    }
  };
  child.stderr.on('data', (d) => {
    stderr += d;
    checkLogs();
  });
  child.stdout.on('data', (d) => (stdout += d));
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      live.delete(child);
      exitInfo = { code, signal };
      for (const w of logWaiters) {
        clearTimeout(w.timer);
        w.reject(new Error(`herald exited (code ${code}, signal ${signal}) before logging ${w.re}:\n${tail(stderr)}`));
      }
      logWaiters.clear();
      resolve(exitInfo);
    });
  });
  child.on('error', () => {});

  const h = {
    proc: child,
    pid: child.pid,
    exited,
    get stderr() {
      return stderr;
    },
    get stdout() {
      return stdout;
    },
    get running() {
      return exitInfo === null;
    },
    get exitInfo() {
      return exitInfo;
    },
    /** Resolves when the accumulated stderr matches re. */
    waitForLog(re, timeoutMs = 30000) {
      return new Promise((resolve, reject) => {
        if (re.test(stderr)) return resolve();
        if (exitInfo) return reject(new Error(`herald already exited (code ${exitInfo.code}) without logging ${re}:\n${tail(stderr)}`));
        const w = { re, resolve, reject, timer: null };
        w.timer = setTimeout(() => {
          logWaiters.delete(w);
          reject(new Error(`herald did not log ${re} within ${timeoutMs}ms:\n${tail(stderr)}`));
        }, timeoutMs);
        logWaiters.add(w);
      });
    },
    /** Sends signal, resolves with the exit code (null if killed by a signal). */
    async stop(signal = 'SIGTERM', timeoutMs = 30000) {
      if (!exitInfo) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const info = await exited;
      clearTimeout(t);
      return info.code;
    },
    async kill9() {
      if (!exitInfo) child.kill('SIGKILL');
      return exited;
    },
    tail(lines = 40) {
      return tail(stderr, lines);
    },
    /** host:port of the HTTP API, from the ready line ("off" when it runs none). */
    listen: null,
    /** http://HOST:PORT/p of the HTTP API. */
    url(p = '/') {
      if (!h.listen || h.listen === 'off') throw new Error('herald runs no HTTP API');
      return `http://${h.listen}${p.startsWith('/') ? p : '/' + p}`;
    },
  };
  return h.waitForLog(/msg=ready/, readyTimeoutMs).then(
    () => {
      const m = /msg=ready[^\n]* listen=(\S+)/.exec(stderr);
      h.listen = m ? m[1] : null;
      return h;
    },
    async (e) => {
      if (!exitInfo) child.kill('SIGKILL');
      await exited;
      throw e;
    },
  );
}

function tail(text, lines = 40) {
  return text.split('\n').slice(-lines).join('\n');
}

/** Kills every herald process this module started and that is still running. */
export async function cleanup() {
  const waits = [];
  for (const p of live) {
    waits.push(new Promise((resolve) => p.once('close', resolve)));
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  await Promise.all(waits);
}

/** `herald version` → the semver string. */
export async function heraldVersion() {
  const r = await run(['version']);
  const m = /^herald (\S+)/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`herald version failed: ${r.code} ${r.stdout} ${r.stderr}`);
  return m[1];
}
