/* store.c: backend selection and pages (see store.h). */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

void hr_page_free(hr_page_t *page)
{
    if (!page) return;
    if (page->backend_free) page->backend_free(page->backend_data);
    free(page->events);
    free(page->attempts);
    free(page->cursor_after);
    free(page);
}

const hr_store_ops_t *hr_store_ops_for_url(const char *url)
{
    if (!url) return NULL;
    if (strncmp(url, "sqlite:", 7) == 0) return &hr_store_sqlite_ops;
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return &hr_store_pg_ops;
    /* libpq's key=value form, e.g. "host=/tmp dbname=app". */
    if (strchr(url, '=') && !strchr(url, ':')) return &hr_store_pg_ops;
    return NULL;
}
