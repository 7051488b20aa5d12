/* lexer.c: GraphQL source text -> tokens, as the specification's lexical grammar says.
 *
 * The lexer is pulled one token at a time by the parser. Ignored tokens (spaces, tabs, line
 * terminators, commas, comments, a byte order mark) are skipped. Names and numbers keep their
 * text; strings and block strings are decoded into the arena (escapes, surrogate pairs and
 * \u{...} included; the block string's common indentation removed). Strings must be valid
 * UTF-8 so that they can become JSON strings.
 *
 * Line and column are computed lazily: `mark` remembers the last position whose line and column
 * are known, and a token's position is reached by walking forward from it, so a document costs
 * one pass however long its lines. Columns count code points (bytes that are not UTF-8
 * continuation bytes). Error messages are graphql-js's. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "gql/gql_int.h"

void hr_gql_lexer_init(gql_lexer_t *lx, gql_arena_t *arena, const char *src, size_t len,
                       size_t max_tokens)
{
    memset(lx, 0, sizeof *lx);
    lx->src = src;
    lx->len = len;
    lx->line = 1;
    lx->col = 1;
    lx->arena = arena;
    lx->max_tokens = max_tokens;
}

/* Line and column of pos (pos >= mark). */
static void locate(gql_lexer_t *lx, size_t pos, int *line, int *col)
{
    const unsigned char *s = (const unsigned char *)lx->src;
    while (lx->mark < pos) {
        unsigned char c = s[lx->mark++];
        if (c == '\n' || (c == '\r' && !(lx->mark < lx->len && s[lx->mark] == '\n'))) {
            lx->line++;
            lx->col = 1;
        } else if (c == '\r') {
            /* the \r of \r\n: the \n ends the line */
        } else if ((c & 0xC0) != 0x80) {
            lx->col++;
        }
    }
    *line = lx->line;
    *col = lx->col;
}

