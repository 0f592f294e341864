/* lower.h - what lower.c, lower_ops.c and lower_wait.c share: the
 * state of the function being lowered and the ownership protocol.
 *
 * A Val is an IR expression with no side effects (a local, a constant,
 * a field path of one) plus whether the code holds a reference through
 * it: owned (+1, the consumer must store or release it) or borrowed (a
 * variable, or a field path of one). Consumers that keep a value (let,
 * assignment, arguments, return, channel send) take ownership,
 * duplicating borrowed values; locals are released when their scope
 * ends, also through break, continue and return.
 *
 * Held temporaries. A construct that keeps an owned operand while it
 * evaluates a later one (an argument before the next, the left side of
 * `+`, the text of an interpolation so far, the fields of a literal
 * built so far, a receiver; a leaf's handle while it waits) holds it:
 * the innermost scope owns it until the construct consumes it, so every
 * way out in between releases it - the drop of a frame suspended at an
 * await in the later operand (timeout, shutdown) and a break, continue
 * or return inside it.
 * Invariant: a construct settles (returns the innermost scope to the
 * mark it took before its first operand) before or right after the code
 * that moves or releases what it held, with nothing that suspends or
 * leaves in between; the scopes its operands opened are closed by then,
 * so what it held is on top. Settling emits nothing, so a held value is
 * released exactly once: by the construct, or on a way out taken before
 * it got there. */
#ifndef LOWER_H
#define LOWER_H

#include "mir.h"

typedef struct Val {
    MExpr *e;
    bool owned;
} Val;

/* A scope: what it owns, released on every way out of it. */
typedef struct LScope {
    Vec owned;                  /* MOwned* */
    bool loop;                  /* break/continue target boundary */
} LScope;

/* `await timeout(d, fut)`: the future awaited at `at` runs beside a
 * sleep; whichever is Ready first wins and the other is dropped. */
typedef struct Timeout {
    Node *at;                   /* the await */
    MExpr *ns;                  /* the duration, ns (evaluated before fut) */
    MLocal *expired;            /* I32: 1 when the timer won */
} Timeout;

/* The select! branch being set up: its await (`at`) does not suspend
 * where it stands; its future becomes branch `branch` of `sel`, and
 * the code that reads the future's result goes to `result`, run only
 * when it wins (lower_select.c). */
typedef struct SelectCtx {
    Node *at;
    MAwait *sel;
    int branch;
    int base;                   /* innermost scope's owned count at the
                                   branch's start: what it holds is above */
    MBlock *result;
    MAwait *aw;                 /* set by the divert: the branch's future */
} SelectCtx;

typedef struct Fn {
    Func *f;
    bool async;
    MFunc *mf;
    MBlock *cur;                /* where statements go */
    Vec scopes;                 /* LScope* */
    Timeout *tmo;               /* the timeout(d, fut) being lowered */
    SelectCtx *sel;             /* the select! branch being set up */
    int ntemp, nlabel;
} Fn;

/* ------------------------------------------------------------ lower.c */

Val lower_expr(Fn *F, Node *n);
Val val(MExpr *e, bool owned);
Val unit_val(void);
bool is_unit(const Type *t);
const char *field_name(const char *n);   /* a TML member's C name */

MLocal *tmp(Fn *F, Type *t);
Val to_tmp(Fn *F, Type *t, MExpr *e);
void put(Fn *F, MStmt *s);
void assign(Fn *F, MExpr *dst, MExpr *src);
void eval(Fn *F, MExpr *e);
void zero(Fn *F, MExpr *dst);
void panic_msg(Fn *F, Loc loc, const char *msg);
/* Appends `if (cond)` and makes its body the current block; returns it.
 * close_block(F, old) returns to the block current before. */
MStmt *open_if(Fn *F, MExpr *cond, MBlock **old);
void close_block(Fn *F, MBlock *old);
MBlock *enter(Fn *F, MBlock *b);

MExpr *dup_of(Type *t, MExpr *x);
void release_place(Fn *F, MExpr *x, Type *t);
Val own(Fn *F, Val v, Type *t);
void release(Fn *F, Val v, Type *t);
void discard(Fn *F, Val v, Type *t);
Val coerce(Fn *F, Val v, Type *from, Type *to);
Val take(Fn *F, Node *n, Type *to);
void owned_now(Fn *F, Vec *out);
int hold_mark(Fn *F);
Val hold(Fn *F, Val v, Type *t);
void settle(Fn *F, int mark);
Val take_held(Fn *F, Node *n, Type *to);
void scope_push(Fn *F, bool loop);
void scope_pop(Fn *F);
void own_in_scope(Fn *F, MExpr *place, Type *ty);
MExpr *var_ref(Fn *F, Var *v);
void bind_var(Fn *F, Var *v, MExpr *init);
void store_branch(Fn *F, MLocal *res, Node *b, Type *t);
MExpr *lvalue(Fn *F, Node *n, MExpr *root);

/* ------------------------------------------------------- lower_ops.c */

Val lower_str_lit(const char *s, int len);
const char *int_suffix(Type *t);          /* i8 ... u64 */
Val str_of(Fn *F, Val v, Type *t);
Val lower_interp(Fn *F, Node *n);
Val lower_binary(Fn *F, Node *n);
Val lower_unary(Fn *F, Node *n);
Val lower_cast(Fn *F, Node *n);
Val lower_int_lit(Node *n);
Val lower_field(Fn *F, Node *n);
Val lower_aggregate(Fn *F, Type *t, Vec *elems, Vec *types);
Val lower_enum_ctor(Fn *F, Node *n);
Val lower_variant_ctor(Fn *F, Node *n);
Val lower_call(Fn *F, Node *n);
Val lower_method(Fn *F, Node *n);
Val lower_deref(Fn *F, Node *n);
Node *guard_of(Node *d);
MExpr *guard_place(Node *d, MExpr *g);
MExpr *payload_of(MExpr *x, Type *t, int v, Type **pt);
Val compare(Fn *F, const char *op, Val l, Val r, Type *t);
Val arith(Fn *F, const char *op, Val l, Val r, Type *t, Loc loc);
Val outcome_from_status(Fn *F, Type *t, MExpr *status, MExpr *ok, MExpr *err);
MExpr *net_error(Type *ot, MExpr *st);
MExpr *status_variant(Type *et, MExpr *status, const char *code, const char *yes,
                      const char *no);
Val user_call(Fn *F, Node *n);

/* ------------------------------------------------------ lower_wait.c */

/* `await e` at the await node `at`. */
Val lower_await(Fn *F, Node *at, Node *e);
/* A wait-capable method call `e` (send, recv, tick, lock, recv_timeout,
 * the TCP operations, acquire, notified, join) that blocks the thread:
 * false when `e` is none of them. */
bool lower_blocking(Fn *F, Node *e, Val *out);
Val lower_spawn_or_block(Fn *F, Node *n);
Val lower_sleep(Fn *F, Node *call);
Val lower_yield(Fn *F);
Val lower_net_ctor(Fn *F, Node *at, Node *n, bool awaited);
MExpr *dur_ns(Fn *F, Node *d);

/* ---------------------------------------------------- lower_select.c */

Val lower_select(Fn *F, Node *n);
Val lower_join(Fn *F, Node *at, Node *e);

#endif /* LOWER_H */
