/* event.c: does a trigger want an event? (pure; see event.h)
 *
 * Two kinds of trigger never overlap: a table trigger (t->events == NULL) matches row events
 * (INSERT, UPDATE, DELETE, MANUAL) of exactly its schema and table (case-sensitive), when the
 * op's bit is in t->ops; an events trigger (t->events != NULL) matches only op "EMIT", by type:
 * an entry equal to the type, or an entry ending in '*' whose prefix starts the type ("*" alone
 * matches every emitted event). A schedule (t->cron set) matches only op "CRON", which no other
 * trigger matches.
 *
 * The column filter of an UPDATE parses old and new with jansson and compares each listed
 * column with json_equal; a column present on one side only counts as changed, absent on both
 * as unchanged. If old or new is missing, is not a JSON object, or does not parse (jansson
 * rejects integers beyond 64 bits, which a PostgreSQL numeric can hold), the rows cannot be
 * compared and the event matches: delivering an unneeded event is safe, dropping one is not. */
#include "dispatch/event.h"

#include <jansson.h>
#include <string.h>

/* The HR_OP_* bit of a row op; 0 for EMIT and unknown ops. */
static unsigned op_bit(const char *op)
{
    if (!strcmp(op, "INSERT")) return HR_OP_INSERT;
    if (!strcmp(op, "UPDATE")) return HR_OP_UPDATE;
    if (!strcmp(op, "DELETE")) return HR_OP_DELETE;
    if (!strcmp(op, "MANUAL")) return HR_OP_MANUAL;
    return 0;
}

static int type_matches(const char *pattern, const char *type)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*') return strncmp(pattern, type, n - 1) == 0;
    return strcmp(pattern, type) == 0;
}

static json_t *parse_object(const char *text)
{
    if (!text) return NULL;
    json_t *j = json_loads(text, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* 1 if one of t->columns differs between the old and new rows (or they cannot be compared). */
static int columns_changed(const hr_trigger_def_t *t, const hr_event_t *ev)
{
    json_t *old_row = parse_object(ev->old_json);
    json_t *new_row = parse_object(ev->new_json);
    int changed = 0;
    if (!old_row || !new_row) {
        changed = 1;
        goto out;
    }
    for (size_t i = 0; i < t->ncolumns && !changed; i++) {
        json_t *a = json_object_get(old_row, t->columns[i]);
        json_t *b = json_object_get(new_row, t->columns[i]);
        if (!a && !b) continue;
        changed = !a || !b || !json_equal(a, b);
    }
out:
    json_decref(old_row);
    json_decref(new_row);
    return changed;
}

int hr_event_matches(const hr_trigger_def_t *t, const hr_event_t *ev)
{
    if (!t || !ev || !ev->op) return 0;
    int emitted = strcmp(ev->op, "EMIT") == 0;

    /* A schedule delivers its fires only (the store read them by source = its name). */
    if (t->cron) return strcmp(ev->op, "CRON") == 0;
    if (!strcmp(ev->op, "CRON")) return 0;

    if (t->events) {
        if (!emitted || !ev->type) return 0;
        for (size_t i = 0; i < t->nevents; i++)
            if (t->events[i] && type_matches(t->events[i], ev->type)) return 1;
        return 0;
    }

    if (emitted) return 0;
    unsigned bit = op_bit(ev->op);
    if (!bit || !(t->ops & bit)) return 0;
    if (!t->schema || !t->table || !ev->schema || !ev->table) return 0;
    if (strcmp(t->schema, ev->schema) || strcmp(t->table, ev->table)) return 0;
    if (bit == HR_OP_UPDATE && t->columns) return columns_changed(t, ev);
    return 1;
}
