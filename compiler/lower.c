/* lower.c - checked AST -> IR (mir.h): statements, scopes, ownership.
 *
 * Takes the Program after check and lower_async_graph; produces one
 * MFunc per function. Expressions are lowered in A-normal form: every
 * value that is not a variable or a literal lands in a named temporary,
 * so an `await` may sit anywhere inside an expression and evaluation
 * order is explicit. Ownership follows lower.h: this file holds the
 * scopes, the let/assignment/pattern bindings, control flow (if, when,
 * loops, break/continue/return) and the dispatch over node kinds;
 * lower_ops.c the operators and library calls, lower_wait.c the awaits
 * and the operations that wait. Rejects nothing: check has. */
#include <string.h>

#include "lower.h"

Val val(MExpr *e, bool owned) { return (Val){e, owned}; }
Val unit_val(void) { return val(mx_int(NULL, 0), false); }
bool is_unit(const Type *t) { return t->kind == TY_UNIT || t->kind == TY_NEVER; }
const char *field_name(const char *n) { return arena_printf("%s_", n); }

/* -------------------------------------------------------- statements */

void put(Fn *F, MStmt *s) { mblock_push(F->cur, s); }

void assign(Fn *F, MExpr *dst, MExpr *src) {
    MStmt *s = ms_new(MS_ASSIGN);
    s->dst = dst;
    s->src = src;
    put(F, s);
}

void eval(Fn *F, MExpr *e) {
    MStmt *s = ms_new(MS_EVAL);
    s->src = e;
    put(F, s);
}

void zero(Fn *F, MExpr *dst) {
    MStmt *s = ms_new(MS_ZERO);
    s->dst = dst;
    put(F, s);
}

void panic_msg(Fn *F, Loc loc, const char *msg) {
    MStmt *s = ms_new(MS_PANIC);
    s->loc = loc;
    s->text = msg;
    put(F, s);
}

MBlock *enter(Fn *F, MBlock *b) {
    MBlock *old = F->cur;
    F->cur = b;
    return old;
}

MStmt *open_if(Fn *F, MExpr *cond, MBlock **old) {
    MStmt *s = ms_new(MS_IF);
    s->src = cond;
    put(F, s);
    *old = enter(F, &s->body);
    return s;
}

void close_block(Fn *F, MBlock *old) { F->cur = old; }

static void jump(Fn *F, MStmtKind kind, const char *label) {
    MStmt *s = ms_new(kind);
    s->text = label;
    put(F, s);
}

static void line_mark(Fn *F, Loc loc) {
    MStmt *s = ms_new(MS_LINE);
    s->loc = loc;
    put(F, s);
}

/* ------------------------------------------------------------ locals */

static MLocal *new_local(Fn *F, const char *name, Type *t, Var *v) {
    MLocal *l = arena_alloc(sizeof *l);
    l->name = name;
    l->ty = t;
    l->var = v;
    vec_push(&F->mf->locals, l);
    l->id = F->mf->locals.n;
    if (v)
        v->emit_id = l->id;
    return l;
}

MLocal *tmp(Fn *F, Type *t) { return new_local(F, arena_printf("t%d", ++F->ntemp), t, NULL); }

Val to_tmp(Fn *F, Type *t, MExpr *e) {
    MLocal *l = tmp(F, t);
    assign(F, mx_local(l), e);
    return val(mx_local(l), true);
}

MExpr *var_ref(Fn *F, Var *v) {
    MLocal *l = v->emit_id > 0 && v->emit_id <= F->mf->locals.n ? F->mf->locals.v[v->emit_id - 1]
                                                                : NULL;
    if (!l || l->var != v)          /* first mention: a local of this function */
        l = new_local(F, v->cname, v->ty, v);
    return mx_local(l);
}

/* ------------------------------------------------- reference counts */

MExpr *dup_of(Type *t, MExpr *x) {
    MExpr *e = mx_deref(t, x);
    e->kind = MX_DUP;
    return e;
}

