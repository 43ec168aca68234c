/* SPDX-License-Identifier: MIT */

/*
 * The slot table and get_sqe of ring.h.
 *
 * The one idea: a full submission queue is a reason to submit, never to drop
 * a request or to spin: one submit makes room for every entry it hands over,
 * so at most one retry is ever needed; if the kernel refuses the submit the
 * caller hears of it.
 */

#include <string.h>

#include "shared/ring.h"

int ring_slot_alloc(RingSlotTable *t, void *ptr, uint32_t *ret_slot, uint32_t *ret_gen) {
        uint32_t max = t->max ? t->max : RING_SLOT_MAX + 1, i;

        if (t->free_head) {
                i = t->free_head - 1;
                t->free_head = t->slots[i].next_free;
        } else {
                if (t->n >= max)
                        return -EMFILE;
                if (t->n == t->allocated) {
                        uint32_t na = t->allocated ? t->allocated * 2 : 64;
                        RingSlot *s;

                        if (na > max)
                                na = max;
                        s = reallocarray(t->slots, na, sizeof(RingSlot));
                        if (!s)
                                return -ENOMEM;
                        t->slots = s;
                        t->allocated = na;
                }
                i = t->n++;
                t->slots[i] = (RingSlot) { .gen = 1 };
        }
        t->slots[i].ptr = ptr;
        t->slots[i].next_free = 0;
        t->n_used++;
        *ret_slot = i;
        *ret_gen = t->slots[i].gen;
        return 0;
}

void ring_slot_free(RingSlotTable *t, uint32_t i) {
        if (i >= t->n || !t->slots[i].ptr)
                return;
        t->slots[i].ptr = NULL;
        t->slots[i].gen++;
        if (t->slots[i].gen == 0) /* 0 is never live */
                t->slots[i].gen = 1;
        t->slots[i].next_free = t->free_head;
        t->free_head = i + 1;
        t->n_used--;
}

void ring_slot_table_done(RingSlotTable *t) {
        free(t->slots);
        *t = (RingSlotTable) { .max = t->max };
}

struct io_uring_sqe *ring_get_sqe(struct io_uring *ring, int *ret_error) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        int r;

        if (sqe)
                return sqe;
        /* Full: hand the queue to the kernel. A submit that took entries made
         * room for as many; -EINTR is retried, anything else is the caller's. */
        do
                r = io_uring_submit(ring);
        while (r == -EINTR);
        if (r < 0) {
                if (ret_error)
                        *ret_error = r;
                return NULL;
        }
        sqe = io_uring_get_sqe(ring);
        if (!sqe && ret_error)
                *ret_error = -EBUSY;
        return sqe;
}
