/* check_call.c - checking calls: user functions and methods, the
 * builtin library (typed by builtins.c's table and its hooks), operators
 * and casts, `await` and `timeout`. Part of the checker (check.h; the
 * conventions and what is rejected are in check.c's header comment):
 * sets each call's type, Node.fn or Node.builtin, and reports wrong
 * argument counts and types, unknown methods (with did-you-mean hints),
 * async calls used without await or spawn, wait-capable operations
 * without await in async code, and what cannot be awaited. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---------------------------------------------------------- calls */

static bool check_argc(Node *n, const char *name, int lo, int hi) {
    if (n->args.n >= lo && n->args.n <= hi)
        return true;
    if (lo == hi)
        diag_error(n->loc, "'%s' takes %d argument%s but %d %s given", name, lo,
                   lo == 1 ? "" : "s", n->args.n, n->args.n == 1 ? "was" : "were");
    else
        diag_error(n->loc, "'%s' takes %d to %d arguments but %d %s given", name, lo, hi,
                   n->args.n, n->args.n == 1 ? "was" : "were");
    return false;
}

Node *check_arg(Node *n, int i) { return n->args.v[i]; }

/* Shape::Circle(r), Circle(r) or, payload-free, Shape::Empty / Empty. */
Type *check_variant_ctor(Checker *c, Node *n, Variant *v) {
    if (v == &check_ambiguous) {
        for (int i = 0; i < n->args.n; i++)
            check_value(c, n->args.v[i], NULL);
        return T(TY_NEVER);
    }
    n->builtin = BI_VARIANT;
    n->variant = v->tag;
    int want = v->types.n, got = n->kind == ND_CALL ? n->args.n : 0;
    if (got != want)
        diag_error(n->loc, "variant '%s' takes %d field%s but %d %s given", v->name, want,
                   want == 1 ? "" : "s", got, got == 1 ? "was" : "were");
    else
        for (int i = 0; i < got; i++)
            check_expect_type(c, n->args.v[i], v->types.v[i]);
    return v->owner->ty;
}

static Type *user_call(Checker *c, Node *n, Func *f) {
    n->fn = f;
    if (f->broken) {                /* its parameters are unknown: no complaints */
        for (int i = 0; i < n->args.n; i++)
            check_value(c, check_arg(n, i), NULL);
        return f->is_async ? ty_future(f) : f->ret;
    }
    if (check_argc(n, f->name, f->params.n, f->params.n))
        for (int i = 0; i < n->args.n; i++)
            check_expect_type(c, check_arg(n, i), ((Param *)f->params.v[i])->var->ty);
    return f->is_async ? ty_future(f) : f->ret;
}

/* The operand of spawn/block_on/await: a call of an async function. */
static Func *async_operand(Checker *c, Node *e, const char *what) {
    Node *outer = c->started;
    c->started = e;
    Type *t = check_expr(c, e, NULL);
    c->started = outer;
    if (t->kind == TY_FUTURE)
        return t->fn;
    if (t->kind != TY_NEVER)
        diag_error(e->loc, "%s needs a call of an async function, found %s", what, ty_name(t));
    return NULL;
}

Type *check_enum_ctor(Checker *c, Node *n, const char *name, Type *want) {
    bool outcome = !strcmp(name, "Ok") || !strcmp(name, "Err");
    n->builtin = BI_ENUM_CTOR;
    bool known = want && want->kind == (outcome ? TY_OUTCOME : TY_MAYBE);
    if (!known && !strcmp(name, "Just") && n->args.n == 1) {   /* Maybe of the payload's type */
        Type *t = check_value(c, check_arg(n, 0), NULL);
        n->variant = 1;
        return t->kind == TY_NEVER ? t : ty_make(TY_MAYBE, t, NULL);
    }
    if (!known && want == &check_error_type) {        /* a field or parameter of an unknown type */
        for (int i = 0; i < n->args.n; i++)
            check_value(c, check_arg(n, i), NULL);
        return want;
    }
    if (!known) {
        diag_error_hint(n->loc, "annotate the binding, e.g. `let x: Outcome[I64, Str] = ...`",
                        "cannot infer the type of '%s' here", name);
        for (int i = 0; i < n->args.n; i++)
            check_value(c, check_arg(n, i), NULL);
        return T(TY_NEVER);
    }
    n->variant = !strcmp(name, "Err") || !strcmp(name, "Just");
    if (!strcmp(name, "Nothing"))
        return want;
    if (check_argc(n, name, 1, 1))
        check_expect_type(c, check_arg(n, 0), !strcmp(name, "Err") ? want->b : want->a);
    return want;
}

