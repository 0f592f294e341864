/* lower_lib.c - calls: user functions and the library that never waits.
 *
 * Lowers calls of user functions and methods, and the builtin library
 * check resolved (Node.builtin): print, assert, constructors (channel,
 * List, Mutex, Semaphore, Atomic, Buffer, Duration), Maybe/Outcome
 * methods, atomics, lists, buffers, durations, channel and socket
 * queries. The operations that can wait (send, recv, lock, sleep, the
 * TCP operations...) are lower_wait.c's, both awaited and blocking.
 * Each builtin evaluates its arguments before it consumes its receiver;
 * a receiver an expression owns is held meanwhile (lower.h). */
#include <stdlib.h>
#include <string.h>

#include "lower.h"

static MExpr *at_loc(Loc l) { return mx_loc(l); }

Val outcome_from_status(Fn *F, Type *t, MExpr *status, MExpr *ok, MExpr *err) {
    MExpr *r = mx_local(tmp(F, t));
    zero(F, r);
    assign(F, mx_field(r, "tag"), mx_binop("!=", status, mx_int(NULL, 0)));
    MBlock *old;
    if (ok) {
        open_if(F, mx_unop("!", mx_field(r, "tag")), &old);
        assign(F, mx_field(r, "ok"), ok);
        close_block(F, old);
    }
    if (err) {
        open_if(F, mx_field(r, "tag"), &old);
        assign(F, mx_field(r, "err"), err);
        close_block(F, old);
    }
    return val(r, true);
}

/* The NetError (a prelude struct over the NetErrorKind enum, in TML_NET_*
 * order, which bi_rt_asserts checks) of the Outcome type `ot` for the
 * nonzero code `st`. */
MExpr *net_error(Type *ot, MExpr *st) {
    Vec kind = {0}, err = {0};
    vec_push(&kind, mx_binop("-", mx_cast(ty_prim(TY_U32), st), mx_int(NULL, 1)));
    vec_push(&err, mx_compound(NULL, &kind));
    return mx_compound(ot->b, &err);
}

/* A payload-free prelude enum value of type et (TryRecvError,
 * RecvTimeoutError): its variant `yes` when status == code (an rt.h
 * constant), else `no`, by the tags the prelude gives them. */
MExpr *status_variant(Type *et, MExpr *status, const char *code, const char *yes,
                      const char *no) {
    int tags[2] = {-1, -1};
    for (int i = 0; i < et->sd->variants.n; i++) {
        Variant *v = et->sd->variants.v[i];
        if (!strcmp(v->name, yes) || !strcmp(v->name, no))
            tags[!strcmp(v->name, no)] = v->tag;
    }
    if (tags[0] < 0 || tags[1] < 0)
        abort();                /* check lets only the prelude's type through */
    Vec e = {0};
    vec_push(&e, mx_cond(mx_binop("==", status, mx_sym(code)), mx_int(NULL, tags[0]),
                         mx_int(NULL, tags[1])));
    return mx_compound(et, &e);
}

static MExpr *i32(Fn *F, MExpr *e) { return to_tmp(F, ty_prim(TY_I32), e).e; }

/* --------------------------------------------------------- payloads */

/* Moves (owned) or copies (borrowed) the payload of `v` into a new Val. */
static Val payload(Fn *F, Val v, Type *t, bool second) {
    Type *pt;
    MExpr *p = payload_of(v.e, t, second, &pt);
    if (is_unit(pt))
        return unit_val();
    return own(F, val(p, v.owned), pt);
}

/* Tag of the "good" variant: Ok = 0, Just = 1. */
static int good_tag(Type *t) { return t->kind == TY_MAYBE ? 1 : 0; }

static MExpr *tag_is(MExpr *v, const char *op, int tag) {
    return mx_binop(op, mx_field(v, "tag"), mx_int(NULL, tag));
}

static void panic_str(Fn *F, Loc loc, MExpr *msg) {
    MStmt *s = ms_new(MS_PANIC);
    s->loc = loc;
    s->src = msg;
    put(F, s);
}

/* The text of the error in the Outcome v (of type t) that the unwrap n
 * found: its impl's to_string (n->err_to_string) or the library's. */
