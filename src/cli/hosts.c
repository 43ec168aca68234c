/* SPDX-License-Identifier: MIT */
/*
 * Named hosts, groups and host lists of a fan-out (see hosts.h).
 *
 * The one idea: every way of naming hosts (a config name, HOST:PORT, @group,
 * a range, a line of --hosts-file) goes through one expansion that yields
 * an ordered, duplicate-free list, and everything it could not resolve is
 * collected so that one message names every unknown host and group at once.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/hosts.h"
#include "shared/macro.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

/* Groups may name groups; deeper than this is taken for a loop. */
#define GROUP_DEPTH_MAX 8

static bool name_ok(const char *s, size_t n) {
        if (n == 0 || n > 255)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '-' || c == '_'))
                        return false;
        }
        return true;
}

bool cli_hosts_config_key(const char *key) {
        return strncmp(key, "host ", 5) == 0 || strncmp(key, "host\t", 5) == 0 || strncmp(key, "group ", 6) == 0 ||
               strncmp(key, "group\t", 6) == 0;
}

void cli_host_config_done(CliHostConfig *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_hosts; i++) {
                CliHostDef *h = &c->hosts[i];
                free(h->name);
                free(h->addr);
                free(h->tls_name);
                free(h->ca);
                free(h->cert);
                free(h->key);
        }
        free(c->hosts);
        for (size_t i = 0; i < c->n_groups; i++) {
                free(c->groups[i].name);
                free(c->groups[i].items);
        }
        free(c->groups);
        *c = (CliHostConfig) {};
}

static CliHostDef *find_host(const CliHostConfig *c, const char *name, size_t n) {
        for (size_t i = 0; i < c->n_hosts; i++)
                if (strlen(c->hosts[i].name) == n && memcmp(c->hosts[i].name, name, n) == 0)
                        return &c->hosts[i];
        return NULL;
}

static CliGroupDef *find_group(const CliHostConfig *c, const char *name, size_t n) {
        for (size_t i = 0; i < c->n_groups; i++)
                if (strlen(c->groups[i].name) == n && memcmp(c->groups[i].name, name, n) == 0)
                        return &c->groups[i];
        return NULL;
}

/* A file name from the config, relative to the config file's directory. */
static char *config_file(const char *path, const char *value) {
        const char *slash = path ? strrchr(path, '/') : NULL;

        if (value[0] == '/' || !slash)
                return strdup(value);
        return strdup_printf("%.*s/%s", (int) (slash - path), path, value);
}