/* A library type the prelude declares (NetError, TryRecvError...), which
 * the program must not redefine; `fn` names the function returning it. */
static Type *lib_type(Checker *c, Node *n, const char *fn, const char *name) {
    StructDecl *sd = check_lookup_struct(c, name);
    if (parse_is_prelude(&sd->loc))
        return sd->ty;
    diag_error(n->loc, "'%s' returns the library type %s, which this program redefines", fn,
               name);
    return T(TY_NEVER);
}

typedef struct Prelude {
    Checker *c;
    Node *n;
    const char *fn;
} Prelude;

static Type *prelude_type(void *ctx, const char *name) {
    Prelude *p = ctx;
    return lib_type(p->c, p->n, p->fn, name);
}

/* Argument i of n against the parameter descriptor `desc`. */
static void lib_arg(Checker *c, Node *n, int i, const char *desc, Type *self) {
    if (strcmp(desc, BI_ADDR)) {
        check_expect_type(c, check_arg(n, i), bi_type(desc, self, NULL, NULL));
        return;
    }
    Type *a = check_value(c, check_arg(n, i), NULL);
    if (a->kind != TY_STR && a->kind != TY_SOCKADDR && a->kind != TY_NEVER)
        diag_error(check_arg(n, i)->loc, "type mismatch: expected SocketAddr or Str, found %s",
                   ty_name(a));
}

/* The arguments of n, which has b's arity, against b's parameters, then
 * b's result (Self = self). */
static Type *lib_result(Checker *c, Node *n, const Builtin *b, Type *self) {
    for (int i = 0; i < n->args.n; i++)
        lib_arg(c, n, i, b->params[i], self);
    Prelude p = {c, n, b->name};
    return bi_type(b->result, self, prelude_type, &p);
}

static Type *printable_arg(Checker *c, Node *a) {
    Type *t = check_value(c, a, NULL);
    if (!is_primitive(t) && t->kind != TY_NEVER && t->kind != TY_DURATION)
        diag_error(a->loc, "cannot print a value of type %s", ty_name(t));
    return t;
}

/* Arc::new(e) is e (section 9 MAY). */
static Type *arc_new(Checker *c, Node *n, Type *want) {
    if (!check_argc(n, "Arc::new", 1, 1))
        return T(TY_NEVER);
    *n = *check_arg(n, 0);
    return check_expr(c, n, want);
}

static Type *list_new(Checker *c, Node *n, Node *callee, Type *want) {
    Type *el = callee->targs.n == 1 ? check_resolve_type(c, callee->targs.v[0])
               : want && want->kind == TY_LIST ? want->a : NULL;
    if (check_argc(n, "List::new", 0, 1) && n->args.n)
        check_expect_type(c, check_arg(n, 0), T(TY_I64));
    if (!el) {
        diag_error_hint(n->loc, "write `List[I64]::new(8)`", "'List::new' needs its element type");
        return T(TY_NEVER);
    }
    return ty_make(TY_LIST, el, NULL);
}

static Type *mutex_new(Checker *c, Node *n, Node *callee, Type *want) {
    if (!check_argc(n, "Mutex::new", 1, 1))
        return T(TY_NEVER);
    Type *el = callee->targs.n == 1 ? check_resolve_type(c, callee->targs.v[0])
               : want && want->kind == TY_MUTEX ? want->a : NULL;
    Type *t = el ? check_expect_type(c, check_arg(n, 0), el) : check_value(c, check_arg(n, 0), NULL);
    return t->kind == TY_NEVER ? t : ty_make(TY_MUTEX, el ? el : t, NULL);
}

static Type *drop_call(Checker *c, Node *n) {
    if (!check_argc(n, "drop", 1, 1))
        return T(TY_UNIT);
    Type *t = check_value(c, check_arg(n, 0), NULL);
    bool droppable = t->kind == TY_GUARD || t->kind == TY_SENDER || t->kind == TY_RECEIVER;
    if (t->kind != TY_NEVER && (!droppable || check_arg(n, 0)->kind != ND_PATH))
        diag_error_hint(check_arg(n, 0)->loc, "let the value go out of scope instead",
                        "'drop' releases a MutexGuard, Sender or Receiver held in a variable");
    return T(TY_UNIT);
}

