/* lower_wait.c - awaits, and the operations that wait.
 *
 * `await e` becomes the setup of e's future in the frame's `aw` slot for
 * that await (a runtime leaf initialised in place, or an async callee's
 * frame with its parameters stored), one MS_AWAIT that polls it until
 * Ready, and the code that reads its result. The MS_AWAIT records what a
 * drop of the frame suspended there must release: the future, anything
 * its result would have handed back (an undelivered send), and every
 * value the open scopes own, innermost first; and the locals the future
 * points into, which must live in the frame. `await timeout(d, fut)`
 * runs fut beside a sleep leaf in the same slot. The same operations
 * without `await` (in sync code) call the runtime's blocking forms.
 * spawn and block_on build a callee frame in a task or on the stack.
 * Rejects nothing: check has. */
#include <string.h>

#include "lower.h"

static bool timed(Fn *F, Node *at) { return F->tmo && F->tmo->at == at; }

/* The MAwait of await node `at`, with the future a runtime leaf (`leaf`,
 * with or without a drop) or the frame of `callee`. */
static MAwait *new_await(Fn *F, Node *at, const char *leaf, bool leaf_drop, Func *callee) {
    MAwait *aw = arena_alloc(sizeof *aw);
    aw->branch = -1;
    if (F->sel && F->sel->at == at) {           /* a select! branch: the select's slot */
        aw->parent = F->sel->sel;
        aw->branch = F->sel->branch;
        aw->id = at->await_id = aw->parent->id;
        vec_push(&aw->parent->branches, aw);
    } else {
        aw->id = at->await_id = F->mf->awaits.n;    /* numbered in the order met */
        vec_push(&F->mf->awaits, aw);
    }
    aw->leaf = leaf;
    aw->leaf_drop = leaf_drop;
    aw->callee = callee;
    aw->boxed = callee && lower_edge_boxed(F->f, callee);
    if (timed(F, at))
        aw->expired = mx_local(F->tmo->expired);
    return aw;
}

/* The future of await `at` (under timeout: beside its timer). */
static MExpr *aw_ref(Fn *F, Node *at) {
    int branch = F->sel && F->sel->at == at ? F->sel->branch : -1;
    return mx_aw_branch(at->await_id, branch, timed(F, at) ? AW_IN : AW_WHOLE);
}

/* Suspends on aw's future (already initialised) until it is Ready; under
 * timeout the timer starts first. */
static void suspend(Fn *F, Node *at, MAwait *aw) {
    if (timed(F, at))
        eval(F, mx_call("tml_sleep_init", 2, mx_addr(mx_aw_branch(aw->id, aw->branch, AW_TIMER)),
                        F->tmo->ns));
    if (aw->parent) {                   /* a select! branch: no suspension here */
        LScope *in = F->scopes.v[F->scopes.n - 1];
        for (int k = F->sel->base; k < in->owned.n; k++)
            vec_push(&aw->held, in->owned.v[k]);
        F->sel->aw = aw;
        F->cur = F->sel->result;
        return;
    }
    owned_now(F, &aw->owned);
    MStmt *s = ms_new(MS_AWAIT);
    s->aw = aw;
    put(F, s);
}

/* A runtime leaf awaited at `at`: `init`(&fut, args...) (NULL:
 * tml_<leaf>_init), then suspend, unless `out` takes the MAwait for the
 * caller to add to before it suspends. Returns the future. */
static MExpr *await_leaf_init(Fn *F, Node *at, const char *leaf, const char *init, int n,
                              MExpr **args, MAwait **out) {
    MAwait *aw = new_await(F, at, leaf, bi_leaf_drops(leaf), NULL);
    MExpr *fut = aw_ref(F, at);
    Vec a = {0};
    vec_push(&a, mx_addr(fut));
    for (int i = 0; i < n; i++)
        vec_push(&a, args[i]);
    eval(F, mx_callv(init ? init : arena_printf("tml_%s_init", leaf), &a));
    if (out)
        *out = aw;
    else
        suspend(F, at, aw);
    return fut;
}

static MExpr *await_leaf(Fn *F, Node *at, const char *leaf, int n, MExpr **args, MAwait **out) {
    return await_leaf_init(F, at, leaf, NULL, n, args, out);
}

static MExpr *i32(Fn *F, MExpr *e) { return to_tmp(F, ty_prim(TY_I32), e).e; }

MExpr *dur_ns(Fn *F, Node *d) { return mx_call("tml_dur_ns", 1, lower_expr(F, d).e); }

