/* check_stmt.c - checking control flow, literals of structs and tuples,
 * fields, assignment, patterns and bindings. Part of the checker
 * (check.h; conventions in check.c's header comment): types if/when/loops
 * and their branches, struct literals and field accesses, assignment
 * targets (mutable bindings, guards), the patterns of let, for and when
 * arms, and constants; rejects break/continue outside a loop, assignment
 * to an immutable binding, patterns that cannot match their type. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* --------------------------------------------------- control flow */

/* The type two branches agree on: Never yields to the other one. When
 * the value is discarded, branches of different types make a Unit. */
Type *check_join_types(Node *at, Type *a, Type *b, bool discard) {
    if (a->kind == TY_NEVER)
        return b;
    if (b->kind == TY_NEVER || check_compatible(b, a))
        return a;
    if (discard)
        return T(TY_UNIT);
    diag_error(at->loc, "branches have different types: %s and %s", ty_name(a), ty_name(b));
    return a;
}

/* Is the value of `n` (an if or when) thrown away? */
bool check_discarded(Checker *c, Node *n, Type *want) {
    return c->stmt == n || (want && want->kind == TY_UNIT);
}

Type *check_block(Checker *c, Node *n, Type *want) {
    check_push_scope(c);
    Type *last = T(TY_UNIT);
    for (int i = 0; i < n->args.n; i++) {
        c->stmt = n->args.v[i];
        last = check_value(c, n->args.v[i], NULL);    /* an async call must be awaited */
    }
    Type *t = n->lhs ? check_value(c, n->lhs, want) : (last->kind == TY_NEVER ? last : T(TY_UNIT));
    check_pop_scope(c);
    return t;
}

Type *check_if_expr(Checker *c, Node *n, Type *want) {
    bool discard = check_discarded(c, n, want);
    check_expect_type(c, n->cond, T(TY_BOOL));
    Type *a = check_value(c, n->then, n->els ? want : NULL);
    if (!n->els)
        return T(TY_UNIT);
    Type *b = check_value(c, n->els, a->kind == TY_NEVER ? want : a);
    return check_join_types(n->els, a, b, discard);
}

/* The type of a when or select! arm's `body` joined with the arms'
 * `result` so far (Never: none yet; an assignment is Unit). */
static Type *arm_result(Checker *c, Node *body, Type *result, Type *want, bool discard) {
    Type *t = check_expr(c, body, result->kind == TY_NEVER ? want : result);
    if (t->kind == TY_FUTURE)
        t = check_value(c, body, NULL);
    return check_join_types(body, result, body->kind == ND_ASSIGN ? T(TY_UNIT) : t, discard);
}

Type *check_when_expr(Checker *c, Node *n, Type *want) {
    bool discard = check_discarded(c, n, want);
    int errors = diag_count();
    Type *st = check_value(c, n->cond, NULL);
    bool bad = check_failed(st, errors);
    Type *result = T(TY_NEVER);
    for (int i = 0; i < n->args.n; i++) {
        Node *arm = n->args.v[i];
        check_push_scope(c);
        for (int j = 0; j < arm->args.n; j++) {
            Node *p = arm->args.v[j];
            if (bad)
                check_never_pattern(c, p);
            else
                check_pattern(c, p, st);
            if (arm->args.n > 1 && c->scope->vars.n > 0) {
                diag_error(p->loc, "alternative patterns cannot bind names");
                break;
            }
        }
        if (arm->cond)
            check_expect_type(c, arm->cond, T(TY_BOOL));
        result = arm_result(c, arm->body, result, want, discard);
        check_pop_scope(c);
    }
    return n->args.n ? result : T(TY_UNIT);
}

static bool find_await(Node *n, void *ctx) {
    Node **found = ctx;
    if (!*found && (n->kind == ND_AWAIT || n->kind == ND_SELECT))
        *found = n;
    return !*found;
}

/* An await (or select!) inside n, else NULL; an async block's awaits
 * are in a function of their own. */
Node *check_first_await(Node *n) {
    Node *found = NULL;
    parse_walk(n, find_await, &found);
    return found;
}

/* A select! branch's awaitable (arm->init, an ND_AWAIT): typed as
 * `await` types it; its future cannot contain an await of its own (it
 * would share the frame's slot with the select's futures). */
static Type *select_future(Checker *c, Node *arm) {
    Node *inner = check_first_await(arm->init->lhs);
    if (inner)
        diag_error_hint(inner->loc, "await it in a `let` before the select!",
                        "a select! branch's future cannot itself contain an await");
    int errors = diag_count();
    Type *t = check_expr(c, arm->init, NULL);
    if (t->kind == TY_NEVER && !check_failed(t, errors) && arm->init->lhs->ty->kind == TY_NEVER)
        diag_error(arm->init->lhs->loc, "a select! branch waits on a future, not on this expression");
    return t;
}

