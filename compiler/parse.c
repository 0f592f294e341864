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
 * call `spawn(f(x))` and records `use x as y` in Program.aliases.
 * This file: the token helpers, types, statements, blocks and items;
 * parse_expr.c: expressions and patterns. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static bool decorators(Parser *p);

/* ----------------------------------------------------------- tokens */

Tok *parse_peek(Parser *p) {
    if (p->nl_quiet > 0)
        while (p->toks[p->pos].kind == TK_NL)
            p->pos++;
    return &p->toks[p->pos];
}

/* The k-th token after the current one, newlines counted. */
Tok *parse_peek_at(Parser *p, int k) {
    int i = p->pos + k;
    return &p->toks[i < p->ntok ? i : p->ntok - 1];
}

Tok *parse_next(Parser *p) {
    Tok *t = parse_peek(p);
    if (t->kind != TK_EOF)
        p->pos++;
    return t;
}

bool parse_is(Parser *p, const char *s) { return tok_is(parse_peek(p), s); }

bool parse_accept(Parser *p, const char *s) {
    if (!parse_is(p, s))
        return false;
    parse_next(p);
    return true;
}

const char *parse_describe(const Tok *t) {
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
void parse_error_hint(Parser *p, Loc loc, const char *hint, const char *msg) {
    if (!p->panic)
        diag_error_hint(loc, hint, "%s", msg);
    p->panic = true;
}

void parse_error_at(Parser *p, Tok *t, const char *msg) { parse_error_hint(p, t->loc, NULL, msg); }

/* Reports token t as a construct outside the subset (section 9). */
void parse_unsupported(Parser *p, Tok *t, const char *what, const char *hint) {
    parse_error_at(p, t, arena_printf("%s is not supported in this TML subset; %s", what, hint));
}

/* Reports an error that the caller recovers from exactly, skipping just
 * the offending tokens: parsing goes on as if they were not there, with
 * no panic mode. */
void parse_error_skipped(Parser *p, Tok *t, const char *msg) {
    bool panic = p->panic;
    parse_error_at(p, t, msg);
    p->panic = panic;
}

/* The same for a construct outside the subset (a label, a try block). */
void parse_unsupported_skipped(Parser *p, Tok *t, const char *what, const char *hint) {
    parse_error_skipped(p, t, arena_printf("%s is not supported in this TML subset; %s", what, hint));
}

Tok *parse_expect(Parser *p, const char *s) {
    Tok *t = parse_peek(p);
    if (tok_is(t, s))
        return parse_next(p);
    parse_error_at(p, t, arena_printf("expected '%s' but found %s", s, parse_describe(t)));
    return t;
}

bool parse_is_reserved_word(const Tok *t) {
    return t->kind == TK_KEYWORD && isalpha((unsigned char)t->str[0]);
}

/* Reports that `what` was expected at t, naming a reserved word as one. */
void parse_expected(Parser *p, Tok *t, const char *what) {
    if (parse_is_reserved_word(t))
        parse_error_at(p, t, arena_printf("expected %s but found '%s', which is a reserved word and "
                                    "cannot be a name", what, t->str));
    else
        parse_error_at(p, t, arena_printf("expected %s but found %s", what, parse_describe(t)));
}

const char *parse_expect_ident(Parser *p, const char *what) {
    Tok *t = parse_peek(p);
    if (t->kind == TK_IDENT) {
        parse_next(p);
        return t->str;
    }
    parse_expected(p, t, what);
    return "_error";
}

static bool starts_item(const Tok *t);

/* Is t a reserved word that decl_name takes as a misspelt name? */
bool parse_misnamed_ahead(const Tok *t) {
    return parse_is_reserved_word(t) && !(t->nl_before && starts_item(t));
}

/* A name being declared (parameter, field, function, type, variant...)
 * or a field named in a struct literal or pattern. A reserved word in its
 * place (`func f(type: I64)`) is reported and taken as the name, so that
 * parsing goes on exactly and the rest of the declaration draws no errors;
 * but not one that starts an item at the start of a line, which more
 * likely begins the next declaration. */
const char *parse_decl_name(Parser *p, const char *what) {
    Tok *t = parse_peek(p);
    if (!parse_misnamed_ahead(t))
        return parse_expect_ident(p, what);
    bool panic = p->panic;
    parse_expected(p, t, what);
    p->panic = panic;
    map_put(&p->misnamed, t->str, t);
    parse_next(p);
    return t->str;
}

/* A use of a reserved word that decl_name took as a name: consumed, and
 * true, with no error (the declaration drew one). */
bool parse_misnamed_use(Parser *p) {
    Tok *t = parse_peek(p);
    if (!parse_is_reserved_word(t) || !map_get(&p->misnamed, t->str))
        return false;
    parse_next(p);
    return true;
}

/* Skips tokens through the `close` matching the `open` at the current
 * token (or nothing when it is not `open`): a construct already reported. */
void parse_skip_group(Parser *p, const char *open, const char *close) {
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
bool parse_ident_is(const Tok *t, const char *s) {
    return t->kind == TK_IDENT && !strcmp(t->str, s);
}

/* Whether t spells one of the NULL-terminated `words`. */
static bool tok_in(const Tok *t, const char *const *words) {
    for (int i = 0; words[i]; i++)
        if (tok_is(t, words[i]))
            return true;
    return false;
}

bool parse_is_assign_op(const Tok *t) {
    static const char *const ops[] = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=",
                                      "^=", "<<=", ">>=", NULL};
    return tok_in(t, ops);
}

void parse_skip_nl(Parser *p) {
    while (p->toks[p->pos].kind == TK_NL)
        p->pos++;
}

Node *parse_node(NodeKind kind, Tok *t) {
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
    return tok_in(t, kws) && !tok_is(t + 1, ":") && !(tok_is(t, "async") && tok_is(t + 1, "{"));
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
void parse_recover(Parser *p) {
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
TypeExpr *parse_type_expr(Parser *p) {
    Tok *t = parse_peek(p);
    if (tok_is(t, "dyn") || tok_is(t, "ref") || (tok_is(t, "mut") && tok_is(parse_peek_at(p, 1), "ref"))) {
        parse_unsupported(p, t, arena_printf("'%s' in a type", t->str),
                    "write the type itself (structs are copied, handles shared)");
        parse_next(p);
        parse_accept(p, "ref");
        return parse_type_expr(p);
    }
    TypeExpr *te = arena_alloc(sizeof *te);
    te->loc = t->loc;
    if (parse_accept(p, "(")) {
        p->nl_quiet++;
        while (!parse_is(p, ")") && parse_peek(p)->kind != TK_EOF) {
            vec_push(&te->args, parse_type_expr(p));
            if (!parse_accept(p, ","))
                break;
        }
        parse_expect(p, ")");
        p->nl_quiet--;
        return te;
    }
    te->name = parse_expect_ident(p, "a type");
    while (parse_is(p, "::")) {
        parse_next(p);
        te->name = parse_expect_ident(p, "a type");
    }
    if (parse_accept(p, "[")) {
        p->nl_quiet++;
        do
            vec_push(&te->args, parse_type_expr(p));
        while (parse_accept(p, ","));
        parse_expect(p, "]");
        p->nl_quiet--;
    }
    return te;
}

/* -------------------------------------------------------- statements */

// const = "const" ident ":" type "=" expr
static Node *const_decl(Parser *p) {
    Node *n = parse_node(ND_LET, parse_next(p));
    n->is_const = true;
    Node *bind = parse_node(ND_PBIND, parse_peek(p));
    bind->name = parse_decl_name(p, "a constant name");
    n->pat = bind;
    parse_expect(p, ":");
    n->texpr = parse_type_expr(p);
    parse_expect(p, "=");
    n->init = parse_expr(p);
    return n;
}

// let = ( "let" [ "mut" ] pattern | "var" ident ) [ ":" type ] [ "=" expr ]
static Node *let_stmt(Parser *p) {
    Tok *t = parse_next(p);
    Node *n = parse_node(ND_LET, t);
    n->is_var = tok_is(t, "var");
    if (!n->is_var && parse_accept(p, "mut"))
        n->is_var = true;
    n->pat = parse_pattern(p);
    if (parse_accept(p, ":"))
        n->texpr = parse_type_expr(p);
    if (parse_accept(p, "="))
        n->init = parse_expr(p);
    else if (!n->texpr)
        parse_error_at(p, parse_peek(p), "a binding needs a type annotation or an initializer");
    return n;
}

/* `name:` before a loop: a label without its quote (section 9), reported
 * and skipped, so that the loop itself still parses (as `'name:`, lex.c). */
static void loop_label(Parser *p) {
    Tok *t = parse_peek(p), *kw = parse_peek_at(p, 2);
    if (t->kind != TK_IDENT || !tok_is(parse_peek_at(p, 1), ":") ||
        !(tok_is(kw, "loop") || tok_is(kw, "while") || tok_is(kw, "for")))
        return;
    parse_unsupported_skipped(p, t, arena_printf("a label ('%s:')", t->str),
                        "use a Bool variable and `break`");
    p->pos += 2;
}

// stmt = [ ident ":" ] ( let | expr [ assign_op expr ] )   (the label: reported)
static Node *stmt(Parser *p) {
    loop_label(p);
    if (parse_is(p, "let") || parse_is(p, "var"))
        return let_stmt(p);
    if (parse_is(p, "const"))
        return const_decl(p);
    return parse_assignment(p, parse_expr(p));
}

// assignment = lhs [ assign_op expr ]   (lhs already parsed)
Node *parse_assignment(Parser *p, Node *lhs) {
    if (!parse_is_assign_op(parse_peek(p)))
        return lhs;
    Node *a = parse_node(ND_ASSIGN, parse_next(p));
    a->op = p->toks[p->pos - 1].str;
    a->lhs = lhs;
    parse_skip_nl(p);
    a->rhs = parse_expr(p);
    return a;
}

// block = "{" { stmt ( NL | ";" ) } [ expr ] "}"
Node *parse_block(Parser *p) {
    Node *n = parse_node(ND_BLOCK, parse_peek(p));
    if (!tok_is(parse_expect(p, "{"), "{"))
        return n;                   /* reported: its statements are not parsed */
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    parse_skip_nl(p);
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
            parse_error_at(p, t, arena_printf("expected newline or ';' after statement but found %s",
                                        parse_describe(t)));
        if (p->panic)
            parse_recover(p);
        while (p->toks[p->pos].kind == TK_NL || tok_is(&p->toks[p->pos], ";"))
            p->pos++;
        if (p->pos == before)
            p->pos++;
    }
    p->nl_quiet = quiet;
    parse_expect(p, "}");
    return n;
}

/* ------------------------------------------------------------- items */

// params = "(" [ param { "," param } [ "," ] ] ")"
// param = [ "mut" ] ident ":" type | [ "mut" ] "this"
static void params(Parser *p, Func *f) {
    parse_expect(p, "(");
    p->nl_quiet++;
    while (!parse_is(p, ")") && parse_peek(p)->kind != TK_EOF) {
        Param *pa = arena_alloc(sizeof *pa);
        pa->loc = parse_peek(p)->loc;
        bool mut = parse_accept(p, "mut");
        Tok *t = parse_peek(p);
        if (tok_is(t, "this") || parse_ident_is(t, "self")) {
            if (f->params.n || f->receiver)
                parse_error_at(p, t, "the receiver 'this' must be the first parameter");
            parse_next(p);
            f->receiver = mut ? 2 : 1;
            f->loc = t->loc;
            if (!parse_accept(p, ","))
                break;
            continue;
        }
        pa->mutable_ = mut;
        pa->name = parse_decl_name(p, "a parameter name");
        parse_expect(p, ":");
        pa->texpr = parse_type_expr(p);
        vec_push(&f->params, pa);
        if (!parse_accept(p, ","))
            break;
    }
    parse_expect(p, ")");
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
    f->is_async = parse_accept(p, "async");
    f->is_test = is_test;
    parse_expect(p, "func");
    f->loc = parse_peek(p)->loc;
    f->name = f->cname = parse_decl_name(p, "a function name");
    if (parse_is(p, "[")) {
        parse_unsupported(p, parse_peek(p), "a generic function ('func f[T]')", "write one function per type");
        parse_skip_group(p, "[", "]");
    }
    params(p, f);
    if (parse_accept(p, "->"))
        f->ret_texpr = parse_type_expr(p);
    if (p->panic)
        skip_to_body(p);
    parse_skip_nl(p);
    f->body = parse_block(p);
    f->broken = diag_count() > errors;
    p->func_errors += diag_count() - errors;
    return f;
}

// variant = ident [ "(" type { "," type } ")" ]
static void variant(Parser *p, StructDecl *sd) {
    Variant *v = arena_alloc(sizeof *v);
    v->loc = parse_peek(p)->loc;
    v->name = parse_decl_name(p, "a variant name");
    v->tag = sd->variants.n;
    if (parse_accept(p, "(")) {
        p->nl_quiet++;
        while (!parse_is(p, ")") && parse_peek(p)->kind != TK_EOF) {
            vec_push(&v->texprs, parse_type_expr(p));
            if (!parse_accept(p, ","))
                break;
        }
        parse_expect(p, ")");
        p->nl_quiet--;
    }
    vec_push(&sd->variants, v);
}

// field = [ "pub" ] ident ":" type
static void field_decl(Parser *p, StructDecl *sd) {
    Param *fld = arena_alloc(sizeof *fld);
    fld->loc = parse_peek(p)->loc;
    parse_accept(p, "pub");
    fld->name = parse_decl_name(p, "a field name");
    parse_expect(p, ":");
    fld->texpr = parse_type_expr(p);
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
    Tok *kw = parse_next(p);
    StructDecl *sd = arena_alloc(sizeof *sd);
    sd->loc = parse_peek(p)->loc;
    sd->name = parse_decl_name(p, "a type name");
    vec_push(&p->prog->structs, sd);
    if (parse_is(p, "[")) {
        parse_unsupported(p, parse_peek(p), "a generic type ('type Name[T]')", "write one type per element type");
        parse_skip_group(p, "[", "]");
    }
    if (parse_accept(p, "=")) {
        skip_to_bar(p);
        Tok *a = parse_peek(p), *b = parse_peek_at(p, 1);
        if (tok_is(a, "(") || (a->kind == TK_IDENT && (tok_is(b, "[") || b->kind == TK_NL ||
                                                       b->kind == TK_EOF || tok_is(b, ";")))) {
            sd->alias = parse_type_expr(p);
            return;
        }
        sd->is_enum = true;
        parse_accept(p, "|");
        do {
            parse_skip_nl(p);
            variant(p, sd);
            skip_to_bar(p);
        } while (parse_accept(p, "|"));
        return;
    }
    parse_expect(p, "{");
    sd->is_enum = tok_is(kw, "enum") || !struct_body_ahead(p);
    parse_skip_nl(p);
    while (!parse_is(p, "}") && parse_peek(p)->kind != TK_EOF && !p->panic) {
        if (sd->is_enum)
            variant(p, sd);
        else
            field_decl(p, sd);
        parse_accept(p, ",");
        parse_skip_nl(p);
    }
    parse_expect(p, "}");
}

// impl = "impl" ident "{" { [ decorator ] [ "pub" ] func } "}"
static void impl_block(Parser *p) {
    parse_next(p);
    const char *owner = parse_decl_name(p, "a type name");
    if (parse_is(p, "for")) {
        parse_unsupported(p, parse_peek(p), "'impl Behavior for Type'", "write `impl Type { ... }`");
        parse_next(p);
        owner = parse_decl_name(p, "a type name");
    }
    parse_expect(p, "{");
    parse_skip_nl(p);
    while (!parse_is(p, "}") && parse_peek(p)->kind != TK_EOF && !p->panic) {
        bool is_test = decorators(p);
        parse_accept(p, "pub");
        Func *f = func(p, is_test);
        f->owner = owner;
        f->cname = arena_printf("%s__%s", owner, f->name);
        vec_push(&p->prog->funcs, f);
        while (p->toks[p->pos].kind == TK_NL || tok_is(&p->toks[p->pos], ";"))
            p->pos++;
    }
    parse_expect(p, "}");
}

// decorator = "@" ident [ "(" args ")" ]
static bool decorators(Parser *p) {
    bool is_test = false;
    while (parse_is(p, "@")) {
        Loc at = parse_peek(p)->loc;
        parse_next(p);
        const char *name = parse_expect_ident(p, "a decorator name");
        if (!strcmp(name, "test"))
            is_test = true;
        else
            diag_warning_hint(at, "only `@test` has a meaning here; the others are accepted and ignored",
                              "decorator `@%s` is ignored", name);
        if (parse_is(p, "(")) {           /* any balanced tokens: `@cfg(os = "linux")` */
            int depth = 0;
            do {
                Tok *a = parse_next(p);
                depth += tok_is(a, "(") - tok_is(a, ")");
                if (a->kind == TK_EOF)
                    parse_error_at(p, a, "expected ')' but found end of file");
            } while (depth > 0 && !p->panic);
        }
        parse_skip_nl(p);
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
        if (parse_accept(p, "*"))
            break;
        if (parse_accept(p, "{")) {
            p->nl_quiet++;
            while (!parse_is(p, "}") && parse_peek(p)->kind != TK_EOF && !p->panic) {
                use_tree(p);
                if (!parse_accept(p, ","))
                    break;
            }
            parse_expect(p, "}");
            p->nl_quiet--;
            break;
        }
        if (!parse_accept(p, "crate") && !parse_accept(p, "super"))
            last = parse_expect_ident(p, "a module path");
    } while (parse_accept(p, "::"));
    if (parse_accept(p, "as")) {
        const char *name = parse_expect_ident(p, "a name");
        if (last)
            map_put(&p->prog->aliases, name, (void *)last);
    }
}

// item = { decorator } [ "pub" ] ( func | type | use | mod )
static void item(Parser *p) {
    bool is_test = decorators(p);
    parse_accept(p, "pub");
    Tok *t = parse_peek(p);
    if (tok_is(t, "func") || tok_is(t, "async")) {
        vec_push(&p->prog->funcs, func(p, is_test));
    } else if (tok_is(t, "type") || tok_is(t, "enum")) {
        type_decl(p);
    } else if (tok_is(t, "use")) {    /* the paths name the always-visible library */
        parse_next(p);
        use_tree(p);
    } else if (tok_is(t, "mod")) {
        parse_next(p);
        parse_expect_ident(p, "a module name");
    } else if (tok_is(t, "const")) {
        vec_push(&p->prog->consts, const_decl(p));
    } else if (tok_is(t, "impl")) {
        impl_block(p);
    } else if (tok_is(t, "behavior") || tok_is(t, "interface") || tok_is(t, "class") ||
               tok_is(t, "union")) {
        bool is_union = tok_is(t, "union");
        parse_unsupported(p, t, arena_printf("'%s'", t->str),
                    is_union ? "declare an enum: `type U { A(I32), B(F32) }`"
                             : "declare a struct with `type` and its methods with `impl`");
        while (parse_peek(p)->kind != TK_EOF && !parse_is(p, "{"))
            parse_next(p);
        parse_skip_group(p, "{", "}");
    } else {
        parse_error_at(p, t, arena_printf("expected 'func', 'async func' or 'type' but found %s",
                                    parse_describe(t)));
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

void parse_walk(Node *n, bool (*visit)(Node *n, void *ctx), void *ctx) {
    if (!n || !visit(n, ctx))
        return;
    bool block = n->kind == ND_ASYNC_BLOCK || (n->kind == ND_CALL && n->fn && n->fn->outer);
    Node *kids[] = {n->lhs, n->rhs, n->cond, n->then, n->els, block ? NULL : n->body, n->init};
    for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++)
        parse_walk(kids[i], visit, ctx);
    for (int i = 0; i < n->args.n; i++)
        parse_walk(n->args.v[i], visit, ctx);
}

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
    parse_skip_nl(&p);
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