/* "host NAME [ATTR]" = value. words is the key after "host". */
static int parse_host_line(CliHostConfig *c, const char *path, const char *shown, unsigned lineno, const char *words,
                           const char *value, char **ret_error) {
        size_t n = strcspn(words, " \t");
        const char *attr = words + n;
        char **target;
        CliHostDef *h;

        attr += strspn(attr, " \t");
        if (!name_ok(words, n))
                return replace_message(ret_error, -EINVAL, "%s:%u: invalid host name '%.*s': use letters, digits, '.', '-', '_'",
                                       shown, lineno, (int) n, words);
        h = find_host(c, words, n);
        if (!h) {
                CliHostDef *a = reallocarray(c->hosts, c->n_hosts + 1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                c->hosts = a;
                h = &c->hosts[c->n_hosts];
                *h = (CliHostDef) { .name = strndup(words, n) };
                if (!h->name)
                        return -ENOMEM;
                c->n_hosts++;
        }
        if (!*attr)
                target = &h->addr;
        else if (strcmp(attr, "tls-name") == 0)
                target = &h->tls_name;
        else if (strcmp(attr, "ca") == 0)
                target = &h->ca;
        else if (strcmp(attr, "cert") == 0)
                target = &h->cert;
        else if (strcmp(attr, "key") == 0)
                target = &h->key;
        else
                return replace_message(ret_error, -EINVAL, "%s:%u: unknown host setting '%s' (known: tls-name, ca, cert, key)",
                                       shown, lineno, attr);
        free(*target);
        *target = (target == &h->ca || target == &h->cert || target == &h->key) ? config_file(path, value) : strdup(value);
        return *target ? 0 : -ENOMEM;
}

static int parse_group_line(CliHostConfig *c, const char *shown, unsigned lineno, const char *name, const char *value,
                            char **ret_error) {
        CliGroupDef *g;

        if (!name_ok(name, strlen(name)))
                return replace_message(ret_error, -EINVAL, "%s:%u: invalid group name '%s': use letters, digits, '.', '-', '_'",
                                       shown, lineno, name);
        g = find_group(c, name, strlen(name));
        if (!g) {
                CliGroupDef *a = reallocarray(c->groups, c->n_groups + 1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                c->groups = a;
                g = &c->groups[c->n_groups];
                *g = (CliGroupDef) { .name = strdup(name) };
                if (!g->name)
                        return -ENOMEM;
                c->n_groups++;
        }
        free(g->items);
        g->items = strdup(value);
        return g->items ? 0 : -ENOMEM;
}

static char *strip(char *s) {
        while (*s == ' ' || *s == '\t' || *s == '\r')
                s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = '\0';
        return s;
}

static int parse_line(CliHostConfig *c, const char *path, const char *shown, unsigned lineno, char *line, char **ret_error) {
        char *s = strip(line), *eq, *k, *v;
        size_t vn;

        if (!*s || *s == '#' || !(eq = strchr(s, '=')))
                return 0; /* settings.c reports lines without '=' */
        *eq = '\0';
        k = strip(s);
        v = strip(eq + 1);
        if (!cli_hosts_config_key(k))
                return 0;
        vn = strlen(v);
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
                v[vn - 1] = '\0';
                v++;
        }
        if (!*v)
                return replace_message(ret_error, -EINVAL, "%s:%u: empty value for '%s'", shown, lineno, k);
        if (k[0] == 'h')
                return parse_host_line(c, path, shown, lineno, strip(k + 4), v, ret_error);
        return parse_group_line(c, shown, lineno, strip(k + 5), v, ret_error);
}

int cli_hosts_config_parse(const char *path, const char *text, CliHostConfig *ret, char **ret_error) {
        _cleanup_free_ char *copy = text ? strdup(text) : NULL;
        CliHostConfig c = {};
        const char *shown = path ?: "config file";
        unsigned lineno = 0;
        int r;

        if (text && !copy)
                return -ENOMEM;
        for (char *line = copy, *next; line; line = next) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                next = nl ? nl + 1 : NULL;
                r = parse_line(&c, path, shown, ++lineno, line, ret_error);
                if (r < 0) {
                        cli_host_config_done(&c);
                        return r;
                }
        }
        for (size_t i = 0; i < c.n_hosts; i++)
                if (!c.hosts[i].addr) {
                        r = replace_message(ret_error, -EINVAL, "%s: host %s has settings but no address (add 'host %s = ADDR[:PORT]')",
                                            shown, c.hosts[i].name, c.hosts[i].name);
                        cli_host_config_done(&c);
                        return r;
                }
        *ret = c;
        return 0;
}

static int push_string(char ***list, size_t *n, char *s) {
        char **a;

        if (!s)
                return -ENOMEM;
        a = reallocarray(*list, *n + 1, sizeof(char *));
        if (!a) {
                free(s);
                return -ENOMEM;
        }
        *list = a;
        a[(*n)++] = s;
        return 0;
}

/* Parses one "LO-HI" or "N" of a bracket into *ret_lo, *ret_hi, *ret_width. */
static int parse_bound(const char *s, size_t n, uint64_t *ret_lo, uint64_t *ret_hi, int *ret_width) {
        const char *dash = memchr(s, '-', n);
        char lo[24] = {}, hi[24] = {};
        size_t ln = dash ? (size_t) (dash - s) : n, hn = dash ? n - ln - 1 : n;
        const char *hs = dash ? dash + 1 : s;

        if (ln == 0 || hn == 0 || ln >= sizeof lo || hn >= sizeof hi)
                return -EINVAL;
        memcpy(lo, s, ln);
        memcpy(hi, hs, hn);
        for (size_t i = 0; i < ln; i++)
                if (lo[i] < '0' || lo[i] > '9')
                        return -EINVAL;
        for (size_t i = 0; i < hn; i++)
                if (hi[i] < '0' || hi[i] > '9')
                        return -EINVAL;
        if (parse_uint64(lo, ret_lo) < 0 || parse_uint64(hi, ret_hi) < 0 || *ret_lo > *ret_hi)
                return -EINVAL;
        *ret_width = lo[0] == '0' && ln > 1 ? (int) ln : 0;
        return 0;
}