// select = branches, each `name = future [, if cond] => body`, and `else`
Type *check_select(Checker *c, Node *n, Type *want) {
    if (!c->fn->is_async)
        diag_error_hint(n->loc, "make the enclosing function an `async func`",
                        "'select!' is only allowed inside 'async func'");
    if (n->args.n > 32)
        diag_error(n->loc, "a select! has at most 32 branches");
    else if (!n->args.n)
        diag_error(n->loc, "a select! needs at least one branch");
    bool discard = check_discarded(c, n, want);
    Type *result = T(TY_NEVER);
    for (int i = 0; i < n->args.n; i++) {
        Node *arm = n->args.v[i], *p = arm->args.v[0];
        if (arm->cond)
            check_expect_type(c, arm->cond, T(TY_BOOL));
        Type *t = &check_error_type;    /* outside async code: reported once, above */
        if (c->fn->is_async)
            t = select_future(c, arm);
        else
            check_expr(c, arm->init->lhs, NULL);
        check_push_scope(c);
        bool binds = p->kind == ND_PBIND || p->kind == ND_PWILD;
        if (!binds)
            diag_error_hint(p->loc, "bind the value to a name and match it in the body",
                            "a select! branch binds a name or `_`");
        if (!binds || t == &check_error_type)
            check_never_pattern(c, p);
        else
            check_pattern(c, p, t);
        result = arm_result(c, arm->body, result, want, discard);
        check_pop_scope(c);
    }
    return n->els ? arm_result(c, n->els, result, want, discard) : result;
}

Type *check_loop_body(Checker *c, Node *body) {
    c->loops++;
    c->repeats++;
    check_value(c, body, T(TY_UNIT));  /* its value is discarded: a tail `when`'s arms may differ */
    c->repeats--;
    c->loops--;
    return T(TY_UNIT);
}

/* A condition evaluated before each iteration. */
void check_loop_cond(Checker *c, Node *cond, Type *t) {
    c->repeats++;
    check_expect_type(c, cond, t);
    c->repeats--;
}

Type *check_loop_expr(Checker *c, Node *n) {
    check_push_scope(c);
    if (n->loop_var) {
        Node *let = n->init;
        Type *t = check_resolve_type(c, let->texpr);
        if (!ty_is_int(t))
            diag_error(let->loc, "a loop counter must have an integer type, found %s", ty_name(t));
        let->var = let->pat->var = check_declare(c, let->pat->name, t, true);
        check_loop_cond(c, n->cond, t);
    } else {
        check_loop_cond(c, n->cond, T(TY_BOOL));
    }
    check_loop_body(c, n->body);
    check_pop_scope(c);
    return T(TY_UNIT);
}

Type *check_for_expr(Checker *c, Node *n) {
    Node *r = n->cond;
    Type *t = T(TY_I64);
    if (r->kind != ND_RANGE) {
        Type *lt = check_value(c, r, NULL);
        if (lt->kind == TY_LIST)
            t = lt->a;                      /* for x in list */
        else if (lt->kind != TY_NEVER)
            diag_error_hint(r->loc, "iterate over a range: `for i in 0 to n`",
                            "'for' needs a range ('a to b' or 'a through b') or a List, not %s",
                            ty_name(lt));
    } else {
        t = check_value(c, r->lhs, NULL);
        if (!ty_is_int(t) && t->kind != TY_NEVER) {
            diag_error(r->lhs->loc, "a range bound must be an integer, found %s", ty_name(t));
            t = T(TY_I64);
        }
        check_expect_type(c, r->rhs, t);
        r->ty = t;
    }
    check_push_scope(c);
    if (n->pat->kind == ND_PBIND) {           /* else `_` (parse.c: for_expr) */
        n->var = n->pat->var = check_declare(c, n->pat->name, t, false);
        n->var->repeats++;                    /* bound anew on each pass: may move */
    }
    check_loop_body(c, n->body);
    check_pop_scope(c);
    return T(TY_UNIT);
}

Type *check_return_expr(Checker *c, Node *n) {
    if (c->fn->outer) {
        diag_error_hint(n->loc, "the block's last expression is its value",
                        "'return' cannot leave an async block");
        if (n->lhs)
            check_value(c, n->lhs, NULL);
        return T(TY_NEVER);
    }
    if (n->lhs)
        check_expect_type(c, n->lhs, c->fn->ret);
    else if (c->fn->ret->kind != TY_UNIT)
        diag_error(n->loc, "'return' needs a value of type %s", ty_name(c->fn->ret));
    return T(TY_NEVER);
}

/* ---------------------------------------------------- aggregates */

/* The library's struct literals, when no user type has the name:
 * `Duration { secs: I64, nanos: I32 }` (built as Duration::new, so nanos
 * carry), `TimeoutError {}` and `RecvError {}`. NULL: not one of them. */