/* assert_eq / assert_ne */
static Type *assert_cmp(Checker *c, Node *n, const Builtin *b) {
    if (check_argc(n, b->name, b->lo, b->hi)) {
        Type *t = check_value(c, check_arg(n, 0), NULL);
        if (!is_primitive(t) && t->kind != TY_NEVER && t->kind != TY_DURATION &&
            !(t->kind == TY_ENUM && !t->elems.n))
            diag_error_hint(check_arg(n, 0)->loc,
                            "it takes numbers, Bool, Char, Str, Duration and enums without payloads",
                            "cannot compare a value of type %s with '%s'", ty_name(t), b->name);
        check_expect_type(c, check_arg(n, 1), t);
        if (n->args.n == 3)
            check_expect_type(c, check_arg(n, 2), T(TY_STR));
    }
    return T(TY_UNIT);
}

/* spawn / block_on */
static Type *spawn_call(Checker *c, Node *n, const Builtin *b) {
    bool spawn = b->id == BI_SPAWN;
    if (!check_argc(n, b->name, 1, 1))
        return T(TY_NEVER);
    if (!spawn && c->fn->is_async)
        diag_error_hint(n->loc, "use `await` instead",
                        "'block_on' cannot be called inside an async func");
    Func *f = async_operand(c, check_arg(n, 0), arena_printf("'%s'", b->name));
    if (!f)                     /* an operand of the error type passes it on */
        return check_arg(n, 0)->ty == &check_error_type ? &check_error_type : T(TY_NEVER);
    f->spawned = true;
    return spawn ? ty_make(TY_JOIN, f->ret, NULL) : f->ret;
}

/* n (join, race, join_all) must be the operand of an await. */
static bool must_be_awaited(Checker *c, Node *n, const Builtin *b) {
    bool awaited = c->awaited == n;
    c->awaited = NULL;
    if (!awaited)
        diag_error_hint(n->loc, arena_printf("write `await %s(...)` inside an async func", b->name),
                        "'%s' must be awaited", b->name);
    return awaited;
}

/* join(a, b, ...) / race(a, b, ...): each argument is awaited side by
 * side (it becomes an `await` node, checked as one; a future inside it
 * may not await: see check_select). join gives the tuple of the
 * results, race the first result (all of one type). */
static Type *join_futures(Checker *c, Node *n, const Builtin *b) {
    must_be_awaited(c, n, b);
    if (!check_argc(n, b->name, b->lo, b->hi))
        return T(TY_NEVER);
    Vec types = {0};
    Type *first = T(TY_NEVER);
    for (int i = 0; i < n->args.n; i++) {
        Node *a = check_arg(n, i), *inner = check_first_await(a);
        if (inner)
            diag_error_hint(inner->loc, arena_printf("await it in a `let` before the %s", b->name),
                            "a future under '%s' cannot itself contain an await", b->name);
        Node *w = check_new_node(ND_AWAIT, a->loc, NULL);
        w->lhs = a;
        n->args.v[i] = w;
        Type *t = check_expr(c, w, NULL);
        vec_push(&types, t);
        if (b->id == BI_RACE)
            first = check_join_types(a, first, t, false);
    }
    return b->id == BI_RACE ? first : ty_tuple(&types);
}

/* join_all(handles): List[Outcome[T, JoinError]], the handles' results
 * in the list's order. */
static Type *join_all(Checker *c, Node *n, const Builtin *b) {
    must_be_awaited(c, n, b);
    if (!check_argc(n, b->name, 1, 1))
        return T(TY_NEVER);
    int errors = diag_count();
    Type *t = check_value(c, check_arg(n, 0), NULL);
    if (check_failed(t, errors))
        return &check_error_type;
    if (t->kind != TY_LIST || t->a->kind != TY_JOIN) {
        diag_error(check_arg(n, 0)->loc, "'join_all' takes a List of JoinHandles, not %s",
                   ty_name(t));
        return &check_error_type;
    }
    return ty_make(TY_LIST, ty_make(TY_OUTCOME, t->a->a, T(TY_JOIN_ERROR)), NULL);
}

/* channel[T](cap?) / bounded_channel[T](cap) */
static Type *channel_call(Checker *c, Node *n, Node *callee, const Builtin *b) {
    if (callee->targs.n != 1) {
        diag_error_hint(n->loc, "write `channel[I64](16)`", "'%s' needs its element type",
                        b->name);
        return T(TY_NEVER);
    }
    Type *el = check_resolve_type(c, callee->targs.v[0]);
    if (check_argc(n, b->name, b->lo, b->hi) && n->args.n == 1)
        check_expect_type(c, check_arg(n, 0), T(TY_I64));
    Vec pair = {0};
    vec_push(&pair, ty_make(TY_SENDER, el, NULL));
    vec_push(&pair, ty_make(TY_RECEIVER, el, NULL));
    return ty_tuple(&pair);
}

