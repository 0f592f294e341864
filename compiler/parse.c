/* parse.c - tokens -> AST (TML-SUBSET.md sections 2, 3 and 8).
 *
 * One function per grammar rule, with the rule above it. Newlines end
 * statements except inside ( ), [ ], argument lists and struct literals
 * (p->nl_quiet > 0), after a trailing binary operator, and before a line
 * that starts with a continuing operator (section 3.1).
 * Errors: the first error of a statement is reported; the parser then
 * skips to the statement's end (panic mode), so one typo yields one error.
 * A block still open at an item in column 1 ends there; a function with
 * an error is marked broken (check skips it and checks the others), and
 * an error outside the functions marks the whole program broken.
 * Rejects with a message naming them as unsupported: constructs of the
 * language outside the subset (section 9: `** ++ --`, behaviors, classes,
 * unions, generics, `dyn`, `ref`, `throw`, try/catch blocks, labels
 * written without a quote, the try `?`, postfix `!`), each skipped so that
 * one yields one error. Of the optional forms, parses `spawn f(x)` as the
 * call `spawn(f(x))` and records `use x as y` in Program.aliases. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tmlc.h"

typedef struct Parser {
    Source *src;
    Tok *toks;
    int pos, ntok;
    int nl_quiet;               /* > 0: newlines are insignificant */
    bool panic;                 /* an error was reported in this statement */
    int func_errors;            /* errors reported inside functions */
    Map misnamed;               /* reserved words reported as names (decl_name):
                                   their uses are names, with no more errors */
    Program *prog;
} Parser;

static Node *expr(Parser *p);
static Node *block(Parser *p);
static Node *pattern(Parser *p);
static Node *alternatives(Parser *p);
static void struct_pattern(Parser *p, Node *n);
static TypeExpr *type_expr(Parser *p);
static bool decorators(Parser *p);
static Node *if_expr(Parser *p);

/* ----------------------------------------------------------- tokens */

static Tok *peek(Parser *p) {
    if (p->nl_quiet > 0)
        while (p->toks[p->pos].kind == TK_NL)
            p->pos++;
    return &p->toks[p->pos];
}

static Tok *peek_at(Parser *p, int k) {   /* k-th token after the current,
                                             newlines counted */
    int i = p->pos + k;
    return &p->toks[i < p->ntok ? i : p->ntok - 1];
}

static Tok *next(Parser *p) {
    Tok *t = peek(p);
    if (t->kind != TK_EOF)
        p->pos++;
    return t;
}

static bool is(Parser *p, const char *s) { return tok_is(peek(p), s); }

static bool accept(Parser *p, const char *s) {
    if (!is(p, s))
        return false;
    next(p);
    return true;
}

static const char *describe(const Tok *t) {
    switch (t->kind) {
    case TK_EOF: return "end of file";
    case TK_NL: return "newline";
    case TK_STR: return "string literal";
    case TK_INT: case TK_FLOAT: return arena_printf("'%s'", t->str);
    case TK_CHAR: return "character literal";
    default: return arena_printf("'%s'", t->str);
    }
}

/* Reports the first error of a statement (at `loc`, with an optional
 * `hint` line) and enters panic mode. */
static void error_hint(Parser *p, Loc loc, const char *hint, const char *msg) {
    if (!p->panic)
        diag_error_hint(loc, hint, "%s", msg);
    p->panic = true;
}

static void error_at(Parser *p, Tok *t, const char *msg) { error_hint(p, t->loc, NULL, msg); }

/* Reports token t as a construct outside the subset (section 9). */
static void unsupported(Parser *p, Tok *t, const char *what, const char *hint) {
    error_at(p, t, arena_printf("%s is not supported in this TML subset; %s", what, hint));
}

/* Reports an error that the caller recovers from exactly, skipping just
 * the offending tokens: parsing goes on as if they were not there, with
 * no panic mode. */
static void error_skipped(Parser *p, Tok *t, const char *msg) {
    bool panic = p->panic;
    error_at(p, t, msg);
    p->panic = panic;
}

/* The same for a construct outside the subset (a label, a try block). */
static void unsupported_skipped(Parser *p, Tok *t, const char *what, const char *hint) {
    error_skipped(p, t, arena_printf("%s is not supported in this TML subset; %s", what, hint));
}

static Tok *expect(Parser *p, const char *s) {
    Tok *t = peek(p);
    if (tok_is(t, s))
        return next(p);
    error_at(p, t, arena_printf("expected '%s' but found %s", s, describe(t)));
    return t;
}

static bool is_reserved_word(const Tok *t) {
    return t->kind == TK_KEYWORD && isalpha((unsigned char)t->str[0]);
}

/* Reports that `what` was expected at t, naming a reserved word as one. */
static void expected(Parser *p, Tok *t, const char *what) {
    if (is_reserved_word(t))
        error_at(p, t, arena_printf("expected %s but found '%s', which is a reserved word and "
                                    "cannot be a name", what, t->str));
    else
        error_at(p, t, arena_printf("expected %s but found %s", what, describe(t)));
}

static const char *expect_ident(Parser *p, const char *what) {
    Tok *t = peek(p);
    if (t->kind == TK_IDENT) {
        next(p);
        return t->str;
    }
    expected(p, t, what);
    return "_error";
}

static bool starts_item(const Tok *t);

/* Is t a reserved word that decl_name takes as a misspelt name? */
static bool misnamed_ahead(const Tok *t) {
    return is_reserved_word(t) && !(t->nl_before && starts_item(t));
}

/* A name being declared (parameter, field, function, type, variant...)
 * or a field named in a struct literal or pattern. A reserved word in its
 * place (`func f(type: I64)`) is reported and taken as the name, so that
 * parsing goes on exactly and the rest of the declaration draws no errors;
 * but not one that starts an item at the start of a line, which more
 * likely begins the next declaration. */
static const char *decl_name(Parser *p, const char *what) {
    Tok *t = peek(p);
    if (!misnamed_ahead(t))
        return expect_ident(p, what);
    bool panic = p->panic;
    expected(p, t, what);
    p->panic = panic;
    map_put(&p->misnamed, t->str, t);
    next(p);
    return t->str;
}

/* A use of a reserved word that decl_name took as a name: consumed, and
 * true, with no error (the declaration drew one). */
static bool misnamed_use(Parser *p) {
    Tok *t = peek(p);
    if (!is_reserved_word(t) || !map_get(&p->misnamed, t->str))
        return false;
    next(p);
    return true;
}

/* Skips tokens through the `close` matching the `open` at the current
 * token (or nothing when it is not `open`): a construct already reported. */
static void skip_group(Parser *p, const char *open, const char *close) {
    if (!tok_is(&p->toks[p->pos], open))
        return;
    int depth = 0;
    do {
        Tok *t = &p->toks[p->pos];
        if (t->kind == TK_EOF)
            return;
        depth += tok_is(t, open) - tok_is(t, close);
        p->pos++;
    } while (depth > 0);
}

/* Whether t is the plain name `s` (not reserved: `self`, `try`, ...). */
static bool ident_is(const Tok *t, const char *s) {
    return t->kind == TK_IDENT && !strcmp(t->str, s);
}

/* Whether t spells one of the NULL-terminated `words`. */
static bool tok_in(const Tok *t, const char *const *words) {
    for (int i = 0; words[i]; i++)
        if (tok_is(t, words[i]))
            return true;
    return false;
}

static bool is_assign_op(const Tok *t) {
    static const char *const ops[] = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=",
                                      "^=", "<<=", ">>=", NULL};
    return tok_in(t, ops);
}