static Type *lib_struct_lit(Checker *c, Node *n) {
    static const char *dur_fields[] = {"secs", "nanos"};
    bool dur = !strcmp(n->name, "Duration");
    Type *t = dur ? T(TY_DURATION)
              : !strcmp(n->name, "TimeoutError") ? T(TY_TIMEOUT_ERROR)
              : !strcmp(n->name, "RecvError") ? T(TY_RECV_ERROR) : NULL;
    if (!t)
        return NULL;
    if (n->lhs)
        diag_error(n->lhs->loc, "a '%s' literal takes no '..' base", n->name);
    Vec ordered = {0};
    for (int f = 0; f < (dur ? 2 : 0); f++) {
        int i = 0;
        while (i < n->args.n && strcmp(n->fields.v[i], dur_fields[f]))
            i++;
        if (i == n->args.n) {
            if (!n->lhs)
                diag_error(n->loc, "missing field '%s' in 'Duration'", dur_fields[f]);
            continue;
        }
        check_expect_type(c, n->args.v[i], T(f ? TY_I32 : TY_I64));
        vec_push(&ordered, n->args.v[i]);
    }
    for (int i = 0; i < n->args.n; i++)
        if (!dur || (strcmp(n->fields.v[i], "secs") && strcmp(n->fields.v[i], "nanos")))
            diag_error(((Node *)n->args.v[i])->loc, "'%s' has no field '%s'", n->name,
                       (const char *)n->fields.v[i]);
    n->args = ordered;
    n->builtin = dur ? BI_DUR_NEW : BI_NONE;
    return t;
}

Type *check_struct_lit(Checker *c, Node *n) {
    n->name = check_unalias(c, n->name);
    StructDecl *sd = check_lookup_struct(c, n->name);
    Type *lib = sd ? NULL : lib_struct_lit(c, n);
    if (lib)
        return lib;
    if (sd && sd->alias && sd->ty && sd->ty->kind == TY_STRUCT)
        sd = sd->ty->sd;                      /* an alias of a struct builds it */
    if (sd && (sd->alias || sd->is_enum)) {
        diag_error(n->loc, "'%s' is not a struct type", n->name);
        sd = NULL;
    } else if (!sd) {
        diag_error_hint(n->loc, check_type_hint(c, n->name), "unknown type '%s'", n->name);
    }
    if (!sd) {
        for (int i = 0; i < n->args.n; i++)
            check_value(c, n->args.v[i], NULL);
        return T(TY_NEVER);
    }
    bool based = false; /* `..base`: the missing fields are read from it */
    if (n->lhs) {
        Type *bt = check_value(c, n->lhs, NULL);
        based = bt == sd->ty;
        if (!based && bt->kind != TY_NEVER)
            diag_error(n->lhs->loc, "the base of a '%s' literal must be a '%s', not %s", sd->name,
                       sd->name, ty_name(bt));
    }
    /* reorder the initialisers into declaration order */
    Vec ordered = {0};
    for (int f = 0; f < sd->fields.n; f++) {
        Param *fld = sd->fields.v[f];
        Node *init = NULL;
        for (int i = 0; i < n->args.n; i++)
            if (!strcmp(n->fields.v[i], fld->name)) {
                if (init)
                    diag_error(((Node *)n->args.v[i])->loc, "field '%s' is given twice",
                               fld->name);
                init = n->args.v[i];
            }
        if (!init && based) {
            Node *base = arena_alloc(sizeof *base);
            *base = *n->lhs;
            init = arena_alloc(sizeof *init);
            init->kind = ND_FIELD;
            init->loc = n->lhs->loc;
            init->lhs = base;
            init->name = fld->name;
            init->ival = UINT64_MAX;
        }
        if (!init) {
            if (!n->lhs)
                diag_error(n->loc, "missing field '%s' in '%s'", fld->name, sd->name);
            continue;
        }
        check_expect_type(c, init, fld->var->ty);
        vec_push(&ordered, init);
    }
    for (int i = 0; i < n->args.n; i++) {
        bool known = false;
        for (int f = 0; f < sd->fields.n; f++)
            known |= !strcmp(n->fields.v[i], ((Param *)sd->fields.v[f])->name);
        if (!known)
            diag_error(((Node *)n->args.v[i])->loc, "'%s' has no field '%s'", sd->name,
                       (const char *)n->fields.v[i]);
    }
    n->args = ordered;
    return sd->ty;
}

Type *check_tuple(Checker *c, Node *n, Type *want) {
    Vec elems = {0};
    for (int i = 0; i < n->args.n; i++) {
        Type *w = want && want->kind == TY_TUPLE && want->elems.n == n->args.n
                      ? want->elems.v[i] : NULL;
        vec_push(&elems, check_value(c, n->args.v[i], w));
    }
    return ty_tuple(&elems);
}

/* A guard stands for the value it guards: wraps `n->lhs` (a guard) in a
 * dereference and returns the guarded type. */
Type *check_see_through(Node *n, Type *t) {
    Node *d = arena_alloc(sizeof *d);
    d->kind = ND_DEREF;
    d->loc = n->lhs->loc;
    d->lhs = n->lhs;
    d->ty = t->a;
    n->lhs = d;
    return t->a;
}