/* Decodes one UTF-8 sequence at p (n bytes left); returns its length, 0 when invalid. */
static int utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    int len;
    uint32_t c, min;
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2, c = p[0] & 0x1F, min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3, c = p[0] & 0x0F, min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4, c = p[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

static int utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* graphql-js's printCodePointAt. */
static void print_cp(gql_lexer_t *lx, size_t pos, char *buf, size_t n)
{
    if (pos >= lx->len) {
        snprintf(buf, n, "<EOF>");
        return;
    }
    const unsigned char *s = (const unsigned char *)lx->src + pos;
    uint32_t cp;
    if (!utf8_decode(s, lx->len - pos, &cp)) cp = 0xFFFD;
    if (cp >= 0x20 && cp <= 0x7E) {
        if (cp == '"')
            snprintf(buf, n, "'\"'");
        else
            snprintf(buf, n, "\"%c\"", (char)cp);
    } else {
        snprintf(buf, n, "U+%04X", (unsigned)cp);
    }
}

static int fail(gql_lexer_t *lx, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(gql_lexer_t *lx, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lx->err, sizeof lx->err, fmt, ap);
    va_end(ap);
    if (pos > lx->len) pos = lx->len;
    locate(lx, pos, &lx->err_line, &lx->err_col);
    return -1;
}

static int is_name_start(int c)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int peek(const gql_lexer_t *lx, size_t pos)
{
    return pos < lx->len ? (unsigned char)lx->src[pos] : -1;
}

static int read_digits(gql_lexer_t *lx, size_t *pos)
{
    int c = peek(lx, *pos);
    if (!is_digit(c)) {
        char what[16];
        print_cp(lx, *pos, what, sizeof what);
        return fail(lx, *pos, "Invalid number, expected digit but got: %s.", what);
    }
    while (is_digit(peek(lx, *pos)))
        (*pos)++;
    return 0;
}

static int read_number(gql_lexer_t *lx, size_t start, gql_token_t *tok)
{
    size_t pos = start;
    int is_float = 0;
    if (peek(lx, pos) == '-') pos++;
    if (peek(lx, pos) == '0') {
        pos++;
        if (is_digit(peek(lx, pos))) {
            char what[16];
            print_cp(lx, pos, what, sizeof what);
            return fail(lx, pos, "Invalid number, unexpected digit after 0: %s.", what);
        }
    } else if (read_digits(lx, &pos)) {
        return -1;
    }
    if (peek(lx, pos) == '.') {
        is_float = 1;
        pos++;
        if (read_digits(lx, &pos)) return -1;
    }
    if (peek(lx, pos) == 'e' || peek(lx, pos) == 'E') {
        is_float = 1;
        pos++;
        if (peek(lx, pos) == '+' || peek(lx, pos) == '-') pos++;
        if (read_digits(lx, &pos)) return -1;
    }
    int c = peek(lx, pos);
    if (c == '.' || is_name_start(c)) {
        char what[16];
        print_cp(lx, pos, what, sizeof what);
        return fail(lx, pos, "Invalid number, expected digit but got: %s.", what);
    }
    tok->kind = is_float ? TK_FLOAT : TK_INT;
    tok->value = hr_gql_strndup(lx->arena, lx->src + start, pos - start);
    tok->len = pos - start;
    lx->pos = pos;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* \uXXXX at pos (pointing at the backslash): the code unit, or -1. */
static long read_hex4(const gql_lexer_t *lx, size_t pos)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(peek(lx, pos + 2 + (size_t)i));
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* The bytes of the first n code points at pos (graphql-js quotes source by characters). */
static size_t cp_bytes(const gql_lexer_t *lx, size_t pos, size_t n)
{
    size_t at = pos;
    while (n-- > 0 && at < lx->len) {
        at++;
        while (at < lx->len && ((unsigned char)lx->src[at] & 0xC0) == 0x80)
            at++;
    }
    return at - pos;
}

static int bad_escape(gql_lexer_t *lx, size_t pos, size_t n)
{
    return fail(lx, pos, "Invalid Unicode escape sequence: \"%.*s\".", (int)cp_bytes(lx, pos, n),
                lx->src + pos);
}

static int read_string(gql_lexer_t *lx, size_t start, gql_token_t *tok)
{
    size_t pos = start + 1;
    hr_buf_t b = HR_BUF_INIT;
    hr_buf_init(&b, 0);
    int rc = -1;
    for (;;) {
        int c = peek(lx, pos);
        if (c < 0 || c == '\n' || c == '\r') {
            rc = fail(lx, pos, "Unterminated string.");
            goto out;
        }
        if (c == '"') {
            pos++;
            break;
        }
        if (c == '\\') {
            int e = peek(lx, pos + 1);
            char ch = 0;
            switch (e) {
            case '"':
                ch = '"';
                break;
            case '\\':
                ch = '\\';
                break;
            case '/':
                ch = '/';
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'u':
                break;
            default: {
                rc = fail(lx, pos, "Invalid character escape sequence: \"%.*s\".",
                          (int)cp_bytes(lx, pos, 2), lx->src + pos);
                goto out;
            }
            }
            if (e != 'u') {
                hr_buf_putc(&b, ch);
                pos += 2;
                continue;
            }
            uint32_t cp;
            size_t used;
            if (peek(lx, pos + 2) == '{') {
                /* \u{1F600}, read as graphql-js reads it: at most 12 characters in all, the
                 * value kept in 32 bits, a Unicode scalar value at the brace. */
                size_t size = 3;
                uint32_t point = 0;
                int ok = 0;
                while (size < 12) {
                    int uc = peek(lx, pos + size++);
                    if (uc == '}') {
                        ok = size >= 5 &&
                             (point <= 0xD7FF || (point >= 0xE000 && point <= 0x10FFFF));
                        break;
                    }
                    int h = hexval(uc);
                    uint32_t next = (point << 4) | (uint32_t)(h < 0 ? 0 : h);
                    if (h < 0 || (next & 0x80000000u)) break;
                    point = next;
                }
                if (!ok) {
                    rc = bad_escape(lx, pos, size);
                    goto out;
                }
                cp = point;
                used = size;
            } else {
                long u = read_hex4(lx, pos);
                if (u < 0) {
                    rc = bad_escape(lx, pos, 6);
                    goto out;
                }
                used = 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    long lo = peek(lx, pos + 6) == '\\' && peek(lx, pos + 7) == 'u'
                                  ? read_hex4(lx, pos + 6)
                                  : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        rc = bad_escape(lx, pos, 6);
                        goto out;
                    }
                    cp = 0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    used = 12;
                } else if (u >= 0xDC00 && u <= 0xDFFF) {
                    rc = bad_escape(lx, pos, 6);
                    goto out;
                } else {
                    cp = (uint32_t)u;
                }
            }
            char enc[4];
            hr_buf_append(&b, enc, (size_t)utf8_encode(cp, enc));
            pos += used;
            continue;
        }
        uint32_t cp;
        int n = utf8_decode((const unsigned char *)lx->src + pos, lx->len - pos, &cp);
        if (!n) {
            rc = fail(lx, pos, "Invalid UTF-8 within String.");
            goto out;
        }
        hr_buf_append(&b, lx->src + pos, (size_t)n);
        pos += (size_t)n;
    }
    tok->kind = TK_STRING;
    tok->len = b.len;
    tok->value = hr_gql_strndup(lx->arena, b.data ? b.data : "", b.len);
    lx->pos = pos;
    rc = 0;
out:
    hr_buf_free(&b);
    return rc;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

char *hr_gql_block_string_value(gql_arena_t *a, const char *raw, size_t n, size_t *outlen)
{
    /* Split into lines. */
    size_t nlines = 1;
    for (size_t i = 0; i < n; i++)
        if (raw[i] == '\n' || (raw[i] == '\r' && !(i + 1 < n && raw[i + 1] == '\n'))) nlines++;
    const char **ls = hr_gql_alloc(a, nlines * sizeof *ls);
    size_t *ll = hr_gql_alloc(a, nlines * sizeof *ll);
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || raw[i] == '\n' || raw[i] == '\r') {
            ls[k] = raw + start;
            ll[k++] = i - start;
            if (i < n && raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n') i++;
            start = i + 1;
        }
    }
    size_t common = SIZE_MAX;
    for (size_t i = 1; i < nlines; i++) {
        size_t ind = 0;
        while (ind < ll[i] && (ls[i][ind] == ' ' || ls[i][ind] == '\t'))
            ind++;
        if (ind < ll[i] && ind < common) common = ind;
    }
    size_t first = 0, last = nlines;
    while (first < last && is_blank(ls[first], ll[first]))
        first++;
    while (last > first && is_blank(ls[last - 1], ll[last - 1]))
        last--;
    hr_buf_t b = HR_BUF_INIT;
    hr_buf_init(&b, 0);
    for (size_t i = first; i < last; i++) {
        const char *l = ls[i];
        size_t len = ll[i];
        if (i > 0 && common != SIZE_MAX) {
            size_t cut = common < len ? common : len;
            l += cut;
            len -= cut;
        }
        if (i > first) hr_buf_putc(&b, '\n');
        hr_buf_append(&b, l, len);
    }
    char *v = hr_gql_strndup(a, b.data ? b.data : "", b.len);
    *outlen = b.len;
    hr_buf_free(&b);
    return v;
}

