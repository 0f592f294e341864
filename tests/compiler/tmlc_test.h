/* tmlc_test.h - helpers shared by the compiler's Criterion tests.
 *
 * A test compiles a TML source held in a string (its path is "t.tml")
 * through the passes and looks at what they made: tokens (tt_lex), the
 * AST (tt_parse; ast_str prints a node as an S-expression), the checked
 * Program (tt_check: parse, then check unless parse marked the program
 * broken, as the driver does). diag.c prints diagnostics on stderr; each
 * tt_ pass runs with stderr (fd 2) redirected to a temporary file, so the
 * text lands in tt_diags (tt_diag(i): the i-th diagnostic's first line)
 * while diag_count() counts the errors.
 * The compiler's state (arena, error count, interned types) is global and
 * never reset: each Test runs in a process of its own (Criterion's
 * default, and the TSan stand-in's), and whatever it compiles adds up. */
#ifndef TMLC_TEST_H
#define TMLC_TEST_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "tmlc.h"

#define TT_PATH "t.tml"

static const char *tt_diags = "";     /* every diagnostic printed so far */
static int tt_saved_fd = -1;
static FILE *tt_file;

/* Sends stderr to a temporary file until tt_capture_end. */
static inline void tt_capture_begin(void) {
    fflush(stderr);
    tt_file = tmpfile();
    cr_assert_not_null(tt_file);
    tt_saved_fd = dup(2);
    cr_assert_geq(tt_saved_fd, 0);
    cr_assert_geq(dup2(fileno(tt_file), 2), 0);
}

/* Restores stderr and appends what was written to it to tt_diags. */
static inline void tt_capture_end(void) {
    fflush(stderr);
    dup2(tt_saved_fd, 2);
    close(tt_saved_fd);
    rewind(tt_file);
    Buf b = {0};
    buf_puts(&b, tt_diags);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, tt_file)) > 0)
        buf_putn(&b, chunk, n);
    fclose(tt_file);
    tt_diags = arena_strndup(b.s ? b.s : "", b.len);
    buf_free(&b);
}

static inline Source *tt_source(const char *text) {
    Source *src = arena_alloc(sizeof *src);
    src->path = TT_PATH;
    src->text = text;
    src->len = strlen(text);
    return src;
}

/* The tokens of `text`, TK_EOF last; *ntok counts them. */
static inline Tok *tt_lex(const char *text, int *ntok) {
    Source *src = tt_source(text);
    tt_capture_begin();
    Tok *toks = lex(src, 0, (int)src->len, 1, 0, ntok);
    tt_capture_end();
    return toks;
}

static inline Program *tt_parse(const char *text) {
    tt_capture_begin();
    Program *prog = parse(tt_source(text));
    tt_capture_end();
    return prog;
}

/* Parses and checks `text` as the driver does: a program that parse
 * marked broken is not checked. */
static inline Program *tt_check(const char *text) {
    Program *prog = tt_parse(text);
    if (!prog->broken) {
        tt_capture_begin();
        check(prog);
        tt_capture_end();
    }
    return prog;
}

/* The first line of the i-th diagnostic (`t.tml:L:C: error: ...`), or ""
 * when there are fewer. */
static inline const char *tt_diag(int i) {
    for (const char *s = tt_diags; *s;) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (!strncmp(s, TT_PATH ":", strlen(TT_PATH ":")) && i-- == 0)
            return arena_strndup(s, len);
        s += len + (end != NULL);
    }
    return "";
}

/* Asserts that exactly n errors were reported, the first line of each
 * being the next of the n strings that follow. */
static inline void tt_assert_errors(int n, ...) {
    cr_assert_eq(diag_count(), n, "%d errors, not %d:\n%s", diag_count(), n, tt_diags);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        cr_assert_str_eq(tt_diag(i), want, "error %d is\n%s\nnot\n%s\nin:\n%s", i, tt_diag(i),
                         want, tt_diags);
    }
    va_end(ap);
}

/* Whether the diagnostics contain `text` (a hint, a source line). */
static inline bool tt_diags_have(const char *text) { return strstr(tt_diags, text) != NULL; }