static void skip_nl(Parser *p) {
    while (p->toks[p->pos].kind == TK_NL)
        p->pos++;
}

static Node *node(NodeKind kind, Tok *t) {
    Node *n = arena_alloc(sizeof *n);
    n->kind = kind;
    n->loc = t->loc;
    return n;
}

/* Whether t, first on its line, starts an item (also one that item()
 * reports as outside the subset), where parsing resumes after an error.
 * `type:` does not: it is a field or parameter misnamed (decl_name). */
static bool starts_item(const Tok *t) {
    static const char *const kws[] = {"func", "async", "type", "enum", "const", "impl", "@",
                                      "behavior", "class", "union", "interface", NULL};
    return tok_in(t, kws) && !tok_is(t + 1, ":");
}

/* Whether t starts an item in column 1 of its line, where no statement can
 * begin (`const` can, so it does not count): a function body still open
 * there is abandoned, so that one unclosed `{` or `(` cannot swallow the
 * items after it. */
static bool item_boundary(const Tok *t) {
    return t->nl_before && t->loc.col == 1 && starts_item(t) && !tok_is(t, "const");
}

/* Skips to the end of the current statement: a newline or ';' at this
 * nesting depth, or the '}' closing the enclosing block (not consumed).
 * At an item boundary it stops with the error state kept, so the blocks
 * still open end there without further errors (parse_source then resumes
 * with that item). */
static void recover(Parser *p) {
    int depth = 0;
    for (;;) {
        Tok *t = &p->toks[p->pos];
        if (item_boundary(t))
            return;
        if (t->kind == TK_EOF)
            break;
        if (depth == 0 && (t->kind == TK_NL || tok_is(t, ";") || tok_is(t, "}")))
            break;
        if (tok_is(t, "{") || tok_is(t, "(") || tok_is(t, "["))
            depth++;
        else if ((tok_is(t, "}") || tok_is(t, ")") || tok_is(t, "]")) && depth > 0)
            depth--;
        p->pos++;
    }
    p->panic = false;
}

/* -------------------------------------------------------------- types */

// type = path [ "[" type { "," type } "]" ] | "(" [ type { "," type } ] ")"
static TypeExpr *type_expr(Parser *p) {
    Tok *t = peek(p);
    if (tok_is(t, "dyn") || tok_is(t, "ref") || (tok_is(t, "mut") && tok_is(peek_at(p, 1), "ref"))) {
        unsupported(p, t, arena_printf("'%s' in a type", t->str),
                    "write the type itself (structs are copied, handles shared)");
        next(p);
        accept(p, "ref");
        return type_expr(p);
    }
    TypeExpr *te = arena_alloc(sizeof *te);
    te->loc = t->loc;
    if (accept(p, "(")) {
        p->nl_quiet++;
        while (!is(p, ")") && peek(p)->kind != TK_EOF) {
            vec_push(&te->args, type_expr(p));
            if (!accept(p, ","))
                break;
        }
        expect(p, ")");
        p->nl_quiet--;
        return te;
    }
    te->name = expect_ident(p, "a type");
    while (is(p, "::")) {
        next(p);
        te->name = expect_ident(p, "a type");
    }
    if (accept(p, "[")) {
        p->nl_quiet++;
        do
            vec_push(&te->args, type_expr(p));
        while (accept(p, ","));
        expect(p, "]");
        p->nl_quiet--;
    }
    return te;
}

/* ------------------------------------------------------- expressions */

// args = [ expr { "," expr } [ "," ] ] ")"    (after the "(")
static void call_args(Parser *p, Vec *args) {
    p->nl_quiet++;
    while (!is(p, ")") && peek(p)->kind != TK_EOF) {
        vec_push(args, expr(p));
        if (!accept(p, ","))
            break;
    }
    expect(p, ")");
    p->nl_quiet--;
}

static bool is_upper_ident(const Tok *t) {
    return t->kind == TK_IDENT && isupper((unsigned char)t->str[0]);
}

/* `Name {` starts a struct literal only when Name is capitalised and the
 * brace is followed by `}`, `..`, or an identifier and `:` `,` `}` (or a
 * reserved word and `:`, a field misnamed). */
static bool struct_lit_ahead(Parser *p, const char *name) {
    if (!isupper((unsigned char)name[0]) || !tok_is(&p->toks[p->pos], "{"))
        return false;
    int i = p->pos + 1;
    while (p->toks[i].kind == TK_NL)
        i++;
    Tok *a = &p->toks[i];
    if (tok_is(a, "}") || tok_is(a, ".."))
        return true;
    int j = i + 1;
    while (p->toks[j].kind == TK_NL)
        j++;
    Tok *b = &p->toks[j];
    return (a->kind == TK_IDENT && (tok_is(b, ":") || tok_is(b, ",") || tok_is(b, "}"))) ||
           (is_reserved_word(a) && tok_is(b, ":"));     /* reported by struct_lit */
}

/* `..base` of a struct literal (section 3.6): the fields not given are
 * copied from base, evaluated once. A base that is not a plain variable
 * is bound first: `{ let __updateN = base; Name { ..., ..__updateN } }`;
 * the checker fills in the missing fields from the variable (n->lhs). */
static Node *update_base(Parser *p, Node *n) {
    Tok *t = next(p);                        /* ".." */
    Node *base = expr(p);
    if (base->kind == ND_PATH && !base->qual) {
        n->lhs = base;
        return n;
    }
    Node *let = node(ND_LET, t);
    Node *bind = node(ND_PBIND, t);
    bind->name = arena_printf("__update%d", p->pos);
    let->pat = bind;
    let->init = base;
    Node *var = node(ND_PATH, t);
    var->name = bind->name;
    n->lhs = var;
    Node *b = node(ND_BLOCK, t);
    b->loc = n->loc;
    vec_push(&b->args, let);
    b->lhs = n;
    return b;
}

// struct_lit = "{" [ init { "," init } [ "," ".." expr ] | ".." expr ] "}"
// init = ident [ ":" expr ]
static Node *struct_lit(Parser *p, Node *path) {
    Node *n = node(ND_STRUCTLIT, &p->toks[p->pos]);
    Node *result = n;
    n->loc = path->loc;
    n->name = path->name;
    expect(p, "{");
    p->nl_quiet++;
    while (!is(p, "}") && peek(p)->kind != TK_EOF) {
        if (is(p, "..")) {
            result = update_base(p, n);
            break;
        }
        Tok *ft = peek(p);
        const char *field = misnamed_use(p) ? ft->str : decl_name(p, "a field name");
        vec_push(&n->fields, (void *)field);
        if (accept(p, ":")) {
            vec_push(&n->args, expr(p));
        } else {
            Node *v = node(ND_PATH, ft);
            v->name = field;
            vec_push(&n->args, v);
        }
        if (!accept(p, ","))
            break;
    }
    expect(p, "}");
    p->nl_quiet--;
    return result;
}

// path = ident { "::" ident } [ "[" type { "," type } "]" ] [ struct_lit ]
static Node *path_expr(Parser *p) {
    Tok *t = next(p);
    Node *n = node(ND_PATH, t);
    n->name = t->str;
    while (is(p, "::") && peek_at(p, 1)->kind == TK_IDENT) {
        next(p);
        n->qual = n->name;
        n->name = next(p)->str;
    }
    if (tok_is(&p->toks[p->pos], "[") && is_upper_ident(peek_at(p, 1))) {
        next(p);
        p->nl_quiet++;
        do
            vec_push(&n->targs, type_expr(p));
        while (accept(p, ","));
        expect(p, "]");
        p->nl_quiet--;
        if (is(p, "::") && peek_at(p, 1)->kind == TK_IDENT) {   /* List[T]::new */
            next(p);
            n->qual = n->name;
            n->name = next(p)->str;
        }
    }
    if (struct_lit_ahead(p, n->name))
        return struct_lit(p, n);
    return n;
}

