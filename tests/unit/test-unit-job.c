/* SPDX-License-Identifier: MIT */
/*
 * unit-job: the JobType of our unit's queued job, asked of a fake systemd
 * (an sd-bus server in a thread on a unix socket of the test, serving the
 * Unit.Job and Job.JobType properties as systemd 252 does): the type when
 * there is a job, "no job" when there is none, the next address when the
 * first cannot be connected, "no bus" when none can, and a bounded failure
 * when the other end accepts and never answers. Without systemd as the init
 * system (this host), unit_job_type() says so at once.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-id128.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/unit-job.h"
#include "shared/macro.h"

#define UNIT "jobworker.service"
#define JOB_PATH "/org/freedesktop/systemd1/job/4711"

typedef struct FakeSystemd {
        char dir[64];
        char path[96];
        char address[128];
        int listen_fd;
        pthread_t thread;
        const char *job_type;          /* NULL: no job queued */
        bool mute;                     /* accept, then never answer */
        bool job_gone;                 /* Unit.Job names a job that no longer exists */
        unsigned job_type_delay_ms;    /* JobType answers this late */
        atomic_bool stop;
        atomic_uint connections;
} FakeSystemd;

static uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ull + (uint64_t) ts.tv_nsec / 1000u;
}

static int get_job(sd_bus *bus, const char *path, const char *interface, const char *property,
                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        FakeSystemd *f = userdata;

        if (!f->job_type)
                return sd_bus_message_append(reply, "(uo)", (uint32_t) 0, "/");
        if (f->job_gone)
                return sd_bus_message_append(reply, "(uo)", (uint32_t) 4712, "/org/freedesktop/systemd1/job/4712");
        return sd_bus_message_append(reply, "(uo)", (uint32_t) 4711, JOB_PATH);
}

static int get_job_type(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        FakeSystemd *f = userdata;

        if (f->job_type_delay_ms > 0)
                usleep(f->job_type_delay_ms * 1000u);
        return sd_bus_message_append(reply, "s", f->job_type ? f->job_type : "");
}

static const sd_bus_vtable unit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Job", "(uo)", get_job, 0, 0),
        SD_BUS_VTABLE_END,
};

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("JobType", "s", get_job_type, 0, 0),
        SD_BUS_VTABLE_END,
};

/* Serves one connection as systemd's private socket does (no bus daemon)
 * until the client hangs up or the test ends. */
static void serve(FakeSystemd *f, int fd) {
        _cleanup_free_ char *unit_path = NULL;
        sd_bus *bus = NULL;
        sd_id128_t id;

        if (sd_bus_new(&bus) < 0 || sd_id128_randomize(&id) < 0 ||
            sd_bus_path_encode("/org/freedesktop/systemd1/unit", UNIT, &unit_path) < 0 ||
            sd_bus_set_fd(bus, fd, fd) < 0 || sd_bus_set_server(bus, 1, id) < 0 ||
            sd_bus_add_object_vtable(bus, NULL, unit_path, "org.freedesktop.systemd1.Unit", unit_vtable, f) < 0 ||
            sd_bus_add_object_vtable(bus, NULL, JOB_PATH, "org.freedesktop.systemd1.Job", job_vtable, f) < 0 ||
            sd_bus_start(bus) < 0) {
                close(fd);
                sd_bus_unref(bus);
                return;
        }
        while (!atomic_load(&f->stop)) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r == 0)
                        (void) sd_bus_wait(bus, 50000);
        }
        sd_bus_flush_close_unref(bus);
}

static void *fake_main(void *userdata) {
        FakeSystemd *f = userdata;
        int held[8], n_held = 0;

        while (!atomic_load(&f->stop)) {
                struct pollfd p = { .fd = f->listen_fd, .events = POLLIN };
                if (poll(&p, 1, 50) <= 0)
                        continue;
                int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0)
                        continue;
                atomic_fetch_add(&f->connections, 1);
                if (f->mute && n_held < (int) ELEMENTSOF(held))
                        held[n_held++] = fd;   /* read nothing, answer nothing */
                else if (f->mute)
                        close(fd);
                else
                        serve(f, fd);
        }
        for (int i = 0; i < n_held; i++)
                close(held[i]);
        return NULL;
}

static FakeSystemd *fake_start(const char *job_type, bool mute) {
        FakeSystemd *f = calloc(1, sizeof(FakeSystemd));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        assert_non_null(f);
        f->job_type = job_type;
        f->mute = mute;
        snprintf(f->dir, sizeof(f->dir), "/tmp/jw-unit-job.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/private", f->dir);
        snprintf(f->address, sizeof(f->address), "unix:path=%s", f->path);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f->listen_fd >= 0);
        assert_int_equal(bind(f->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(f->listen_fd, 8), 0);
        assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
        return f;
}

static void fake_stop(FakeSystemd *f) {
        atomic_store(&f->stop, true);
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        close(f->listen_fd);
        unlink(f->path);
        rmdir(f->dir);
        free(f);
}

static void test_no_systemd_answers_at_once(void **state) {
        char *type = NULL;

        if (sd_booted() > 0)
                skip();   /* a host booted with systemd: the other tests cover the path */
        uint64_t t0 = mono_usec();
        assert_int_equal(unit_job_type(&type), UNIT_JOB_E_NO_SYSTEMD);
        assert_null(type);
        assert_true(mono_usec() - t0 < 100000);
}

static void test_restart_job(void **state) {
        FakeSystemd *f = fake_start("restart", false);
        UnitJobAddress a[] = { { f->address, false } };
        char *type = NULL;

        assert_int_equal(unit_job_type_query(UNIT, a, 1, UNIT_JOB_TIMEOUT_USEC, &type), 0);
        assert_string_equal(type, "restart");
        free(type);
        fake_stop(f);
}

