/* check.h - what check.c, check_call.c and check_stmt.c share: the
 * checker's state and the rules all three call. Private to the checker;
 * tmlc.h declares its entry point, check().
 *   check.c       scopes, names, types, literals, the dispatch over node
 *                 kinds, items (signatures, bodies, main, tests)
 *   check_call.c  calls: user functions, the builtin library (builtins.c's
 *                 table), methods, operators, casts, await, timeout
 *   check_stmt.c  control flow, struct and tuple literals, fields,
 *                 assignment, patterns, let and constants */
#ifndef CHECK_H
#define CHECK_H

#include "tmlc.h"

typedef struct Scope {
    Vec vars;                   /* Var* */
    struct Scope *parent;
} Scope;

typedef struct Checker {
    Program *prog;
    Map funcs, structs;         /* name -> first Func / StructDecl */
    Map methods;                /* "Type::name" -> Func (impl blocks) */
    Map variants;               /* bare variant name -> Variant*, or
                                   &check_ambiguous when two enums share it */
    Scope *globals;             /* top-level constants; parent of every
                                   function's scopes */
    Func *fn;                   /* function being checked */
    Scope *scope;
    int loops;                  /* enclosing loops */
    int repeats;                /* enclosing loop bodies and conditions: code
                                   that may run more than once */
    Node *awaited;              /* the operand of the await being checked */
    Node *started;              /* the operand of await, spawn, block_on or
                                   timeout being checked, where a future
                                   local may stand and a wait-capable
                                   operation is awaited (compared by
                                   identity; restored after the operand) */
    Node *dereffed;             /* the operand of the `*` being checked */
    Node *stmt;                 /* the block statement being checked: its
                                   value is discarded */
    int next_id;                /* unique suffix for C names */
} Checker;

static inline Type *T(TypeKind k) { return ty_prim(k); }

/* The error type: that of a type expression that failed to resolve, and
 * of whatever is declared with it (check.c says more). */
extern Type check_error_type;
/* The variant a lookup gives for an ambiguous or unknown name (reported). */
extern Variant check_ambiguous;

static inline bool is_primitive(const Type *t) { return t->kind <= TY_STR; }

/* check.c: scopes, names, types, the dispatch. */
Func *check_lookup_func(Checker *c, const char *name);
Func *check_to_string(Checker *c, Type *t);
Node *check_new_node(NodeKind kind, Loc loc, const char *name);
StructDecl *check_lookup_struct(Checker *c, const char *name);
Type *check_expect_type(Checker *c, Node *n, Type *want);
Type *check_expr(Checker *c, Node *n, Type *want);
Type *check_resolve_type(Checker *c, TypeExpr *te);
Type *check_value(Checker *c, Node *n, Type *want);
Var *check_declare(Checker *c, const char *name, Type *ty, bool mutable_);
Var *check_lookup_var(Checker *c, const char *name);
Variant *check_lookup_variant(Checker *c, Node *n, const char *qual, const char *name, Type *want);
bool check_arity(TypeExpr *te, int n);
bool check_compatible(Type *got, Type *want);
bool check_failed(Type *t, int errors);
const char *check_name_hint(Checker *c, const char *name);
const char *check_suggest(const char *name, const char **cands, int n);
const char *check_type_hint(Checker *c, const char *name);
const char *check_unalias(Checker *c, const char *name);
int check_join_os_error(void);
void check_mismatch(Node *n, Type *got, Type *want);
void check_pop_scope(Checker *c);
void check_push_scope(Checker *c);
void check_receiver(Checker *c, Func *f);

/* check_call.c: calls, methods, operators, await. */
Func *check_lookup_method(Checker *c, const char *type, const char *name);
Node *check_arg(Node *n, int i);
Type *check_await_expr(Checker *c, Node *n);
Type *check_async_block(Checker *c, Node *n);
void check_capture(Checker *c, Var *v);
Type *check_binary(Checker *c, Node *n);
Type *check_call(Checker *c, Node *n, Type *want);
Type *check_cast(Checker *c, Node *n);
Type *check_enum_ctor(Checker *c, Node *n, const char *name, Type *want);
Type *check_method(Checker *c, Node *n);
Type *check_timeout_call(Checker *c, Node *n);
Type *check_unary(Checker *c, Node *n);
Type *check_user_method(Checker *c, Node *n, Func *m);
Type *check_variant_ctor(Checker *c, Node *n, Variant *v);

/* check_stmt.c: control flow, literals, fields, assignment, patterns, let. */
Type *check_assign(Checker *c, Node *n);
Type *check_block(Checker *c, Node *n, Type *want);
Type *check_constant(Checker *c, Node *n);
Type *check_deref(Checker *c, Node *n);
Type *check_field(Checker *c, Node *n);
Type *check_for_expr(Checker *c, Node *n);
Type *check_if_expr(Checker *c, Node *n, Type *want);
Type *check_join_types(Node *at, Type *a, Type *b, bool discard);
Type *check_let(Checker *c, Node *n);
Type *check_loop_body(Checker *c, Node *body);
Type *check_loop_expr(Checker *c, Node *n);
Type *check_path(Checker *c, Node *n, Type *want);
Type *check_return_expr(Checker *c, Node *n);
Type *check_see_through(Node *n, Type *t);
Type *check_struct_lit(Checker *c, Node *n);
Type *check_tuple(Checker *c, Node *n, Type *want);
Type *check_when_expr(Checker *c, Node *n, Type *want);
Type *check_select(Checker *c, Node *n, Type *want);
Node *check_first_await(Node *n);
Var *check_root_var(Node *n);
bool check_discarded(Checker *c, Node *n, Type *want);
void check_loop_cond(Checker *c, Node *cond, Type *t);
void check_never_pattern(Checker *c, Node *p);
void check_pattern(Checker *c, Node *p, Type *t);

#endif /* CHECK_H */
