/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets of jobworkerd (see listen.h).
 *
 * The one idea: systemd's sockets win. When the daemon was socket-activated
 * the configured addresses are ignored (and that is said), so that the unit
 * files alone decide where a packaged daemon listens.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon/fdstore.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "shared/macro.h"

void sockaddr_format(const struct sockaddr *sa, char *buf, size_t size) {
        char host[INET6_ADDRSTRLEN] = "?";

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                snprintf(buf, size, "%s:%u", host, (unsigned) ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                snprintf(buf, size, "[%s]:%u", host, (unsigned) ntohs(in6->sin6_port));
        } else
                snprintf(buf, size, "(family %d)", sa->sa_family);
}

/* Splits a copy of address into host and port in place; host "" or "*"
 * becomes NULL (every address). */
static int split_address(const char *address, char *copy, char **ret_host, char **ret_port) {
        char *host, *port;

        if (copy[0] == '[') {
                char *close = strchr(copy, ']');
                if (!close || close[1] != ':') {
                        log_error("cannot listen on '%s': expected [IPV6]:PORT", address);
                        return -EINVAL;
                }
                *close = 0;
                host = copy + 1;
                port = close + 2;
        } else {
                char *colon = strrchr(copy, ':');
                if (!colon) {
                        log_error("cannot listen on '%s': expected ADDR:PORT", address);
                        return -EINVAL;
                }
                *colon = 0;
                host = copy;
                port = colon + 1;
        }
        if (!*port) {
                log_error("cannot listen on '%s': the port is missing", address);
                return -EINVAL;
        }
        *ret_host = strcmp(host, "*") == 0 || !*host ? NULL : host;
        *ret_port = port;
        return 0;
}

/* One socket bound to ai and listening; any: the dual-stack "all addresses" socket. */
static int open_one(const char *address, const struct addrinfo *ai, bool any, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_storage bound;
        socklen_t len = sizeof(bound);
        char name[80];
        int one = 1, v6only = any ? 0 : 1, r;

        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = negative_errno();
                log_error("cannot listen on '%s': socket: %s", address, strerror(-r));
                return r;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = negative_errno();
                sockaddr_format(ai->ai_addr, name, sizeof(name));
                log_error("cannot listen on '%s' (%s): %s", address, name, strerror(-r));
                return r;
        }
        if (getsockname(fd, (struct sockaddr *) &bound, &len) == 0) {
                sockaddr_format((struct sockaddr *) &bound, name, sizeof(name));
                log_notice("listening on %s", name);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int listen_on(const char *address, int *fds, size_t *n_fds, size_t max) {
        _cleanup_free_ char *copy = strdup(address);
        struct addrinfo hints = {
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_ADDRCONFIG,
                .ai_socktype = SOCK_STREAM,
        };
        struct addrinfo *res = NULL;
        char *host, *port;
        bool any;
        int r, opened = 0;

        if (!copy)
                return -ENOMEM;
        r = split_address(address, copy, &host, &port);
        if (r < 0)
                return r;
        any = !host;
        if (any) {
                hints.ai_family = AF_INET6;
                hints.ai_flags &= ~AI_ADDRCONFIG;
        }
        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0) {
                log_error("cannot listen on '%s': %s", address, gai_strerror(r));
                return -EADDRNOTAVAIL;
        }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                if (*n_fds >= max) {
                        log_error("cannot listen on '%s': too many listening sockets", address);
                        r = -E2BIG;
                        break;
                }
                r = open_one(address, ai, any, &fds[*n_fds]);
                if (r < 0)
                        break;
                (*n_fds)++;
                opened++;
                if (ai->ai_family == AF_INET6 && any)
                        break;
        }
        freeaddrinfo(res);
        return r < 0 ? r : opened;
}

/* The fds systemd passed: listening sockets, and after them what a previous
 * daemon stored (core/keeper.c's bundles, named "jobs-*"), which go to
 * handback. systemd hands stored fds back newest first and promises no
 * order within one message: fds are told apart by name only. */
static int take_activated(int n, char **names, int *fds, size_t *ret_n, FdStoreHandback *handback) {
        size_t n_sockets = 0;
        int r;

        *ret_n = 0;
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names ? names[i] : NULL;
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                if (name && strncmp(name, "jobs-", 5) == 0) {
                        r = fdstore_handback_add(handback, fd, name);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                        log_error("socket activation: fd %d (%s) is not a listening stream socket", fd,
                                  name ?: "no name");
                        return -EBADF;
                }
                if (n_sockets >= LISTEN_FDS_MAX) {
                        log_error("socket activation: too many sockets (at most %d)", LISTEN_FDS_MAX);
                        return -E2BIG;
                }
                fds[n_sockets++] = fd;
                *ret_n = n_sockets;
        }
        if (n_sockets > 0)
                log_notice("socket activation: %zu listening socket%s", n_sockets, n_sockets == 1 ? "" : "s");
        if (handback->n > 0)
                log_notice("file descriptor store: %zu bundle%s of running jobs' fds handed back", handback->n,
                           handback->n == 1 ? "" : "s");
        return 0;
}

static void strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

int listen_open_all(const Config *c, int *fds, size_t *ret_n, FdStoreHandback *handback) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(1, &names), r;

        *ret_n = 0;
        if (n < 0) {
                log_error("socket activation: %s", strerror(-n));
                return n;
        }
        if (n > 0) {
                r = take_activated(n, names, fds, ret_n, handback);
                strv_free(names);
                if (r < 0 || *ret_n > 0) {
                        if (r >= 0 && c->n_listen > 0)
                                log_notice("socket activation: ignoring the configured listen addresses");
                        return r;
                }
                /* Only stored fds (a daemon started by hand under a
                 * service manager): listen as configured. */
        }
        if (c->n_listen == 0) {
                log_error("nothing to listen on: give --listen ADDR:PORT (or start under socket activation)");
                return -EINVAL;
        }
        for (size_t i = 0; i < c->n_listen; i++) {
                r = listen_on(c->listen[i], fds, ret_n, LISTEN_FDS_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}
