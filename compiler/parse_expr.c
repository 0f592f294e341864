/* parse_expr.c - tokens -> AST: expressions.
 *
 * The expression grammar of TML-SUBSET.md section 3, by precedence
 * level (binary), then casts and ranges, unary operators, postfix calls,
 * fields and `.await`, and primaries (literals, paths, struct literals,
 * interpolated strings, parenthesised and tuple expressions, if, when,
 * loops, try, select!, async blocks). Patterns are parse_pattern.c's;
 * statements, blocks, types and items parse.c's; the conventions
 * (newlines, panic mode, what is rejected as unsupported) are in its
 * header comment. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* ------------------------------------------------------- expressions */

// args = [ expr { "," expr } [ "," ] ] ")"    (after the "(")
static void call_args(Parser *p, Vec *args) {
    p->nl_quiet++;
    while (!parse_is(p, ")") && parse_peek(p)->kind != TK_EOF) {
        vec_push(args, parse_expr(p));
        if (!parse_accept(p, ","))
            break;
    }
    parse_expect(p, ")");
    p->nl_quiet--;
}

bool parse_is_upper_ident(const Tok *t) {
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
           (parse_is_reserved_word(a) && tok_is(b, ":"));     /* reported by struct_lit */
}

/* `..base` of a struct literal (section 3.6): the fields not given are
 * copied from base, evaluated once. A base that is not a plain variable
 * is bound first: `{ let __updateN = base; Name { ..., ..__updateN } }`;
 * the checker fills in the missing fields from the variable (n->lhs). */
static Node *update_base(Parser *p, Node *n) {
    Tok *t = parse_next(p);                        /* ".." */
    Node *base = parse_expr(p);
    if (base->kind == ND_PATH && !base->qual) {
        n->lhs = base;
        return n;
    }
    Node *let = parse_node(ND_LET, t);
    Node *bind = parse_node(ND_PBIND, t);
    bind->name = arena_printf("__update%d", p->pos);
    let->pat = bind;
    let->init = base;
    Node *var = parse_node(ND_PATH, t);
    var->name = bind->name;
    n->lhs = var;
    Node *b = parse_node(ND_BLOCK, t);
    b->loc = n->loc;
    vec_push(&b->args, let);
    b->lhs = n;
    return b;
}

// struct_lit = "{" [ init { "," init } [ "," ".." expr ] | ".." expr ] "}"
// init = ident [ ":" expr ]
static Node *struct_lit(Parser *p, Node *path) {
    Node *n = parse_node(ND_STRUCTLIT, &p->toks[p->pos]);
    Node *result = n;
    n->loc = path->loc;
    n->name = path->name;
    parse_expect(p, "{");
    p->nl_quiet++;
    while (!parse_is(p, "}") && parse_peek(p)->kind != TK_EOF) {
        if (parse_is(p, "..")) {
            result = update_base(p, n);
            break;
        }
        Tok *ft = parse_peek(p);
        const char *field = parse_misnamed_use(p) ? ft->str : parse_decl_name(p, "a field name");
        vec_push(&n->fields, (void *)field);
        if (parse_accept(p, ":")) {
            vec_push(&n->args, parse_expr(p));
        } else {
            Node *v = parse_node(ND_PATH, ft);
            v->name = field;
            vec_push(&n->args, v);
        }
        if (!parse_accept(p, ","))
            break;
    }
    parse_expect(p, "}");
    p->nl_quiet--;
    return result;
}