/* The offset of n's leftmost token. */
static int leftmost(Node *n) {
    int off = n->loc.off;
    if (n->lhs && (n->kind == ND_METHOD || n->kind == ND_FIELD || n->kind == ND_CALL ||
                   n->kind == ND_AWAIT)) {
        int l = leftmost(n->lhs);
        off = l < off ? l : off;
    }
    return off;
}

/* The source text of the call n, from its leftmost token through the `)`
 * that closes its arguments, for a hint; NULL unless that is one line,
 * its brackets balance and it is short. */
static const char *call_text(Node *n) {
    const char *text = n->loc.src->text;
    int start = leftmost(n), i = start, depth = 0;
    for (; text[i] && text[i] != '\n'; i++) {
        if (text[i] == '"' || text[i] == '\'') {          /* a literal: skip it */
            char q = text[i];
            while (text[++i] && text[i] != q && text[i] != '\n')
                i += text[i] == '\\' && text[i + 1];
            if (text[i] != q)
                return NULL;
        } else if (text[i] == '(' || text[i] == ')') {
            depth += text[i] == '(' ? 1 : -1;
            if (depth < 0)                  /* `(await h).x()`: its `(` is left of start */
                return NULL;
            if (!depth && i > n->loc.off)
                break;
        }
    }
    if (text[i] != ')' || i - start > 60)
        return NULL;
    return arena_strndup(text + start, (size_t)(i + 1 - start));
}

/* A wait-capable operation b (builtins.c: `waits`, with a blocking form)
 * at n that is not the operand of await or timeout: inside an async func
 * it would block its worker thread (TML-SUBSET.md section 5, DIAG-MISSING-AWAIT-1).
 * `thread::sleep(d)` and `thread::yield_now()` block on purpose. */
static void check_blocking(Checker *c, Node *n, const Builtin *b) {
    bool thread = n->kind == ND_CALL && n->lhs->qual && !strcmp(n->lhs->qual, "thread");
    if (!b->waits || !b->blocking || !c->fn->is_async || c->started == n || thread)
        return;
    const char *src = call_text(n);
    const char *hint = src ? arena_printf("write `await %s`", src)
                           : arena_printf("write `await` before the call to '%s'", b->name);
    diag_error_hint(n->loc, arena_printf("%s; without it the call blocks a worker thread", hint),
                    "'%s' must be awaited inside an async func", b->name);
}

/* A call of the library function b (builtins.c's table). */
static Type *lib_call(Checker *c, Node *n, Node *callee, const Builtin *b, Type *want) {
    n->builtin = b->id;
    switch (b->hook) {
    case BH_PRINT:
        if (check_argc(n, b->name, 1, 1))
            printable_arg(c, check_arg(n, 0));
        return T(TY_UNIT);
    case BH_ASSERT_CMP: return assert_cmp(c, n, b);
    case BH_SPAWN: return spawn_call(c, n, b);
    case BH_TIMEOUT: return check_timeout_call(c, n);
    case BH_JOIN_FUTURES: return join_futures(c, n, b);
    case BH_JOIN_ALL: return join_all(c, n, b);
    case BH_CHANNEL: return channel_call(c, n, callee, b);
    case BH_DROP: return drop_call(c, n);
    case BH_ARC_NEW: return arc_new(c, n, want);
    case BH_LIST_NEW: return list_new(c, n, callee, want);
    case BH_MUTEX_NEW: return mutex_new(c, n, callee, want);
    default: break;
    }
    check_blocking(c, n, b);
    Type *self = b->qual ? bi_type(b->qual, NULL, NULL, NULL) : NULL;
    const char *shown = b->qual && !(b->flags & BF_SHORT) ? arena_printf("%s::%s", b->qual, b->name)
                                                          : b->name;
    if (!check_argc(n, shown, b->lo, b->hi)) {
        Type *t = bi_type(b->result, self, NULL, NULL);   /* NULL: it names a prelude type */
        return t ? t : T(TY_NEVER);
    }
    return lib_result(c, n, b, self);
}

/* `Duration::x(...)`, `TcpStream::x(...)`: a closed library type without x. */
static Type *no_lib_function(Node *n, Node *callee) {
    Vec cands = {0};
    for (int i = 0; bi_row(i); i++)
        if (bi_row(i)->qual && !strcmp(bi_row(i)->qual, callee->qual))
            vec_push(&cands, (void *)bi_row(i)->name);
    diag_error_hint(n->loc, check_suggest(callee->name, (const char **)cands.v, cands.n),
                    "no function '%s::%s'", callee->qual, callee->name);
    return T(TY_NEVER);
}