/* *g: the value guarded by MutexGuard g. */
Type *check_deref(Checker *c, Node *n) {
    Node *outer = c->dereffed;
    c->dereffed = n->lhs;
    Type *t = check_value(c, n->lhs, NULL);
    c->dereffed = outer;
    if (t->kind == TY_GUARD)
        return t->a;
    if (t->kind != TY_NEVER)
        diag_error_hint(n->loc, "only a MutexGuard (from `await m.lock()`) can be dereferenced",
                        "cannot dereference a value of type %s", ty_name(t));
    return T(TY_NEVER);
}

Type *check_field(Checker *c, Node *n) {
    Node *outer = c->dereffed;              /* `*s.m.get_mut()`: s.m is checked inside */
    c->dereffed = n->lhs;                   /* m.get_mut().f reads through, as *m.get_mut() */
    Type *t = check_value(c, n->lhs, NULL);
    c->dereffed = outer;
    if (t->kind == TY_NEVER)
        return t;
    if (t->kind == TY_GUARD)
        t = check_see_through(n, t);
    if (n->ival != UINT64_MAX) {
        if (t->kind == TY_TUPLE && n->ival < (uint64_t)t->elems.n)
            return t->elems.v[n->ival];
        diag_error(n->loc, "type %s has no field %s", ty_name(t), n->name);
        return T(TY_NEVER);
    }
    if (t->kind == TY_STRUCT)
        for (int i = 0; i < t->sd->fields.n; i++)
            if (!strcmp(((Param *)t->sd->fields.v[i])->name, n->name)) {
                n->ival = (uint64_t)i;
                return t->elems.v[i];
            }
    if (t->kind == TY_SEND_ERROR && !strcmp(n->name, "value"))
        return t->a;
    if (t->kind == TY_DURATION && (!strcmp(n->name, "secs") || !strcmp(n->name, "nanos")))
        return T(n->name[0] == 's' ? TY_I64 : TY_I32);
    Vec cands = {0};
    for (int i = 0; t->kind == TY_STRUCT && i < t->sd->fields.n; i++)
        vec_push(&cands, (void *)((Param *)t->sd->fields.v[i])->name);
    diag_error_hint(n->loc, check_suggest(n->name, (const char **)cands.v, cands.n),
                    "type %s has no field '%s'", ty_name(t), n->name);
    return T(TY_NEVER);
}

/* -------------------------------------------------- bindings */

Var *check_root_var(Node *n) {
    while (n->kind == ND_FIELD || n->kind == ND_DEREF ||
           (n->kind == ND_METHOD && (n->builtin == BI_GUARD_SELF || n->builtin == BI_MUTEX_GET_MUT)))
        n = n->lhs;
    return n->kind == ND_PATH ? n->var : NULL;
}

/* Does target `n` write through a guard: `*g`, or a field seen through
 * one? A guard that no variable holds (`*(await m.lock()) += 1`) grants
 * the write by itself; it is released at the end of the statement. */
static bool through_guard(Node *n) {
    for (; n->kind == ND_FIELD || n->kind == ND_DEREF; n = n->lhs)
        if (n->kind == ND_DEREF)
            return true;
    return false;
}

/* How to make v assignable: a receiver, a parameter, a local. */
static const char *mutable_hint(Var *v) {
    if (v->is_param && v == v->owner->this_var)
        return "take the receiver as `mut this`";
    if (v->is_param)
        return arena_printf("declare the parameter `mut %s: %s`", v->name, ty_name(v->ty));
    return arena_printf("declare it with `var %s` or `let mut %s`", v->name, v->name);
}

/* ------------------------------------------------------ moves */

static bool is_channel_end(const Type *t) {
    return t->kind == TY_SENDER || t->kind == TY_RECEIVER;
}

/* The variable a move at `at` (a let or an assignment) moved into. */
static const char *move_target(Node *at) {
    return at->kind == ND_LET ? at->pat->name : at->lhs->name;
}

/* Has v moved out in the function being checked, or in one an async
 * block being checked is written in? (A block's captured copy is its
 * own: moving it leaves the enclosing function's variable in place.) */
static bool moved_here(Checker *c, Var *v) {
    for (Func *f = c->fn; v->moved && f; f = f->outer)
        if (f == v->moved_in)
            return true;
    return false;
}

/* `let t = tx`, `var t = tx`, `t = tx` (at): a Sender or Receiver
 * variable copied into another variable moves there (LANG-MOVE-1), so
 * that `drop(t)` releases the only reference this function holds; a move
 * the loop would repeat is an error (an async block's loops repeat every
 * variable it captures). */
