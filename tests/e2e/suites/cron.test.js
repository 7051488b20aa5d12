// herald's cron next-fire computation (src/sched/cron.c, run through the cron_dump helper that
// CMake builds from tests/unit/cron_dump.c) cross-checked against the npm package cron-parser on
// about 3,000 random valid expressions from a seeded PRNG. Needs no PostgreSQL.
//
// The helper is $HERALD_CRON_DUMP, else build/cron_dump at the repository root. A missing helper
// fails the test: skipping would let the cross-check silently stop running.
//
// Known deviation, handled explicitly below: cron-parser 5 rejects a field whose items overlap
// ("1-5,3", "0,7", "*,5": "duplicate values found"), while Vixie cron, cronie, POSIX (a list is
// a set union) and herald accept it. For those expressions cron-parser is asked about the same
// sets written without overlap (each such field as a sorted list of its distinct values). That
// rewrite keeps the day rule unchanged: the field was not exactly "*" before and is not after.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CronExpressionParser } from 'cron-parser';
import { prng } from '../lib/util.js';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CRON_DUMP = process.env.HERALD_CRON_DUMP
  ? path.resolve(process.env.HERALD_CRON_DUMP)
  : path.resolve(E2E_DIR, '../../build/cron_dump');

const COUNT = 3000;
const FIRES = 5;
const SEED = 0x5eed_c0de;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, base: 1 },
  { name: 'day-of-week', min: 0, max: 7, names: DAYS, base: 0 },
];

function generator(rand) {
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1)); // inclusive
  const pick = (xs) => xs[int(0, xs.length - 1)];
  const chance = (p) => rand() < p;
  // Steps are mostly small (the useful ones), sometimes anything up to the field's maximum.
  const step = (f) => (chance(0.8) ? int(1, Math.min(6, f.max)) : int(1, f.max));

  // A value as text: a number, or for month and day-of-week sometimes a name in random case.
  function fmt(f, v) {
    if (!f.names || v - f.base >= f.names.length || !chance(0.4)) return String(v);
    return [...f.names[v - f.base]].map((ch) => (chance(0.5) ? ch.toUpperCase() : ch)).join('');
  }

  // One list item: its text and the values it stands for (day-of-week 7 folded into 0).
  function item(f) {
    let lo, hi, by = 1, text;
    switch (pick(['value', 'value', 'range', 'star-step', 'range-step', 'value-step'])) {
      case 'value':
        lo = hi = int(f.min, f.max);
        text = fmt(f, lo);
        break;
      case 'range':
        lo = int(f.min, f.max);
        hi = int(lo, f.max);
        text = `${fmt(f, lo)}-${fmt(f, hi)}`;
        break;
      case 'star-step':
        [lo, hi, by] = [f.min, f.max, step(f)];
        text = `*/${by}`;
        break;
      case 'range-step':
        lo = int(f.min, f.max);
        hi = int(lo, f.max);
        by = step(f);
        text = `${fmt(f, lo)}-${fmt(f, hi)}/${by}`;
        break;
      default: // 'value-step': "a/n" means "a-max/n"
        lo = int(f.min, f.max);
        [hi, by] = [f.max, step(f)];
        text = `${fmt(f, lo)}/${by}`;
    }
    const values = [];
    for (let v = lo; v <= hi; v += by) values.push(f.name === 'day-of-week' ? v % 7 : v);
    return { text, values };
  }

  // One field: its text, and the text cron-parser gets when the items overlap (see the top).
  function field(f, starChance) {
    if (chance(starChance)) return { text: '*', canonical: '*' };
    const items = [];
    if (chance(0.04)) items.push({ text: '*', values: range(f.min, f.max).map((v) => (f.name === 'day-of-week' ? v % 7 : v)) });
    // Items are kept disjoint (up to a few tries) except in one field out of ten, so that most
    // expressions reach cron-parser exactly as written.
    const overlap = items.length > 0 || chance(0.1);
    const n = pick([1, 1, 1, 2, 2, 3]);
    for (let i = 0; i < n; i++) {
      const taken = new Set(items.flatMap((it) => it.values));
      let it = item(f);
      for (let tries = 0; !overlap && tries < 20 && it.values.some((v) => taken.has(v)); tries++) it = item(f);
      if (overlap || !it.values.some((v) => taken.has(v))) items.push(it);
    }
    const all = items.flatMap((it) => it.values);
    const distinct = [...new Set(all)].sort((a, b) => a - b);
    const text = items.map((it) => it.text).join(',');
    return { text, canonical: distinct.length === all.length ? text : distinct.join(',') };
  }

  return function expression() {
    const fs5 = [
      field(FIELDS[0], 0.15),
      field(FIELDS[1], 0.25),
      field(FIELDS[2], 0.45),
      field(FIELDS[3], 0.5),
      field(FIELDS[4], 0.45),
    ];
    // Now and then days that exist only in leap years or never (29-31 February, 31 April).
    if (chance(0.05)) {
      const dom = pick(['29', '30', '31', '30,31', '29-31', '31/2']);
      const month = pick(['2', 'feb', 'Feb', '4,6', '2,4,9,11', 'FEB,apr', '2-4/2']);
      fs5[2] = { text: dom, canonical: dom };
      fs5[3] = { text: month, canonical: month };
    }
    // Spacing: any run of spaces and tabs separates fields.
    const sep = () => pick([' ', ' ', ' ', '  ', '\t', ' \t ']);
    const seps = ['', sep(), sep(), sep(), sep()];
    const expr = fs5.map((f, i) => seps[i] + f.text).join('');
    const oracleExpr = fs5.map((f, i) => seps[i] + f.canonical).join('');
    // Half the time from anywhere in 1970-2100; otherwise near the end of a month, a year or
    // around the 2100 non-leap year, where next-fire arithmetic goes wrong first.
    let after;
    if (chance(0.5)) {
      after = int(0, 4102444800);
    } else {
      const y = chance(0.3) ? int(2095, 2103) : int(1970, 2099);
      const m = int(1, 12);
      const endOfMonth = Date.UTC(y, m, 1) / 1000; // first instant of the following month
      after = endOfMonth - int(0, 3 * 86400);
    }
    return { expr, after, oracleExpr };
  };
}

