/* std_buffer.c - TML `Buffer`: a fixed-capacity byte array with a length
 * and a read position, shared by reference-counted handles.
 *
 * Layout (tml/rt.h): { rc, len, cap, rpos, bytes }, one allocation: the
 * header, then `cap` bytes that `bytes` points at. The runtime's TCP
 * leaves (runtime/net.c) read [0, len) and append at [len, cap) through
 * the same fields.
 * Invariants: 1 <= cap <= TML_BUFFER_MAX_CAP, 0 <= rpos <= len <= cap.
 * The count is atomic (a handle may move between tasks and threads); the
 * contents are not synchronised, as List's are not: two threads mutating
 * one buffer at once is a program error. */
#include <string.h>

#include "tml/rt.h"

/* Reference counts are spelled with GCC atomics here rather than through
 * runtime/mt_atomic.h: stdlib uses only the public tml/ headers. */

static void check(const tml_buffer *b) {
    if (!b)
        tml_panic_at(NULL, 0, 0, "Buffer: NULL handle");
}

/* The plain forms are the `_at` ones without a location (tml/rt.h). */

tml_buffer *tml_buffer_new(int64_t cap) { return tml_buffer_new_at(cap, NULL, 0, 0); }

tml_buffer *tml_buffer_new_at(int64_t cap, const char *file, int line, int col) {
    if (cap <= 0)
        tml_panic_at(file, line, col, "buffer capacity must be positive");
    if (cap > TML_BUFFER_MAX_CAP)
        tml_panic_at(file, line, col, "buffer capacity too large");
    tml_buffer *b = tml_alloc(sizeof *b + (size_t)cap);
    b->rc = 1;
    b->len = 0;
    b->cap = cap;
    b->rpos = 0;
    b->bytes = (uint8_t *)(b + 1);
    return b;
}

void tml_buffer_retain(tml_buffer *b) {
    check(b);
    __atomic_fetch_add(&b->rc, 1, __ATOMIC_RELAXED); /* a new owner of a live buffer */
}

void tml_buffer_release(tml_buffer *b) {
    check(b);
    /* acq_rel: the freeing thread sees every other owner's last access */
    if (__atomic_fetch_sub(&b->rc, 1, __ATOMIC_ACQ_REL) == 1)
        tml_free(b);
}

int64_t tml_buffer_len(const tml_buffer *b) {
    check(b);
    return b->len;
}

int64_t tml_buffer_capacity(const tml_buffer *b) {
    check(b);
    return b->cap;
}

void tml_buffer_clear(tml_buffer *b) {
    check(b);
    b->len = 0;
    b->rpos = 0;
}

void tml_buffer_write_byte(tml_buffer *b, uint8_t v) { tml_buffer_write_byte_at(b, v, NULL, 0, 0); }

void tml_buffer_write_byte_at(tml_buffer *b, uint8_t v, const char *file, int line, int col) {
    check(b);
    if (b->len == b->cap)
        tml_panic_at(file, line, col, "buffer is full");
    b->bytes[b->len++] = v;
}

bool tml_buffer_read_byte(tml_buffer *b, uint8_t *out) {
    check(b);
    if (!out)
        tml_panic_at(NULL, 0, 0, "Buffer.read_byte: NULL output");
    if (b->rpos >= b->len)
        return false;
    *out = b->bytes[b->rpos++];
    return true;
}

void tml_buffer_write_str(tml_buffer *b, const tml_str *s) {
    tml_buffer_write_str_at(b, s, NULL, 0, 0);
}

void tml_buffer_write_str_at(tml_buffer *b, const tml_str *s, const char *file, int line,
                             int col) {
    check(b);
    if (!s)
        tml_panic_at(NULL, 0, 0, "Buffer.write_str: NULL string");
    if (s->len > b->cap - b->len)
        tml_panic_at(file, line, col, "string does not fit in the buffer");
    memcpy(b->bytes + b->len, s->ptr, (size_t)s->len);
    b->len += s->len;
}

tml_str *tml_buffer_to_string(const tml_buffer *b) {
    check(b);
    return tml_str_new((const char *)b->bytes, b->len);
}
