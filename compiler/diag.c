/* diag.c - compiler diagnostics.
 * Format: `file:line:col: error: message`, then the source line verbatim,
 * then a caret under the column (tabs kept so the caret lines up), then an
 * optional `hint:` line. Warnings (`warning:`, same layout) are not
 * counted and stop nothing. Every error is counted; the driver stops before
 * emitting C when the count is non-zero. After MAX_ERRORS the compiler
 * gives up, so one broken line cannot flood the terminal. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tmlc.h"

enum { MAX_ERRORS = 20 };

static int errors;

static void print_source_line(Loc loc) {
    const char *text = loc.src->text;
    int start = loc.off;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    int end = loc.off;
    while (text[end] && text[end] != '\n')
        end++;
    if (end > start && text[end - 1] == '\r')
        end--;
    fprintf(stderr, "%.*s\n", end - start, text + start);
    for (int i = start; i < loc.off; i++)
        fputc(text[i] == '\t' ? '\t' : ' ', stderr);
    fputs("^\n", stderr);
}

static void report(Loc loc, const char *kind, const char *hint, const char *fmt, va_list ap) {
    fprintf(stderr, "%s:%d:%d: %s: ", loc.src->path, loc.line, loc.col, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    print_source_line(loc);
    if (hint)
        fprintf(stderr, "hint: %s\n", hint);
}

static void verror(Loc loc, const char *hint, const char *fmt, va_list ap) {
    report(loc, "error", hint, fmt, ap);
    if (++errors >= MAX_ERRORS) {
        fprintf(stderr, "tml: too many errors, stopping\n");
        exit(1);
    }
}

void diag_error(Loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(loc, NULL, fmt, ap);
    va_end(ap);
}

void diag_error_hint(Loc loc, const char *hint, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(loc, hint, fmt, ap);
    va_end(ap);
}

void diag_warning_hint(Loc loc, const char *hint, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report(loc, "warning", hint, fmt, ap);
    va_end(ap);
}

int diag_count(void) { return errors; }
