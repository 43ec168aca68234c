/* SPDX-License-Identifier: MIT */
/*
 * Flags and configuration file of jobworkerd (see config.h).
 *
 * The one idea: both sources go through config_set() with the option's
 * long name, and a flag marks its option so the file cannot override it.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

#ifndef JOBWORKER_VERSION
#define JOBWORKER_VERSION "unknown"
#endif

typedef enum OptionType {
        OPT_STRING,
        OPT_LISTEN,
        OPT_LOG_LEVEL,
        OPT_UNSIGNED,
        OPT_DURATION,
        OPT_SIZE,
        OPT_CONFIG,
        OPT_AUTO_OFF,
        OPT_STARTUPS,
} OptionType;

typedef struct Option {
        const char *name;
        OptionType type;
        size_t offset;
        const char *metavar;
        const char *help;
} Option;

#define O(f) offsetof(Config, f)

static const Option options[] = {
        { "config", OPT_CONFIG, O(config_file), "FILE", "configuration file (default " CONFIG_DEFAULT_FILE ")" },
        { "listen", OPT_LISTEN, 0, "ADDR:PORT", "listen there (repeatable; ignored with socket activation)" },
        { "cert", OPT_STRING, O(cert), "FILE", "server certificate, PEM" },
        { "key", OPT_STRING, O(key), "FILE", "server private key, PEM" },
        { "ca", OPT_STRING, O(ca), "FILE", "CA certificate(s) client certificates must chain to, PEM" },
        { "crl", OPT_STRING, O(crl), "FILE", "certificate revocation list, PEM (default: ca-crl.pem beside the CA file, if it exists)" },
        { "tls-priority", OPT_STRING, O(priority), "STRING", "GnuTLS priority string" },
        { "policy", OPT_STRING, O(policy), "FILE", "authorization policy file" },
        { "state-dir", OPT_STRING, O(state_dir), "DIR", "directory for job state and output logs" },
        { "log-level", OPT_LOG_LEVEL, O(log_level), "LEVEL", "error, warning, notice, info or debug" },
        { "max-connections", OPT_UNSIGNED, O(max_connections), "N", "most authenticated client connections at once (1024)" },
        { "max-connections-per-identity", OPT_UNSIGNED, O(max_connections_per_identity), "N", "most authenticated connections of one client identity (256)" },
        { "max-startups", OPT_STARTUPS, O(startups), "START:RATE:FULL", "unauthenticated connections: random early drop from START (RATE%), all refused at FULL (64:30:256)" },
        { "max-startups-per-source", OPT_UNSIGNED, O(max_startups_per_source), "N", "most unauthenticated connections from one address, IPv6 by /64 (32)" },
        { "handshake-timeout", OPT_DURATION, O(handshake_timeout_usec), "DURATION", "TLS handshake deadline (5s)" },
        { "output-cap", OPT_SIZE, O(output_cap), "SIZE", "output kept per job (1G)" },
        { "retain-jobs", OPT_UNSIGNED, O(retain_jobs), "N", "finished jobs kept (1000)" },
        { "retain-age", OPT_DURATION, O(retain_age_usec), "DURATION", "how long finished jobs are kept (7d)" },
        { "stop-grace", OPT_DURATION, O(stop_grace_usec), "DURATION", "default SIGTERM-to-SIGKILL grace of Stop (5s)" },
        { "shutdown-grace", OPT_DURATION, O(shutdown_grace_usec), "DURATION", "grace of running jobs at SIGTERM (stop grace)" },
        { "max-message", OPT_SIZE, O(max_message), "SIZE", "largest request message accepted (2M)" },
        { "max-output-streams", OPT_UNSIGNED, O(max_output_streams), "N", "Output calls served at once (1024)" },
        { "output-memory", OPT_SIZE, O(output_memory), "SIZE", "output chunks in flight to followers, all calls together (16M)" },
        { "min-ping-interval", OPT_DURATION, O(min_ping_interval_usec), "DURATION", "client HTTP/2 pings closer together than this are strikes; the third gets GOAWAY too_many_pings (25s)" },
        { "keepalive", OPT_DURATION, O(keepalive_usec), "DURATION", "ping each client connection this often, drop it when no answer comes within MIN(this, 20s) (1min)" },
        { "cgroup", OPT_STRING, O(cgroup), "auto|off|PATH", "per-job cgroups: systemd's delegated subtree, none, or this cgroup v2 directory" },
        { "stop-post", OPT_STRING, O(stop_post_unit), "UNIT", "run as ExecStopPost=: at a stop of the service (not a restart or crash), stop UNIT, the unit holding the jobs, and exit" },
        { "kernel-tls", OPT_AUTO_OFF, O(kernel_tls_off), "auto|off", "hand TLS records to the kernel after the handshake where it can (auto)" },
};

void config_init(Config *c) {
        *c = (Config) { .log_level = LOG_INFO };
}

void config_done(Config *c) {
        free(c->config_file);
        for (size_t i = 0; i < c->n_listen; i++)
                free(c->listen[i]);
        free(c->cert);
        free(c->key);
        free(c->ca);
        free(c->crl);
        free(c->priority);
        free(c->policy);
        free(c->state_dir);
        free(c->cgroup);
        free(c->stop_post_unit);
        config_init(c);
}

int config_parse_duration(const char *s, uint64_t *ret_usec) {
        return parse_duration(s, ret_usec);
}

int config_parse_size(const char *s, uint64_t *ret) {
        return parse_size(s, ret);
}

int config_parse_startups(const char *s, unsigned ret[3]) {
        uint64_t v[3];
        size_t n = 0;

        for (const char *p = s;; n++) {
                const char *colon = strchr(p, ':');
                char buf[32];
                size_t len = colon ? (size_t) (colon - p) : strlen(p);
                if (n >= 3 || len == 0 || len >= sizeof buf)
                        return -EINVAL;
                memcpy(buf, p, len);
                buf[len] = 0;
                if (parse_uint64(buf, &v[n]) < 0 || v[n] > 1000000)
                        return -EINVAL;
                if (!colon) {
                        n++;
                        break;
                }
                p = colon + 1;
        }
        if (n == 1)
                v[2] = v[0], v[1] = 100; /* a hard bound: no early drop below it */
        else if (n != 3)
                return -EINVAL;
        if (v[2] == 0 || v[0] > v[2] || v[1] > 100)
                return -EINVAL;
        for (size_t i = 0; i < 3; i++)
                ret[i] = (unsigned) v[i];
        return 0;
}