/* Parses an interpolated `{expr}` of a string literal from its range. */
static Node *interp_expr(Parser *p, StrPart *part) {
    Parser sub = {.src = p->src, .prog = p->prog};
    sub.toks = lex(p->src, part->expr_off, part->expr_end, part->line, part->line_off,
                   &sub.ntok);
    sub.nl_quiet = 1;
    Node *e = expr(&sub);
    if (peek(&sub)->kind != TK_EOF)
        error_at(&sub, peek(&sub), arena_printf("unexpected %s in interpolation",
                                                describe(peek(&sub))));
    return e;
}

static Node *string_lit(Parser *p) {
    Tok *t = next(p);
    Node *n = node(ND_STR, t);
    n->parts = t->parts;
    for (StrPart *part = t->parts; part; part = part->next)
        if (part->is_expr)
            vec_push(&n->args, interp_expr(p, part));
    return n;
}

// paren = "(" ")" | "(" expr ")" | "(" expr "," [ expr { "," expr } ] ")"
static Node *paren(Parser *p) {
    Tok *t = next(p);
    p->nl_quiet++;
    Node *n;
    if (is(p, ")")) {
        n = node(ND_UNIT, t);
    } else {
        Node *e = expr(p);
        if (is(p, ",")) {
            n = node(ND_TUPLE, t);
            vec_push(&n->args, e);
            while (accept(p, ",") && !is(p, ")"))
                vec_push(&n->args, expr(p));
        } else {
            n = e;
        }
    }
    expect(p, ")");
    p->nl_quiet--;
    return n;
}

/* The source text of the assignment whose target `e` was just parsed: up
 * to the end of its line, a `;`, an `else` or a closing bracket at its own
 * depth. */
static const char *assignment_text(Parser *p, Node *e) {
    int depth = 0;
    Tok *last = &p->toks[p->pos];
    for (Tok *t = last; t->kind != TK_EOF && !(depth == 0 && t->kind == TK_NL); t++) {
        if (tok_is(t, "(") || tok_is(t, "[") || tok_is(t, "{"))
            depth++;
        else if ((tok_is(t, ")") || tok_is(t, "]") || tok_is(t, "}")) && depth-- == 0)
            break;
        else if (depth == 0 && (tok_is(t, ";") || tok_is(t, "else")))
            break;
        if (t->kind != TK_NL)
            last = t;
    }
    const char *text = p->src->text + e->loc.off;
    int len = last->loc.off + last->len - e->loc.off;
    return memchr(text, '\n', (size_t)len) ? "... = ..." : arena_strndup(text, len);
}

/* A block or `then`-branch body; `{` starts a block. A `then` branch is
 * an expression: an assignment there (`if c then x = v`) is reported at
 * its target, with the block form as the hint (TML-SUBSET.md 3.5). */
static Node *branch(Parser *p, bool then_form) {
    if (!then_form)
        return block(p);
    Node *e = expr(p);
    if (is_assign_op(peek(p)))
        error_hint(p, e->loc, arena_printf("write the branch as a block: `{ %s }`",
                                           assignment_text(p, e)),
                   "an assignment cannot be the branch of `if ... then`");
    return e;
}

/* A when arm `pat => body`. */
static Node *arm_of(Node *pat, Node *body) {
    Node *arm = arena_alloc(sizeof *arm);
    arm->kind = ND_ARM;
    arm->loc = pat->loc;
    vec_push(&arm->args, pat);
    arm->body = body;
    return arm;
}

// if_let = "if" "let" pattern "=" expr block [ "else" ( if | block ) ]
// It is `when expr { pattern => block, _ => else-part }`.
static Node *if_let(Parser *p, Node *n) {
    Tok *let = next(p);
    n->kind = ND_WHEN;
    Node *pat = pattern(p);
    expect(p, "=");
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->cond = expr(p);
    vec_push(&n->args, arm_of(pat, block(p)));
    int save = p->pos;
    skip_nl(p);
    Node *other;
    if (accept(p, "else")) {
        other = is(p, "if") ? if_expr(p) : block(p);
    } else {
        p->pos = save;
        other = node(ND_BLOCK, let);
    }
    vec_push(&n->args, arm_of(node(ND_PWILD, let), other));
    p->nl_quiet = quiet;
    return n;
}

// if = "if" expr ( block [ "else" ( if | block ) ] | "then" expr [ "else" expr ] )
static Node *if_expr(Parser *p) {
    Node *n = node(ND_IF, next(p));
    if (is(p, "let"))
        return if_let(p, n);
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->cond = expr(p);
    bool then_form = accept(p, "then");
    n->then = branch(p, then_form);
    int save = p->pos;
    skip_nl(p);
    if (accept(p, "else")) {
        if (is(p, "if"))
            n->els = if_expr(p);
        else
            n->els = branch(p, then_form);
    } else {
        p->pos = save;
    }
    p->nl_quiet = quiet;
    return n;
}

// arm = pattern { ( "," | "|" ) pattern } [ "if" expr ] "=>" expr
static Node *when_arm(Parser *p) {
    Node *arm = node(ND_ARM, peek(p));
    p->nl_quiet++;
    do
        vec_push(&arm->args, pattern(p));
    while ((accept(p, ",") || accept(p, "|")) && !is(p, "=>"));
    if (accept(p, "if"))
        arm->cond = expr(p);
    expect(p, "=>");
    p->nl_quiet--;
    Node *body = expr(p);
    if (is_assign_op(peek(p))) {
        Node *a = node(ND_ASSIGN, next(p));
        a->op = p->toks[p->pos - 1].str;
        a->lhs = body;
        a->rhs = expr(p);
        body = a;
    }
    arm->body = body;
    return arm;
}

// when = "when" expr "{" { arm ( "," | NL ) } "}"
static Node *when_expr(Parser *p) {
    Node *n = node(ND_WHEN, next(p));
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->cond = expr(p);
    expect(p, "{");
    skip_nl(p);
    while (!is(p, "}") && peek(p)->kind != TK_EOF) {
        int before = p->pos;
        vec_push(&n->args, when_arm(p));
        accept(p, ",");
        skip_nl(p);
        if (p->panic) {
            recover(p);
            skip_nl(p);
        }
        if (p->pos == before)
            next(p);
    }
    expect(p, "}");
    p->nl_quiet = quiet;
    return n;
}

// loop = "loop" "(" ( expr | "var" ident ":" type "<" expr ) ")" block
// A bare `loop { ... }` (not upstream's grammar) is reported, then parsed
// as `loop (true)`.
static Node *loop_expr(Parser *p) {
    Tok *t = next(p);
    Node *n = node(ND_LOOP, t);
    if (is(p, "{")) {
        error_skipped(p, peek(p), "expected '(' but found '{': an infinite loop is written "
                                  "`loop (true) { ... }`");
        n->cond = node(ND_BOOL, t);
        n->cond->ival = 1;
        n->body = block(p);
        return n;
    }
    expect(p, "(");
    p->nl_quiet++;
    if (is(p, "var")) {
        Tok *vt = next(p);
        Node *let = node(ND_LET, vt);
        let->is_var = true;
        Node *bind = node(ND_PBIND, peek(p));
        bind->name = decl_name(p, "a loop variable name");
        let->pat = bind;
        expect(p, ":");
        let->texpr = type_expr(p);
        expect(p, "<");
        n->loop_var = true;
        n->init = let;
        n->cond = expr(p);
    } else {
        n->cond = expr(p);
    }
    expect(p, ")");
    p->nl_quiet--;
    n->body = block(p);
    return n;
}