static MExpr *err_text(Fn *F, Node *n, Val v, Type *t) {
    Type *et;
    MExpr *e = payload_of(v.e, t, 1, &et);
    Func *g = n->err_to_string;
    if (!g)
        return str_of(F, val(e, false), et).e;
    Vec args = {0};
    Val self = own(F, val(e, false), et);
    vec_push(&args, g->this_var->by_ref ? mx_addr(to_tmp(F, et, self.e).e) : self.e);
    MExpr *c = mx_callv(NULL, &args);
    c->fn = g;
    return to_tmp(F, g->ret, c).e;
}

/* unwrap() / expect(msg): panics on Nothing or Err, naming the error
 * when its type has a text (as Rust: `called unwrap() on Err: ...`). */
static Val unwrap(Fn *F, Node *n, Val v, Type *t) {
    MBlock *old;
    open_if(F, tag_is(v.e, "!=", good_tag(t)), &old);
    if (n->builtin == BI_EXPECT) {
        panic_str(F, n->loc, lower_expr(F, n->args.v[0]).e);
    } else if (t->kind == TY_OUTCOME && (n->err_to_string || bi_has_to_string(t->b))) {
        MExpr *head = lower_str_lit("called unwrap() on Err: ", 24).e;
        panic_str(F, n->loc, to_tmp(F, ty_prim(TY_STR), mx_call("tml_str_concat", 2, head,
                                                               err_text(F, n, v, t))).e);
    } else {
        panic_msg(F, n->loc, t->kind == TY_MAYBE ? "called unwrap() on Nothing"
                                                 : "called unwrap() on Err");
    }
    close_block(F, old);
    return payload(F, v, t, t->kind == TY_OUTCOME && good_tag(t));
}

static Val unwrap_or(Fn *F, Node *n, Val v, Type *t) {
    Type *pt = n->ty;
    Val d = take(F, n->args.v[0], pt);
    MExpr *r = mx_local(tmp(F, pt));
    MBlock *old;
    MStmt *s = open_if(F, tag_is(v.e, "==", good_tag(t)), &old);
    assign(F, r, payload(F, v, t, false).e);
    release(F, d, pt);
    enter(F, &s->els);
    release(F, v, t);
    assign(F, r, d.e);
    close_block(F, old);
    return val(r, true);
}

/* Outcome.ok() / .err(): Maybe of one side. */
static Val outcome_side(Fn *F, Node *n, Val v, Type *t, bool err) {
    Type *mt = n->ty;
    MExpr *r = mx_local(tmp(F, mt));
    zero(F, r);
    MBlock *old;
    MStmt *s = open_if(F, tag_is(v.e, "==", err), &old);
    assign(F, mx_field(r, "tag"), mx_int(NULL, 1));
    if (!is_unit(mt->a))
        assign(F, mx_field(r, "val"), payload(F, v, t, err).e);
    enter(F, &s->els);
    release(F, v, t);
    close_block(F, old);
    return val(r, true);
}

/* ------------------------------------------------------------ calls */

static Val print(Fn *F, Node *n) {
    Node *a = n->args.v[0];
    Val v = lower_expr(F, a);
    Val s = str_of(F, v, a->ty);
    eval(F, mx_call(n->builtin == BI_PRINTLN ? "tml_println" : "tml_print", 1, s.e));
    if (a->ty->kind != TY_STR)
        release(F, v, a->ty);
    release(F, s, ty_prim(TY_STR));
    return unit_val();
}

static Val assert_(Fn *F, Node *n) {
    MBlock *old;
    if (n->builtin == BI_ASSERT || n->builtin == BI_ASSERT_FALSE) {
        Val c = lower_expr(F, n->args.v[0]);
        open_if(F, n->builtin == BI_ASSERT_FALSE ? c.e : mx_unop("!", c.e), &old);
        if (n->args.n == 2)
            panic_str(F, n->loc, lower_expr(F, n->args.v[1]).e);
        else
            panic_msg(F, n->loc, "assertion failed");
        close_block(F, old);
        return unit_val();
    }
    Node *a = n->args.v[0], *b = n->args.v[1];
    bool eq = n->builtin == BI_ASSERT_EQ;
    int mark = hold_mark(F);
    Val av = hold(F, lower_expr(F, a), a->ty);
    Val bv = hold(F, coerce(F, lower_expr(F, b), b->ty, a->ty), a->ty);
    Val same = compare(F, "==", av, bv, a->ty);
    open_if(F, eq ? mx_unop("!", same.e) : same.e, &old);
    MExpr *msg = n->args.n == 3 ? lower_expr(F, n->args.v[2]).e : mx_sym("NULL");
    Val as = str_of(F, av, a->ty), bs = str_of(F, bv, a->ty);   /* after msg: never held */
    eval(F, mx_call("tml_assert_fail", 6, mx_int(NULL, n->loc.line), mx_int(NULL, n->loc.col),
                    mx_cstr(eq ? "==" : "!="), as.e, bs.e, msg));
    close_block(F, old);
    settle(F, mark);
    release(F, av, a->ty);
    release(F, bv, a->ty);
    return unit_val();
}