static Type *builtin_call(Checker *c, Node *n, Node *callee, Type *want) {
    const char *name = callee->name;
    const Builtin *b = bi_function(callee->qual, name);
    if (b)
        return lib_call(c, n, callee, b, want);
    if (callee->qual && bi_closed(callee->qual))
        return no_lib_function(n, callee);
    if (!strcmp(name, "Ok") || !strcmp(name, "Err") || !strcmp(name, "Just"))
        return check_enum_ctor(c, n, name, want);
    static const char *maps[] = {"HashMap", "HashSet", "BTreeMap", "BTreeSet", "Map", NULL};
    bool is_map = false;
    for (int i = 0; maps[i] && callee->qual; i++)
        is_map |= !strcmp(callee->qual, maps[i]);
    if (is_map)
        diag_error_hint(n->loc, "use a List of (key, value) tuples",
                        "maps ('%s') are not supported in this TML subset", callee->qual);
    else if (callee->qual && !strcmp(callee->qual, "Rc"))
        diag_error_hint(n->loc, "Mutex, atomics, channels and JoinHandle are handles whose "
                        "copies share one object: pass the value itself",
                        "'%s' is not supported in this TML subset", callee->qual);
    else
        diag_error_hint(n->loc, check_name_hint(c, name), "unknown function '%s'", name);
    for (int i = 0; i < n->args.n; i++)
        check_value(c, check_arg(n, i), NULL);
    return T(TY_NEVER);
}

Func *check_lookup_method(Checker *c, const char *type, const char *name) {
    return map_get(&c->methods, arena_printf("%s::%s", type, name));
}

Type *check_call(Checker *c, Node *n, Type *want) {
    Node *callee = n->lhs;
    if (callee->kind != ND_PATH) {
        diag_error(n->loc, "only named functions can be called");
        return T(TY_NEVER);
    }
    if (callee->qual)
        callee->qual = check_unalias(c, callee->qual);
    else if (!check_lookup_var(c, callee->name))
        callee->name = check_unalias(c, callee->name);
    Func *m = callee->qual ? check_lookup_method(c, callee->qual, callee->name) : NULL;
    if (m && m->receiver && !m->broken) {
        diag_error_hint(n->loc, arena_printf("call it on a value: `x.%s(...)`", m->name),
                        "'%s::%s' is a method", m->owner, m->name);
        return m->ret;
    }
    if (m)
        return user_call(c, n, m);
    Func *f = callee->qual ? NULL : check_lookup_func(c, callee->name);
    if (f && !check_lookup_var(c, callee->name))
        return user_call(c, n, f);
    Variant *v = check_lookup_variant(c, n, callee->qual, callee->name, want);
    if (v)
        return check_variant_ctor(c, n, v);
    if (check_lookup_var(c, callee->name)) {
        diag_error(n->loc, "'%s' is a variable, not a function", callee->name);
        return T(TY_NEVER);
    }
    StructDecl *sd = callee->qual ? check_lookup_struct(c, callee->qual) : NULL;
    if (sd && !sd->alias) {              /* a declared type shadows the library's functions */
        diag_error_hint(n->loc, arena_printf("'%s' is the type this program declares, which hides "
                                             "the library's", sd->name),
                        "no function '%s::%s'", callee->qual, callee->name);
        for (int i = 0; i < n->args.n; i++)
            check_value(c, check_arg(n, i), NULL);
        return T(TY_NEVER);
    }
    return builtin_call(c, n, callee, want);
}

/* -------------------------------------------------------- methods */

/* The type of the library method m (its arity checked) on a receiver of
 * type rt: the row's rule, parameters and result. */
static Type *method_result(Checker *c, Node *n, const Builtin *m, Type *rt) {
    check_blocking(c, n, m);
    switch (m->hook) {
    case BH_UNDER_STAR:
        if (c->dereffed != n)
            diag_error_hint(n->loc, "write `*m.get_mut() = v` (or lock it)",
                            "'get_mut' gives the value in place, only under '*'");
        break;
    case BH_MUTABLE_RECV: {
        Var *v = check_root_var(n->lhs);
        if (!v || !v->mutable_)
            diag_error_hint(n->lhs->loc, "declare it with `var`",
                            "'tick' advances its interval, which must be a mutable variable");
        break;
    }
    case BH_INT_ATOMIC:
        if (rt->a->kind == TY_BOOL)
            diag_error(n->loc, "'%s' needs an integer atomic, not %s", m->name, ty_name(rt));
        break;
    default: break;
    }
    if (m->id == BI_UNWRAP && rt->kind == TY_OUTCOME)    /* its panic shows the error */
        n->err_to_string = check_to_string(c, rt->b);
    return lib_result(c, n, m, rt);
}


