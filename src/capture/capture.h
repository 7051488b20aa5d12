/* capture.h: the DDL that captures a table's changes into herald's log (pure functions).
 *
 * PostgreSQL: per table and operation one trigger named herald_capture_<op>. INSERT and DELETE
 * are statement-level with a transition table (cheap for bulk writes: PL/pgSQL's one INSERT …
 * SELECT per statement, the native function's batches) and UPDATE is row-level because OLD and
 * NEW must stay paired; on a partitioned table all three are row-level. The function is
 * herald.capture_native (pgext/herald_capture.c) or PL/pgSQL's capture_insert, capture_row and
 * capture_delete. Each passes the table's source string (hr_capture_source) as its argument, so
 * the log never needs to look it up. Every identifier is quoted; every literal is escaped. */
#ifndef HR_CAPTURE_H
#define HR_CAPTURE_H

#include "core/buf.h"

/* The log's source for a table: "schema.table", or "\"schema\".\"table\"" (quotes doubled) when
 * either name holds a '.' or '"' — unambiguous, and never starting with '"' in the plain form. */
void hr_capture_source(const char *schema, const char *table, hr_buf_t *out);
/* "name" with embedded quotes doubled. */
void hr_pg_quote_ident(const char *name, hr_buf_t *out);
/* 'text' with embedded single quotes doubled (standard_conforming_strings). */
void hr_pg_quote_literal(const char *text, hr_buf_t *out);
/* The capture trigger's name for one HR_OP_* bit (INSERT, UPDATE or DELETE), else NULL. */
const char *hr_capture_trigger_name(unsigned op);
/* How a table's capture triggers are made: a combination of these bits (0: PL/pgSQL, INSERT and
 * DELETE per statement, UPDATE per row). */
enum {
    HR_CAPTURE_PG_NATIVE = 1, /* herald.capture_native instead of the PL/pgSQL functions */
    HR_CAPTURE_PG_ROW = 2,    /* every operation per row: partitioned tables, whose statement-level
                                 INSERT and DELETE triggers do not fire for the rows an UPDATE
                                 moves to another partition */
};

/* The function (in schema herald) a capture trigger for op executes in style. */
const char *hr_capture_pg_function(unsigned op, unsigned style);
/* 1 when that trigger is FOR EACH ROW, 0 when FOR EACH STATEMENT (with a transition table). */
int hr_capture_pg_row_level(unsigned op, unsigned style);
/* Appends the statement creating the capture trigger for op on schema.table. */
void hr_capture_pg_create(const char *schema, const char *table, unsigned op, unsigned style,
                          hr_buf_t *out);
/* Appends the statement dropping it (IF EXISTS). */
void hr_capture_pg_drop(const char *schema, const char *table, unsigned op, hr_buf_t *out);

/* SQLite (capture_sqlite.c): per table and operation one row-level trigger that appends the row
 * as JSON built with json_object() to herald_log. Its text is generated from the table's columns,
 * so a changed table needs new triggers: apply compares the generated text with the text SQLite
 * kept in sqlite_master. Trigger names are global in an SQLite database: see
 * hr_capture_sqlite_name. */
typedef struct hr_capture_col {
    const char *name;
    int json; /* the declared type contains "JSON": valid JSON text is embedded as JSON */
} hr_capture_col_t;

/* The trigger's name: herald_capture_<op>_<table> with the table name lower-cased (SQLite names
 * are case-insensitive) when it is made of ASCII letters, digits and '_' only and is at most 64
 * bytes long; else herald_capture_<op>_<those characters of it, up to 32>_<8 hex digits of the
 * FNV-1a hash of the lower-cased name>. */
void hr_capture_sqlite_name(const char *table, unsigned op, hr_buf_t *out);
/* Appends the CREATE TRIGGER statement for op on table, without a trailing ';' (exactly the text
 * sqlite_master keeps). source is the log's source string (hr_capture_source). HR_EINVAL when
 * the table cannot be captured (more than 63 columns whose names hold '"'); nothing appended. */
int hr_capture_sqlite_create(const char *table, const char *source, const hr_capture_col_t *cols,
                             size_t ncols, unsigned op, hr_buf_t *out);
/* Appends "DROP TRIGGER IF EXISTS name;". */
void hr_capture_sqlite_drop(const char *trigger_name, hr_buf_t *out);

#endif