/* f(args), T::f(args) or, for a method, recv.f(args): the receiver goes
 * first, owned (`this`) or as the address of the caller's variable
 * (`mut this`). */
Val user_call(Fn *F, Node *n) {
    Func *g = n->fn;
    Vec args = {0};
    int mark = hold_mark(F);
    if (g->this_var) {
        if (g->this_var->by_ref)
            vec_push(&args, mx_addr(lvalue(F, n->lhs, NULL)));
        else
            vec_push(&args, take_held(F, n->lhs, g->this_var->ty).e);
    }
    for (int i = 0; i < n->args.n; i++)
        vec_push(&args, take_held(F, n->args.v[i], ((Param *)g->params.v[i])->var->ty).e);
    settle(F, mark);
    MExpr *c = mx_callv(NULL, &args);
    c->fn = g;
    if (is_unit(g->ret)) {
        eval(F, c);
        return unit_val();
    }
    return to_tmp(F, g->ret, c);
}

/* The drop callback a runtime container needs for elements of type t. */
static MExpr *vdrop(Type *t) {
    return ty_managed(t) ? mx_sym(arena_printf("tml_vdrop_%s", t->mangled)) : mx_sym("NULL");
}

static Val channel(Fn *F, Node *n) {
    Type *st = n->ty->elems.v[0];
    Type *et = st->a;
    MExpr *cap = n->args.n ? lower_expr(F, n->args.v[0]).e : mx_int(NULL, -1);
    MExpr *ch = to_tmp(F, st, mx_call("tml_chan_new", 3, mx_new(MX_SIZEOF, et), cap, vdrop(et))).e;
    Vec ends = {0};
    vec_push(&ends, ch);
    vec_push(&ends, ch);
    return to_tmp(F, n->ty, mx_compound(n->ty, &ends));
}

/* Mutex::new(v): v moves into the mutex. */
static Val mutex_new(Fn *F, Node *n) {
    Type *et = n->ty->a;
    Val v = take(F, n->args.v[0], et);
    MExpr *cell = to_tmp(F, et, v.e).e;
    return to_tmp(F, n->ty, mx_call("tml_mutex_new", 3, mx_new(MX_SIZEOF, et), mx_addr(cell),
                                    vdrop(et)));
}

static Val interval(Fn *F, Node *n) {
    Val p = to_tmp(F, ty_prim(TY_I64), dur_ns(F, n->args.v[0]));
    MBlock *old;
    open_if(F, mx_binop("<=", p.e, mx_int(NULL, 0)), &old);
    panic_msg(F, n->loc, "interval period must be positive");
    close_block(F, old);
    Vec f = {0};
    vec_push(&f, mx_call("tml_now_ns", 0));
    vec_push(&f, p.e);
    return to_tmp(F, n->ty, mx_compound(n->ty, &f));
}

static Val list_new(Fn *F, Node *n) {
    Type *et = n->ty->a;
    MExpr *cap = n->args.n ? lower_expr(F, n->args.v[0]).e : mx_int(NULL, 0);
    return to_tmp(F, n->ty, mx_call("tml_list_new", 3, mx_new(MX_SIZEOF, et), cap, vdrop(et)));
}

/* drop(x): releases the guard or channel end in variable x now; its
 * scope's release then finds NULL. */
static Val drop_(Fn *F, Node *n) {
    Node *x = n->args.v[0];
    MExpr *lv = lvalue(F, x, NULL);
    release_place(F, lv, x->ty);
    assign(F, lv, mx_sym("NULL"));
    return unit_val();
}