// while = "while" expr block
static Node *while_expr(Parser *p) {
    Node *n = node(ND_WHILE, next(p));
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->cond = expr(p);
    n->body = block(p);
    p->nl_quiet = quiet;
    return n;
}

// for = "for" pattern "in" expr block      (expr: a range or a List)
// Any pattern but a plain name or `_` becomes `for __forN in e { let
// pattern = __forN; ... }`, so the loop itself binds one immutable name.
static Node *for_expr(Parser *p) {
    Tok *t = next(p);
    Node *n = node(ND_FOR, t);
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->pat = pattern(p);
    expect(p, "in");
    n->cond = expr(p);
    n->body = block(p);
    p->nl_quiet = quiet;
    if ((n->pat->kind == ND_PBIND && !n->pat->is_var) || n->pat->kind == ND_PWILD)
        return n;
    Node *let = node(ND_LET, t);
    let->loc = n->pat->loc;
    let->pat = n->pat;
    Node *bind = node(ND_PBIND, t);
    bind->name = arena_printf("__for%d", p->pos);
    Node *each = node(ND_PATH, t);
    each->name = bind->name;
    let->init = each;
    n->pat = bind;
    Vec *stmts = &n->body->args;
    vec_push(stmts, let);
    memmove(stmts->v + 1, stmts->v, sizeof *stmts->v * (size_t)(stmts->n - 1));
    stmts->v[0] = let;
    return n;
}

/* Does t start a handler of a try block? */
static bool is_handler(const Tok *t) { return ident_is(t, "catch") || ident_is(t, "finally"); }

/* Is the current token a `try` that opens a try block: followed by a block
 * and then (past newlines) `catch` or `finally`? Otherwise it is a name. */
static bool try_ahead(Parser *p) {
    if (!ident_is(peek(p), "try") || !tok_is(peek_at(p, 1), "{"))
        return false;
    int save = p->pos;
    p->pos++;
    skip_group(p, "{", "}");
    skip_nl(p);
    bool handled = is_handler(&p->toks[p->pos]);
    p->pos = save;
    return handled;
}

// try = "try" block { ( "catch" | "finally" ) { token } block }
// Exceptions are outside the subset (section 9): reported, skipped whole.
static Node *try_block(Parser *p) {
    Tok *t = next(p);
    unsupported_skipped(p, t, "a 'try'/'catch' block",
                        "errors are values: return an `Err(e)` and match it with `when`");
    skip_group(p, "{", "}");
    for (;;) {
        int save = p->pos;
        skip_nl(p);
        if (!is_handler(&p->toks[p->pos])) {
            p->pos = save;
            return node(ND_UNIT, t);
        }
        while (!tok_is(&p->toks[p->pos], "{") && p->toks[p->pos].kind != TK_NL &&
               p->toks[p->pos].kind != TK_EOF)
            p->pos++;                           /* `catch e`, `catch (e: E)` */
        skip_group(p, "{", "}");
    }
}

/* `break name` / `continue name`: a label without its quote (section 9),
 * reported and skipped. */
static Node *loop_exit(Parser *p, NodeKind kind) {
    Tok *t = next(p);
    Tok *label = &p->toks[p->pos];
    if (label->kind == TK_IDENT) {
        unsupported_skipped(p, label, arena_printf("a label ('%s %s')", t->str, label->str),
                            "use a Bool variable and `break`");
        p->pos++;
    }
    return node(kind, t);
}

/* Does the current token start an expression (for `return [expr]`)? */
static bool starts_expr(Parser *p) {
    Tok *t = &p->toks[p->pos];
    if (t->kind == TK_NL || t->kind == TK_EOF)
        return false;
    return !(tok_is(t, "}") || tok_is(t, ")") || tok_is(t, "]") || tok_is(t, ",") ||
             tok_is(t, ";") || tok_is(t, "else"));
}

// primary = literal | path | paren | block | if | when | loop | while | for
//         | "return" [ expr ] | "break" | "continue"
static Node *primary(Parser *p) {
    Tok *t = peek(p);
    Node *n;
    switch (t->kind) {
    case TK_INT:
        n = node(ND_INT, next(p));
        n->ival = t->ival;
        n->suffix = t->suffix;
        return n;
    case TK_FLOAT:
        n = node(ND_FLOAT, next(p));
        n->fval = t->fval;
        n->suffix = t->suffix;
        return n;
    case TK_CHAR:
        n = node(ND_CHAR, next(p));
        n->ival = t->ival;
        return n;
    case TK_STR:
        return string_lit(p);
    case TK_IDENT:
        return try_ahead(p) ? try_block(p) : path_expr(p);
    default:
        break;
    }
    if (tok_is(t, "true") || tok_is(t, "false")) {
        n = node(ND_BOOL, next(p));
        n->ival = tok_is(t, "true");
        return n;
    }
    if (tok_is(t, "("))
        return paren(p);
    if (tok_is(t, "{"))
        return block(p);
    if (tok_is(t, "if"))
        return if_expr(p);
    if (tok_is(t, "when"))
        return when_expr(p);
    if (tok_is(t, "loop"))
        return loop_expr(p);
    if (tok_is(t, "while"))
        return while_expr(p);
    if (tok_is(t, "for"))
        return for_expr(p);
    if (tok_is(t, "return")) {
        n = node(ND_RETURN, next(p));
        if (starts_expr(p))
            n->lhs = expr(p);
        return n;
    }
    if (tok_is(t, "break"))
        return loop_exit(p, ND_BREAK);
    if (tok_is(t, "continue"))
        return loop_exit(p, ND_CONTINUE);
    if (tok_is(t, "this")) {
        n = node(ND_PATH, next(p));
        n->name = "this";
        return n;
    }
    if (tok_is(t, "throw"))
        unsupported(p, t, "'throw'", "call `panic(msg)` or return an `Err(e)`");
    if (misnamed_use(p)) {
        n = node(ND_PATH, t);
        n->name = t->str;
        return n;
    }
    error_at(p, t, arena_printf("expected an expression but found %s", describe(t)));
    n = node(ND_UNIT, t);
    if (t->kind != TK_EOF && t->kind != TK_NL && !tok_is(t, "}") && !tok_is(t, ")"))
        next(p);
    return n;
}

/* Is float token t two tuple indices, `1.2` in `t.1.2`? */
static bool tuple_indices(const Tok *t) {
    if (t->kind != TK_FLOAT || t->suffix)
        return false;
    size_t a = strspn(t->str, "0123456789");
    const char *b = t->str + a + 1;
    return a > 0 && t->str[a] == '.' && *b && strspn(b, "0123456789") == strlen(b);
}

/* `lhs.digits` (= index), written at byte `skip` of token t. */
static Node *tuple_field(Node *lhs, Tok *t, int skip, const char *digits, uint64_t index) {
    Node *f = node(ND_FIELD, t);
    f->loc.col += skip;
    f->loc.off += skip;
    f->lhs = lhs;
    f->name = digits;
    f->ival = index;
    return f;
}

/* `++` / `--` before or after an operand: reported, then ignored. */
static void step_op(Parser *p) {
    Tok *t = next(p);
    bool inc = tok_is(t, "++");
    unsupported(p, t, inc ? "'++' (increment)" : "'--' (decrement)",
                inc ? "write `x += 1`" : "write `x -= 1`");
}

