/* api_util.c: what every API handler needs — the admin secret check and JSON answers.
 *
 * The secret is compared in constant time: both the configured secret and the header value are
 * hashed with SHA-256 and the digests compared with CRYPTO_memcmp, so neither the position of
 * the first differing byte nor the length of the secret shows in the time taken. */
#include "api/api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

int hr_api_same_secret(const char *want, const char *got)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)want, strlen(want), a);
    SHA256((const unsigned char *)got, strlen(got), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

int hr_api_authorized(const hr_api_ctx_t *ctx, hr_request_t *req)
{
    if (!ctx->admin_secret || !*ctx->admin_secret) return 1;
    const char *got = hr_request_header(req, "x-herald-admin-secret");
    if (!got) got = hr_request_header(req, "x-hasura-admin-secret");
    return got && hr_api_same_secret(ctx->admin_secret, got);
}

void hr_api_send_json(hr_request_t *req, int status, json_t *body)
{
    char *text =
        body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) : NULL;
    if (!text) text = hr_xstrdup("null");
    hr_response_send(req, status, "application/json", text, strlen(text));
    free(text);
    json_decref(body);
}

/* A JSON string of s; messages and paths may quote client input cut at a byte limit, so a byte
 * sequence that is not UTF-8 has its non-ASCII bytes replaced by '?' rather than lose the text. */
static json_t *text(const char *s)
{
    json_t *v = json_string(s);
    if (v) return v;
    char *c = hr_xstrdup(s);
    for (char *p = c; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    v = json_string(c);
    free(c);
    return v;
}

void hr_api_send_error(hr_request_t *req, int status, const char *code, const char *error,
                       const char *path)
{
    json_t *o = json_object();
    json_object_set_new(o, "path", text(path ? path : "$"));
    json_object_set_new(o, "error", text(error ? error : ""));
    json_object_set_new(o, "code", text(code));
    hr_api_send_json(req, status, o);
}