static int read_block_string(gql_lexer_t *lx, size_t start, gql_token_t *tok)
{
    size_t pos = start + 3;
    hr_buf_t raw = HR_BUF_INIT;
    hr_buf_init(&raw, 0);
    int rc = -1;
    for (;;) {
        int c = peek(lx, pos);
        if (c < 0) {
            rc = fail(lx, pos, "Unterminated string.");
            goto out;
        }
        if (c == '"' && peek(lx, pos + 1) == '"' && peek(lx, pos + 2) == '"') {
            pos += 3;
            break;
        }
        if (c == '\\' && peek(lx, pos + 1) == '"' && peek(lx, pos + 2) == '"' &&
            peek(lx, pos + 3) == '"') {
            hr_buf_append(&raw, "\"\"\"", 3);
            pos += 4;
            continue;
        }
        uint32_t cp;
        int n = utf8_decode((const unsigned char *)lx->src + pos, lx->len - pos, &cp);
        if (!n) {
            rc = fail(lx, pos, "Invalid UTF-8 within String.");
            goto out;
        }
        hr_buf_append(&raw, lx->src + pos, (size_t)n);
        pos += (size_t)n;
    }
    tok->kind = TK_BLOCK_STRING;
    tok->value = hr_gql_block_string_value(lx->arena, raw.data ? raw.data : "", raw.len, &tok->len);
    lx->pos = pos;
    rc = 0;
out:
    hr_buf_free(&raw);
    return rc;
}

