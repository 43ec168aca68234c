/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What every io_uring in the project shares: the user_data encoding, the
 * slot + generation table that turns a completion back into its object, and
 * the one way to get a submission queue entry.
 *
 * The one idea: a completion names (operation, slot, generation), never a
 * pointer or an fd number. An object keeps its slot while it lives; freeing
 * it bumps the slot's generation, so a completion that arrives for a gone or
 * reused object decodes to nothing and is dropped.
 *
 * The ring discipline (DESIGN.md) that the helpers below cannot enforce on
 * their own: what a request points at (timespec, path, iovec, buffer) lives
 * until its completion, or the request is submitted — and the submit checked
 * — before that memory can be freed or moved. The kernel reads it later; no
 * sanitizer sees a mistake here.
 *
 * Thread rules: none of this is thread-safe; each ring and table belongs to
 * the one thread that runs its loop.
 */

#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>

/* user_data: 8 bits operation, 24 bits slot, 32 bits generation. */
#define RING_SLOT_MAX 0xffffffu

static inline uint64_t ring_ud(unsigned op, uint32_t slot, uint32_t gen) {
        return (uint64_t) (op & 0xffu) << 56 | (uint64_t) (slot & RING_SLOT_MAX) << 32 | gen;
}
static inline unsigned ring_ud_op(uint64_t ud) {
        return (unsigned) (ud >> 56);
}
static inline uint32_t ring_ud_slot(uint64_t ud) {
        return (uint32_t) (ud >> 32) & RING_SLOT_MAX;
}
static inline uint32_t ring_ud_gen(uint64_t ud) {
        return (uint32_t) ud;
}

/* Slot + generation table. Slots are reused (free list); generations only
 * grow, starting at 1, so 0 is never a live generation. The table may be
 * realloc()ed by ring_slot_alloc(): never let a ring request point into it. */
typedef struct RingSlot {
        void *ptr;
        uint32_t gen;
        uint32_t next_free; /* index + 1 of the next free slot, 0 = none */
} RingSlot;

typedef struct RingSlotTable {
        RingSlot *slots;
        uint32_t n, allocated;
        uint32_t free_head; /* index + 1, 0 = none */
        uint32_t max;       /* 0 = RING_SLOT_MAX + 1 */
        uint32_t n_used;
} RingSlotTable;

/* Stores ptr in a free slot. -EMFILE when the table is at its maximum,
 * -ENOMEM. ret_slot/ret_gen written only on success. */
int ring_slot_alloc(RingSlotTable *t, void *ptr, uint32_t *ret_slot, uint32_t *ret_gen);
/* Frees slot i (must be in use): its generation moves on. */
void ring_slot_free(RingSlotTable *t, uint32_t i);
/* The object in slot i if gen is its current generation, else NULL. */
static inline void *ring_slot_get(const RingSlotTable *t, uint32_t i, uint32_t gen) {
        if (i >= t->n || t->slots[i].gen != gen)
                return NULL;
        return t->slots[i].ptr;
}
/* Frees the table's memory (not the objects). Safe to call twice. */
void ring_slot_table_done(RingSlotTable *t);

/* The one get_sqe. When the submission queue is full, submits what is queued
 * and takes an entry from the room that made. Returns NULL only when the
 * kernel refuses that submit (the completion queue is overflowing: -EBUSY,
 * or another error): the caller then has a request it could not queue and
 * must fail the operation it was for, visibly — never drop it silently and
 * never spin. *ret_error (may be NULL) gets the -errno then. */
struct io_uring_sqe *ring_get_sqe(struct io_uring *ring, int *ret_error);