void release_place(Fn *F, MExpr *x, Type *t) {
    MStmt *s = ms_new(MS_RELEASE);
    s->dst = x;
    s->ty = t;
    put(F, s);
}

Val own(Fn *F, Val v, Type *t) {
    if (v.owned && t->kind == TY_GUARD)     /* leaving where lock() made it: see lock() */
        return to_tmp(F, t, dup_of(t, v.e));
    if (v.owned || !ty_managed(t))
        return val(v.e, true);
    return to_tmp(F, t, dup_of(t, v.e));
}

void release(Fn *F, Val v, Type *t) {
    if (v.owned && ty_managed(t))
        release_place(F, v.e, t);
}

/* Drops the value of an expression used as a statement. */
void discard(Fn *F, Val v, Type *t) {
    if (v.owned && ty_managed(t))
        release(F, v, t);
}

/* Converts between integer widths (or float widths): TML is lax here. */
Val coerce(Fn *F, Val v, Type *from, Type *to) {
    if (to && from != to && from->kind == TY_TUPLE && to->kind == TY_TUPLE) {
        Vec elems = {0};             /* element by element; v.e names a value */
        for (int i = 0; i < from->elems.n; i++)
            vec_push(&elems, coerce(F, val(mx_field(v.e, arena_printf("f%d", i)), false),
                                    from->elems.v[i], to->elems.v[i]).e);
        return val(mx_compound(to, &elems), v.owned);
    }
    if (!to || from == to || from->kind == TY_NEVER || !ty_is_num(from) || !ty_is_num(to))
        return v;
    return val(mx_cast(to, v.e), v.owned);
}

/* An owned value of type `to` for a consumer that keeps it. */
Val take(Fn *F, Node *n, Type *to) {
    Val v = lower_expr(F, n);
    return own(F, coerce(F, v, n->ty, to), to ? to : n->ty);
}

/* ----------------------------------------------------------- scopes */

void scope_push(Fn *F, bool loop) {
    LScope *s = arena_alloc(sizeof *s);
    s->loop = loop;
    vec_push(&F->scopes, s);
}

static void drop_scope_vars(Fn *F, LScope *s) {
    for (int i = s->owned.n - 1; i >= 0; i--) {
        MOwned *o = s->owned.v[i];
        MBlock *old = F->cur;
        if (o->live)
            open_if(F, o->live, &old);
        release_place(F, o->place, o->ty);
        close_block(F, old);
    }
}

/* The innermost scope takes over releasing `place` (if its type needs it). */
void own_in_scope(Fn *F, MExpr *place, Type *ty) {
    if (!ty_managed(ty))
        return;
    MOwned *o = arena_alloc(sizeof *o);
    o->place = place;
    o->ty = ty;
    vec_push(&((LScope *)F->scopes.v[F->scopes.n - 1])->owned, o);
}

void scope_pop(Fn *F) { drop_scope_vars(F, F->scopes.v[--F->scopes.n]); }

/* Appends to *out everything the open scopes own, outermost first: what
 * a drop of a frame suspended here releases (innermost first). */
void owned_now(Fn *F, Vec *out) {
    for (int i = 0; i < F->scopes.n; i++) {
        LScope *sc = F->scopes.v[i];
        for (int k = 0; k < sc->owned.n; k++)
            vec_push(out, sc->owned.v[k]);
    }
}

int hold_mark(Fn *F) { return ((LScope *)F->scopes.v[F->scopes.n - 1])->owned.n; }

Val hold(Fn *F, Val v, Type *t) {
    if (v.owned)
        own_in_scope(F, v.e, t);
    return v;
}

void settle(Fn *F, int mark) { ((LScope *)F->scopes.v[F->scopes.n - 1])->owned.n = mark; }

/* take(), held: an operand that later operands follow. */
Val take_held(Fn *F, Node *n, Type *to) { return hold(F, take(F, n, to), to ? to : n->ty); }

/* Releases the locals of every scope from `from` to the innermost. */
static void drops_from(Fn *F, int from) {
    for (int i = F->scopes.n - 1; i >= from; i--)
        drop_scope_vars(F, F->scopes.v[i]);
}

