/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Which job systemd has queued for our own unit: on SIGTERM this tells a
 * `systemctl restart` (JobType "restart": keep the jobs) from a `systemctl
 * stop` or a shutdown (JobType "stop": stop them). Blocking, bounded; call it
 * from one thread at a time (each call opens and closes its own connection).
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/* Named results besides the -errno of a failed call (-ETIMEDOUT, ...). */
#define UNIT_JOB_E_NO_SYSTEMD (-ENOMEDIUM) /* not booted with systemd, or not in a unit */
#define UNIT_JOB_E_NO_JOB     (-ENXIO)     /* systemd answered: no job queued for the unit */
#define UNIT_JOB_E_NO_BUS     (-ENOTCONN)  /* no address could be connected to */

/* Total time for all attempts together. */
#define UNIT_JOB_TIMEOUT_USEC 1000000ull

/* One place to ask. bus_client: a message bus (Hello, names); false: a
 * direct connection to systemd (its private socket, root only). */
typedef struct UnitJobAddress {
        const char *address;            /* sd-bus address, "unix:path=..." */
        bool bus_client;
} UnitJobAddress;

/* The JobType of the job queued for the unit this process runs in
 * (sd_pid_get_unit), asked first over /run/systemd/private (still there
 * during shutdown, when the system bus is already gone), then over the system
 * bus. On success *ret is a new string the caller frees ("stop", "restart",
 * "start", "reload", ...). Returns UNIT_JOB_E_NO_SYSTEMD, UNIT_JOB_E_NO_JOB,
 * UNIT_JOB_E_NO_BUS or another -errno (-ETIMEDOUT after
 * UNIT_JOB_TIMEOUT_USEC). */
int unit_job_type(char **ret);

/* The same for a given unit and list of addresses, tried in order until one
 * answers (an answer that there is no job counts); n_addresses > 0. For tests
 * and for callers that know better. */
int unit_job_type_query(const char *unit, const UnitJobAddress *addresses, unsigned n_addresses,
                        uint64_t timeout_usec, char **ret);

/* For ExecStopPost= of jobworker.service: when systemd's job for our unit
 * is a stop (systemctl stop, shutdown), stop holder (the unit holding the
 * jobs, jobworker-jobs.service) too, so that nothing of the jobs is left
 * even if the daemon died in the middle of stopping them. After a crash
 * (no job queued yet) or at a restart: nothing. 1: the stop was queued,
 * 0: nothing to do, -errno. */
int unit_stop_post(const char *holder);