static Val duration_ctor(Fn *F, Node *n) {
    if (n->builtin == BI_DUR_NEW) {
        MExpr *s = lower_expr(F, n->args.v[0]).e;
        MExpr *ns = lower_expr(F, n->args.v[1]).e;
        return to_tmp(F, n->ty, mx_call("tml_dur_new", 4, s, ns, mx_int(NULL, n->loc.line),
                                        mx_int(NULL, n->loc.col)));
    }
    const Builtin *b = bi_info(n->builtin);     /* tml_dur_from(v, units per second) */
    MExpr *v = lower_expr(F, n->args.v[0]).e;
    return to_tmp(F, n->ty, mx_call(arena_printf("tml_%s", b->leaf), 2, v,
                                    mx_int(ty_prim(TY_I64), b->konst)));
}

static Val panic_call(Fn *F, Node *n) {
    panic_str(F, n->loc, lower_expr(F, n->args.v[0]).e);
    return unit_val();
}

static Val sleep_ms(Fn *F, Node *n) {
    MExpr *ms = mx_call("tml_dur_from", 2, lower_expr(F, n->args.v[0]).e,
                        mx_int(ty_prim(TY_I64), 1000));
    eval(F, mx_call("tml_sleep_blocking", 1, mx_call("tml_dur_ns", 1, ms)));   /* clamped */
    return unit_val();
}

/* A BF_CALL row of builtins.c's table: tml_<leaf>(recv, arguments...)
 * (recv NULL: a function), its C result the TML result. The arguments
 * are released after the call. */
static Val leaf_call(Fn *F, Node *n, MExpr *recv) {
    const Builtin *b = bi_info(n->builtin);
    if (!b || !(b->flags & BF_CALL))
        abort();                /* a builtin lower has no case for: a compiler bug */
    Vec args = {0}, vals = {0};
    if (recv)
        vec_push(&args, recv);
    for (int i = 0; i < n->args.n; i++) {
        Val *a = arena_alloc(sizeof *a);
        *a = lower_expr(F, n->args.v[i]);
        vec_push(&args, a->e);
        vec_push(&vals, a);
    }
    MExpr *c = mx_callv(arena_printf("tml_%s", b->leaf), &args);
    Val r = unit_val();
    if (is_unit(n->ty))
        eval(F, c);
    else
        r = to_tmp(F, n->ty, c);
    for (int i = 0; i < vals.n; i++)
        release(F, *(Val *)vals.v[i], ((Node *)n->args.v[i])->ty);
    return r;
}

Val lower_call(Fn *F, Node *n) {
    switch (n->builtin) {
    case BI_PRINT: case BI_PRINTLN: return print(F, n);
    case BI_PANIC: return panic_call(F, n);
    case BI_ASSERT: case BI_ASSERT_FALSE: case BI_ASSERT_EQ: case BI_ASSERT_NE:
        return assert_(F, n);
    case BI_SPAWN: case BI_BLOCK_ON: return lower_spawn_or_block(F, n);
    case BI_SLEEP: case BI_SLEEP_UNTIL: return lower_sleep(F, n);
    case BI_CHANNEL: return channel(F, n);
    case BI_SLEEP_MS: return sleep_ms(F, n);
    case BI_DUR_NEW: case BI_DUR_FROM_SECS: case BI_DUR_FROM_MILLIS: case BI_DUR_FROM_MICROS:
    case BI_DUR_FROM_NANOS:
        return duration_ctor(F, n);
    case BI_INTERVAL: return interval(F, n);
    case BI_YIELD: return lower_yield(F);
    case BI_LIST_NEW: return list_new(F, n);
    case BI_ATOMIC_NEW:
        return to_tmp(F, n->ty, mx_call("tml_atomic_new", 1,
                                        mx_cast(ty_prim(TY_I64), lower_expr(F, n->args.v[0]).e)));
    case BI_MUTEX_NEW: return mutex_new(F, n);
    case BI_ADDR_PARSE: case BI_BIND: case BI_CONNECT: return lower_net_ctor(F, NULL, n, false);
    case BI_BUFFER_NEW:
        return to_tmp(F, n->ty, mx_call("tml_buffer_new_at", 2, lower_expr(F, n->args.v[0]).e,
                                        at_loc(n->loc)));
    case BI_DROP: return drop_(F, n);
    case BI_ENUM_CTOR: return lower_enum_ctor(F, n);
    case BI_VARIANT: return lower_variant_ctor(F, n);
    case BI_JOIN_ERROR:                     /* OsError(code) */
        return val(mx_call("tml_join_os_error", 1, lower_expr(F, n->args.v[0]).e), false);
    default: return n->builtin ? leaf_call(F, n, NULL) : user_call(F, n);
    }
}

