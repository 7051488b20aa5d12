/* graphql_svc.c: /v1/graphql's service — herald's own state as a GraphQL schema (the SDL below),
 * the resolvers of queries and mutations over the store, and the entry points the transport
 * calls (graphql_int.h). Subscriptions are the hub's (graphql_hub.c).
 *
 * Queries and mutations run the store's synchronous operations on the loop: one short
 * transaction each, as the metadata API does (api.h). Values cross into the engine in the
 * store's JSON shapes (store.h), reshaped here where the schema differs: a delivery's attempts
 * count becomes attempts_count and its attempts the list of that trigger's attempts.
 *
 * Sharing results. A subscription's results are executed and serialised once per group of
 * subscribers that sent the same document, operation name and variables, the events_stream
 * cursor aside (group_key): prepare remembers that key per prepared subscription (pending_key_t,
 * by operation) until subscribe takes the operation; keys of operations never subscribed expire
 * after PENDING_KEY_TTL_US. */
#include "api/graphql_svc_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/text.h"

#define EVENTS_DEFAULT_LIMIT 100
#define EVENTS_MAX_LIMIT 1000
#define EVENT_ATTEMPTS_MAX 1000
#define PENDING_KEY_TTL_US (60 * 1000000ull)

/* ------------------------------------------------------------------------------------------ */
/* The schema                                                                                 */

