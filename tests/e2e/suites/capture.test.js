// Capture must never get in the application's way: tables whose columns share names with what the
// capture functions use internally (row aliases, variables, log columns) are captured exactly,
// for single-row and bulk statements alike.
import assert from 'node:assert/strict';
import { forBackends, stack, useCluster } from '../lib/fixture.js';

const cluster = useCluster();

const AWKWARD = `CREATE TABLE awkward (
  id int PRIMARY KEY, n int, o int, r int, s text, source text, op text, new text, old text,
  session text, herald_session_ text, seq int)`;

forBackends('columns named like capture internals are captured exactly (single and bulk)', async (t, backend) => {
  const s = await stack(cluster, {
    backend,
    sql: { postgres: AWKWARD, sqlite: AWKWARD },
    triggers: (r) => [{
      name: 'awkward_events', table: 'public.awkward', operations: ['insert', 'delete'],
      webhook: r.url('/awkward'), start: 'beginning',
    }],
  });
  const row = (id) => ({
    id, n: id * 10, o: id * 100, r: id + 1, s: `s${id}`, source: 'src', op: 'op', new: 'nw', old: 'od',
    session: 'sess', herald_session_: 'hs', seq: 7,
  });
  const cols = Object.keys(row(1));
  const values = (id) => cols.map((c) => row(id)[c]);
  const placeholders = (k) => cols.map((_, i) => `$${k * cols.length + i + 1}`).join(', ');
  // One single-row statement, then one statement inserting three rows, then a bulk delete.
  await s.db.query(`INSERT INTO awkward (${cols.join(', ')}) VALUES (${placeholders(0)})`, values(1));
  await s.db.query(
    `INSERT INTO awkward (${cols.join(', ')}) VALUES (${placeholders(0)}), (${placeholders(1)}), (${placeholders(2)})`,
    [...values(2), ...values(3), ...values(4)],
  );
  await s.db.query('DELETE FROM awkward WHERE id IN (2, 3)');
  await s.receiver.waitFor(6);
  const got = s.receiver.requests.map((q) => q.json.event);
  const inserts = got.filter((e) => e.op === 'INSERT').map((e) => e.data.new).sort((a, b) => a.id - b.id);
  const deletes = got.filter((e) => e.op === 'DELETE').map((e) => e.data.old).sort((a, b) => a.id - b.id);
  assert.deepEqual(inserts, [row(1), row(2), row(3), row(4)]);
  assert.deepEqual(deletes, [row(2), row(3)]);
});
