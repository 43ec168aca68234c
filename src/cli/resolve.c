/* SPDX-License-Identifier: MIT */
/*
 * JOB arguments to job ids (see resolve.h).
 *
 * The one idea: resolution is the client's, from List: the API's job_id
 * fields take ids only, so a program never wonders what a string meant.
 * An id prefix asks for the jobs the caller may see; a name asks the
 * server for the jobs with that name only (List filters on the server, so
 * a name among 10,000 jobs brings back the few that have it), and the
 * newest wins unless they belong to more than one owner.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/jobref.h"
#include "cli/resolve.h"
#include "shared/job-name.h"
#include "shared/macro.h"

static int list(Cli *cli, const char *name, Jobworker__V1__ListResponse **ret) {
        Jobworker__V1__ListRequest req = JOBWORKER__V1__LIST_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        req.name = (char *) (name ?: "");
        r = cli_client_unary(cli->client, CLI_METHOD("List"), &req.base, &jobworker__v1__list_response__descriptor, &resp, &st);
        if (r < 0)
                return cli_unary_failed(cli, r, &st, "list", NULL);
        *ret = (Jobworker__V1__ListResponse *) resp;
        return 0;
}

static int resolve_name(Cli *cli, const char *arg, char **ret_id) {
        Jobworker__V1__ListResponse *l = NULL;
        _cleanup_free_ CliNamedJob *jobs = NULL;
        char msg[JOB_NAME_MSG_MAX], *error = NULL;
        int r;

        if (job_name_check(arg, msg, sizeof(msg)) < 0)
                return cli_set_message(cli, CLI_EXIT_USAGE, "'%s' is neither a job id nor a job name: %s", arg, msg);
        r = list(cli, arg, &l);
        if (r != 0)
                return r;
        jobs = calloc(l->n_jobs + 1, sizeof(*jobs));
        if (!jobs) {
                jobworker__v1__list_response__free_unpacked(l, NULL);
                return cli_oom(cli);
        }
        for (size_t i = 0; i < l->n_jobs; i++)
                jobs[i] = (CliNamedJob) { l->jobs[i]->job_id, l->jobs[i]->owner, l->jobs[i]->start_time_us };
        r = cli_job_name_pick(arg, jobs, l->n_jobs, ret_id, &error);
        jobworker__v1__list_response__free_unpacked(l, NULL);
        if (r == -ENOENT) {
                const char *user = cli_client_identity(cli->client);
                return cli_set_message(cli, CLI_EXIT_FAILED, "job %s not found (no job of those user %s may see has that name)",
                                       arg, user ?: "(unknown)");
        }
        if (r == -EEXIST) {
                free(cli->message);
                cli->message = error;
                return CLI_EXIT_USAGE;
        }
        return r < 0 ? cli_oom(cli) : 0;
}

static int resolve_prefix(Cli *cli, const char *arg, char **ret_id) {
        Jobworker__V1__ListResponse *l = NULL;
        _cleanup_free_ const char **ids = NULL;
        char *error = NULL;
        int r;

        r = list(cli, NULL, &l);
        if (r != 0)
                return r;
        ids = calloc(l->n_jobs + 1, sizeof(char *));
        if (!ids) {
                jobworker__v1__list_response__free_unpacked(l, NULL);
                return cli_oom(cli);
        }
        for (size_t i = 0; i < l->n_jobs; i++)
                ids[i] = l->jobs[i]->job_id;
        r = cli_job_ref_match(arg, ids, l->n_jobs, ret_id, &error);
        jobworker__v1__list_response__free_unpacked(l, NULL);
        if (r == -ENOENT) {
                const char *user = cli_client_identity(cli->client);
                return cli_set_message(cli, CLI_EXIT_FAILED, "job %s not found (no job of those user %s may see has an id starting with it)",
                                   arg, user ?: "(unknown)");
        }
        if (r == -EEXIST) {
                free(cli->message);
                cli->message = error;
                return CLI_EXIT_USAGE;
        }
        return r < 0 ? cli_oom(cli) : 0;
}

int cli_resolve_job(Cli *cli, const char *arg, char **ret_id) {
        if (cli_job_ref_is_full(arg)) {
                char *id = strdup(arg);
                if (!id)
                        return cli_oom(cli);
                for (char *c = id; *c; c++)
                        if (*c >= 'A' && *c <= 'F')
                                *c = (char) (*c - 'A' + 'a');
                *ret_id = id;
                return 0;
        }
        if (cli_job_ref_is_name(arg))
                return resolve_name(cli, arg, ret_id);
        return resolve_prefix(cli, arg, ret_id);
}