/* A newline followed by `.` continues a postfix chain (section 3.1). */
static bool continues_postfix(Parser *p) {
    Tok *t = &p->toks[p->pos];
    if (t->kind != TK_NL)
        return tok_is(t, "(") || tok_is(t, ".") || tok_is(t, "[");
    return tok_is(peek_at(p, 1), ".");
}

// postfix = primary { "(" args | "." ( ident [ "(" args ] | int | "await" ) }
static Node *postfix(Parser *p) {
    Node *n = primary(p);
    while (continues_postfix(p)) {
        skip_nl(p);
        Tok *t = next(p);
        if (tok_is(t, "(")) {
            Node *c = node(ND_CALL, t);
            c->loc = n->loc;
            c->lhs = n;
            call_args(p, &c->args);
            n = c;
        } else if (tok_is(t, "[")) {           /* l[i] reads l.get(i) */
            Node *m = node(ND_METHOD, t);
            m->loc = n->loc;
            m->lhs = n;
            m->name = "get";
            m->op = "[]";
            p->nl_quiet++;
            vec_push(&m->args, expr(p));
            expect(p, "]");
            p->nl_quiet--;
            n = m;
        } else if (accept(p, "await")) {
            Node *a = node(ND_AWAIT, t);
            a->lhs = n;
            n = a;
        } else if (peek(p)->kind == TK_INT || tuple_indices(peek(p))) {
            Tok *it = next(p);
            if (it->kind == TK_INT) {
                n = tuple_field(n, it, 0, it->str, it->ival);
            } else {                /* `t.1.2` lexes `1.2` as one float */
                int dot = (int)strcspn(it->str, ".");
                const char *a = arena_strndup(it->str, (size_t)dot), *b = it->str + dot + 1;
                n = tuple_field(n, it, 0, a, strtoull(a, NULL, 10));
                n = tuple_field(n, it, dot + 1, b, strtoull(b, NULL, 10));
            }
        } else {
            Tok *nt = peek(p);
            const char *name =
                misnamed_use(p) ? nt->str : expect_ident(p, "a field or method name");
            if (tok_is(&p->toks[p->pos], "(")) {
                Node *m = node(ND_METHOD, nt);
                next(p);
                m->lhs = n;
                m->name = name;
                call_args(p, &m->args);
                n = m;
            } else {
                Node *f = node(ND_FIELD, nt);
                f->lhs = n;
                f->name = name;
                f->ival = UINT64_MAX;
                n = f;
            }
        }
    }
    if (is(p, "++") || is(p, "--"))
        step_op(p);
    if (tok_is(&p->toks[p->pos], "!"))
        unsupported(p, next(p), "postfix '!' (error propagation)",
                    "match the value with `when`, or call `unwrap()`");
    return n;
}

// spawn_prefix = "spawn" postfix      (`spawn f(x)` is `spawn(f(x))`, section 5 MAY)
static Node *spawn_prefix(Parser *p) {
    Tok *t = next(p);
    Node *c = node(ND_CALL, t);
    c->lhs = node(ND_PATH, t);
    c->lhs->name = t->str;
    vec_push(&c->args, postfix(p));
    return c;
}

// unary = ( "-" | "not" | "!" | "~" | "*" | "await" ) unary | spawn_prefix | postfix
static Node *unary(Parser *p) {
    Tok *t = peek(p);
    if (ident_is(t, "spawn") && p->toks[p->pos + 1].kind == TK_IDENT)
        return spawn_prefix(p);
    if (tok_is(t, "++") || tok_is(t, "--")) {
        step_op(p);
        return unary(p);
    }
    if (tok_is(t, "ref")) {
        unsupported(p, next(p), "'ref'", "pass the value itself (structs are copied, handles "
                                         "shared)");
        return unary(p);
    }
    if (tok_is(t, "await")) {
        Node *n = node(ND_AWAIT, next(p));
        n->lhs = unary(p);
        return n;
    }
    if (tok_is(t, "-") || tok_is(t, "not") || tok_is(t, "!") || tok_is(t, "~")) {
        Node *n = node(ND_UNARY, next(p));
        n->op = tok_is(t, "!") ? "not" : t->str;
        n->lhs = unary(p);
        return n;
    }
    if (tok_is(t, "*")) {
        Node *n = node(ND_DEREF, next(p));
        n->lhs = unary(p);
        return n;
    }
    return postfix(p);
}

// cast = unary { "as" type | ( "to" | "through" ) postfix }
// A line that starts with `as`, `to` or `through` continues (section 3.1).
static Node *cast(Parser *p) {
    Node *n = unary(p);
    for (;;) {
        Tok *t = &p->toks[p->pos];
        if (t->kind == TK_NL && p->nl_quiet == 0) {
            Tok *after = peek_at(p, 1);
            if (tok_is(after, "as") || tok_is(after, "to") || tok_is(after, "through"))
                p->pos++;
        }
        t = peek(p);
        if (tok_is(t, "as")) {
            Node *c = node(ND_CAST, next(p));
            c->lhs = n;
            c->texpr = type_expr(p);
            n = c;
        } else if (tok_is(t, "to") || tok_is(t, "through")) {
            Node *r = node(ND_RANGE, next(p));
            r->inclusive = tok_is(t, "through");
            r->lhs = n;
            r->rhs = postfix(p);
            n = r;
        } else {
            return n;
        }
    }
}

/* Binary operator levels, lowest first; aliases map to one spelling. */
static const char *levels[][7] = {
    {"or", "||"},
    {"and", "&&"},
    {"==", "!=", "<", ">", "<=", ">="},
    {"|"},
    {"^", "xor"},
    {"&"},
    {"<<", ">>", "shl", "shr"},
    {"+", "-"},
    {"*", "/", "%", "**"},          /* `**` only to be reported */
};
enum { NLEVELS = sizeof levels / sizeof levels[0] };

/* The precedence level of binary operator `t`, or -1; cached in the
 * token (prec 0 = not computed yet, else level + 2). */
static int binop_level(const Tok *t) {
    if (!t->prec) {
        int level = -1;
        for (int l = 0; l < NLEVELS && level < 0; l++)
            for (int i = 0; i < 7 && levels[l][i]; i++)
                if (tok_is(t, levels[l][i]))
                    level = l;
        ((Tok *)t)->prec = (signed char)(level + 2);
    }
    return t->prec - 2;
}

static bool op_in_level(const Tok *t, int level) { return binop_level(t) == level; }

static bool is_binop(const Tok *t) { return binop_level(t) >= 0; }

/* The operator token at this level, looking past one newline when the
 * next line starts with a continuing operator (not `*`, section 3.1). */
static Tok *level_op(Parser *p, int level) {
    Tok *t = &p->toks[p->pos];
    if (t->kind == TK_NL && p->nl_quiet == 0) {
        Tok *n = peek_at(p, 1);
        if (is_binop(n) && !tok_is(n, "*") && op_in_level(n, level)) {
            p->pos++;
            return n;
        }
        return NULL;
    }
    t = peek(p);
    return op_in_level(t, level) ? t : NULL;
}

static const char *canonical_op(const char *s) {
    if (!strcmp(s, "||")) return "or";
    if (!strcmp(s, "&&")) return "and";
    if (!strcmp(s, "xor")) return "^";
    if (!strcmp(s, "shl")) return "<<";
    if (!strcmp(s, "shr")) return ">>";
    return s;
}

