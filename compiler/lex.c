/* lex.c - bytes -> tokens carrying file:line:col (TML-SUBSET.md section 1).
 *
 * Takes a byte range of a Source; produces a TK_EOF-terminated array.
 * Newlines are tokens (TK_NL, runs collapsed) because they end
 * statements; every token also records whether a newline preceded it.
 * String literals are decoded here; an interpolated `{expr}` is kept as a
 * source range that the parser lexes again, so positions inside it stay
 * exact. Rejects: unknown characters, bad escapes, unterminated strings,
 * chars and comments, malformed numbers (a digit outside the base, a
 * float beyond F64), empty chars, `\u{}` escapes that are no Unicode
 * scalar value, labels and `#` directives; each is reported and skipped. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tmlc.h"

/* Sorted (strcmp order) for binary search. */
static const char *keywords[] = {
    "This", "abstract", "and", "as", "async", "await", "base", "behavior",
    "break", "class", "const", "continue", "crate", "decorator", "do", "dyn",
    "else", "enum", "extends", "false", "for", "func", "if", "impl",
    "implements", "in", "interface", "is", "let", "life", "loop", "lowlevel",
    "mod", "move", "mut", "namespace", "not", "null", "or", "override",
    "private", "prop", "protected", "pub", "quote", "ref", "return", "sealed",
    "shl", "shr", "static", "super", "then", "this", "through", "throw", "to",
    "true", "type", "union", "unsafe", "use", "var", "virtual", "volatile",
    "when", "where", "while", "with", "xor",
};

static int keyword_cmp(const void *key, const void *elem) {
    return strcmp(key, *(const char *const *)elem);
}

/* Longest first, so the first prefix match is the longest. `** ++ --`
 * are outside the subset; they are tokens so that the parser can name
 * them (`--x` is not a double negation; `- -x` is). */
static const char *puncts[] = {
    "<<=", ">>=", "->", "=>", "::", "..", "==", "!=", "<=", ">=", "&&", "||",
    "<<", ">>", "**", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "+", "-", "*",
    "/", "%", "=", "<", ">", "!", "~", "&", "|", "^", "(", ")", "[", "]", "{",
    "}", ",", ":", ";", ".", "?", "@", NULL,
};

static const char *int_suffixes[] = {"i8", "i16", "i32", "i64", "u8", "u16",
                                     "u32", "u64", NULL};

typedef struct Lexer {
    const Source *src;
    const char *p, *end;
    int line;
    const char *line_start;
    Vec toks;                  /* Tok* */
    bool nl_before;
} Lexer;

bool tok_is(const Tok *t, const char *s) {
    return (t->kind == TK_KEYWORD || t->kind == TK_PUNCT) && t->str[0] == s[0] &&
           strcmp(t->str, s) == 0;
}

static Loc here(Lexer *L, const char *at) {
    return (Loc){L->src, L->line, (int)(at - L->line_start) + 1, (int)(at - L->src->text)};
}

static Tok *add(Lexer *L, TokKind kind, const char *start) {
    Tok *t = arena_alloc(sizeof *t);
    t->kind = kind;
    t->loc = here(L, start);
    t->nl_before = L->nl_before;
    L->nl_before = false;
    vec_push(&L->toks, t);
    return t;
}

static void newline(Lexer *L, const char *nl) {
    L->line++;
    L->line_start = nl + 1;
}

/* Skips spaces, tabs, CRs and comments; returns at a newline or token. */
static void skip_space(Lexer *L) {
    for (;;) {
        const char *p = L->p;
        if (p < L->end && (*p == ' ' || *p == '\t' || *p == '\r')) {
            L->p++;
        } else if (p + 1 < L->end && p[0] == '/' && p[1] == '/') {
            while (L->p < L->end && *L->p != '\n')
                L->p++;
        } else if (p + 1 < L->end && p[0] == '/' && p[1] == '*') {
            int depth = 0;
            Loc start = here(L, p);   /* before the comment's newlines */
            do {
                if (L->p + 1 < L->end && L->p[0] == '/' && L->p[1] == '*')
                    depth++, L->p += 2;
                else if (L->p + 1 < L->end && L->p[0] == '*' && L->p[1] == '/')
                    depth--, L->p += 2;
                else if (L->p < L->end && *L->p == '\n')
                    newline(L, L->p), L->p++;
                else if (L->p < L->end)
                    L->p++;
                else {
                    diag_error(start, "unterminated block comment");
                    return;
                }
            } while (depth > 0);
        } else {
            return;
        }
    }
}

static bool ident_start(int c) { return isalpha(c) || c == '_'; }
static bool ident_char(int c) { return isalnum(c) || c == '_'; }