/* ---------------------------------------------------------- methods */

/* The int64_t an atomic cell returns, as the TML value type `t`. */
static MExpr *from_cell(Type *t, MExpr *x) {
    if (t->kind == TY_BOOL)
        return mx_binop("!=", x, mx_int(NULL, 0));
    return mx_cast(t, x);
}

static MExpr *cell(MExpr *x) { return mx_cast(ty_prim(TY_I64), x); }

static Val atomic_op(Fn *F, Node *n, Val a, Type *at) {
    Type *t = at->a;
    MExpr *args[4] = {0};
    for (int i = 0; i < n->args.n; i++)
        args[i] = lower_expr(F, n->args.v[i]).e;
    switch (n->builtin) {
    case BI_ATOMIC_LOAD:
        return to_tmp(F, t, from_cell(t, mx_call("tml_atomic_load", 2, a.e, args[0])));
    case BI_ATOMIC_STORE:
        eval(F, mx_call("tml_atomic_store", 3, a.e, cell(args[0]), args[1]));
        return unit_val();
    case BI_ATOMIC_SWAP: case BI_ATOMIC_FETCH_ADD: case BI_ATOMIC_FETCH_SUB:
        return to_tmp(F, t, from_cell(t, mx_call(arena_printf("tml_%s", bi_info(n->builtin)->leaf),
                                                 3, a.e, cell(args[0]), args[1])));
    default: {   /* compare_exchange: Ok(previous) or Err(actual) */
        MExpr *cur = to_tmp(F, ty_prim(TY_I64), cell(args[0])).e;
        MExpr *ok = to_tmp(F, ty_prim(TY_BOOL),
                           mx_call("tml_atomic_compare_exchange", 5, a.e, mx_addr(cur), cell(args[1]),
                                   args[2], args[3])).e;
        return outcome_from_status(F, n->ty, mx_unop("!", ok), from_cell(t, cur), from_cell(t, cur));
    }
    }
}

/* List[T] methods; values move in (push, set) and out (pop), get copies. */
static Val list_op(Fn *F, Node *n, Val l, Type *lt) {
    Type *t = lt->a;
    switch (n->builtin) {
    case BI_LIST_PUSH: {
        MExpr *slot = to_tmp(F, t, take(F, n->args.v[0], t).e).e;
        eval(F, mx_call("tml_list_push", 2, l.e, mx_addr(slot)));
        return unit_val();
    }
    case BI_LIST_POP: {
        MExpr *out = mx_local(tmp(F, t));
        eval(F, mx_call("tml_list_pop", 3, l.e, mx_out(out), at_loc(n->loc)));
        return val(out, true);
    }
    case BI_LIST_GET: {
        MExpr *i = lower_expr(F, n->args.v[0]).e;
        Val v = to_tmp(F, t, mx_deref(t, mx_call("tml_list_at", 3, l.e, i, at_loc(n->loc))));
        v.owned = false;                        /* still the list's */
        return own(F, v, t);
    }
    case BI_LIST_SET: {
        MExpr *i = lower_expr(F, n->args.v[0]).e;
        MExpr *slot = to_tmp(F, t, take(F, n->args.v[1], t).e).e;
        eval(F, mx_call("tml_list_set", 4, l.e, i, mx_addr(slot), at_loc(n->loc)));
        return unit_val();
    }
    case BI_LIST_LEN: case BI_LIST_IS_EMPTY: {
        MExpr *len = mx_call("tml_list_len", 1, l.e);
        return to_tmp(F, n->ty, n->builtin == BI_LIST_IS_EMPTY ? mx_binop("==", len, mx_int(NULL, 0))
                                                              : len);
    }
    default:
        eval(F, mx_call("tml_list_clear", 1, l.e));
        return unit_val();
    }
}