static void check_move(Checker *c, Node *e, Node *at) {
    Var *v = e->kind == ND_PATH ? e->var : NULL;
    if (!v || v->const_init || !is_channel_end(v->ty))
        return;
    if (c->repeats > (v->owner == c->fn ? v->repeats : 0)) {
        diag_error_hint(e->loc, v->ty->kind == TY_SENDER
                            ? arena_printf("write `%s.duplicate()` for a sender of its own",
                                           v->name)
                            : arena_printf("move '%s' before the loop", v->name),
                        "'%s' would be moved into '%s' again by the next pass of the loop",
                        v->name, move_target(at));
        return;
    }
    e->moves = true;
    v->moved = at;
    v->moved_in = c->fn;
}

/* A use at n of v after a move (LANG-MOVE-1): one error, at the first. */
static void moved_use(Node *n, Var *v) {
    const char *to = move_target(v->moved);
    const char *hint =
        v->ty->kind == TY_SENDER
            ? arena_printf("use '%s' from there on, or write `%s.duplicate()` there to keep "
                           "two senders (the channel closes once both are gone)", to, v->name)
            : arena_printf("use '%s' from there on", to);
    diag_error_hint(n->loc, hint, "'%s' was moved into '%s' on line %d", v->name, to,
                    v->moved->loc.line);
    v->moved = NULL;
}

Type *check_assign(Checker *c, Node *n) {
    Node *l = n->lhs;
    if (l->kind != ND_PATH && l->kind != ND_FIELD && l->kind != ND_DEREF) {
        diag_error(l->loc, "cannot assign to this expression");
        check_value(c, n->rhs, NULL);
        return T(TY_UNIT);
    }
    Var *target = l->kind == ND_PATH ? check_lookup_var(c, l->name) : NULL;
    if (target && !moved_here(c, target))
        target = NULL;
    Node *moved = target ? target->moved : NULL;    /* written, not read */
    if (target)
        target->moved = NULL;
    Type *lt = check_value(c, l, NULL);
    if (target)
        target->moved = moved;
    Var *v = check_root_var(l);
    if (v && l->kind != ND_DEREF)
        v->reads--;                 /* a target, not a read (through a guard it is one) */
    if (!v) {
        if (!through_guard(l))
            diag_error(l->loc, "cannot assign to this expression");
    } else if (v->const_init)
        diag_error(l->loc, "cannot assign to constant '%s'", v->name);
    else if (!v->mutable_)
        diag_error_hint(l->loc, mutable_hint(v), "cannot assign to immutable binding '%s'",
                        v->name);
    if (strcmp(n->op, "=")) {
        Type *rt = check_value(c, n->rhs, lt);
        bool ok = lt->kind == TY_STR ? !strcmp(n->op, "+=") && rt->kind == TY_STR
                                     : ty_is_num(lt) && check_compatible(rt, lt);
        if (!ok)
            diag_error(n->loc, "operator '%s' cannot be applied to %s and %s", n->op,
                       ty_name(lt), ty_name(rt));
    } else {
        check_expect_type(c, n->rhs, lt);
        if (l->kind == ND_PATH)
            check_move(c, n->rhs, n);
        if (target)
            target->moved = NULL;           /* it holds a new value */
    }
    return T(TY_UNIT);
}

static bool is_variant_name(const char *s) {
    return !strcmp(s, "Ok") || !strcmp(s, "Err") || !strcmp(s, "Just") || !strcmp(s, "Nothing");
}

static void join_error_pattern(Checker *c, Node *p) {
    p->variant = bi_join_error(p->name);
    int want = p->variant == check_join_os_error();
    if (p->args.n != want)
        diag_error(p->loc, "pattern '%s' takes %d field%s but %d %s given", p->name, want,
                   want == 1 ? "" : "s", p->args.n, p->args.n == 1 ? "was" : "were");
    else if (want)
        check_pattern(c, p->args.v[0], T(TY_I32));
}

/* Variant pattern against a user enum: Circle(r), Shape::Empty, Empty. */
static void enum_pattern(Checker *c, Node *p, Type *t) {
    p->kind = ND_PVARIANT;
    Variant *v = NULL;
    for (int i = 0; i < t->sd->variants.n; i++)
        if (!strcmp(((Variant *)t->sd->variants.v[i])->name, p->name))
            v = t->sd->variants.v[i];
    if (!v || (p->qual && strcmp(p->qual, t->sd->name))) {
        diag_error(p->loc, "pattern '%s' cannot match a value of type %s", p->name, ty_name(t));
        return;
    }
    p->variant = v->tag;
    if (p->args.n != v->types.n) {
        diag_error(p->loc, "pattern '%s' takes %d field%s but %d %s given", p->name,
                   v->types.n, v->types.n == 1 ? "" : "s", p->args.n,
                   p->args.n == 1 ? "was" : "were");
        return;
    }
    for (int i = 0; i < p->args.n; i++)
        check_pattern(c, p->args.v[i], v->types.v[i]);
}

/* Does the bare name `name` name a variant of enum type t? */
static bool names_variant(Type *t, const char *name) {
    if (t->kind != TY_ENUM)
        return false;
    for (int i = 0; i < t->sd->variants.n; i++)
        if (!strcmp(((Variant *)t->sd->variants.v[i])->name, name))
            return true;
    return false;
}

