/* lower_ops.c - literals, strings, operators, aggregates and payloads.
 *
 * The value-building half of lowering (lower.h): literals and string
 * interpolation, arithmetic (wrapping integer operations and the
 * checked division of the C prelude, runtime/include/tml/prelude.h),
 * comparisons, casts, struct/tuple/enum values, the payloads of Maybe,
 * Outcome and JoinError, and the place a MutexGuard guards. Each takes
 * checked nodes and appends IR to the current block; none rejects
 * anything (check has). */
#include <string.h>

#include "lower.h"

/* A static Str literal; borrowed (literals are never counted). */
Val lower_str_lit(const char *s, int len) { return val(mx_str(s, len), false); }

static Val str_call(Fn *F, const char *fn, MExpr *x) {
    return to_tmp(F, ty_prim(TY_STR), mx_call(fn, 1, x));
}

/* The value as an owned-or-borrowed Str (to_string). */
Val str_of(Fn *F, Val v, Type *t) {
    switch (t->kind) {
    case TY_STR: return v;
    case TY_BOOL: return val(mx_call("tml_str_from_bool", 1, v.e), false);
    case TY_CHAR: return str_call(F, "tml_str_from_char", v.e);
    case TY_F32: case TY_F64: return str_call(F, "tml_str_from_f64", v.e);
    case TY_UNIT: case TY_NEVER: return lower_str_lit("()", 2);
    case TY_DURATION: return str_call(F, "tml_dur_to_string", v.e);
    case TY_BUFFER: return str_call(F, "tml_buffer_to_string", v.e);
    case TY_SOCKADDR: {
        Val a = to_tmp(F, t, v.e);
        return str_call(F, "tml_sockaddr_to_string", mx_addr(a.e));
    }
    case TY_RECV_ERROR: return lower_str_lit("receiving on a closed channel", 29);
    case TY_TIMEOUT_ERROR: return lower_str_lit("deadline has elapsed", 20);
    case TY_SEND_ERROR: return lower_str_lit("sending on a closed channel", 27);
    case TY_JOIN_ERROR: return val(mx_call("tml_join_error_string", 1, v.e), false);
    case TY_ENUM: {                                /* payload-free: Type::Variant */
        MExpr *e = mx_deref(t, v.e);
        e->kind = MX_VARIANT_NAME;
        return val(e, false);
    }
    default:
        return str_call(F, ty_is_signed(t) ? "tml_str_from_i64" : "tml_str_from_u64", v.e);
    }
}

/* "a{x}b": the text so far is held while the next part is evaluated. */
Val lower_interp(Fn *F, Node *n) {
    Type *str = ty_prim(TY_STR);
    Val acc = {0};
    bool have = false;
    int arg = 0, mark = hold_mark(F);
    for (StrPart *p = n->parts; p; p = p->next) {
        Val piece;
        if (p->is_expr) {
            Node *e = n->args.v[arg++];
            Val v = lower_expr(F, e);
            piece = str_of(F, v, e->ty);
            if (e->ty->kind != TY_STR)
                release(F, v, e->ty);
        } else {
            piece = lower_str_lit(p->text, p->len);
        }
        settle(F, mark);
        if (have) {
            Val next = to_tmp(F, str, mx_call("tml_str_concat", 2, acc.e, piece.e));
            release(F, acc, str);
            release(F, piece, str);
            piece = next;
        }
        acc = hold(F, piece, str);
        have = true;
    }
    settle(F, mark);
    return have ? acc : lower_str_lit("", 0);
}

/* -------------------------------------------------------- operators */

const char *int_suffix(Type *t) {
    static const char *names[] = {[TY_I8] = "i8", [TY_I16] = "i16", [TY_I32] = "i32",
                                  [TY_I64] = "i64", [TY_U8] = "u8", [TY_U16] = "u16",
                                  [TY_U32] = "u32", [TY_U64] = "u64"};
    return names[t->kind];
}

