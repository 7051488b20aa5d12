// herald's GraphQL engine (src/gql, run through the gql_dump helper that CMake builds from
// tests/unit/gql_dump.c) cross-checked against graphql-js 16 (the reference implementation).
// Needs no PostgreSQL and no running herald.
//
//   1. introspection: graphql-js's getIntrospectionQuery() (default and with every option the
//      engine supports) runs through the engine; buildClientSchema + assertValidSchema accept the
//      result, and printSchema of it equals graphql-js's own printSchema(buildSchema(sdl));
//   2. documents: a list of valid and invalid requests plus every request of the unit golden
//      cases (tests/unit/data/gql/*.json): the same verdict as graphql-js's parse + validate,
//      the same message and line/column for a syntax error, the same messages and locations for
//      validation errors (in any order);
//   3. mutated documents from a seeded PRNG: the same verdict, and for syntax errors the same
//      message and position;
//   4. execution: queries with a root value and variables give the same data and errors as
//      graphql-js's execute with its default resolvers; so do 2,000 requests with random
//      variables (coercion) and 2,000 with random root values (serialisation, null propagation).
//
// The helper is $HERALD_GQL_DUMP, else build/gql_dump at the repository root. A missing helper
// fails the test: skipping would let the cross-check silently stop running.
//
// Known deviations, filtered explicitly below: the engine caps nesting (256 levels in the
// parser) and the size of a request, where graphql-js has no caps; a Float literal beyond a
// double is refused (DEVIATIONS); graphql-js 16.15 throws from validate() on a subscription
// whose @skip/@include takes a variable, leaving nothing to compare.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  assertValidSchema,
  buildClientSchema,
  buildSchema,
  execute,
  getIntrospectionQuery,
  parse,
  printSchema,
  validate,
} from 'graphql';
import { prng } from '../lib/util.js';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const UNIT_DATA = path.resolve(E2E_DIR, '../unit/data/gql');
const GQL_DUMP = process.env.HERALD_GQL_DUMP
  ? path.resolve(process.env.HERALD_GQL_DUMP)
  : path.resolve(E2E_DIR, '../../build/gql_dump');
const SEED = 0x9e3779b9;
const MUTANTS = 3000;