/* Pt { x, y: q, .. } against a value of struct type t: each named field
 * once; without `..`, every field. */
static void struct_pattern(Checker *c, Node *p, Type *t) {
    StructDecl *sd = check_lookup_struct(c, p->name);
    if (!sd || sd->ty != t || t->kind != TY_STRUCT) {
        diag_error(p->loc, "pattern '%s' cannot match a value of type %s", p->name, ty_name(t));
        return;
    }
    sd = t->sd;                                 /* through an alias */
    int *seen = arena_alloc(sizeof *seen * (size_t)(sd->fields.n + 1));
    for (int i = 0; i < p->args.n; i++) {
        Node *sub = p->args.v[i];
        int f = 0;
        while (f < sd->fields.n && strcmp(((Param *)sd->fields.v[f])->name, p->fields.v[i]))
            f++;
        if (f == sd->fields.n)
            diag_error(sub->loc, "'%s' has no field '%s'", sd->name, (const char *)p->fields.v[i]);
        else if (seen[f]++)
            diag_error(sub->loc, "field '%s' is matched twice", (const char *)p->fields.v[i]);
        else
            check_pattern(c, sub, t->elems.v[f]);
    }
    for (int f = 0; f < sd->fields.n && !p->rest; f++)
        if (!seen[f])
            diag_error_hint(p->loc, "add `..` to ignore the fields not named",
                            "pattern '%s' does not mention field '%s'", p->name,
                            ((Param *)sd->fields.v[f])->name);
}

/* A pattern against a value that failed to check (Never that came with
 * an error): its names are bound to Never, so no error follows from
 * them. A scrutinee that merely diverges still gets pattern errors. */
void check_never_pattern(Checker *c, Node *p) {
    p->ty = T(TY_NEVER);
    if (p->kind == ND_PBIND && !is_variant_name(p->name))
        p->var = check_declare(c, p->name, p->ty, p->is_var);
    for (int i = 0; i < p->args.n; i++)
        check_never_pattern(c, p->args.v[i]);
}

void check_pattern(Checker *c, Node *p, Type *t) {
    p->ty = t;
    if (p->qual)
        p->qual = check_unalias(c, p->qual);
    if (p->kind == ND_PVARIANT || p->kind == ND_PSTRUCT)
        p->name = check_unalias(c, p->name);
    if (p->kind == ND_PBIND) {  /* `use E::V as W`: a bare W matches V, binds nothing */
        const char *target = check_unalias(c, p->name);
        if (names_variant(t, target) || is_variant_name(target) ||
            (t->kind == TY_JOIN_ERROR && bi_join_error(target)))
            p->name = target;
    }
    if ((p->kind == ND_PVARIANT || (p->kind == ND_PBIND && names_variant(t, p->name))) &&
        t->kind == TY_ENUM) {
        enum_pattern(c, p, t);
        return;
    }
    if ((p->kind == ND_PBIND || p->kind == ND_PVARIANT) && t->kind == TY_JOIN_ERROR &&
        bi_join_error(p->name)) {
        p->kind = ND_PVARIANT;
        join_error_pattern(c, p);
        return;
    }
    if (p->kind == ND_PBIND && is_variant_name(p->name))
        p->kind = ND_PVARIANT;
    switch (p->kind) {
    case ND_PWILD:
        return;
    case ND_PBIND:
        p->var = check_declare(c, p->name, t, p->is_var);
        return;
    case ND_PSTRUCT:
        struct_pattern(c, p, t);
        return;
    case ND_POR: {
        int before = c->scope->vars.n;
        for (int i = 0; i < p->args.n; i++)
            check_pattern(c, p->args.v[i], t);
        if (c->scope->vars.n > before)
            diag_error(p->loc, "alternative patterns cannot bind names");
        return;
    }
    case ND_PLIT: {
        Type *lt = check_value(c, p->lhs, t);
        if (!check_compatible(lt, t) || !(is_primitive(t)))
            diag_error(p->loc, "pattern of type %s cannot match a value of type %s",
                       ty_name(lt), ty_name(t));
        else if (p->rhs && !(ty_is_num(t) || t->kind == TY_CHAR))
            diag_error(p->loc, "a range pattern needs numbers or characters, not %s", ty_name(t));
        if (p->rhs)
            check_expect_type(c, p->rhs, t);
        return;
    }
    case ND_PTUPLE:
        if (t->kind != TY_TUPLE || t->elems.n != p->args.n) {
            diag_error(p->loc, "tuple pattern cannot match a value of type %s", ty_name(t));
            return;
        }
        for (int i = 0; i < p->args.n; i++)
            check_pattern(c, p->args.v[i], t->elems.v[i]);
        return;
    case ND_PVARIANT: {
        bool outcome = !strcmp(p->name, "Ok") || !strcmp(p->name, "Err");
        bool maybe = !strcmp(p->name, "Just") || !strcmp(p->name, "Nothing");
        if ((!outcome && !maybe) || t->kind != (outcome ? TY_OUTCOME : TY_MAYBE)) {
            diag_error(p->loc, "pattern '%s' cannot match a value of type %s", p->name,
                       ty_name(t));
            return;
        }
        p->variant = !strcmp(p->name, "Err") || !strcmp(p->name, "Just");
        int want = strcmp(p->name, "Nothing") ? 1 : 0;
        if (p->args.n != want) {
            diag_error(p->loc, "pattern '%s' takes %d field%s but %d %s given", p->name, want,
                       want == 1 ? "" : "s", p->args.n, p->args.n == 1 ? "was" : "were");
            return;
        }
        if (want)
            check_pattern(c, p->args.v[0], !strcmp(p->name, "Err") ? t->b : t->a);
        return;
    }
    default:
        diag_error(p->loc, "invalid pattern");
    }
}