static const char schema_sdl[] =
    "\"\"\"A 64-bit integer: a log sequence number or a count.\"\"\"\n"
    "scalar bigint\n"
    "\"\"\"A UUID in its text form.\"\"\"\n"
    "scalar uuid\n"
    "\"\"\"An RFC 3339 time; herald answers in UTC with microseconds.\"\"\"\n"
    "scalar timestamptz\n"
    "\"\"\"Any JSON value.\"\"\"\n"
    "scalar jsonb\n"
    "\n"
    "\"\"\"Where an event stands with one trigger.\"\"\"\n"
    "enum delivery_state {\n"
    "  \"\"\"Not delivered yet: not read by the trigger yet, or queued again (invoke,"
    " redeliver, replay).\"\"\"\n"
    "  pending\n"
    "  \"\"\"Answered with a 2xx.\"\"\"\n"
    "  delivered\n"
    "  \"\"\"Failed; another attempt is due at next_attempt_at.\"\"\"\n"
    "  retrying\n"
    "  \"\"\"Failed and out of retries (or cancelled); redeliver to try again.\"\"\"\n"
    "  dead\n"
    "}\n"
    "enum order_by { asc asc_nulls_first asc_nulls_last desc desc_nulls_first desc_nulls_last }\n"
    "enum cursor_ordering { ASC DESC }\n"
    "\n"
    "input bigint_comparison_exp { _eq: bigint _neq: bigint _gt: bigint _gte: bigint"
    " _lt: bigint _lte: bigint _in: [bigint!] _nin: [bigint!] }\n"
    "input uuid_comparison_exp { _eq: uuid _neq: uuid _in: [uuid!] _nin: [uuid!] }\n"
    "input String_comparison_exp { _eq: String _neq: String _in: [String!] _nin: [String!] }\n"
    "input timestamptz_comparison_exp { _eq: timestamptz _neq: timestamptz _gt: timestamptz"
    " _gte: timestamptz _lt: timestamptz _lte: timestamptz _in: [timestamptz!]"
    " _nin: [timestamptz!] }\n"
    "input delivery_state_comparison_exp { _eq: delivery_state _neq: delivery_state"
    " _in: [delivery_state!] _nin: [delivery_state!] }\n"
    "\"\"\"Holds when one of the event's deliveries matches (not in events_stream).\"\"\"\n"
    "input deliveries_bool_exp { trigger: String_comparison_exp"
    " state: delivery_state_comparison_exp }\n"
    "\"\"\"A filter on events; the fields of one object must all hold.\"\"\"\n"
    "input events_bool_exp {\n"
    "  _and: [events_bool_exp!]\n"
    "  _or: [events_bool_exp!]\n"
    "  _not: events_bool_exp\n"
    "  seq: bigint_comparison_exp\n"
    "  id: uuid_comparison_exp\n"
    "  source: String_comparison_exp\n"
    "  op: String_comparison_exp\n"
    "  created_at: timestamptz_comparison_exp\n"
    "  deliveries: deliveries_bool_exp\n"
    "}\n"
    "input events_order_by { seq: order_by id: order_by source: order_by op: order_by"
    " created_at: order_by }\n"
    "input events_stream_cursor_value_input {\n"
    "  \"\"\"Stream the events after this seq (exclusive): 0 for the whole log, the last seq"
    " received to resume.\"\"\"\n"
    "  seq: bigint\n"
    "}\n"
    "input events_stream_cursor_input { initial_value: events_stream_cursor_value_input!"
    " ordering: cursor_ordering = ASC }\n"
    "\n"
    "\"\"\"One event of herald's log: a captured row change, an emitted event, a manual"
    " invocation or a schedule's fire.\"\"\"\n"
    "type Event {\n"
    "  id: uuid!\n"
    "  \"\"\"Position in the log: ascending, unique, with gaps.\"\"\"\n"
    "  seq: bigint!\n"
    "  created_at: timestamptz!\n"
    "  \"\"\"schema.table for row changes, the type for emitted events, the schedule's"
    " name for fires.\"\"\"\n"
    "  source: String!\n"
    "  \"\"\"INSERT, UPDATE, DELETE, MANUAL, EMIT, CRON or ONE_OFF.\"\"\"\n"
    "  op: String!\n"
    "  \"\"\"{old, new}: the row before and after, or the payload in new.\"\"\"\n"
    "  data: jsonb!\n"
    "  session_variables: jsonb\n"
    "  \"\"\"One per trigger that attempted or queued the event.\"\"\"\n"
    "  deliveries: [Delivery!]!\n"
    "}\n"
    "type Delivery {\n"
    "  trigger: String!\n"
    "  state: delivery_state!\n"
    "  attempts_count: Int!\n"
    "  next_attempt_at: timestamptz\n"
    "  last_error: String\n"
    "  delivered_at: timestamptz\n"
    "  \"\"\"Newest first.\"\"\"\n"
    "  attempts(limit: Int = 10, offset: Int = 0): [Attempt!]!\n"
    "}\n"
    "\"\"\"One HTTP call.\"\"\"\n"
    "type Attempt {\n"
    "  \"\"\"1 for the first attempt.\"\"\"\n"
    "  attempt: Int!\n"
    "  at: timestamptz!\n"
    "  \"\"\"The HTTP status; null when there was no response.\"\"\"\n"
    "  status: Int\n"
    "  latency_ms: Float\n"
    "  error: String\n"
    "  \"\"\"The start of the response body.\"\"\"\n"
    "  response: String\n"
    "}\n"
    "type RetryConf {\n"
    "  num_retries: Int!\n"
    "  interval_seconds: Float!\n"
    "  \"\"\"exponential or fixed\"\"\"\n"
    "  backoff: String!\n"
    "  max_interval_seconds: Float!\n"
    "  timeout_seconds: Float!\n"
    "}\n"
    "type Trigger {\n"
    "  name: String!\n"
    "  \"\"\"schema.table for table triggers; null for event-type triggers.\"\"\"\n"
    "  table: String\n"
    "  \"\"\"insert, update, delete, manual.\"\"\"\n"
    "  operations: [String!]!\n"
    "  \"\"\"UPDATE fires only when one of these changed; null: any.\"\"\"\n"
    "  columns: [String!]\n"
    "  payload_columns: [String!]\n"
    "  \"\"\"Emitted event types (a trailing * is a prefix); null for table triggers.\"\"\"\n"
    "  events: [String!]\n"
    "  \"\"\"As configured: {{VAR}} is not expanded.\"\"\"\n"
    "  webhook: String!\n"
    "  \"\"\"The names of the configured headers (values are not shown).\"\"\"\n"
    "  headers: [String!]!\n"
    "  retry: RetryConf!\n"
    "  concurrency: Int!\n"
    "  signed: Boolean!\n"
    "}\n"
    "type Schedule {\n"
    "  name: String!\n"
    "  \"\"\"Five-field cron expression, UTC.\"\"\"\n"
    "  cron: String!\n"
    "  webhook: String!\n"
    "  payload: jsonb\n"
    "  tolerance_seconds: Float!\n"
    "  comment: String\n"
    "  headers: [String!]!\n"
    "  retry: RetryConf!\n"
    "}\n"
    "type TriggerStats {\n"
    "  trigger: String!\n"
    "  \"\"\"Matching events after the trigger's cursor.\"\"\"\n"
    "  backlog: bigint!\n"
    "  \"\"\"Events waiting for a retry (or queued again).\"\"\"\n"
    "  delayed: bigint!\n"
    "  dead: bigint!\n"
    "  \"\"\"Age of the oldest undelivered event.\"\"\"\n"
    "  lag_seconds: Float\n"
    "  last_delivery_at: timestamptz\n"
    "}\n"
    "\n"
    "type Query {\n"
    "  triggers: [Trigger!]!\n"
    "  schedules: [Schedule!]!\n"
    "  \"\"\"Events of the log; by seq ascending unless order_by says otherwise. limit: 100"
    " by default, at most 1000.\"\"\"\n"
    "  events(where: events_bool_exp, order_by: [events_order_by!], limit: Int, offset: Int):"
    " [Event!]!\n"
    "  event(id: uuid!): Event\n"
    "  stats: [TriggerStats!]!\n"
    "}\n"
    "type Mutation {\n"
    "  \"\"\"Appends a custom event, as herald.emit does in SQL.\"\"\"\n"
    "  emit(type: String!, payload: jsonb): Event!\n"
    "  \"\"\"Queues the event again, for one trigger or for every trigger that attempted or"
    " queued it.\"\"\"\n"
    "  redeliver(event_id: uuid!, trigger: String): Event!\n"
    "  \"\"\"A manual event for one trigger (operations must include manual).\"\"\"\n"
    "  invoke(trigger: String!, payload: jsonb): Event!\n"
    "}\n"
    "type Subscription {\n"
    "  \"\"\"New events in seq order, from the cursor on, batch_size at most per message:"
    " no gap, no repeat.\"\"\"\n"
    "  events_stream(cursor: [events_stream_cursor_input]!, batch_size: Int!,"
    " where: events_bool_exp): [Event!]!\n"
    "  \"\"\"The event now, then again each time its delivery state changes; nothing until"
    " it exists.\"\"\"\n"
    "  event(id: uuid!): Event\n"
    "  \"\"\"The per-trigger statistics, again when they change (at most once a second).\"\"\"\n"
    "  stats: [TriggerStats!]!\n"
    "}\n";

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