/* recv.name(args) where recv's type has `name` in an impl block. */
Type *check_user_method(Checker *c, Node *n, Func *m) {
    if (m->broken)                  /* its receiver is unknown too: no complaints */
        return user_call(c, n, m);
    if (!m->receiver) {
        diag_error_hint(n->loc, arena_printf("call it as `%s::%s(...)`", m->owner, m->name),
                        "'%s::%s' takes no receiver", m->owner, m->name);
        return m->ret;
    }
    if (m->receiver == 2) {
        Var *v = check_root_var(n->lhs);
        if (!v || !v->mutable_)
            diag_error_hint(n->lhs->loc, "call it on a variable declared with `var`",
                            "'%s' changes its receiver, which must be a mutable variable",
                            m->name);
    }
    return user_call(c, n, m);
}

/* Does `g.name(args)`, g a guard of type t, call the guard's own get,
 * get_mut or deref rather than a method of the guarded value? Methods see
 * through guards (section 6.3), so a method the guarded type declares wins,
 * except in the guard's documented `*` forms: `get()`/`get_mut()` with no
 * arguments directly under `*` or as a field's base (`*g.get()`,
 * `*g.get_mut() = v`, `g.get().f`). The guard's own apply otherwise only
 * with no arguments and when the guarded type has no such method. */
static bool guard_own(Checker *c, Node *n, Type *t, bool under_star) {
    const Builtin *own = bi_method(TY_GUARD, n->name);
    if (n->args.n || !own)
        return false;
    if (under_star && own->id == BI_GUARD_SELF)
        return true;
    return !(t->a->kind == TY_STRUCT || t->a->kind == TY_ENUM) ||
           !check_lookup_method(c, t->a->sd->name, n->name);
}

Type *check_method(Checker *c, Node *n) {
    bool under_star = c->dereffed == n;
    Type *rt = check_value(c, n->lhs, NULL);
    if (rt->kind == TY_NEVER)
        return rt;
    if (n->op && !strcmp(n->op, "[]") && rt->kind != TY_LIST) {
        diag_error_hint(n->loc, "only a List can be indexed", "cannot index a value of type %s",
                        ty_name(rt));
        check_value(c, check_arg(n, 0), NULL);
        return T(TY_NEVER);
    }
    if (rt->kind == TY_GUARD && !guard_own(c, n, rt, under_star))
        rt = check_see_through(n, rt);
    Func *m = (rt->kind == TY_STRUCT || rt->kind == TY_ENUM) ? check_lookup_method(c, rt->sd->name, n->name) : NULL;
    if (m)
        return check_user_method(c, n, m);
    Vec cands = {0};
    if (rt->kind == TY_STRUCT || rt->kind == TY_ENUM) {            /* the type's own methods */
        const char *prefix = arena_printf("%s::", rt->sd->name);
        for (int i = 0; i < c->methods.cap; i++)
            if (c->methods.keys[i] && !strncmp(c->methods.keys[i], prefix, strlen(prefix)))
                vec_push(&cands, (void *)(c->methods.keys[i] + strlen(prefix)));
    }
    for (int i = 0; bi_row(i); i++) {
        const Builtin *m = bi_row(i);
        if (!bi_receives(m, rt))
            continue;
        vec_push(&cands, (void *)m->name);
        if (strcmp(m->name, n->name))
            continue;
        n->builtin = m->id;
        if (check_argc(n, n->name, m->lo, m->hi))
            return method_result(c, n, m, rt);
        for (int i = 0; i < n->args.n; i++)     /* still report errors inside */
            check_value(c, check_arg(n, i), NULL);
        return T(TY_NEVER);
    }
    const char *hint = check_suggest(n->name, (const char **)cands.v, cands.n);
    if (rt->kind == TY_JOIN && c->awaited == n)     /* `await h.unwrap()`, section 3.3 */
        hint = arena_printf("`await` applies to the whole call; write `(await h).%s()`", n->name);
    diag_error_hint(n->loc, hint, "no method '%s' on type %s", n->name, ty_name(rt));
    return T(TY_NEVER);
}

/* -------------------------------------------------------- operators */

