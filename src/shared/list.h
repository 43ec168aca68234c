/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Intrusive doubly linked lists. An element embeds a ListNode per list it
 * can be on; the list head holds first/last. O(1) insert and unlink, no
 * allocation. (In the spirit of dbus-broker's c-list, much smaller.)
 */

#include <stdbool.h>
#include <stddef.h>

typedef struct ListNode {
        struct ListNode *prev, *next;
        bool linked;
} ListNode;

typedef struct ListHead {
        ListNode *first, *last;
        size_t n;
} ListHead;

#define list_entry(node, type, member) \
        ((node) ? (type *) ((char *) (node) - offsetof(type, member)) : (type *) NULL)

static inline void list_append(ListHead *h, ListNode *n) {
        n->next = NULL;
        n->prev = h->last;
        if (h->last)
                h->last->next = n;
        else
                h->first = n;
        h->last = n;
        n->linked = true;
        h->n++;
}

static inline void list_unlink(ListHead *h, ListNode *n) {
        if (!n->linked)
                return;
        if (n->prev)
                n->prev->next = n->next;
        else
                h->first = n->next;
        if (n->next)
                n->next->prev = n->prev;
        else
                h->last = n->prev;
        n->prev = n->next = NULL;
        n->linked = false;
        h->n--;
}

/* Inserts n before `before` (NULL: append). */
static inline void list_insert_before(ListHead *h, ListNode *before, ListNode *n) {
        if (!before) {
                list_append(h, n);
                return;
        }
        n->next = before;
        n->prev = before->prev;
        if (before->prev)
                before->prev->next = n;
        else
                h->first = n;
        before->prev = n;
        n->linked = true;
        h->n++;
}