/* The function `name` (a method: "Type::name"), or NULL. */
static inline Func *tt_func(Program *prog, const char *name) {
    for (int i = 0; i < prog->funcs.n; i++) {
        Func *f = prog->funcs.v[i];
        const char *full = f->owner ? arena_printf("%s::%s", f->owner, f->name) : f->name;
        if (!strcmp(full, name))
            return f;
    }
    return NULL;
}

/* The user type `name`, or NULL. */
static inline StructDecl *tt_struct(Program *prog, const char *name) {
    for (int i = 0; i < prog->structs.n; i++)
        if (!strcmp(((StructDecl *)prog->structs.v[i])->name, name))
            return prog->structs.v[i];
    return NULL;
}

/* The nth (from 0) node of `kind` under n, n included, in pre-order
 * (a node before its children, children in source order: a block's value
 * and a struct literal's base, both lhs, after the args, a when arm's
 * guard between its patterns and its body); *seen counts the matches. */
static inline Node *tt_find_from(Node *n, NodeKind kind, int nth, int *seen) {
    if (!n)
        return NULL;
    if (n->kind == kind && (*seen)++ == nth)
        return n;
    bool lhs_last = n->kind == ND_BLOCK || n->kind == ND_STRUCTLIT, arm = n->kind == ND_ARM;
    Node *before[] = {n->pat, n->init, arm ? NULL : n->cond, lhs_last ? NULL : n->lhs,
                      n->then, n->els, n->rhs};
    Node *after[] = {arm ? n->cond : NULL, lhs_last ? n->lhs : NULL, n->body};
    Node *found = NULL;
    for (size_t i = 0; i < sizeof before / sizeof before[0] && !found; i++)
        found = tt_find_from(before[i], kind, nth, seen);
    for (int i = 0; i < n->args.n && !found; i++)
        found = tt_find_from(n->args.v[i], kind, nth, seen);
    for (size_t i = 0; i < sizeof after / sizeof after[0] && !found; i++)
        found = tt_find_from(after[i], kind, nth, seen);
    return found;
}

/* The nth node of `kind` in function `fn` of prog; fails the test when
 * there is none. */
static inline Node *tt_find(Program *prog, const char *fn, NodeKind kind, int nth) {
    Func *f = tt_func(prog, fn);
    cr_assert_not_null(f, "no function '%s'", fn);
    int seen = 0;
    Node *n = tt_find_from(f->body, kind, nth, &seen);
    cr_assert_not_null(n, "'%s' has %d nodes of kind %d, not %d", fn, seen, kind, nth + 1);
    return n;
}

/* ------------------------------------------------------ ast_str */

static inline void tt_ast(Buf *b, const Node *n);

static inline void tt_type(Buf *b, const TypeExpr *te) {
    buf_puts(b, te->name ? te->name : "(");
    for (int i = 0; i < te->args.n; i++) {
        buf_puts(b, i ? ", " : te->name ? "[" : "");
        tt_type(b, te->args.v[i]);
    }
    buf_puts(b, !te->name ? ")" : te->args.n ? "]" : "");
}

/* Writes `(head k1 k2 k3` (the non-NULL ones), leaving it open. */
static inline void tt_open(Buf *b, const char *head, const Node *k1, const Node *k2,
                           const Node *k3) {
    buf_printf(b, "(%s", head);
    const Node *kids[] = {k1, k2, k3};
    for (int i = 0; i < 3; i++)
        if (kids[i]) {
            buf_putc(b, ' ');
            tt_ast(b, kids[i]);
        }
}

/* Writes ` arg arg ...`: the args of n (NULL: none). */
static inline void tt_args(Buf *b, const Node *n) {
    for (int i = 0; n && i < n->args.n; i++) {
        buf_putc(b, ' ');
        tt_ast(b, n->args.v[i]);
    }
}

/* `(head k1 k2 k3 arg ...)`, with the args of `n` (NULL: none). */
static inline void tt_list(Buf *b, const char *head, const Node *n, const Node *k1,
                           const Node *k2, const Node *k3) {
    tt_open(b, head, k1, k2, k3);
    tt_args(b, n);
    buf_putc(b, ')');
}