static bool is_cmp(const char *op) {
    return !strcmp(op, "==") || !strcmp(op, "!=") || !strcmp(op, "<") || !strcmp(op, ">") ||
           !strcmp(op, "<=") || !strcmp(op, ">=");
}

Type *check_binary(Checker *c, Node *n) {
    const char *op = n->op;
    if (!strcmp(op, "and") || !strcmp(op, "or")) {
        check_expect_type(c, n->lhs, T(TY_BOOL));
        check_expect_type(c, n->rhs, T(TY_BOOL));
        return T(TY_BOOL);
    }
    Type *l = check_value(c, n->lhs, NULL);
    bool named = l->kind == TY_ENUM || l->kind == TY_JOIN_ERROR || l->kind == TY_ORDERING;
    Type *r = check_value(c, n->rhs, ty_is_num(l) || named ? l : NULL);   /* `e == Empty` */
    if (l->kind == TY_NEVER || r->kind == TY_NEVER)
        return is_cmp(op) ? T(TY_BOOL) : (l->kind == TY_NEVER ? r : l);
    if (is_cmp(op)) {
        bool eq = op[0] == '=' || op[0] == '!';
        bool ok = check_compatible(r, l) &&
                  (ty_is_num(l) || l->kind == TY_CHAR || l->kind == TY_STR ||
                   (eq && (l->kind == TY_BOOL || l->kind == TY_JOIN_ERROR ||
                           l->kind == TY_ORDERING || (l->kind == TY_ENUM && !l->elems.n))));
        if (!ok)
            diag_error(n->loc, "cannot compare %s with %s using '%s'", ty_name(l), ty_name(r), op);
        return T(TY_BOOL);
    }
    if ((op[0] == '+' || op[0] == '-') && !op[1] && l->kind == TY_INSTANT) {
        if (r->kind != TY_DURATION)
            diag_error(n->rhs->loc, "type mismatch: expected Duration, found %s", ty_name(r));
        return l;
    }
    if (!strcmp(op, "+") && l->kind == TY_STR) {
        if (r->kind != TY_STR)
            diag_error_hint(n->rhs->loc, "convert it with `.to_string()`",
                            "type mismatch: expected Str, found %s", ty_name(r));
        return l;
    }
    bool bits = strchr("&|^", op[0]) || !strcmp(op, "<<") || !strcmp(op, ">>");
    bool ok = bits ? ty_is_int(l) && ty_is_int(r) : ty_is_num(l) && check_compatible(r, l);
    if (!ok)
        diag_error(n->loc, "operator '%s' cannot be applied to %s and %s", op, ty_name(l),
                   ty_name(r));
    return l;
}

Type *check_unary(Checker *c, Node *n) {
    if (!strcmp(n->op, "not")) {
        check_expect_type(c, n->lhs, T(TY_BOOL));
        return T(TY_BOOL);
    }
    n->lhs->negated = n->lhs->kind == ND_INT && !strcmp(n->op, "-");
    Type *t = check_value(c, n->lhs, NULL);
    bool ok = !strcmp(n->op, "-") ? ty_is_num(t) : ty_is_int(t);
    if (!ok && t->kind != TY_NEVER)
        diag_error(n->loc, "operator '%s' cannot be applied to %s", n->op, ty_name(t));
    return t;
}

Type *check_cast(Checker *c, Node *n) {
    Type *from = check_value(c, n->lhs, NULL);
    Type *to = check_resolve_type(c, n->texpr);
    bool ok = (ty_is_num(from) || from->kind == TY_CHAR || from->kind == TY_BOOL) &&
              ty_is_num(to);
    if (!ok && from->kind != TY_NEVER && to != &check_error_type)
        diag_error(n->loc, "cannot convert %s to %s with 'as'", ty_name(from), ty_name(to));
    return to;
}

/* ------------------------------------------------------ async */

/* The type of awaiting `e` (of type t): a future's result, a join's
 * Outcome, a wait-capable operation's own type; at: where to complain. */
static Type *awaited_type(Node *at, Node *e, Type *t) {
    if (t->kind == TY_FUTURE)
        return t->fn->ret;
    if (t->kind == TY_JOIN)
        return ty_make(TY_OUTCOME, t->a, T(TY_JOIN_ERROR));
    bool waitable = (e->kind == ND_CALL || e->kind == ND_METHOD) && bi_waits(e->builtin);
    if (waitable || t->kind == TY_NEVER)
        return t;
    diag_error(at->loc, "cannot await a value of type %s", ty_name(t));
    return t;
}