static void lex_ident(Lexer *L) {
    const char *start = L->p;
    while (L->p < L->end && ident_char((unsigned char)*L->p))
        L->p++;
    Tok *t = add(L, TK_IDENT, start);
    t->len = (int)(L->p - start);
    t->str = arena_strndup(start, (size_t)t->len);
    if (bsearch(t->str, keywords, sizeof keywords / sizeof keywords[0], sizeof keywords[0],
                keyword_cmp))
        t->kind = TK_KEYWORD;
}

static bool is_suffix(const char *s, const char **list) {
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* number = digits [ "." digits ] [ exp ] [ suffix ], with 0x/0b/0o forms */
static void lex_number(Lexer *L) {
    const char *start = L->p;
    int base = 10;
    if (L->p[0] == '0' && L->p + 1 < L->end && strchr("xXbBoO", L->p[1])) {
        base = strchr("xX", L->p[1]) ? 16 : strchr("bB", L->p[1]) ? 2 : 8;
        L->p += 2;
    }
    char digits[128];
    int nd = 0;
    bool is_float = false, overflow = false, bad_digit = false;
    while (L->p < L->end) {
        int c = (unsigned char)*L->p;
        bool digit = base == 16 ? isxdigit(c) : isdigit(c);
        if (isdigit(c) && c - '0' >= base) {
            bad_digit = true;
            diag_error(here(L, L->p), "invalid digit '%c' in %s literal", c,
                       base == 2 ? "binary" : "octal");
        } else if (digit) {
            if (nd < (int)sizeof digits - 1)
                digits[nd++] = (char)c;
            else
                overflow = true;
        } else if (!(c == '_' && nd > 0 && L->p + 1 < L->end &&
                     (isalnum((unsigned char)L->p[1]) || L->p[1] == '_'))) {
            break;
        }
        L->p++;
    }
    if (base == 10 && L->p + 1 < L->end && L->p[0] == '.' && isdigit((unsigned char)L->p[1])) {
        is_float = true;
        digits[nd++] = *L->p++;
        while (L->p < L->end && (isdigit((unsigned char)*L->p) || *L->p == '_'))
            if (*L->p++ != '_' && nd < (int)sizeof digits - 1)
                digits[nd++] = L->p[-1];
    }
    if (base == 10 && L->p < L->end && (*L->p == 'e' || *L->p == 'E')) {
        const char *q = L->p + 1;
        if (q < L->end && (*q == '+' || *q == '-'))
            q++;
        if (q < L->end && isdigit((unsigned char)*q)) {
            is_float = true;
            while (L->p < q)
                digits[nd++] = *L->p++;
            while (L->p < L->end && isdigit((unsigned char)*L->p) && nd < (int)sizeof digits - 1)
                digits[nd++] = *L->p++;
        }
    }
    digits[nd] = '\0';
    const char *suffix = NULL;
    if (L->p < L->end && ident_start((unsigned char)*L->p)) {
        const char *s = L->p;
        while (L->p < L->end && ident_char((unsigned char)*L->p))
            L->p++;
        suffix = arena_strndup(s, (size_t)(L->p - s));
        if (is_suffix(suffix, int_suffixes) && !is_float) {
        } else if (base == 10 && (strcmp(suffix, "f64") == 0 || strcmp(suffix, "f32") == 0)) {
            is_float = true;
        } else {
            diag_error(here(L, s), "invalid suffix '%s' on number literal", suffix);
            suffix = NULL;
        }
    }
    Tok *t = add(L, is_float ? TK_FLOAT : TK_INT, start);
    t->len = (int)(L->p - start);
    t->str = arena_strndup(start, (size_t)t->len);
    t->suffix = suffix;
    if (is_float) {
        t->fval = strtod(digits, NULL);
        if (isinf(t->fval))
            diag_error(t->loc, "float literal out of range for F64");
        return;
    }
    char *endp;
    t->ival = strtoull(digits, &endp, base);
    if (nd == 0 && !bad_digit)
        diag_error(t->loc, "number literal has no digits");
    else if (overflow || (t->ival == UINT64_MAX && strcmp(digits, "18446744073709551615") != 0 &&
                          base == 10))
        diag_error(t->loc, "integer literal is too large");
}

static void put_utf8(Buf *b, uint32_t c) {
    if (c < 0x80) {
        buf_putc(b, (char)c);
    } else if (c < 0x800) {
        buf_putc(b, (char)(0xC0 | c >> 6));
        buf_putc(b, (char)(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        buf_putc(b, (char)(0xE0 | c >> 12));
        buf_putc(b, (char)(0x80 | ((c >> 6) & 0x3F)));
        buf_putc(b, (char)(0x80 | (c & 0x3F)));
    } else {
        buf_putc(b, (char)(0xF0 | c >> 18));
        buf_putc(b, (char)(0x80 | ((c >> 12) & 0x3F)));
        buf_putc(b, (char)(0x80 | ((c >> 6) & 0x3F)));
        buf_putc(b, (char)(0x80 | (c & 0x3F)));
    }
}

/* Decodes one escape after the backslash at L->p[-1]; returns the code
 * point, or -1 after reporting an invalid escape. */
static long lex_escape(Lexer *L) {
    const char *bs = L->p - 1;
    if (L->p >= L->end || *L->p == '\n') {    /* leave the newline to the caller */
        diag_error(here(L, bs), "a backslash cannot end a line inside a literal");
        return -1;
    }
    char c = *L->p++;
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '0': return 0;
    case '\\': return '\\';
    case '"': return '"';
    case '\'': return '\'';
    case '{': return '{';
    case '}': return '}';
    case 'x':
        if (L->p + 2 <= L->end && isxdigit((unsigned char)L->p[0]) &&
            isxdigit((unsigned char)L->p[1])) {
            char h[3] = {L->p[0], L->p[1], 0};
            L->p += 2;
            return strtol(h, NULL, 16);
        }
        break;
    case 'u':
        if (L->p < L->end && *L->p == '{') {
            const char *q = L->p + 1;
            while (q < L->end && isxdigit((unsigned char)*q))
                q++;
            if (q < L->end && *q == '}' && q > L->p + 1 && q - L->p <= 7) {
                long v = strtol(L->p + 1, NULL, 16);
                L->p = q + 1;
                if (v <= 0x10FFFF && !(v >= 0xD800 && v <= 0xDFFF))
                    return v;
                diag_error(here(L, bs), "'\\u{%lX}' is not a Unicode scalar value "
                           "(a surrogate or above 10FFFF)", v);
                return -1;
            }
        }
        break;
    }
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7F)
        diag_error(here(L, bs), "invalid escape sequence '\\%c'", c);
    else
        diag_error(here(L, bs), "invalid escape sequence: backslash then byte 0x%02X",
                   (unsigned char)c);
    return -1;
}

static StrPart *part_new(StrPart ***tail) {
    StrPart *p = arena_alloc(sizeof *p);
    **tail = p;
    *tail = &p->next;
    return p;
}

static void flush_text(Buf *text, StrPart ***tail) {
    if (text->len == 0)
        return;
    StrPart *p = part_new(tail);
    p->text = arena_strndup(text->s, text->len);
    p->len = (int)text->len;
    text->len = 0;
}

/* string = '"' { char | escape | "{" expr "}" } '"'  |  'r"' { char } '"' */
static void lex_string(Lexer *L, bool raw) {
    const char *start = L->p;
    L->p += raw ? 2 : 1;
    Buf text = {0};
    StrPart *parts = NULL, **tail = &parts;
    for (;;) {
        if (L->p >= L->end || *L->p == '\n') {
            diag_error(here(L, start), "unterminated string literal");
            break;
        }
        char c = *L->p++;
        if (c == '"')
            break;
        if (c == '\\' && !raw) {
            long v = lex_escape(L);
            if (v >= 0)
                put_utf8(&text, (uint32_t)v);
        } else if (c == '{' && !raw && L->p < L->end && ident_start((unsigned char)*L->p)) {
            flush_text(&text, &tail);
            StrPart *p = part_new(&tail);
            p->is_expr = true;
            p->expr_off = (int)(L->p - L->src->text);
            p->line = L->line;
            p->line_off = (int)(L->line_start - L->src->text);
            int depth = 1;
            while (L->p < L->end && *L->p != '\n' && *L->p != '"') {
                if (*L->p == '{')
                    depth++;
                else if (*L->p == '}' && --depth == 0)
                    break;
                L->p++;
            }
            if (L->p >= L->end || *L->p != '}') {
                diag_error(here(L, L->src->text + p->expr_off - 1),
                           "unterminated interpolation: missing '}'");
                p->is_expr = false;
                continue;
            }
            p->expr_end = (int)(L->p - L->src->text);
            L->p++;
        } else {
            buf_putc(&text, c);
        }
    }
    flush_text(&text, &tail);
    buf_free(&text);
    Tok *t = add(L, TK_STR, start);
    t->len = (int)(L->p - start);
    t->str = "";
    t->parts = parts;
}

/* `'name` not closed by a quote right after the name: a loop label
 * (`'outer: loop`, `break 'outer`), outside the subset; reported and
 * skipped with its `:` so that the loop itself still parses. (`'ab'` is
 * a character literal with too many characters: lex_char's error.) */
static bool lex_label(Lexer *L) {
    const char *q = L->p + 1, *after = q;
    while (after < L->end && ident_char((unsigned char)*after))
        after++;
    if (q >= L->end || !ident_start((unsigned char)*q) || (after < L->end && *after == '\''))
        return false;
    diag_error(here(L, L->p), "labels ('name) are not supported in this TML subset; "
               "use a Bool variable and `break`");
    L->p = q;
    while (L->p < L->end && ident_char((unsigned char)*L->p))
        L->p++;
    if (L->p < L->end && *L->p == ':')
        L->p++;
    return true;
}

static void lex_char(Lexer *L) {
    if (lex_label(L))
        return;
    const char *start = L->p++;
    long v = -1;
    if (L->p < L->end && *L->p == '\\') {
        L->p++;
        v = lex_escape(L);
    } else if (L->p < L->end && *L->p != '\'' && *L->p != '\n') {
        unsigned char c = (unsigned char)*L->p++;
        int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        v = more ? c & (0x3F >> more) : c;
        while (more-- > 0 && L->p < L->end)
            v = v << 6 | (*L->p++ & 0x3F);
    }
    if (L->p < L->end && *L->p == '\'' && L->p == start + 1) {
        diag_error(here(L, start), "empty character literal");
    } else if (L->p >= L->end || *L->p != '\'') {
        const char *close = L->p;
        while (close < L->end && *close != '\'' && *close != '\n')
            close++;
        if (close < L->end && *close == '\'')
            diag_error(here(L, start), "a character literal holds one character; "
                       "write a string (\"...\") for more");
        else
            diag_error(here(L, start), "unterminated character literal");
        L->p = close;
    }
    if (L->p < L->end && *L->p == '\'')
        L->p++;
    Tok *t = add(L, TK_CHAR, start);
    t->len = (int)(L->p - start);
    t->str = "";
    t->ival = v < 0 ? 0 : (uint64_t)v;
}

static void lex_punct(Lexer *L) {
    for (int i = 0; puncts[i]; i++) {
        if (puncts[i][0] != *L->p)
            continue;
        size_t n = strlen(puncts[i]);
        if ((size_t)(L->end - L->p) >= n && strncmp(L->p, puncts[i], n) == 0) {
            Tok *t = add(L, TK_PUNCT, L->p);
            t->str = puncts[i];
            t->len = (int)n;
            L->p += n;
            return;
        }
    }
    unsigned char c = (unsigned char)*L->p;
    if (c >= 0x20 && c < 0x7F)
        diag_error(here(L, L->p), "unexpected character '%c'", c);
    else
        diag_error(here(L, L->p), "unexpected byte 0x%02X", c);
    L->p++;
}

Tok *lex(const Source *src, int off, int end, int line, int line_off, int *ntok) {
    Lexer L = {.src = src, .p = src->text + off, .end = src->text + end, .line = line,
               .line_start = src->text + line_off};
    for (;;) {
        skip_space(&L);
        if (L.p >= L.end)
            break;
        char c = *L.p;
        if (c == '\n') {
            if (L.toks.n && ((Tok *)L.toks.v[L.toks.n - 1])->kind != TK_NL)
                add(&L, TK_NL, L.p)->str = "newline";
            L.nl_before = true;
            newline(&L, L.p);
            L.p++;
        } else if (c == 'r' && L.p + 1 < L.end && L.p[1] == '"') {
            lex_string(&L, true);
        } else if (ident_start((unsigned char)c)) {
            lex_ident(&L);
        } else if (isdigit((unsigned char)c)) {
            lex_number(&L);
        } else if (c == '"') {
            lex_string(&L, false);
        } else if (c == '\'') {
            lex_char(&L);
        } else if (c == '#' && L.p + 1 < L.end && ident_start((unsigned char)L.p[1])) {
            diag_error(here(&L, L.p), "'#' directives (#if, #endif, ...) are not supported "
                       "in this TML subset");
            while (L.p < L.end && *L.p != '\n')   /* the directive's line */
                L.p++;
        } else {
            lex_punct(&L);
        }
    }
    Tok *eof = add(&L, TK_EOF, L.p);
    eof->str = "end of file";
    Tok *arr = arena_alloc(sizeof *arr * (size_t)L.toks.n);
    for (int i = 0; i < L.toks.n; i++)
        arr[i] = *(Tok *)L.toks.v[i];
    *ntok = L.toks.n;
    return arr;
}
