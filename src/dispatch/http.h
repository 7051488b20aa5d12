/* http.h: asynchronous HTTP POST on the libuv loop (curl multi_socket).
 *
 * Keep-alive connections are reused across requests. Each request's callback is called exactly
 * once (also on hr_http_close, with error HR_ECANCELED) unless hr_http_post returned an error.
 * A response body is kept up to req->response_cap bytes; past that it is read and discarded up
 * to HR_HTTP_DRAIN_MAX, then the transfer is cut (the status already received still counts). */
#ifndef HR_HTTP_H
#define HR_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"

#define HR_HTTP_DRAIN_MAX (1024 * 1024)

typedef struct hr_http hr_http_t;

typedef struct hr_http_req {
    const char *url;
    const char *const *headers; /* "Name: value" lines, borrowed for the call only */
    size_t nheaders;
    const char *body; /* copied */
    size_t body_len;
    uint64_t timeout_ms;  /* whole-transfer timeout */
    size_t response_cap;  /* bytes of response body to keep (e.g. 1024) */
} hr_http_req_t;

typedef struct hr_http_res {
    long status;            /* HTTP status, 0 when none was received */
    int error;              /* 0, HR_ETIMEOUT or HR_EIO (connection failures etc.) */
    const char *error_msg;  /* curl's message when error != 0 */
    const char *body;       /* first response_cap bytes, NUL-terminated */
    size_t body_len;
    uint64_t latency_us;    /* from submission to completion */
    const char *retry_after; /* raw Retry-After header value, or NULL */
} hr_http_res_t;

/* res and its strings are valid only during the callback. */
typedef void (*hr_http_cb)(void *ud, const hr_http_res_t *res);

int hr_http_init(uv_loop_t *loop, hr_http_t **out, hr_err_t *err);
/* Starts a POST. Returns 0 (cb will be called) or an error (cb will not). */
int hr_http_post(hr_http_t *h, const hr_http_req_t *req, hr_http_cb cb, void *ud);
size_t hr_http_in_flight(const hr_http_t *h);
/* Cancels outstanding requests (their callbacks run with HR_ECANCELED), closes the loop handles
 * and frees h; done(ud) is called when everything is released. */
void hr_http_close(hr_http_t *h, void (*done)(void *ud), void *ud);

#endif
