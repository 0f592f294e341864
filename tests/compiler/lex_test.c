/* lex_test.c - compiler/lex.c: tokens and their file:line:col, newline
 * tokens and nl_before, numbers (bases, `_`, suffixes, int vs float),
 * char and string escapes, interpolation parts, and lexical errors: each
 * reported once, at the offending byte, with lexing going on after it. */
#include "tmlc_test.h"

/* The spelling of token t, for comparing a stream at a glance. */
static const char *spell(const Tok *t) {
    switch (t->kind) {
    case TK_NL: return "NL";
    case TK_EOF: return "EOF";
    case TK_STR: return "STR";
    case TK_CHAR: return "CHAR";
    default: return t->str;
    }
}

/* The stream as `spell spell ...`. */
static const char *stream(const char *text) {
    int n;
    Tok *t = tt_lex(text, &n);
    Buf b = {0};
    for (int i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? " " : "", spell(&t[i]));
    const char *s = arena_strndup(b.s, b.len);
    buf_free(&b);
    return s;
}

/* The one token of `text` (then TK_EOF), lexed without an error. */
static Tok one(const char *text) {
    int n;
    Tok *t = tt_lex(text, &n);
    cr_assert_eq(diag_count(), 0, "%s: %s", text, tt_diags);
    cr_assert_eq(n, 2, "%s: %d tokens", text, n);
    return t[0];
}

/* The text of a string token's only part. */
static const char *str_text(const Tok *t) {
    cr_assert_eq(t->kind, TK_STR);
    cr_assert_not_null(t->parts);
    cr_assert_null(t->parts->next);
    cr_assert_not(t->parts->is_expr);
    return arena_strndup(t->parts->text, (size_t)t->parts->len);
}

#define cr_assert_loc(tok, l, c) \
    cr_assert((tok).loc.line == (l) && (tok).loc.col == (c), "%s at %d:%d, not %d:%d", \
              spell(&(tok)), (tok).loc.line, (tok).loc.col, l, c)

Test(lex, tokens_carry_file_line_and_col) {
    int n;
    Tok *t = tt_lex("let x = 42\n  foo(y)", &n);
    cr_assert_eq(n, 10);
    cr_assert_str_eq(t[0].loc.src->path, "t.tml");
    cr_assert_loc(t[0], 1, 1);
    cr_assert_loc(t[1], 1, 5);
    cr_assert_loc(t[3], 1, 9);
    cr_assert_eq(t[3].len, 2);
    cr_assert_loc(t[4], 1, 11);             /* the newline token, where the LF is */
    cr_assert_loc(t[5], 2, 3);
    cr_assert_eq(t[5].loc.off, 13);
    cr_assert_loc(t[8], 2, 8);
    cr_assert_loc(t[9], 2, 9);              /* EOF */
    cr_assert_eq(diag_count(), 0);
}

Test(lex, keywords_are_reserved_and_library_names_are_not) {
    int n;
    Tok *t = tt_lex("func spawn await self then main", &n);
    TokKind want[] = {TK_KEYWORD, TK_IDENT, TK_KEYWORD, TK_IDENT, TK_KEYWORD, TK_IDENT};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(t[i].kind, want[i], "token %d (%s)", i, t[i].str);
}

Test(lex, punctuation_takes_the_longest_match) {
    cr_assert_str_eq(stream("a<<=b->c::d..e<=f"), "a <<= b -> c :: d .. e <= f EOF");
    cr_assert_str_eq(stream("x**y++"), "x ** y ++ EOF");
}

Test(lex, newlines_collapse_into_one_token_that_marks_the_next) {
    int n;
    Tok *t = tt_lex("\n\na\n\n  \n\tb c", &n);
    cr_assert_str_eq(stream("\n\na\n\n  \n\tb c"), "a NL b c EOF");
    cr_assert(t[2].nl_before);
    cr_assert_not(t[3].nl_before);
    cr_assert_loc(t[2], 6, 2);
}

Test(lex, comments_are_skipped_and_their_newlines_count) {
    int n;
    Tok *t = tt_lex("a // one\n/* two\n /* nested */ three */ b /// doc\nc", &n);
    cr_assert_str_eq(stream("a // one\n/* two\n /* nested */ three */ b /// doc\nc"),
                     "a NL b NL c EOF");
    cr_assert_loc(t[2], 3, 24);
    cr_assert_loc(t[4], 4, 1);
    cr_assert_eq(diag_count(), 0);
}

Test(lex, crlf_ends_a_line_like_lf) {
    int n;
    Tok *t = tt_lex("a\r\nb", &n);
    cr_assert_str_eq(stream("a\r\nb"), "a NL b EOF");
    cr_assert_loc(t[2], 2, 1);
    cr_assert(t[2].nl_before);
}

