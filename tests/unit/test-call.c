/* SPDX-License-Identifier: MIT */
/*
 * Calls: references and tags. A started batch holds a reference until its
 * tag completes, the tag names the call and the kind, a call finishes once.
 * Runs a real gRPC server and client over a socketpair.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "rpc/call.h"

typedef struct Fixture {
        grpc_server *server;
        grpc_completion_queue *scq, *ccq;
        grpc_channel *channel;
        grpc_call *client_call;
        grpc_metadata_array client_md, client_initial_md;
        grpc_status_code client_status;
        grpc_slice client_details;
} Fixture;

static gpr_timespec deadline(void) {
        return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(10, GPR_TIMESPAN));
}

static gpr_timespec soon(void) {
        return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(100, GPR_TIMESPAN));
}

static grpc_event next(grpc_completion_queue *cq) {
        grpc_event ev = grpc_completion_queue_next(cq, deadline(), NULL);
        assert_int_equal(ev.type, GRPC_OP_COMPLETE);
        return ev;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        grpc_server_credentials *sc = grpc_insecure_server_credentials_create();
        grpc_channel_credentials *cc = grpc_insecure_credentials_create();
        grpc_op ops[4] = {};
        int sv[2];

        grpc_init();
        f->server = grpc_server_create(NULL, NULL);
        f->scq = grpc_completion_queue_create_for_next(NULL);
        f->ccq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(f->server, f->scq, NULL);
        grpc_server_start(f->server);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        grpc_server_add_channel_from_fd(f->server, sv[1], sc);
        f->channel = grpc_channel_create_from_fd("test", sv[0], cc, NULL);
        grpc_server_credentials_release(sc);
        grpc_channel_credentials_release(cc);

        f->client_call = grpc_channel_create_call(f->channel, NULL, 0, f->ccq, grpc_slice_from_static_string("/t.T/M"),
                                                  NULL, deadline(), NULL);
        grpc_metadata_array_init(&f->client_md);
        grpc_metadata_array_init(&f->client_initial_md);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[2].data.recv_status_on_client.trailing_metadata = &f->client_md;
        ops[2].data.recv_status_on_client.status = &f->client_status;
        ops[2].data.recv_status_on_client.status_details = &f->client_details;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &f->client_initial_md;
        assert_int_equal(grpc_call_start_batch(f->client_call, ops, 4, f, NULL), GRPC_CALL_OK);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        grpc_call_unref(f->client_call);
        grpc_metadata_array_destroy(&f->client_md);
        grpc_metadata_array_destroy(&f->client_initial_md);
        grpc_slice_unref(f->client_details);
        grpc_channel_destroy(f->channel);
        grpc_server_shutdown_and_notify(f->server, f->scq, f);
        grpc_server_cancel_all_calls(f->server);
        next(f->scq);
        grpc_server_destroy(f->server);
        grpc_completion_queue_shutdown(f->scq);
        grpc_completion_queue_shutdown(f->ccq);
        for (int i = 0; i < 100 && grpc_completion_queue_next(f->ccq, soon(), NULL).type != GRPC_QUEUE_SHUTDOWN; i++)
                ;
        while (grpc_completion_queue_next(f->scq, deadline(), NULL).type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(f->scq);
        grpc_completion_queue_destroy(f->ccq);
        grpc_shutdown_blocking();
        free(f);
        return 0;
}

/* The tag of the request names the call and says TAG_NEW. */
static RpcCall *accept_call(Fixture *f) {
        RpcCall *c = call_new(NULL, CALL_METHOD_UNREGISTERED);
        grpc_event ev;
        Tag *t;

        assert_non_null(c);
        assert_int_equal(grpc_server_request_call(f->server, &c->call, &c->details, &c->md, f->scq, f->scq,
                                                  &c->tag_new),
                         GRPC_CALL_OK);
        ev = next(f->scq);
        assert_true(ev.success);
        t = ev.tag;
        assert_int_equal(t->kind, TAG_NEW);
        assert_ptr_equal(t->object, c);
        return c;
}

/* As the server does: learn when the call is over, the batch holding a reference. */
static void recv_close(RpcCall *c) {
        grpc_op op = { .op = GRPC_OP_RECV_CLOSE_ON_SERVER };

        op.data.recv_close_on_server.cancelled = &c->cancelled;
        call_ref(c);
        assert_int_equal(grpc_call_start_batch(c->call, &op, 1, &c->tag_close, NULL), GRPC_CALL_OK);
}

static void test_refs(void **state) {
        RpcCall *c = call_new(NULL, 3);

        assert_int_equal(atomic_load(&c->n_ref), 1);
        assert_ptr_equal(call_ref(c), c);
        assert_int_equal(atomic_load(&c->n_ref), 2);
        call_unref(c);
        assert_int_equal(atomic_load(&c->n_ref), 1);
        assert_int_equal(c->method, 3);
        assert_ptr_equal(c->tag_close.object, c);
        assert_int_equal(c->tag_close.kind, TAG_CLOSE);
        assert_int_equal(c->tag_send.kind, TAG_SEND);
        assert_int_equal(c->tag_finish.kind, TAG_FINISH);
        call_unref(c); /* frees (AddressSanitizer sees a leak otherwise) */
        call_unref(NULL);
}

/* The finishing batch holds a reference until its tag completes; a second
 * finish does nothing; the client gets the first status. */
static void test_finish_holds_reference(void **state) {
        Fixture *f = *state;
        RpcCall *c = accept_call(f);
        grpc_event ev;
        Tag *t;
        bool closed = false, finished = false;

        recv_close(c);
        assert_int_equal(atomic_load(&c->n_ref), 2);
        call_finishf(c, GRPC_STATUS_PERMISSION_DENIED, "'%s' may not %s", "bob", "start jobs");
        assert_true(c->finished);
        assert_int_equal(atomic_load(&c->n_ref), 3);
        call_finish(c, GRPC_STATUS_OK, "ignored", NULL);
        assert_int_equal(atomic_load(&c->n_ref), 3);

        /* Both batches complete, each with its own tag; each releases its reference. */
        for (int i = 0; i < 2; i++) {
                ev = next(f->scq);
                assert_true(ev.success);
                t = ev.tag;
                assert_ptr_equal(t->object, c);
                if (t->kind == TAG_FINISH)
                        finished = true;
                else if (t->kind == TAG_CLOSE)
                        closed = true;
                call_unref(t->object); /* what the completion-queue thread does */
        }
        assert_true(finished && closed);
        assert_false(c->cancelled);
        assert_int_equal(atomic_load(&c->n_ref), 1);
        call_unref(c);

        ev = next(f->ccq);
        assert_int_equal(f->client_status, GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(GRPC_SLICE_LENGTH(f->client_details), strlen("'bob' may not start jobs"));
        assert_memory_equal(GRPC_SLICE_START_PTR(f->client_details), "'bob' may not start jobs",
                            strlen("'bob' may not start jobs"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_refs),
                cmocka_unit_test_setup_teardown(test_finish_holds_reference, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
