// SQLite databases for the end-to-end tests, through Debian's `sqlite3` command-line shell: npm
// native modules (better-sqlite3, sqlite3) cannot be built here, and the shell is a real client
// of the same library herald links.
//
//   const db = sqliteDb('/tmp/x/app.db')
//   await db.query('SELECT * FROM herald_log WHERE source = $1', ['public.orders'])  -> { rows }
//   await db.exec('CREATE TABLE …; INSERT …')          // a script, in one process
//   const w = startWriter(db.file)                      // a long-running application process
//   w.write("INSERT INTO items (k) VALUES (1);") … const { code, stderr } = await w.end()
//
// Parameters ($1, $2, … as with pg) are inlined as SQL literals: numbers, strings, null,
// booleans (1/0), Buffers (X'…'), objects and arrays (their JSON text). Each query runs in a new
// shell process (a few milliseconds) with a 5 s busy timeout; `-json` output gives numbers as
// numbers and text as strings.
import { spawn } from 'node:child_process';

export const SQLITE_BIN = process.env.SQLITE_BIN || 'sqlite3';

function literal(v) {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number' || typeof v === 'bigint') {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`cannot inline ${v}`);
    return String(v);
  }
  if (Buffer.isBuffer(v)) return `X'${v.toString('hex')}'`;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return `'${s.replace(/'/g, "''")}'`;
}

/** Replaces $1…$n outside quotes and comments with the literals of params. */
export function inline(sql, params = []) {
  let out = '';
  for (let i = 0; i < sql.length;) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      for (; j < sql.length; j++) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) j++;
          else break;
        }
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' && sql[i + 1] === '-') {
      const j = sql.indexOf('\n', i);
      const end = j < 0 ? sql.length : j;
      out += sql.slice(i, end);
      i = end;
    } else if (c === '$' && /[0-9]/.test(sql[i + 1] || '')) {
      let j = i + 1;
      while (j < sql.length && /[0-9]/.test(sql[j])) j++;
      const n = Number(sql.slice(i + 1, j));
      if (n < 1 || n > params.length) throw new Error(`no parameter $${n} for: ${sql}`);
      out += literal(params[n - 1]);
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Runs the shell on file with script on stdin; resolves with stdout, rejects with stderr. */
function shell(file, script, { json = true } = {}) {
  return new Promise((resolve, reject) => {
    const args = [...(json ? ['-json'] : []), '-bail', '-cmd', '.timeout 5000', file];
    const child = spawn(SQLITE_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 && !err) resolve(out);
      else reject(new Error(`sqlite3 ${file} failed (exit ${code}): ${err.trim()}\n--- script ---\n${script.slice(0, 2000)}`));
    });
    child.stdin.end(script.trimEnd().endsWith(';') ? `${script}\n` : `${script};\n`);
  });
}

/** Parses the -json output of one or more statements: the rows of the last result set. */
function parseRows(out) {
  const text = out.trim();
  if (!text) return [];
  const sets = JSON.parse(`[${text.replace(/\]\n\[/g, '],[')}]`);
  return sets[sets.length - 1];
}

/** A handle on an SQLite database file with pg's query() shape. */
export function sqliteDb(file) {
  return {
    backend: 'sqlite',
    file,
    url: `sqlite:${file}`,
    async query(sql, params) {
      return { rows: parseRows(await shell(file, inline(sql, params))) };
    },
    async exec(script) {
      await shell(file, script, { json: false });
    },
    async end() {},
  };
}

/**
 * An application process writing to file while herald runs: one `sqlite3` shell fed statements
 * on its stdin, each an autocommit transaction unless the text says otherwise. It sets a busy
 * timeout (as an application sharing a file with another process should; 20 s, because writers
 * at full speed on a loaded machine can starve one another for longer than the usual 5 s) and
 * WAL's usual synchronous=NORMAL. end() closes stdin and resolves with { code, stderr } once it exits; an
 * SQLITE_BUSY ("database is locked") or any other error shows in stderr.
 */
export function startWriter(file) {
  const child = spawn(SQLITE_BIN, ['-cmd', '.timeout 20000', file], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  child.stdin.on('error', () => {});
  child.stdin.write('PRAGMA synchronous = NORMAL;\n');
  return {
    pid: child.pid,
    /** Queues SQL text; resolves when the pipe accepted it (back-pressure). */
    write(sql) {
      return new Promise((resolve) => {
        if (child.stdin.write(`${sql}\n`)) resolve();
        else child.stdin.once('drain', resolve);
      });
    },
    get stderr() {
      return stderr;
    },
    end() {
      child.stdin.end();
      return exited;
    },
    kill() {
      child.kill('SIGKILL');
      return exited;
    },
  };
}