Test(lex, integers_in_every_base_with_underscores) {
    uint64_t want[] = {31, 5, 15, 1000000, 255};
    const char *text[] = {"0x1F", "0b101", "0o17", "1_000_000", "0xf_f"};
    for (int i = 0; i < 5; i++) {
        Tok t = one(text[i]);
        cr_assert_eq(t.kind, TK_INT, "%s", text[i]);
        cr_assert_eq(t.ival, want[i], "%s is %llu", text[i], (unsigned long long)t.ival);
        cr_assert_null(t.suffix);
        cr_assert_eq(t.len, (int)strlen(text[i]));
    }
}

Test(lex, integer_suffixes_with_or_without_underscore) {
    Tok a = one("500000_i64"), b = one("7u8"), c = one("0xFFu16");
    cr_assert_eq(a.kind, TK_INT);
    cr_assert_eq(a.ival, 500000);
    cr_assert_str_eq(a.suffix, "i64");
    cr_assert_str_eq(b.suffix, "u8");
    cr_assert_eq(b.ival, 7);
    cr_assert_str_eq(c.suffix, "u16");
    cr_assert_eq(c.ival, 255);
}

Test(lex, floats_need_digits_on_both_sides_of_the_point) {
    Tok a = one("1.5"), b = one("2.5e-3"), c = one("1e9"), d = one("42f64"), e = one("3_0.2_5");
    cr_assert_eq(a.kind, TK_FLOAT);
    cr_assert_eq(a.fval, 1.5);
    cr_assert_eq(b.fval, 2.5e-3);
    cr_assert_eq(c.kind, TK_FLOAT);
    cr_assert_eq(c.fval, 1e9);
    cr_assert_eq(d.kind, TK_FLOAT);         /* an f64 suffix makes a float of an integer */
    cr_assert_eq(d.fval, 42.0);
    cr_assert_str_eq(d.suffix, "f64");
    cr_assert_eq(e.fval, 30.25);
    cr_assert_str_eq(stream("1. .5 x.0"), "1 . . 5 x . 0 EOF");
    cr_assert_str_eq(stream("1..2"), "1 .. 2 EOF");
}

Test(lex, u64_max_fits_and_one_more_is_reported_once) {
    cr_assert_eq(one("18446744073709551615").ival, UINT64_MAX);
    int n;
    Tok *t = tt_lex("x = 18446744073709551616 + 1", &n);
    tt_assert_errors(1, "t.tml:1:5: error: integer literal is too large");
    cr_assert_str_eq(stream("x = 18446744073709551616 + 1"), "x = 18446744073709551616 + 1 EOF");
    cr_assert_eq(t[2].kind, TK_INT);
}

Test(lex, char_literals_decode_to_code_points) {
    uint64_t want[] = {'a', '\n', 0x41, '\'', 0xE9, 0x1F600, 0};
    const char *text[] = {"'a'", "'\\n'", "'\\u{41}'", "'\\''", "'\xC3\xA9'", "'\\u{1F600}'",
                          "'\\0'"};
    for (int i = 0; i < 7; i++) {
        Tok t = one(text[i]);
        cr_assert_eq(t.kind, TK_CHAR, "%s", text[i]);
        cr_assert_eq(t.ival, want[i], "%s is %llx", text[i], (unsigned long long)t.ival);
    }
}

Test(lex, string_escapes_are_decoded) {
    Tok t = one("\"a\\tb\\\\c\\\"d\\x41\\u{E9}\\{x\\}\\0\"");
    const char *s = str_text(&t);
    cr_assert_eq(t.parts->len, 14);
    cr_assert_eq(memcmp(s, "a\tb\\c\"dA\xC3\xA9{x}", 14), 0);   /* and the NUL */
}

Test(lex, raw_strings_keep_backslashes_and_braces) {
    Tok t = one("r\"a\\nb{x}\"");
    cr_assert_str_eq(str_text(&t), "a\\nb{x}");
}

Test(lex, interpolation_splits_a_string_into_text_and_expression_ranges) {
    const char *text = "\"a{x}b{y.len()}\"";
    Tok t = one(text);
    StrPart *p = t.parts;
    cr_assert_str_eq(arena_strndup(p->text, (size_t)p->len), "a");
    p = p->next;
    cr_assert(p->is_expr);
    cr_assert_str_eq(arena_strndup(text + p->expr_off, (size_t)(p->expr_end - p->expr_off)), "x");
    cr_assert_eq(p->line, 1);
    p = p->next;
    cr_assert_str_eq(arena_strndup(p->text, (size_t)p->len), "b");
    p = p->next;
    cr_assert(p->is_expr);
    cr_assert_str_eq(arena_strndup(text + p->expr_off, (size_t)(p->expr_end - p->expr_off)),
                     "y.len()");
    cr_assert_null(p->next);
}