/* ------------------------------------------------------------ leaves */

/* rx.recv_timeout(d): Outcome[T, RecvTimeoutError { Timeout, Disconnected }]. */
static Val recv_timeout(Fn *F, Node *at, Node *m) {
    int mark = hold_mark(F);
    Val ch = hold(F, lower_expr(F, m->lhs), m->lhs->ty);
    MExpr *ns = dur_ns(F, m->args.v[0]);
    MLocal *out = tmp(F, m->lhs->ty->a);
    MExpr *status;
    if (at) {
        MAwait *aw;
        MExpr *args[] = {ch.e, mx_out(mx_local(out)), ns};
        MExpr *fut = await_leaf(F, at, "recv_timeout", 3, args, &aw);
        vec_push(&aw->pinned, out);
        suspend(F, at, aw);
        status = mx_field(fut, "status");
    } else {
        status = i32(F, mx_call("tml_chan_recv_timeout_blocking", 3, ch.e, mx_out(mx_local(out)),
                                ns));
    }
    Val r = outcome_from_status(F, m->ty, status, mx_local(out),
                                status_variant(m->ty->b, status, "TML_CHAN_TIMEOUT", "Timeout",
                                               "Disconnected"));
    settle(F, mark);
    release(F, ch, m->lhs->ty);
    return r;
}

/* An address argument (SocketAddr, or Str parsed here) in a temporary;
 * *st gets the parse status (0 for a SocketAddr). */
static MExpr *addr_arg(Fn *F, Node *a, MExpr **st) {
    Val v = lower_expr(F, a);
    if (a->ty->kind == TY_SOCKADDR) {
        *st = mx_int(NULL, 0);
        return to_tmp(F, a->ty, v.e).e;
    }
    MExpr *addr = mx_local(tmp(F, ty_prim(TY_SOCKADDR)));
    *st = i32(F, mx_call("tml_sockaddr_parse", 2, v.e, mx_out(addr)));
    release(F, v, a->ty);
    return addr;
}

/* SocketAddr::parse, TcpListener::bind, TcpStream::connect: Outcome[_, NetError]. */
Val lower_net_ctor(Fn *F, Node *at, Node *n, bool awaited) {
    MExpr *st;
    MExpr *addr = addr_arg(F, n->args.v[0], &st);
    if (n->builtin == BI_ADDR_PARSE)
        return outcome_from_status(F, n->ty, st, addr, net_error(n->ty, st));
    MExpr *res = mx_local(tmp(F, n->ty->a));
    MExpr *status = i32(F, st);
    MBlock *old;
    open_if(F, mx_binop("==", status, mx_int(NULL, 0)), &old);
    if (n->builtin == BI_BIND) {
        assign(F, status, mx_call("tml_tcp_bind", 2, mx_addr(addr), mx_out(res)));
    } else if (awaited) {
        MExpr *args[] = {mx_addr(addr)};
        MExpr *fut = await_leaf(F, at, "connect", 1, args, NULL);
        assign(F, status, mx_field(fut, "status"));
        assign(F, res, mx_field(fut, "stream"));
    } else {
        assign(F, status, mx_call("tml_tcp_connect_blocking", 2, mx_addr(addr), mx_out(res)));
    }
    close_block(F, old);
    return outcome_from_status(F, n->ty, status, res, net_error(n->ty, status));
}

/* l.accept(), s.read(buf), s.write(buf), s.write_all(buf) blocking the
 * thread: the status, and in *ok the success payload (NULL: Unit). */
static MExpr *net_io_blocking(Fn *F, Node *m, int k, MExpr *s, MExpr *buf, MExpr **ok) {
    const char *fn = arena_printf("tml_%s", bi_info(m->builtin)->blocking);
    if (k == 0) {
        MExpr *pair = mx_local(tmp(F, m->ty->a));
        *ok = pair;
        return i32(F, mx_call(fn, 3, s, mx_out(mx_field(pair, "f0")),
                              mx_out(mx_field(pair, "f1"))));
    }
    if (k < 3) {
        MExpr *n = mx_local(tmp(F, ty_prim(TY_I64)));
        *ok = n;
        return i32(F, mx_call(fn, 3, s, buf, mx_out(n)));
    }
    *ok = NULL;
    return i32(F, mx_call(fn, 2, s, buf));
}

