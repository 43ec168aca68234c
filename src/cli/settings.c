/* SPDX-License-Identifier: MIT */
/*
 * jwctl's settings: command line > environment > config file, one value at
 * a time. The config file is "key = value" lines; '#' starts a comment line;
 * unknown keys are errors (a typo must not silently fall back to another
 * server). Resolution is a pure function of its inputs (tested in
 * tests/unit/test-cli-settings.c).
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/hosts.h"
#include "cli/settings.h"
#include "shared/macro.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

/* The config file is small; refuse anything silly. */
#define CONFIG_MAX_BYTES (64 * 1024)

void cli_settings_done(CliSettings *s) {
        if (!s)
                return;
        free(s->server);
        free(s->host);
        free(s->port);
        free(s->cert);
        free(s->key);
        free(s->ca);
        free(s->tls_name);
        free(s->config_path);
        free(s->config_text);
        *s = (CliSettings) {};
}

int cli_split_host_port(const char *server, char **ret_host, char **ret_port, char **ret_error) {
        _cleanup_free_ char *host = NULL, *port = NULL;
        const char *colon;
        uint64_t n;

        if (server[0] == '[') {
                const char *close = strchr(server, ']');
                if (!close || close == server + 1 || close[1] != ':')
                        return replace_message(ret_error, -EINVAL, "invalid server '%s': expected HOST:PORT or [IPV6-ADDRESS]:PORT", server);
                host = strndup(server + 1, (size_t) (close - server - 1));
                colon = close + 1;
        } else {
                colon = strrchr(server, ':');
                if (!colon)
                        return replace_message(ret_error, -EINVAL, "invalid server '%s': the port is missing, expected HOST:PORT", server);
                if (colon == server)
                        return replace_message(ret_error, -EINVAL, "invalid server '%s': the host is missing, expected HOST:PORT", server);
                if (memchr(server, ':', (size_t) (colon - server)))
                        return replace_message(ret_error, -EINVAL, "invalid server '%s': write IPv6 addresses in brackets, as in [::1]:PORT", server);
                host = strndup(server, (size_t) (colon - server));
        }
        if (!host)
                return -ENOMEM;
        if (parse_uint64(colon + 1, &n) < 0 || n == 0 || n > 65535)
                return replace_message(ret_error, -EINVAL, "invalid server '%s': the port must be a number from 1 to 65535", server);
        port = strdup(colon + 1);
        if (!port)
                return -ENOMEM;
        *ret_host = TAKE_PTR(host);
        *ret_port = TAKE_PTR(port);
        return 0;
}

char *cli_config_path(CliGetenvFn getenv_fn, void *userdata) {
        const char *xdg = getenv_fn("XDG_CONFIG_HOME", userdata);
        char *p = NULL;

        /* The XDG base directory spec: relative values are to be ignored. */
        if (xdg && xdg[0] == '/') {
                if (asprintf(&p, "%s/jwctl/config", xdg) < 0)
                        return NULL;
                return p;
        }
        const char *home = getenv_fn("HOME", userdata);
        if (home && home[0] == '/') {
                if (asprintf(&p, "%s/.config/jwctl/config", home) < 0)
                        return NULL;
                return p;
        }
        return NULL;
}

enum { KEY_SERVER, KEY_CERT, KEY_KEY, KEY_CA, KEY_TIMEOUT, KEY_KERNEL_TLS, KEY_RECONNECT, KEY_KEEPALIVE, _KEY_MAX };

static const char *const config_keys[_KEY_MAX] = { "server", "cert", "key", "ca", "timeout", "kernel-tls",
                                                   "reconnect-timeout", "keepalive" };
static const char *const env_names[_KEY_MAX] = { "JWCTL_SERVER", "JWCTL_CERT", "JWCTL_KEY", "JWCTL_CA", NULL,
                                                 "JWCTL_KERNEL_TLS", "JWCTL_RECONNECT_TIMEOUT", "JWCTL_KEEPALIVE" };

static char *strip(char *s) {
        while (*s == ' ' || *s == '\t' || *s == '\r')
                s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = '\0';
        return s;
}