Type *check_await_expr(Checker *c, Node *n) {
    if (!c->fn->is_async)
        diag_error_hint(n->loc, "make the enclosing function an `async func`",
                        "'await' is only allowed inside 'async func'");
    Node *e = n->lhs;
    Node *outer = c->awaited, *outer_started = c->started;
    c->awaited = c->started = e;
    Type *t = check_expr(c, e, NULL);
    c->awaited = outer;
    c->started = outer_started;
    return awaited_type(n, e, t);
}

/* Makes `v`, a local of an enclosing function, a parameter of the async
 * block being checked and of every block between it and v's function:
 * captured by value where the block is written. */
void check_capture(Checker *c, Var *v) {
    for (Func *f = c->fn; f && f->outer && f != v->owner; f = f->outer) {
        bool known = false;
        for (int i = 0; i < f->params.n && !known; i++)
            known = ((Param *)f->params.v[i])->var == v;
        if (known)
            continue;
        Param *pa = arena_alloc(sizeof *pa);
        pa->name = v->name;
        pa->loc = f->loc;
        pa->var = v;
        vec_push(&f->params, pa);
    }
}

// async_block = "async" block: an async function of its own, called here
// with the locals it captures; its value is a future, as a call's is.
Type *check_async_block(Checker *c, Node *n) {
    static int count;
    Func *f = arena_alloc(sizeof *f);
    f->name = "async block";
    f->cname = arena_printf("%s__async%d", c->fn->cname ? c->fn->cname : "const", ++count);
    f->loc = n->loc;
    f->is_async = true;
    f->outer = c->fn;
    f->body = n->body;
    f->ret = NULL;                      /* the block's type, once checked */
    vec_push(&c->prog->funcs, f);
    Checker saved = *c;
    c->fn = f;
    c->loops = c->repeats = 0;
    c->awaited = c->started = c->dereffed = c->stmt = NULL;
    check_push_scope(c);
    Type *t = check_value(c, f->body, NULL);
    check_pop_scope(c);
    f->ret = t->kind == TY_NEVER && t != &check_error_type ? T(TY_UNIT) : t;
    saved.next_id = c->next_id;
    *c = saved;
    n->kind = ND_CALL;                  /* the call, with the captured locals */
    n->fn = f;
    for (int i = 0; i < f->params.n; i++) {
        Var *v = ((Param *)f->params.v[i])->var;
        Node *a = check_new_node(ND_PATH, n->loc, v->name);
        a->var = v;
        a->ty = v->ty;
        vec_push(&n->args, a);
        check_capture(c, v);            /* an enclosing block captures it too */
    }
    return ty_future(f);
}

/* timeout(d, fut): Outcome[T, TimeoutError], only as await's operand. */
Type *check_timeout_call(Checker *c, Node *n) {
    n->builtin = BI_TIMEOUT;
    bool awaited = c->awaited == n;
    c->awaited = NULL;
    if (!awaited)
        diag_error_hint(n->loc, "write `await timeout(d, fut)` inside an async func",
                        "'timeout' must be awaited");
    if (!check_argc(n, "timeout", 2, 2))
        return T(TY_NEVER);
    check_expect_type(c, check_arg(n, 0), T(TY_DURATION));
    Node *fut = check_arg(n, 1);
    /* A call operand is awaited by the timeout, so an inner timeout gets
     * the one error below rather than "must be awaited" as well; an inner
     * timeout that failed itself (Never) has already said so. */
    if (fut->kind == ND_CALL)
        c->awaited = fut;
    Node *outer_started = c->started;
    c->started = fut;
    int errors = diag_count();
    Type *t = awaited_type(n, fut, check_expr(c, fut, NULL));
    if (check_failed(t, errors))
        t = &check_error_type;            /* Outcome[E, TimeoutError]: no more errors */
    c->awaited = NULL;
    c->started = outer_started;
    if (fut->builtin == BI_TIMEOUT) {
        if (t->kind != TY_NEVER)
            diag_error_hint(fut->loc, "move the inner timeout into an async func",
                            "a timeout cannot directly wrap another timeout");
        return T(TY_NEVER);
    }
    if (fut->builtin == BI_JOIN_FUTURES || fut->builtin == BI_RACE || fut->builtin == BI_JOIN_ALL) {
        diag_error_hint(fut->loc, arena_printf("move the %s into an async func and time out its call",
                                               bi_info(fut->builtin)->name),
                        "a timeout cannot directly wrap several futures");
        return &check_error_type;
    }
    return ty_make(TY_OUTCOME, t, T(TY_TIMEOUT_ERROR));
}