// binary(l) = binary(l+1) { op(l) binary(l+1) }
static Node *binary(Parser *p, int level) {
    if (level == NLEVELS)
        return cast(p);
    Node *n = binary(p, level + 1);
    Tok *t;
    while ((t = level_op(p, level))) {
        next(p);
        skip_nl(p);   /* a trailing operator continues the expression */
        if (tok_is(t, "**"))
            unsupported(p, t, "'**' (power)", "use a loop or repeated multiplication");
        Node *b = node(ND_BINARY, t);
        b->op = canonical_op(t->str);
        b->lhs = n;
        b->rhs = binary(p, level + 1);
        n = b;
    }
    return n;
}

// expr = binary [ "?" expr ":" expr ]
static Node *expr(Parser *p) {
    Node *n = binary(p, 0);
    Tok *t = &p->toks[p->pos];
    if (t->kind == TK_NL && p->nl_quiet == 0 && tok_is(peek_at(p, 1), "?"))
        p->pos++;
    /* `e?` is the try operator when nothing can follow, or when it ends
     * the line right after `e` (a ternary may continue on the next line) */
    Tok *q = peek(p), *after = peek_at(p, 1), *before = &p->toks[p->pos ? p->pos - 1 : 0];
    bool glued = before->loc.src == q->loc.src && before->loc.off + before->len == q->loc.off;
    if (tok_is(q, "?") && (((after->kind == TK_NL || after->kind == TK_EOF) && glued) ||
                           tok_is(after, ")") || tok_is(after, "}") || tok_is(after, ",") ||
                           tok_is(after, ";") || tok_is(after, "."))) {
        unsupported(p, next(p), "the '?' operator (error propagation)",
                    "match the value with `when`, or call `unwrap()`");
        return n;
    }
    if (is(p, "?")) {
        Node *c = node(ND_TERNARY, next(p));
        c->cond = n;
        skip_nl(p);
        c->then = expr(p);
        skip_nl(p);
        expect(p, ":");
        skip_nl(p);
        c->els = expr(p);
        return c;
    }
    return n;
}

/* ---------------------------------------------------------- patterns */

static bool is_lit_tok(const Tok *t) {
    return t->kind == TK_INT || t->kind == TK_FLOAT || t->kind == TK_STR ||
           t->kind == TK_CHAR || tok_is(t, "true") || tok_is(t, "false");
}

// pattern = "_" | [ "mut" ] ident | literal [ ( "to" | "through" ) literal ]
//         | "(" alts { "," alts } ")"
//         | path [ "(" alts { "," alts } ")" | "{" fpat { "," fpat } [ "," ".." ] "}" ]
static Node *pattern(Parser *p) {
    Tok *t = peek(p);
    if (is_lit_tok(t)) {
        Node *n = node(ND_PLIT, t);
        n->lhs = primary(p);
        if (is(p, "to") || is(p, "through")) {      /* range: lo to hi */
            n->inclusive = tok_is(next(p), "through");
            if (is_lit_tok(peek(p)))
                n->rhs = primary(p);
            else
                error_at(p, peek(p), "a range pattern ends with a literal");
        }
        return n;
    }
    if (tok_is(t, "(")) {
        Node *n = node(ND_PTUPLE, next(p));
        p->nl_quiet++;
        do
            vec_push(&n->args, alternatives(p));
        while (accept(p, ",") && !is(p, ")"));
        expect(p, ")");
        p->nl_quiet--;
        return n;
    }
    bool mut = accept(p, "mut");
    t = peek(p);
    if (misnamed_ahead(t) && !tok_is(t, "mut")) {     /* `let type = 1`: bound as a name */
        Node *n = node(ND_PBIND, t);
        n->name = decl_name(p, "a pattern");
        n->is_var = mut;
        return n;
    }
    if (t->kind != TK_IDENT) {
        expected(p, t, "a pattern");
        if (t->kind != TK_EOF)
            next(p);
        return node(ND_PWILD, t);
    }
    next(p);
    if (!strcmp(t->str, "_"))
        return node(ND_PWILD, t);
    Node *n = node(ND_PBIND, t);
    n->name = t->str;
    n->is_var = mut;
    while (is(p, "::") && peek_at(p, 1)->kind == TK_IDENT) {
        next(p);
        n->qual = n->name;
        n->name = next(p)->str;
        n->kind = ND_PVARIANT;
    }
    if (accept(p, "(")) {
        n->kind = ND_PVARIANT;
        p->nl_quiet++;
        while (!is(p, ")") && peek(p)->kind != TK_EOF) {
            vec_push(&n->args, alternatives(p));
            if (!accept(p, ","))
                break;
        }
        expect(p, ")");
        p->nl_quiet--;
    } else if (is_upper_ident(t) && is(p, "{")) {
        struct_pattern(p, n);
    }
    if (mut && n->kind != ND_PBIND)
        error_at(p, t, "'mut' applies to a name that the pattern binds");
    return n;
}

// struct_pattern = "{" fpat { "," fpat } [ "," ".." ] "}"   (after the path)
// fpat = [ "mut" ] ident [ ":" alts ]         (`x` alone binds field x)
static void struct_pattern(Parser *p, Node *n) {
    n->kind = ND_PSTRUCT;
    next(p);
    p->nl_quiet++;
    while (!is(p, "}") && peek(p)->kind != TK_EOF) {
        if (accept(p, "..")) {
            n->rest = true;
            break;
        }
        Tok *ft = peek(p);
        bool mut = accept(p, "mut");
        Tok *nt = peek(p);
        const char *field = misnamed_use(p) ? nt->str : decl_name(p, "a field name");
        Node *sub;
        if (!mut && accept(p, ":")) {
            sub = alternatives(p);
        } else {                  /* shorthand `x` / `mut x` binds the field's name */
            sub = node(ND_PBIND, ft);
            sub->name = field;
            sub->is_var = mut;
        }
        vec_push(&n->fields, (void *)field);
        vec_push(&n->args, sub);
        if (!accept(p, ","))
            break;
    }
    expect(p, "}");
    p->nl_quiet--;
}

// alts = pattern { "|" pattern }     (a nested alternative, inside ( ) or { })
static Node *alternatives(Parser *p) {
    Node *first = pattern(p);
    if (!is(p, "|"))
        return first;
    Node *n = node(ND_POR, &p->toks[p->pos]);
    n->loc = first->loc;
    vec_push(&n->args, first);
    while (accept(p, "|"))
        vec_push(&n->args, pattern(p));
    return n;
}

/* -------------------------------------------------------- statements */

// const = "const" ident ":" type "=" expr
static Node *const_decl(Parser *p) {
    Node *n = node(ND_LET, next(p));
    n->is_const = true;
    Node *bind = node(ND_PBIND, peek(p));
    bind->name = decl_name(p, "a constant name");
    n->pat = bind;
    expect(p, ":");
    n->texpr = type_expr(p);
    expect(p, "=");
    n->init = expr(p);
    return n;
}

// let = ( "let" [ "mut" ] pattern | "var" ident ) [ ":" type ] [ "=" expr ]
static Node *let_stmt(Parser *p) {
    Tok *t = next(p);
    Node *n = node(ND_LET, t);
    n->is_var = tok_is(t, "var");
    if (!n->is_var && accept(p, "mut"))
        n->is_var = true;
    n->pat = pattern(p);
    if (accept(p, ":"))
        n->texpr = type_expr(p);
    if (accept(p, "="))
        n->init = expr(p);
    else if (!n->texpr)
        error_at(p, peek(p), "a binding needs a type annotation or an initializer");
    return n;
}

/* `name:` before a loop: a label without its quote (section 9), reported
 * and skipped, so that the loop itself still parses (as `'name:`, lex.c). */