int hr_gql_lex(gql_lexer_t *lx, gql_token_t *tok)
{
    const unsigned char *s = (const unsigned char *)lx->src;
    size_t pos = lx->pos;
    memset(tok, 0, sizeof *tok);
    /* Ignored tokens. */
    for (;;) {
        if (pos >= lx->len) break;
        unsigned char c = s[pos];
        if (c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r') {
            pos++;
        } else if (c == 0xEF && pos + 2 < lx->len && s[pos + 1] == 0xBB && s[pos + 2] == 0xBF) {
            pos += 3; /* U+FEFF */
        } else if (c == '#') {
            while (pos < lx->len && s[pos] != '\n' && s[pos] != '\r')
                pos++;
        } else {
            break;
        }
    }
    lx->pos = pos;
    locate(lx, pos, &tok->line, &tok->col);
    if (pos >= lx->len) {
        tok->kind = TK_EOF;
        return 0;
    }
    if (lx->max_tokens && ++lx->ntokens > lx->max_tokens) {
        lx->err_limit = 1;
        return fail(lx, pos, "Document contains more than %zu tokens. Parsing aborted.",
                    lx->max_tokens);
    }
    int c = s[pos];
    gql_tok_kind_t k;
    switch (c) {
    case '!':
        k = TK_BANG;
        break;
    case '$':
        k = TK_DOLLAR;
        break;
    case '&':
        k = TK_AMP;
        break;
    case '(':
        k = TK_LPAREN;
        break;
    case ')':
        k = TK_RPAREN;
        break;
    case ':':
        k = TK_COLON;
        break;
    case '=':
        k = TK_EQUALS;
        break;
    case '@':
        k = TK_AT;
        break;
    case '[':
        k = TK_LBRACKET;
        break;
    case ']':
        k = TK_RBRACKET;
        break;
    case '{':
        k = TK_LBRACE;
        break;
    case '|':
        k = TK_PIPE;
        break;
    case '}':
        k = TK_RBRACE;
        break;
    case '.':
        if (peek(lx, pos + 1) == '.' && peek(lx, pos + 2) == '.') {
            tok->kind = TK_SPREAD;
            lx->pos = pos + 3;
            return 0;
        }
        return fail(lx, pos, "Unexpected character: \".\".");
    case '"':
        if (peek(lx, pos + 1) == '"' && peek(lx, pos + 2) == '"')
            return read_block_string(lx, pos, tok);
        return read_string(lx, pos, tok);
    default:
        if (is_name_start(c)) {
            size_t e = pos + 1;
            while (e < lx->len && (is_name_start(s[e]) || is_digit(s[e])))
                e++;
            tok->kind = TK_NAME;
            tok->value = hr_gql_strndup(lx->arena, lx->src + pos, e - pos);
            tok->len = e - pos;
            lx->pos = e;
            return 0;
        }
        if (is_digit(c) || c == '-') return read_number(lx, pos, tok);
        if (c == '\'')
            return fail(lx, pos,
                        "Unexpected single quote character ('), did you mean to use a double "
                        "quote (\")?");
        {
            char what[16];
            print_cp(lx, pos, what, sizeof what);
            return fail(lx, pos, "Unexpected character: %s.", what);
        }
    }
    tok->kind = k;
    lx->pos = pos + 1;
    return 0;
}
