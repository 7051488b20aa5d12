/* arena.c: the bump allocator behind every parsed document and schema.
 *
 * Memory comes from chunks of at least 16 KiB, newest first; an allocation larger than a chunk
 * gets a chunk of its own. Nothing is freed before hr_gql_arena_free, which releases all
 * chunks at once. Allocations are zeroed and aligned for any type. Out-of-memory aborts (the
 * hr_x* allocators). */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "gql/gql_int.h"

#define CHUNK_SIZE 16384

struct gql_chunk {
    gql_chunk_t *next;
    size_t used; /* bytes of data handed out */
    size_t cap;  /* bytes of data */
    alignas(max_align_t) unsigned char data[];
};

void *hr_gql_alloc(gql_arena_t *a, size_t n)
{
    size_t align = alignof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    if (n == 0) n = align;
    gql_chunk_t *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        c = hr_xmalloc(sizeof *c + cap);
        c->used = 0;
        c->cap = cap;
        if (n > CHUNK_SIZE && a->head) {
            /* A big allocation: keep the current chunk in front for the small ones. */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *hr_gql_strndup(gql_arena_t *a, const char *s, size_t n)
{
    char *p = hr_gql_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void hr_gql_arena_free(gql_arena_t *a)
{
    gql_chunk_t *c = a->head;
    while (c) {
        gql_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}
