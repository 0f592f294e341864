/* parse.h - what parse.c and parse_expr.c share: the parser's state
 * and the helpers and rules both call (TML-SUBSET.md sections 2, 3, 8).
 * Private to the parser; tmlc.h declares its entry point, parse(). */
#ifndef PARSE_H
#define PARSE_H

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

/* Tokens (parse.c): the current token, stepping, matching. */
Tok *parse_peek(Parser *p);
Tok *parse_peek_at(Parser *p, int k);
Tok *parse_next(Parser *p);
bool parse_accept(Parser *p, const char *s);
bool parse_is(Parser *p, const char *s);
Tok *parse_expect(Parser *p, const char *s);
const char *parse_describe(const Tok *t);
bool parse_ident_is(const Tok *t, const char *s);
bool parse_is_assign_op(const Tok *t);
bool parse_is_reserved_word(const Tok *t);
void parse_skip_nl(Parser *p);
void parse_skip_group(Parser *p, const char *open, const char *close);
Node *parse_node(NodeKind kind, Tok *t);

/* Errors and recovery (parse.c): one error per mistake; the parser
 * skips to the statement's end (panic mode). */
void parse_error_hint(Parser *p, Loc loc, const char *hint, const char *msg);
void parse_error_at(Parser *p, Tok *t, const char *msg);
void parse_error_skipped(Parser *p, Tok *t, const char *msg);
void parse_unsupported(Parser *p, Tok *t, const char *what, const char *hint);
void parse_unsupported_skipped(Parser *p, Tok *t, const char *what, const char *hint);
void parse_expected(Parser *p, Tok *t, const char *what);
void parse_recover(Parser *p);
const char *parse_expect_ident(Parser *p, const char *what);
const char *parse_decl_name(Parser *p, const char *what);
bool parse_misnamed_ahead(const Tok *t);
bool parse_misnamed_use(Parser *p);

/* Grammar rules other files call: types, blocks and items (parse.c),
 * expressions and patterns (parse_expr.c). */
TypeExpr *parse_type_expr(Parser *p);
Node *parse_block(Parser *p);
Node *parse_assignment(Parser *p, Node *lhs);
Node *parse_expr(Parser *p);
Node *parse_binary(Parser *p, int level);
Node *parse_postfix(Parser *p);
Node *parse_primary(Parser *p);
bool parse_is_upper_ident(const Tok *t);
Node *parse_if_expr(Parser *p);
Node *parse_pattern(Parser *p);
Node *parse_alternatives(Parser *p);
void parse_struct_pattern(Parser *p, Node *n);
#endif /* PARSE_H */
