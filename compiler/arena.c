/* arena.c - one bump allocator for the whole compilation, plus the small
 * containers built on it (Vec) and a malloc'd text buffer (Buf).
 * Invariant: arena memory is zeroed and lives until arena_free_all. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tmlc.h"

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    _Alignas(16) char mem[];
} Chunk;

static Chunk *chunks;

static _Noreturn void out_of_memory(void) {
    fputs("tml: out of memory\n", stderr);
    exit(1);
}

void *arena_alloc(size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    if (!chunks || chunks->cap - chunks->used < bytes) {
        size_t cap = bytes > (1u << 20) ? bytes : (1u << 20);
        Chunk *c = calloc(1, sizeof *c + cap);
        if (!c)
            out_of_memory();
        c->cap = cap;
        c->next = chunks;
        chunks = c;
    }
    void *p = chunks->mem + chunks->used;
    chunks->used += bytes;
    return p;
}

char *arena_strndup(const char *s, size_t n) {
    char *p = arena_alloc(n + 1);
    memcpy(p, s, n);
    return p;
}

char *arena_printf(const char *fmt, ...) {
    char small[256];                        /* most results fit: format once */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if ((size_t)n < sizeof small)
        return arena_strndup(small, (size_t)n);
    char *p = arena_alloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_free_all(void) {
    while (chunks) {
        Chunk *next = chunks->next;
        free(chunks);
        chunks = next;
    }
}

void vec_push(Vec *v, void *p) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        void **nv = arena_alloc(sizeof *nv * (size_t)cap);
        if (v->n)
            memcpy(nv, v->v, sizeof *nv * (size_t)v->n);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = p;
}

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

void *map_get(const Map *m, const char *key) {
    if (!m->cap)
        return NULL;
    for (unsigned i = hash(key) & (unsigned)(m->cap - 1);; i = (i + 1) & (unsigned)(m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (!strcmp(m->keys[i], key))
            return m->vals[i];
    }
}

void map_put(Map *m, const char *key, void *val) {
    if (2 * (m->n + 1) > m->cap) {   /* keep the load under one half */
        Map bigger = {.cap = m->cap ? 2 * m->cap : 64};
        bigger.keys = arena_alloc(sizeof *bigger.keys * (size_t)bigger.cap);
        bigger.vals = arena_alloc(sizeof *bigger.vals * (size_t)bigger.cap);
        for (int i = 0; i < m->cap; i++)
            if (m->keys[i])
                map_put(&bigger, m->keys[i], m->vals[i]);
        *m = bigger;
    }
    unsigned i = hash(key) & (unsigned)(m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) {
            m->vals[i] = val;
            return;
        }
        i = (i + 1) & (unsigned)(m->cap - 1);
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
}

static void buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s)
        out_of_memory();
    b->s = s;
    b->cap = cap;
}

void buf_vprintf(Buf *b, const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    buf_reserve(b, 64);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    if ((size_t)n >= b->cap - b->len) {      /* did not fit: grow, redo */
        buf_reserve(b, (size_t)n);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    b->len += (size_t)n;
}

void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_puts(Buf *b, const char *s) {
    size_t n = strlen(s);
    buf_reserve(b, n);
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

void buf_putn(Buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void buf_putc(Buf *b, char c) {
    buf_reserve(b, 1);
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

void buf_free(Buf *b) {
    free(b->s);
    *b = (Buf){0};
}