static void loop_label(Parser *p) {
    Tok *t = peek(p), *kw = peek_at(p, 2);
    if (t->kind != TK_IDENT || !tok_is(peek_at(p, 1), ":") ||
        !(tok_is(kw, "loop") || tok_is(kw, "while") || tok_is(kw, "for")))
        return;
    unsupported_skipped(p, t, arena_printf("a label ('%s:')", t->str),
                        "use a Bool variable and `break`");
    p->pos += 2;
}

// stmt = [ ident ":" ] ( let | expr [ assign_op expr ] )   (the label: reported)
static Node *stmt(Parser *p) {
    loop_label(p);
    if (is(p, "let") || is(p, "var"))
        return let_stmt(p);
    if (is(p, "const"))
        return const_decl(p);
    Node *e = expr(p);
    if (is_assign_op(peek(p))) {
        Node *a = node(ND_ASSIGN, next(p));
        a->op = p->toks[p->pos - 1].str;
        a->lhs = e;
        skip_nl(p);
        a->rhs = expr(p);
        return a;
    }
    return e;
}

// block = "{" { stmt ( NL | ";" ) } [ expr ] "}"
static Node *block(Parser *p) {
    Node *n = node(ND_BLOCK, peek(p));
    if (!tok_is(expect(p, "{"), "{"))
        return n;                   /* reported: its statements are not parsed */
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    skip_nl(p);
    while (!tok_is(&p->toks[p->pos], "}") && p->toks[p->pos].kind != TK_EOF &&
           !item_boundary(&p->toks[p->pos])) {
        int before = p->pos;
        Node *s = stmt(p);
        Tok *t = &p->toks[p->pos];
        int after = p->pos;
        while (p->toks[after].kind == TK_NL)
            after++;
        if (!p->panic && tok_is(&p->toks[after], "}") && s->kind != ND_LET &&
            s->kind != ND_ASSIGN) {
            p->pos = after;
            n->lhs = s;                           /* the block's value */
            break;
        }
        vec_push(&n->args, s);
        if (!p->panic && t->kind != TK_NL && !tok_is(t, ";") && !tok_is(t, "}"))
            error_at(p, t, arena_printf("expected newline or ';' after statement but found %s",
                                        describe(t)));
        if (p->panic)
            recover(p);
        while (p->toks[p->pos].kind == TK_NL || tok_is(&p->toks[p->pos], ";"))
            p->pos++;
        if (p->pos == before)
            p->pos++;
    }
    p->nl_quiet = quiet;
    expect(p, "}");
    return n;
}

/* ------------------------------------------------------------- items */

// params = "(" [ param { "," param } [ "," ] ] ")"
// param = [ "mut" ] ident ":" type | [ "mut" ] "this"
static void params(Parser *p, Func *f) {
    expect(p, "(");
    p->nl_quiet++;
    while (!is(p, ")") && peek(p)->kind != TK_EOF) {
        Param *pa = arena_alloc(sizeof *pa);
        pa->loc = peek(p)->loc;
        bool mut = accept(p, "mut");
        Tok *t = peek(p);
        if (tok_is(t, "this") || ident_is(t, "self")) {
            if (f->params.n || f->receiver)
                error_at(p, t, "the receiver 'this' must be the first parameter");
            next(p);
            f->receiver = mut ? 2 : 1;
            f->loc = t->loc;
            if (!accept(p, ","))
                break;
            continue;
        }
        pa->mutable_ = mut;
        pa->name = decl_name(p, "a parameter name");
        expect(p, ":");
        pa->texpr = type_expr(p);
        vec_push(&f->params, pa);
        if (!accept(p, ","))
            break;
    }
    expect(p, ")");
    p->nl_quiet--;
}

/* After a syntax error in a signature: skips to the `{` that opens the
 * body (outside brackets), which is then parsed afresh, or else stops at
 * the next line that starts an item (the body is missing). */
static void skip_to_body(Parser *p) {
    int depth = 0;
    for (int start = p->pos; p->toks[p->pos].kind != TK_EOF; p->pos++) {
        Tok *t = &p->toks[p->pos];
        if (depth == 0 && tok_is(t, "{")) {
            p->panic = false;
            return;
        }
        if (p->pos > start && t->nl_before && starts_item(t))
            return;
        if (tok_is(t, "(") || tok_is(t, "["))
            depth++;
        else if ((tok_is(t, ")") || tok_is(t, "]")) && depth > 0)
            depth--;
    }
}

// func = [ "async" ] "func" ident params [ "->" type ] block
static Func *func(Parser *p, bool is_test) {
    int errors = diag_count();
    Func *f = arena_alloc(sizeof *f);
    f->is_async = accept(p, "async");
    f->is_test = is_test;
    expect(p, "func");
    f->loc = peek(p)->loc;
    f->name = f->cname = decl_name(p, "a function name");
    if (is(p, "[")) {
        unsupported(p, peek(p), "a generic function ('func f[T]')", "write one function per type");
        skip_group(p, "[", "]");
    }
    params(p, f);
    if (accept(p, "->"))
        f->ret_texpr = type_expr(p);
    if (p->panic)
        skip_to_body(p);
    skip_nl(p);
    f->body = block(p);
    f->broken = diag_count() > errors;
    p->func_errors += diag_count() - errors;
    return f;
}

// variant = ident [ "(" type { "," type } ")" ]
static void variant(Parser *p, StructDecl *sd) {
    Variant *v = arena_alloc(sizeof *v);
    v->loc = peek(p)->loc;
    v->name = decl_name(p, "a variant name");
    v->tag = sd->variants.n;
    if (accept(p, "(")) {
        p->nl_quiet++;
        while (!is(p, ")") && peek(p)->kind != TK_EOF) {
            vec_push(&v->texprs, type_expr(p));
            if (!accept(p, ","))
                break;
        }
        expect(p, ")");
        p->nl_quiet--;
    }
    vec_push(&sd->variants, v);
}

// field = [ "pub" ] ident ":" type
static void field_decl(Parser *p, StructDecl *sd) {
    Param *fld = arena_alloc(sizeof *fld);
    fld->loc = peek(p)->loc;
    accept(p, "pub");
    fld->name = decl_name(p, "a field name");
    expect(p, ":");
    fld->texpr = type_expr(p);
    vec_push(&sd->fields, fld);
}

/* Skips newlines when a line starting with `|` follows: it continues a
 * variant list (`type T =` NL `| A` NL `| B`). */
static void skip_to_bar(Parser *p) {
    int i = p->pos;
    while (p->toks[i].kind == TK_NL)
        i++;
    if (tok_is(&p->toks[i], "|"))
        p->pos = i;
}

/* After `{`: a struct when the first member is `ident :` (or none). */
static bool struct_body_ahead(Parser *p) {
    int i = p->pos;
    while (p->toks[i].kind == TK_NL)
        i++;
    if (tok_is(&p->toks[i], "pub"))
        return true;
    int j = i + 1;
    return tok_is(&p->toks[i], "}") || tok_is(&p->toks[j], ":");
}