static void test_no_job(void **state) {
        FakeSystemd *f = fake_start(NULL, false);
        UnitJobAddress a[] = { { f->address, false } };
        char *type = NULL;

        assert_int_equal(unit_job_type_query(UNIT, a, 1, UNIT_JOB_TIMEOUT_USEC, &type), UNIT_JOB_E_NO_JOB);
        assert_null(type);
        fake_stop(f);
}

static void test_next_address_when_first_is_absent(void **state) {
        FakeSystemd *f = fake_start("stop", false);
        char absent[160];
        snprintf(absent, sizeof(absent), "unix:path=%s/absent", f->dir);
        UnitJobAddress a[] = { { absent, false }, { f->address, false } };
        char *type = NULL;

        assert_int_equal(unit_job_type_query(UNIT, a, 2, UNIT_JOB_TIMEOUT_USEC, &type), 0);
        assert_string_equal(type, "stop");
        assert_int_equal(atomic_load(&f->connections), 1);
        free(type);
        fake_stop(f);
}

static void test_first_answer_wins(void **state) {
        FakeSystemd *first = fake_start(NULL, false), *second = fake_start("restart", false);
        UnitJobAddress a[] = { { first->address, false }, { second->address, false } };
        char *type = NULL;

        /* "No job" is an answer: the second is not asked. */
        assert_int_equal(unit_job_type_query(UNIT, a, 2, UNIT_JOB_TIMEOUT_USEC, &type), UNIT_JOB_E_NO_JOB);
        assert_int_equal(atomic_load(&second->connections), 0);
        fake_stop(first);
        fake_stop(second);
}

static void test_no_bus(void **state) {
        UnitJobAddress a[] = { { "unix:path=/nonexistent/jw-a", false }, { "unix:path=/nonexistent/jw-b", true } };
        char *type = NULL;
        uint64_t t0 = mono_usec();

        assert_int_equal(unit_job_type_query(UNIT, a, 2, UNIT_JOB_TIMEOUT_USEC, &type), UNIT_JOB_E_NO_BUS);
        assert_null(type);
        assert_true(mono_usec() - t0 < 500000);
}

static void test_unknown_unit_is_an_error(void **state) {
        FakeSystemd *f = fake_start("stop", false);
        UnitJobAddress a[] = { { f->address, false } };
        char *type = NULL;

        int r = unit_job_type_query("other.service", a, 1, UNIT_JOB_TIMEOUT_USEC, &type);
        assert_true(r < 0);
        assert_int_not_equal(r, UNIT_JOB_E_NO_BUS);
        assert_null(type);
        fake_stop(f);
}

/* A peer that accepts and never answers costs the deadline, not more, and
 * the next address is not tried after it. */
static void test_silent_peer_is_bounded(void **state) {
        FakeSystemd *mute = fake_start(NULL, true), *good = fake_start("stop", false);
        UnitJobAddress a[] = { { mute->address, false }, { good->address, false } };
        const uint64_t timeout = 300000;
        char *type = NULL;
        uint64_t t0 = mono_usec();

        assert_int_equal(unit_job_type_query(UNIT, a, 2, timeout, &type), -ETIMEDOUT);
        uint64_t took = mono_usec() - t0;
        assert_null(type);
        assert_true(took >= timeout * 9 / 10);
        assert_true(took < timeout + 700000);
        assert_int_equal(atomic_load(&mute->connections), 1);
        fake_stop(mute);
        fake_stop(good);
}

/* The job ends between the two calls: systemd answers UnknownObject for
 * its path. That is "no job". */
static void test_job_gone_is_no_job(void **state) {
        FakeSystemd *f = fake_start("stop", false);
        UnitJobAddress a[] = { { f->address, false } };
        char *type = NULL;

        f->job_gone = true;
        assert_int_equal(unit_job_type_query(UNIT, a, 1, UNIT_JOB_TIMEOUT_USEC, &type), UNIT_JOB_E_NO_JOB);
        assert_null(type);
        fake_stop(f);
}

/* The second call runs out of time: that is a timeout, not "no job" (which
 * would make a stop look like a crash to the caller). */
static void test_late_job_type_is_a_timeout(void **state) {
        FakeSystemd *f = fake_start("stop", false);
        UnitJobAddress a[] = { { f->address, false } };
        char *type = NULL;

        f->job_type_delay_ms = 600;
        uint64_t t0 = mono_usec();
        assert_int_equal(unit_job_type_query(UNIT, a, 1, 300000, &type), -ETIMEDOUT);
        assert_true(mono_usec() - t0 < 300000 + 250000);
        assert_null(type);
        fake_stop(f);
}

static void test_invalid_arguments(void **state) {
        UnitJobAddress a[] = { { "unix:path=/nonexistent/jw", false } };
        char *type = NULL;

        assert_int_equal(unit_job_type_query(NULL, a, 1, 1000, &type), -EINVAL);
        assert_int_equal(unit_job_type_query(UNIT, a, 0, 1000, &type), -EINVAL);
        assert_int_equal(unit_job_type_query(UNIT, a, 1, 1000, NULL), -EINVAL);
        assert_int_equal(unit_job_type(NULL), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_systemd_answers_at_once),
                cmocka_unit_test(test_restart_job),
                cmocka_unit_test(test_no_job),
                cmocka_unit_test(test_next_address_when_first_is_absent),
                cmocka_unit_test(test_first_answer_wins),
                cmocka_unit_test(test_no_bus),
                cmocka_unit_test(test_unknown_unit_is_an_error),
                cmocka_unit_test(test_silent_peer_is_bounded),
                cmocka_unit_test(test_job_gone_is_no_job),
                cmocka_unit_test(test_late_job_type_is_a_timeout),
                cmocka_unit_test(test_invalid_arguments),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