static int innermost_loop(Fn *F) {
    for (int i = F->scopes.n - 1; i >= 0; i--)
        if (((LScope *)F->scopes.v[i])->loop)
            return i;
    return 0;
}

/* Declares `v` in the current scope with the owned value `init`. */
void bind_var(Fn *F, Var *v, MExpr *init) {
    MExpr *x = var_ref(F, v);
    assign(F, x, init);
    own_in_scope(F, x, v->ty);
}

/* ------------------------------------------------------------ paths */

/* The root of assignment target n past its fields and guards: a
 * variable's path, or an expression, the guard (or mutex) that no
 * variable holds of `*(await m.lock()) += 1` (check.c: through_guard). */
static Node *target_root(Node *n) {
    while (n->kind == ND_FIELD || n->kind == ND_DEREF)
        n = n->kind == ND_DEREF ? guard_of(n) : n->lhs;
    return n;
}

/* The TML member that field access n (ND_FIELD) names. */
static const char *member(Node *n) {
    switch (n->lhs->ty->kind) {
    case TY_TUPLE: return arena_printf("f%d", (int)n->ival);
    case TY_SEND_ERROR: return "value";
    case TY_DURATION: return n->name;           /* tml_Duration's secs, nanos */
    default: return field_name(n->name);
    }
}

/* The place that target n names; `root` is the value of its root when
 * that is not a variable (evaluated once by the caller), else unused. */
MExpr *lvalue(Fn *F, Node *n, MExpr *root) {
    if (n->kind == ND_DEREF)
        return guard_place(n, lvalue(F, guard_of(n), root));
    if (n->kind == ND_FIELD)
        return mx_field(lvalue(F, n->lhs, root), member(n));
    return n->kind == ND_PATH ? var_ref(F, n->var) : root;
}

Val lower_field(Fn *F, Node *n) {
    Val base = lower_expr(F, n->lhs);
    Type *bt = n->lhs->ty;
    Val fv = val(mx_field(base.e, member(n)), false);
    if (!base.owned || !ty_managed(bt))
        return fv;
    Val kept = own(F, fv, n->ty);
    release(F, base, bt);
    return kept;
}

/* ---------------------------------------------------- control flow */

/* Stores branch value (of node `b`) into the result local `res`. */
void store_branch(Fn *F, MLocal *res, Node *b, Type *t) {
    Val v = lower_expr(F, b);
    if (res && b->ty->kind != TY_NEVER)
        assign(F, mx_local(res), own(F, coerce(F, v, b->ty, t), t).e);
    else
        discard(F, v, b->ty);
}

static Val if_expr(Fn *F, Node *n) {
    Val c = lower_expr(F, n->cond);
    MLocal *res = n->els && !is_unit(n->ty) ? tmp(F, n->ty) : NULL;
    MBlock *old;
    MStmt *s = open_if(F, c.e, &old);
    store_branch(F, res, n->then, n->ty);
    if (n->els) {
        enter(F, &s->els);
        store_branch(F, res, n->els, n->ty);
    }
    close_block(F, old);
    return res ? val(mx_local(res), true) : unit_val();
}

static MExpr *all_of(MExpr *c, MExpr *d) { return c ? mx_binop("&&", c, d) : d; }

/* The condition that `x` (of type t) matches pattern p, without side
 * effects; NULL: always. */
