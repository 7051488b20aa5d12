/* capture_pg.c: capture DDL for PostgreSQL (see capture.h). */
#include "capture/capture.h"

#include <string.h>

#include "config/config.h"

void hr_capture_source(const char *schema, const char *table, hr_buf_t *out)
{
    if (strpbrk(schema, ".\"") || strpbrk(table, ".\"")) {
        hr_pg_quote_ident(schema, out);
        hr_buf_putc(out, '.');
        hr_pg_quote_ident(table, out);
    } else {
        hr_buf_printf(out, "%s.%s", schema, table);
    }
}

static void quote_with(const char *s, char q, hr_buf_t *out)
{
    hr_buf_putc(out, q);
    for (; *s; s++) {
        if (*s == q) hr_buf_putc(out, q);
        hr_buf_putc(out, *s);
    }
    hr_buf_putc(out, q);
}

void hr_pg_quote_ident(const char *name, hr_buf_t *out)
{
    quote_with(name, '"', out);
}

void hr_pg_quote_literal(const char *text, hr_buf_t *out)
{
    quote_with(text, '\'', out);
}

const char *hr_capture_trigger_name(unsigned op)
{
    switch (op) {
    case HR_OP_INSERT:
        return "herald_capture_insert";
    case HR_OP_UPDATE:
        return "herald_capture_update";
    case HR_OP_DELETE:
        return "herald_capture_delete";
    default:
        return NULL;
    }
}

static void table_ref(const char *schema, const char *table, hr_buf_t *out)
{
    hr_pg_quote_ident(schema, out);
    hr_buf_putc(out, '.');
    hr_pg_quote_ident(table, out);
}

const char *hr_capture_pg_function(unsigned op, unsigned style)
{
    if (style & HR_CAPTURE_PG_NATIVE) return "capture_native";
    if ((style & HR_CAPTURE_PG_ROW) || op == HR_OP_UPDATE) return "capture_row";
    return op == HR_OP_INSERT ? "capture_insert" : "capture_delete";
}

int hr_capture_pg_row_level(unsigned op, unsigned style)
{
    return (style & HR_CAPTURE_PG_ROW) || op == HR_OP_UPDATE;
}

void hr_capture_pg_create(const char *schema, const char *table, unsigned op, unsigned style,
                          hr_buf_t *out)
{
    hr_buf_t src = HR_BUF_INIT;
    hr_capture_source(schema, table, &src);
    hr_buf_printf(out, "CREATE TRIGGER %s AFTER %s ON ", hr_capture_trigger_name(op),
                  op == HR_OP_INSERT   ? "INSERT"
                  : op == HR_OP_UPDATE ? "UPDATE"
                                       : "DELETE");
    table_ref(schema, table, out);
    if (hr_capture_pg_row_level(op, style))
        hr_buf_puts(out, " FOR EACH ROW");
    else if (op == HR_OP_INSERT)
        hr_buf_puts(out, " REFERENCING NEW TABLE AS herald_new FOR EACH STATEMENT");
    else
        hr_buf_puts(out, " REFERENCING OLD TABLE AS herald_old FOR EACH STATEMENT");
    hr_buf_printf(out, " EXECUTE FUNCTION herald.%s(", hr_capture_pg_function(op, style));
    hr_pg_quote_literal(src.data, out);
    hr_buf_puts(out, ");\n");
    hr_buf_free(&src);
}

void hr_capture_pg_drop(const char *schema, const char *table, unsigned op, hr_buf_t *out)
{
    hr_buf_printf(out, "DROP TRIGGER IF EXISTS %s ON ", hr_capture_trigger_name(op));
    table_ref(schema, table, out);
    hr_buf_puts(out, ";\n");
}