static inline void tt_str(Buf *b, const Node *n) {
    buf_putc(b, '"');
    int k = 0;
    for (StrPart *p = n->parts; p; p = p->next) {
        if (p->is_expr) {
            buf_putc(b, '{');
            tt_ast(b, n->args.v[k++]);
            buf_putc(b, '}');
            continue;
        }
        for (int i = 0; i < p->len; i++) {
            unsigned char c = (unsigned char)p->text[i];
            if (c == '\n')
                buf_puts(b, "\\n");
            else if (c == '"' || c == '\\')
                buf_printf(b, "\\%c", c);
            else if (c < 0x20 || c >= 0x7F)
                buf_printf(b, "\\x%02X", c);
            else
                buf_putc(b, (char)c);
        }
    }
    buf_putc(b, '"');
}

static inline void tt_path(Buf *b, const Node *n) {
    if (n->qual)
        buf_printf(b, "%s::", n->qual);
    buf_puts(b, n->name);
    for (int i = 0; i < n->targs.n; i++) {
        buf_puts(b, i ? ", " : "[");
        tt_type(b, n->targs.v[i]);
    }
    buf_puts(b, n->targs.n ? "]" : "");
}

/* `(let P: T init)`; `var` for a mutable binding, `const` for a constant. */
static inline void tt_let(Buf *b, const Node *n) {
    tt_open(b, n->is_const ? "const" : n->is_var ? "var" : "let", n->pat, NULL, NULL);
    if (n->texpr) {
        buf_puts(b, ": ");
        tt_type(b, n->texpr);
    }
    if (n->init) {
        buf_putc(b, ' ');
        tt_ast(b, n->init);
    }
    buf_putc(b, ')');
}

/* A struct literal or pattern: `(Name x: e y: p ..base)`, `(Name x: p ..)`. */
static inline void tt_fields(Buf *b, const Node *n) {
    buf_printf(b, "(%s", n->qual ? arena_printf("%s::%s", n->qual, n->name) : n->name);
    for (int i = 0; i < n->fields.n; i++) {
        buf_printf(b, " %s: ", (const char *)n->fields.v[i]);
        tt_ast(b, n->args.v[i]);
    }
    if (n->kind == ND_STRUCTLIT && n->lhs) {
        buf_puts(b, " ..");
        tt_ast(b, n->lhs);
    }
    buf_puts(b, n->rest ? " ..)" : ")");
}

/* `(head arg ... [if guard] [=> value])`: a when arm, a block. */
static inline void tt_arrow(Buf *b, const char *head, const Node *n, const Node *guard,
                            const Node *value) {
    buf_printf(b, "(%s", head);
    tt_args(b, n);
    if (guard) {
        buf_puts(b, " if ");
        tt_ast(b, guard);
    }
    if (value) {
        buf_puts(b, " => ");
        tt_ast(b, value);
    }
    buf_putc(b, ')');
}