/** Runs requests through gql_dump against the SDL; one answer per request. */
function dump(sdl, requests) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-gql-'));
  try {
    const file = path.join(dir, 'schema.graphql');
    fs.writeFileSync(file, sdl);
    const input = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const r = spawnSync(GQL_DUMP, [file], { input, maxBuffer: 256 * 1024 * 1024 });
    assert.equal(r.error, undefined, `running ${GQL_DUMP}: ${r.error?.message}`);
    assert.equal(r.status, 0, `${GQL_DUMP} exited with ${r.status} (signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.stderr.toString(), '', `${GQL_DUMP} wrote to stderr:\n${r.stderr}`);
    const out = r.stdout.toString().split('\n');
    assert.equal(out.pop(), '', 'gql_dump output ends with a newline');
    assert.equal(out.length, requests.length, 'gql_dump answers one line per request');
    return out.map((l) => JSON.parse(l));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const loc = (l) => (l ? `${l.line}:${l.column}` : '-');
/** A validation error as compared: its message and every location. */
const described = (e) => `${e.message} @ ${(e.locations ?? []).map(loc).join(' ')}`;

/** graphql-js's verdict on a document: syntax (with message and position), invalid, valid. */
function reference(schema, query) {
  let doc;
  try {
    doc = parse(query);
  } catch (e) {
    return { verdict: 'syntax', message: e.message, at: loc(e.locations?.[0]) };
  }
  let errors;
  try {
    errors = validate(schema, doc);
  } catch (e) {
    // graphql-js 16.15 throws from SingleFieldSubscriptionsRule when a subscription's
    // @skip/@include takes a variable; no verdict to compare.
    return { verdict: 'throws', message: e.message };
  }
  if (errors.length) return { verdict: 'invalid', messages: errors.map(described).sort() };
  return { verdict: 'valid' };
}

/** The engine's verdict from a gql_dump answer. */
function verdict(answer) {
  const errors = answer.errors ?? [];
  const first = errors[0];
  const code = first?.extensions?.code;
  if (code === 'GRAPHQL_PARSE_FAILED' || (code === 'LIMIT_EXCEEDED' && /^Syntax Error/.test(first.message)))
    return { verdict: 'syntax', message: first.message, at: loc(first.locations?.[0]) };
  if (code === 'LIMIT_EXCEEDED') return { verdict: 'limit' };
  if (code === 'GRAPHQL_VALIDATION_FAILED')
    return { verdict: 'invalid', messages: errors.map(described).sort() };
  // Executed, or refused for its variables or operation name: the document itself is valid.
  return { verdict: 'valid' };
}

// Herald-like: descriptions of every form, deprecations everywhere they may be, defaults of
// every kind, custom scalars, @specifiedBy, @oneOf, a directive of its own.
const REPRESENTATIVE = `
"""
herald's events, as a GraphQL schema.

  Indented lines stay indented; "quotes" and \\"""triple quotes\\""" survive.
"""
schema {
  query: Root
  mutation: Changes
  subscription: Live
}

"A point in time, RFC 3339."
scalar timestamptz @specifiedBy(url: "https://www.rfc-editor.org/rfc/rfc3339")

"Any JSON value."
scalar jsonb

scalar bigint

"Marks a field as costly."
directive @cost(weight: Int = 1, "why" reason: String) repeatable on FIELD_DEFINITION | OBJECT

"""The queries."""
type Root {
  "One event by id."
  event(id: bigint!): Event
  events(
    "How many."
    limit: Int = 100
    offset: Int = 0 @deprecated(reason: "Use cursor.")
    cursor: String = "\\u00e9t\\u00e9 \\"quoted\\"\\n"
    order: Order = DESC
    where: EventWhere = {status: [pending, failed], since: "2024-01-01T00:00:00Z", tries: {gte: -1}}
    ratio: Float = 1.5
    whole: Float = 2
    ids: [ID!] = [1, "two"]
    flags: [Boolean] = true
    nothing: String = null
  ): [Event!]! @cost(weight: 5) @cost(reason: "twice")
  triggers: [Trigger!]!
  old: String @deprecated
  older: Int @deprecated(reason: "Gone since 0.1.\\nSee the changelog.")
}

type Changes {
  redeliver(id: bigint!, at: timestamptz): Event
  pause(trigger: String!, input: Pause!): Trigger
}

type Live {
  events_stream(cursor: String, batch_size: Int = 100, where: EventWhere): [Event!]!
  event(id: bigint!): Event
}

"""An event."""
type Event @cost {
  id: bigint!
  trigger: String!
  status: Status!
  payload: jsonb
  created_at: timestamptz!
  attempts(last: Int = 5): [Attempt!]!
}

type Attempt {
  n: Int!
  ok: Boolean!
  status_code: Int
  duration_ms: Float
  error: String
}

type Trigger {
  name: String!
  paused: Boolean!
  events(limit: Int = 10): [Event!]!
}

enum Status {
  "Waiting."
  pending
  delivered
  failed
  dead @deprecated(reason: "Use failed.")
}

enum Order {
  ASC
  DESC
}

input EventWhere {
  status: [Status!]
  since: timestamptz
  tries: IntCompare
  trigger: String @deprecated(reason: "Use triggers.")
  triggers: [String!] = []
}

input IntCompare {
  gte: Int
  lte: Int
  eq: Int = 0
}

"Exactly one of them."
input Pause @oneOf {
  until: timestamptz
  seconds: Int
}
`;

const UNIT_SDL = fs.readFileSync(path.join(UNIT_DATA, 'schema.graphql'), 'utf8');

const FULL = {
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
  experimentalDirectiveDeprecation: true,
};

test('gql_dump is built', () => {
  assert.ok(fs.existsSync(GQL_DUMP), `${GQL_DUMP} is missing: build the tree (make build) or set HERALD_GQL_DUMP`);
});

test('introspection: buildClientSchema accepts it and printSchema round-trips', () => {
  for (const [name, sdl] of [
    ['representative', REPRESENTATIVE],
    ['unit', UNIT_SDL],
  ]) {
    const want = printSchema(buildSchema(sdl));
    const [plain, full] = dump(sdl, [{ query: getIntrospectionQuery() }, { query: getIntrospectionQuery(FULL) }]);
    for (const [which, answer] of [
      ['default', plain],
      ['full', full],
    ]) {
      assert.equal(answer.errors, undefined, `${name} ${which}: ${JSON.stringify(answer.errors)}`);
      const client = buildClientSchema(answer.data);
      assertValidSchema(client);
      // The default query leaves out deprecated arguments and input fields, @specifiedBy's URL,
      // @oneOf and the schema's description, so only the full one can give back every line.
      if (which === 'full') assert.equal(printSchema(client), want, `${name} ${which}`);
    }
  }
});

// Requests beyond the unit golden cases, each a known rule or corner of the grammar.
const DOCUMENTS = [
  '{ hello }',
  'query { hello }',
  'query Q($a: Int = 1, $b: [Status!] = [PENDING]) { echo(int: $a) events(filter: {status: $b}) { id } }',
  '{ a: hello b: hello(name: "x") }',
  '{ ...F } fragment F on Query { ...G } fragment G on Query { hello }',
  '{ ...F ...F } fragment F on Query { hello }',
  '{ ... @include(if: true) { hello } }',
  'query ($if: Boolean!) { hello @skip(if: $if) }',
  'query ($if: Boolean) { hello @skip(if: $if) }',
  'query ($if: Boolean = true) { hello @skip(if: $if) }',
  'query ($x: Int) @skip(if: true) { hello }',
  'query ($x: Int @deprecated) { echo(int: $x) }',
  '{ hello @deprecated }',
  'fragment F on Query @include(if: true) { hello } { ...F }',
  'subscription { eventChanged(id: 1) { id } }',
  'subscription { eventChanged(id: 1) { id } __typename }',
  'subscription ($s: Boolean!) { eventChanged(id: 1) { id } ... @skip(if: $s) { events { id } } }',
  'mutation { log(msg: "a") }',
  'mutation M($m: String!) { log(msg: $m) redeliver(id: "1") { id } }',
  '{ __typename __schema { __typename } __type(name: "Event") { name } }',
  '{ event(id: 1) { __schema { types { name } } } }',
  '{ __type(name: 1) { name } }',
  '{ echo(filter: {range: {from: 1}}) }',
  '{ echo(filter: {range: {from: null}}) }',
  '{ echo(filter: {status: PENDING}) }',
  '{ echo(filter: {status: [PENDING, "FAILED"]}) }',
  '{ echo(nested: 1) }',
  '{ echo(nested: [1, [2]]) }',
  '{ echo(nested: [[null]]) }',
  '{ echo(int: 2147483647) }',
  '{ echo(int: -2147483649) }',
  '{ echo(int: 1.0) }',
  '{ echo(float: 1e400) }',
  '{ echo(id: true) }',
  '{ echo(json: {a: [1, {b: $v}]}) }',
  'query ($v: jsonb) { echo(json: {a: [1, {b: $v}]}) }',
  'query ($v: Int) { echo(json: $v) }',
  'query ($v: [Int]) { echo(list: $v, nested: [$v]) }',
  'query ($v: [Int!]) { echo(nested: [$v]) }',
  'query ($v: Int!) { echo(list: [$v]) }',
  'query ($v: Int) { echo(list: [$v]) events(filter: {range: {from: $v}}) { id } }',
  'query ($v: Int = 3) { events(filter: {range: {from: $v}}) { id } }',
  'query ($v: EventFilter!) { events(filter: $v) { id } }',
  'query ($v: Range) { events(filter: {range: $v}) { id } }',
  'query ($v: Status) { events(status: $v) { id } }',
  'query ($v: String) { events(status: $v) { id } }',
  'query ($v: [Status]) { events(filter: {status: $v}) { id } }',
  'query A { hello } query B { hello } query A { old }',
  'query A { hello } { old }',
  '{ hello } { old }',
  '{ ...A } fragment A on Query { ...B } fragment B on Query { ...C } fragment C on Query { ...A }',
  '{ ...A } fragment A on Query { ...A ...B } fragment B on Query { ...A }',
  '{ ...A } fragment A on Query { event(id: 1) { ...E } } fragment E on Event { next { ...E } }',
  '{ ...A } fragment A on Event { id }',
  '{ events { ...Q } } fragment Q on Query { hello }',
  '{ events { ... on Query { hello } } }',
  '{ events { ... on Nope { hello } } }',
  '{ event(id: 1) { id id: trigger } }',
  '{ event(id: 1) { id } event(id: 2) { id } }',
  '{ event(id: 1) { id } e: event(id: 1) { status } }',
  '{ event(id: 1) { a: id } ... on Query { event(id: 1) { a: trigger } } }',
  '{ event(id: 1) { attempts { n } } event(id: 1) { attempts(last: 2) { n } } }',
  '{ event(id: 1) { next { a: id } } event(id: 1) { next { a: status } } }',
  '{ hello(name: "a") ...F } fragment F on Query { hello(name: "a") }',
  '{ hello(name: "a") ...F } fragment F on Query { hello(name: "b") }',
  '{ hello(name: "a") } fragment F on Query { hello(name: "b") }',
  'query ($a: String) { hello(name: $a) ...F } fragment F on Query { hello(name: "b") }',
  '{ event(id: 1) { id } ...F } fragment F on Query { event(id: "1") { id } }',
  '{ foo bar baz { x } }',
  '{ events(limit: 1, limit: 2, nope: 3, filter: {a: 1, a: 2}) { id } }',
  '{ hello @skip(if: true) @skip(if: false) @include }',
  'query ($a: Int, $a: String, $b: Nope, $c: Event) { hello }',
  '{ ...Missing ... on Event { id } }',
  'query ($v: Int) { ... on Query { events(limit: $v) { ... on Event { attempts(last: $w) { n } } } } }',
  '{ __type(name: "Query") { fields { type { fields { type { name } } } } } }',
  '{ __type(name: "Query") { fields { type { fields { type { fields { name } } } } } } }',
  '{ __schema { types { inputFields { type { inputFields { name } } } possibleTypes { name } } } }',
  '{ __schema { types { interfaces { interfaces { interfaces { name } } } } } }',
  '"""d""" query { hello }\n"d" fragment F on Query { old }',
  'type Q { a: Int }',
  'scalar Date\ninput In { a: Int }\nenum E { A }\ndirective @d on FIELD\nschema { query: Query }',
  '{ hello(name: """\n  block\n""") }',
  '{ hello(name: "\\u{1F600}\\uD83D\\uDE00") }',
  '{ hello(name: "\\u{110000}") }',
  '{ hello(name: "\\u{}") }',
  '{ hello(name: "\\uDE00") }',
  '{ hello(name: "\\x") }',
  '{ hello(name: "a\tb") }',
  '{ hello(name: "a\u0001b") }',
  '{ echo(float: .5) }',
  '{ echo(float: 5.) }',
  '{ echo(float: 1.5e) }',
  '{ echo(float: 1.5e+) }',
  '{ echo(int: 00) }',
  '{ echo(int: -01) }',
  '{ echo(int: 1_000) }',
  '{ echo(float: 1.5.) }',
  '{ echo(float: 0xFF) }',
  '{ hello(name: $) }',
  'query ($: Int) { hello }',
  'query ($a Int) { hello }',
  'query ($a: Int = ) { hello }',
  'query ($a: [Int]!) { echo(list: $a) }',
  'query ($a: [[Int]]) { echo(list: $a) }',
  '{ hello(name: "x" }',
  '{ hello(name: "x") ',
  '{ hello ... }',
  '{ hello ...on }',
  '{ hello ... on Query }',
  '{ hello @ }',
  '{ hello @skip( }',
  '{ hello @skip() }',
  '{ hello() }',
  '{ echo(list: [1, 2) }',
  '{ echo(json: {a 1}) }',
  '{ echo(json: {a: 1,, b: 2}) }',
  'query Q($a: Int) Q2 { hello }',
  'fragment F on Query',
  'fragment F on Query {}',
  'query { hello } fragment',
  'mutation',
  'mutation M',
  'mutation M($a: Int)',
  '{ hello }}',
  '}',
  '{',
  '{ hello } # trailing comment',
  '\n\n   \t  { hello \n\n  ~ }',
  '{ hello(name: "caf\u00e9") ~ }',
  'query \u00e9 { hello }',
  '{ hello }\u0000',
  "{ hello(name: 'x') }",
  '{ hello(name: "x\\\') }',
  'extend type Query { more: Int }',
  'extend type Query',
  'extend schema @skip(if: true)',
  'extend scalar Date',
  'extend union U = A | B',
  'extend enum E',
  'extend input In { a: Nope }',
  '"d" extend type Query { a: Int }',
  'interface I { a: Int }',
  'interface I implements & J & K @deprecated { a: Nope }',
  'type T implements I { a: Int } union U = | T | Event { hello }',
  'union U @skip(if: true)\n{ hello }',
  'type T { a(x: Int @skip(if: true)): Int @include(if: true) }',
  'schema @oneOf { query: Nope }',
  'directive @d(a: Nope) repeatable on FIELD | NOPE',
];

// Where herald deliberately differs: the document and herald's verdict.
const DEVIATIONS = new Map([
  // graphql-js takes a Float literal beyond a double as Infinity, which JSON cannot carry.
  ['{ echo(float: 1e400) }', { verdict: 'invalid', messages: ['Float cannot represent non numeric value: 1e400 @ 1:15'] }],
]);

test('documents: the same verdict as graphql-js parse + validate', () => {
  const schema = buildSchema(UNIT_SDL);
  const docs = [...DOCUMENTS];
  for (const f of fs.readdirSync(UNIT_DATA).filter((f) => f.endsWith('.json')))
    for (const c of JSON.parse(fs.readFileSync(path.join(UNIT_DATA, f), 'utf8'))) docs.push(c.query);
  const answers = dump(UNIT_SDL, docs.map((query) => ({ query })));
  const problems = [];
  let compared = 0;
  docs.forEach((query, i) => {
    const want = reference(schema, query);
    const got = verdict(answers[i]);
    if (got.verdict === 'limit' || want.verdict === 'throws') return; // see the top of the file
    compared++;
    try {
      assert.deepEqual(got, DEVIATIONS.get(query) ?? want);
    } catch {
      problems.push(`${JSON.stringify(query)}\n  graphql-js: ${JSON.stringify(want)}\n  herald:     ${JSON.stringify(got)}`);
    }
  });
  assert.ok(compared > 300, `only ${compared} documents compared`);
  assert.deepEqual(problems, [], problems.join('\n'));
});

test('mutated documents: the same verdict, syntax errors at the same place', () => {
  const schema = buildSchema(UNIT_SDL);
  const corpus = [...DOCUMENTS];
  for (const f of fs.readdirSync(UNIT_DATA).filter((f) => f.endsWith('.json')))
    for (const c of JSON.parse(fs.readFileSync(path.join(UNIT_DATA, f), 'utf8'))) corpus.push(c.query);
  const rand = prng(SEED);
  const int = (n) => Math.floor(rand() * n);
  const pieces = ['{', '}', '(', ')', '[', ']', '...', '$', '@', ':', '=', '!', '"', '"""', 'on', '#',
    '\\', '\n', 'null', '-0', '1.5e3', ',', ' ', '__typename', 'fragment F on Query { hello }', '...F',
    '$x', '@skip(if: true)', 'query ($x: Int) ', 'é', '\t', '|', '&'];
  // Names and values to put in place of others: mostly documents that still parse, so that
  // validation gets compared as much as the grammar.
  const words = ['hello', 'events', 'event', 'echo', 'id', 'status', 'limit', 'filter', 'name',
    'trigger', 'next', 'attempts', 'PENDING', 'DEAD', 'Event', 'Query', 'Status', 'EventFilter',
    'Int', 'Int!', '[Int]', 'String', '$x', '$id', '1', '-1', '2.5', '"s"', 'null', 'true', 'F',
    'on', '__typename', '__schema', 'pick', 'range', 'from', '{}', '[]', '{a: 1}'];
  const token = /[A-Za-z_$][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?/g;
  const docs = [];
  for (let i = 0; i < MUTANTS; i++) {
    let s = corpus[int(corpus.length)];
    if (rand() < 0.5) {
      const spots = [...s.matchAll(token)];
      if (spots.length) {
        const m = spots[int(spots.length)];
        s = s.slice(0, m.index) + words[int(words.length)] + s.slice(m.index + m[0].length);
        docs.push(s);
        continue;
      }
    }
    for (let k = rand() < 0.8 ? 1 : 2; k > 0; k--) {
      const at = int(s.length + 1);
      switch (int(4)) {
        case 0: s = s.slice(0, at) + s.slice(at + 1 + int(6)); break;
        case 1: s = s.slice(0, at) + pieces[int(pieces.length)] + s.slice(at); break;
        case 2: s = s.slice(0, at) + s.slice(at, at + 1 + int(20)) + s.slice(at); break;
        default: {
          const to = int(s.length + 1);
          s = s.slice(0, at) + s.slice(to) + s.slice(at, to);
        }
      }
    }
    docs.push(s);
  }
  const answers = dump(UNIT_SDL, docs.map((query) => ({ query })));
  const problems = [];
  const seen = { syntax: 0, invalid: 0, valid: 0 };
  docs.forEach((query, i) => {
    const want = reference(schema, query);
    const got = verdict(answers[i]);
    if (got.verdict === 'limit' || want.verdict === 'throws') return;
    if (/\b\d+(\.\d+)?[eE]\+?\d{3,}/.test(query)) return; // Float overflow, see DEVIATIONS
    seen[want.verdict]++;
    // Validation messages may legitimately come in another number (graphql-js reports some
    // rules once per pair of nodes); the verdict must agree.

    try {
      assert.deepEqual(got, want);
    } catch {
      problems.push(`${JSON.stringify(query)}\n  graphql-js: ${JSON.stringify(want)}\n  herald:     ${JSON.stringify(got)}`);
    }
  });
  assert.ok(seen.syntax > 300 && seen.invalid > 300 && seen.valid > 50, JSON.stringify(seen));
  assert.deepEqual(problems, [], `${problems.length} of ${MUTANTS}:\n` + problems.slice(0, 30).join('\n'));
});

// Execution with graphql-js's default resolvers: each field takes its parent's member.
const ROOT = {
  hello: 'hi',
  event: { id: 7, trigger: 'orders', status: 'FAILED', payload: { a: [1, 'x', null] }, tries: 2,
    attempts: [{ n: 1, ok: false, ms: 1.5 }, { n: 2, ok: true, ms: 3 }], next: null },
  events: [
    { id: '1', trigger: 't', status: 'PENDING', attempts: [] },
    { id: '2', trigger: 't', status: 'DELIVERED', attempts: [{ n: 1, ok: true }] },
  ],
  echo: { any: 'json' },
  badInt: 3000000000,
  badEnum: 'NOPE',
  notList: 5,
  nullItems: [1, null],
  nullableItems: [1, null, 'x', 2.5, true],
  old: 7,
  trigger: { name: 'orders', events: [{ id: 1, trigger: 'orders', status: 'PENDING', attempts: [] }] },
};

const EXECUTIONS = [
  { query: '{ hello __typename old }' },
  { query: '{ event(id: 1) { id trigger status payload tries attempts { n ok ms __typename } next { id } } }' },
  { query: '{ events { id status attempts { n ok } } }' },
  { query: '{ a: events { id } b: events { trigger } ...F } fragment F on Query { events { status } }' },
  { query: '{ badInt }' },
  { query: '{ badEnum }' },
  { query: '{ notList }' },
  { query: '{ nullItems }' },
  { query: '{ nullableItems }' },
  { query: '{ failRequired hello }' },
  { query: '{ hello trigger(name: "x") { name events { id status } } }' },
  { query: 'query ($y: Boolean!) { hello @include(if: $y) old @skip(if: $y) }', variables: { y: true } },
  { query: 'query ($n: Int) { event(id: 1) { attempts(last: $n) { n } } }', variables: { n: 'x' } },
  { query: 'query ($n: Int!) { event(id: 1) { id } echo(int: $n) }' },
  { query: 'query ($n: Int!) { echo(int: $n) }', variables: { n: null } },
  { query: 'query ($f: EventFilter) { echo(filter: $f) }', variables: { f: { range: { from: '1' } } } },
  { query: 'query ($f: EventFilter) { echo(filter: $f) }', variables: { f: { status: ['PENDING', 'NOPE'] } } },
  { query: 'query ($f: EventFilter) { echo(filter: $f) }', variables: { f: { nope: 1 } } },
  { query: 'query ($f: [[Int!]]) { echo(nested: $f) }', variables: { f: [[1], [null]] } },
  { query: 'query ($s: Status) { echo(status: $s) }', variables: { s: 2 } },
  { query: 'query ($i: ID) { echo(id: $i) }', variables: { i: 1.5 } },
  { query: 'query ($i: Float) { echo(float: $i) }', variables: { i: '1.5' } },
  { query: 'query A { hello } query B { old }', operationName: 'B' },
  { query: 'query A { hello } query B { old }', operationName: 'C' },
  { query: 'query A { hello } query B { old }' },
  { query: '{ __type(name: "Status") { enumValues(includeDeprecated: true) { name isDeprecated deprecationReason } } }' },
  { query: '{ __type(name: "Query") { fields { name args { name defaultValue type { name kind ofType { name } } } } } }' },
  { query: '{ __type(name: "EventFilter") { inputFields { name defaultValue } } }' },
];

test('execution: the same data and errors as graphql-js execute', () => {
  const schema = buildSchema(UNIT_SDL);
  const answers = dump(UNIT_SDL, EXECUTIONS.map((e) => ({ ...e, root: ROOT })));
  const problems = [];
  EXECUTIONS.forEach((e, i) => {
    const want = execute({
      schema,
      document: parse(e.query),
      rootValue: ROOT,
      variableValues: e.variables,
      operationName: e.operationName,
    });
    // Compare what a client sees: data, and each error's message, path and locations.
    const norm = (r) => ({
      data: r.data === undefined ? undefined : JSON.parse(JSON.stringify(r.data)),
      errors: (r.errors ?? []).map((x) => ({ message: x.message, path: x.path, locations: x.locations })),
    });
    const w = norm(want);
    const g = norm(answers[i]);
    try {
      assert.deepEqual(g, w);
    } catch {
      problems.push(`${JSON.stringify(e)}\n  graphql-js: ${JSON.stringify(w)}\n  herald:     ${JSON.stringify(g)}`);
    }
  });
  assert.deepEqual(problems, [], problems.join('\n'));
});

/** A random JSON value at most depth deep, made of the names and values that matter here. */
function randomJson(rand, depth, keys) {
  const int = (n) => Math.floor(rand() * n);
  const strings = ['PENDING', 'DEAD', 'NOPE', '', '1', '2.5', 'true', 'é', '-7'];
  switch (int(depth > 0 ? 10 : 6)) {
    case 0: return null;
    case 1: return rand() < 0.5;
    case 2: return [0, 1, -1, 2147483647, 2147483648, -2147483649, 4.0, 7][int(8)];
    case 3: return [0.5, -1.5, 1e300, 1e-7, 123.456][int(5)];
    case 4:
    case 5: return strings[int(strings.length)];
    case 6:
    case 7: return Array.from({ length: int(4) }, () => randomJson(rand, depth - 1, keys));
    default: {
      const o = {};
      for (let n = int(6); n > 0; n--) o[keys[int(keys.length)]] = randomJson(rand, depth - 1, keys);
      return o;
    }
  }
}

/** Runs requests through both engines; returns the differences (what a client sees). */
function executionDifferences(requests) {
  const schema = buildSchema(UNIT_SDL);
  const answers = dump(UNIT_SDL, requests);
  const norm = (r) =>
    JSON.stringify({
      data: r.data === undefined ? undefined : JSON.parse(JSON.stringify(r.data)),
      errors: (r.errors ?? []).map((e) => ({ message: e.message, path: e.path, locations: e.locations })),
    });
  const problems = [];
  requests.forEach((q, i) => {
    const want = norm(execute({ schema, document: parse(q.query), rootValue: q.root, variableValues: q.variables }));
    const got = norm(answers[i]);
    if (want !== got) problems.push(`${JSON.stringify(q)}\n  graphql-js: ${want}\n  herald:     ${got}`);
  });
  return problems;
}

test('random variables: the same coercion, values and errors as graphql-js', () => {
  const rand = prng(SEED + 1);
  const keys = ['trigger', 'status', 'minTries', 'range', 'from', 'to', 'id', 'nope'];
  const queries = [
    'query ($i: Int, $f: Float, $s: String, $b: Boolean, $id: ID, $st: Status) { echo(int: $i, float: $f, string: $s, bool: $b, id: $id, status: $st) }',
    'query ($l: [Int], $n: [[Int!]], $fi: EventFilter, $j: jsonb) { echo(list: $l, nested: $n, filter: $fi, json: $j) }',
    'query ($i: Int!, $fi: EventFilter!) { echo(int: $i, filter: $fi) }',
    'query ($p: Pick!) { pick(by: $p) }',
    'query ($st: [Status!]!, $r: Range) { echo(filter: {status: $st, range: $r}) }',
    'query ($r: Int = 3, $t: String) { echo(required: $r, filter: {trigger: $t}) }',
  ];
  const requests = [];
  for (let i = 0; i < 2000; i++) {
    const query = queries[Math.floor(rand() * queries.length)];
    const variables = {};
    for (const m of query.matchAll(/\$(\w+):/g)) if (rand() < 0.8) variables[m[1]] = randomJson(rand, 3, keys);
    requests.push({ query, variables, root: { echo: { x: 1 }, pick: 1 } });
  }
  const problems = executionDifferences(requests);
  assert.deepEqual(problems, [], `${problems.length} of 2000:\n` + problems.slice(0, 10).join('\n'));
});

test('random results: the same serialisation, null propagation and errors as graphql-js', () => {
  const rand = prng(SEED + 2);
  const keys = ['id', 'trigger', 'status', 'payload', 'tries', 'attempts', 'next', 'n', 'ok', 'ms', 'name', 'events'];
  const query =
    '{ hello old badInt badEnum notList nullItems nullableItems fail event(id: 1) { id trigger status payload tries attempts { n ok ms } next { id status next { tries } } } events { id status attempts { ok } } trigger(name: "x") { name events { id } } }';
  const fields = ['hello', 'old', 'badInt', 'badEnum', 'notList', 'nullItems', 'nullableItems', 'fail', 'event', 'events', 'trigger'];
  const requests = [];
  for (let i = 0; i < 2000; i++) {
    const root = {};
    for (const f of fields) if (rand() < 0.7) root[f] = randomJson(rand, 4, keys);
    requests.push({ query, root });
  }
  const problems = executionDifferences(requests);
  assert.deepEqual(problems, [], `${problems.length} of 2000:\n` + problems.slice(0, 10).join('\n'));
});