/* l.accept(), s.read(buf), s.write(buf), s.write_all(buf): wait-capable. */
static Val net_io(Fn *F, Node *at, Node *m) {
    const char *leaf = bi_info(m->builtin)->leaf;
    int k = m->builtin == BI_ACCEPT ? 0 : m->builtin == BI_READ ? 1 : m->builtin == BI_WRITE ? 2 : 3;
    int mark = hold_mark(F);
    Val s = hold(F, lower_expr(F, m->lhs), m->lhs->ty);
    Val buf = k ? hold(F, lower_expr(F, m->args.v[0]), ty_prim(TY_BUFFER)) : unit_val();
    MExpr *status, *ok = NULL;
    if (at) {
        MExpr *args[] = {s.e, buf.e};
        MExpr *fut = await_leaf(F, at, leaf, k ? 2 : 1, args, NULL);
        status = mx_field(fut, "status");
        if (k == 0) {
            Vec pair = {0};
            vec_push(&pair, mx_field(fut, "stream"));
            vec_push(&pair, mx_field(fut, "peer"));
            ok = mx_compound(m->ty->a, &pair);
        } else if (k < 3) {
            ok = mx_field(fut, "n");
        }
    } else {
        status = net_io_blocking(F, m, k, s.e, buf.e, &ok);
    }
    Val r = outcome_from_status(F, m->ty, status, ok, net_error(m->ty, status));
    settle(F, mark);
    release(F, buf, ty_prim(TY_BUFFER));
    release(F, s, m->lhs->ty);
    return r;
}

/* m's receiver, held, waited on: awaited at `at` as the row's leaf, else
 * blocking the thread in its blocking form (lock, acquire, notified).
 * Returns the receiver; the caller settles and releases it. */
static Val wait_on(Fn *F, Node *at, Node *m) {
    const Builtin *b = bi_info(m->builtin);
    Val h = hold(F, lower_expr(F, m->lhs), m->lhs->ty);
    if (at)
        await_leaf(F, at, b->leaf, 1, &h.e, NULL);
    else
        eval(F, mx_call(arena_printf("tml_%s", b->blocking), 1, h.e));
    return h;
}

/* m.lock(): a MutexGuard. It borrows the mutex when `m` is an immutable
 * variable (a parameter or `let`): the guard is declared after it in
 * the same or an inner scope, so it is released first, and moving the
 * guard out takes a reference (tml_guard_take). Otherwise it holds a
 * reference of its own. Borrowing spares two contended atomic
 * operations per lock. */
static Val lock(Fn *F, Node *at, Node *m) {
    Node *r = m->lhs;
    bool borrow = r->kind == ND_PATH && r->var && !r->var->mutable_ && !r->var->const_init;
    int mark = hold_mark(F);
    Val mv = wait_on(F, at, m);
    MExpr *gc = borrow ? mv.e : mx_call("tml_guard_owning", 1, mv.e);
    if (at && timed(F, at))     /* the timer won: no lock, no reference */
        gc = mx_cond(mx_local(F->tmo->expired), mx_sym("NULL"), gc);
    Val g = to_tmp(F, m->ty, gc);
    settle(F, mark);
    release(F, mv, m->lhs->ty);
    return g;
}

/* s.acquire() / n.notified(): Unit once a permit (notification) is ours. */
static Val permit(Fn *F, Node *at, Node *m) {
    int mark = hold_mark(F);
    Val h = wait_on(F, at, m);
    settle(F, mark);
    release(F, h, m->lhs->ty);
    return unit_val();
}

/* await h / h.join(): t = Outcome[T, JoinError]. */
static Val join(Fn *F, Node *at, Node *h, Type *t) {
    int mark = hold_mark(F);
    Val hv = hold(F, lower_expr(F, h), h->ty);
    MLocal *out = is_unit(t->a) ? NULL : tmp(F, t->a);
    MExpr *outp = out ? mx_out(mx_local(out)) : mx_sym("NULL");
    MExpr *err;
    if (at) {
        MAwait *aw;
        MExpr *args[] = {hv.e, outp};
        MExpr *fut = await_leaf(F, at, "join", 2, args, &aw);
        if (out)
            vec_push(&aw->pinned, out);
        suspend(F, at, aw);
        err = mx_field(fut, "err");
    } else {
        err = to_tmp(F, ty_prim(TY_JOIN_ERROR), mx_call("tml_join_blocking", 2, hv.e, outp)).e;
    }
    Val r = outcome_from_status(F, t, err, out ? mx_local(out) : NULL, err);
    settle(F, mark);
    release(F, hv, h->ty);
    return r;
}