static const Option *find_option(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                if (strcmp(options[i].name, name) == 0)
                        return &options[i];
        return NULL;
}

/* where: "--name" or "file:line" for messages. */
static int config_set(Config *c, const Option *o, const char *value, const char *where, char **ret_error) {
        void *field = (uint8_t *) c + o->offset;
        uint64_t v;
        int r;

        switch (o->type) {
        case OPT_STRING:
        case OPT_CONFIG: {
                char *s;
                if (!value[0])
                        return replace_message(ret_error, -EINVAL, "%s: %s needs a value", where, o->name);
                s = strdup(value);
                if (!s)
                        return -ENOMEM;
                free(*(char **) field);
                *(char **) field = s;
                if (o->type == OPT_CONFIG)
                        c->config_file_explicit = true;
                return 0;
        }
        case OPT_LISTEN: {
                char *s;
                if (!value[0])
                        return replace_message(ret_error, -EINVAL, "%s: listen needs ADDR:PORT", where);
                if (c->n_listen >= CONFIG_LISTEN_MAX)
                        return replace_message(ret_error, -EINVAL, "%s: too many listen addresses (at most %d)", where, CONFIG_LISTEN_MAX);
                s = strdup(value);
                if (!s)
                        return -ENOMEM;
                c->listen[c->n_listen++] = s;
                return 0;
        }
        case OPT_AUTO_OFF:
                if (strcmp(value, "auto") != 0 && strcmp(value, "off") != 0)
                        return replace_message(ret_error, -EINVAL, "%s: %s: '%s' is neither auto nor off", where, o->name, value);
                *(bool *) field = strcmp(value, "off") == 0;
                return 0;
        case OPT_LOG_LEVEL:
                r = log_level_from_string(value);
                if (r < 0)
                        return replace_message(ret_error, -EINVAL, "%s: unknown log level '%s' (error, warning, notice, info, debug)",
                                    where, value);
                *(int *) field = r;
                return 0;
        case OPT_UNSIGNED: {
                unsigned long long u;
                char *end;
                errno = 0;
                u = strtoull(value, &end, 10);
                if (!isdigit((unsigned char) value[0]) || *end || errno != 0 || u > 1000000000ull)
                        return replace_message(ret_error, -EINVAL, "%s: %s: '%s' is not a number", where, o->name, value);
                *(unsigned *) field = (unsigned) u;
                return 0;
        }
        case OPT_DURATION:
                if (config_parse_duration(value, &v) < 0)
                        return replace_message(ret_error, -EINVAL, "%s: %s: '%s' is not a duration (like 5s, 500ms, 2min)",
                                    where, o->name, value);
                *(uint64_t *) field = v;
                return 0;
        case OPT_STARTUPS:
                if (config_parse_startups(value, (unsigned *) field) < 0)
                        return replace_message(ret_error, -EINVAL,
                                               "%s: %s: '%s' is not START:RATE:FULL (like 64:30:256, RATE a percentage, START <= FULL) nor a number",
                                               where, o->name, value);
                return 0;
        case OPT_SIZE:
                if (config_parse_size(value, &v) < 0)
                        return replace_message(ret_error, -EINVAL, "%s: %s: '%s' is not a size (like 1024, 64K, 1M, 1G)",
                                    where, o->name, value);
                *(uint64_t *) field = v;
                return 0;
        }
        return -EINVAL;
}

