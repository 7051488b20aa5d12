/* capture_sqlite.c: capture DDL for SQLite (see capture.h).
 *
 * SQLite has no generic row-to-JSON function and no transition tables, so each trigger is written
 * for its table: one AFTER … FOR EACH ROW trigger per operation, whose body appends one row to
 * herald_log with the row built by json_object('col', NEW."col", …). Consequences:
 *   - the trigger text depends on the columns: apply regenerates it when the table changed;
 *   - SQLite limits a function to 127 arguments, so a row of more than 63 columns is built with
 *     json_object for the first 63 and json_set for the rest (json_set addresses a key by a path,
 *     $."name", which cannot hold a '"': names with one go into the json_object part);
 *   - a BLOB cannot go into JSON (json_object would fail the application's statement): BLOB
 *     values are captured as hex text; a column whose declared type contains JSON is embedded as
 *     JSON when its value is valid JSON, and as a string otherwise. Nothing the application can
 *     store makes capture fail.
 * Every identifier is quoted, every literal escaped. */
#include "capture/capture.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define MAX_PAIRS 63 /* (127 - 1) / 2: SQLite's default SQLITE_MAX_FUNCTION_ARG is 127 */

static const char *op_word(unsigned op)
{
    return op == HR_OP_INSERT ? "insert" : op == HR_OP_UPDATE ? "update" : "delete";
}

void hr_capture_sqlite_name(const char *table, unsigned op, hr_buf_t *out)
{
    size_t len = strlen(table);
    int plain = len > 0 && len <= 64;
    for (const char *p = table; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || *p == '_';
    hr_buf_printf(out, "herald_capture_%s_", op_word(op));
    uint32_t h = 2166136261u;
    size_t kept = 0;
    for (const char *p = table; *p; p++) {
        unsigned char c = (unsigned char)tolower((unsigned char)*p);
        h = (h ^ c) * 16777619u;
        if ((isalnum(c) || c == '_') && (plain || kept < 32)) {
            hr_buf_putc(out, (char)c);
            kept++;
        }
    }
    if (!plain) hr_buf_printf(out, "%s%08x", kept ? "_" : "", (unsigned)h);
}

static void quote_ident(const char *name, hr_buf_t *out)
{
    hr_pg_quote_ident(name, out); /* the same rule: "name" with '"' doubled */
}

static void quote_literal(const char *text, hr_buf_t *out)
{
    hr_pg_quote_literal(text, out); /* SQLite strings double '\'' too; no backslash escapes */
}

/* The JSON value of one column of the NEW or OLD row. */
static void column_value(const char *row, const hr_capture_col_t *c, hr_buf_t *out)
{
    hr_buf_t ref = HR_BUF_INIT;
    hr_buf_printf(&ref, "%s.", row);
    quote_ident(c->name, &ref);
    if (c->json)
        hr_buf_printf(out,
                      "CASE WHEN typeof(%s) = 'blob' THEN hex(%s) WHEN json_valid(%s) THEN json(%s)"
                      " ELSE %s END",
                      ref.data, ref.data, ref.data, ref.data, ref.data);
    else
        hr_buf_printf(out, "iif(typeof(%s) = 'blob', hex(%s), %s)", ref.data, ref.data, ref.data);
    hr_buf_free(&ref);
}

/* The row as a JSON object, over cols in the given order: json_object for the first MAX_PAIRS
 * columns, wrapped in one json_set per further MAX_PAIRS. */
static void row_object(const char *row, const hr_capture_col_t **cols, size_t n, hr_buf_t *out)
{
    size_t first = n < MAX_PAIRS ? n : MAX_PAIRS;
    size_t sets = (n - first + MAX_PAIRS - 1) / MAX_PAIRS;
    for (size_t k = 0; k < sets; k++)
        hr_buf_puts(out, "json_set(");
    hr_buf_puts(out, "json_object(");
    for (size_t i = 0; i < first; i++) {
        hr_buf_puts(out, i ? ",\n    " : "\n    ");
        quote_literal(cols[i]->name, out);
        hr_buf_puts(out, ", ");
        column_value(row, cols[i], out);
    }
    hr_buf_puts(out, ")");
    for (size_t i = first; i < n; i++) {
        if (i > first && (i - first) % MAX_PAIRS == 0) hr_buf_puts(out, ")");
        hr_buf_puts(out, ",\n    ");
        hr_buf_t path = HR_BUF_INIT;
        hr_buf_printf(&path, "$.\"%s\"", cols[i]->name);
        quote_literal(path.data, out);
        hr_buf_free(&path);
        hr_buf_puts(out, ", ");
        column_value(row, cols[i], out);
    }
    if (sets) hr_buf_puts(out, ")");
}

int hr_capture_sqlite_create(const char *table, const char *source, const hr_capture_col_t *cols,
                             size_t ncols, unsigned op, hr_buf_t *out)
{
    /* Names holding '"' first when json_set is needed: only json_object can take them. */
    const hr_capture_col_t **order = hr_xcalloc(ncols + 1, sizeof *order);
    size_t n = 0, quoted = 0;
    if (ncols > MAX_PAIRS) {
        for (size_t i = 0; i < ncols; i++)
            if (strchr(cols[i].name, '"')) order[n++] = &cols[i];
        quoted = n;
        for (size_t i = 0; i < ncols; i++)
            if (!strchr(cols[i].name, '"')) order[n++] = &cols[i];
    } else {
        for (size_t i = 0; i < ncols; i++)
            order[n++] = &cols[i];
    }
    if (quoted > MAX_PAIRS) {
        free(order);
        return HR_EINVAL;
    }
    hr_buf_t name = HR_BUF_INIT;
    hr_capture_sqlite_name(table, op, &name);
    hr_buf_puts(out, "CREATE TRIGGER ");
    quote_ident(name.data, out);
    hr_buf_printf(out, " AFTER %s ON ",
                  op == HR_OP_INSERT   ? "INSERT"
                  : op == HR_OP_UPDATE ? "UPDATE"
                                       : "DELETE");
    quote_ident(table, out);
    hr_buf_printf(out, " FOR EACH ROW BEGIN\n  INSERT INTO herald_log (source, op, %s) VALUES (",
                  op == HR_OP_INSERT   ? "new"
                  : op == HR_OP_UPDATE ? "old, new"
                                       : "old");
    quote_literal(source, out);
    hr_buf_printf(out, ", '%s',\n  ",
                  op == HR_OP_INSERT   ? "INSERT"
                  : op == HR_OP_UPDATE ? "UPDATE"
                                       : "DELETE");
    if (op != HR_OP_INSERT) {
        row_object("OLD", order, n, out);
        if (op == HR_OP_UPDATE) hr_buf_puts(out, ",\n  ");
    }
    if (op != HR_OP_DELETE) row_object("NEW", order, n, out);
    hr_buf_puts(out, ");\nEND");
    hr_buf_free(&name);
    free(order);
    return 0;
}

void hr_capture_sqlite_drop(const char *trigger_name, hr_buf_t *out)
{
    hr_buf_puts(out, "DROP TRIGGER IF EXISTS ");
    quote_ident(trigger_name, out);
    hr_buf_puts(out, ";\n");
}