/* Buffer methods (write_byte, read_byte, write_str, is_empty) on buffer
 * `b`; len, capacity and clear are BF_CALL rows. */
static Val buffer_op(Fn *F, Node *n, Val b) {
    switch (n->builtin) {
    case BI_BUF_WRITE_BYTE:
        eval(F, mx_call("tml_buffer_write_byte_at", 3, b.e, lower_expr(F, n->args.v[0]).e,
                        at_loc(n->loc)));
        return unit_val();
    case BI_BUF_READ_BYTE: {
        MExpr *r = mx_local(tmp(F, n->ty));
        zero(F, r);
        assign(F, mx_field(r, "tag"), mx_call("tml_buffer_read_byte", 2, b.e,
                                              mx_out(mx_field(r, "val"))));
        return val(r, true);
    }
    case BI_BUF_WRITE_STR: {
        Val x = lower_expr(F, n->args.v[0]);
        eval(F, mx_call("tml_buffer_write_str_at", 3, b.e, x.e, at_loc(n->loc)));
        release(F, x, ty_prim(TY_STR));
        return unit_val();
    }
    default:                    /* is_empty */
        return to_tmp(F, n->ty, mx_binop("==", mx_call("tml_buffer_len", 1, b.e), mx_int(NULL, 0)));
    }
}

/* Duration methods (subsec_nanos/millis/micros, is_zero,
 * saturating_add/sub, checked_add/sub, mul, div, debug_string); the table
 * row gives the runtime helper and its constant (builtins.c). */
static Val duration_op(Fn *F, Node *n, Val d) {
    const Builtin *b = bi_info(n->builtin);
    const char *leaf = b->leaf ? arena_printf("tml_%s", b->leaf) : NULL;
    MExpr *x = n->args.n ? lower_expr(F, n->args.v[0]).e : NULL;
    MExpr *sum = x ? mx_binop(b->konst > 0 ? "+" : "-", mx_call("tml_dur_total", 1, d.e),
                              mx_call("tml_dur_total", 1, x))
                   : NULL;
    MExpr *nanos = mx_field(d.e, "nanos");
    switch (n->builtin) {
    case BI_DUR_SUBSEC_NANOS: case BI_DUR_SUBSEC_MILLIS: case BI_DUR_SUBSEC_MICROS:
        return to_tmp(F, n->ty, b->konst == 1 ? nanos : mx_binop("/", nanos, mx_int(NULL, b->konst)));
    case BI_DUR_IS_ZERO:
        return to_tmp(F, n->ty, mx_binop("&&", mx_binop("==", mx_field(d.e, "secs"), mx_int(NULL, 0)),
                                         mx_binop("==", nanos, mx_int(NULL, 0))));
    case BI_DUR_SATURATING_ADD: case BI_DUR_SATURATING_SUB:
        return to_tmp(F, n->ty, mx_call(leaf, 1, sum));
    case BI_DUR_CHECKED_ADD: case BI_DUR_CHECKED_SUB: {
        MExpr *r = mx_local(tmp(F, n->ty));
        zero(F, r);
        assign(F, mx_field(r, "tag"), mx_call(leaf, 2, sum, mx_out(mx_field(r, "val"))));
        return val(r, true);
    }
    case BI_DUR_MUL: case BI_DUR_DIV:
        return to_tmp(F, n->ty, mx_call(leaf, 5, d.e, x, mx_int(NULL, b->konst),
                                        mx_int(NULL, n->loc.line), mx_int(NULL, n->loc.col)));
    default: return to_tmp(F, n->ty, mx_call(leaf, 1, d.e));     /* debug_string */
    }
}

static Val try_lock(Fn *F, Node *n, Val m) {
    MExpr *r = mx_local(tmp(F, n->ty));
    zero(F, r);
    assign(F, mx_field(r, "tag"), mx_call("tml_mutex_try_lock", 1, m.e));
    MBlock *old;
    open_if(F, mx_field(r, "tag"), &old);
    assign(F, mx_field(r, "val"), mx_call("tml_guard_owning", 1, m.e));
    close_block(F, old);
    return val(r, true);
}