/* The first part of `n` that is not a literal, an operator or a
 * constant, or NULL when `n` is a constant expression. */
static Node *not_constant(Node *n) {
    Node *bad;
    switch (n->kind) {
    case ND_INT: case ND_FLOAT: case ND_BOOL: case ND_CHAR: case ND_UNIT:
        return NULL;
    case ND_STR:
        return n->args.n ? n : NULL;        /* no interpolation */
    case ND_PATH:
        return n->var && n->var->const_init ? NULL : n;
    case ND_UNARY: case ND_CAST:
        return not_constant(n->lhs);
    case ND_BINARY:
        return (bad = not_constant(n->lhs)) ? bad : not_constant(n->rhs);
    case ND_TERNARY:
        if ((bad = not_constant(n->cond)) || (bad = not_constant(n->then)))
            return bad;
        return not_constant(n->els);
    default:
        return n;
    }
}

// const NAME: T = expr   (top level or in a block)
Type *check_constant(Checker *c, Node *n) {
    Type *t = check_resolve_type(c, n->texpr);
    check_expect_type(c, n->init, t);
    Node *bad = not_constant(n->init);
    if (bad)
        diag_error(bad->loc, "a constant's value must be built from literals, operators "
                             "and earlier constants");
    Var *v = check_declare(c, n->pat->name, t, false);
    v->const_init = n->init;
    n->var = n->pat->var = v;
    return T(TY_UNIT);
}

/* `let f = work(a, b)`: f holds the unstarted future (section 5). The
 * arguments are evaluated now, into hidden locals: the statement becomes
 * `let (__argN, __argM) = (a, b)` (`let _ = ()` without arguments), and f
 * keeps the call `work(__argN, __argM)`, which its one use becomes
 * (future_use). */
static Type *future_let(Checker *c, Node *n, Type *t) {
    Node *call = n->init, *later = arena_alloc(sizeof *later);
    *later = *call;
    later->args = (Vec){0};
    Node *vals = check_new_node(call->args.n ? ND_TUPLE : ND_UNIT, call->loc, NULL);
    Node *pat = check_new_node(call->args.n ? ND_PTUPLE : ND_PWILD, n->pat->loc, NULL);
    Vec types = {0};
    for (int i = 0; i < call->args.n; i++) {
        Node *a = check_arg(call, i);
        const char *name = arena_printf("__arg%d", ++c->next_id);
        vec_push(&vals->args, a);
        vec_push(&pat->args, check_new_node(ND_PBIND, a->loc, name));
        vec_push(&later->args, check_new_node(ND_PATH, a->loc, name));
        vec_push(&types, a->ty);
    }
    vals->ty = call->args.n ? ty_tuple(&types) : T(TY_UNIT);
    check_pattern(c, pat, vals->ty);
    Var *v = check_declare(c, n->pat->name, t, false);
    v->future = later;
    n->pat = pat;
    n->init = vals;
    return T(TY_UNIT);
}

/* A use of future local v (at n): only as the operand of await, spawn,
 * block_on or timeout, once, and not inside a loop that it was declared
 * outside of. The use becomes the stored call. */
static Type *future_use(Checker *c, Node *n, Var *v) {
    bool again = v->reads++ > 0;
    if (c->started != n)
        diag_error_hint(n->loc, arena_printf("write `await %s`, `spawn(%s)` or `block_on(%s)`",
                                             v->name, v->name, v->name),
                        "'%s' holds an unstarted future, which only await, spawn or "
                        "block_on can run", v->name);
    else if (again)
        diag_error_hint(n->loc, "a future runs once: call the async function again for another",
                        "the future in '%s' was already run", v->name);
    else if (c->repeats > v->repeats)
        diag_error_hint(n->loc, "call the async function inside the loop",
                        "the future in '%s' would be run again by the loop", v->name);
    else if (v->future->fn && v->future->fn->outer) {    /* an async block's call */
        *n = *v->future;
        for (int i = 0; i < n->args.n; i++)
            check_value(c, check_arg(n, i), NULL);
        return ty_future(n->fn);
    } else {
        *n = *v->future;
        return check_call(c, n, NULL);
    }
    return &check_error_type;
}