/* tx.send(v): Outcome[Unit, SendError[T]]. */
static Val send(Fn *F, Node *at, Node *m) {
    int mark = hold_mark(F);
    Val ch = hold(F, lower_expr(F, m->lhs), m->lhs->ty);
    Type *et = m->lhs->ty->a;
    Val v = take(F, m->args.v[0], et);
    MLocal *slotv = tmp(F, et);
    assign(F, mx_local(slotv), v.e);
    MExpr *status;
    if (at) {
        MAwait *aw;
        MExpr *args[] = {ch.e, mx_addr(mx_local(slotv))};
        MExpr *fut = await_leaf(F, at, "send", 2, args, &aw);
        vec_push(&aw->pinned, slotv);
        if (ty_managed(et)) {   /* a dropped send that did not deliver leaves the value to us */
            MBlock *old = enter(F, &aw->undo);
            MBlock *outer;
            open_if(F, mx_binop("!=", mx_field(fut, "status"), mx_sym("TML_CHAN_OK")), &outer);
            release_place(F, mx_local(slotv), et);
            close_block(F, old);
        }
        suspend(F, at, aw);
        status = mx_field(fut, "status");
    } else {
        status = i32(F, mx_call("tml_chan_send_blocking", 2, ch.e, mx_addr(mx_local(slotv))));
    }
    Vec e = {0};
    vec_push(&e, mx_local(slotv));
    Val r = outcome_from_status(F, m->ty, status, NULL, mx_compound(m->ty->b, &e));
    settle(F, mark);
    release(F, ch, m->lhs->ty);
    return r;
}

/* rx.recv(): Outcome[T, RecvError]. */
static Val recv(Fn *F, Node *at, Node *m) {
    int mark = hold_mark(F);
    Val ch = hold(F, lower_expr(F, m->lhs), m->lhs->ty);
    MLocal *out = tmp(F, m->lhs->ty->a);
    MExpr *status;
    if (at) {
        MAwait *aw;
        MExpr *args[] = {ch.e, mx_out(mx_local(out))};
        MExpr *fut = await_leaf(F, at, "recv", 2, args, &aw);
        vec_push(&aw->pinned, out);
        suspend(F, at, aw);
        status = mx_field(fut, "status");
    } else {
        status = i32(F, mx_call("tml_chan_recv_blocking", 2, ch.e, mx_out(mx_local(out))));
    }
    Val r = outcome_from_status(F, m->ty, status, mx_local(out), NULL);
    settle(F, mark);
    release(F, ch, m->lhs->ty);
    return r;
}

/* Waits until the monotonic clock reaches `deadline` (ns): the task
 * under await, else the thread. */
static void sleep_until(Fn *F, Node *at, MExpr *deadline) {
    if (at)
        await_leaf_init(F, at, "sleep", "tml_sleep_until_init", 1, &deadline, NULL);
    else
        eval(F, mx_call("tml_sleep_blocking", 1,
                        mx_call("tml_sat_sub_i64", 2, deadline, mx_call("tml_now_ns", 0))));
}

/* sleep(d) / sleep_until(t) */
static Val sleep_(Fn *F, Node *at, Node *call) {
    if (call->builtin == BI_SLEEP_UNTIL) {
        sleep_until(F, at, lower_expr(F, call->args.v[0]).e);
        return unit_val();
    }
    MExpr *ns = dur_ns(F, call->args.v[0]);
    if (at)
        await_leaf(F, at, "sleep", 1, &ns, NULL);
    else
        eval(F, mx_call("tml_sleep_blocking", 1, ns));
    return unit_val();
}

Val lower_sleep(Fn *F, Node *call) { return sleep_(F, NULL, call); }

/* iv.tick(): waits for the interval's next deadline, returns it (an
 * Instant) and schedules the one after; missed ticks fire at once, one
 * per call, as Tokio's default (MissedTickBehavior::Burst). */
static Val tick(Fn *F, Node *at, Node *m) {
    MExpr *iv = lvalue(F, m->lhs, NULL);
    Val due = to_tmp(F, ty_prim(TY_INSTANT), mx_field(iv, "next_ns"));
    sleep_until(F, at, due.e);
    /* saturating: past I64 the next tick is "never" (INT64_MAX ns) */
    assign(F, mx_field(iv, "next_ns"), mx_call("tml_sat_add_i64", 2, due.e,
                                               mx_field(iv, "period_ns")));
    return due;
}

