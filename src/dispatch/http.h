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
    uint64_t timeout_ms; /* whole-transfer timeout */
    size_t response_cap; /* bytes of response body to keep (e.g. 1024) */
} hr_http_req_t;

typedef struct hr_http_res {
    long status;           /* HTTP status, 0 when none was received */
    int error;             /* 0, HR_ETIMEOUT, HR_EIO (connection failures etc.) or HR_ECANCELED */
    const char *error_msg; /* curl's message when error != 0 */
    const char *body;      /* first response_cap bytes, NUL-terminated */
    size_t body_len;
    uint64_t latency_us;     /* from submission to completion */
    const char *retry_after; /* Retry-After value, trimmed, at most 63 bytes, or NULL */
} hr_http_res_t;

/* res and its strings are valid only during the callback. */
typedef void (*hr_http_cb)(void *ud, const hr_http_res_t *res);

int hr_http_init(uv_loop_t *loop, hr_http_t **out, hr_err_t *err);
/* Starts a POST. Returns 0 (cb will be called) or an error (cb will not): HR_EINVAL for a NULL
 * url, timeout_ms == 0, a NULL body with body_len > 0, or a header line that contains CR or LF
 * or lacks a ':'; HR_ECANCELED once hr_http_close has been called. A malformed URL or a scheme
 * other than http/https is reported through cb as HR_EIO. Redirects are not followed: a 3xx
 * is returned as it is. Safe to call from inside a callback. */
int hr_http_post(hr_http_t *h, const hr_http_req_t *req, hr_http_cb cb, void *ud);
size_t hr_http_in_flight(const hr_http_t *h);
/* Cancels outstanding requests (their callbacks run with HR_ECANCELED, status 0, before
 * hr_http_close returns), closes the loop handles and frees h; done(ud) (done may be NULL) is
 * called from a later loop iteration, never from inside hr_http_close, when every loop handle
 * has been closed and everything is released. h must not be used after the call, except that
 * hr_http_post from a cancelled callback returns HR_ECANCELED. Call it once; it may be called
 * from a completion callback (not from a cancelled one). */
void hr_http_close(hr_http_t *h, void (*done)(void *ud), void *ud);

/* Counters since hr_http_init, e.g. for /metrics. Every callback counts in exactly one of
 * ok, failed, timeouts and canceled. */
typedef struct hr_http_stats {
    uint64_t requests; /* accepted by hr_http_post */
    uint64_t ok;       /* completed with error 0, whatever the HTTP status */
    uint64_t failed;   /* completed with HR_EIO */
    uint64_t timeouts; /* completed with HR_ETIMEOUT */
    uint64_t canceled; /* completed with HR_ECANCELED by hr_http_close */
    uint64_t connects; /* new connections opened; requests minus connects were kept-alive reuse */
} hr_http_stats_t;

void hr_http_stats(const hr_http_t *h, hr_http_stats_t *out);

#endif
