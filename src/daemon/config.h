/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * jobworkerd's configuration: command-line flags and a `key = value` file
 * with the same names (flags win). One table describes every option, so
 * the two can never disagree; jobworkerd(8) documents them.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

#define CONFIG_DEFAULT_FILE "/etc/jobworker/jobworkerd.conf"
#define CONFIG_DEFAULT_CERT "/etc/jobworker/server.pem"
#define CONFIG_DEFAULT_KEY "/etc/jobworker/server-key.pem"
#define CONFIG_DEFAULT_CA "/etc/jobworker/ca.pem"
/* The CRL looked for in the CA file's directory when none is configured. */
#define CONFIG_DEFAULT_CRL_NAME "ca-crl.pem"
#define CONFIG_DEFAULT_POLICY "/etc/jobworker/policy.conf"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/jobworker"
#define CONFIG_LISTEN_MAX 16

typedef struct Config {
        char *config_file;          /* NULL: CONFIG_DEFAULT_FILE if it exists */
        bool config_file_explicit;
        char *listen[CONFIG_LISTEN_MAX];
        size_t n_listen;
        char *cert;
        char *key;
        char *ca;
        char *crl;                  /* NULL: ca-crl.pem beside the CA file, if it exists */
        char *priority;             /* NULL: TLS_DEFAULT_PRIORITY */
        char *policy;
        char *state_dir;
        int log_level;
        unsigned max_connections;   /* authenticated connections; 0: bridge default (1024) */
        unsigned max_connections_per_identity; /* 0: bridge default (256) */
        unsigned startups[3];       /* max-startups start:rate:full; full 0: bridge default (64:30:256) */
        unsigned max_startups_per_source; /* 0: bridge default (32) */
        uint64_t handshake_timeout_usec; /* 0: bridge default (5 s) */
        uint64_t output_cap;        /* bytes per job, 0: engine default */
        unsigned retain_jobs;       /* 0: engine default */
        uint64_t retain_age_usec;   /* 0: engine default */
        uint64_t stop_grace_usec;   /* 0: engine default */
        uint64_t shutdown_grace_usec; /* grace of jobs at SIGTERM, 0: the stop grace */
        uint64_t max_message;       /* largest request, bytes; 0: 2 MiB */
        unsigned max_output_streams; /* 0: server default (1024) */
        uint64_t output_memory;     /* bytes of chunks in flight to followers; 0: server default (16 MiB) */
        uint64_t min_ping_interval_usec; /* client pings closer are strikes; 0: server default (25 s) */
        uint64_t keepalive_usec;    /* server's keepalive ping interval; 0: server default (1 min) */
        char *cgroup;               /* "auto" (NULL), "off", or a cgroup v2 path */
        char *stop_post_unit;       /* --stop-post UNIT: only that, then exit */
        bool kernel_tls_off;        /* kernel-tls = off: records stay in GnuTLS */

        uint64_t set_by_flag;       /* internal: bit per option given as a flag */
} Config;

/* Result of config_parse_argv() besides errors. */
enum {
        CONFIG_RUN = 0,
        CONFIG_EXIT = 1,            /* --help / --version was printed */
};

void config_init(Config *c);
void config_done(Config *c);

/* Parses flags (the full argv). Returns CONFIG_RUN, CONFIG_EXIT, or -EINVAL
 * with a malloc()ed one-line message in *ret_error. */
int config_parse_argv(Config *c, int argc, char **argv, char **ret_error);

/* Reads the configuration file (c->config_file, or the default when it
 * exists); options already set by a flag are kept. Errors name the file
 * and line. */
int config_load_file(Config *c, char **ret_error);

/* Parses file contents (for tests and fuzzing); origin names it in errors. */
int config_parse_text(Config *c, const char *text, size_t size, const char *origin, char **ret_error);

/* The DURATION and SIZE of shared/parse-util.h ("5s", "2.5min", "1h";
 * "64K", "1.5G", "1KiB"), the grammar the policy and jwctl read too. */
int config_parse_duration(const char *s, uint64_t *ret_usec);
int config_parse_size(const char *s, uint64_t *ret);

/* max-startups: "START:RATE:FULL" (OpenSSH's MaxStartups: from START
 * unauthenticated connections on, refuse RATE% of new ones, rising to all at
 * FULL) or "N" (a hard bound, no early drop). ret[3] = start, rate, full. */
int config_parse_startups(const char *s, unsigned ret[3]);
