/* std_io.c - print/println, panics and panicking allocation.
 *
 * Output goes through stdio so that it is buffered; each call is one
 * locked stdio operation (flockfile around the pieces) so that lines from
 * concurrent tasks never interleave. A panic flushes stdout and leaves
 * with _exit(101): the other workers are not unwound and atexit handlers
 * do not run while they may still be touching runtime state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pal.h"
#include "tml/rt.h"

void tml_print(const tml_str *s) {
    fwrite(s->ptr, 1, (size_t)s->len, stdout);
}

void tml_println(const tml_str *s) {
    pal_file_lock(stdout);
    pal_fwrite_unlocked(s->ptr, (size_t)s->len, stdout);
    pal_putc_unlocked('\n', stdout);
    pal_file_unlock(stdout);
}

static _Noreturn void panic_out(const char *file, int line, int col,
                                const char *msg, int len) {
    fflush(stdout);
    if (file)
        fprintf(stderr, "%s:%d:%d: panic: %.*s\n", file, line, col, len, msg);
    else
        fprintf(stderr, "panic: %.*s\n", len, msg);
    fflush(stderr);
    pal_exit_now(101);
}

_Noreturn void tml_panic_at(const char *file, int line, int col, const char *msg) {
    panic_out(file, line, col, msg, (int)strlen(msg));
}

_Noreturn void tml_panic_str(const char *file, int line, int col, const tml_str *msg) {
    panic_out(file, line, col, msg->ptr, (int)msg->len);
}

void *tml_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        tml_panic_at(NULL, 0, 0, "out of memory");
    return p;
}

void tml_free(void *p) { free(p); }
