/* std_list.c - TML List[T]: a growable array of fixed-size values.
 *
 * One heap block for the header, one for the elements (doubling growth).
 * Invariants: 0 <= len <= cap; elements [0, len) are live and owned by
 * the list. The reference count is atomic (handles may be copied across
 * tasks) but the contents are not synchronised: concurrent mutation from
 * two threads is a program error, as in upstream TML. */
#include <stdio.h>
#include <string.h>

#include "tml/rt.h"

struct tml_list {
    int64_t rc;
    int64_t len, cap;
    size_t elem_size;
    void (*elem_drop)(void *);
    unsigned char *data;
};

static unsigned char *slot(tml_list *l, int64_t i) { return l->data + (size_t)i * l->elem_size; }

tml_list *tml_list_new(size_t elem_size, int64_t cap, void (*elem_drop)(void *)) {
    tml_list *l = tml_alloc(sizeof *l);
    l->rc = 1;
    l->len = 0;
    l->cap = cap > 0 ? cap : 4;
    l->elem_size = elem_size ? elem_size : 1;
    l->elem_drop = elem_drop;
    l->data = tml_alloc((size_t)l->cap * l->elem_size);
    return l;
}

void tml_list_retain(tml_list *l) {
    __atomic_fetch_add(&l->rc, 1, __ATOMIC_RELAXED); /* a new owner of a live list */
}

void tml_list_clear(tml_list *l) {
    if (l->elem_drop)
        for (int64_t i = 0; i < l->len; i++)
            l->elem_drop(slot(l, i));
    l->len = 0;
}

void tml_list_release(tml_list *l) {
    /* acq_rel: the freeing thread sees every other owner's last access */
    if (__atomic_fetch_sub(&l->rc, 1, __ATOMIC_ACQ_REL) != 1)
        return;
    tml_list_clear(l);
    tml_free(l->data);
    tml_free(l);
}

int64_t tml_list_len(const tml_list *l) { return l->len; }

void tml_list_push(tml_list *l, const void *value) {
    if (l->len == l->cap) {
        unsigned char *bigger = tml_alloc((size_t)l->cap * 2 * l->elem_size);
        memcpy(bigger, l->data, (size_t)l->len * l->elem_size);
        tml_free(l->data);
        l->data = bigger;
        l->cap *= 2;
    }
    memcpy(slot(l, l->len++), value, l->elem_size);
}

static void check_index(const tml_list *l, int64_t i, const char *file, int line, int col) {
    if (i < 0 || i >= l->len) {
        char msg[96];
        snprintf(msg, sizeof msg, "index %lld out of bounds for a list of length %lld",
                 (long long)i, (long long)l->len);
        tml_panic_at(file, line, col, msg);
    }
}

void tml_list_pop(tml_list *l, void *out, const char *file, int line, int col) {
    if (l->len == 0)
        tml_panic_at(file, line, col, "pop from an empty list");
    memcpy(out, slot(l, --l->len), l->elem_size);
}

void *tml_list_at(tml_list *l, int64_t i, const char *file, int line, int col) {
    check_index(l, i, file, line, col);
    return slot(l, i);
}

void tml_list_set(tml_list *l, int64_t i, const void *value, const char *file, int line,
                  int col) {
    check_index(l, i, file, line, col);
    if (l->elem_drop)
        l->elem_drop(slot(l, i));
    memcpy(slot(l, i), value, l->elem_size);
}
