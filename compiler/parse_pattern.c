/* parse_pattern.c - tokens -> AST: patterns (TML-SUBSET.md section 3.6).
 *
 * The patterns of let, for and when arms: `_`, names (`mut x`), literals
 * and ranges of them, tuples, enum variants with payload patterns, struct
 * patterns with `..`, and alternatives `p | q` inside them. Part of the
 * parser (parse.h; conventions in parse.c's header comment). */
#include <string.h>

#include "parse.h"

/* ---------------------------------------------------------- patterns */

static bool is_lit_tok(const Tok *t) {
    return t->kind == TK_INT || t->kind == TK_FLOAT || t->kind == TK_STR ||
           t->kind == TK_CHAR || tok_is(t, "true") || tok_is(t, "false");
}

// pattern = "_" | [ "mut" ] ident | literal [ ( "to" | "through" ) literal ]
//         | "(" alts { "," alts } ")"
//         | path [ "(" alts { "," alts } ")" | "{" fpat { "," fpat } [ "," ".." ] "}" ]
Node *parse_pattern(Parser *p) {
    Tok *t = parse_peek(p);
    if (is_lit_tok(t)) {
        Node *n = parse_node(ND_PLIT, t);
        n->lhs = parse_primary(p);
        if (parse_is(p, "to") || parse_is(p, "through")) {      /* range: lo to hi */
            n->inclusive = tok_is(parse_next(p), "through");
            if (is_lit_tok(parse_peek(p)))
                n->rhs = parse_primary(p);
            else
                parse_error_at(p, parse_peek(p), "a range pattern ends with a literal");
        }
        return n;
    }
    if (tok_is(t, "(")) {
        Node *n = parse_node(ND_PTUPLE, parse_next(p));
        p->nl_quiet++;
        do
            vec_push(&n->args, parse_alternatives(p));
        while (parse_accept(p, ",") && !parse_is(p, ")"));
        parse_expect(p, ")");
        p->nl_quiet--;
        return n;
    }
    bool mut = parse_accept(p, "mut");
    t = parse_peek(p);
    if (parse_misnamed_ahead(t) && !tok_is(t, "mut")) {     /* `let type = 1`: bound as a name */
        Node *n = parse_node(ND_PBIND, t);
        n->name = parse_decl_name(p, "a pattern");
        n->is_var = mut;
        return n;
    }
    if (t->kind != TK_IDENT) {
        parse_expected(p, t, "a pattern");
        if (t->kind != TK_EOF)
            parse_next(p);
        return parse_node(ND_PWILD, t);
    }
    parse_next(p);
    if (!strcmp(t->str, "_"))
        return parse_node(ND_PWILD, t);
    Node *n = parse_node(ND_PBIND, t);
    n->name = t->str;
    n->is_var = mut;
    while (parse_is(p, "::") && parse_peek_at(p, 1)->kind == TK_IDENT) {
        parse_next(p);
        n->qual = n->name;
        n->name = parse_next(p)->str;
        n->kind = ND_PVARIANT;
    }
    if (parse_accept(p, "(")) {
        n->kind = ND_PVARIANT;
        p->nl_quiet++;
        while (!parse_is(p, ")") && parse_peek(p)->kind != TK_EOF) {
            vec_push(&n->args, parse_alternatives(p));
            if (!parse_accept(p, ","))
                break;
        }
        parse_expect(p, ")");
        p->nl_quiet--;
    } else if (parse_is_upper_ident(t) && parse_is(p, "{")) {
        parse_struct_pattern(p, n);
    }
    if (mut && n->kind != ND_PBIND)
        parse_error_at(p, t, "'mut' applies to a name that the pattern binds");
    return n;
}

// struct_pattern = "{" fpat { "," fpat } [ "," ".." ] "}"   (after the path)
// fpat = [ "mut" ] ident [ ":" alts ]         (`x` alone binds field x)
void parse_struct_pattern(Parser *p, Node *n) {
    n->kind = ND_PSTRUCT;
    parse_next(p);
    p->nl_quiet++;
    while (!parse_is(p, "}") && parse_peek(p)->kind != TK_EOF) {
        if (parse_accept(p, "..")) {
            n->rest = true;
            break;
        }
        Tok *ft = parse_peek(p);
        bool mut = parse_accept(p, "mut");
        Tok *nt = parse_peek(p);
        const char *field = parse_misnamed_use(p) ? nt->str : parse_decl_name(p, "a field name");
        Node *sub;
        if (!mut && parse_accept(p, ":")) {
            sub = parse_alternatives(p);
        } else {                  /* shorthand `x` / `mut x` binds the field's name */
            sub = parse_node(ND_PBIND, ft);
            sub->name = field;
            sub->is_var = mut;
        }
        vec_push(&n->fields, (void *)field);
        vec_push(&n->args, sub);
        if (!parse_accept(p, ","))
            break;
    }
    parse_expect(p, "}");
    p->nl_quiet--;
}

// alts = pattern { "|" pattern }     (a nested alternative, inside ( ) or { })
Node *parse_alternatives(Parser *p) {
    Node *first = parse_pattern(p);
    if (!parse_is(p, "|"))
        return first;
    Node *n = parse_node(ND_POR, &p->toks[p->pos]);
    n->loc = first->loc;
    vec_push(&n->args, first);
    while (parse_accept(p, "|"))
        vec_push(&n->args, parse_pattern(p));
    return n;
}