static Val yield_(Fn *F, Node *at) {
    if (at)
        await_leaf(F, at, "yield", 0, NULL, NULL);
    else
        eval(F, mx_call("tml_yield_blocking", 0));
    return unit_val();
}

Val lower_yield(Fn *F) { return yield_(F, NULL); }

/* ------------------------------------------------------- async calls */

/* Evaluates the arguments of an async call (owned, converted to the
 * parameter types) before the callee frame is initialised: an argument
 * may itself await, and its future shares the `aw` union. Each is held
 * until the last is evaluated; the caller then moves them into the
 * callee frame, whose drop releases them from there on, before anything
 * that can suspend. */
static Vec call_args(Fn *F, Node *call) {
    Vec vals = {0};
    int mark = hold_mark(F);
    for (int i = 0; i < call->args.n; i++) {
        Param *pa = call->fn->params.v[i];
        vec_push(&vals, take_held(F, call->args.v[i], pa->var->ty).e);
    }
    settle(F, mark);
    return vals;
}

/* A member of callee frame `frame` (a pointer when boxed). */
static MExpr *member_of(MExpr *frame, bool boxed, const char *name) {
    return boxed ? mx_arrow(frame, name) : mx_field(frame, name);
}

/* await f(args): the callee frame lives in this frame's aw union. */
static Val await_call(Fn *F, Node *at, Node *call) {
    Func *g = call->fn;
    Vec vals = call_args(F, call);
    MAwait *aw = new_await(F, at, NULL, false, g);
    MExpr *fr = aw_ref(F, at);
    if (aw->boxed) {
        MExpr *size = mx_new(MX_FRAME_SIZE, NULL);
        size->fn = g;
        assign(F, fr, mx_call("tml_alloc", 1, size));
    }
    /* Only the resume state must start at 0: parameters are stored here,
     * and the callee writes every other field before it reads it. */
    assign(F, member_of(fr, aw->boxed, "state"), mx_int(NULL, 0));
    for (int i = 0; i < vals.n; i++)
        assign(F, member_of(fr, aw->boxed, ((Param *)g->params.v[i])->var->cname), vals.v[i]);
    suspend(F, at, aw);
    Val r = unit_val();
    MBlock *old = F->cur;
    if (timed(F, at))                   /* a dropped callee has no result */
        open_if(F, mx_unop("!", mx_local(F->tmo->expired)), &old);
    if (!is_unit(g->ret))
        r = to_tmp(F, g->ret, member_of(fr, aw->boxed, "ret"));
    if (aw->boxed)
        eval(F, mx_call("tml_free", 1, fr));
    close_block(F, old);
    return r;
}

static Val timeout_(Fn *F, Node *at, Node *call);

/* A wait-capable method call `e`: awaited at `at`, or blocking the
 * thread when `at` is NULL. Returns false when `e` is none of them. */
static bool wait_method(Fn *F, Node *at, Node *e, Val *out) {
    switch (e->builtin) {
    case BI_SEND: *out = send(F, at, e); return true;
    case BI_RECV: *out = recv(F, at, e); return true;
    case BI_TICK: *out = tick(F, at, e); return true;
    case BI_LOCK: *out = lock(F, at, e); return true;
    case BI_RECV_TIMEOUT: *out = recv_timeout(F, at, e); return true;
    case BI_ACCEPT: case BI_READ: case BI_WRITE: case BI_WRITE_ALL:
        *out = net_io(F, at, e);
        return true;
    case BI_ACQUIRE: case BI_NOTIFIED: *out = permit(F, at, e); return true;
    default: return false;
    }
}

bool lower_blocking(Fn *F, Node *e, Val *out) {
    if (e->builtin == BI_JOIN) {
        *out = join(F, NULL, e->lhs, e->ty);
        return true;
    }
    return wait_method(F, NULL, e, out);
}

/* await join_all(handles): each handle awaited in turn (the tasks run
 * meanwhile), its Outcome pushed onto the result list, which a drop of
 * the frame releases with what it has so far. */