// type = ( "type" | "enum" ) ident "{" [ member { ( "," | NL ) member } ] "}"
//      | "type" ident "=" [ "|" ] variant { "|" variant }
//      | "type" ident "=" type          (alias: a tuple type, a name with
//                                        type arguments, or one bare name)
// member = field (struct) | variant (enum)
static void type_decl(Parser *p) {
    Tok *kw = next(p);
    StructDecl *sd = arena_alloc(sizeof *sd);
    sd->loc = peek(p)->loc;
    sd->name = decl_name(p, "a type name");
    vec_push(&p->prog->structs, sd);
    if (is(p, "[")) {
        unsupported(p, peek(p), "a generic type ('type Name[T]')", "write one type per element type");
        skip_group(p, "[", "]");
    }
    if (accept(p, "=")) {
        skip_to_bar(p);
        Tok *a = peek(p), *b = peek_at(p, 1);
        if (tok_is(a, "(") || (a->kind == TK_IDENT && (tok_is(b, "[") || b->kind == TK_NL ||
                                                       b->kind == TK_EOF || tok_is(b, ";")))) {
            sd->alias = type_expr(p);
            return;
        }
        sd->is_enum = true;
        accept(p, "|");
        do {
            skip_nl(p);
            variant(p, sd);
            skip_to_bar(p);
        } while (accept(p, "|"));
        return;
    }
    expect(p, "{");
    sd->is_enum = tok_is(kw, "enum") || !struct_body_ahead(p);
    skip_nl(p);
    while (!is(p, "}") && peek(p)->kind != TK_EOF && !p->panic) {
        if (sd->is_enum)
            variant(p, sd);
        else
            field_decl(p, sd);
        accept(p, ",");
        skip_nl(p);
    }
    expect(p, "}");
}

// impl = "impl" ident "{" { [ decorator ] [ "pub" ] func } "}"
static void impl_block(Parser *p) {
    next(p);
    const char *owner = decl_name(p, "a type name");
    if (is(p, "for")) {
        unsupported(p, peek(p), "'impl Behavior for Type'", "write `impl Type { ... }`");
        next(p);
        owner = decl_name(p, "a type name");
    }
    expect(p, "{");
    skip_nl(p);
    while (!is(p, "}") && peek(p)->kind != TK_EOF && !p->panic) {
        bool is_test = decorators(p);
        accept(p, "pub");
        Func *f = func(p, is_test);
        f->owner = owner;
        f->cname = arena_printf("%s__%s", owner, f->name);
        vec_push(&p->prog->funcs, f);
        while (p->toks[p->pos].kind == TK_NL || tok_is(&p->toks[p->pos], ";"))
            p->pos++;
    }
    expect(p, "}");
}

// decorator = "@" ident [ "(" args ")" ]
static bool decorators(Parser *p) {
    bool is_test = false;
    while (is(p, "@")) {
        Loc at = peek(p)->loc;
        next(p);
        const char *name = expect_ident(p, "a decorator name");
        if (!strcmp(name, "test"))
            is_test = true;
        else
            diag_warning_hint(at, "only `@test` has a meaning here; the others are accepted and ignored",
                              "decorator `@%s` is ignored", name);
        if (is(p, "(")) {           /* any balanced tokens: `@cfg(os = "linux")` */
            int depth = 0;
            do {
                Tok *a = next(p);
                depth += tok_is(a, "(") - tok_is(a, ")");
                if (a->kind == TK_EOF)
                    error_at(p, a, "expected ')' but found end of file");
            } while (depth > 0 && !p->panic);
        }
        skip_nl(p);
    }
    return is_test;
}

// use_tree = segment { "::" segment } [ "::" ( "*" | "{" use_tree { "," use_tree } [ "," ] "}" ) ]
//            [ "as" ident ]
// segment = ident | "crate" | "super"
// `path::x as y` makes y another name for x (Program.aliases).
static void use_tree(Parser *p) {
    const char *last = NULL;                    /* the path's last name */
    do {
        last = NULL;
        if (accept(p, "*"))
            break;
        if (accept(p, "{")) {
            p->nl_quiet++;
            while (!is(p, "}") && peek(p)->kind != TK_EOF && !p->panic) {
                use_tree(p);
                if (!accept(p, ","))
                    break;
            }
            expect(p, "}");
            p->nl_quiet--;
            break;
        }
        if (!accept(p, "crate") && !accept(p, "super"))
            last = expect_ident(p, "a module path");
    } while (accept(p, "::"));
    if (accept(p, "as")) {
        const char *name = expect_ident(p, "a name");
        if (last)
            map_put(&p->prog->aliases, name, (void *)last);
    }
}

// item = { decorator } [ "pub" ] ( func | type | use | mod )
static void item(Parser *p) {
    bool is_test = decorators(p);
    accept(p, "pub");
    Tok *t = peek(p);
    if (tok_is(t, "func") || tok_is(t, "async")) {
        vec_push(&p->prog->funcs, func(p, is_test));
    } else if (tok_is(t, "type") || tok_is(t, "enum")) {
        type_decl(p);
    } else if (tok_is(t, "use")) {    /* the paths name the always-visible library */
        next(p);
        use_tree(p);
    } else if (tok_is(t, "mod")) {
        next(p);
        expect_ident(p, "a module name");
    } else if (tok_is(t, "const")) {
        vec_push(&p->prog->consts, const_decl(p));
    } else if (tok_is(t, "impl")) {
        impl_block(p);
    } else if (tok_is(t, "behavior") || tok_is(t, "interface") || tok_is(t, "class") ||
               tok_is(t, "union")) {
        bool is_union = tok_is(t, "union");
        unsupported(p, t, arena_printf("'%s'", t->str),
                    is_union ? "declare an enum: `type U { A(I32), B(F32) }`"
                             : "declare a struct with `type` and its methods with `impl`");
        while (peek(p)->kind != TK_EOF && !is(p, "{"))
            next(p);
        skip_group(p, "{", "}");
    } else {
        error_at(p, t, arena_printf("expected 'func', 'async func' or 'type' but found %s",
                                    describe(t)));
    }
}

/* The library types written in TML (stdlib/prelude.tml), visible in every
 * program unless the program declares a type of the same name. */
static Source prelude = {"<prelude>", parse_prelude, 0};

static Program *parse_source(Source *src);

static bool declares(Program *prog, const char *name) {
    for (int i = 0; i < prog->structs.n; i++)
        if (!strcmp(((StructDecl *)prog->structs.v[i])->name, name))
            return true;
    return false;
}

bool parse_is_prelude(const Loc *loc) { return loc->src == &prelude; }

Program *parse(Source *src) {
    Program *prog = parse_source(src);
    prelude.len = parse_prelude_len;
    Program *lib = parse_source(&prelude);
    for (int i = 0; i < lib->structs.n; i++) {
        StructDecl *sd = lib->structs.v[i];
        if (!declares(prog, sd->name))
            vec_push(&prog->structs, sd);
    }
    for (int i = 0; i < lib->funcs.n; i++) {      /* the library types' methods */
        Func *f = lib->funcs.v[i];
        bool shadowed = false;
        for (int k = 0; k < prog->structs.n; k++) {
            StructDecl *sd = prog->structs.v[k];
            shadowed |= !strcmp(sd->name, f->owner) && !parse_is_prelude(&sd->loc);
        }
        if (!shadowed)
            vec_push(&prog->funcs, f);
    }
    return prog;
}

static Program *parse_source(Source *src) {
    int errors = diag_count();
    Parser p = {.src = src};
    p.prog = arena_alloc(sizeof *p.prog);
    p.prog->src = src;
    p.toks = lex(src, 0, (int)src->len, 1, 0, &p.ntok);
    skip_nl(&p);
    while (p.toks[p.pos].kind != TK_EOF) {
        int before = p.pos;
        item(&p);
        if (p.panic) {
            /* skip to the next line that starts an item */
            while (p.toks[p.pos].kind != TK_EOF &&
                   !(p.toks[p.pos].nl_before && starts_item(&p.toks[p.pos])))
                p.pos++;
            p.panic = false;
        }
        while (p.toks[p.pos].kind == TK_NL || tok_is(&p.toks[p.pos], ";"))
            p.pos++;
        if (p.pos == before)
            p.pos++;
    }
    p.prog->broken = diag_count() - errors > p.func_errors;
    return p.prog;
}