static json_t *fail(char **error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *fail(char **error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(error, fmt, ap) < 0) abort();
    va_end(ap);
    return NULL;
}

static json_t *strings(char *const *v, size_t n)
{
    if (!v) return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *retry_json(const hr_retry_t *r)
{
    return json_pack("{s:i, s:f, s:s, s:f, s:f}", "num_retries", r->max_retries, "interval_seconds",
                     (double)r->interval_ms / 1000.0, "backoff",
                     r->backoff == HR_BACKOFF_FIXED ? "fixed" : "exponential",
                     "max_interval_seconds", (double)r->max_interval_ms / 1000.0, "timeout_seconds",
                     (double)r->timeout_ms / 1000.0);
}

static json_t *header_names(const hr_trigger_def_t *t)
{
    json_t *a = json_array();
    for (size_t i = 0; i < t->nheaders; i++)
        json_array_append_new(a, json_string(t->headers[i].name));
    return a;
}

static json_t *trigger_json(const hr_trigger_def_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "table",
                        t->table ? json_sprintf("%s.%s", t->schema, t->table) : json_null());
    json_t *ops = json_array();
    const char *names[] = {"insert", "update", "delete", "manual"};
    for (int i = 0; i < 4; i++)
        if (t->ops & (1u << i)) json_array_append_new(ops, json_string(names[i]));
    json_object_set_new(o, "operations", ops);
    json_object_set_new(o, "columns", strings(t->columns, t->ncolumns));
    json_object_set_new(o, "payload_columns", strings(t->payload, t->npayload));
    json_object_set_new(o, "events", strings(t->events, t->nevents));
    json_object_set_new(o, "webhook", json_string(t->webhook ? t->webhook : ""));
    json_object_set_new(o, "headers", header_names(t));
    json_object_set_new(o, "retry", retry_json(&t->retry));
    json_object_set_new(o, "concurrency", json_integer(t->concurrency));
    json_object_set_new(o, "signed", json_boolean(t->secret != NULL));
    return o;
}