Test(lex, braces_not_followed_by_a_name_are_literal) {
    cr_assert_str_eq(str_text((Tok[]){one("\"{ x } {2} {}\"")}), "{ x } {2} {}");
}

Test(lex, a_sub_range_keeps_the_positions_of_the_whole_file) {
    const char *text = "let a = 1\n    \"{abc + d}\"";
    Source *src = tt_source(text);
    int off = (int)(strstr(text, "abc") - text), n;
    Tok *t = lex(src, off, off + 7, 2, 10, &n);
    cr_assert_str_eq(t[0].str, "abc");
    cr_assert_loc(t[0], 2, 7);
    cr_assert_loc(t[2], 2, 13);
    cr_assert_eq(t[3].kind, TK_EOF);
}

/* ---------------------------------------------------------- errors */

Test(lex, unknown_character_is_reported_once_and_skipped) {
    cr_assert_str_eq(stream("let x = 1 $ 2\nlet y = 3"), "let x = 1 2 NL let y = 3 EOF");
    tt_assert_errors(1, "t.tml:1:11: error: unexpected character '$'");
}

Test(lex, bad_escape_is_reported_at_its_backslash_and_dropped) {
    int n;
    Tok *t = tt_lex("s = \"ab\\qc\" + t", &n);
    tt_assert_errors(1, "t.tml:1:8: error: invalid escape sequence '\\q'");
    cr_assert_str_eq(str_text(&t[2]), "abc");
    cr_assert_str_eq(t[4].str, "t");
}

Test(lex, unterminated_string_ends_at_the_line_end) {
    int n;
    Tok *t = tt_lex("x = \"abc\ny = 2", &n);
    tt_assert_errors(1, "t.tml:1:5: error: unterminated string literal");
    cr_assert_str_eq(str_text(&t[2]), "abc");
    cr_assert_str_eq(t[4].str, "y");
    cr_assert_loc(t[4], 2, 1);
}

Test(lex, unterminated_block_comment_is_reported_where_it_starts) {
    cr_assert_str_eq(stream("a\n  /* one /* two */\nb"), "a NL EOF");
    tt_assert_errors(1, "t.tml:2:3: error: unterminated block comment");
}

Test(lex, digit_outside_the_base_is_reported_at_the_digit) {
    Tok *t;
    int n;
    t = tt_lex("0b1021", &n);
    tt_assert_errors(1, "t.tml:1:5: error: invalid digit '2' in binary literal");
    cr_assert_eq(n, 2);
    cr_assert_eq(t[0].kind, TK_INT);
}

Test(lex, unknown_suffix_is_reported_at_the_suffix) {
    int n;
    Tok *t = tt_lex("12abc 1.5i32", &n);
    tt_assert_errors(2, "t.tml:1:3: error: invalid suffix 'abc' on number literal",
                        "t.tml:1:10: error: invalid suffix 'i32' on number literal");
    cr_assert_eq(n, 3);
    cr_assert_null(t[0].suffix);
}

Test(lex, empty_and_surrogate_chars_are_reported) {
    cr_assert_str_eq(stream("'' '\\u{D800}' x"), "CHAR CHAR x EOF");
    tt_assert_errors(2, "t.tml:1:1: error: empty character literal",
                        "t.tml:1:5: error: '\\u{D800}' is not a Unicode scalar value (a "
                        "surrogate or above 10FFFF)");
}

Test(lex, label_is_reported_and_skipped_with_its_colon) {
    cr_assert_str_eq(stream("'outer: loop"), "loop EOF");
    cr_assert_eq(diag_count(), 1);
    cr_assert(tt_diags_have("t.tml:1:1: error: labels ('name) are not supported"));
}

Test(lex, several_characters_in_quotes_are_one_error_not_a_label) {
    cr_assert_str_eq(stream("c = 'ab' + 'xyz1'\nd = '+"), "c = CHAR + CHAR NL d = CHAR EOF");
    tt_assert_errors(3, "t.tml:1:5: error: a character literal holds one character; write a "
                        "string (\"...\") for more",
                        "t.tml:1:12: error: a character literal holds one character; write a "
                        "string (\"...\") for more",
                        "t.tml:2:5: error: unterminated character literal");
}

Test(lex, unclosed_interpolation_is_reported_at_its_brace) {
    Tok t = (tt_lex("\"ab{x\" y", &(int){0}))[0];
    tt_assert_errors(1, "t.tml:1:4: error: unterminated interpolation: missing '}'");
    for (StrPart *p = t.parts; p; p = p->next)
        cr_assert_not(p->is_expr);
}