// path = ident { "::" ident } [ "[" type { "," type } "]" ] [ struct_lit ]
static Node *path_expr(Parser *p) {
    Tok *t = parse_next(p);
    Node *n = parse_node(ND_PATH, t);
    n->name = t->str;
    while (parse_is(p, "::") && parse_peek_at(p, 1)->kind == TK_IDENT) {
        parse_next(p);
        n->qual = n->name;
        n->name = parse_next(p)->str;
    }
    if (tok_is(&p->toks[p->pos], "[") && parse_is_upper_ident(parse_peek_at(p, 1))) {
        parse_next(p);
        p->nl_quiet++;
        do
            vec_push(&n->targs, parse_type_expr(p));
        while (parse_accept(p, ","));
        parse_expect(p, "]");
        p->nl_quiet--;
        if (parse_is(p, "::") && parse_peek_at(p, 1)->kind == TK_IDENT) {   /* List[T]::new */
            parse_next(p);
            n->qual = n->name;
            n->name = parse_next(p)->str;
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
    Node *e = parse_expr(&sub);
    if (parse_peek(&sub)->kind != TK_EOF)
        parse_error_at(&sub, parse_peek(&sub), arena_printf("unexpected %s in interpolation",
                                                parse_describe(parse_peek(&sub))));
    return e;
}

static Node *string_lit(Parser *p) {
    Tok *t = parse_next(p);
    Node *n = parse_node(ND_STR, t);
    n->parts = t->parts;
    for (StrPart *part = t->parts; part; part = part->next)
        if (part->is_expr)
            vec_push(&n->args, interp_expr(p, part));
    return n;
}

// paren = "(" ")" | "(" expr ")" | "(" expr "," [ expr { "," expr } ] ")"
static Node *paren(Parser *p) {
    Tok *t = parse_next(p);
    p->nl_quiet++;
    Node *n;
    if (parse_is(p, ")")) {
        n = parse_node(ND_UNIT, t);
    } else {
        Node *e = parse_expr(p);
        if (parse_is(p, ",")) {
            n = parse_node(ND_TUPLE, t);
            vec_push(&n->args, e);
            while (parse_accept(p, ",") && !parse_is(p, ")"))
                vec_push(&n->args, parse_expr(p));
        } else {
            n = e;
        }
    }
    parse_expect(p, ")");
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
        return parse_block(p);
    Node *e = parse_expr(p);
    if (parse_is_assign_op(parse_peek(p)))
        parse_error_hint(p, e->loc, arena_printf("write the branch as a block: `{ %s }`",
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
    Tok *let = parse_next(p);
    n->kind = ND_WHEN;
    Node *pat = parse_pattern(p);
    parse_expect(p, "=");
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->cond = parse_expr(p);
    vec_push(&n->args, arm_of(pat, parse_block(p)));
    int save = p->pos;
    parse_skip_nl(p);
    Node *other;
    if (parse_accept(p, "else")) {
        other = parse_is(p, "if") ? parse_if_expr(p) : parse_block(p);
    } else {
        p->pos = save;
        other = parse_node(ND_BLOCK, let);
    }
    vec_push(&n->args, arm_of(parse_node(ND_PWILD, let), other));
    p->nl_quiet = quiet;
    return n;
}

// if = "if" expr ( block [ "else" ( if | block ) ] | "then" expr [ "else" expr ] )
Node *parse_if_expr(Parser *p) {
    Node *n = parse_node(ND_IF, parse_next(p));
    if (parse_is(p, "let"))
        return if_let(p, n);
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->cond = parse_expr(p);
    bool then_form = parse_accept(p, "then");
    n->then = branch(p, then_form);
    int save = p->pos;
    parse_skip_nl(p);
    if (parse_accept(p, "else")) {
        if (parse_is(p, "if"))
            n->els = parse_if_expr(p);
        else
            n->els = branch(p, then_form);
    } else {
        p->pos = save;
    }
    p->nl_quiet = quiet;
    return n;
}

// arm = pattern { ( "," | "|" ) pattern } [ "if" expr ] "=>" assignment
static Node *when_arm(Parser *p, Node *when) {
    (void)when;
    Node *arm = parse_node(ND_ARM, parse_peek(p));
    p->nl_quiet++;
    do
        vec_push(&arm->args, parse_pattern(p));
    while ((parse_accept(p, ",") || parse_accept(p, "|")) && !parse_is(p, "=>"));
    if (parse_accept(p, "if"))
        arm->cond = parse_expr(p);
    parse_expect(p, "=>");
    p->nl_quiet--;
    arm->body = parse_assignment(p, parse_expr(p));
    return arm;
}

// arm_list = "{" { arm ( "," | NL ) } "}": each arm of n parsed by `arm`
// (NULL: nothing to add); an arm with an error is skipped to its end.
static void arm_list(Parser *p, Node *n, Node *(*arm)(Parser *p, Node *n)) {
    parse_expect(p, "{");
    parse_skip_nl(p);
    while (!parse_is(p, "}") && parse_peek(p)->kind != TK_EOF) {
        int before = p->pos;
        Node *a = arm(p, n);
        if (a)
            vec_push(&n->args, a);
        parse_accept(p, ",");
        parse_skip_nl(p);
        if (p->panic) {
            parse_recover(p);
            parse_skip_nl(p);
        }
        if (p->pos == before)
            parse_next(p);
    }
    parse_expect(p, "}");
}

// sel_arm = ( ident | "_" ) "=" expr [ "," "if" expr ] "=>" assignment
//         | "else" "=>" assignment
// The awaitable is held as `await expr`: a branch waits as await does.
static Node *select_arm(Parser *p, Node *sel) {
    Tok *t = parse_peek(p);
    if (parse_accept(p, "else")) {
        parse_expect(p, "=>");
        if (sel->els)
            parse_error_at(p, t, "a select! has one 'else' branch");
        sel->els = parse_assignment(p, parse_expr(p));
        return NULL;
    }
    Node *arm = parse_node(ND_ARM, t);
    p->nl_quiet++;
    vec_push(&arm->args, parse_pattern(p));
    parse_expect(p, "=");
    arm->init = parse_node(ND_AWAIT, parse_peek(p));
    arm->init->lhs = parse_expr(p);
    if (parse_accept(p, ",")) {
        parse_expect(p, "if");
        arm->cond = parse_expr(p);
    }
    parse_expect(p, "=>");
    p->nl_quiet--;
    arm->body = parse_assignment(p, parse_expr(p));
    return arm;
}

// select = ( "select" | "select_biased" ) "!" "{" { sel_arm ( "," | NL ) } "}"
static Node *select_expr(Parser *p) {
    Tok *t = parse_next(p);
    Node *n = parse_node(ND_SELECT, t);
    n->biased = !strcmp(t->str, "select_biased");
    parse_expect(p, "!");
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    arm_list(p, n, select_arm);
    p->nl_quiet = quiet;
    return n;
}

// when = "when" expr "{" { arm ( "," | NL ) } "}"
static Node *when_expr(Parser *p) {
    Node *n = parse_node(ND_WHEN, parse_next(p));
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->cond = parse_expr(p);
    arm_list(p, n, when_arm);
    p->nl_quiet = quiet;
    return n;
}

// loop = "loop" "(" ( expr | "var" ident ":" type "<" expr ) ")" block
// A bare `loop { ... }` (not upstream's grammar) is reported, then parsed
// as `loop (true)`.
static Node *loop_expr(Parser *p) {
    Tok *t = parse_next(p);
    Node *n = parse_node(ND_LOOP, t);
    if (parse_is(p, "{")) {
        parse_error_skipped(p, parse_peek(p), "expected '(' but found '{': an infinite loop is written "
                                  "`loop (true) { ... }`");
        n->cond = parse_node(ND_BOOL, t);
        n->cond->ival = 1;
        n->body = parse_block(p);
        return n;
    }
    parse_expect(p, "(");
    p->nl_quiet++;
    if (parse_is(p, "var")) {
        Tok *vt = parse_next(p);
        Node *let = parse_node(ND_LET, vt);
        let->is_var = true;
        Node *bind = parse_node(ND_PBIND, parse_peek(p));
        bind->name = parse_decl_name(p, "a loop variable name");
        let->pat = bind;
        parse_expect(p, ":");
        let->texpr = parse_type_expr(p);
        parse_expect(p, "<");
        n->loop_var = true;
        n->init = let;
        n->cond = parse_expr(p);
    } else {
        n->cond = parse_expr(p);
    }
    parse_expect(p, ")");
    p->nl_quiet--;
    n->body = parse_block(p);
    return n;
}

// while = "while" expr block
static Node *while_expr(Parser *p) {
    Node *n = parse_node(ND_WHILE, parse_next(p));
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->cond = parse_expr(p);
    n->body = parse_block(p);
    p->nl_quiet = quiet;
    return n;
}

// for = "for" pattern "in" expr block      (expr: a range or a List)
// Any pattern but a plain name or `_` becomes `for __forN in e { let
// pattern = __forN; ... }`, so the loop itself binds one immutable name.
static Node *for_expr(Parser *p) {
    Tok *t = parse_next(p);
    Node *n = parse_node(ND_FOR, t);
    int quiet = p->nl_quiet;
    p->nl_quiet = 0;
    n->pat = parse_pattern(p);
    parse_expect(p, "in");
    n->cond = parse_expr(p);
    n->body = parse_block(p);
    p->nl_quiet = quiet;
    if ((n->pat->kind == ND_PBIND && !n->pat->is_var) || n->pat->kind == ND_PWILD)
        return n;
    Node *let = parse_node(ND_LET, t);
    let->loc = n->pat->loc;
    let->pat = n->pat;
    Node *bind = parse_node(ND_PBIND, t);
    bind->name = arena_printf("__for%d", p->pos);
    Node *each = parse_node(ND_PATH, t);
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
static bool is_handler(const Tok *t) { return parse_ident_is(t, "catch") || parse_ident_is(t, "finally"); }

/* Is the current token a `try` that opens a try block: followed by a block
 * and then (past newlines) `catch` or `finally`? Otherwise it is a name. */
static bool try_ahead(Parser *p) {
    if (!parse_ident_is(parse_peek(p), "try") || !tok_is(parse_peek_at(p, 1), "{"))
        return false;
    int save = p->pos;
    p->pos++;
    parse_skip_group(p, "{", "}");
    parse_skip_nl(p);
    bool handled = is_handler(&p->toks[p->pos]);
    p->pos = save;
    return handled;
}

// try = "try" block { ( "catch" | "finally" ) { token } block }
// Exceptions are outside the subset (section 9): reported, skipped whole.
static Node *try_block(Parser *p) {
    Tok *t = parse_next(p);
    parse_unsupported_skipped(p, t, "a 'try'/'catch' block",
                        "errors are values: return an `Err(e)` and match it with `when`");
    parse_skip_group(p, "{", "}");
    for (;;) {
        int save = p->pos;
        parse_skip_nl(p);
        if (!is_handler(&p->toks[p->pos])) {
            p->pos = save;
            return parse_node(ND_UNIT, t);
        }
        while (!tok_is(&p->toks[p->pos], "{") && p->toks[p->pos].kind != TK_NL &&
               p->toks[p->pos].kind != TK_EOF)
            p->pos++;                           /* `catch e`, `catch (e: E)` */
        parse_skip_group(p, "{", "}");
    }
}

/* `break name` / `continue name`: a label without its quote (section 9),
 * reported and skipped. */
static Node *loop_exit(Parser *p, NodeKind kind) {
    Tok *t = parse_next(p);
    Tok *label = &p->toks[p->pos];
    if (label->kind == TK_IDENT) {
        parse_unsupported_skipped(p, label, arena_printf("a label ('%s %s')", t->str, label->str),
                            "use a Bool variable and `break`");
        p->pos++;
    }
    return parse_node(kind, t);
}

/* Does the current token start an expression (for `return [expr]`)? */
static bool starts_expr(Parser *p) {
    Tok *t = &p->toks[p->pos];
    if (t->kind == TK_NL || t->kind == TK_EOF)
        return false;
    return !(tok_is(t, "}") || tok_is(t, ")") || tok_is(t, "]") || tok_is(t, ",") ||
             tok_is(t, ";") || tok_is(t, "else"));
}

// primary = literal | path | paren | block | async_block | if | when | loop | while | for
//         | "return" [ expr ] | "break" | "continue"
Node *parse_primary(Parser *p) {
    Tok *t = parse_peek(p);
    Node *n;
    switch (t->kind) {
    case TK_INT:
        n = parse_node(ND_INT, parse_next(p));
        n->ival = t->ival;
        n->suffix = t->suffix;
        return n;
    case TK_FLOAT:
        n = parse_node(ND_FLOAT, parse_next(p));
        n->fval = t->fval;
        n->suffix = t->suffix;
        return n;
    case TK_CHAR:
        n = parse_node(ND_CHAR, parse_next(p));
        n->ival = t->ival;
        return n;
    case TK_STR:
        return string_lit(p);
    case TK_IDENT:
        if ((parse_ident_is(t, "select") || parse_ident_is(t, "select_biased")) &&
            tok_is(parse_peek_at(p, 1), "!"))
            return select_expr(p);
        return try_ahead(p) ? try_block(p) : path_expr(p);
    default:
        break;
    }
    if (tok_is(t, "true") || tok_is(t, "false")) {
        n = parse_node(ND_BOOL, parse_next(p));
        n->ival = tok_is(t, "true");
        return n;
    }
    if (tok_is(t, "("))
        return paren(p);
    if (tok_is(t, "{"))
        return parse_block(p);
    if (tok_is(t, "async") && tok_is(parse_peek_at(p, 1), "{")) {   // async_block = "async" block
        n = parse_node(ND_ASYNC_BLOCK, parse_next(p));
        n->body = parse_block(p);
        return n;
    }
    if (tok_is(t, "if"))
        return parse_if_expr(p);
    if (tok_is(t, "when"))
        return when_expr(p);
    if (tok_is(t, "loop"))
        return loop_expr(p);
    if (tok_is(t, "while"))
        return while_expr(p);
    if (tok_is(t, "for"))
        return for_expr(p);
    if (tok_is(t, "return")) {
        n = parse_node(ND_RETURN, parse_next(p));
        if (starts_expr(p))
            n->lhs = parse_expr(p);
        return n;
    }
    if (tok_is(t, "break"))
        return loop_exit(p, ND_BREAK);
    if (tok_is(t, "continue"))
        return loop_exit(p, ND_CONTINUE);
    if (tok_is(t, "this")) {
        n = parse_node(ND_PATH, parse_next(p));
        n->name = "this";
        return n;
    }
    if (tok_is(t, "throw"))
        parse_unsupported(p, t, "'throw'", "call `panic(msg)` or return an `Err(e)`");
    if (parse_misnamed_use(p)) {
        n = parse_node(ND_PATH, t);
        n->name = t->str;
        return n;
    }
    parse_error_at(p, t, arena_printf("expected an expression but found %s", parse_describe(t)));
    n = parse_node(ND_UNIT, t);
    if (t->kind != TK_EOF && t->kind != TK_NL && !tok_is(t, "}") && !tok_is(t, ")"))
        parse_next(p);
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
    Node *f = parse_node(ND_FIELD, t);
    f->loc.col += skip;
    f->loc.off += skip;
    f->lhs = lhs;
    f->name = digits;
    f->ival = index;
    return f;
}

/* `++` / `--` before or after an operand: reported, then ignored. */
static void step_op(Parser *p) {
    Tok *t = parse_next(p);
    bool inc = tok_is(t, "++");
    parse_unsupported(p, t, inc ? "'++' (increment)" : "'--' (decrement)",
                inc ? "write `x += 1`" : "write `x -= 1`");
}

/* A newline followed by `.` continues a postfix chain (section 3.1). */
static bool continues_postfix(Parser *p) {
    Tok *t = &p->toks[p->pos];
    if (t->kind != TK_NL)
        return tok_is(t, "(") || tok_is(t, ".") || tok_is(t, "[");
    return tok_is(parse_peek_at(p, 1), ".");
}

// postfix = primary { "(" args | "." ( ident [ "(" args ] | int | "await" ) }
Node *parse_postfix(Parser *p) {
    Node *n = parse_primary(p);
    while (continues_postfix(p)) {
        parse_skip_nl(p);
        Tok *t = parse_next(p);
        if (tok_is(t, "(")) {
            Node *c = parse_node(ND_CALL, t);
            c->loc = n->loc;
            c->lhs = n;
            call_args(p, &c->args);
            n = c;
        } else if (tok_is(t, "[")) {           /* l[i] reads l.get(i) */
            Node *m = parse_node(ND_METHOD, t);
            m->loc = n->loc;
            m->lhs = n;
            m->name = "get";
            m->op = "[]";
            p->nl_quiet++;
            vec_push(&m->args, parse_expr(p));
            parse_expect(p, "]");
            p->nl_quiet--;
            n = m;
        } else if (parse_accept(p, "await")) {
            Node *a = parse_node(ND_AWAIT, t);
            a->lhs = n;
            n = a;
        } else if (parse_peek(p)->kind == TK_INT || tuple_indices(parse_peek(p))) {
            Tok *it = parse_next(p);
            if (it->kind == TK_INT) {
                n = tuple_field(n, it, 0, it->str, it->ival);
            } else {                /* `t.1.2` lexes `1.2` as one float */
                int dot = (int)strcspn(it->str, ".");
                const char *a = arena_strndup(it->str, (size_t)dot), *b = it->str + dot + 1;
                n = tuple_field(n, it, 0, a, strtoull(a, NULL, 10));
                n = tuple_field(n, it, dot + 1, b, strtoull(b, NULL, 10));
            }
        } else {
            Tok *nt = parse_peek(p);
            const char *name =
                parse_misnamed_use(p) ? nt->str : parse_expect_ident(p, "a field or method name");
            if (tok_is(&p->toks[p->pos], "(")) {
                Node *m = parse_node(ND_METHOD, nt);
                parse_next(p);
                m->lhs = n;
                m->name = name;
                call_args(p, &m->args);
                n = m;
            } else {
                Node *f = parse_node(ND_FIELD, nt);
                f->lhs = n;
                f->name = name;
                f->ival = UINT64_MAX;
                n = f;
            }
        }
    }
    if (parse_is(p, "++") || parse_is(p, "--"))
        step_op(p);
    if (tok_is(&p->toks[p->pos], "!"))
        parse_unsupported(p, parse_next(p), "postfix '!' (error propagation)",
                    "match the value with `when`, or call `unwrap()`");
    return n;
}

// spawn_prefix = "spawn" postfix      (`spawn f(x)` is `spawn(f(x))`, section 5 MAY)
static Node *spawn_prefix(Parser *p) {
    Tok *t = parse_next(p);
    Node *c = parse_node(ND_CALL, t);
    c->lhs = parse_node(ND_PATH, t);
    c->lhs->name = t->str;
    vec_push(&c->args, parse_postfix(p));
    return c;
}

// unary = ( "-" | "not" | "!" | "~" | "*" | "await" ) unary | spawn_prefix | postfix
static Node *unary(Parser *p) {
    Tok *t = parse_peek(p);
    if (parse_ident_is(t, "spawn") && p->toks[p->pos + 1].kind == TK_IDENT)
        return spawn_prefix(p);
    if (tok_is(t, "++") || tok_is(t, "--")) {
        step_op(p);
        return unary(p);
    }
    if (tok_is(t, "ref")) {
        parse_unsupported(p, parse_next(p), "'ref'", "pass the value itself (structs are copied, handles "
                                         "shared)");
        return unary(p);
    }
    if (tok_is(t, "await")) {
        Node *n = parse_node(ND_AWAIT, parse_next(p));
        n->lhs = unary(p);
        return n;
    }
    if (tok_is(t, "-") || tok_is(t, "not") || tok_is(t, "!") || tok_is(t, "~")) {
        Node *n = parse_node(ND_UNARY, parse_next(p));
        n->op = tok_is(t, "!") ? "not" : t->str;
        n->lhs = unary(p);
        return n;
    }
    if (tok_is(t, "*")) {
        Node *n = parse_node(ND_DEREF, parse_next(p));
        n->lhs = unary(p);
        return n;
    }
    return parse_postfix(p);
}

// cast = unary { "as" type | ( "to" | "through" ) postfix }
// A line that starts with `as`, `to` or `through` continues (section 3.1).
static Node *cast(Parser *p) {
    Node *n = unary(p);
    for (;;) {
        Tok *t = &p->toks[p->pos];
        if (t->kind == TK_NL && p->nl_quiet == 0) {
            Tok *after = parse_peek_at(p, 1);
            if (tok_is(after, "as") || tok_is(after, "to") || tok_is(after, "through"))
                p->pos++;
        }
        t = parse_peek(p);
        if (tok_is(t, "as")) {
            Node *c = parse_node(ND_CAST, parse_next(p));
            c->lhs = n;
            c->texpr = parse_type_expr(p);
            n = c;
        } else if (tok_is(t, "to") || tok_is(t, "through")) {
            Node *r = parse_node(ND_RANGE, parse_next(p));
            r->inclusive = tok_is(t, "through");
            r->lhs = n;
            r->rhs = parse_postfix(p);
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
        Tok *n = parse_peek_at(p, 1);
        if (is_binop(n) && !tok_is(n, "*") && op_in_level(n, level)) {
            p->pos++;
            return n;
        }
        return NULL;
    }
    t = parse_peek(p);
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
Node *parse_binary(Parser *p, int level) {
    if (level == NLEVELS)
        return cast(p);
    Node *n = parse_binary(p, level + 1);
    Tok *t;
    while ((t = level_op(p, level))) {
        parse_next(p);
        parse_skip_nl(p);   /* a trailing operator continues the expression */
        if (tok_is(t, "**"))
            parse_unsupported(p, t, "'**' (power)", "use a loop or repeated multiplication");
        Node *b = parse_node(ND_BINARY, t);
        b->op = canonical_op(t->str);
        b->lhs = n;
        b->rhs = parse_binary(p, level + 1);
        n = b;
    }
    return n;
}

// expr = binary [ "?" expr ":" expr ]
Node *parse_expr(Parser *p) {
    Node *n = parse_binary(p, 0);
    Tok *t = &p->toks[p->pos];
    if (t->kind == TK_NL && p->nl_quiet == 0 && tok_is(parse_peek_at(p, 1), "?"))
        p->pos++;
    /* `e?` is the try operator when nothing can follow, or when it ends
     * the line right after `e` (a ternary may continue on the next line) */
    Tok *q = parse_peek(p), *after = parse_peek_at(p, 1), *before = &p->toks[p->pos ? p->pos - 1 : 0];
    bool glued = before->loc.src == q->loc.src && before->loc.off + before->len == q->loc.off;
    if (tok_is(q, "?") && (((after->kind == TK_NL || after->kind == TK_EOF) && glued) ||
                           tok_is(after, ")") || tok_is(after, "}") || tok_is(after, ",") ||
                           tok_is(after, ";") || tok_is(after, "."))) {
        parse_unsupported(p, parse_next(p), "the '?' operator (error propagation)",
                    "match the value with `when`, or call `unwrap()`");
        return n;
    }
    if (parse_is(p, "?")) {
        Node *c = parse_node(ND_TERNARY, parse_next(p));
        c->cond = n;
        parse_skip_nl(p);
        c->then = parse_expr(p);
        parse_skip_nl(p);
        parse_expect(p, ":");
        parse_skip_nl(p);
        c->els = parse_expr(p);
        return c;
    }
    return n;
}