int cli_hosts_expand_range(const char *item, char ***list, size_t *n, char **ret_error) {
        const char *open = strchr(item, '['), *close;
        size_t start = *n;

        if (!open) {
                if (strchr(item, ']'))
                        return replace_message(ret_error, -EINVAL, "invalid host range '%s': ']' without '['", item);
                return push_string(list, n, strdup(item));
        }
        close = strchr(open, ']');
        if (!close || close == open + 1)
                return replace_message(ret_error, -EINVAL, "invalid host range '%s': expected PREFIX[LO-HI]SUFFIX, like web[01-20]", item);
        for (const char *w = open + 1; w < close;) {
                size_t wn = strcspn(w, ",]");
                uint64_t lo, hi;
                int width, r;

                if (parse_bound(w, wn, &lo, &hi, &width) < 0)
                        return replace_message(ret_error, -EINVAL, "invalid host range '%s': expected numbers like [01-20] or [1-3,7]", item);
                if (hi - lo >= CLI_HOSTS_MAX || *n - start + (hi - lo + 1) > CLI_HOSTS_MAX)
                        return replace_message(ret_error, -EINVAL, "host range '%s' is too large (at most %d hosts)", item, CLI_HOSTS_MAX);
                for (uint64_t v = lo; v <= hi; v++) {
                        _cleanup_free_ char *name = strdup_printf("%.*s%0*llu%s", (int) (open - item), item, width,
                                                                  (unsigned long long) v, close + 1);
                        if (!name)
                                return -ENOMEM;
                        /* A second bracket in the suffix: expand it in turn. */
                        r = cli_hosts_expand_range(name, list, n, ret_error);
                        if (r < 0)
                                return r;
                        if (*n - start > CLI_HOSTS_MAX)
                                return replace_message(ret_error, -EINVAL, "host range '%s' is too large (at most %d hosts)", item,
                                                       CLI_HOSTS_MAX);
                }
                w += wn + (w[wn] == ',');
        }
        return 0;
}

void cli_host_list_done(CliHostList *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                free(l->hosts[i].name);
        free(l->hosts);
        *l = (CliHostList) {};
}

typedef struct Expand {
        const CliHostConfig *cfg;
        CliHostList *out;
        char *unknown;       /* "a, @b" */
        char **error;
} Expand;

static int note_unknown(Expand *e, const char *what, size_t n) {
        char *u = e->unknown ? strdup_printf("%s, %.*s", e->unknown, (int) n, what) : strndup(what, n);

        if (!u)
                return -ENOMEM;
        free(e->unknown);
        e->unknown = u;
        return 0;
}

