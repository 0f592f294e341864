/* lower_select.c - select!, join and race: several futures in one slot.
 *
 * Takes a checked ND_SELECT (or a join/race call) and produces:
 *   1. the setup of each branch in written order, its precondition
 *      first: the branch's await (lower_await, diverted by Fn.sel) puts
 *      its future in branch i of the select's slot and sets bit i of the
 *      select's mask; whatever the branch evaluated and still holds
 *      (a receiver an expression made) is recorded on the branch;
 *   2. one MS_SELECT, which suspends until a branch is Ready, its index
 *      in the `winner` local; a frame dropped there drops every enabled
 *      branch's future and what it holds;
 *   3. for each loser, an MS_CANCEL of its future and the release of
 *      what it holds (a leaf's drop passes on what it was handed: a
 *      message, a lock, a permit);
 *   4. for the winner the code that reads its result, binds the
 *      branch's name and runs its body.
 * race is a select whose bodies are the results. join selects again
 * until every branch is done, each result kept in a local that a drop
 * releases once its branch is done.
 * Every branch's future lives in the frame at once, so a branch's
 * awaitable may not itself contain an await (check rejects it): its
 * future would share the frame's `aw` union with the select's. */
#include "lower.h"

static MAwait *new_select(Fn *F, bool biased) {
    MAwait *sel = arena_alloc(sizeof *sel);
    sel->branch = -1;
    sel->id = F->mf->awaits.n;
    vec_push(&F->mf->awaits, sel);
    sel->biased = biased;
    sel->mask = mx_local(tmp(F, ty_prim(TY_U32)));
    assign(F, sel->mask, mx_int(NULL, 0));
    return sel;
}

static MExpr *bit(int i) { return mx_int(NULL, (int64_t)1 << i); }

/* Sets up branch i (precondition `cond`, awaiting at `at`): appends the
 * setup to the current block and the result code to *result, where it
 * leaves the current block; returns the result's value. */
static Val branch(Fn *F, MAwait *sel, int i, Node *cond, Node *at, MBlock *result) {
    if (cond) {
        MBlock *old;
        open_if(F, lower_expr(F, cond).e, &old);
    }
    assign(F, sel->mask, mx_binop("|", sel->mask, bit(i)));
    SelectCtx ctx = {at, sel, i, hold_mark(F), result, NULL};
    SelectCtx *outer = F->sel;
    F->sel = &ctx;
    Val v = lower_await(F, at, at->lhs);
    F->sel = outer;
    return v;
}

/* The select point: what the scopes own there, then the MS_SELECT. */
static MExpr *suspend_all(Fn *F, MAwait *sel, Loc loc) {
    owned_now(F, &sel->owned);
    MStmt *s = ms_new(MS_SELECT);
    s->aw = sel;
    s->loc = loc;
    s->dst = mx_local(tmp(F, ty_prim(TY_U32)));
    put(F, s);
    return s->dst;
}

/* Drops every enabled branch but the winner, with what it holds. */
static void cancel_losers(Fn *F, MAwait *sel, MExpr *winner) {
    for (int i = 0; i < sel->branches.n; i++) {
        MAwait *b = sel->branches.v[i];
        MBlock *old;
        open_if(F, mx_binop("&&", mx_binop("!=", winner, mx_int(NULL, b->branch)),
                            mx_binop("&", sel->mask, bit(b->branch))),
                &old);
        MStmt *s = ms_new(MS_CANCEL);
        s->aw = b;
        put(F, s);
        for (int k = b->held.n - 1; k >= 0; k--) {
            MOwned *o = b->held.v[k];
            release_place(F, o->place, o->ty);
        }
        close_block(F, old);
    }
}

/* `if (winner == i) { body }` with body the statements of *b. */
static void run_if(Fn *F, MExpr *winner, int i, MBlock *b) {
    MStmt *s = ms_new(MS_IF);
    s->src = mx_binop("==", winner, mx_int(NULL, i));
    s->body = *b;
    put(F, s);
}

/* Binds branch arm's name to v (`_`: drops it) and runs its body into
 * res; in the branch's result block, within a scope of its own. */
static void arm_body(Fn *F, Node *arm, Val v, Type *vt, MLocal *res, Type *rt) {
    scope_push(F, false);
    Node *p = arm->args.v[0];
    if (p->kind == ND_PBIND)
        bind_var(F, p->var, own(F, v, vt).e);
    else
        release(F, v, vt);
    store_branch(F, res, arm->body, rt);
    scope_pop(F);
}