static json_t *schedule_json(const hr_trigger_def_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "cron", json_string(t->cron));
    json_object_set_new(o, "webhook", json_string(t->webhook ? t->webhook : ""));
    json_t *payload = t->cron_payload ? json_loads(t->cron_payload, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "payload", payload ? payload : json_null());
    json_object_set_new(o, "tolerance_seconds", json_real((double)t->tolerance_ms / 1000.0));
    json_object_set_new(o, "comment", t->comment ? json_string(t->comment) : json_null());
    json_object_set_new(o, "headers", header_names(t));
    json_object_set_new(o, "retry", retry_json(&t->retry));
    return o;
}

/* Reshapes the store's event (with deliveries and attempts) into the schema's: each delivery
 * gets attempts_count and its trigger's attempts; the event-level list goes. */
static void reshape_event(json_t *e)
{
    json_t *all = json_object_get(e, "attempts");
    json_t *ds = json_object_get(e, "deliveries");
    size_t i;
    json_t *d;
    json_array_foreach(ds, i, d)
    {
        json_object_set(d, "attempts_count", json_object_get(d, "attempts"));
        const char *trig = json_string_value(json_object_get(d, "trigger"));
        json_t *mine = json_array();
        size_t k;
        json_t *a;
        json_array_foreach(all, k, a)
        {
            const char *t = json_string_value(json_object_get(a, "trigger"));
            if (t && trig && strcmp(t, trig) == 0) json_array_append(mine, a);
        }
        json_object_set_new(d, "attempts", mine);
    }
    if (!ds) json_object_set_new(e, "deliveries", json_array());
    json_object_del(e, "attempts");
}

json_t *hr_gqlsvc_load_event(hr_gqlsvc_t *svc, const char *id, int *notfound, char **error)
{
    hr_api_ctx_t *ctx = svc->ctx;
    json_t *e = NULL;
    hr_err_t err = {0};
    *notfound = 0;
    if (!hr_is_uuid(id)) {
        *notfound = 1;
        return NULL;
    }
    char low[40];
    snprintf(low, sizeof low, "%s", id);
    for (char *c = low; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    int rc = ctx->ops->event(ctx->store, low, EVENT_ATTEMPTS_MAX, 0, &e, &err);
    if (rc == HR_ENOTFOUND) {
        *notfound = 1;
        return NULL;
    }
    if (rc) {
        *error = hr_xasprintf("reading event %s: %s", id, err.msg);
        return NULL;
    }
    reshape_event(e);
    return e;
}

json_t *hr_gqlsvc_load_stats(const hr_store_ops_t *ops, hr_store_t *st, hr_err_t *err)
{
    json_t *out = NULL;
    if (ops->status(st, &out, err) != 0) return NULL;
    return out; /* the status shape is TriggerStats' */
}

/* The stored definitions; cron 1: the schedules, 0: the triggers. */
static json_t *definitions(hr_gqlsvc_t *svc, int cron, char **error)
{
    hr_api_ctx_t *ctx = svc->ctx;
    hr_trigger_def_t *defs = NULL;
    size_t n = 0;
    hr_err_t err = {0};
    if (ctx->ops->load_triggers(ctx->store, &defs, &n, &err) != 0)
        return fail(error, "reading the definitions: %s", err.msg);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!defs[i].cron == !cron)
            json_array_append_new(a, cron ? schedule_json(&defs[i]) : trigger_json(&defs[i]));
        hr_trigger_def_clear(&defs[i]);
    }
    free(defs);
    return a;
}

/* ------------------------------------------------------------------------------------------ */
/* Resolvers                                                                                  */

static json_t *q_triggers(const hr_gql_resolve_info_t *info, char **error)
{
    return definitions(info->ctx, 0, error);
}

static json_t *q_schedules(const hr_gql_resolve_info_t *info, char **error)
{
    return definitions(info->ctx, 1, error);
}

