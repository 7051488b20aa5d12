/* capture.h: the DDL that captures a table's changes into herald's log (pure functions).
 *
 * PostgreSQL: per table and operation one trigger named herald_capture_<op>. INSERT and DELETE
 * are statement-level with a transition table (one INSERT … SELECT per statement, cheap for bulk
 * writes); UPDATE is row-level because OLD and NEW must stay paired. Each passes the table's
 * source string (hr_capture_source) as its argument, so the log never needs to look it up.
 * Every identifier is quoted; every literal is escaped. */
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
/* Appends the statement creating the capture trigger for op on schema.table. */
void hr_capture_pg_create(const char *schema, const char *table, unsigned op, hr_buf_t *out);
/* Appends the statement dropping it (IF EXISTS). */
void hr_capture_pg_drop(const char *schema, const char *table, unsigned op, hr_buf_t *out);

#endif