function range(lo, hi) {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

// What cron-parser says, in cron_dump's output format.
function oracle(expr, after) {
  let it;
  try {
    it = CronExpressionParser.parse(expr, { currentDate: new Date(after * 1000), tz: 'UTC' });
  } catch (e) {
    // cron-parser refuses at parse time an expression whose day-of-month can never occur in its
    // months when day-of-week is "*" (30 February); herald accepts it and reports no fire time.
    if (/Invalid explicit day of month definition/.test(e.message)) return 'none';
    return `cron-parser error: ${e.message}`;
  }
  const out = [];
  for (let i = 0; i < FIRES; i++) {
    try {
      out.push(String(it.next().getTime() / 1000));
    } catch (e) {
      out.push(`cron-parser error: ${e.message}`);
      break;
    }
  }
  return out.join(' ');
}

function runDump(lines) {
  if (!fs.existsSync(CRON_DUMP)) {
    assert.fail(
      `cron_dump not found at ${CRON_DUMP}: build it (cmake --build build --target cron_dump, ` +
        'or make build) or point HERALD_CRON_DUMP at it',
    );
  }
  const r = spawnSync(CRON_DUMP, [], {
    input: lines.map(([e, t]) => `${e}\t${t}\n`).join(''),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(r.error, undefined, `running ${CRON_DUMP}: ${r.error?.message}`);
  assert.equal(r.status, 0, `${CRON_DUMP} exited with ${r.status} (signal ${r.signal}):\n${r.stderr}`);
  assert.equal(r.stderr, '', `${CRON_DUMP} wrote to stderr:\n${r.stderr}`);
  const out = r.stdout.split('\n');
  assert.equal(out.pop(), '', 'cron_dump output ends with a newline');
  assert.equal(out.length, lines.length, 'cron_dump answers one line per input line');
  return out;
}

// Runs every case through cron_dump and cron-parser; returns the disagreements, described, and
// cron-parser's answers.
function compare(cases) {
  const got = runDump(cases.map((c) => [c.expr, c.after]));
  const wants = cases.map((c) => oracle(c.oracleExpr, c.after));
  const iso = (s) => (/^-?\d+$/.test(s) ? new Date(Number(s) * 1000).toISOString() : s);
  const bad = [];
  cases.forEach((c, i) => {
    if (got[i] === wants[i]) return;
    bad.push(
      `${JSON.stringify(c.expr)} after ${c.after} (${iso(String(c.after))})` +
        (c.oracleExpr !== c.expr ? ` [cron-parser given ${JSON.stringify(c.oracleExpr)}]` : '') +
        `\n    herald:      ${got[i].startsWith('error') ? got[i] : got[i].split(' ').map(iso).join(' ')}` +
        `\n    cron-parser: ${wants[i].startsWith('cron-parser') ? wants[i] : wants[i].split(' ').map(iso).join(' ')}`,
    );
  });
  return { bad, wants };
}

test(`cron: next ${FIRES} fire times agree with cron-parser on ${COUNT} random expressions`, (t) => {
  const next = generator(prng(SEED));
  const cases = Array.from({ length: COUNT }, next);
  const { bad, wants } = compare(cases);
  const rewritten = cases.filter((c) => c.oracleExpr !== c.expr).length;
  const never = wants.filter((w) => w === 'none').length;
  const bothDays = cases.filter((c) => {
    const f = c.expr.trim().split(/\s+/);
    return f[2] !== '*' && f[4] !== '*';
  }).length;
  t.diagnostic(
    `${COUNT} expressions: ${bothDays} restrict both day fields, ${never} never fire, ` +
      `${rewritten} with overlapping items rewritten for cron-parser`,
  );
  assert.equal(bad.length, 0, `${bad.length} of ${COUNT} disagree:\n${bad.slice(0, 20).join('\n')}`);
  // The mix the generator aims for, so that a change to it cannot quietly thin the check out.
  assert.ok(bothDays > COUNT / 5, `only ${bothDays} expressions restrict both day fields`);
  assert.ok(never > 10, `only ${never} expressions that never fire`);
  assert.ok(rewritten < COUNT / 3, `${rewritten} expressions needed rewriting for cron-parser`);
});

test('cron: macros, names, Sunday as 0 and 7, and the day rule agree with cron-parser', () => {
  const after = [0, 951782400 /* 2000-02-29 */, 1735689540 /* 2024-12-31T23:59 */, 4107542399 /* 2100-02-28T23:59:59 */];
  // cron-parser has no @midnight; herald's @midnight is @daily, so cron-parser gets @daily.
  const exprs = [
    ['@yearly'], ['@annually'], ['@monthly'], ['@weekly'], ['@daily'], ['@midnight', '@daily'], ['@hourly'],
    ['0 0 * * 0'], ['0 0 * * 7'], ['0 0 * * SUN'], ['0 0 * * 5-7'],
    ['0 0 13 * 5'], ['0 0 13 * *'], ['0 0 * * 5'], ['0 0 */2 * 1'], ['0 0 1-31 * 1'], ['0 0 15 * */3'],
    ['0 0 29 2 *'], ['0 0 31 2 *'], ['0 0 30,31 2 *'], ['0 0 31 2 1'], ['0 0 31 4,6,9,11 *'],
    ['30 23 31 * *'], ['59 23 31 12 *'], ['*/7 */5 */9 */5 */3'], ['5/15 1/6 2/10 feb/3 mon/2'],
    [' \t0  12\t* JAN,Jul mon-FRI \t'],
  ];
  const cases = exprs.flatMap(([expr, oracleExpr]) => after.map((a) => ({ expr, after: a, oracleExpr: oracleExpr ?? expr })));
  const { bad } = compare(cases);
  assert.equal(bad.length, 0, `${bad.length} of ${cases.length} disagree:\n${bad.join('\n')}`);
});