static MExpr *match_cond(Fn *F, Node *p, MExpr *x, Type *t) {
    MExpr *c = NULL;
    switch (p->kind) {
    case ND_PLIT: {
        Val lit = lower_expr(F, p->lhs);
        if (p->rhs)                 /* lo to hi / lo through hi */
            return mx_binop("&&", mx_binop(">=", x, lit.e),
                            mx_binop(p->inclusive ? "<=" : "<", x, lower_expr(F, p->rhs).e));
        if (t->kind == TY_STR)
            return mx_call("tml_str_eq", 2, x, lit.e);
        return mx_binop("==", x, lit.e);
    }
    case ND_PTUPLE:
        for (int i = 0; i < p->args.n; i++) {
            MExpr *d = match_cond(F, p->args.v[i], mx_field(x, arena_printf("f%d", i)),
                                  t->elems.v[i]);
            c = d ? all_of(c, d) : c;
        }
        return c;
    case ND_PSTRUCT:
        for (int i = 0; i < p->args.n; i++) {
            Node *sub = p->args.v[i];
            MExpr *d = match_cond(F, sub, mx_field(x, field_name(p->fields.v[i])), sub->ty);
            c = d ? all_of(c, d) : c;
        }
        return c;
    case ND_POR: {
        for (int i = 0; i < p->args.n; i++) {
            MExpr *d = match_cond(F, p->args.v[i], x, t);
            if (!d)
                return NULL;
            c = c ? mx_binop("||", c, d) : d;
        }
        return c;
    }
    case ND_PVARIANT: {
        if (t->kind == TY_ENUM) {
            Variant *v = t->sd->variants.v[p->variant];
            c = mx_binop("==", mx_field(x, "tag"), mx_int(NULL, p->variant));
            for (int i = 0; i < p->args.n; i++) {
                MExpr *part = mx_field(mx_field(mx_field(x, "u"), field_name(v->name)),
                                       arena_printf("f%d", i));
                MExpr *d = match_cond(F, p->args.v[i], part, v->types.v[i]);
                c = d ? all_of(c, d) : c;
            }
            return c;
        }
        MExpr *tag = t->kind == TY_JOIN_ERROR ? mx_call("tml_join_tag", 1, x) : mx_field(x, "tag");
        c = mx_binop("==", tag, t->kind == TY_JOIN_ERROR ? mx_sym(bi_join_error_c(p->variant))
                                                         : mx_int(NULL, p->variant));
        if (p->args.n) {
            Type *pt;
            MExpr *part = payload_of(x, t, p->variant, &pt);
            MExpr *d = match_cond(F, p->args.v[0], part, pt);
            c = d ? all_of(c, d) : c;
        }
        return c;
    }
    default:
        return NULL;
    }
}

/* Binds the names of pattern p to copies of the parts of `x`. */
static void bind_pattern(Fn *F, Node *p, MExpr *x, Type *t) {
    switch (p->kind) {
    case ND_PBIND: bind_var(F, p->var, own(F, val(x, false), t).e); return;
    case ND_PTUPLE:
        for (int i = 0; i < p->args.n; i++)
            bind_pattern(F, p->args.v[i], mx_field(x, arena_printf("f%d", i)), t->elems.v[i]);
        return;
    case ND_PSTRUCT:
        for (int i = 0; i < p->args.n; i++) {
            Node *sub = p->args.v[i];
            bind_pattern(F, sub, mx_field(x, field_name(p->fields.v[i])), sub->ty);
        }
        return;
    case ND_PVARIANT:
        if (t->kind == TY_ENUM) {
            Variant *v = t->sd->variants.v[p->variant];
            for (int i = 0; i < p->args.n; i++)
                bind_pattern(F, p->args.v[i],
                             mx_field(mx_field(mx_field(x, "u"), field_name(v->name)),
                                      arena_printf("f%d", i)),
                             v->types.v[i]);
            return;
        }
        if (p->args.n) {
            Type *pt;
            MExpr *part = payload_of(x, t, p->variant, &pt);
            if (!is_unit(pt))
                bind_pattern(F, p->args.v[0], part, pt);
        }
        return;
    default:
        return;
    }
}

/* The condition of a when arm: any of its alternatives matches. */
static MExpr *arm_cond(Fn *F, Node *arm, MExpr *s, Type *st) {
    MExpr *c = NULL;
    for (int j = 0; j < arm->args.n; j++) {
        MExpr *d = match_cond(F, arm->args.v[j], s, st);
        if (!d)
            return mx_int(NULL, 1);
        c = c ? mx_binop("||", c, d) : d;
    }
    return c ? c : mx_int(NULL, 0);
}

