/* SPDX-License-Identifier: MIT */

/* core/iodev.c: io device paths to the disk io.max wants (moved here with
 * the code from test-limits.c). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/iodev.h"

static void resolve_fails(const char *path, const JobCredentials *creds, int want_r, const char *want) {
        uint32_t ma = 0, mi = 0;
        char *m = NULL;

        assert_int_equal(iodev_resolve_device(path, creds, &ma, &mi, &m), want_r);
        assert_non_null(m);
        if (!strstr(m, want))
                fail_msg("message '%s' does not contain '%s'", m, want);
        free(m);
}

/* The disk the root file system is on, if it has one: 1 and its numbers. */
static int root_disk(uint32_t *ma, uint32_t *mi) {
        struct stat st;
        char p[128];

        if (stat("/", &st) < 0 || major(st.st_dev) == 0)
                return 0;
        *ma = major(st.st_dev);
        *mi = minor(st.st_dev);
        snprintf(p, sizeof p, "/sys/dev/block/%u:%u/partition", *ma, *mi);
        if (access(p, F_OK) >= 0) {
                /* a partition: its disk is the parent in sysfs */
                FILE *f;
                snprintf(p, sizeof p, "/sys/dev/block/%u:%u/../dev", *ma, *mi);
                f = fopen(p, "re");
                if (!f)
                        return 0;
                if (fscanf(f, "%u:%u", ma, mi) != 2) {
                        fclose(f);
                        return 0;
                }
                fclose(f);
        }
        return 1;
}

static void test_resolve_device(void **state) {
        uint32_t ma = 0, mi = 0, rma, rmi;
        char *m = NULL;
        struct stat st;

        resolve_fails("relative/path", NULL, -EINVAL, "io device 'relative/path' is not an absolute path");
        resolve_fails("/no/such/path/here", NULL, -ENOENT, "io device '/no/such/path/here': No such file or directory");
        resolve_fails("/dev/null", NULL, -EINVAL, "io device '/dev/null' is a character device, not a block device");
        resolve_fails("/proc/self", NULL, -EINVAL, "on a file system without a block device");

        if (root_disk(&rma, &rmi)) {
                /* a file or directory: the disk of its file system */
                assert_int_equal(iodev_resolve_device("/", NULL, &ma, &mi, &m), 0);
                assert_int_equal(ma, rma);
                assert_int_equal(mi, rmi);
                assert_int_equal(iodev_resolve_device("/etc/passwd", NULL, &ma, &mi, &m), 0);
                assert_int_equal(ma, rma);
                assert_int_equal(mi, rmi);
                assert_null(m);
        } else
                print_message("root file system has no block device: skipping the file case\n");

        /* a block device node stands for itself */
        if (stat("/dev/loop0", &st) >= 0 && S_ISBLK(st.st_mode)) {
                assert_int_equal(iodev_resolve_device("/dev/loop0", NULL, &ma, &mi, &m), 0);
                assert_int_equal(ma, major(st.st_rdev));
                assert_int_equal(mi, minor(st.st_rdev));
        } else
                print_message("no /dev/loop0: skipping the block device case\n");

        /* Resolved as the job's account: a path only root can reach is not
         * even confirmed to exist. */
        if (geteuid() == 0) {
                struct passwd *pw = getpwnam("nobody");
                char dir[] = "/tmp/test-limits-XXXXXX", file[64];
                int fd;

                assert_non_null(pw);
                assert_non_null(mkdtemp(dir));
                assert_int_equal(chmod(dir, 0700), 0);
                snprintf(file, sizeof file, "%s/secret", dir);
                fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                close(fd);

                JobCredentials nobody = { .uid = pw->pw_uid, .gid = pw->pw_gid, .user = "nobody", .home = "/" };
                JobCredentials root = { .uid = 0, .gid = 0, .user = "root", .home = "/root" };
                resolve_fails(file, &nobody, -EACCES, "Permission denied");
                resolve_fails("/tmp/no-such-file-xyz", &nobody, -ENOENT, "No such file");
                /* the daemon's own credentials are back afterwards */
                assert_int_equal(access(file, R_OK | W_OK), 0);
                if (root_disk(&rma, &rmi)) {
                        assert_int_equal(iodev_resolve_device(file, &root, &ma, &mi, &m), 0);
                        assert_int_equal(iodev_resolve_device("/etc/passwd", &nobody, &ma, &mi, &m), 0);
                        assert_int_equal(ma, rma);
                }
                unlink(file);
                rmdir(dir);
        } else
                print_message("not root: skipping the run-as account case\n");
}

static void test_resolve_io(void **state) {
        JobIoLimit io[JOB_IO_MAX];
        uint32_t rma, rmi;
        size_t n = 99;
        char *m = NULL;

        assert_int_equal(iodev_resolve(NULL, 0, NULL, io, &n, &m), 0);
        assert_int_equal(n, 0);

        {
                JobIoDevice bad[] = { { "/dev/null", 1, 0 } };
                assert_int_equal(iodev_resolve(bad, 1, NULL, io, &n, &m), -EINVAL);
                assert_non_null(strstr(m, "/dev/null"));
                free(m);
                m = NULL;
        }
        if (!root_disk(&rma, &rmi)) {
                print_message("root file system has no block device: skipping\n");
                return;
        }
        /* two paths on the same disk merge into one entry */
        JobIoDevice req[] = { { "/", 1000, 0 }, { "/etc", 0, 2000 } };
        assert_int_equal(iodev_resolve(req, 2, NULL, io, &n, &m), 0);
        assert_int_equal(n, 1);
        assert_int_equal(io[0].major, rma);
        assert_int_equal(io[0].minor, rmi);
        assert_int_equal(io[0].read_bps, 1000);
        assert_int_equal(io[0].write_bps, 2000);

        /* ... unless they disagree */
        JobIoDevice clash[] = { { "/", 1000, 0 }, { "/etc", 3000, 0 } };
        assert_int_equal(iodev_resolve(clash, 2, NULL, io, &n, &m), -EINVAL);
        assert_non_null(strstr(m, "io device '/etc' is disk"));
        assert_non_null(strstr(m, "an earlier entry already limits to a different rate"));
        free(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_resolve_device),
                cmocka_unit_test(test_resolve_io),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
