/* sign.h: Standard Webhooks signatures (https://www.standardwebhooks.com/).
 *
 * signature = "v1," base64(HMAC-SHA256(key, id "." timestamp "." body)), where key is the
 * base64 decoding of the secret after its "whsec_" prefix (a secret without the prefix is
 * decoded as base64 too). */
#ifndef HR_SIGN_H
#define HR_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Writes the NUL-terminated "v1,…" signature into out (cap >= 64). HR_EINVAL for a bad secret. */
int hr_sign_webhook(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                    size_t body_len, char *out, size_t cap, hr_err_t *err);

#endif