/* An optional Int argument; def when absent or null. */
static int int_arg(const json_t *args, const char *name, int def)
{
    json_t *v = json_object_get(args, name);
    return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

static json_t *q_events(const hr_gql_resolve_info_t *info, char **error)
{
    hr_gqlsvc_t *svc = info->ctx;
    int limit = int_arg(info->args, "limit", EVENTS_DEFAULT_LIMIT);
    int offset = int_arg(info->args, "offset", 0);
    if (limit < 0 || limit > EVENTS_MAX_LIMIT)
        return fail(error, "limit: expected 0 to %d", EVENTS_MAX_LIMIT);
    if (offset < 0) return fail(error, "offset: expected 0 or more");
    json_t *out = NULL;
    hr_err_t err = {0};
    if (svc->ctx->ops->query_events(svc->ctx->store, json_object_get(info->args, "where"),
                                    json_object_get(info->args, "order_by"), limit, offset, &out,
                                    &err) != 0)
        return fail(error, "%s", err.msg);
    return out;
}

static json_t *q_event(const hr_gql_resolve_info_t *info, char **error)
{
    const char *id = json_string_value(json_object_get(info->args, "id"));
    if (!hr_is_uuid(id)) return fail(error, "id: not a uuid: %s", id ? id : "");
    int notfound;
    json_t *e = hr_gqlsvc_load_event(info->ctx, id, &notfound, error);
    return e; /* NULL: not found (null) or *error set */
}

static json_t *q_stats(const hr_gql_resolve_info_t *info, char **error)
{
    hr_gqlsvc_t *svc = info->ctx;
    hr_err_t err = {0};
    json_t *s = hr_gqlsvc_load_stats(svc->ctx->ops, svc->ctx->store, &err);
    return s ? s : fail(error, "reading the statistics: %s", err.msg);
}

/* The event just written, read back for the mutation's answer; live views are told. */
static json_t *written(hr_gqlsvc_t *svc, const char *id, char **error)
{
    hr_dispatcher_poke(svc->ctx->dispatcher);
    hr_gqlhub_event_changed(svc->hub, id);
    int notfound;
    json_t *e = hr_gqlsvc_load_event(svc, id, &notfound, error);
    if (!e && notfound) return fail(error, "event %s not found after writing it", id);
    return e;
}

/* The payload argument as JSON text (null when absent). */
static char *payload_text(const json_t *args)
{
    json_t *p = json_object_get(args, "payload");
    return p ? json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY) : hr_xstrdup("null");
}

static json_t *m_emit(const hr_gql_resolve_info_t *info, char **error)
{
    hr_gqlsvc_t *svc = info->ctx;
    const char *type = json_string_value(json_object_get(info->args, "type"));
    char *payload = payload_text(info->args), id[40];
    hr_err_t err = {0};
    int rc = svc->ctx->ops->emit(svc->ctx->store, type, payload, id, &err);
    free(payload);
    if (rc) return fail(error, "%s", err.msg);
    return written(svc, id, error);
}

static json_t *m_invoke(const hr_gql_resolve_info_t *info, char **error)
{
    hr_gqlsvc_t *svc = info->ctx;
    const char *trigger = json_string_value(json_object_get(info->args, "trigger"));
    char *payload = payload_text(info->args), id[40];
    hr_err_t err = {0};
    int rc = svc->ctx->ops->invoke(svc->ctx->store, trigger, payload, id, &err);
    free(payload);
    if (rc) return fail(error, "%s", err.msg);
    return written(svc, id, error);
}

static json_t *m_redeliver(const hr_gql_resolve_info_t *info, char **error)
{
    hr_gqlsvc_t *svc = info->ctx;
    const char *id = json_string_value(json_object_get(info->args, "event_id"));
    const char *trigger = json_string_value(json_object_get(info->args, "trigger"));
    if (!hr_is_uuid(id)) return fail(error, "event_id: not a uuid: %s", id ? id : "");
    int queued = 0;
    hr_err_t err = {0};
    if (svc->ctx->ops->redeliver(svc->ctx->store, id, trigger, &queued, &err) != 0)
        return fail(error, "%s", err.msg);
    return written(svc, id, error);
}

/* Event.deliveries: read with the event (event, mutations) or loaded now (lists, streams). */
static json_t *e_deliveries(const hr_gql_resolve_info_t *info, char **error)
{
    json_t *ds = json_object_get(info->parent, "deliveries");
    if (ds) return json_incref(ds);
    const char *id = json_string_value(json_object_get(info->parent, "id"));
    int notfound;
    json_t *e = hr_gqlsvc_load_event(info->ctx, id, &notfound, error);
    if (!e) return notfound ? json_array() : NULL;
    ds = json_incref(json_object_get(e, "deliveries"));
    json_decref(e);
    return ds;
}