/* One arm: match, bind, guard (a failed guard goes on at the next
 * arm's label), body, then out through the `end` label. */
static void when_arm(Fn *F, Node *arm, Val s, Type *st, MLocal *res, Type *rt, int id, int i) {
    MBlock *old;
    open_if(F, arm_cond(F, arm, s.e, st), &old);
    scope_push(F, false);
    bind_pattern(F, arm->args.v[0], s.e, st);
    if (arm->cond) {
        Val g = lower_expr(F, arm->cond);
        MBlock *outer;
        open_if(F, mx_unop("!", g.e), &outer);
        drops_from(F, F->scopes.n - 1);
        jump(F, MS_GOTO, arena_printf("when%d_arm%d", id, i + 1));
        close_block(F, outer);
    }
    store_branch(F, res, arm->body, rt);
    scope_pop(F);
    jump(F, MS_GOTO, arena_printf("when%d_end", id));
    close_block(F, old);
    if (arm->cond)
        jump(F, MS_LABEL, arena_printf("when%d_arm%d", id, i + 1));
}

// when = if-chain over the arms; each arm: match, bind, guard, body.
static Val when_expr(Fn *F, Node *n) {
    Type *st = n->cond->ty;
    Val s = lower_expr(F, n->cond);
    MLocal *res = is_unit(n->ty) ? NULL : tmp(F, n->ty);
    int id = ++F->nlabel;
    scope_push(F, false);       /* releases an owned scrutinee on every exit */
    if (s.owned)
        own_in_scope(F, s.e, st);
    for (int i = 0; i < n->args.n; i++)
        when_arm(F, n->args.v[i], s, st, res, n->ty, id, i);
    panic_msg(F, n->loc, "no 'when' arm matched");
    jump(F, MS_LABEL, arena_printf("when%d_end", id));
    scope_pop(F);
    return res ? val(mx_local(res), true) : unit_val();
}

/* Appends a loop (`for (; cond; step)`, cond NULL: forever) and makes
 * its body current; close_block(F, *old) ends it. */
static MStmt *open_loop(Fn *F, MExpr *cond, MBlock **old) {
    MStmt *s = ms_new(MS_LOOP);
    s->src = cond;
    put(F, s);
    *old = enter(F, &s->body);
    return s;
}

static void loop_body(Fn *F, Node *body) {
    scope_push(F, true);
    discard(F, lower_expr(F, body), body->ty);
    scope_pop(F);
}

/* Evaluates the condition inside the loop: `if (!c) break;`. */
static void break_unless(Fn *F, MExpr *c) {
    MBlock *old;
    open_if(F, mx_unop("!", c), &old);
    put(F, ms_new(MS_BREAK));
    close_block(F, old);
}

static Val loop_expr(Fn *F, Node *n) {
    if (n->loop_var)
        bind_var(F, n->init->var, mx_int(NULL, 0));
    MBlock *old;
    open_loop(F, NULL, &old);
    Val c = lower_expr(F, n->cond);
    if (n->loop_var)
        break_unless(F, mx_binop("<", var_ref(F, n->init->var),
                                 coerce(F, c, n->cond->ty, n->init->var->ty).e));
    else
        break_unless(F, c.e);
    loop_body(F, n->body);
    close_block(F, old);
    return unit_val();
}

static Val while_expr(Fn *F, Node *n) {
    MBlock *old;
    open_loop(F, NULL, &old);
    break_unless(F, lower_expr(F, n->cond).e);
    loop_body(F, n->body);
    close_block(F, old);
    return unit_val();
}

static MExpr *add_one(MExpr *i, Type *t) {
    return mx_call(arena_printf("tml_add_%s", int_suffix(t)), 2, i, mx_int(NULL, 1));
}

/* for x in list: the loop holds its own reference to the list (released
 * on every way out, by the scope around the loop) and binds a copy of
 * each element in turn. */
