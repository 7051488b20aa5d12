-- The quickstart's application table, in the same SQLite file as herald's own tables
-- (scripts/run-quickstart.sh runs this through the sqlite3 shell; it is safe to run again).
CREATE TABLE IF NOT EXISTS orders (
  id INTEGER PRIMARY KEY,
  customer TEXT NOT NULL,
  total REAL NOT NULL,
  status TEXT NOT NULL DEFAULT 'new',
  items JSON,                      -- a JSON column: its value arrives in events as JSON
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