static json_t *d_attempts(const hr_gql_resolve_info_t *info, char **error)
{
    int limit = int_arg(info->args, "limit", 10), offset = int_arg(info->args, "offset", 0);
    if (limit < 0 || offset < 0) return fail(error, "limit and offset: expected 0 or more");
    json_t *all = json_object_get(info->parent, "attempts"), *out = json_array();
    for (size_t i = (size_t)offset; i < json_array_size(all) && (int)json_array_size(out) < limit;
         i++)
        json_array_append(out, json_array_get(all, i));
    return out;
}

/* A subscription's root field is resolved by the hub, never through these (the engine needs a
 * resolver for every root field of the schema); they answer with an error if ever called. */
static json_t *s_root(const hr_gql_resolve_info_t *info, char **error)
{
    return fail(error, "%s is a subscription field", info->field);
}

static const hr_gql_resolver_t resolvers[] = {
    {"Query", "triggers", q_triggers},
    {"Query", "schedules", q_schedules},
    {"Query", "events", q_events},
    {"Query", "event", q_event},
    {"Query", "stats", q_stats},
    {"Mutation", "emit", m_emit},
    {"Mutation", "redeliver", m_redeliver},
    {"Mutation", "invoke", m_invoke},
    {"Subscription", "events_stream", s_root},
    {"Subscription", "event", s_root},
    {"Subscription", "stats", s_root},
    {"Event", "deliveries", e_deliveries},
    {"Delivery", "attempts", d_attempts},
};

/* ------------------------------------------------------------------------------------------ */
/* Group keys of prepared subscriptions                                                       */

struct pending_key {
    const hr_gql_op_t *op;
    char *key;
    uint64_t at_us;
    pending_key_t *next;
};

static void keys_expire(hr_gqlsvc_t *svc, uint64_t now)
{
    for (pending_key_t **pp = &svc->keys; *pp;) {
        pending_key_t *k = *pp;
        if (now - k->at_us > PENDING_KEY_TTL_US) {
            *pp = k->next;
            free(k->key);
            free(k);
        } else {
            pp = &k->next;
        }
    }
}

/* Takes the key remembered for op (NULL when none). */
static char *keys_take(hr_gqlsvc_t *svc, const hr_gql_op_t *op)
{
    for (pending_key_t **pp = &svc->keys; *pp; pp = &(*pp)->next) {
        pending_key_t *k = *pp;
        if (k->op != op) continue;
        *pp = k->next;
        char *key = k->key;
        free(k);
        return key;
    }
    return NULL;
}

/* The group key of an events_stream subscription. Subscribers at the tail share results
 * whatever cursor they started from, so the cursor must stay out of the key: the key is the
 * operation name, the document, the coerced root arguments without the cursor (where and
 * batch_size, with their variables substituted), and the variables except those declared with
 * a type that only a cursor or a where can use (bigint, the cursor inputs): such a variable can
 * feed nothing else (GraphQL validation checks variable types), and where's values are in the
 * root arguments. The declarations are read from the document's first operation; anything
 * unexpected keeps every variable in the key (correct, only shared less). */
static const char *skip_ignored(const char *p, const char *end)
{
    while (p < end) {
        if (*p == '#') {
            while (p < end && *p != '\n')
                p++;
        } else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',') {
            p++;
        } else {
            break;
        }
    }
    return p;
}