static Val for_list(Fn *F, Node *n) {
    Type *lt = n->cond->ty;
    Val l = lower_expr(F, n->cond);
    scope_push(F, false);
    MExpr *list = mx_local(tmp(F, lt));
    assign(F, list, own(F, l, lt).e);
    own_in_scope(F, list, lt);
    MExpr *i = mx_local(tmp(F, ty_prim(TY_I64)));
    assign(F, i, mx_int(ty_prim(TY_I64), 0));
    MBlock *old;
    MStmt *loop = open_loop(F, mx_binop("<", i, mx_call("tml_list_len", 1, list)), &old);
    MBlock *body = enter(F, &loop->step);
    assign(F, i, mx_binop("+", i, mx_int(NULL, 1)));
    enter(F, body);
    scope_push(F, true);
    if (n->var) {
        Type *t = lt->a;
        MExpr *at = mx_call("tml_list_at", 5, list, i, mx_sym("NULL"), mx_int(NULL, 0),
                            mx_int(NULL, 0));
        Val e = to_tmp(F, t, mx_deref(t, at));
        e.owned = false;                    /* the list's; the binding copies it */
        bind_var(F, n->var, own(F, e, t).e);
    }
    discard(F, lower_expr(F, n->body), n->body->ty);
    scope_pop(F);
    close_block(F, old);
    scope_pop(F);
    return unit_val();
}

static Val for_expr(Fn *F, Node *n) {
    Node *r = n->cond;
    if (r->kind != ND_RANGE)
        return for_list(F, n);
    Type *t = r->ty;
    Val lo = coerce(F, lower_expr(F, r->lhs), r->lhs->ty, t);
    Val hi = coerce(F, lower_expr(F, r->rhs), r->rhs->ty, t);
    MExpr *i = n->var ? var_ref(F, n->var) : mx_local(tmp(F, t));
    MExpr *end = mx_local(tmp(F, t));
    assign(F, end, hi.e);
    assign(F, i, lo.e);
    MBlock *old;
    MStmt *loop;
    if (r->inclusive) {
        MExpr *go = mx_local(tmp(F, ty_prim(TY_BOOL)));
        assign(F, go, mx_binop("<=", lo.e, end));
        loop = open_loop(F, go, &old);
        enter(F, &loop->step);
        assign(F, go, mx_binop("!=", i, end));
    } else {
        loop = open_loop(F, mx_binop("<", i, end), &old);
        enter(F, &loop->step);
    }
    assign(F, i, add_one(i, t));
    enter(F, &loop->body);
    loop_body(F, n->body);
    close_block(F, old);
    return unit_val();
}

/* Leaves the function with the owned value `v` (NULL: Unit). */
static void leave(Fn *F, MExpr *v) {
    drops_from(F, 0);
    MStmt *s = ms_new(MS_RETURN);
    s->src = v;
    put(F, s);
}

static Val return_expr(Fn *F, Node *n) {
    Type *rt = F->f->ret;
    if (n->lhs && !is_unit(rt)) {
        Val v = take(F, n->lhs, rt);
        MExpr *keep = mx_local(tmp(F, rt));     /* survives the drops below */
        assign(F, keep, v.e);
        leave(F, keep);
    } else {
        if (n->lhs)
            release(F, lower_expr(F, n->lhs), n->lhs->ty);
        leave(F, NULL);
    }
    return unit_val();
}

static Val break_or_continue(Fn *F, Node *n) {
    drops_from(F, innermost_loop(F));
    put(F, ms_new(n->kind == ND_BREAK ? MS_BREAK : MS_CONTINUE));
    return unit_val();
}

static void block_stmts(Fn *F, Node *b) {
    for (int i = 0; i < b->args.n; i++) {
        Node *s = b->args.v[i];
        line_mark(F, s->loc);
        Val v = lower_expr(F, s);
        discard(F, v, s->ty);
    }
    if (b->lhs)
        line_mark(F, b->lhs->loc);
}