static void help(const char *argv0) {
        printf("Usage: %s [OPTIONS]\n\n"
               "Runs jobs for remote users over gRPC with mutual TLS.\n\n"
               "  -h --help                           show this help\n"
               "     --version                        show the version\n",
               argv0);
        for (size_t i = 0; i < ELEMENTSOF(options); i++) {
                char buf[64];
                snprintf(buf, sizeof(buf), "--%s %s", options[i].name, options[i].metavar);
                printf("     %-32s %s\n", buf, options[i].help);
        }
        printf("\nThe configuration file takes the same names as `name = value` lines; flags win.\n"
               "See jobworkerd(8).\n");
}

int config_parse_argv(Config *c, int argc, char **argv, char **ret_error) {
        struct option longopts[ELEMENTSOF(options) + 3];
        size_t n = 0;
        bool listen_reset = false;
        int opt, idx;

        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                longopts[n++] = (struct option) { options[i].name, required_argument, NULL, 0x100 + (int) i };
        longopts[n++] = (struct option) { "help", no_argument, NULL, 'h' };
        longopts[n++] = (struct option) { "version", no_argument, NULL, 'V' };
        longopts[n] = (struct option) {};

        optind = 0;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) >= 0) {
                const Option *o;
                char where[80];
                int r;

                switch (opt) {
                case 'h':
                        help(argv[0]);
                        return CONFIG_EXIT;
                case 'V':
                        printf("jobworkerd " JOBWORKER_VERSION "\n");
                        return CONFIG_EXIT;
                case ':':
                        return replace_message(ret_error, -EINVAL, "option %s needs a value", argv[optind - 1]);
                case '?':
                        if (optopt)
                                return replace_message(ret_error, -EINVAL, "unknown option -%c (see --help)", optopt);
                        return replace_message(ret_error, -EINVAL, "unknown option %s (see --help)", argv[optind - 1]);
                default:
                        break;
                }
                o = &options[opt - 0x100];
                /* Flags replace the file's listen list as a whole. */
                if (o->type == OPT_LISTEN && !listen_reset) {
                        for (size_t i = 0; i < c->n_listen; i++)
                                free(c->listen[i]);
                        c->n_listen = 0;
                        listen_reset = true;
                }
                snprintf(where, sizeof(where), "--%s", o->name);
                r = config_set(c, o, optarg, where, ret_error);
                if (r < 0)
                        return r;
                c->set_by_flag |= 1ull << (o - options);
        }
        if (optind < argc)
                return replace_message(ret_error, -EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
        return CONFIG_RUN;
}

int config_parse_text(Config *c, const char *text, size_t size, const char *origin, char **ret_error) {
        const char *pos = text, *end = text + size;
        unsigned line = 0;

        while (pos < end) {
                const char *eol = memchr(pos, '\n', end - pos);
                size_t len = (eol ? eol : end) - pos;
                _cleanup_free_ char *l = NULL;
                char *key, *value, *eq, *p;
                const Option *o;
                char where[512];
                int r;

                line++;
                l = strndup(pos, len);
                pos = eol ? eol + 1 : end;
                if (!l)
                        return -ENOMEM;
                if (strlen(l) != len)
                        return replace_message(ret_error, -EINVAL, "%s:%u: NUL byte in line", origin, line);

                key = l + strspn(l, " \t\r");
                if (*key == '#' || *key == ';' || *key == 0)
                        continue;
                for (p = key + strlen(key); p > key && strchr(" \t\r", p[-1]); p--)
                        ;
                *p = 0;
                eq = strchr(key, '=');
                if (!eq)
                        return replace_message(ret_error, -EINVAL, "%s:%u: expected 'name = value'", origin, line);
                value = eq + 1;
                for (p = eq; p > key && strchr(" \t", p[-1]); p--)
                        ;
                *p = 0;
                value += strspn(value, " \t");
                /* Optional quotes around the value. */
                if (value[0] == '"' && strlen(value) >= 2 && value[strlen(value) - 1] == '"') {
                        value[strlen(value) - 1] = 0;
                        value++;
                }

                snprintf(where, sizeof(where), "%.400s:%u", origin, line);
                o = find_option(key);
                if (!o || o->type == OPT_CONFIG)
                        return replace_message(ret_error, -EINVAL, "%s: unknown option '%.64s'", where, key);
                if (c->set_by_flag & (1ull << (o - options)))
                        continue;
                r = config_set(c, o, value, where, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int config_load_file(Config *c, char **ret_error) {
        const char *path = c->config_file ? c->config_file : CONFIG_DEFAULT_FILE;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT && !c->config_file_explicit)
                        return 0;
                int r = negative_errno();
                replace_message(ret_error, -EINVAL, "configuration file %s: %s", path, strerror(-r));
                return r;
        }
        for (;;) {
                ssize_t k;

                if (size == allocated) {
                        char *nb;
                        if (allocated >= 1024 * 1024)
                                return replace_message(ret_error, -EINVAL, "configuration file %s: too large", path);
                        allocated = allocated ? allocated * 2 : 4096;
                        nb = realloc(buf, allocated);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                k = read(fd, buf + size, allocated - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = negative_errno();
                        replace_message(ret_error, -EINVAL, "configuration file %s: %s", path, strerror(-r));
                        return r;
                }
                if (k == 0)
                        break;
                size += k;
        }
        return config_parse_text(c, buf, size, path, ret_error);
}