static inline void tt_ast(Buf *b, const Node *n) {
    if (!n) {
        buf_puts(b, "<null>");
        return;
    }
    const char *sfx = n->suffix ? n->suffix : "";
    switch (n->kind) {
    case ND_INT: buf_printf(b, "%llu%s", (unsigned long long)n->ival, sfx); return;
    case ND_FLOAT: buf_printf(b, "%g%s", n->fval, sfx); return;
    case ND_BOOL: buf_puts(b, n->ival ? "true" : "false"); return;
    case ND_CHAR:
        if (n->ival >= 0x20 && n->ival < 0x7F)
            buf_printf(b, "'%c'", (char)n->ival);
        else
            buf_printf(b, "'\\u{%llX}'", (unsigned long long)n->ival);
        return;
    case ND_STR: tt_str(b, n); return;
    case ND_UNIT: buf_puts(b, "()"); return;
    case ND_PATH: tt_path(b, n); return;
    case ND_CALL: tt_list(b, "call", n, n->lhs, NULL, NULL); return;
    case ND_METHOD: tt_list(b, arena_printf(".%s", n->name), n, n->lhs, NULL, NULL); return;
    case ND_FIELD:
        tt_open(b, ".", n->lhs, NULL, NULL);
        buf_printf(b, " %s)", n->name);
        return;
    case ND_UNARY: case ND_BINARY: case ND_ASSIGN:
        tt_list(b, n->op, NULL, n->lhs, n->rhs, NULL);
        return;
    case ND_DEREF: tt_list(b, "deref", NULL, n->lhs, NULL, NULL); return;
    case ND_AWAIT: tt_list(b, "await", NULL, n->lhs, NULL, NULL); return;
    case ND_IF: tt_list(b, "if", NULL, n->cond, n->then, n->els); return;
    case ND_TERNARY: tt_list(b, "?", NULL, n->cond, n->then, n->els); return;
    case ND_WHEN: tt_list(b, "when", n, n->cond, NULL, NULL); return;
    case ND_ASYNC_BLOCK: tt_list(b, "async", NULL, n->body, NULL, NULL); return;
    case ND_SELECT: tt_list(b, n->biased ? "select_biased" : "select", n, n->els, NULL, NULL); return;
    case ND_ARM:
        if (n->init) {              /* a select branch: (arm P = (await e) if c => body) */
            buf_puts(b, "(arm ");
            tt_ast(b, n->args.v[0]);
            buf_puts(b, " = ");
            tt_ast(b, n->init);
            if (n->cond) {
                buf_puts(b, " if ");
                tt_ast(b, n->cond);
            }
            buf_puts(b, " => ");
            tt_ast(b, n->body);
            buf_putc(b, ')');
            return;
        }
        tt_arrow(b, "arm", n, n->cond, n->body);
        return;
    case ND_BLOCK: tt_arrow(b, "block", n, NULL, n->lhs); return;
    case ND_LOOP: tt_list(b, "loop", NULL, n->init, n->cond, n->body); return;
    case ND_WHILE: tt_list(b, "while", NULL, n->cond, n->body, NULL); return;
    case ND_FOR: tt_list(b, "for", NULL, n->pat, n->cond, n->body); return;
    case ND_BREAK: buf_puts(b, "break"); return;
    case ND_CONTINUE: buf_puts(b, "continue"); return;
    case ND_RETURN: tt_list(b, "return", NULL, n->lhs, NULL, NULL); return;
    case ND_STRUCTLIT: case ND_PSTRUCT: tt_fields(b, n); return;
    case ND_TUPLE: case ND_PTUPLE: tt_list(b, "tuple", n, NULL, NULL, NULL); return;
    case ND_CAST:
        tt_open(b, "as", n->lhs, NULL, NULL);
        buf_putc(b, ' ');
        tt_type(b, n->texpr);
        buf_putc(b, ')');
        return;
    case ND_LET: tt_let(b, n); return;
    case ND_RANGE: case ND_PLIT:
        if (n->rhs)
            tt_list(b, n->inclusive ? "through" : "to", NULL, n->lhs, n->rhs, NULL);
        else
            tt_ast(b, n->lhs);      /* a literal pattern */
        return;
    case ND_PWILD: buf_puts(b, "_"); return;
    case ND_PBIND: buf_printf(b, "%s%s", n->is_var ? "mut " : "", n->name); return;
    case ND_PVARIANT:
        tt_list(b, n->qual ? arena_printf("%s::%s", n->qual, n->name) : n->name, n, NULL, NULL,
                NULL);
        return;
    case ND_POR: tt_list(b, "|", n, NULL, NULL, NULL); return;
    }
    buf_printf(b, "<kind %d>", n->kind);
}

/* n as an S-expression: `(+ 1 (* 2 3))`, `(call f x)`, `(.m recv arg)`,
 * `(. recv field)`, `(block stmt ... => value)`, `(let x: I64 1)`. */
static inline const char *ast_str(const Node *n) {
    Buf b = {0};
    tt_ast(&b, n);
    const char *s = arena_strndup(b.s, b.len);
    buf_free(&b);
    return s;
}

#endif /* TMLC_TEST_H */