static int name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static void drop_cursor_vars(const char *q, size_t len, json_t *vars)
{
    const char *p = q, *end = q + len;
    p = skip_ignored(p, end);
    if (end - p < 12 || strncmp(p, "subscription", 12) != 0) return;
    p = skip_ignored(p + 12, end);
    while (p < end && name_char(*p))
        p++;
    p = skip_ignored(p, end);
    if (p >= end || *p != '(') return;
    json_t *drop = json_array();
    for (p = skip_ignored(p + 1, end); p < end && *p != ')'; p = skip_ignored(p, end)) {
        if (*p != '$') goto out;
        const char *name = ++p;
        while (p < end && name_char(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        p = skip_ignored(p, end);
        if (p >= end || *p != ':') goto out;
        p = skip_ignored(p + 1, end);
        while (p < end && *p == '[')
            p = skip_ignored(p + 1, end);
        const char *type = p;
        while (p < end && name_char(*p))
            p++;
        size_t tlen = (size_t)(p - type);
        while (p < end && (*p == ']' || *p == '!' || *p == ' ' || *p == '\t' || *p == '\n'))
            p++;
        p = skip_ignored(p, end);
        if (p < end && (*p == '=' || *p == '@')) goto out; /* defaults, directives: keep all */
        static const char *const cursor_types[] = {"bigint", "events_stream_cursor_input",
                                                   "events_stream_cursor_value_input"};
        for (size_t k = 0; k < sizeof cursor_types / sizeof cursor_types[0]; k++)
            if (tlen == strlen(cursor_types[k]) && strncmp(type, cursor_types[k], tlen) == 0)
                json_array_append_new(drop, json_stringn(name, nlen));
    }
    if (p >= end) goto out;
    size_t i;
    json_t *v;
    json_array_foreach(drop, i, v) json_object_del(vars, json_string_value(v));
out:
    json_decref(drop);
}

static char *group_key(const hr_gql_op_t *op, const char *query, size_t len, json_t *variables,
                       const char *operation_name)
{
    hr_gql_root_t root;
    hr_gql_op_root(op, &root);
    json_t *vars = json_is_object(variables) ? json_deep_copy(variables) : json_object();
    json_t *args = json_is_object(root.args) ? json_deep_copy(root.args) : json_object();
    if (strcmp(root.field, "events_stream") == 0) {
        drop_cursor_vars(query, len, vars);
        json_object_del(args, "cursor");
    }
    char *v = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS);
    char *a = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    char *key = hr_xasprintf("%s\n%s\n%s\n%.*s", operation_name ? operation_name : "", v ? v : "",
                             a ? a : "", (int)len, query);
    free(v);
    free(a);
    json_decref(vars);
    json_decref(args);
    return key;
}

/* ------------------------------------------------------------------------------------------ */
/* The transport's entry points (graphql_int.h)                                               */

int hr_gqlsvc_new(hr_api_ctx_t *ctx, hr_gqlsvc_t **out, hr_err_t *err)
{
    hr_gqlsvc_t *svc = hr_xcalloc(1, sizeof *svc);
    svc->ctx = ctx;
    int rc = hr_gql_schema_new(schema_sdl, resolvers, sizeof resolvers / sizeof resolvers[0],
                               &svc->schema, err);
    if (rc) {
        free(svc);
        return rc;
    }
    svc->hub = hr_gqlhub_new(svc);
    *out = svc;
    return 0;
}

void hr_gqlsvc_free(hr_gqlsvc_t *svc)
{
    if (!svc) return;
    hr_gqlhub_free(svc->hub);
    while (svc->keys) {
        pending_key_t *k = svc->keys;
        svc->keys = k->next;
        free(k->key);
        free(k);
    }
    hr_gql_schema_free(svc->schema);
    free(svc);
}

int hr_gqlsvc_prepare(hr_gqlsvc_t *svc, const char *query, size_t len, json_t *variables,
                      const char *operation_name, hr_gql_op_t **op, json_t **errors)
{
    int rc = hr_gql_prepare(svc->schema, NULL, query, len, variables, operation_name, op, errors);
    if (rc || hr_gql_op_kind(*op) != HR_GQL_SUBSCRIPTION) return rc;
    uint64_t now = hr_mono_us();
    keys_expire(svc, now);
    /* An address freed and reused: the newer operation's key wins. */
    free(keys_take(svc, *op));
    pending_key_t *k = hr_xcalloc(1, sizeof *k);
    k->op = *op;
    k->key = group_key(*op, query, len, variables, operation_name);
    k->at_us = now;
    k->next = svc->keys;
    svc->keys = k;
    return 0;
}

json_t *hr_gqlsvc_execute(hr_gqlsvc_t *svc, const hr_gql_op_t *op)
{
    return hr_gql_execute(op, svc);
}

int hr_gqlsvc_subscribe(hr_gqlsvc_t *svc, hr_gql_op_t *op, const hr_gql_sink_t *sink,
                        hr_gqlsub_t **out, json_t **errors)
{
    return hr_gqlhub_subscribe(svc->hub, op, keys_take(svc, op), sink, out, errors);
}

void hr_gqlsvc_unsubscribe(hr_gqlsub_t *sub)
{
    hr_gqlhub_unsubscribe(sub);
}

void hr_gqlsvc_counts(const hr_gqlsvc_t *svc, hr_gqlsvc_counts_t *out)
{
    memset(out, 0, sizeof *out);
    if (svc && svc->hub) hr_gqlhub_counts(svc->hub, out);
}