Type *check_let(Checker *c, Node *n) {
    if (n->is_const)
        return check_constant(c, n);
    int errors = diag_count();
    Type *t = n->texpr ? check_resolve_type(c, n->texpr) : NULL;
    Type *ann = t == &check_error_type ? NULL : t;    /* no errors about the initializer */
    if (n->init) {
        bool may_hold = !n->texpr && n->pat->kind == ND_PBIND &&
                        (n->init->kind == ND_CALL || n->init->kind == ND_ASYNC_BLOCK);
        Type *it = may_hold ? check_expr(c, n->init, NULL) : check_value(c, n->init, ann);
        if (it->kind == TY_FUTURE && diag_count() > errors)
            it = &check_error_type;   /* a call with errors (arguments unchecked): no more */
        else if (it->kind == TY_FUTURE)
            return future_let(c, n, it);
        if (ann && !check_compatible(it, ann))
            check_mismatch(n->init, it, ann);
        if (!ann && !n->texpr)  /* a diverging init gives Unit; an erroneous one the */
            t = check_failed(it, errors) ? &check_error_type        /* error type: no more errors */
                : it->kind == TY_NEVER ? T(TY_UNIT) : it;
    } else if (n->pat->kind != ND_PBIND) {
        diag_error(n->loc, "a binding without an initializer must name one variable");
        return T(TY_UNIT);
    } else if (ty_managed(t) && t->kind != TY_STR) {
        diag_error(n->loc, "a binding of type %s needs an initializer", ty_name(t));
    }
    if (n->pat->kind == ND_PBIND && !is_variant_name(n->pat->name)) {
        n->pat->ty = t;
        if (n->init)
            check_move(c, n->init, n);
        n->var = n->pat->var = check_declare(c, n->pat->name, t, n->is_var || n->pat->is_var || !n->init);
    } else if (n->pat->kind == ND_PTUPLE || n->pat->kind == ND_PWILD ||
               n->pat->kind == ND_PSTRUCT) {
        if (t->kind == TY_NEVER)    /* only from an erroneous initializer or annotation */
            check_never_pattern(c, n->pat);
        else
            check_pattern(c, n->pat, t);
    } else {
        diag_error(n->pat->loc, "this pattern is not allowed in 'let'; use 'when'");
    }
    return T(TY_UNIT);
}

Type *check_path(Checker *c, Node *n, Type *want) {
    Var *v = n->qual ? NULL : check_lookup_var(c, n->name);
    if (!v && !n->qual && !strcmp(n->name, "self"))
        v = check_lookup_var(c, "this");                  /* `self` = `this` */
    if (v && v->future)
        return future_use(c, n, v);
    if (v && moved_here(c, v))
        moved_use(n, v);
    if (v) {
        n->var = v;
        v->reads++;
        if (c->fn->outer && !v->const_init && v->owner != c->fn)
            check_capture(c, v);
        return v->ty;
    }
    if (n->qual)
        n->qual = check_unalias(c, n->qual);
    else
        n->name = check_unalias(c, n->name);
    Variant *variant = check_lookup_variant(c, n, n->qual, n->name, want);
    if (variant)
        return check_variant_ctor(c, n, variant);
    if (!strcmp(n->name, "Nothing"))
        return check_enum_ctor(c, n, "Nothing", want);
    bool bare = !n->qual;
    if ((bare || !strcmp(n->qual, "JoinError")) && bi_join_error(n->name)) {
        n->builtin = BI_JOIN_ERROR;             /* payload-free JoinError values */
        n->variant = bi_join_error(n->name);
        if (n->variant == check_join_os_error())
            diag_error_hint(n->loc, "write `OsError(code)`",
                            "variant 'OsError' takes 1 field but 0 were given");
        return T(TY_JOIN_ERROR);
    }
    if ((bare && bi_ordering(n->name) >= 0) || (n->qual && !strcmp(n->qual, "Ordering"))) {
        n->builtin = BI_ORDERING;
        n->variant = bi_ordering(n->name);
        if (n->variant < 0) {
            Vec names = {0};
            for (int k = 0; bi_ordering_name(k); k++)
                vec_push(&names, (void *)bi_ordering_name(k));
            diag_error_hint(n->loc, check_suggest(n->name, (const char **)names.v, names.n),
                            "no ordering 'Ordering::%s'", n->name);
        }
        return T(TY_ORDERING);
    }
    Func *f = check_lookup_func(c, n->name);
    if (f) {
        diag_error_hint(n->loc, arena_printf("call it: `%s(...)`", f->name),
                        "function '%s' used as a value", n->name);
        return T(TY_NEVER);
    }
    diag_error_hint(n->loc, check_name_hint(c, n->name), "unknown name '%s'", n->name);
    return T(TY_NEVER);
}