/* Parses the config text into values[] (malloc()ed copies). */
static int parse_config(const char *path, const char *text, char *values[static _KEY_MAX], char **ret_error) {
        _cleanup_free_ char *copy = strdup(text);
        char *line, *save = NULL;
        unsigned lineno = 0;
        const char *shown = path ?: "config file";

        if (!copy)
                return -ENOMEM;

        /* strtok_r would merge empty lines and lose the count; split by hand. */
        line = copy;
        while (line) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                lineno++;
                save = nl ? nl + 1 : NULL;

                char *s = strip(line);
                if (*s && *s != '#') {
                        char *eq = strchr(s, '=');
                        if (!eq)
                                return replace_message(ret_error, -EINVAL, "%s:%u: expected 'key = value', got '%s'", shown, lineno, s);
                        *eq = '\0';
                        char *k = strip(s), *v = strip(eq + 1);
                        size_t vn = strlen(v);

                        /* host and group lines are the fan-out's (cli/hosts.c). */
                        if (cli_hosts_config_key(k)) {
                                line = save;
                                continue;
                        }

                        /* Allow "value" in double quotes, for file names with blanks at the ends. */
                        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
                                v[vn - 1] = '\0';
                                v++;
                        }
                        int idx = -1;
                        for (int j = 0; j < _KEY_MAX; j++)
                                if (strcmp(k, config_keys[j]) == 0)
                                        idx = j;
                        if (idx < 0)
                                return replace_message(ret_error, -EINVAL, "%s:%u: unknown key '%s' (known: server, cert, key, ca, timeout, kernel-tls, reconnect-timeout, keepalive)",
                                                 shown, lineno, k);
                        if (!*v)
                                return replace_message(ret_error, -EINVAL, "%s:%u: empty value for '%s'", shown, lineno, k);
                        free(values[idx]);
                        values[idx] = strdup(v);
                        if (!values[idx])
                                return -ENOMEM;
                }
                line = save;
        }
        return 0;
}

/* A file name from the config file, relative to the config file's directory. */
static char *config_file_name(const char *config_path, const char *value) {
        char *r = NULL;

        if (value[0] == '/' || !config_path)
                return strdup(value);
        const char *slash = strrchr(config_path, '/');
        if (!slash)
                return strdup(value);
        if (asprintf(&r, "%.*s/%s", (int) (slash - config_path), config_path, value) < 0)
                return NULL;
        return r;
}

/* A duration setting where 0 means "off": the command line, the
 * environment, the config file, the default. */
static int resolve_duration(bool set, uint64_t value, uint64_t def, int key, CliGetenvFn getenv_fn, void *userdata,
                            const char *config_path, const char *config_value, const char *example,
                            uint64_t *ret, char **ret_error) {
        const char *env = getenv_fn(env_names[key], userdata);
        const char *v = env && *env ? env : config_value;
        uint64_t t;

        if (set) {
                *ret = value;
                return 0;
        }
        if (!v) {
                *ret = def;
                return 0;
        }
        if (cli_parse_duration(v, &t) < 0)
                return replace_message(ret_error, -EINVAL, "%s: invalid %s '%s': expected a duration, like %s",
                                       env && *env ? env_names[key] : config_path ?: "config file", config_keys[key], v, example);
        *ret = t;
        return 0;
}

/* kernel-tls = auto|off: the environment over the config file. */
static int resolve_kernel_tls(CliGetenvFn getenv_fn, void *userdata, const char *config_path, const char *config_value,
                              bool *ret_off, char **ret_error) {
        const char *env = getenv_fn(env_names[KEY_KERNEL_TLS], userdata);
        const char *v = env && *env ? env : config_value;

        if (v && strcmp(v, "auto") != 0 && strcmp(v, "off") != 0)
                return replace_message(ret_error, -EINVAL, "%s: invalid kernel-tls '%s': expected auto or off",
                                       env && *env ? env_names[KEY_KERNEL_TLS] : config_path ?: "config file", v);
        *ret_off = v && strcmp(v, "off") == 0;
        return 0;
}

