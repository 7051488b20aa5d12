/* test_sign.c: Standard Webhooks signatures (dispatch/sign.c).
 *
 * The expected values besides the published test vector were computed independently with
 * Python's hmac/hashlib/base64 modules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch/sign.h"

#define VECTOR_BODY "{\"test\": 2432232314}"
#define VECTOR_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VECTOR_TS INT64_C(1614265330)
#define VECTOR_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_vector(void **state)
{
    char sig[64];
    hr_err_t err = {0};
    assert_int_equal(hr_sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", VECTOR_ID, VECTOR_TS,
                                     VECTOR_BODY, strlen(VECTOR_BODY), sig, sizeof sig, &err),
                     0);
    assert_string_equal(sig, VECTOR_SIG);
    assert_int_equal(err.code, 0);
}

static void test_secret_without_prefix(void **state)
{
    char sig[64];
    assert_int_equal(hr_sign_webhook("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", VECTOR_ID, VECTOR_TS,
                                     VECTOR_BODY, strlen(VECTOR_BODY), sig, sizeof sig, NULL),
                     0);
    assert_string_equal(sig, VECTOR_SIG);
}

static void test_exact_buffer_size(void **state)
{
    char sig[48]; /* "v1," + 44 + NUL */
    assert_int_equal(hr_sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", VECTOR_ID, VECTOR_TS,
                                     VECTOR_BODY, strlen(VECTOR_BODY), sig, sizeof sig, NULL),
                     0);
    assert_string_equal(sig, VECTOR_SIG);
}

/* Key lengths that need padding, with and without the '=' written out. */
static void test_padding(void **state)
{
    static const struct {
        const char *secret;
        int64_t ts;
        const char *body;
        size_t body_len;
        const char *want;
    } cases[] = {
        /* key "test" */
        {"whsec_dGVzdA==", 0, "", 0, "v1,yf7EShmOLwsVH4j+nH68pk1UfJvJf9fq5FUcKqJdt4M="},
        {"whsec_dGVzdA", 0, "", 0, "v1,yf7EShmOLwsVH4j+nH68pk1UfJvJf9fq5FUcKqJdt4M="},
        {"dGVzdA==", 0, NULL, 0, "v1,yf7EShmOLwsVH4j+nH68pk1UfJvJf9fq5FUcKqJdt4M="},
        /* key "tes" (no padding at all), a negative timestamp, a body holding a NUL byte */
        {"whsec_dGVz", -5, "a\0b", 3, "v1,tp8576+B1CcbqN5TZPDqtWT1+jTR0u2xKDnHhpXQahs="},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sig[64];
        hr_err_t err = {0};
        int rc = hr_sign_webhook(cases[i].secret, "msg_1", cases[i].ts, cases[i].body,
                                 cases[i].body_len, sig, sizeof sig, &err);
        if (rc) fail_msg("case %zu: %s", i, err.msg);
        assert_string_equal(sig, cases[i].want);
    }
}

static void test_bad_secrets(void **state)
{
    static const char *const bad[] = {
        "",
        "whsec_",
        "whsec_!!!!notbase64",
        "whsec_c2VjcmV0 c2VjcmV0",  /* white space, which EVP_DecodeBlock would skip */
        "whsec_c2VjcmV0c2VjcmV0\n", /* trailing newline */
        "whsec_c2VjcmV0-_",         /* base64url alphabet */
        "whsec_c2VjcmV0c",          /* length 4k+1 cannot be base64 */
        "whsec_c2Vj=mV0",           /* padding in the middle */
        "whsec_c2VjcmV===",         /* three padding characters */
        "whsec_c2VjcmV0c2U==",      /* "secretse" padded to the wrong length */
        "whsec_====",
        "WHSEC_c2VjcmV0", /* the prefix is case-sensitive; '_' is not base64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char sig[64] = "untouched";
        hr_err_t err = {0};
        int rc = hr_sign_webhook(bad[i], "msg_1", 1, "{}", 2, sig, sizeof sig, &err);
        if (rc != HR_EINVAL) fail_msg("case %zu (%s): rc %d", i, bad[i], rc);
        assert_int_equal(err.code, HR_EINVAL);
        assert_true(err.msg[0] != '\0');
        assert_string_equal(sig, "");
        /* The message must not leak the secret (or any recognisable part of it). */
        const char *body = strncmp(bad[i], "whsec_", 6) ? bad[i] : bad[i] + 6;
        if (strlen(body) >= 4) assert_null(strstr(err.msg, body));
        assert_null(strstr(err.msg, "c2Vj"));
    }
}

static void test_bad_arguments(void **state)
{
    char sig[64];
    hr_err_t err = {0};
    assert_int_equal(hr_sign_webhook(NULL, "msg_1", 1, "{}", 2, sig, sizeof sig, &err), HR_EINVAL);
    assert_int_equal(hr_sign_webhook("whsec_dGVzdA==", NULL, 1, "{}", 2, sig, sizeof sig, &err),
                     HR_EINVAL);
    assert_int_equal(hr_sign_webhook("whsec_dGVzdA==", "msg_1", 1, NULL, 2, sig, sizeof sig, &err),
                     HR_EINVAL);
    char small[47];
    assert_int_equal(
        hr_sign_webhook("whsec_dGVzdA==", "msg_1", 1, "{}", 2, small, sizeof small, &err),
        HR_EINVAL);
}

/* Different inputs must give different signatures (the MAC covers id, timestamp and body). */
static void test_inputs_covered(void **state)
{
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    char a[64], b[64], c[64], d[64];
    assert_int_equal(hr_sign_webhook(secret, "msg_1", 1, "{}", 2, a, sizeof a, NULL), 0);
    assert_int_equal(hr_sign_webhook(secret, "msg_2", 1, "{}", 2, b, sizeof b, NULL), 0);
    assert_int_equal(hr_sign_webhook(secret, "msg_1", 2, "{}", 2, c, sizeof c, NULL), 0);
    assert_int_equal(hr_sign_webhook(secret, "msg_1", 1, "{ }", 3, d, sizeof d, NULL), 0);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_int_equal(strlen(a), 47);
    assert_memory_equal(a, "v1,", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_secret_without_prefix),
        cmocka_unit_test(test_exact_buffer_size),
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_bad_secrets),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_inputs_covered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