static int add_host(Expand *e, const char *name) {
        const CliHostDef *def = find_host(e->cfg, name, strlen(name));
        _cleanup_free_ char *h = NULL, *p = NULL;
        CliHost *a;

        if (!def) {
                if (!strchr(name, ':'))
                        return note_unknown(e, name, strlen(name));
                int r = cli_split_host_port(name, &h, &p, e->error);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < e->out->n; i++)
                if (strcmp(e->out->hosts[i].name, name) == 0)
                        return 0;
        if (e->out->n >= CLI_HOSTS_MAX)
                return replace_message(e->error, -EINVAL, "too many hosts (at most %d)", CLI_HOSTS_MAX);
        a = reallocarray(e->out->hosts, e->out->n + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        e->out->hosts = a;
        a[e->out->n] = (CliHost) { .name = strdup(name), .def = def };
        if (!a[e->out->n].name)
                return -ENOMEM;
        e->out->n++;
        return 0;
}

static int expand_list(Expand *e, const char *list, unsigned depth);

static int expand_item(Expand *e, const char *item, size_t n, unsigned depth) {
        _cleanup_free_ char *word = strndup(item, n);
        char **names = NULL;
        size_t n_names = 0;
        int r;

        if (!word)
                return -ENOMEM;
        if (word[0] == '@') {
                const CliGroupDef *g = find_group(e->cfg, word + 1, n - 1);
                if (!g)
                        return note_unknown(e, word, n);
                if (depth >= GROUP_DEPTH_MAX)
                        return replace_message(e->error, -EINVAL, "groups nest more than %d deep at %s (a group that names itself?)",
                                               GROUP_DEPTH_MAX, word);
                return expand_list(e, g->items, depth + 1);
        }
        /* [V6-ADDRESS]:PORT is an address, not a range. */
        if (word[0] == '[')
                return add_host(e, word);
        r = cli_hosts_expand_range(word, &names, &n_names, e->error);
        for (size_t i = 0; i < n_names; i++) {
                if (r >= 0)
                        r = add_host(e, names[i]);
                free(names[i]);
        }
        free(names);
        return r;
}

/* Items are separated by commas and blanks, except inside brackets. */
static int expand_list(Expand *e, const char *list, unsigned depth) {
        const char *p = list;

        while (*p) {
                const char *start;
                unsigned nest = 0;

                p += strspn(p, ", \t\n");
                start = p;
                for (; *p; p++) {
                        if (*p == '[')
                                nest++;
                        else if (*p == ']' && nest > 0)
                                nest--;
                        else if (nest == 0 && (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n'))
                                break;
                }
                if (p > start) {
                        int r = expand_item(e, start, (size_t) (p - start), depth);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int cli_hosts_add_list(const CliHostConfig *cfg, const char *list, CliHostList *hosts, char **ret_error) {
        Expand e = { .cfg = cfg, .out = hosts, .error = ret_error };
        int r = expand_list(&e, list, 0);

        if (r >= 0 && e.unknown)
                r = replace_message(ret_error, -EINVAL, "unknown %s: %s (name hosts with 'host NAME = ADDR' and groups with "
                                    "'group NAME = ...' in the config file, or give HOST:PORT)",
                                    strchr(e.unknown, ',') ? "hosts or groups" : e.unknown[0] == '@' ? "group" : "host", e.unknown);
        free(e.unknown);
        return r;
}

int cli_hosts_add_file_text(const CliHostConfig *cfg, const char *text, const char *file, CliHostList *hosts,
                            char **ret_error) {
        _cleanup_free_ char *copy = strdup(text);
        unsigned lineno = 0;

        if (!copy)
                return -ENOMEM;
        for (char *line = copy, *next; line; line = next) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                next = nl ? nl + 1 : NULL;
                lineno++;
                char *s = strip(line);
                if (!*s || *s == '#')
                        continue;
                int r = cli_hosts_add_list(cfg, s, hosts, ret_error);
                if (r == -EINVAL && ret_error && *ret_error) {
                        char *m = strdup_printf("%s:%u: %s", file, lineno, *ret_error);
                        if (m) {
                                free(*ret_error);
                                *ret_error = m;
                        }
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int dup_or_keep(char **target, const char *override) {
        if (!override)
                return 0;
        free(*target);
        *target = strdup(override);
        return *target ? 0 : -ENOMEM;
}

int cli_host_settings(const CliSettings *base, const CliHost *h, CliSettings *ret, char **ret_error) {
        CliSettings s = *base;
        const char *addr = h->def ? h->def->addr : h->name;
        int r;

        s.server = s.host = s.port = s.tls_name = s.cert = s.key = s.ca = NULL;
        s.config_path = s.config_text = NULL;
        /* An address without a port gets the default one. */
        if (strchr(addr, ':') && (addr[0] != '[' || strstr(addr, "]:")))
                s.server = strdup(addr);
        else
                s.server = strdup_printf("%s:%s", addr, CLI_HOSTS_DEFAULT_PORT);
        s.cert = strdup(base->cert);
        s.key = strdup(base->key);
        s.ca = strdup(base->ca);
        if (!s.server || !s.cert || !s.key || !s.ca) {
                cli_settings_done(&s);
                return -ENOMEM;
        }
        if (h->def) {
                r = dup_or_keep(&s.tls_name, h->def->tls_name);
                if (r >= 0)
                        r = dup_or_keep(&s.cert, h->def->cert);
                if (r >= 0)
                        r = dup_or_keep(&s.key, h->def->key);
                if (r >= 0)
                        r = dup_or_keep(&s.ca, h->def->ca);
                if (r < 0) {
                        cli_settings_done(&s);
                        return r;
                }
        }
        r = cli_split_host_port(s.server, &s.host, &s.port, ret_error);
        if (r < 0) {
                if (ret_error && *ret_error) {
                        char *m = strdup_printf("host %s: %s", h->name, *ret_error);
                        free(*ret_error);
                        *ret_error = m;
                }
                cli_settings_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

bool cli_hosts_job_ref(const char *word) {
        return word[0] == '@' || strchr(word, ':') != NULL;
}