/* m.into_inner() / g.deref(): a copy of the guarded value. */
static Val inner(Fn *F, Node *n, Val v, Type *rt) {
    MExpr *p = rt->kind == TY_GUARD ? mx_call("tml_guard_value", 3, v.e, mx_int(NULL, n->loc.line),
                                              mx_int(NULL, n->loc.col))
                                    : mx_call("tml_mutex_value", 1, v.e);
    MExpr *x = mx_deref(n->ty, p);
    return to_tmp(F, n->ty, ty_managed(n->ty) ? dup_of(n->ty, x) : x);
}

static Val try_recv(Fn *F, Node *n, Val v, Type *rt) {
    MExpr *out = mx_local(tmp(F, rt->a));
    MExpr *st = i32(F, mx_call("tml_chan_try_recv", 2, v.e, mx_out(out)));
    return outcome_from_status(F, n->ty, st, out,
                               status_variant(n->ty->b, st, "TML_CHAN_EMPTY", "Empty", "Disconnected"));
}

static Val try_send(Fn *F, Node *n, Val v, Type *rt) {
    MExpr *c = to_tmp(F, rt->a, take(F, n->args.v[0], rt->a).e).e;
    MExpr *st = i32(F, mx_call("tml_chan_try_send", 2, v.e, mx_addr(c)));
    Vec e = {0};
    vec_push(&e, c);
    return outcome_from_status(F, n->ty, st, NULL, mx_compound(n->ty->b, &e));
}

static Val tcp_addr(Fn *F, Node *n, Val v) {
    MExpr *a = mx_local(tmp(F, ty_prim(TY_SOCKADDR)));
    MExpr *st = i32(F, mx_call(n->builtin == BI_LOCAL_ADDR ? "tml_tcp_local_addr" : "tml_tcp_peer_addr",
                               2, v.e, mx_out(a)));
    return outcome_from_status(F, n->ty, st, a, net_error(n->ty, st));
}

static Val nodelay(Fn *F, Node *n, Val v) {
    MExpr *st = i32(F, mx_call("tml_tcp_set_nodelay", 2, v.e, lower_expr(F, n->args.v[0]).e));
    return outcome_from_status(F, n->ty, st, NULL, net_error(n->ty, st));
}

static Val to_string(Fn *F, Val v, Type *rt) {
    return own(F, str_of(F, v, rt), ty_prim(TY_STR));
}

static Val is_variant(Fn *F, Node *n, Val v, Type *rt) {
    int tag = n->builtin == BI_IS_A ? good_tag(rt) : !good_tag(rt);
    return to_tmp(F, n->ty, tag_is(v.e, "==", tag));
}

static Val str_len(Fn *F, Node *n, Val v, bool empty) {
    MExpr *len = mx_arrow(v.e, "len");
    return to_tmp(F, n->ty, empty ? mx_binop("==", len, mx_int(NULL, 0)) : len);
}

static Val unwrap_err(Fn *F, Node *n, Val v, Type *rt) {
    MBlock *old;
    open_if(F, tag_is(v.e, "!=", 1), &old);
    panic_msg(F, n->loc, "called unwrap_err() on Ok");
    close_block(F, old);
    return payload(F, v, rt, true);
}

static Val dur_as(Fn *F, Node *n, Val v) {
    const Builtin *b = bi_info(n->builtin);     /* tml_dur_as(d, units per second) */
    return to_tmp(F, n->ty, mx_call(arena_printf("tml_%s", b->leaf), 2, v.e,
                                    mx_int(ty_prim(TY_I64), b->konst)));
}

static Val since(Fn *F, Node *n, Val v) {
    MExpr *other = n->builtin == BI_ELAPSED ? mx_call("tml_now_ns", 0)
                                            : lower_expr(F, n->args.v[0]).e;
    return to_tmp(F, n->ty, n->builtin == BI_ELAPSED ? mx_call("tml_dur_between", 2, other, v.e)
                                                     : mx_call("tml_dur_between", 2, v.e, other));
}

static Val chan_is_empty(Fn *F, Node *n, Val v) {
    return to_tmp(F, n->ty, mx_binop("==", mx_call("tml_chan_len", 1, v.e), mx_int(NULL, 0)));
}

/* Builtin method n on the receiver value v, of type rt (lower_method
 * holds an owned one until this returns). Returns with `*consumed` set
 * when the result took v over (nothing left to release). */
