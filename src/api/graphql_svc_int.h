/* graphql_svc_int.h: what the two files of /v1/graphql's service share — graphql_svc.c (the
 * schema, the resolvers, prepare/execute/subscribe) and graphql_hub.c (the subscriptions).
 * Private to src/api/graphql_svc.c and graphql_hub.c. */
#ifndef HR_GRAPHQL_SVC_INT_H
#define HR_GRAPHQL_SVC_INT_H

#include "api/graphql_int.h"

typedef struct hr_gqlhub hr_gqlhub_t;
typedef struct pending_key pending_key_t;

struct hr_gqlsvc {
    hr_api_ctx_t *ctx;
    hr_gql_schema_t *schema;
    hr_gqlhub_t *hub;
    /* The group keys of prepared subscriptions (operation text, name and variables), kept from
     * prepare until subscribe takes the operation; see graphql_svc.c. */
    pending_key_t *keys;
};

/* --- graphql_svc.c --- */
/* The event with id in the schema's shape (deliveries with their attempts), from the store's
 * event op: a new reference; NULL with *notfound = 1 when there is no such event (yet), or NULL
 * with *error (malloc'd) on failure. */
json_t *hr_gqlsvc_load_event(hr_gqlsvc_t *svc, const char *id, int *notfound, char **error);
/* The per-trigger status in the schema's shape (TriggerStats) from a store: a new reference or
 * NULL with err set. */
json_t *hr_gqlsvc_load_stats(const hr_store_ops_t *ops, hr_store_t *st, hr_err_t *err);

/* --- graphql_hub.c: the subscriptions --- */
hr_gqlhub_t *hr_gqlhub_new(hr_gqlsvc_t *svc);
/* Ends every subscription without calling sinks; memory is released once the hub's pending
 * store operations and timers are done (the loop must keep running until then). */
void hr_gqlhub_free(hr_gqlhub_t *h);
/* Starts the subscription of op (taken, also on failure); key (taken, may be NULL: not shared)
 * groups subscribers whose results are identical. */
int hr_gqlhub_subscribe(hr_gqlhub_t *h, hr_gql_op_t *op, char *key, const hr_gql_sink_t *sink,
                        hr_gqlsub_t **out, json_t **errors);
void hr_gqlhub_unsubscribe(hr_gqlsub_t *sub);
void hr_gqlhub_counts(const hr_gqlhub_t *h, hr_gqlsvc_counts_t *out);
/* Something changed the delivery state of event id (a mutation): live event(id) views look. */
void hr_gqlhub_event_changed(hr_gqlhub_t *h, const char *id);

#endif
