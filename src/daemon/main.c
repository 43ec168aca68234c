/* SPDX-License-Identifier: MIT */
/*
 * jobworkerd: puts the job engine on the network.
 *
 * The one idea: main() only reads the configuration, then builds one
 * Daemon under a cleanup and runs it (daemon.h); exit codes: 0 after a
 * clean shutdown or --help/--version, 2 for a bad flag or configuration
 * file, 1 when the daemon cannot start, its loop fails or an upgrade's
 * exec fails. An upgrade in place does not return (daemon_reexec()).
 */

#include <string.h>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/unit-job.h"

/* ExecStopPost= of jobworker.service (unit-job.h). Always 0: a failure to
 * ask systemd must not fail the unit's stop; it is logged. */
static int stop_post(const char *holder) {
        int r = unit_stop_post(holder);

        if (r > 0)
                log_notice("the service is being stopped: stopping %s, which holds the jobs", holder);
        else if (r < 0)
                log_error("cannot ask systemd whether the service is being stopped (%s): %s keeps running",
                          strerror(-r), holder);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(config_done) Config config;
        _cleanup_daemon_ Daemon *d = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        log_open();
        config_init(&config);
        r = config_parse_argv(&config, argc, argv, &error);
        if (r == CONFIG_EXIT)
                return 0;
        if (r >= 0 && config.stop_post_unit)
                return stop_post(config.stop_post_unit);
        if (r >= 0)
                r = config_load_file(&config, &error);
        if (r < 0) {
                log_error("%s", error ? error : strerror(-r));
                return 2;
        }
        log_set_max_level(config.log_level);

        if (daemon_new(&d, &config) < 0)
                return 1;
        r = daemon_run(d);
        if (r >= 0 && daemon_upgrading(d))
                r = daemon_reexec(&d, argv); /* returns only on failure */
        return r < 0 ? 1 : 0;
}