static Val builtin_method(Fn *F, Node *n, Val v, Type *rt, bool *consumed) {
    *consumed = false;
    switch (n->builtin) {
    case BI_TO_STRING:
        *consumed = rt->kind == TY_STR;
        return *consumed ? own(F, v, rt) : to_string(F, v, rt);
    case BI_UNWRAP: case BI_EXPECT: *consumed = true; return unwrap(F, n, v, rt);
    case BI_UNWRAP_OR: *consumed = true; return unwrap_or(F, n, v, rt);
    case BI_UNWRAP_ERR: *consumed = true; return unwrap_err(F, n, v, rt);
    case BI_OK: case BI_ERR: *consumed = true; return outcome_side(F, n, v, rt, n->builtin == BI_ERR);
    case BI_DUPLICATE: *consumed = true; return own(F, v, rt);
    case BI_SEND_INTO_INNER: *consumed = true; return own(F, val(mx_field(v.e, "value"), false), n->ty);
    case BI_IS_A: case BI_IS_B: return is_variant(F, n, v, rt);
    case BI_STR_LEN: return str_len(F, n, v, false);
    case BI_STR_IS_EMPTY: return str_len(F, n, v, true);
    case BI_DUR_AS_SECS: case BI_DUR_AS_MILLIS: case BI_DUR_AS_MICROS: case BI_DUR_AS_NANOS:
        return dur_as(F, n, v);
    case BI_ELAPSED: case BI_DURATION_SINCE: return since(F, n, v);
    case BI_INSTANT_AS_NANOS: return to_tmp(F, n->ty, v.e);
    case BI_ATOMIC_LOAD: case BI_ATOMIC_STORE: case BI_ATOMIC_SWAP: case BI_ATOMIC_FETCH_ADD:
    case BI_ATOMIC_FETCH_SUB: case BI_ATOMIC_CAS:
        return atomic_op(F, n, v, rt);
    case BI_LIST_PUSH: case BI_LIST_POP: case BI_LIST_GET: case BI_LIST_SET: case BI_LIST_LEN:
    case BI_LIST_IS_EMPTY: case BI_LIST_CLEAR:
        return list_op(F, n, v, rt);
    case BI_TRY_LOCK: return try_lock(F, n, v);
    case BI_INTO_INNER: case BI_GUARD_DEREF: return inner(F, n, v, rt);
    case BI_TRY_RECV: return try_recv(F, n, v, rt);
    case BI_TRY_SEND: return try_send(F, n, v, rt);
    case BI_BUF_WRITE_BYTE: case BI_BUF_READ_BYTE: case BI_BUF_WRITE_STR: case BI_BUF_IS_EMPTY:
        return buffer_op(F, n, v);
    case BI_DUR_SUBSEC_NANOS: case BI_DUR_SUBSEC_MILLIS: case BI_DUR_SUBSEC_MICROS:
    case BI_DUR_IS_ZERO: case BI_DUR_SATURATING_ADD: case BI_DUR_SATURATING_SUB:
    case BI_DUR_CHECKED_ADD: case BI_DUR_CHECKED_SUB: case BI_DUR_MUL: case BI_DUR_DIV:
    case BI_DUR_DEBUG_STRING:
        return duration_op(F, n, v);
    case BI_ADDR_PORT:
        return to_tmp(F, n->ty, mx_cast(ty_prim(TY_I64), mx_field(v.e, "port")));
    case BI_NODELAY: return nodelay(F, n, v);
    case BI_LOCAL_ADDR: case BI_PEER_ADDR: return tcp_addr(F, n, v);
    case BI_CHAN_IS_EMPTY: return chan_is_empty(F, n, v);
    default: return leaf_call(F, n, v.e);
    }
}

Val lower_method(Fn *F, Node *n) {
    Node *r = n->lhs;
    Type *rt = r->ty;
    if (n->fn)
        return user_call(F, n);
    Val w;
    if (lower_blocking(F, n, &w))
        return w;
    if (n->builtin == BI_GUARD_SELF)
        return lower_expr(F, r);
    int mark = hold_mark(F);
    Val v = hold(F, lower_expr(F, r), rt);
    bool consumed;
    Val res = builtin_method(F, n, v, rt, &consumed);
    settle(F, mark);
    if (!consumed)
        release(F, v, rt);
    return res;
}
