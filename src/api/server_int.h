/* server_int.h: what server.c (HTTP requests, the lws context) and server_ws.c (WebSocket
 * sessions) share. Private to those two files. */
#ifndef HR_SERVER_INT_H
#define HR_SERVER_INT_H

#include <libwebsockets.h>

#include "api/server.h"

/* Longest subprotocol name (lws' own token buffer holds 63 bytes). */
#define WS_NAME_MAX 63

typedef enum { REQ_READING, REQ_HANDLER, REQ_RESPONDING, REQ_ORPHANED } req_state_t;

typedef struct route {
    char *method;
    char *path;
    hr_handler_fn fn;
    void *ud;
} route_t;

/* A copied header value, kept until the request is freed. */
typedef struct hval {
    struct hval *next;
    char s[];
} hval_t;

typedef struct ws_endpoint {
    char *path;
    const char *names[HR_WS_MAX_SUBPROTOCOLS]; /* pointers into srv->pnames */
    size_t nnames;
    hr_ws_handlers_t h;
    void *ud;
} ws_endpoint_t;

struct hr_server {
    uv_loop_t *loop;
    struct lws_context *ctx; /* NULLed by lws (info.pcontext) once it is freed */
    struct lws_vhost *vhost;
    /* "http", the WebSocket slots, and the all-zero terminator */
    struct lws_protocols protocols[2 + HR_WS_MAX_SUBPROTOCOLS];
    char pnames[HR_WS_MAX_SUBPROTOCOLS][WS_NAME_MAX + 1]; /* slot names; "" while unused */
    size_t npnames;
    ws_endpoint_t *endpoints;
    size_t nendpoints;
    route_t *routes;
    size_t nroutes;
    route_t fallback; /* fn NULL: 404/405 for unrouted requests */
    size_t max_body;
    uint64_t request_timeout_ms;
    char *iface;
    char *server_name;
    int port;
    hr_server_stats_t stats;
    hr_request_t *waiting;  /* requests in HANDLER state: a list for the sweep */
    hr_ws_t *sessions;      /* open WebSocket sessions */
    struct ws_msg *ws_pool; /* written outbound messages kept for reuse (server_ws.c) */
    size_t ws_pool_bytes;   /* their capacity together */
    uv_timer_t sweep_timer; /* checks waiting requests' connections once a second */
    /* closing */
    int closing;
    int close_phase; /* -1: sessions closing (1001); 0: destroy not started; 1: waiting for
                        lws' handles */
    int close_ticks;
    uv_timer_t close_timer;
    void (*done)(void *ud);
    void *done_ud;
};

struct hr_request {
    hr_server_t *srv; /* NULL once orphaned */
    struct lws *wsi;  /* NULL once the connection closed */
    req_state_t state;
    const char *method;
    char *path;
    char *query;
    char *qparams; /* the query's parameters, each decoded and NUL-terminated, one after another */
    size_t nqparams;
    char peer[64];
    char *body; /* NUL-terminated; never NULL once dispatched */
    size_t body_len;
    size_t body_expect; /* Content-Length */
    int is_head;
    const route_t *route; /* chosen at LWS_CALLBACK_HTTP; routes are fixed once serving */
    int close_after;      /* close the connection after the response */
    int paused;           /* reading the connection is paused while the handler works */
    lws_sorted_usec_list_t deadline;
    hval_t *hvals;
    /* a response of the server's own, sent once the announced body has been read */
    int err_status;
    const char *err_msg;
    /* the response, kept from hr_response_send to HTTP_WRITEABLE */
    int status;
    char *ctype;
    char *out_body;
    size_t out_len;
    char *resp_headers; /* "name\0value\0" pairs, resp_headers_len bytes */
    size_t resp_headers_len;
    hr_request_close_fn on_close;
    void *on_close_ud;
    hr_request_t *prev, *next; /* in srv->waiting while in HANDLER state */
};

/* server.c: the response head and body after LWS_PRE bytes of headroom (NULL when the headers
 * do not fit), and a request header copied into a new entry of *list. */
unsigned char *hr_srv_build_response(hr_request_t *req, int status, const char *ctype,
                                     const char *body, size_t blen, size_t *len);
const char *hr_srv_header(struct lws *wsi, const char *name, hval_t **list);

/* server_ws.c */
/* Fills the WebSocket protocol slots of srv->protocols and the sessions' idle policy. */
void hr_srv_ws_setup(hr_server_t *srv, struct lws_context_creation_info *info);
/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: 0 lets lws upgrade, 1 means answered, -1 hangs up. */
int hr_srv_confirm_upgrade(hr_server_t *srv, struct lws *wsi, const char *upgrade);
/* Closes every open session with 1001 (the server is closing). */
void hr_srv_ws_goaway(hr_server_t *srv);
/* Frees the endpoints. */
void hr_srv_ws_free(hr_server_t *srv);

#endif