static Val join_all(Fn *F, Node *at, Node *e) {
    Type *lt = ((Node *)e->args.v[0])->ty, *ht = lt->a, *ot = e->ty->a;
    int mark = hold_mark(F);
    Val l = hold(F, lower_expr(F, e->args.v[0]), lt);
    MExpr *drop = ty_managed(ot) ? mx_sym(arena_printf("tml_vdrop_%s", ot->mangled)) : mx_sym("NULL");
    Val out = hold(F, to_tmp(F, e->ty, mx_call("tml_list_new", 3, mx_new(MX_SIZEOF, ot),
                                                mx_int(NULL, 0), drop)), e->ty);
    MExpr *i = mx_local(tmp(F, ty_prim(TY_I64)));
    assign(F, i, mx_int(NULL, 0));
    MStmt *loop = ms_new(MS_LOOP);
    loop->src = mx_binop("<", i, mx_call("tml_list_len", 1, l.e));
    put(F, loop);
    MBlock *old = enter(F, &loop->step);
    assign(F, i, mx_binop("+", i, mx_int(NULL, 1)));
    enter(F, &loop->body);
    MExpr *h = to_tmp(F, ht, mx_deref(ht, mx_call("tml_list_at", 3, l.e, i, mx_loc(e->loc)))).e;
    MLocal *res = is_unit(ot->a) ? NULL : tmp(F, ot->a);
    MAwait *aw;
    MExpr *args[] = {h, res ? mx_out(mx_local(res)) : mx_sym("NULL")};
    MExpr *fut = await_leaf(F, at, "join", 2, args, &aw);
    if (res)
        vec_push(&aw->pinned, res);
    suspend(F, at, aw);
    MExpr *err = mx_field(fut, "err");
    MExpr *slot = to_tmp(F, ot, outcome_from_status(F, ot, err, res ? mx_local(res) : NULL, err).e).e;
    eval(F, mx_call("tml_list_push", 2, out.e, mx_addr(slot)));
    close_block(F, old);
    settle(F, mark);
    release(F, l, lt);
    return out;
}

/* Awaits `e` at the await `at` (or, under timeout, beside its timer). */
Val lower_await(Fn *F, Node *at, Node *e) {
    if (e->kind == ND_CALL && e->fn && e->fn->is_async)
        return await_call(F, at, e);
    if (e->builtin == BI_TIMEOUT)
        return timeout_(F, at, e);
    if (e->builtin == BI_JOIN_FUTURES || e->builtin == BI_RACE)
        return lower_join(F, at, e);
    if (e->builtin == BI_JOIN_ALL)
        return join_all(F, at, e);
    if (e->builtin == BI_SLEEP || e->builtin == BI_SLEEP_UNTIL)
        return sleep_(F, at, e);
    if (e->builtin == BI_YIELD)
        return yield_(F, at);
    if (e->builtin == BI_CONNECT)
        return lower_net_ctor(F, at, e, true);
    Val v;
    if (wait_method(F, at, e, &v))
        return v;
    if (e->ty->kind == TY_JOIN)
        return join(F, at, e, ty_make(TY_OUTCOME, e->ty->a, ty_prim(TY_JOIN_ERROR)));
    return lower_expr(F, e);   /* Never-typed operand */
}

/* await timeout(d, fut): Outcome[T, TimeoutError]. The duration is
 * evaluated first, then fut is set up and polled beside a sleep: fut
 * first (as Tokio), so a future that is Ready at once never expires. */
static Val timeout_(Fn *F, Node *at, Node *call) {
    Timeout t = {at, dur_ns(F, call->args.v[0]), tmp(F, ty_prim(TY_I32))};
    Timeout *outer = F->tmo;
    F->tmo = &t;
    Val v = lower_await(F, at, call->args.v[1]);
    F->tmo = outer;
    Type *ot = call->ty;
    MExpr *r = mx_local(tmp(F, ot));
    zero(F, r);
    assign(F, mx_field(r, "tag"), mx_local(t.expired));
    if (!is_unit(ot->a)) {
        MBlock *old;
        open_if(F, mx_unop("!", mx_local(t.expired)), &old);
        assign(F, mx_field(r, "ok"), v.e);
        close_block(F, old);
    }
    return val(r, true);
}

/* spawn(f(args)) / block_on(f(args)) */
Val lower_spawn_or_block(Fn *F, Node *n) {
    Node *call = n->args.v[0];
    Vec vals = call_args(F, call);
    MStmt *s = ms_new(n->builtin == BI_SPAWN ? MS_SPAWN : MS_BLOCK_ON);
    s->fn = call->fn;
    s->nargs = vals.n;
    s->args = (MExpr **)vals.v;
    Val r = unit_val();
    if (!is_unit(n->ty)) {
        r = val(mx_local(tmp(F, n->ty)), true);
        s->dst = r.e;
    }
    put(F, s);
    return r;
}
