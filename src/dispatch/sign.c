/* sign.c: Standard Webhooks signatures with OpenSSL 3 (see sign.h).
 *
 * The secret is "whsec_" followed by standard base64 (the prefix is optional). Its decoding is
 * the HMAC-SHA256 key; the MAC covers msg_id "." timestamp "." body, fed to EVP_MAC in pieces so
 * the body is never copied. The result is "v1," and the base64 of the 32-byte MAC.
 *
 * Base64 is checked here before EVP_DecodeBlock, which accepts stray white space and reports
 * the length before removing padding: only [A-Za-z0-9+/] with at most two trailing '=' are
 * allowed, padding may be omitted, and the real key length is 3/4 of the padded length minus
 * the padding. Error messages never include the secret; the decoded key is wiped after use. */
#include "dispatch/sign.h"

#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_PREFIX "whsec_"
#define MAC_LEN 32
/* "v1," + base64 of 32 bytes (44) + NUL */
#define SIG_LEN (3 + 44 + 1)

static int is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Decodes standard base64 s into a new buffer (*key, *key_len). Returns 0 or HR_EINVAL. */
static int decode_secret(const char *s, unsigned char **key, size_t *key_len)
{
    size_t n = strlen(s), data = 0, pad = 0;
    while (data < n && is_b64((unsigned char)s[data]))
        data++;
    while (data + pad < n && s[data + pad] == '=')
        pad++;
    if (data + pad != n || data == 0 || pad > 2) return HR_EINVAL;
    if (pad && (data + pad) % 4) return HR_EINVAL;
    if (data % 4 == 1) return HR_EINVAL;

    /* Re-pad to a multiple of 4 so EVP_DecodeBlock accepts unpadded secrets too. */
    size_t padded = (data + 3) / 4 * 4;
    unsigned char *in = hr_xmalloc(padded + 1);
    memcpy(in, s, data);
    memset(in + data, '=', padded - data);
    in[padded] = '\0';
    unsigned char *out = hr_xmalloc(padded / 4 * 3 + 1);
    int got = EVP_DecodeBlock(out, in, (int)padded);
    OPENSSL_cleanse(in, padded);
    free(in);
    if (got < 0) {
        OPENSSL_cleanse(out, padded / 4 * 3 + 1);
        free(out);
        return HR_EINVAL;
    }
    *key = out;
    *key_len = (size_t)got - (padded - data);
    return 0;
}

static int hmac_sha256(const unsigned char *key, size_t key_len, const char *msg_id, const char *ts,
                       const char *body, size_t body_len, unsigned char *mac)
{
    int rc = HR_EIO;
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t mac_len = 0;
    if (!ctx || !EVP_MAC_init(ctx, key, key_len, params)) goto out;
    if (!EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        (body_len && !EVP_MAC_update(ctx, (const unsigned char *)body, body_len)))
        goto out;
    if (!EVP_MAC_final(ctx, mac, &mac_len, MAC_LEN) || mac_len != MAC_LEN) goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(alg);
    return rc;
}

int hr_sign_webhook(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                    size_t body_len, char *out, size_t cap, hr_err_t *err)
{
    unsigned char *key = NULL;
    size_t key_len = 0;
    unsigned char mac[MAC_LEN];
    char ts[24];
    int rc;

    if (!out || cap < SIG_LEN) return hr_err_set(err, HR_EINVAL, "signature buffer too small");
    out[0] = '\0';
    if (!secret) return hr_err_set(err, HR_EINVAL, "no webhook secret");
    if (!msg_id) return hr_err_set(err, HR_EINVAL, "no message id to sign");
    if (!body && body_len) return hr_err_set(err, HR_EINVAL, "no body to sign");
    if (!strncmp(secret, SECRET_PREFIX, strlen(SECRET_PREFIX))) secret += strlen(SECRET_PREFIX);
    if (decode_secret(secret, &key, &key_len))
        return hr_err_set(err, HR_EINVAL,
                          "webhook secret is not valid base64 (expected whsec_<base64>)");

    snprintf(ts, sizeof ts, "%" PRId64, timestamp);
    rc = hmac_sha256(key, key_len, msg_id, ts, body, body_len, mac);
    OPENSSL_cleanse(key, key_len);
    free(key);
    if (rc) return hr_err_set(err, rc, "HMAC-SHA256 failed");

    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, MAC_LEN);
    OPENSSL_cleanse(mac, sizeof mac);
    return 0;
}
