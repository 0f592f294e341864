/* std_str.c - TML `Str`: immutable, reference-counted UTF-8 bytes.
 *
 * Layout (tml/rt.h): { rc, len, ptr }. Heap strings are one malloc block:
 * the header followed by `len` bytes and a NUL; `ptr` points at the bytes.
 * Literals are static objects with rc < 0: retain/release ignore them.
 * Invariants: a heap string's rc >= 1 while reachable; its bytes never
 * change after creation, so any thread may read them without a lock.
 * The count is atomic because strings cross threads through channels. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tml/rt.h"

/* Reference counts are spelled with GCC atomics here rather than through
 * runtime/mt_atomic.h: stdlib uses only the public tml/ headers. */
tml_str *tml_str_retain(tml_str *s) {
    if (s->rc >= 0)
        __atomic_fetch_add(&s->rc, 1, __ATOMIC_RELAXED); /* a new owner; no
                                           ordering needed to copy a ref */
    return s;
}

void tml_str_release(tml_str *s) {
    if (s->rc < 0)
        return;
    /* acq_rel: the last owner must see every other owner's reads done */
    if (__atomic_fetch_sub(&s->rc, 1, __ATOMIC_ACQ_REL) == 1)
        tml_free(s);
}

/* Allocates an uninitialised string of `len` bytes with rc 1. */
static tml_str *str_alloc(int64_t len) {
    tml_str *s = tml_alloc(sizeof *s + (size_t)len + 1);
    char *bytes = (char *)(s + 1);
    s->rc = 1;
    s->len = len;
    s->ptr = bytes;
    bytes[len] = '\0';
    return s;
}

tml_str *tml_str_new(const char *bytes, int64_t len) {
    tml_str *s = str_alloc(len);
    memcpy((char *)s->ptr, bytes, (size_t)len);
    return s;
}

tml_str *tml_str_concat(const tml_str *a, const tml_str *b) {
    tml_str *s = str_alloc(a->len + b->len);
    memcpy((char *)s->ptr, a->ptr, (size_t)a->len);
    memcpy((char *)s->ptr + a->len, b->ptr, (size_t)b->len);
    return s;
}

bool tml_str_eq(const tml_str *a, const tml_str *b) {
    return a->len == b->len && memcmp(a->ptr, b->ptr, (size_t)a->len) == 0;
}

int tml_str_cmp(const tml_str *a, const tml_str *b) {
    int64_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->ptr, b->ptr, (size_t)n);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return (a->len > b->len) - (a->len < b->len);
}

__attribute__((format(printf, 1, 2)))
static tml_str *str_printf(const char *fmt, ...) {
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return tml_str_new(buf, n);
}

tml_str *tml_str_from_i64(int64_t v) { return str_printf("%" PRId64, v); }
tml_str *tml_str_from_u64(uint64_t v) { return str_printf("%" PRIu64, v); }
tml_str *tml_str_from_f64(double v) { return str_printf("%g", v); }

tml_str *tml_str_from_bool(bool v) {
    static tml_str t = TML_STR_LIT("true"), f = TML_STR_LIT("false");
    return v ? &t : &f;
}

tml_str *tml_str_from_char(uint32_t c) {
    char b[4];
    int n;
    if (c < 0x80) {
        b[0] = (char)c, n = 1;
    } else if (c < 0x800) {
        b[0] = (char)(0xC0 | c >> 6), b[1] = (char)(0x80 | (c & 0x3F)), n = 2;
    } else if (c < 0x10000) {
        b[0] = (char)(0xE0 | c >> 12), b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (char)(0x80 | (c & 0x3F)), n = 3;
    } else {
        b[0] = (char)(0xF0 | c >> 18), b[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3F)), b[3] = (char)(0x80 | (c & 0x3F)), n = 4;
    }
    return tml_str_new(b, n);
}
