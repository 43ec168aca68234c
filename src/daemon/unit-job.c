/* SPDX-License-Identifier: MIT */

/*
 * The JobType systemd has queued for our own unit (see unit-job.h). The one
 * idea: ask systemd itself on its private socket first and the system bus
 * only second, all under one deadline. At shutdown dbus.service is stopped
 * before us: in the Debian 12 VM (systemd 252) the SIGTERM handler of a
 * service got "not connected" from the system bus while /run/systemd/private
 * still named the unit's "stop" job. And the caller is handling SIGTERM with
 * systemd's stop timeout running, so nothing here may wait longer than the
 * deadline it was given, whatever the other end does.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>
#include <time.h>

#include "daemon/unit-job.h"
#include "shared/macro.h"
#include "shared/time-util.h"

#define SYSTEMD_DESTINATION "org.freedesktop.systemd1"
#define UNIT_PATH_PREFIX "/org/freedesktop/systemd1/unit"
#define UNIT_INTERFACE "org.freedesktop.systemd1.Unit"
#define JOB_INTERFACE "org.freedesktop.systemd1.Job"
#define PRIVATE_ADDRESS "unix:path=/run/systemd/private"
#define SYSTEM_BUS_ADDRESS "unix:path=/run/dbus/system_bus_socket"

/* sd-bus.h brings the cleanup helpers sd_bus_close_unrefp and sd_bus_message_unrefp. */

/* Sets the timeout of the next call to what is left until deadline;
 * -ETIMEDOUT when nothing is left (a timeout of 0 would mean sd-bus's
 * default of 25 s). */
static int set_call_timeout(sd_bus *bus, uint64_t deadline) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (now >= deadline)
                return -ETIMEDOUT;
        return sd_bus_set_method_call_timeout(bus, deadline - now);
}

static int connect_to(const UnitJobAddress *a, sd_bus **ret) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, a->address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, a->bus_client);
        if (r < 0)
                return r;
        /* Connecting a unix socket does not wait; the authentication
         * (and Hello on a bus) is finished by wait_ready(). */
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* Drives the connection until it is ready, never past deadline. sd-bus
 * would finish the authentication inside the first call, but with its own
 * timeout (tens of seconds), not the call's: a peer that accepts the
 * connection and says nothing would hold SIGTERM handling that long. */
static int wait_ready(sd_bus *bus, uint64_t deadline) {
        for (;;) {
                uint64_t now;
                int r = sd_bus_is_ready(bus);
                if (r != 0)
                        return r < 0 ? r : 0;
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0 && r != -EINTR)
                        return r;
        }
}

/* Unit.Job of unit_path, then that job's JobType. */
static int ask(sd_bus *bus, const char *unit_path, uint64_t deadline, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *job_path;
        uint32_t job_id;
        char *type = NULL;
        int r;

        r = set_call_timeout(bus, deadline);
        if (r < 0)
                return r;
        r = sd_bus_get_property(bus, SYSTEMD_DESTINATION, unit_path, UNIT_INTERFACE, "Job",
                                &error, &reply, "(uo)");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "(uo)", &job_id, &job_path);
        if (r < 0)
                return r;
        if (job_id == 0)
                return UNIT_JOB_E_NO_JOB;

        r = set_call_timeout(bus, deadline);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(bus, SYSTEMD_DESTINATION, job_path, JOB_INTERFACE, "JobType",
                                       &error, &type);
        /* The job finished between the two calls: its object is gone.
         * (sd_bus_call() fills the error for a timeout or a lost
         * connection too, so the name must be checked.) */
        if (r < 0 && (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                      sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
                      sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_PROPERTY)))
                return UNIT_JOB_E_NO_JOB;
        if (r < 0)
                return r;
        *ret = type;
        return 0;
}

int unit_job_type_query(const char *unit, const UnitJobAddress *addresses, unsigned n_addresses,
                        uint64_t timeout_usec, char **ret) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        _cleanup_free_ char *unit_path = NULL;
        int r, result = UNIT_JOB_E_NO_BUS;

        if (!unit || !addresses || n_addresses == 0 || !ret)
                return -EINVAL;
        r = sd_bus_path_encode(UNIT_PATH_PREFIX, unit, &unit_path);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < n_addresses; i++) {
                _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;

                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return result == UNIT_JOB_E_NO_BUS ? -ETIMEDOUT : result;
                /* Cannot connect: try the next one (the result stays
                 * "no bus" unless an earlier one got further). */
                if (connect_to(&addresses[i], &bus) < 0)
                        continue;
                r = wait_ready(bus, deadline);
                if (r >= 0)
                        r = ask(bus, unit_path, deadline, ret);
                if (r >= 0 || r == UNIT_JOB_E_NO_JOB || r == -ETIMEDOUT)
                        return r;
                result = r;
        }
        return result;
}

/* Where systemd answers: its private socket first (still there during
 * shutdown, when the system bus is already gone), then the system bus. */
static void system_addresses(UnitJobAddress addresses[static 2]) {
        const char *system_bus = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");

        addresses[0] = (UnitJobAddress) { PRIVATE_ADDRESS, false };
        addresses[1] = (UnitJobAddress) { system_bus ? system_bus : SYSTEM_BUS_ADDRESS, true };
}

int unit_job_type(char **ret) {
        _cleanup_free_ char *unit = NULL;
        UnitJobAddress addresses[2];

        if (!ret)
                return -EINVAL;
        if (sd_booted() <= 0)
                return UNIT_JOB_E_NO_SYSTEMD;
        if (sd_pid_get_unit(0, &unit) < 0)
                return UNIT_JOB_E_NO_SYSTEMD;

        system_addresses(addresses);
        return unit_job_type_query(unit, addresses, ELEMENTSOF(addresses), UNIT_JOB_TIMEOUT_USEC, ret);
}

/* Manager.StopUnit(unit, "replace") over the first address that answers:
 * queues the stop and returns (no wait for it to finish). */
static int stop_unit_at(const UnitJobAddress *a, const char *unit, uint64_t deadline) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = connect_to(a, &bus);

        if (r >= 0)
                r = wait_ready(bus, deadline);
        if (r >= 0)
                r = set_call_timeout(bus, deadline);
        if (r >= 0)
                r = sd_bus_call_method(bus, SYSTEMD_DESTINATION, "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "StopUnit", &error, NULL, "ss", unit,
                                       "replace");
        return r;
}

int unit_stop_post(const char *holder) {
        _cleanup_free_ char *type = NULL;
        UnitJobAddress addresses[2];
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + UNIT_JOB_TIMEOUT_USEC * 5;
        int r = unit_job_type(&type);

        if (r == UNIT_JOB_E_NO_JOB || r == UNIT_JOB_E_NO_SYSTEMD || (r >= 0 && strcmp(type, "stop") != 0))
                return 0; /* a crash (no job yet) or a restart: the jobs stay */
        if (r < 0)
                return r;
        system_addresses(addresses);
        for (size_t i = 0; i < ELEMENTSOF(addresses); i++) {
                r = stop_unit_at(&addresses[i], holder, deadline);
                if (r >= 0)
                        return 1;
        }
        return r;
}
