/* diag_test.c - compiler/diag.c: `file:line:col: error: msg`, the source
 * line, a caret under the column (tabs kept), an optional hint line;
 * errors counted, warnings not. */
#include <stdlib.h>

#include "tmlc_test.h"

static Loc at(const Source *src, int line, int col, int off) { return (Loc){src, line, col, off}; }

Test(diag, error_prints_location_source_line_and_caret) {
    Source *src = tt_source("let a = 1\nlet bb = oops + 2\nlet c = 3\n");
    tt_capture_begin();
    diag_error(at(src, 2, 10, 19), "unknown name '%s'", "oops");
    tt_capture_end();
    cr_assert_str_eq(tt_diags, "t.tml:2:10: error: unknown name 'oops'\n"
                               "let bb = oops + 2\n"
                               "         ^\n");
    cr_assert_eq(diag_count(), 1);
}

Test(diag, caret_keeps_the_tabs_of_the_source_line) {
    Source *src = tt_source("\t\tx = y\r\n");
    tt_capture_begin();
    diag_error_hint(at(src, 1, 7, 6), "declare it with `var`", "cannot assign");
    tt_capture_end();
    cr_assert_str_eq(tt_diags, "t.tml:1:7: error: cannot assign\n"
                               "\t\tx = y\n"              /* the CR is not printed */
                               "\t\t    ^\n"
                               "hint: declare it with `var`\n");
}

Test(diag, warnings_are_printed_but_not_counted) {
    Source *src = tt_source("@inline func f() { }");
    tt_capture_begin();
    diag_warning_hint(at(src, 1, 1, 0), NULL, "decorator `@%s` is ignored", "inline");
    tt_capture_end();
    cr_assert_str_eq(tt_diags, "t.tml:1:1: warning: decorator `@inline` is ignored\n"
                               "@inline func f() { }\n"
                               "^\n");
    cr_assert_eq(diag_count(), 0);
}

/* Runs at the exit diag.c takes: a status of 1 passes only at 20 errors. */
static void stopped_at_twenty(void) {
    if (diag_count() != 20)
        _exit(2);
}

Test(diag, the_twentieth_error_stops_the_compiler_with_status_1, .exit_code = 1) {
    Source *src = tt_source("x");
    atexit(stopped_at_twenty);
    tt_capture_begin();                     /* never ended: the process exits */
    for (int i = 1; i <= 25; i++)
        diag_error(at(src, 1, 1, 0), "error %d", i);
    _exit(2);                               /* it did not stop */
}