static Val block_expr(Fn *F, Node *n) {
    scope_push(F, false);
    block_stmts(F, n);
    Val v = unit_val();
    if (n->lhs) {
        v = lower_expr(F, n->lhs);
        if (ty_managed(n->lhs->ty))
            v = own(F, v, n->lhs->ty);
    }
    scope_pop(F);
    return v;
}

/* -------------------------------------------------------- bindings */

static Val let(Fn *F, Node *n) {
    Node *p = n->pat;
    if (n->is_const)
        return unit_val();      /* uses lower the value */
    if (p->kind == ND_PBIND) {
        Var *v = n->var;
        if (!n->init && v->ty->kind == TY_STR) {
            bind_var(F, v, mx_str("", 0));
        } else if (!n->init) {   /* late init of plain data (check.c) */
            MExpr *x = var_ref(F, v);
            zero(F, x);
            own_in_scope(F, x, v->ty);
        }
        if (!n->init)
            return unit_val();
        /* a fresh guard bound to a local may keep borrowing (lock()) */
        Val init = v->ty->kind == TY_GUARD ? lower_expr(F, n->init) : (Val){0};
        if (!init.owned)
            init = take(F, n->init, v->ty);
        bind_var(F, v, init.e);
        return unit_val();
    }
    Val init = lower_expr(F, n->init);
    bind_pattern(F, p, init.e, n->init->ty);     /* copies: the parts stay init's */
    release(F, init, n->init->ty);
    return unit_val();
}

/* target = v, target op= v: v first, then a root that is no variable
 * (a guard, held until the store, then released). */
static Val assign_expr(Fn *F, Node *n) {
    Type *lt = n->lhs->ty;
    bool plain = !strcmp(n->op, "=");
    int mark = hold_mark(F);
    Val r = hold(F, plain ? take(F, n->rhs, lt) : coerce(F, lower_expr(F, n->rhs), n->rhs->ty, lt),
                 lt);
    Node *root = target_root(n->lhs);
    Val g = root->kind == ND_PATH ? unit_val() : lower_expr(F, root);
    settle(F, mark);
    MExpr *lv = lvalue(F, n->lhs, g.e);
    Val nv = r;
    if (!plain) {
        nv = arith(F, arena_strndup(n->op, strlen(n->op) - 1), val(lv, false), r, lt, n->loc);
        release(F, r, lt);
    }
    if (ty_managed(lt))
        release_place(F, lv, lt);
    assign(F, lv, nv.e);
    if (root->kind != ND_PATH)
        release(F, g, root->ty);
    return unit_val();
}

/* ---------------------------------------------------------- dispatch */

static Val path(Fn *F, Node *n) {
    if (n->builtin == BI_ENUM_CTOR)
        return lower_enum_ctor(F, n);
    if (n->builtin == BI_VARIANT)
        return lower_variant_ctor(F, n);
    if (n->var && n->var->const_init)     /* constants are pure: inline */
        return coerce(F, lower_expr(F, n->var->const_init), n->var->const_init->ty, n->var->ty);
    if (n->builtin == BI_JOIN_ERROR)        /* cast: `NoResult == NoResult` is then
                                               no self-comparison to warn of */
        return val(mx_cast(ty_prim(TY_JOIN_ERROR), mx_sym(bi_join_error_c(n->variant))), false);
    if (n->builtin == BI_ORDERING)
        return val(mx_sym(bi_ordering_c(n->variant)), false);
    if (n->moves) {                         /* LANG-MOVE-1: its reference goes */
        Val v = to_tmp(F, n->ty, var_ref(F, n->var));
        assign(F, var_ref(F, n->var), mx_sym("NULL"));   /* its release finds NULL */
        return v;
    }
    return n->var ? val(var_ref(F, n->var), false) : unit_val();
}

static Val float_lit(Node *n) {
    MExpr *e = mx_new(MX_FLOAT, n->ty);
    e->fval = n->fval;
    return val(e, false);
}

