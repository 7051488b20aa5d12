/* text.h: text from outside (webhook responses, database JSON) made safe to store and parse. */
#ifndef HR_TEXT_H
#define HR_TEXT_H

#include <jansson.h>

/* A copy of s in which every byte sequence that is not valid UTF-8 (overlong forms, surrogates,
 * code points past U+10FFFF, stray continuation bytes) is replaced by U+FFFD. Databases reject
 * invalid UTF-8 in text and JSON, and one bad response body must never make a write fail
 * forever. The caller frees the result. */
char *hr_utf8_clean(const char *s);

/* Parses JSON text from the database (any value, not only objects). jansson keeps integers in 64
 * bits; an integer that does not fit (PostgreSQL numeric, SQLite text) is read as a real rather
 * than failing the whole value; text that is not JSON at all comes back as a JSON string, so a
 * value is never lost. NULL gives JSON null. Returns a new reference. */
json_t *hr_json_from_db(const char *s);

/* 1 if hr_json_from_db(s) reads s as JSON, 0 if it would keep s as a JSON string (or s is NULL). */
int hr_json_db_is_json(const char *s);

/* 1 when s is a UUID in its text form: 36 characters, hex digits in groups of 8-4-4-4-12
 * separated by '-', either case; 0 otherwise (also for NULL). */
int hr_is_uuid(const char *s);

#endif