Val arith(Fn *F, const char *op, Val l, Val r, Type *t, Loc loc) {
    if (t->kind == TY_STR)
        return to_tmp(F, t, mx_call("tml_str_concat", 2, l.e, r.e));
    if (ty_is_float(t)) {
        if (!strcmp(op, "%"))
            return to_tmp(F, t, mx_cast(t, mx_call("__builtin_fmod", 2, l.e, r.e)));
        return to_tmp(F, t, mx_binop(op, l.e, r.e));
    }
    const char *sfx = int_suffix(t);
    static const struct { const char *op, *fn; } fns[] = {
        {"+", "add"}, {"-", "sub"}, {"*", "mul"}, {"<<", "shl"}, {">>", "shr"},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (!strcmp(op, fns[i].op))
            return to_tmp(F, t, mx_call(arena_printf("tml_%s_%s", fns[i].fn, sfx), 2, l.e, r.e));
    if (!strcmp(op, "/") || !strcmp(op, "%"))
        return to_tmp(F, t, mx_call(arena_printf("tml_%s_%s", op[0] == '/' ? "div" : "rem", sfx), 4,
                                    l.e, r.e, mx_int(NULL, loc.line), mx_int(NULL, loc.col)));
    return to_tmp(F, t, mx_cast(t, mx_binop(op, l.e, r.e)));
}

Val compare(Fn *F, const char *op, Val l, Val r, Type *t) {
    Type *b = ty_prim(TY_BOOL);
    if (t->kind == TY_STR) {
        if (!strcmp(op, "=="))
            return to_tmp(F, b, mx_call("tml_str_eq", 2, l.e, r.e));
        if (!strcmp(op, "!="))
            return to_tmp(F, b, mx_unop("!", mx_call("tml_str_eq", 2, l.e, r.e)));
        return to_tmp(F, b, mx_binop(op, mx_call("tml_str_cmp", 2, l.e, r.e), mx_int(NULL, 0)));
    }
    if (t->kind == TY_ENUM)
        return to_tmp(F, b, mx_binop(op, mx_field(l.e, "tag"), mx_field(r.e, "tag")));
    return to_tmp(F, b, mx_binop(op, l.e, r.e));
}

/* `and` / `or`: the right side only runs when it decides. */
static Val logical(Fn *F, Node *n) {
    bool is_and = !strcmp(n->op, "and");
    Val l = lower_expr(F, n->lhs);
    MExpr *res = mx_local(tmp(F, ty_prim(TY_BOOL)));
    assign(F, res, l.e);
    MBlock *old;
    open_if(F, is_and ? res : mx_unop("!", res), &old);
    assign(F, res, lower_expr(F, n->rhs).e);
    close_block(F, old);
    return val(res, true);
}

static bool is_cmp_op(const char *op) {
    return !strcmp(op, "==") || !strcmp(op, "!=") || !strcmp(op, "<") || !strcmp(op, ">") ||
           !strcmp(op, "<=") || !strcmp(op, ">=");
}

Val lower_binary(Fn *F, Node *n) {
    if (!strcmp(n->op, "and") || !strcmp(n->op, "or"))
        return logical(F, n);
    Type *lt = n->lhs->ty;
    int mark = hold_mark(F);
    Val l = hold(F, lower_expr(F, n->lhs), lt);
    Val r = coerce(F, lower_expr(F, n->rhs), n->rhs->ty, lt);
    settle(F, mark);
    if (lt->kind == TY_NEVER || n->rhs->ty->kind == TY_NEVER)
        return unit_val();      /* unreachable: an operand left the function */
    Val res;
    if (lt->kind == TY_INSTANT && !is_cmp_op(n->op))    /* Instant +/- Duration */
        res = to_tmp(F, lt, mx_call("tml_instant_shift", 5, l.e, r.e,
                                    mx_int(NULL, n->op[0] == '-'), mx_int(NULL, n->loc.line),
                                    mx_int(NULL, n->loc.col)));
    else
        res = is_cmp_op(n->op) ? compare(F, n->op, l, r, lt) : arith(F, n->op, l, r, lt, n->loc);
    release(F, l, lt);
    release(F, r, lt);
    return res;
}

Val lower_unary(Fn *F, Node *n) {
    Val v = lower_expr(F, n->lhs);
    Type *t = n->ty;
    if (t->kind == TY_NEVER)
        return v;
    if (!strcmp(n->op, "not"))
        return to_tmp(F, t, mx_unop("!", v.e));
    if (!strcmp(n->op, "~"))
        return to_tmp(F, t, mx_cast(t, mx_unop("~", v.e)));
    if (ty_is_float(t))
        return to_tmp(F, t, mx_unop("-", v.e));
    return to_tmp(F, t, mx_call(arena_printf("tml_neg_%s", int_suffix(t)), 1, v.e));
}

/* An integer literal of its type (a float type: the value as a double). */
Val lower_int_lit(Node *n) {
    if (ty_is_float(n->ty)) {
        MExpr *e = mx_new(MX_FLOAT, n->ty);
        e->fval = (double)n->ival;
        return val(e, false);
    }
    MExpr *e = mx_int(n->ty, (int64_t)n->ival);
    e->wide = n->ival > INT64_MAX;
    return val(e, false);
}

/* `e as T`: float to integer saturates (NaN gives 0) through the
 * prelude's tml_f2i_* helpers, the same for constants and run-time
 * values; every other conversion is C's. */
Val lower_cast(Fn *F, Node *n) {
    Val v = lower_expr(F, n->lhs);
    if (n->lhs->ty->kind == TY_NEVER)
        return v;
    if (ty_is_float(n->lhs->ty) && ty_is_int(n->ty))
        return to_tmp(F, n->ty, mx_call(arena_printf("tml_f2i_%s", int_suffix(n->ty)), 1, v.e));
    return to_tmp(F, n->ty, mx_cast(n->ty, v.e));
}

/* ------------------------------------------------------- aggregates */

Val lower_aggregate(Fn *F, Type *t, Vec *elems, Vec *types) {
    Vec vals = {0};
    int mark = hold_mark(F);
    for (int i = 0; i < elems->n; i++)
        vec_push(&vals, take_held(F, elems->v[i], types->v[i]).e);
    settle(F, mark);
    return to_tmp(F, t, mx_compound(t, &vals));
}

/* The payload slot of a tagged value. */
static const char *slot(Type *t, bool second) {
    if (t->kind == TY_MAYBE)
        return "val";
    return second ? "err" : "ok";
}

/* Outcome/Maybe value with tag and one payload (NULL for none). */
static Val tagged(Fn *F, Type *t, int tag, MExpr *payload) {
    MExpr *r = mx_local(tmp(F, t));
    zero(F, r);
    assign(F, mx_field(r, "tag"), mx_int(NULL, tag));
    if (payload)
        assign(F, mx_field(r, slot(t, tag)), payload);
    return val(r, true);
}

Val lower_enum_ctor(Fn *F, Node *n) {
    Type *t = n->ty;
    if (n->kind == ND_PATH)
        return tagged(F, t, 0, NULL);   /* Nothing */
    Type *pt = t->kind == TY_MAYBE ? t->a : n->variant ? t->b : t->a;
    Val v = take(F, n->args.v[0], pt);
    return tagged(F, t, n->variant, is_unit(pt) ? NULL : v.e);
}

/* A user enum's value: Shape::Circle(r), Empty... (check.c: BI_VARIANT). */
Val lower_variant_ctor(Fn *F, Node *n) {
    Variant *v = n->ty->sd->variants.v[n->variant];
    Vec vals = {0};
    int mark = hold_mark(F);
    for (int i = 0; n->kind == ND_CALL && i < n->args.n; i++)
        vec_push(&vals, take_held(F, n->args.v[i], v->types.v[i]).e);
    settle(F, mark);
    MExpr *r = mx_local(tmp(F, n->ty));
    zero(F, r);
    assign(F, mx_field(r, "tag"), mx_int(NULL, v->tag));
    for (int i = 0; i < vals.n; i++)
        assign(F, mx_field(mx_field(mx_field(r, "u"), field_name(v->name)), arena_printf("f%d", i)),
               vals.v[i]);
    return val(r, true);
}

/* The payload of variant `v` of x, a Maybe, an Outcome or a JoinError
 * (OsError's code), and in *pt its type. */
MExpr *payload_of(MExpr *x, Type *t, int v, Type **pt) {
    if (t->kind == TY_JOIN_ERROR) {
        *pt = ty_prim(TY_I32);
        return mx_call("tml_join_os_code", 1, x);
    }
    *pt = t->kind == TY_MAYBE ? t->a : v ? t->b : t->a;
    return mx_field(x, slot(t, v));
}

/* ------------------------------------------------------------ guards */

/* The guard a dereference reads: `*g` and `*g.get()` / `*g.get_mut()`;
 * for `*m.get_mut()` the mutex itself (tml_guard_value reads a mutex
 * pointer as an untagged guard). */
Node *guard_of(Node *d) {
    Node *g = d->lhs;
    bool through = g->kind == ND_METHOD &&
                   (g->builtin == BI_GUARD_SELF || g->builtin == BI_MUTEX_GET_MUT);
    return through ? g->lhs : g;
}

/* The value guarded by guard expression `g`, as a place. */
MExpr *guard_place(Node *d, MExpr *g) {
    return mx_deref(d->ty, mx_call("tml_guard_value", 3, g, mx_int(NULL, d->loc.line),
                                   mx_int(NULL, d->loc.col)));
}

/* *g: borrowed from a guard variable; an unbound guard (`*(await
 * m.lock())`) is released at once, after its value is copied out. */
Val lower_deref(Fn *F, Node *n) {
    Node *gn = guard_of(n);
    Val g = lower_expr(F, gn);
    Val v = val(guard_place(n, g.e), false);
    if (!g.owned)
        return v;
    Val kept = to_tmp(F, n->ty, ty_managed(n->ty) ? dup_of(n->ty, v.e) : v.e);
    release(F, g, gn->ty);
    return kept;
}
