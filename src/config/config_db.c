/* config_db.c: which database herald opens (see hr_config_database_url in config.h).
 *
 * `database: sqlite:PATH` in a file means PATH relative to that file, so that a project directory
 * can be moved or run from anywhere; HERALD_DATABASE_URL=sqlite:PATH is relative to the working
 * directory, as paths in the environment usually are. The result is absolute, so that every
 * process (apply, serve, the operator commands) names the same file the same way, and the
 * lock beside it is found. */
#include "config/config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The directory relative paths resolve against; a new string. */
static char *base_dir(const hr_config_t *cfg)
{
    char *dir = NULL;
    if (cfg && cfg->path && !(cfg->database && cfg->database_from_env)) {
        const char *slash = strrchr(cfg->path, '/');
        char *d = slash
                      ? hr_xstrndup(cfg->path, slash == cfg->path ? 1 : (size_t)(slash - cfg->path))
                      : hr_xstrdup(".");
        dir = realpath(d, NULL);
        if (!dir) dir = hr_xstrdup(d);
        free(d);
    } else {
        char buf[PATH_MAX];
        dir = hr_xstrdup(getcwd(buf, sizeof buf) ? buf : ".");
    }
    return dir;
}

char *hr_config_database_url(const hr_config_t *cfg, int *defaulted)
{
    const char *url = cfg ? cfg->database : NULL;
    const char *env = getenv("HERALD_DATABASE_URL");
    if (!cfg && env && *env) url = env;
    if (defaulted) *defaulted = url == NULL;
    if (url && strncmp(url, "sqlite:", 7) != 0) return hr_xstrdup(url);
    const char *path = url ? url + 7 : "herald.db";
    if (path[0] == '/') return hr_xstrdup(url);
    hr_config_t tmp = {0};
    if (!cfg && url) {
        tmp.database = (char *)url;
        tmp.database_from_env = 1;
        cfg = &tmp;
    }
    char *dir = base_dir(cfg);
    char *out = hr_xasprintf("sqlite:%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", path);
    free(dir);
    return out;
}