static Val struct_lit(Fn *F, Node *n) {
    if (n->builtin == BI_DUR_NEW)           /* Duration { secs, nanos } */
        return lower_call(F, n);
    if (n->ty->kind != TY_STRUCT)           /* TimeoutError {}, RecvError {}: no data */
        return val(mx_int(NULL, 0), false);
    return lower_aggregate(F, n->ty, &n->args, &n->ty->elems);
}

Val lower_expr(Fn *F, Node *n) {
    switch (n->kind) {
    case ND_INT: return lower_int_lit(n);
    case ND_FLOAT: return float_lit(n);
    case ND_BOOL: return val(mx_int(ty_prim(TY_BOOL), (int64_t)n->ival), false);
    case ND_CHAR: return val(mx_int(ty_prim(TY_CHAR), (int64_t)n->ival), false);
    case ND_STR: return lower_interp(F, n);
    case ND_UNIT: return unit_val();
    case ND_PATH: return path(F, n);
    case ND_CALL: return lower_call(F, n);
    case ND_METHOD: return lower_method(F, n);
    case ND_FIELD: return lower_field(F, n);
    case ND_UNARY: return lower_unary(F, n);
    case ND_DEREF: return lower_deref(F, n);
    case ND_BINARY: return lower_binary(F, n);
    case ND_AWAIT: return lower_await(F, n, n->lhs);
    case ND_IF: case ND_TERNARY: return if_expr(F, n);
    case ND_WHEN: return when_expr(F, n);
    case ND_SELECT: return lower_select(F, n);
    case ND_BLOCK: return block_expr(F, n);
    case ND_LOOP: return loop_expr(F, n);
    case ND_WHILE: return while_expr(F, n);
    case ND_FOR: return for_expr(F, n);
    case ND_BREAK: case ND_CONTINUE: return break_or_continue(F, n);
    case ND_RETURN: return return_expr(F, n);
    case ND_STRUCTLIT: return struct_lit(F, n);
    case ND_TUPLE: return lower_aggregate(F, n->ty, &n->args, &n->ty->elems);
    case ND_CAST: return lower_cast(F, n);
    case ND_ASSIGN: return assign_expr(F, n);
    case ND_LET: return let(F, n);
    default: return unit_val();
    }
}

/* ------------------------------------------------------- functions */

/* The parameters (and `this`) become the first locals; those passed by
 * value are owned like locals of the outermost scope. */
static void params(Fn *F) {
    scope_push(F, false);
    Func *f = F->f;
    if (f->this_var) {
        MExpr *x = var_ref(F, f->this_var);
        x->local->param = true;
        x->local->by_ref = f->this_var->by_ref;
        if (!f->this_var->by_ref)
            own_in_scope(F, x, f->this_var->ty);
    }
    for (int i = 0; i < f->params.n; i++) {
        Var *v = ((Param *)f->params.v[i])->var;
        MExpr *x = var_ref(F, v);
        x->local->param = true;
        own_in_scope(F, x, v->ty);
    }
}

static MFunc *lower_func(Func *f) {
    MFunc *mf = arena_alloc(sizeof *mf);
    mf->f = f;
    mf->async = f->is_async;
    Fn fn = {.f = f, .async = f->is_async, .mf = mf, .cur = &mf->body};
    Fn *F = &fn;
    params(F);
    if (F->async) {             /* never polled: only the parameters */
        MBlock *old = enter(F, &mf->drop0);
        drops_from(F, 0);
        close_block(F, old);
    }
    Val v = lower_expr(F, f->body);
    if (f->body->ty->kind == TY_NEVER)
        return mf;
    if (!is_unit(f->ret)) {
        leave(F, own(F, coerce(F, v, f->body->ty, f->ret), f->ret).e);
    } else {
        discard(F, v, f->body->ty);
        leave(F, NULL);
    }
    return mf;
}

MProgram *lower(Program *prog) {
    MProgram *mp = arena_alloc(sizeof *mp);
    mp->prog = prog;
    for (int i = 0; i < prog->funcs.n; i++)
        vec_push(&mp->funcs, lower_func(prog->funcs.v[i]));
    return mp;
}
