/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The hosts a fan-out runs on: named hosts and groups from jwctl's config
 * file, and the host lists of --hosts and --hosts-file.
 *
 * Config lines (in the file settings.c reads; settings.c leaves them to us):
 *   host NAME = ADDR[:PORT]          the host's address (port default 50051)
 *   host NAME tls-name = NAME        name its server certificate must carry
 *   host NAME ca|cert|key = FILE     per-host credentials (relative: to the
 *                                    config file's directory)
 *   group NAME = ITEM ITEM ...       items as on --hosts (names, @groups,
 *                                    ranges, HOST:PORT)
 * A host list is comma-separated items: NAME, HOST:PORT, @GROUP, and ranges
 * like web[01-20] or web[1-3,7] (the lower bound's width is kept when it
 * starts with 0). Pure functions: no I/O, unit-tested.
 */

#include <stdbool.h>
#include <stddef.h>

#include "cli/settings.h"

/* Most hosts one list may expand to, and most items of one range. */
#define CLI_HOSTS_MAX 10000
/* Port used when a host's address has none. */
#define CLI_HOSTS_DEFAULT_PORT "50051"

typedef struct CliHostDef {
        char *name;
        char *addr;         /* HOST[:PORT] as written; NULL until its "host NAME =" line */
        char *tls_name;     /* NULL: the host part of addr */
        char *ca, *cert, *key;   /* NULL: the global ones */
} CliHostDef;

typedef struct CliGroupDef {
        char *name;
        char *items;        /* the value, as written */
} CliGroupDef;

typedef struct CliHostConfig {
        CliHostDef *hosts;
        size_t n_hosts;
        CliGroupDef *groups;
        size_t n_groups;
} CliHostConfig;

/* One host to run on. */
typedef struct CliHost {
        char *name;         /* shown in prefixes and the summary */
        const CliHostDef *def;   /* borrowed from the config, or NULL for a bare HOST:PORT */
} CliHost;

typedef struct CliHostList {
        CliHost *hosts;
        size_t n;
} CliHostList;

/* True for a config key that belongs to us ("host NAME ...", "group NAME"). */
bool cli_hosts_config_key(const char *key);

/* Parses the host and group lines of the config text (others are
 * skipped). -EINVAL with a message naming path and line on a bad one. */
int cli_hosts_config_parse(const char *path, const char *text, CliHostConfig *ret, char **ret_error);
void cli_host_config_done(CliHostConfig *c);

/* Expands a range item ("web[01-03]x" -> web01x web02x web03x) appending
 * to *list (malloc()ed strings, *n entries). No bracket: the item itself.
 * -EINVAL with a message on a malformed range or one above the bound. */
int cli_hosts_expand_range(const char *item, char ***list, size_t *n, char **ret_error);

/* Adds the hosts of one list (a --hosts value, a line of --hosts-file) to
 * *hosts, dropping duplicates (first one wins). Unknown names and groups
 * are one -EINVAL message naming all of them. */
int cli_hosts_add_list(const CliHostConfig *cfg, const char *list, CliHostList *hosts, char **ret_error);
/* The same for the text of a --hosts-file: one list per line, '#' comments. */
int cli_hosts_add_file_text(const CliHostConfig *cfg, const char *text, const char *file, CliHostList *hosts,
                            char **ret_error);
void cli_host_list_done(CliHostList *l);

/* The settings to reach host h: base with the host's address, tls-name
 * and credential overrides. Release with cli_settings_done(). */
int cli_host_settings(const CliSettings *base, const CliHost *h, CliSettings *ret, char **ret_error);

/* A job reference that names hosts: "@RUN" (a saved run) or "HOST:ID". */
bool cli_hosts_job_ref(const char *word);