// select = every branch set up, one suspension, the losers dropped,
// the winner's body.
Val lower_select(Fn *F, Node *n) {
    MLocal *res = is_unit(n->ty) ? NULL : tmp(F, n->ty);
    if (res)                            /* set by the winner: C cannot tell */
        zero(F, mx_local(res));
    MAwait *sel = new_select(F, n->biased);
    sel->has_else = n->els != NULL;
    MBlock *results = arena_alloc(sizeof *results * (size_t)(n->args.n + 1));
    for (int i = 0; i < n->args.n; i++) {
        Node *arm = n->args.v[i];
        MBlock *after = F->cur;
        Val v = branch(F, sel, i, arm->cond, arm->init, &results[i]);
        arm_body(F, arm, v, arm->init->ty, res, n->ty);
        F->cur = after;
    }
    MExpr *winner = suspend_all(F, sel, n->loc);
    cancel_losers(F, sel, winner);
    for (int i = 0; i < n->args.n; i++)
        run_if(F, winner, i, &results[i]);
    if (n->els) {
        MBlock *after = enter(F, &results[n->args.n]);
        store_branch(F, res, n->els, n->ty);
        F->cur = after;
        run_if(F, winner, n->args.n, &results[n->args.n]);
    }
    return res ? val(mx_local(res), true) : unit_val();
}

/* join: selects again until no branch is left; branch i's result, once
 * done, waits in outs[i], which a drop of the frame releases. */
static Val join_rest(Fn *F, MAwait *sel, Node *e, MBlock *results, MLocal **outs) {
    int n = e->args.n, mark = hold_mark(F);
    LScope *in = F->scopes.v[F->scopes.n - 1];
    for (int i = 0; i < n; i++) {
        if (!outs[i] || !ty_managed(outs[i]->ty))
            continue;
        MOwned *o = arena_alloc(sizeof *o);
        o->place = mx_local(outs[i]);
        o->ty = outs[i]->ty;
        o->live = mx_unop("!", mx_binop("&", sel->mask, bit(i)));
        vec_push(&in->owned, o);
    }
    MStmt *loop = ms_new(MS_LOOP);
    put(F, loop);
    MBlock *old = enter(F, &loop->body), *inner;
    open_if(F, mx_binop("==", sel->mask, mx_int(NULL, 0)), &inner);
    put(F, ms_new(MS_BREAK));
    close_block(F, inner);
    MExpr *winner = suspend_all(F, sel, e->loc);
    assign(F, sel->mask, mx_binop("&", sel->mask, mx_unop("~", mx_binop("<<", mx_int(NULL, 1), winner))));
    for (int i = 0; i < n; i++)
        run_if(F, winner, i, &results[i]);
    close_block(F, old);
    settle(F, mark);                    /* the results move into the tuple */
    Vec elems = {0};
    for (int i = 0; i < n; i++)
        vec_push(&elems, outs[i] ? mx_local(outs[i]) : mx_int(NULL, 0));
    return to_tmp(F, e->ty, mx_compound(e->ty, &elems));
}

/* await join(a, ...) / race(a, ...) at `at`: each argument (an ND_AWAIT
 * check made) a branch. */
Val lower_join(Fn *F, Node *at, Node *e) {
    bool race = e->builtin == BI_RACE;
    MLocal *res = race && !is_unit(e->ty) ? tmp(F, e->ty) : NULL;
    if (res)
        zero(F, mx_local(res));
    MAwait *sel = new_select(F, false);
    int n = e->args.n;
    MBlock *results = arena_alloc(sizeof *results * (size_t)n);
    MLocal **outs = arena_alloc(sizeof *outs * (size_t)n);
    for (int i = 0; i < n; i++) {
        Node *w = e->args.v[i];
        MBlock *after = F->cur;
        Val v = branch(F, sel, i, NULL, w, &results[i]);
        if (race && res)
            assign(F, mx_local(res), own(F, coerce(F, v, w->ty, e->ty), e->ty).e);
        else if (race || is_unit(w->ty))
            release(F, v, w->ty);
        else
            assign(F, mx_local(outs[i] = tmp(F, w->ty)), own(F, v, w->ty).e);
        F->cur = after;
    }
    if (race) {
        MExpr *winner = suspend_all(F, sel, at->loc);
        cancel_losers(F, sel, winner);
        for (int i = 0; i < n; i++)
            run_if(F, winner, i, &results[i]);
        return res ? val(mx_local(res), true) : unit_val();
    }
    return join_rest(F, sel, e, results, outs);
}
