/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where jwctl finds its server, certificate, key and CA: the command line,
 * then the environment (JWCTL_SERVER, JWCTL_CERT, JWCTL_KEY, JWCTL_CA), then
 * the config file $XDG_CONFIG_HOME/jwctl/config (~/.config/jwctl/config),
 * lines "key = value" with the keys server, cert, key, ca, timeout,
 * kernel-tls, reconnect-timeout, keepalive (also JWCTL_KERNEL_TLS,
 * JWCTL_RECONNECT_TIMEOUT, JWCTL_KEEPALIVE). Lines "host NAME ..." and
 * "group NAME" belong to the fan-out (cli/hosts.h): skipped here, and the
 * file's text kept in config_text for it.
 * The resolving function is pure (environment lookup and file text are
 * passed in) so it is unit-tested; cli_settings_load() does the I/O.
 */

#include <stdint.h>

#include "cli/args.h"

typedef struct CliSettings {
        char *server;        /* as given: HOST:PORT */
        char *host;          /* without brackets for IPv6 literals */
        char *port;
        char *cert;
        char *key;
        char *ca;
        uint64_t timeout_usec;
        uint64_t reconnect_usec; /* bound of one outage of a follower; 0: never reconnect */
        uint64_t keepalive_usec; /* HTTP/2 ping interval while a call is open; 0: no pings */
        bool kernel_tls_off; /* kernel-tls = off (JWCTL_KERNEL_TLS): records stay in GnuTLS */
        uint32_t stream_window; /* HTTP/2 receive window per call; 0: the client's default (cli/h2.c) */
        /* Fan-out (cli/hosts.h): the name the server certificate must carry
         * (NULL: host), and the config file for its host/group lines. */
        char *tls_name;
        char *config_path;
        char *config_text;
} CliSettings;

/* Returns the value of an environment variable or NULL. */
typedef const char *(*CliGetenvFn)(const char *name, void *userdata);

/* Splits "HOST:PORT" or "[V6ADDR]:PORT"; the port must be 1..65535.
 * -EINVAL with a malloc()ed message in *ret_error on a malformed value. */
int cli_split_host_port(const char *server, char **ret_host, char **ret_port, char **ret_error);

/* Resolves the settings. config_path may be NULL (no config file location
 * known), config_text NULL (no such file). Relative file names in the config
 * file are taken relative to the config file's directory. On a usage error
 * (nothing gives a server, malformed config line, bad value) returns -EINVAL
 * with a malloc()ed one-line message in *ret_error. */
int cli_settings_resolve(const CliArgs *a, CliGetenvFn getenv_fn, void *userdata,
                         const char *config_path, const char *config_text,
                         CliSettings *ret, char **ret_error);

/* As above with the process environment and the config file read from disk
 * (a missing file is fine, an unreadable one an error). */
int cli_settings_load(const CliArgs *a, CliSettings *ret, char **ret_error);

/* Where the config file is looked for, malloc()ed, or NULL if neither
 * XDG_CONFIG_HOME nor HOME is set. */
char *cli_config_path(CliGetenvFn getenv_fn, void *userdata);

void cli_settings_done(CliSettings *s);