int cli_settings_resolve(const CliArgs *a, CliGetenvFn getenv_fn, void *userdata,
                         const char *config_path, const char *config_text,
                         CliSettings *ret, char **ret_error) {
        char *config[_KEY_MAX] = {};
        CliSettings s = { .timeout_usec = CLI_DEFAULT_TIMEOUT_USEC };
        const char *cmdline[_KEY_MAX] = { a->server, a->cert, a->key, a->ca, NULL };
        char **targets[_KEY_MAX] = { &s.server, &s.cert, &s.key, &s.ca, NULL };
        const char *what[_KEY_MAX] = {
                "server (HOST:PORT)", "client certificate", "client key", "CA certificate", NULL
        };
        const char *opt[_KEY_MAX] = { "--server HOST:PORT", "--cert FILE", "--key FILE", "--ca FILE", NULL };
        int r = 0;

        if (config_text) {
                r = parse_config(config_path, config_text, config, ret_error);
                if (r < 0)
                        goto finish;
        }

        for (int k = KEY_SERVER; k <= KEY_CA; k++) {
                const char *env = getenv_fn(env_names[k], userdata);

                /* A fan-out names its hosts; no default server is needed. */
                if (k == KEY_SERVER && !cmdline[k] && cli_args_names_hosts(a))
                        continue;
                if (cmdline[k])
                        *targets[k] = strdup(cmdline[k]);
                else if (env && *env)
                        *targets[k] = strdup(env);
                else if (config[k])
                        *targets[k] = k == KEY_SERVER ? strdup(config[k]) : config_file_name(config_path, config[k]);
                else {
                        r = replace_message(ret_error, -EINVAL, "no %s given: use %s, set %s, or put '%s = …' in %s",
                                      what[k], opt[k], env_names[k], config_keys[k],
                                      config_path ?: "$XDG_CONFIG_HOME/jwctl/config");
                        goto finish;
                }
                if (!*targets[k]) {
                        r = -ENOMEM;
                        goto finish;
                }
        }

        if (a->timeout_set)
                s.timeout_usec = a->timeout_usec;
        else if (config[KEY_TIMEOUT]) {
                uint64_t t;
                if (cli_parse_duration(config[KEY_TIMEOUT], &t) < 0 || t == 0) {
                        r = replace_message(ret_error, -EINVAL, "%s: invalid timeout '%s': expected a duration greater than 0, like 10 or 2.5s",
                                      config_path ?: "config file", config[KEY_TIMEOUT]);
                        goto finish;
                }
                s.timeout_usec = t;
        }

        r = resolve_duration(a->reconnect_set, a->reconnect_usec, CLI_RECONNECT_DEFAULT_USEC, KEY_RECONNECT, getenv_fn,
                             userdata, config_path, config[KEY_RECONNECT], "5min or 0 (never reconnect)",
                             &s.reconnect_usec, ret_error);
        if (r < 0)
                goto finish;
        r = resolve_duration(a->keepalive_set, a->keepalive_usec, CLI_KEEPALIVE_DEFAULT_USEC, KEY_KEEPALIVE, getenv_fn,
                             userdata, config_path, config[KEY_KEEPALIVE], "30s or 0 (no pings)",
                             &s.keepalive_usec, ret_error);
        if (r < 0)
                goto finish;

        r = resolve_kernel_tls(getenv_fn, userdata, config_path, config[KEY_KERNEL_TLS], &s.kernel_tls_off, ret_error);
        if (r < 0)
                goto finish;

        if (s.server) {
                r = cli_split_host_port(s.server, &s.host, &s.port, ret_error);
                if (r < 0)
                        goto finish;
        }
        if (config_path && !(s.config_path = strdup(config_path))) {
                r = -ENOMEM;
                goto finish;
        }
        if (config_text && !(s.config_text = strdup(config_text))) {
                r = -ENOMEM;
                goto finish;
        }

        *ret = s;
        s = (CliSettings) {};
finish:
        cli_settings_done(&s);
        for (int k = 0; k < _KEY_MAX; k++)
                free(config[k]);
        return r;
}

static const char *real_getenv(const char *name, void *userdata) {
        return getenv(name);
}

int cli_settings_load(const CliArgs *a, CliSettings *ret, char **ret_error) {
        _cleanup_free_ char *path = cli_config_path(real_getenv, NULL);
        _cleanup_free_ char *text = NULL;

        if (path) {
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0 && errno != ENOENT)
                        return replace_message(ret_error, -EINVAL, "cannot read %s: %s", path, strerror(errno));
                if (fd >= 0) {
                        size_t n = 0;

                        text = malloc(CONFIG_MAX_BYTES + 1);
                        if (!text)
                                return -ENOMEM;
                        for (;;) {
                                ssize_t k = read(fd, text + n, CONFIG_MAX_BYTES + 1 - n);
                                if (k < 0 && errno == EINTR)
                                        continue;
                                if (k < 0)
                                        return replace_message(ret_error, -EINVAL, "cannot read %s: %s", path, strerror(errno));
                                if (k == 0)
                                        break;
                                n += (size_t) k;
                                if (n > CONFIG_MAX_BYTES)
                                        return replace_message(ret_error, -EINVAL, "%s is too large (more than %d bytes)", path,
                                                         CONFIG_MAX_BYTES);
                        }
                        if (memchr(text, '\0', n))
                                return replace_message(ret_error, -EINVAL, "%s is not a text file", path);
                        text[n] = '\0';
                }
        }
        return cli_settings_resolve(a, real_getenv, NULL, path, text, ret, ret_error);
}
