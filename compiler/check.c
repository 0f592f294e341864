/* check.c - scopes and types; annotates the AST (TML-SUBSET.md 3-6).
 *
 * Takes the parsed Program; sets every expression's `ty`, resolves names
 * to Vars, Funcs and builtins (Node.builtin = BI_*), numbers each async
 * function's awaits (Func.awaits, Node.await_id), records which async
 * functions each one awaits (Func.callees) and which are spawned.
 * Rewrites the optional forms (MAY) into plain ones: `Arc::new(e)` into
 * e, `Type.f()` into `Type::f()`, names given by `use x as y` into x, and
 * the one use of a local holding an unstarted future into the call.
 * Rejects, each with `file:line:col: error:` and a hint where one helps:
 * unknown names, wrong argument counts, type mismatches, `await` outside
 * `async func`, an async call that is neither awaited nor spawned (nor
 * held in a local that is then run exactly once), assignment to an
 * immutable binding, break/continue outside a loop.
 * Integer widths are lax as upstream TML: any integer converts to any
 * other (emit_c inserts the cast), also inside tuples; never int <-> float. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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
                                   &ambiguous when two enums share it */
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
                                   local may stand (compared by identity) */
    Node *dereffed;             /* the operand of the `*` being checked */
    Node *stmt;                 /* the block statement being checked: its
                                   value is discarded */
    int next_id;                /* unique suffix for C names */
} Checker;

static Type *expr(Checker *c, Node *n, Type *want);
static Type *timeout_call(Checker *c, Node *n);
static Var *root_var(Node *n);
static Type *see_through(Node *n, Type *t);
static Type *net_ctor(Checker *c, Node *n, Node *callee);
static Type *lib_type(Checker *c, Node *n, const char *name);
static Type *value(Checker *c, Node *n, Type *want);
static void pattern(Checker *c, Node *p, Type *t);
static void never_pattern(Checker *c, Node *p);
static Func *lookup_method(Checker *c, const char *type, const char *name);
static Type *user_method(Checker *c, Node *n, Func *m);
static bool has_to_string(Type *t);

static Type *T(TypeKind k) { return ty_prim(k); }

/* The error type: that of a type expression that failed to resolve, and so
 * of whatever is declared with it (variable, parameter, field, return
 * value). It is a Never (compatible with everything; no field, method or
 * pattern complains about it), but a distinct one, so that a value of it
 * is not taken for a diverging expression, which `let` turns into Unit. */
static Type error_type = {.kind = TY_NEVER, .mangled = "Never"};

/* Did an expression of type t, checked since the error count was
 * `errors`, fail? Then its uses draw no further errors. */
static bool failed(Type *t, int errors) {
    return t == &error_type || (t->kind == TY_NEVER && diag_count() > errors);
}

/* ------------------------------------------------------ helpers */

static void push_scope(Checker *c) {
    Scope *s = arena_alloc(sizeof *s);
    s->parent = c->scope;
    c->scope = s;
}

/* Leaves the innermost scope; a future local in it must have been used. */
static void pop_scope(Checker *c) {
    for (int i = 0; i < c->scope->vars.n; i++) {
        Var *v = c->scope->vars.v[i];
        if (v->future && !v->reads)
            diag_error_hint(v->future->loc, "await it, spawn it or pass it to block_on",
                            "the future in '%s' is never run", v->name);
    }
    c->scope = c->scope->parent;
}

static Var *declare(Checker *c, const char *name, Type *ty, bool mutable_) {
    Var *v = arena_alloc(sizeof *v);
    v->name = name;
    v->cname = arena_printf("%s_%d", name, ++c->next_id);
    v->ty = ty;
    v->mutable_ = mutable_;
    v->owner = c->fn;
    vec_push(&c->scope->vars, v);
    return v;
}

/* A node the checker adds to the tree (named, when `name` is not NULL). */
static Node *new_node(NodeKind kind, Loc loc, const char *name) {
    Node *n = arena_alloc(sizeof *n);
    n->kind = kind;
    n->loc = loc;
    n->name = name;
    return n;
}

static Var *lookup_var(Checker *c, const char *name) {
    for (Scope *s = c->scope; s; s = s->parent)
        for (int i = s->vars.n - 1; i >= 0; i--)
            if (!strcmp(((Var *)s->vars.v[i])->name, name))
                return s->vars.v[i];
    return NULL;
}

static Func *lookup_func(Checker *c, const char *name) { return map_get(&c->funcs, name); }

static StructDecl *lookup_struct(Checker *c, const char *name) {
    return map_get(&c->structs, name);
}

/* The name that `name` stands for: `use path::x as name` makes it another
 * name for x (section 2), unless the program declares a type or function
 * of that name itself; an alias of an alias is followed (a cycle stops
 * after a few steps, at a name that then does not resolve). */
static const char *unalias(Checker *c, const char *name) {
    for (int hops = 0; hops < 8; hops++) {
        const char *target = map_get(&c->prog->aliases, name);
        if (!target || !strcmp(target, name) || lookup_struct(c, name) || lookup_func(c, name))
            break;
        name = target;
    }
    return name;
}

static Variant ambiguous;

/* The variant `name` of enum `qual` (qualified); bare, the variant of
 * that name of the expected enum `want` (NULL: none known), else the only
 * one of that name, a user enum's shadowing the library's. Reports an
 * ambiguous bare name. NULL: none. */
static Variant *lookup_variant(Checker *c, Node *n, const char *qual, const char *name,
                               Type *want) {
    if (!qual && want && want->kind == TY_ENUM)
        for (int i = 0; i < want->sd->variants.n; i++)
            if (!strcmp(((Variant *)want->sd->variants.v[i])->name, name))
                return want->sd->variants.v[i];
    if (qual) {
        StructDecl *sd = map_get(&c->structs, qual);
        if (!sd || !sd->is_enum)
            return NULL;
        for (int i = 0; i < sd->variants.n; i++)
            if (!strcmp(((Variant *)sd->variants.v[i])->name, name))
                return sd->variants.v[i];
        diag_error(n->loc, "enum '%s' has no variant '%s'", qual, name);
        return &ambiguous;
    }
    Variant *v = map_get(&c->variants, name);
    if (v == &ambiguous)
        diag_error_hint(n->loc, arena_printf("write `Type::%s`", name),
                        "'%s' is a variant of more than one enum", name);
    return v;
}

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 30 || lb > 30)
        return 99;
    int d[31][31];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* Returns a "did you mean `x`?" hint for the closest candidate, or NULL. */
static const char *suggest(const char *name, const char **cands, int n) {
    const char *best = NULL;
    int bestd = (int)strlen(name) <= 3 ? 1 : 2;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(name, cands[i]);
        if (d <= bestd && strcmp(name, cands[i])) {
            bestd = d;
            best = cands[i];
        }
    }
    return best ? arena_printf("did you mean `%s`?", best) : NULL;
}

static const char *global_builtins[] = {
    "print", "println", "panic", "assert", "assert_eq", "assert_ne", "assert_true",
    "assert_false", "spawn", "block_on", "sleep", "channel", "Ok", "Err", "Just", "Nothing",
    "yield_now", "runtime_metrics", "timeout", "sleep_until", "interval", "drop", "sleep_ms",
    "available_parallelism", "bounded_channel",
};
enum { NGLOBAL = sizeof global_builtins / sizeof global_builtins[0] };

static const char *name_hint(Checker *c, const char *name) {
    Vec cands = {0};
    for (Scope *s = c->scope; s; s = s->parent)
        for (int i = 0; i < s->vars.n; i++)
            vec_push(&cands, (void *)((Var *)s->vars.v[i])->name);
    for (int i = 0; i < c->prog->funcs.n; i++)
        vec_push(&cands, (void *)((Func *)c->prog->funcs.v[i])->name);
    for (int i = 0; i < NGLOBAL; i++)
        vec_push(&cands, (void *)global_builtins[i]);
    for (int i = 0; i < c->prog->structs.n; i++) {      /* enum variants */
        StructDecl *sd = c->prog->structs.v[i];
        for (int k = 0; sd->is_enum && k < sd->variants.n; k++)
            vec_push(&cands, (void *)((Variant *)sd->variants.v[k])->name);
    }
    return suggest(name, (const char **)cands.v, cands.n);
}

/* A hint for an unknown type name: the closest declared or library type. */
static const char *type_hint(Checker *c, const char *name) {
    static const char *lib[] = {
        "Unit", "Bool", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "F32", "F64",
        "Char", "Str", "Maybe", "Outcome", "JoinHandle", "Sender", "Receiver", "Duration",
        "Instant", "List", "Mutex", "MutexGuard", "Semaphore", "Buffer", "SocketAddr",
        "TcpListener", "TcpStream",
    };
    Vec cands = {0};
    for (size_t i = 0; i < sizeof lib / sizeof lib[0]; i++)
        vec_push(&cands, (void *)lib[i]);
    for (int i = 0; i < c->prog->structs.n; i++)
        vec_push(&cands, (void *)((StructDecl *)c->prog->structs.v[i])->name);
    return suggest(name, (const char **)cands.v, cands.n);
}

/* Can a value of type `got` be used where `want` is expected? (An
 * expected Never comes from an error already reported: accept all.) */
static bool compatible(Type *got, Type *want) {
    if (got == want || got->kind == TY_NEVER || want->kind == TY_NEVER)
        return true;
    if (ty_is_int(got) && ty_is_int(want))
        return true;
    if (got->kind == TY_TUPLE && want->kind == TY_TUPLE && got->elems.n == want->elems.n) {
        for (int i = 0; i < got->elems.n; i++)   /* widths are lax inside tuples too */
            if (!compatible(got->elems.v[i], want->elems.v[i]))
                return false;
        return true;
    }
    return ty_is_float(got) && ty_is_float(want);
}

static void mismatch(Node *n, Type *got, Type *want) {
    diag_error(n->loc, "type mismatch: expected %s, found %s", ty_name(want), ty_name(got));
}

/* Checks `n` as a value of type `want` (NULL: any type). */
static Type *expect_type(Checker *c, Node *n, Type *want) {
    Type *got = value(c, n, want);
    if (want && !compatible(got, want) && got->kind != TY_FUTURE)
        mismatch(n, got, want);
    return got;
}

static bool is_primitive(Type *t) { return t->kind <= TY_STR; }

/* ---------------------------------------------------------- types */

static Type *resolve(Checker *c, TypeExpr *te);
static Type *resolve_type(Checker *c, TypeExpr *te);

/* AtomicI64 / AtomicI32 / AtomicU64 / AtomicBool, or NULL. */
static Type *atomic_type(const char *name) {
    static const struct { const char *name; TypeKind value; } kinds[] = {
        {"AtomicI64", TY_I64}, {"AtomicI32", TY_I32}, {"AtomicU64", TY_U64},
        {"AtomicBool", TY_BOOL},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(name, kinds[i].name))
            return ty_make(TY_ATOMIC, T(kinds[i].value), NULL);
    return NULL;
}

/* Ordering::Relaxed ... as TML_ORDER_* codes, or -1. */
static int ordering_code(const char *name) {
    static const char *names[] = {"Relaxed", "Acquire", "Release", "AcqRel", "SeqCst"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

/* JoinError's variants, in the order of the TML_JOIN_* codes. */
static int join_error_variant(const char *name) {
    static const char *names[] = {"AlreadyJoined", "OsError", "NoResult", "Panicked"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i]))
            return i + 1;
    return 0;
}
enum { JOIN_OS_ERROR = 2 };                 /* OsError(I32), the one with a payload */

/* The library's types besides the primitives, atomics and Arc, with
 * their numbers of type arguments. */
static const struct { const char *name; TypeKind kind; int n; } lib_types[] = {
    {"Maybe", TY_MAYBE, 1}, {"Outcome", TY_OUTCOME, 2}, {"JoinHandle", TY_JOIN, 1},
    {"Sender", TY_SENDER, 1}, {"Receiver", TY_RECEIVER, 1},
    {"SendError", TY_SEND_ERROR, 1}, {"Duration", TY_DURATION, 0},
    {"Instant", TY_INSTANT, 0}, {"RecvError", TY_RECV_ERROR, 0},
    {"JoinError", TY_JOIN_ERROR, 0},
    {"TimeoutError", TY_TIMEOUT_ERROR, 0}, {"Interval", TY_INTERVAL, 0},
    {"Ordering", TY_ORDERING, 0}, {"List", TY_LIST, 1}, {"Mutex", TY_MUTEX, 1},
    {"MutexGuard", TY_GUARD, 1}, {"Semaphore", TY_SEMAPHORE, 0}, {"Notify", TY_NOTIFY, 0},
    {"Buffer", TY_BUFFER, 0}, {"SocketAddr", TY_SOCKADDR, 0},
    {"TcpListener", TY_LISTENER, 0}, {"AsyncTcpListener", TY_LISTENER, 0},
    {"TcpStream", TY_STREAM, 0}, {"AsyncTcpStream", TY_STREAM, 0},
};
enum { NLIB_TYPES = sizeof lib_types / sizeof lib_types[0] };

/* Does `name` name a type: a declared one (also the prelude's) or the
 * library's? */
static bool is_type_name(Checker *c, const char *name) {
    if (lookup_struct(c, name) || atomic_type(name) || !strcmp(name, "Arc"))
        return true;
    for (size_t i = 0; i < NLIB_TYPES; i++)
        if (!strcmp(name, lib_types[i].name))
            return true;
    return false;
}

static Type *type_arg(Checker *c, TypeExpr *te, int i) {
    return resolve(c, te->args.v[i]);
}

static bool arity(TypeExpr *te, int n) {
    if (te->args.n == n)
        return true;
    diag_error(te->loc, "'%s' takes %d type argument%s but %d %s given", te->name, n,
               n == 1 ? "" : "s", te->args.n, te->args.n == 1 ? "was" : "were");
    return false;
}

static Type *resolve(Checker *c, TypeExpr *te) {
    static const struct { const char *name; TypeKind kind; } prims[] = {
        {"Unit", TY_UNIT}, {"Bool", TY_BOOL}, {"I8", TY_I8}, {"I16", TY_I16},
        {"I32", TY_I32}, {"I64", TY_I64}, {"U8", TY_U8}, {"U16", TY_U16},
        {"U32", TY_U32}, {"U64", TY_U64}, {"F32", TY_F32}, {"F64", TY_F64},
        {"Char", TY_CHAR}, {"Str", TY_STR}, {"String", TY_STR}, {"Never", TY_NEVER},
    };
    if (!te->name) {
        if (te->args.n == 0)
            return T(TY_UNIT);
        Vec elems = {0};
        for (int i = 0; i < te->args.n; i++)
            vec_push(&elems, type_arg(c, te, i));
        return ty_tuple(&elems);
    }
    te->name = unalias(c, te->name);
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (!strcmp(te->name, prims[i].name) && arity(te, 0))
            return T(prims[i].kind);
    StructDecl *sd = lookup_struct(c, te->name);     /* shadows a library type */
    if (sd && sd->alias && !sd->ty) {
        if (sd->resolving) {
            diag_error(sd->loc, "type alias '%s' refers to itself", sd->name);
            return T(TY_NEVER);
        }
        sd->resolving = true;
        sd->ty = resolve_type(c, sd->alias);
        sd->resolving = false;
    }
    if (sd)
        return arity(te, 0) ? sd->ty : T(TY_NEVER);
    if (!strcmp(te->name, "Arc"))               /* Arc[T] is T (section 9 MAY) */
        return arity(te, 1) ? type_arg(c, te, 0) : T(TY_NEVER);
    for (size_t i = 0; i < NLIB_TYPES; i++) {
        if (strcmp(te->name, lib_types[i].name))
            continue;
        if (!arity(te, lib_types[i].n))
            return T(TY_NEVER);
        Type *a = lib_types[i].n > 0 ? type_arg(c, te, 0) : NULL;
        Type *b = lib_types[i].n > 1 ? type_arg(c, te, 1) : NULL;
        return ty_make(lib_types[i].kind, a, b);
    }
    Type *atomic = atomic_type(te->name);
    if (atomic && arity(te, 0))
        return atomic;
    if (!atomic)
        diag_error_hint(te->loc, type_hint(c, te->name), "unknown type '%s'", te->name);
    return T(TY_NEVER);
}

/* The type `te` names. A type expression with an error in it (an unknown
 * name, a wrong number of type arguments, a cyclic alias, at any depth)
 * is reported once and becomes Never, the error type: it is compatible
 * with everything and has no fields or methods to complain about, so a
 * parameter, return value, field or variable of that type draws no
 * follow-on errors. */
static Type *resolve_type(Checker *c, TypeExpr *te) {
    int errors = diag_count();
    Type *t = resolve(c, te);
    return diag_count() == errors ? t : &error_type;
}

/* ----------------------------------------------------- literals */

/* An integer literal has its suffix's type, else the expected integer
 * type, else I64. Its value is read as an I64 (as a U64 when its type is
 * U64; 2^63 also as the operand of `-`, giving I64's minimum) and then
 * converted to its type as `as` would: `300_i8` is 44. */
static Type *int_lit(Node *n, Type *want) {
    static const struct { const char *s; TypeKind k; } sfx[] = {
        {"i8", TY_I8}, {"i16", TY_I16}, {"i32", TY_I32}, {"i64", TY_I64},
        {"u8", TY_U8}, {"u16", TY_U16}, {"u32", TY_U32}, {"u64", TY_U64},
    };
    Type *t = want && ty_is_int(want) ? want : T(TY_I64);
    if (n->suffix)
        for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++)
            if (!strcmp(n->suffix, sfx[i].s))
                t = T(sfx[i].k);
    bool fits = n->ival <= INT64_MAX || t->kind == TY_U64 ||
                (n->negated && n->ival == (uint64_t)INT64_MAX + 1);
    if (!fits)
        diag_error(n->loc, "integer literal %llu is larger than I64's maximum, which only a "
                   "U64 literal may be (suffix u64, or a U64 type)", (unsigned long long)n->ival);
    return t;
}

/* "{e}": e converted by to_string(), the library's or, for a struct or
 * enum, its impl's (the part becomes the call `e.to_string()`). */
static Type *str_lit(Checker *c, Node *n) {
    for (int i = 0; i < n->args.n; i++) {
        Node *e = n->args.v[i];
        Type *t = value(c, e, NULL);
        Func *f = t->kind == TY_STRUCT || t->kind == TY_ENUM
                      ? lookup_method(c, t->sd->name, "to_string") : NULL;
        if (f && (f->broken || (f->receiver && f->ret->kind == TY_STR && !f->params.n))) {
            Node *m = arena_alloc(sizeof *m);
            m->kind = ND_METHOD;
            m->loc = e->loc;
            m->lhs = e;
            m->name = "to_string";
            m->ty = user_method(c, m, f);
            n->args.v[i] = m;
        } else if (!has_to_string(t) && t->kind != TY_NEVER) {
            diag_error_hint(e->loc, "give its type a `func to_string(this) -> Str`",
                            "cannot interpolate a value of type %s", ty_name(t));
        }
    }
    return T(TY_STR);
}

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

static Node *arg(Node *n, int i) { return n->args.v[i]; }

/* Shape::Circle(r), Circle(r) or, payload-free, Shape::Empty / Empty. */
static Type *variant_ctor(Checker *c, Node *n, Variant *v) {
    if (v == &ambiguous) {
        for (int i = 0; i < n->args.n; i++)
            value(c, n->args.v[i], NULL);
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
            expect_type(c, n->args.v[i], v->types.v[i]);
    return v->owner->ty;
}

static Type *user_call(Checker *c, Node *n, Func *f) {
    n->fn = f;
    if (f->broken) {                /* its parameters are unknown: no complaints */
        for (int i = 0; i < n->args.n; i++)
            value(c, arg(n, i), NULL);
        return f->is_async ? ty_future(f) : f->ret;
    }
    if (check_argc(n, f->name, f->params.n, f->params.n))
        for (int i = 0; i < n->args.n; i++)
            expect_type(c, arg(n, i), ((Param *)f->params.v[i])->var->ty);
    return f->is_async ? ty_future(f) : f->ret;
}

/* The operand of spawn/block_on/await: a call of an async function. */
static Func *async_operand(Checker *c, Node *e, const char *what) {
    c->started = e;
    Type *t = expr(c, e, NULL);
    if (t->kind == TY_FUTURE)
        return t->fn;
    if (t->kind != TY_NEVER)
        diag_error(e->loc, "%s needs a call of an async function, found %s", what, ty_name(t));
    return NULL;
}

static Type *enum_ctor(Checker *c, Node *n, const char *name, Type *want) {
    bool outcome = !strcmp(name, "Ok") || !strcmp(name, "Err");
    n->builtin = BI_ENUM_CTOR;
    bool known = want && want->kind == (outcome ? TY_OUTCOME : TY_MAYBE);
    if (!known && !strcmp(name, "Just") && n->args.n == 1) {   /* Maybe of the payload's type */
        Type *t = value(c, arg(n, 0), NULL);
        n->variant = 1;
        return t->kind == TY_NEVER ? t : ty_make(TY_MAYBE, t, NULL);
    }
    if (!known && want == &error_type) {        /* a field or parameter of an unknown type */
        for (int i = 0; i < n->args.n; i++)
            value(c, arg(n, i), NULL);
        return want;
    }
    if (!known) {
        diag_error_hint(n->loc, "annotate the binding, e.g. `let x: Outcome[I64, Str] = ...`",
                        "cannot infer the type of '%s' here", name);
        for (int i = 0; i < n->args.n; i++)
            value(c, arg(n, i), NULL);
        return T(TY_NEVER);
    }
    n->variant = !strcmp(name, "Err") || !strcmp(name, "Just");
    if (!strcmp(name, "Nothing"))
        return want;
    if (check_argc(n, name, 1, 1))
        expect_type(c, arg(n, 0), !strcmp(name, "Err") ? want->b : want->a);
    return want;
}

static Type *duration_ctor(Checker *c, Node *n, const char *unit) {
    static const char *units[] = {"from_secs", "from_millis", "from_micros", "from_nanos", "new"};
    if (!strcmp(unit, "new")) {
        n->builtin = BI_DUR_NEW;
        if (check_argc(n, "Duration::new", 2, 2)) {
            expect_type(c, arg(n, 0), T(TY_I64));
            expect_type(c, arg(n, 1), T(TY_I32));
        }
        return T(TY_DURATION);
    }
    for (int i = 0; i < 4; i++)
        if (!strcmp(unit, units[i])) {
            n->builtin = BI_DUR_FROM;
            n->variant = i;
            if (check_argc(n, unit, 1, 1))
                expect_type(c, arg(n, 0), T(TY_I64));
            return T(TY_DURATION);
        }
    diag_error_hint(n->loc, suggest(unit, units, 5), "no function 'Duration::%s'", unit);
    return T(TY_DURATION);
}

static Type *printable_arg(Checker *c, Node *a) {
    Type *t = value(c, a, NULL);
    if (!is_primitive(t) && t->kind != TY_NEVER && t->kind != TY_DURATION)
        diag_error(a->loc, "cannot print a value of type %s", ty_name(t));
    return t;
}

static Type *builtin_call(Checker *c, Node *n, Node *callee, Type *want) {
    const char *name = callee->name;
    if (callee->qual && !strcmp(callee->qual, "Duration"))
        return duration_ctor(c, n, name);
    if (callee->qual && !strcmp(callee->qual, "Arc") && !strcmp(name, "new")) {
        if (!check_argc(n, "Arc::new", 1, 1))
            return T(TY_NEVER);
        *n = *arg(n, 0);                        /* Arc::new(e) is e (section 9 MAY) */
        return expr(c, n, want);
    }
    Type *atomic = callee->qual ? atomic_type(callee->qual) : NULL;
    if (atomic && !strcmp(name, "new")) {
        n->builtin = BI_ATOMIC_NEW;
        if (check_argc(n, "new", 1, 1))
            expect_type(c, arg(n, 0), atomic->a);
        return atomic;
    }
    if (callee->qual && !strcmp(callee->qual, "List") && !strcmp(name, "new")) {
        n->builtin = BI_LIST_NEW;
        Type *el = callee->targs.n == 1 ? resolve_type(c, callee->targs.v[0])
                   : want && want->kind == TY_LIST ? want->a : NULL;
        if (check_argc(n, "List::new", 0, 1) && n->args.n)
            expect_type(c, arg(n, 0), T(TY_I64));
        if (!el) {
            diag_error_hint(n->loc, "write `List[I64]::new(8)`", "'List::new' needs its element type");
            return T(TY_NEVER);
        }
        return ty_make(TY_LIST, el, NULL);
    }
    if (callee->qual && !strcmp(name, "new") && !strcmp(callee->qual, "Mutex")) {
        n->builtin = BI_MUTEX_NEW;
        if (!check_argc(n, "Mutex::new", 1, 1))
            return T(TY_NEVER);
        Type *el = callee->targs.n == 1 ? resolve_type(c, callee->targs.v[0])
                   : want && want->kind == TY_MUTEX ? want->a : NULL;
        Type *t = el ? expect_type(c, arg(n, 0), el) : value(c, arg(n, 0), NULL);
        return t->kind == TY_NEVER ? t : ty_make(TY_MUTEX, el ? el : t, NULL);
    }
    if (callee->qual && !strcmp(name, "new") && !strcmp(callee->qual, "Semaphore")) {
        n->builtin = BI_SEM_NEW;
        if (check_argc(n, "Semaphore::new", 1, 1))
            expect_type(c, arg(n, 0), T(TY_I64));
        return T(TY_SEMAPHORE);
    }
    if (callee->qual && !strcmp(name, "new") && !strcmp(callee->qual, "Notify")) {
        n->builtin = BI_NOTIFY_NEW;
        check_argc(n, "Notify::new", 0, 0);
        return T(TY_NOTIFY);
    }
    if (callee->qual && (!strcmp(callee->qual, "SocketAddr") || !strcmp(callee->qual, "Buffer") ||
                         strstr(callee->qual, "TcpListener") || strstr(callee->qual, "TcpStream")))
        return net_ctor(c, n, callee);
    if (!strcmp(name, "drop") && !callee->qual) {
        n->builtin = BI_DROP;
        if (!check_argc(n, name, 1, 1))
            return T(TY_UNIT);
        Type *t = value(c, arg(n, 0), NULL);
        bool droppable = t->kind == TY_GUARD || t->kind == TY_SENDER || t->kind == TY_RECEIVER;
        if (t->kind != TY_NEVER && (!droppable || arg(n, 0)->kind != ND_PATH))
            diag_error_hint(arg(n, 0)->loc, "let the value go out of scope instead",
                            "'drop' releases a MutexGuard, Sender or Receiver held in a variable");
        return T(TY_UNIT);
    }
    if (!strcmp(name, "runtime_metrics")) {
        n->builtin = BI_METRICS;
        check_argc(n, name, 0, 0);
        StructDecl *sd = lookup_struct(c, "RuntimeMetrics");
        if (parse_is_prelude(&sd->loc))
            return sd->ty;
        diag_error(n->loc, "'runtime_metrics' returns the library type RuntimeMetrics, which this "
                           "program redefines");
        return T(TY_NEVER);
    }
    if (!strcmp(name, "yield_now")) {
        n->builtin = BI_YIELD;
        check_argc(n, name, 0, 0);
        return T(TY_UNIT);
    }
    if (callee->qual && !strcmp(callee->qual, "Instant") && !strcmp(name, "now")) {
        n->builtin = BI_INSTANT_NOW;
        check_argc(n, "Instant::now", 0, 0);
        return T(TY_INSTANT);
    }
    if (!strcmp(name, "print") || !strcmp(name, "println")) {
        n->builtin = name[5] ? BI_PRINTLN : BI_PRINT;
        if (check_argc(n, name, 1, 1))
            printable_arg(c, arg(n, 0));
        return T(TY_UNIT);
    }
    if (!strcmp(name, "panic")) {
        n->builtin = BI_PANIC;
        if (check_argc(n, name, 1, 1))
            expect_type(c, arg(n, 0), T(TY_STR));
        return T(TY_NEVER);
    }
    if (!strcmp(name, "assert") || !strcmp(name, "assert_true") || !strcmp(name, "assert_false")) {
        n->builtin = BI_ASSERT;
        n->variant = !strcmp(name, "assert_false"); /* 1: the condition must be false */
        if (check_argc(n, name, name[6] ? 2 : 1, 2)) {
            expect_type(c, arg(n, 0), T(TY_BOOL));
            if (n->args.n == 2)
                expect_type(c, arg(n, 1), T(TY_STR));
        }
        return T(TY_UNIT);
    }
    if (!strcmp(name, "assert_eq") || !strcmp(name, "assert_ne")) {
        n->builtin = name[7] == 'e' ? BI_ASSERT_EQ : BI_ASSERT_NE;
        if (check_argc(n, name, 2, 3)) {
            Type *t = value(c, arg(n, 0), NULL);
            if (!is_primitive(t) && t->kind != TY_NEVER && t->kind != TY_DURATION &&
                !(t->kind == TY_ENUM && !t->elems.n))
                diag_error_hint(arg(n, 0)->loc,
                                "it takes numbers, Bool, Char, Str, Duration and enums without payloads",
                                "cannot compare a value of type %s with '%s'", ty_name(t), name);
            expect_type(c, arg(n, 1), t);
            if (n->args.n == 3)
                expect_type(c, arg(n, 2), T(TY_STR));
        }
        return T(TY_UNIT);
    }
    if (!strcmp(name, "spawn") || !strcmp(name, "block_on")) {
        bool spawn = name[0] == 's';
        n->builtin = spawn ? BI_SPAWN : BI_BLOCK_ON;
        if (!check_argc(n, name, 1, 1))
            return T(TY_NEVER);
        if (!spawn && c->fn->is_async)
            diag_error_hint(n->loc, "use `await` instead",
                            "'block_on' cannot be called inside an async func");
        Func *f = async_operand(c, arg(n, 0), arena_printf("'%s'", name));
        if (!f)                     /* an operand of the error type passes it on */
            return arg(n, 0)->ty == &error_type ? &error_type : T(TY_NEVER);
        f->spawned = true;
        return spawn ? ty_make(TY_JOIN, f->ret, NULL) : f->ret;
    }
    if (!strcmp(name, "sleep") || !strcmp(name, "sleep_until")) {
        n->builtin = BI_SLEEP;
        n->variant = name[5] == '_';
        if (check_argc(n, name, 1, 1))
            expect_type(c, arg(n, 0), T(n->variant ? TY_INSTANT : TY_DURATION));
        return T(TY_UNIT);
    }
    if (!strcmp(name, "sleep_ms")) {            /* blocking only, as upstream */
        n->builtin = BI_SLEEP_MS;
        if (check_argc(n, name, 1, 1))
            expect_type(c, arg(n, 0), T(TY_I64));
        return T(TY_UNIT);
    }
    if (!strcmp(name, "available_parallelism")) {
        n->builtin = BI_PARALLELISM;
        check_argc(n, name, 0, 0);
        return T(TY_U32);
    }
    if (!strcmp(name, "interval")) {
        n->builtin = BI_INTERVAL;
        if (check_argc(n, name, 1, 1))
            expect_type(c, arg(n, 0), T(TY_DURATION));
        return T(TY_INTERVAL);
    }
    if (!strcmp(name, "timeout"))
        return timeout_call(c, n);
    if (!strcmp(name, "channel") || !strcmp(name, "bounded_channel")) {
        n->builtin = BI_CHANNEL;
        if (callee->targs.n != 1) {
            diag_error_hint(n->loc, "write `channel[I64](16)`",
                            "'%s' needs its element type", name);
            return T(TY_NEVER);
        }
        Type *el = resolve_type(c, callee->targs.v[0]);
        int least = name[0] == 'b';             /* bounded_channel[T](cap) = channel[T](cap) */
        if (check_argc(n, name, least, 1) && n->args.n == 1)
            expect_type(c, arg(n, 0), T(TY_I64));
        Vec pair = {0};
        vec_push(&pair, ty_make(TY_SENDER, el, NULL));
        vec_push(&pair, ty_make(TY_RECEIVER, el, NULL));
        return ty_tuple(&pair);
    }
    if (!strcmp(name, "Ok") || !strcmp(name, "Err") || !strcmp(name, "Just"))
        return enum_ctor(c, n, name, want);
    if (!strcmp(name, "OsError") && (!callee->qual || !strcmp(callee->qual, "JoinError"))) {
        n->builtin = BI_JOIN_ERROR;             /* JoinError::OsError(code) */
        n->variant = JOIN_OS_ERROR;
        if (check_argc(n, name, 1, 1))
            expect_type(c, arg(n, 0), T(TY_I32));
        return T(TY_JOIN_ERROR);
    }
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
        diag_error_hint(n->loc, name_hint(c, name), "unknown function '%s'", name);
    for (int i = 0; i < n->args.n; i++)
        value(c, arg(n, i), NULL);
    return T(TY_NEVER);
}

static Func *lookup_method(Checker *c, const char *type, const char *name) {
    return map_get(&c->methods, arena_printf("%s::%s", type, name));
}

static Type *call(Checker *c, Node *n, Type *want) {
    Node *callee = n->lhs;
    if (callee->kind != ND_PATH) {
        diag_error(n->loc, "only named functions can be called");
        return T(TY_NEVER);
    }
    if (callee->qual)
        callee->qual = unalias(c, callee->qual);
    else if (!lookup_var(c, callee->name))
        callee->name = unalias(c, callee->name);
    Func *m = callee->qual ? lookup_method(c, callee->qual, callee->name) : NULL;
    if (m && m->receiver && !m->broken) {
        diag_error_hint(n->loc, arena_printf("call it on a value: `x.%s(...)`", m->name),
                        "'%s::%s' is a method", m->owner, m->name);
        return m->ret;
    }
    if (m)
        return user_call(c, n, m);
    Func *f = callee->qual ? NULL : lookup_func(c, callee->name);
    if (f && !lookup_var(c, callee->name))
        return user_call(c, n, f);
    Variant *v = lookup_variant(c, n, callee->qual, callee->name, want);
    if (v)
        return variant_ctor(c, n, v);
    if (lookup_var(c, callee->name)) {
        diag_error(n->loc, "'%s' is a variable, not a function", callee->name);
        return T(TY_NEVER);
    }
    StructDecl *sd = callee->qual ? lookup_struct(c, callee->qual) : NULL;
    if (sd && !sd->alias) {              /* a declared type shadows the library's functions */
        diag_error_hint(n->loc, arena_printf("'%s' is the type this program declares, which hides "
                                             "the library's", sd->name),
                        "no function '%s::%s'", callee->qual, callee->name);
        for (int i = 0; i < n->args.n; i++)
            value(c, arg(n, i), NULL);
        return T(TY_NEVER);
    }
    return builtin_call(c, n, callee, want);
}

/* -------------------------------------------------------- methods */

typedef struct Method {
    TypeKind recv;              /* receiver kind; TY_NEVER = any printable */
    const char *name;
    int builtin, nargs, variant;
} Method;

static const Method methods[] = {
    {TY_NEVER, "to_string", BI_TO_STRING, 0, 0},
    {TY_STR, "len", BI_STR_LEN, 0, 0},
    {TY_STR, "is_empty", BI_STR_IS_EMPTY, 0, 0},
    {TY_MAYBE, "unwrap", BI_UNWRAP, 0, 0},
    {TY_MAYBE, "expect", BI_EXPECT, 1, 0},
    {TY_MAYBE, "unwrap_or", BI_UNWRAP_OR, 1, 0},
    {TY_MAYBE, "is_just", BI_IS_A, 0, 1},
    {TY_MAYBE, "is_nothing", BI_IS_B, 0, 0},
    {TY_OUTCOME, "unwrap", BI_UNWRAP, 0, 0},
    {TY_OUTCOME, "expect", BI_EXPECT, 1, 0},
    {TY_OUTCOME, "unwrap_or", BI_UNWRAP_OR, 1, 0},
    {TY_OUTCOME, "is_ok", BI_IS_A, 0, 0},
    {TY_OUTCOME, "is_err", BI_IS_B, 0, 1},
    {TY_OUTCOME, "unwrap_err", BI_UNWRAP_ERR, 0, 0},
    {TY_OUTCOME, "ok", BI_OK, 0, 0},
    {TY_OUTCOME, "err", BI_ERR, 0, 0},
    {TY_JOIN, "join", BI_JOIN, 0, 0},
    {TY_JOIN, "is_finished", BI_IS_FINISHED, 0, 0},
    {TY_SENDER, "send", BI_SEND, 1, 0},
    {TY_SENDER, "close", BI_CLOSE, 0, 0},
    {TY_SENDER, "duplicate", BI_DUPLICATE, 0, 0},
    {TY_SENDER, "clone", BI_DUPLICATE, 0, 0},
    {TY_RECEIVER, "recv", BI_RECV, 0, 0},
    {TY_RECEIVER, "try_recv", BI_TRY_RECV, 0, 0},
    {TY_RECEIVER, "recv_timeout", BI_RECV_TIMEOUT, 1, 0},
    {TY_RECEIVER, "len", BI_CHAN_LEN, 0, 0},
    {TY_RECEIVER, "is_empty", BI_CHAN_LEN, 0, 1},
    {TY_SENDER, "try_send", BI_TRY_SEND, 1, 0},
    {TY_RECEIVER, "close", BI_CLOSE, 0, 0},
    {TY_DURATION, "as_secs", BI_DUR_AS, 0, 0},
    {TY_DURATION, "as_millis", BI_DUR_AS, 0, 1},
    {TY_DURATION, "as_micros", BI_DUR_AS, 0, 2},
    {TY_DURATION, "as_nanos", BI_DUR_AS, 0, 3},
    {TY_DURATION, "subsec_nanos", BI_DUR_OP, 0, 0},
    {TY_DURATION, "subsec_millis", BI_DUR_OP, 0, 1},
    {TY_DURATION, "subsec_micros", BI_DUR_OP, 0, 2},
    {TY_DURATION, "is_zero", BI_DUR_OP, 0, 3},
    {TY_DURATION, "saturating_add", BI_DUR_OP, 1, 4},
    {TY_DURATION, "saturating_sub", BI_DUR_OP, 1, 5},
    {TY_DURATION, "checked_add", BI_DUR_OP, 1, 6},
    {TY_DURATION, "checked_sub", BI_DUR_OP, 1, 7},
    {TY_DURATION, "mul", BI_DUR_OP, 1, 8},
    {TY_DURATION, "div", BI_DUR_OP, 1, 9},
    {TY_DURATION, "debug_string", BI_DUR_OP, 0, 10},
    {TY_INSTANT, "elapsed", BI_ELAPSED, 0, 0},
    {TY_INSTANT, "duration_since", BI_DURATION_SINCE, 1, 0},
    {TY_INSTANT, "as_nanos", BI_INSTANT_AS_NANOS, 0, 0},
    {TY_INTERVAL, "tick", BI_TICK, 0, 0},
    {TY_MUTEX, "lock", BI_LOCK, 0, 0},
    {TY_MUTEX, "try_lock", BI_TRY_LOCK, 0, 0},
    {TY_MUTEX, "is_locked", BI_IS_LOCKED, 0, 0},
    {TY_MUTEX, "into_inner", BI_INTO_INNER, 0, 0},
    {TY_MUTEX, "get_mut", BI_MUTEX_GET_MUT, 0, 0},
    {TY_SEND_ERROR, "into_inner", BI_SEND_INTO_INNER, 0, 0},
    {TY_GUARD, "get", BI_GUARD_SELF, 0, 0},
    {TY_GUARD, "get_mut", BI_GUARD_SELF, 0, 0},
    {TY_GUARD, "deref", BI_GUARD_DEREF, 0, 0},
    {TY_SEMAPHORE, "acquire", BI_ACQUIRE, 0, 0},
    {TY_SEMAPHORE, "try_acquire", BI_TRY_ACQUIRE, 0, 0},
    {TY_SEMAPHORE, "release", BI_SEM_RELEASE, 0, 0},
    {TY_SEMAPHORE, "available_permits", BI_SEM_AVAILABLE, 0, 0},
    {TY_NOTIFY, "notify_one", BI_NOTIFY, 0, 0},
    {TY_NOTIFY, "notify_all", BI_NOTIFY, 0, 1},
    {TY_NOTIFY, "notified", BI_NOTIFIED, 0, 0},
    {TY_SOCKADDR, "port", BI_ADDR_PORT, 0, 0},
    {TY_LISTENER, "accept", BI_ACCEPT, 0, 0},
    {TY_LISTENER, "local_addr", BI_LOCAL_ADDR, 0, 0},
    {TY_LISTENER, "close", BI_TCP_CLOSE, 0, 0},
    {TY_STREAM, "read", BI_READ, 1, 0},
    {TY_STREAM, "write", BI_WRITE, 1, 0},
    {TY_STREAM, "write_all", BI_WRITE_ALL, 1, 0},
    {TY_STREAM, "set_nodelay", BI_NODELAY, 1, 0},
    {TY_STREAM, "local_addr", BI_LOCAL_ADDR, 0, 0},
    {TY_STREAM, "peer_addr", BI_PEER_ADDR, 0, 0},
    {TY_STREAM, "close", BI_TCP_CLOSE, 0, 0},
    {TY_BUFFER, "len", BI_BUFFER_OP, 0, 0},
    {TY_BUFFER, "capacity", BI_BUFFER_OP, 0, 1},
    {TY_BUFFER, "clear", BI_BUFFER_OP, 0, 2},
    {TY_BUFFER, "write_byte", BI_BUFFER_OP, 1, 3},
    {TY_BUFFER, "read_byte", BI_BUFFER_OP, 0, 4},
    {TY_BUFFER, "write_str", BI_BUFFER_OP, 1, 5},
    {TY_BUFFER, "is_empty", BI_BUFFER_OP, 0, 6},
    {TY_LIST, "push", BI_LIST_PUSH, 1, 0},
    {TY_LIST, "pop", BI_LIST_POP, 0, 0},
    {TY_LIST, "get", BI_LIST_GET, 1, 0},
    {TY_LIST, "set", BI_LIST_SET, 2, 0},
    {TY_LIST, "len", BI_LIST_LEN, 0, 0},
    {TY_LIST, "is_empty", BI_LIST_LEN, 0, 1},
    {TY_LIST, "clear", BI_LIST_CLEAR, 0, 0},
    {TY_ATOMIC, "load", BI_ATOMIC_LOAD, 1, 0},
    {TY_ATOMIC, "store", BI_ATOMIC_STORE, 2, 0},
    {TY_ATOMIC, "swap", BI_ATOMIC_RMW, 2, 0},
    {TY_ATOMIC, "fetch_add", BI_ATOMIC_RMW, 2, 1},
    {TY_ATOMIC, "fetch_sub", BI_ATOMIC_RMW, 2, 2},
    {TY_ATOMIC, "compare_exchange", BI_ATOMIC_CAS, 4, 0},
};
enum { NMETHODS = sizeof methods / sizeof methods[0] };

static bool has_to_string(Type *t) {
    return is_primitive(t) || t->kind == TY_DURATION || t->kind == TY_RECV_ERROR ||
           t->kind == TY_JOIN_ERROR || t->kind == TY_TIMEOUT_ERROR || t->kind == TY_BUFFER ||
           t->kind == TY_SOCKADDR;
}

/* A library type the prelude declares (TryRecvError...), which the
 * program must not redefine. */
static Type *lib_type(Checker *c, Node *n, const char *name) {
    StructDecl *sd = lookup_struct(c, name);
    if (parse_is_prelude(&sd->loc))
        return sd->ty;
    diag_error(n->loc, "'%s' returns the library type %s, which this program redefines", n->name,
               name);
    return T(TY_NEVER);
}

static Type *method_result(Checker *c, Node *n, const Method *m, Type *rt) {
    switch (m->builtin) {
    case BI_TRY_RECV: return ty_make(TY_OUTCOME, rt->a, lib_type(c, n, "TryRecvError"));
    case BI_RECV_TIMEOUT:
        expect_type(c, arg(n, 0), T(TY_DURATION));
        return ty_make(TY_OUTCOME, rt->a, lib_type(c, n, "RecvTimeoutError"));
    case BI_TRY_SEND:
        expect_type(c, arg(n, 0), rt->a);
        return ty_make(TY_OUTCOME, T(TY_UNIT), ty_make(TY_SEND_ERROR, rt->a, NULL));
    case BI_CHAN_LEN: return m->variant ? T(TY_BOOL) : T(TY_I64);
    case BI_ADDR_PORT: return T(TY_I64);
    case BI_DUR_OP:
        switch (m->variant) {
        case 0: case 1: case 2: return T(TY_I32);
        case 3: return T(TY_BOOL);
        case 4: case 5:
            expect_type(c, arg(n, 0), T(TY_DURATION));
            return T(TY_DURATION);
        case 6: case 7:
            expect_type(c, arg(n, 0), T(TY_DURATION));
            return ty_make(TY_MAYBE, T(TY_DURATION), NULL);
        case 8: case 9:
            expect_type(c, arg(n, 0), T(TY_I32));
            return T(TY_DURATION);
        default: return T(TY_STR);
        }
    case BI_ACCEPT: {
        Vec pair = {0};
        vec_push(&pair, T(TY_STREAM));
        vec_push(&pair, T(TY_SOCKADDR));
        return ty_make(TY_OUTCOME, ty_tuple(&pair), lib_type(c, n, "NetError"));
    }
    case BI_READ: case BI_WRITE:
        expect_type(c, arg(n, 0), T(TY_BUFFER));
        return ty_make(TY_OUTCOME, T(TY_I64), lib_type(c, n, "NetError"));
    case BI_WRITE_ALL:
        expect_type(c, arg(n, 0), T(TY_BUFFER));
        return ty_make(TY_OUTCOME, T(TY_UNIT), lib_type(c, n, "NetError"));
    case BI_NODELAY:
        expect_type(c, arg(n, 0), T(TY_BOOL));
        return ty_make(TY_OUTCOME, T(TY_UNIT), lib_type(c, n, "NetError"));
    case BI_LOCAL_ADDR: case BI_PEER_ADDR:
        return ty_make(TY_OUTCOME, T(TY_SOCKADDR), lib_type(c, n, "NetError"));
    case BI_TCP_CLOSE: return T(TY_UNIT);
    case BI_BUFFER_OP:
        switch (m->variant) {
        case 0: case 1: return T(TY_I64);
        case 3: expect_type(c, arg(n, 0), T(TY_U8)); return T(TY_UNIT);
        case 4: return ty_make(TY_MAYBE, T(TY_U8), NULL);
        case 5: expect_type(c, arg(n, 0), T(TY_STR)); return T(TY_UNIT);
        case 6: return T(TY_BOOL);
        default: return T(TY_UNIT);
        }
    case BI_TO_STRING: return T(TY_STR);
    case BI_STR_LEN: case BI_DUR_AS: case BI_INSTANT_AS_NANOS: return T(TY_I64);
    case BI_STR_IS_EMPTY: case BI_IS_A: case BI_IS_B: case BI_IS_FINISHED: return T(TY_BOOL);
    case BI_UNWRAP: return rt->a;
    case BI_EXPECT:
        expect_type(c, arg(n, 0), T(TY_STR));
        return rt->a;
    case BI_UNWRAP_OR:
        expect_type(c, arg(n, 0), rt->a);
        return rt->a;
    case BI_UNWRAP_ERR: return rt->b;
    case BI_OK: return ty_make(TY_MAYBE, rt->a, NULL);
    case BI_ERR: return ty_make(TY_MAYBE, rt->b, NULL);
    case BI_JOIN: return ty_make(TY_OUTCOME, rt->a, T(TY_JOIN_ERROR));
    case BI_SEND:
        expect_type(c, arg(n, 0), rt->a);
        return ty_make(TY_OUTCOME, T(TY_UNIT), ty_make(TY_SEND_ERROR, rt->a, NULL));
    case BI_RECV: return ty_make(TY_OUTCOME, rt->a, T(TY_RECV_ERROR));
    case BI_CLOSE: return T(TY_UNIT);
    case BI_DUPLICATE: return rt;
    case BI_ELAPSED: return T(TY_DURATION);
    case BI_LOCK: return ty_make(TY_GUARD, rt->a, NULL);
    case BI_TRY_LOCK: return ty_make(TY_MAYBE, ty_make(TY_GUARD, rt->a, NULL), NULL);
    case BI_IS_LOCKED: case BI_TRY_ACQUIRE: return T(TY_BOOL);
    case BI_INTO_INNER: case BI_GUARD_DEREF: return rt->a;
    case BI_GUARD_SELF: return rt;
    case BI_SEND_INTO_INNER: return rt->a;
    case BI_MUTEX_GET_MUT:              /* typed as a guard so that `*` reads through it */
        if (c->dereffed != n)
            diag_error_hint(n->loc, "write `*m.get_mut() = v` (or lock it)",
                            "'get_mut' gives the value in place, only under '*'");
        return ty_make(TY_GUARD, rt->a, NULL);
    case BI_ACQUIRE: case BI_SEM_RELEASE: case BI_NOTIFY: case BI_NOTIFIED: return T(TY_UNIT);
    case BI_SEM_AVAILABLE: return T(TY_I64);
    case BI_TICK: {
        Var *v = root_var(n->lhs);
        if (!v || !v->mutable_)
            diag_error_hint(n->lhs->loc, "declare it with `var`",
                            "'tick' advances its interval, which must be a mutable variable");
        return T(TY_INSTANT);
    }
    case BI_LIST_PUSH:
        expect_type(c, arg(n, 0), rt->a);
        return T(TY_UNIT);
    case BI_LIST_POP: return rt->a;
    case BI_LIST_GET:
        expect_type(c, arg(n, 0), T(TY_I64));
        return rt->a;
    case BI_LIST_SET:
        expect_type(c, arg(n, 0), T(TY_I64));
        expect_type(c, arg(n, 1), rt->a);
        return T(TY_UNIT);
    case BI_LIST_LEN: return m->variant ? T(TY_BOOL) : T(TY_I64);
    case BI_LIST_CLEAR: return T(TY_UNIT);
    case BI_ATOMIC_LOAD:
        expect_type(c, arg(n, 0), T(TY_ORDERING));
        return rt->a;
    case BI_ATOMIC_STORE: case BI_ATOMIC_RMW:
        if (m->variant && rt->a->kind == TY_BOOL)
            diag_error(n->loc, "'%s' needs an integer atomic, not %s", m->name, ty_name(rt));
        expect_type(c, arg(n, 0), rt->a);
        expect_type(c, arg(n, 1), T(TY_ORDERING));
        return m->builtin == BI_ATOMIC_STORE ? T(TY_UNIT) : rt->a;
    case BI_ATOMIC_CAS:
        expect_type(c, arg(n, 0), rt->a);
        expect_type(c, arg(n, 1), rt->a);
        expect_type(c, arg(n, 2), T(TY_ORDERING));
        expect_type(c, arg(n, 3), T(TY_ORDERING));
        return ty_make(TY_OUTCOME, rt->a, rt->a);
    case BI_DURATION_SINCE:
        expect_type(c, arg(n, 0), T(TY_INSTANT));
        return T(TY_DURATION);
    }
    return T(TY_NEVER);
}


/* recv.name(args) where recv's type has `name` in an impl block. */
static Type *user_method(Checker *c, Node *n, Func *m) {
    if (m->broken)                  /* its receiver is unknown too: no complaints */
        return user_call(c, n, m);
    if (!m->receiver) {
        diag_error_hint(n->loc, arena_printf("call it as `%s::%s(...)`", m->owner, m->name),
                        "'%s::%s' takes no receiver", m->owner, m->name);
        return m->ret;
    }
    if (m->receiver == 2) {
        Var *v = root_var(n->lhs);
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
    if (n->args.n || (strcmp(n->name, "get") && strcmp(n->name, "get_mut") &&
                      strcmp(n->name, "deref")))
        return false;
    if (under_star && n->name[0] == 'g')
        return true;
    return !(t->a->kind == TY_STRUCT || t->a->kind == TY_ENUM) ||
           !lookup_method(c, t->a->sd->name, n->name);
}

static Type *method(Checker *c, Node *n) {
    bool under_star = c->dereffed == n;
    Type *rt = value(c, n->lhs, NULL);
    if (rt->kind == TY_NEVER)
        return rt;
    if (n->op && !strcmp(n->op, "[]") && rt->kind != TY_LIST) {
        diag_error_hint(n->loc, "only a List can be indexed", "cannot index a value of type %s",
                        ty_name(rt));
        value(c, arg(n, 0), NULL);
        return T(TY_NEVER);
    }
    if (rt->kind == TY_GUARD && !guard_own(c, n, rt, under_star))
        rt = see_through(n, rt);
    Func *m = (rt->kind == TY_STRUCT || rt->kind == TY_ENUM) ? lookup_method(c, rt->sd->name, n->name) : NULL;
    if (m)
        return user_method(c, n, m);
    Vec cands = {0};
    if (rt->kind == TY_STRUCT || rt->kind == TY_ENUM) {            /* the type's own methods */
        const char *prefix = arena_printf("%s::", rt->sd->name);
        for (int i = 0; i < c->methods.cap; i++)
            if (c->methods.keys[i] && !strncmp(c->methods.keys[i], prefix, strlen(prefix)))
                vec_push(&cands, (void *)(c->methods.keys[i] + strlen(prefix)));
    }
    for (int i = 0; i < NMETHODS; i++) {
        const Method *m = &methods[i];
        bool fits = m->recv == TY_NEVER ? has_to_string(rt) : m->recv == rt->kind;
        if (!fits)
            continue;
        vec_push(&cands, (void *)m->name);
        if (strcmp(m->name, n->name))
            continue;
        n->builtin = m->builtin;
        n->variant = m->variant;
        if (check_argc(n, n->name, m->nargs, m->nargs))
            return method_result(c, n, m, rt);
        for (int i = 0; i < n->args.n; i++)     /* still report errors inside */
            value(c, arg(n, i), NULL);
        return T(TY_NEVER);
    }
    const char *hint = suggest(n->name, (const char **)cands.v, cands.n);
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

static Type *binary(Checker *c, Node *n) {
    const char *op = n->op;
    if (!strcmp(op, "and") || !strcmp(op, "or")) {
        expect_type(c, n->lhs, T(TY_BOOL));
        expect_type(c, n->rhs, T(TY_BOOL));
        return T(TY_BOOL);
    }
    Type *l = value(c, n->lhs, NULL);
    bool named = l->kind == TY_ENUM || l->kind == TY_JOIN_ERROR || l->kind == TY_ORDERING;
    Type *r = value(c, n->rhs, ty_is_num(l) || named ? l : NULL);   /* `e == Empty` */
    if (l->kind == TY_NEVER || r->kind == TY_NEVER)
        return is_cmp(op) ? T(TY_BOOL) : (l->kind == TY_NEVER ? r : l);
    if (is_cmp(op)) {
        bool eq = op[0] == '=' || op[0] == '!';
        bool ok = compatible(r, l) &&
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
    bool ok = bits ? ty_is_int(l) && ty_is_int(r) : ty_is_num(l) && compatible(r, l);
    if (!ok)
        diag_error(n->loc, "operator '%s' cannot be applied to %s and %s", op, ty_name(l),
                   ty_name(r));
    return l;
}

static Type *unary(Checker *c, Node *n) {
    if (!strcmp(n->op, "not")) {
        expect_type(c, n->lhs, T(TY_BOOL));
        return T(TY_BOOL);
    }
    n->lhs->negated = n->lhs->kind == ND_INT && !strcmp(n->op, "-");
    Type *t = value(c, n->lhs, NULL);
    bool ok = !strcmp(n->op, "-") ? ty_is_num(t) : ty_is_int(t);
    if (!ok && t->kind != TY_NEVER)
        diag_error(n->loc, "operator '%s' cannot be applied to %s", n->op, ty_name(t));
    return t;
}

static Type *cast(Checker *c, Node *n) {
    Type *from = value(c, n->lhs, NULL);
    Type *to = resolve_type(c, n->texpr);
    bool ok = (ty_is_num(from) || from->kind == TY_CHAR || from->kind == TY_BOOL) &&
              ty_is_num(to);
    if (!ok && from->kind != TY_NEVER && to != &error_type)
        diag_error(n->loc, "cannot convert %s to %s with 'as'", ty_name(from), ty_name(to));
    return to;
}

/* ------------------------------------------------------ async */

/* The type of awaiting `e` (of type t): a future's result, a join's
 * Outcome, a wait-capable operation's own type; at: where to complain. */
static Type *awaited_type(Checker *c, Node *at, Node *e, Type *t) {
    if (t->kind == TY_FUTURE) {
        Func *f = t->fn;
        bool known = false;
        for (int i = 0; i < c->fn->callees.n; i++)
            known |= c->fn->callees.v[i] == f;
        if (!known)
            vec_push(&c->fn->callees, f);
        return f->ret;
    }
    if (t->kind == TY_JOIN)
        return ty_make(TY_OUTCOME, t->a, T(TY_JOIN_ERROR));
    bool waitable = (e->kind == ND_CALL || e->kind == ND_METHOD) &&
                    (e->builtin == BI_SLEEP || e->builtin == BI_SEND || e->builtin == BI_RECV ||
                     e->builtin == BI_YIELD || e->builtin == BI_TIMEOUT || e->builtin == BI_TICK ||
                     e->builtin == BI_LOCK || e->builtin == BI_ACQUIRE ||
                     e->builtin == BI_NOTIFIED || e->builtin == BI_RECV_TIMEOUT ||
                     e->builtin == BI_ACCEPT || e->builtin == BI_CONNECT || e->builtin == BI_READ ||
                     e->builtin == BI_WRITE || e->builtin == BI_WRITE_ALL);
    if (waitable || t->kind == TY_NEVER)
        return t;
    diag_error(at->loc, "cannot await a value of type %s", ty_name(t));
    return t;
}

static Type *await_expr(Checker *c, Node *n) {
    if (!c->fn->is_async)
        diag_error_hint(n->loc, "make the enclosing function an `async func`",
                        "'await' is only allowed inside 'async func'");
    Node *e = n->lhs;
    Node *outer = c->awaited;
    c->awaited = c->started = e;
    Type *t = expr(c, e, NULL);
    c->awaited = outer;
    n->await_id = c->fn->awaits.n;
    vec_push(&c->fn->awaits, n);
    return awaited_type(c, n, e, t);
}

/* SocketAddr::parse(text), TcpListener::bind(addr), TcpStream::connect(addr)
 * (addr: a SocketAddr or its text), Buffer::new(cap). */
static Type *net_ctor(Checker *c, Node *n, Node *callee) {
    static const struct { const char *qual, *name; int builtin; TypeKind ok; } ctors[] = {
        {"SocketAddr", "parse", BI_ADDR_PARSE, TY_SOCKADDR},
        {"TcpListener", "bind", BI_BIND, TY_LISTENER},
        {"AsyncTcpListener", "bind", BI_BIND, TY_LISTENER},
        {"TcpStream", "connect", BI_CONNECT, TY_STREAM},
        {"AsyncTcpStream", "connect", BI_CONNECT, TY_STREAM},
        {"Buffer", "new", BI_BUFFER_NEW, TY_BUFFER},
    };
    for (size_t i = 0; i < sizeof ctors / sizeof ctors[0]; i++) {
        if (strcmp(callee->qual, ctors[i].qual) || strcmp(callee->name, ctors[i].name))
            continue;
        n->builtin = ctors[i].builtin;
        if (!check_argc(n, callee->name, 1, 1))
            return T(TY_NEVER);
        if (n->builtin == BI_BUFFER_NEW) {
            expect_type(c, arg(n, 0), T(TY_I64));
            return T(TY_BUFFER);
        }
        Type *a = value(c, arg(n, 0), NULL);
        if (a->kind != TY_STR && (n->builtin == BI_ADDR_PARSE || a->kind != TY_SOCKADDR) &&
            a->kind != TY_NEVER)
            diag_error(arg(n, 0)->loc, "type mismatch: expected %s, found %s",
                       n->builtin == BI_ADDR_PARSE ? "Str" : "SocketAddr or Str", ty_name(a));
        return ty_make(TY_OUTCOME, T(ctors[i].ok), lib_type(c, n, "NetError"));
    }
    diag_error(n->loc, "no function '%s::%s'", callee->qual, callee->name);
    return T(TY_NEVER);
}

/* timeout(d, fut): Outcome[T, TimeoutError], only as await's operand. */
static Type *timeout_call(Checker *c, Node *n) {
    n->builtin = BI_TIMEOUT;
    bool awaited = c->awaited == n;
    c->awaited = NULL;
    if (!awaited)
        diag_error_hint(n->loc, "write `await timeout(d, fut)` inside an async func",
                        "'timeout' must be awaited");
    if (!check_argc(n, "timeout", 2, 2))
        return T(TY_NEVER);
    expect_type(c, arg(n, 0), T(TY_DURATION));
    Node *fut = arg(n, 1);
    /* A call operand is awaited by the timeout, so an inner timeout gets
     * the one error below rather than "must be awaited" as well; an inner
     * timeout that failed itself (Never) has already said so. */
    if (fut->kind == ND_CALL)
        c->awaited = fut;
    c->started = fut;
    Type *t = awaited_type(c, n, fut, expr(c, fut, NULL));
    c->awaited = NULL;
    if (fut->builtin == BI_TIMEOUT) {
        if (t->kind != TY_NEVER)
            diag_error_hint(fut->loc, "move the inner timeout into an async func",
                            "a timeout cannot directly wrap another timeout");
        return T(TY_NEVER);
    }
    return ty_make(TY_OUTCOME, t, T(TY_TIMEOUT_ERROR));
}

/* --------------------------------------------------- control flow */

/* The type two branches agree on: Never yields to the other one. When
 * the value is discarded, branches of different types make a Unit. */
static Type *join_types(Node *at, Type *a, Type *b, bool discard) {
    if (a->kind == TY_NEVER)
        return b;
    if (b->kind == TY_NEVER || compatible(b, a))
        return a;
    if (discard)
        return T(TY_UNIT);
    diag_error(at->loc, "branches have different types: %s and %s", ty_name(a), ty_name(b));
    return a;
}

/* Is the value of `n` (an if or when) thrown away? */
static bool discarded(Checker *c, Node *n, Type *want) {
    return c->stmt == n || (want && want->kind == TY_UNIT);
}

static Type *block(Checker *c, Node *n, Type *want) {
    push_scope(c);
    Type *last = T(TY_UNIT);
    for (int i = 0; i < n->args.n; i++) {
        c->stmt = n->args.v[i];
        last = expr(c, n->args.v[i], NULL);
    }
    Type *t = n->lhs ? value(c, n->lhs, want) : (last->kind == TY_NEVER ? last : T(TY_UNIT));
    pop_scope(c);
    return t;
}

static Type *if_expr(Checker *c, Node *n, Type *want) {
    bool discard = discarded(c, n, want);
    expect_type(c, n->cond, T(TY_BOOL));
    Type *a = value(c, n->then, n->els ? want : NULL);
    if (!n->els)
        return T(TY_UNIT);
    Type *b = value(c, n->els, a->kind == TY_NEVER ? want : a);
    return join_types(n->els, a, b, discard);
}

static Type *when_expr(Checker *c, Node *n, Type *want) {
    bool discard = discarded(c, n, want);
    int errors = diag_count();
    Type *st = value(c, n->cond, NULL);
    bool bad = failed(st, errors);
    Type *result = T(TY_NEVER);
    for (int i = 0; i < n->args.n; i++) {
        Node *arm = n->args.v[i];
        push_scope(c);
        for (int j = 0; j < arm->args.n; j++) {
            Node *p = arm->args.v[j];
            if (bad)
                never_pattern(c, p);
            else
                pattern(c, p, st);
            if (arm->args.n > 1 && c->scope->vars.n > 0) {
                diag_error(p->loc, "alternative patterns cannot bind names");
                break;
            }
        }
        if (arm->cond)
            expect_type(c, arm->cond, T(TY_BOOL));
        Type *t = expr(c, arm->body, result->kind == TY_NEVER ? want : result);
        if (t->kind == TY_FUTURE)
            t = value(c, arm->body, NULL);
        result = join_types(arm->body, result, arm->body->kind == ND_ASSIGN ? T(TY_UNIT) : t,
                            discard);
        pop_scope(c);
    }
    return n->args.n ? result : T(TY_UNIT);
}

static Type *loop_body(Checker *c, Node *body) {
    c->loops++;
    c->repeats++;
    value(c, body, T(TY_UNIT));  /* its value is discarded: a tail `when`'s arms may differ */
    c->repeats--;
    c->loops--;
    return T(TY_UNIT);
}

/* A condition evaluated before each iteration. */
static void loop_cond(Checker *c, Node *cond, Type *t) {
    c->repeats++;
    expect_type(c, cond, t);
    c->repeats--;
}

static Type *loop_expr(Checker *c, Node *n) {
    push_scope(c);
    if (n->loop_var) {
        Node *let = n->init;
        Type *t = resolve_type(c, let->texpr);
        if (!ty_is_int(t))
            diag_error(let->loc, "a loop counter must have an integer type, found %s", ty_name(t));
        let->var = let->pat->var = declare(c, let->pat->name, t, true);
        loop_cond(c, n->cond, t);
    } else {
        loop_cond(c, n->cond, T(TY_BOOL));
    }
    loop_body(c, n->body);
    pop_scope(c);
    return T(TY_UNIT);
}

static Type *for_expr(Checker *c, Node *n) {
    Node *r = n->cond;
    Type *t = T(TY_I64);
    if (r->kind != ND_RANGE) {
        Type *lt = value(c, r, NULL);
        if (lt->kind == TY_LIST)
            t = lt->a;                      /* for x in list */
        else if (lt->kind != TY_NEVER)
            diag_error_hint(r->loc, "iterate over a range: `for i in 0 to n`",
                            "'for' needs a range ('a to b' or 'a through b') or a List, not %s",
                            ty_name(lt));
    } else {
        t = value(c, r->lhs, NULL);
        if (!ty_is_int(t) && t->kind != TY_NEVER) {
            diag_error(r->lhs->loc, "a range bound must be an integer, found %s", ty_name(t));
            t = T(TY_I64);
        }
        expect_type(c, r->rhs, t);
        r->ty = t;
    }
    push_scope(c);
    if (n->pat->kind == ND_PBIND)             /* else `_` (parse.c: for_expr) */
        n->var = n->pat->var = declare(c, n->pat->name, t, false);
    loop_body(c, n->body);
    pop_scope(c);
    return T(TY_UNIT);
}

static Type *return_expr(Checker *c, Node *n) {
    if (n->lhs)
        expect_type(c, n->lhs, c->fn->ret);
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
        expect_type(c, n->args.v[i], T(f ? TY_I32 : TY_I64));
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

static Type *struct_lit(Checker *c, Node *n) {
    n->name = unalias(c, n->name);
    StructDecl *sd = lookup_struct(c, n->name);
    Type *lib = sd ? NULL : lib_struct_lit(c, n);
    if (lib)
        return lib;
    if (sd && sd->alias && sd->ty && sd->ty->kind == TY_STRUCT)
        sd = sd->ty->sd;                      /* an alias of a struct builds it */
    if (sd && (sd->alias || sd->is_enum)) {
        diag_error(n->loc, "'%s' is not a struct type", n->name);
        sd = NULL;
    } else if (!sd) {
        diag_error_hint(n->loc, type_hint(c, n->name), "unknown type '%s'", n->name);
    }
    if (!sd) {
        for (int i = 0; i < n->args.n; i++)
            value(c, n->args.v[i], NULL);
        return T(TY_NEVER);
    }
    bool based = false; /* `..base`: the missing fields are read from it */
    if (n->lhs) {
        Type *bt = value(c, n->lhs, NULL);
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
        expect_type(c, init, fld->var->ty);
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

static Type *tuple(Checker *c, Node *n, Type *want) {
    Vec elems = {0};
    for (int i = 0; i < n->args.n; i++) {
        Type *w = want && want->kind == TY_TUPLE && want->elems.n == n->args.n
                      ? want->elems.v[i] : NULL;
        vec_push(&elems, value(c, n->args.v[i], w));
    }
    return ty_tuple(&elems);
}

/* A guard stands for the value it guards: wraps `n->lhs` (a guard) in a
 * dereference and returns the guarded type. */
static Type *see_through(Node *n, Type *t) {
    Node *d = arena_alloc(sizeof *d);
    d->kind = ND_DEREF;
    d->loc = n->lhs->loc;
    d->lhs = n->lhs;
    d->ty = t->a;
    n->lhs = d;
    return t->a;
}

/* *g: the value guarded by MutexGuard g. */
static Type *deref(Checker *c, Node *n) {
    Node *outer = c->dereffed;
    c->dereffed = n->lhs;
    Type *t = value(c, n->lhs, NULL);
    c->dereffed = outer;
    if (t->kind == TY_GUARD)
        return t->a;
    if (t->kind != TY_NEVER)
        diag_error_hint(n->loc, "only a MutexGuard (from `await m.lock()`) can be dereferenced",
                        "cannot dereference a value of type %s", ty_name(t));
    return T(TY_NEVER);
}

static Type *field(Checker *c, Node *n) {
    Node *outer = c->dereffed;              /* `*s.m.get_mut()`: s.m is checked inside */
    c->dereffed = n->lhs;                   /* m.get_mut().f reads through, as *m.get_mut() */
    Type *t = value(c, n->lhs, NULL);
    c->dereffed = outer;
    if (t->kind == TY_NEVER)
        return t;
    if (t->kind == TY_GUARD)
        t = see_through(n, t);
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
    diag_error_hint(n->loc, suggest(n->name, (const char **)cands.v, cands.n),
                    "type %s has no field '%s'", ty_name(t), n->name);
    return T(TY_NEVER);
}

/* -------------------------------------------------- bindings */

static Var *root_var(Node *n) {
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

static Type *assign(Checker *c, Node *n) {
    Node *l = n->lhs;
    if (l->kind != ND_PATH && l->kind != ND_FIELD && l->kind != ND_DEREF) {
        diag_error(l->loc, "cannot assign to this expression");
        value(c, n->rhs, NULL);
        return T(TY_UNIT);
    }
    Type *lt = value(c, l, NULL);
    Var *v = root_var(l);
    if (v && l->kind != ND_DEREF)
        v->reads--;                 /* a target, not a read (through a guard it is one) */
    if (!v) {
        if (!through_guard(l))
            diag_error(l->loc, "cannot assign to this expression");
    } else if (v->const_init)
        diag_error(l->loc, "cannot assign to constant '%s'", v->name);
    else if (!v->mutable_)
        diag_error_hint(l->loc, arena_printf("declare it with `var %s` or `let mut %s`",
                                             v->name, v->name),
                        "cannot assign to immutable binding '%s'", v->name);
    if (strcmp(n->op, "=")) {
        Type *rt = value(c, n->rhs, lt);
        bool ok = lt->kind == TY_STR ? !strcmp(n->op, "+=") && rt->kind == TY_STR
                                     : ty_is_num(lt) && compatible(rt, lt);
        if (!ok)
            diag_error(n->loc, "operator '%s' cannot be applied to %s and %s", n->op,
                       ty_name(lt), ty_name(rt));
    } else {
        expect_type(c, n->rhs, lt);
    }
    return T(TY_UNIT);
}

static bool is_variant_name(const char *s) {
    return !strcmp(s, "Ok") || !strcmp(s, "Err") || !strcmp(s, "Just") || !strcmp(s, "Nothing");
}

static void join_error_pattern(Checker *c, Node *p) {
    p->variant = join_error_variant(p->name);
    int want = p->variant == JOIN_OS_ERROR;
    if (p->args.n != want)
        diag_error(p->loc, "pattern '%s' takes %d field%s but %d %s given", p->name, want,
                   want == 1 ? "" : "s", p->args.n, p->args.n == 1 ? "was" : "were");
    else if (want)
        pattern(c, p->args.v[0], T(TY_I32));
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
        pattern(c, p->args.v[i], v->types.v[i]);
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
    StructDecl *sd = lookup_struct(c, p->name);
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
            pattern(c, sub, t->elems.v[f]);
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
static void never_pattern(Checker *c, Node *p) {
    p->ty = T(TY_NEVER);
    if (p->kind == ND_PBIND && !is_variant_name(p->name))
        p->var = declare(c, p->name, p->ty, p->is_var);
    for (int i = 0; i < p->args.n; i++)
        never_pattern(c, p->args.v[i]);
}

static void pattern(Checker *c, Node *p, Type *t) {
    p->ty = t;
    if (p->qual)
        p->qual = unalias(c, p->qual);
    if (p->kind == ND_PVARIANT || p->kind == ND_PSTRUCT)
        p->name = unalias(c, p->name);
    if (p->kind == ND_PBIND) {  /* `use E::V as W`: a bare W matches V, binds nothing */
        const char *target = unalias(c, p->name);
        if (names_variant(t, target) || is_variant_name(target) ||
            (t->kind == TY_JOIN_ERROR && join_error_variant(target)))
            p->name = target;
    }
    if ((p->kind == ND_PVARIANT || (p->kind == ND_PBIND && names_variant(t, p->name))) &&
        t->kind == TY_ENUM) {
        enum_pattern(c, p, t);
        return;
    }
    if ((p->kind == ND_PBIND || p->kind == ND_PVARIANT) && t->kind == TY_JOIN_ERROR &&
        join_error_variant(p->name)) {
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
        p->var = declare(c, p->name, t, p->is_var);
        return;
    case ND_PSTRUCT:
        struct_pattern(c, p, t);
        return;
    case ND_POR: {
        int before = c->scope->vars.n;
        for (int i = 0; i < p->args.n; i++)
            pattern(c, p->args.v[i], t);
        if (c->scope->vars.n > before)
            diag_error(p->loc, "alternative patterns cannot bind names");
        return;
    }
    case ND_PLIT: {
        Type *lt = value(c, p->lhs, t);
        if (!compatible(lt, t) || !(is_primitive(t)))
            diag_error(p->loc, "pattern of type %s cannot match a value of type %s",
                       ty_name(lt), ty_name(t));
        else if (p->rhs && !(ty_is_num(t) || t->kind == TY_CHAR))
            diag_error(p->loc, "a range pattern needs numbers or characters, not %s", ty_name(t));
        if (p->rhs)
            expect_type(c, p->rhs, t);
        return;
    }
    case ND_PTUPLE:
        if (t->kind != TY_TUPLE || t->elems.n != p->args.n) {
            diag_error(p->loc, "tuple pattern cannot match a value of type %s", ty_name(t));
            return;
        }
        for (int i = 0; i < p->args.n; i++)
            pattern(c, p->args.v[i], t->elems.v[i]);
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
            pattern(c, p->args.v[0], !strcmp(p->name, "Err") ? t->b : t->a);
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
static Type *constant(Checker *c, Node *n) {
    Type *t = resolve_type(c, n->texpr);
    expect_type(c, n->init, t);
    Node *bad = not_constant(n->init);
    if (bad)
        diag_error(bad->loc, "a constant's value must be built from literals, operators "
                             "and earlier constants");
    Var *v = declare(c, n->pat->name, t, false);
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
    Node *vals = new_node(call->args.n ? ND_TUPLE : ND_UNIT, call->loc, NULL);
    Node *pat = new_node(call->args.n ? ND_PTUPLE : ND_PWILD, n->pat->loc, NULL);
    Vec types = {0};
    for (int i = 0; i < call->args.n; i++) {
        Node *a = arg(call, i);
        const char *name = arena_printf("__arg%d", ++c->next_id);
        vec_push(&vals->args, a);
        vec_push(&pat->args, new_node(ND_PBIND, a->loc, name));
        vec_push(&later->args, new_node(ND_PATH, a->loc, name));
        vec_push(&types, a->ty);
    }
    vals->ty = call->args.n ? ty_tuple(&types) : T(TY_UNIT);
    pattern(c, pat, vals->ty);
    Var *v = declare(c, n->pat->name, t, false);
    v->future = later;
    v->repeats = c->repeats;
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
    else {
        *n = *v->future;
        return call(c, n, NULL);
    }
    return &error_type;
}

static Type *let(Checker *c, Node *n) {
    if (n->is_const)
        return constant(c, n);
    int errors = diag_count();
    Type *t = n->texpr ? resolve_type(c, n->texpr) : NULL;
    Type *ann = t == &error_type ? NULL : t;    /* no errors about the initializer */
    if (n->init) {
        bool may_hold = !n->texpr && n->pat->kind == ND_PBIND && n->init->kind == ND_CALL;
        Type *it = may_hold ? expr(c, n->init, NULL) : value(c, n->init, ann);
        if (it->kind == TY_FUTURE && diag_count() > errors)
            it = &error_type;   /* a call with errors (arguments unchecked): no more */
        else if (it->kind == TY_FUTURE)
            return future_let(c, n, it);
        if (ann && !compatible(it, ann))
            mismatch(n->init, it, ann);
        if (!ann && !n->texpr)  /* a diverging init gives Unit; an erroneous one Never */
            t = it->kind == TY_NEVER && !failed(it, errors) ? T(TY_UNIT) : it;
    } else if (n->pat->kind != ND_PBIND) {
        diag_error(n->loc, "a binding without an initializer must name one variable");
        return T(TY_UNIT);
    } else if (ty_managed(t) && t->kind != TY_STR) {
        diag_error(n->loc, "a binding of type %s needs an initializer", ty_name(t));
    }
    if (n->pat->kind == ND_PBIND && !is_variant_name(n->pat->name)) {
        n->pat->ty = t;
        n->var = n->pat->var = declare(c, n->pat->name, t, n->is_var || n->pat->is_var || !n->init);
    } else if (n->pat->kind == ND_PTUPLE || n->pat->kind == ND_PWILD ||
               n->pat->kind == ND_PSTRUCT) {
        if (t->kind == TY_NEVER)    /* only from an erroneous initializer or annotation */
            never_pattern(c, n->pat);
        else
            pattern(c, n->pat, t);
    } else {
        diag_error(n->pat->loc, "this pattern is not allowed in 'let'; use 'when'");
    }
    return T(TY_UNIT);
}

static Type *path(Checker *c, Node *n, Type *want) {
    Var *v = n->qual ? NULL : lookup_var(c, n->name);
    if (!v && !n->qual && !strcmp(n->name, "self"))
        v = lookup_var(c, "this");                  /* `self` = `this` */
    if (v && v->future)
        return future_use(c, n, v);
    if (v) {
        n->var = v;
        v->reads++;
        return v->ty;
    }
    if (n->qual)
        n->qual = unalias(c, n->qual);
    else
        n->name = unalias(c, n->name);
    Variant *variant = lookup_variant(c, n, n->qual, n->name, want);
    if (variant)
        return variant_ctor(c, n, variant);
    if (!strcmp(n->name, "Nothing"))
        return enum_ctor(c, n, "Nothing", want);
    bool bare = !n->qual;
    if ((bare || !strcmp(n->qual, "JoinError")) && join_error_variant(n->name)) {
        n->builtin = BI_JOIN_ERROR;             /* payload-free JoinError values */
        n->variant = join_error_variant(n->name);
        if (n->variant == JOIN_OS_ERROR)
            diag_error_hint(n->loc, "write `OsError(code)`",
                            "variant 'OsError' takes 1 field but 0 were given");
        return T(TY_JOIN_ERROR);
    }
    if ((bare && ordering_code(n->name) >= 0) || (n->qual && !strcmp(n->qual, "Ordering"))) {
        n->builtin = BI_ORDERING;
        n->variant = ordering_code(n->name);
        if (n->variant < 0) {
            static const char *names[] = {"Relaxed", "Acquire", "Release", "AcqRel", "SeqCst"};
            diag_error_hint(n->loc, suggest(n->name, names, 5), "no ordering 'Ordering::%s'",
                            n->name);
        }
        return T(TY_ORDERING);
    }
    Func *f = lookup_func(c, n->name);
    if (f) {
        diag_error_hint(n->loc, arena_printf("call it: `%s(...)`", f->name),
                        "function '%s' used as a value", n->name);
        return T(TY_NEVER);
    }
    diag_error_hint(n->loc, name_hint(c, n->name), "unknown name '%s'", n->name);
    return T(TY_NEVER);
}

/* ------------------------------------------------------ dispatch */

/* `Type.f(args)` is `Type::f(args)` (section 5 MAY) where Type names a
 * type and no variable: the method node becomes that call. */
static bool type_dot_call(Checker *c, Node *n) {
    Node *l = n->lhs;
    if (l->kind != ND_PATH || l->qual || n->op || lookup_var(c, l->name) ||
        !is_type_name(c, unalias(c, l->name)))
        return false;
    l->qual = l->name;
    l->name = n->name;
    n->kind = ND_CALL;
    n->name = NULL;
    n->loc = l->loc;
    return true;
}

static Type *expr_kind(Checker *c, Node *n, Type *want) {
    switch (n->kind) {
    case ND_INT: return int_lit(n, want);
    case ND_FLOAT:
        return (n->suffix && !strcmp(n->suffix, "f32")) || (want && want->kind == TY_F32)
                   ? T(TY_F32) : T(TY_F64);
    case ND_BOOL: return T(TY_BOOL);
    case ND_CHAR: return T(TY_CHAR);
    case ND_STR: return str_lit(c, n);
    case ND_UNIT: return T(TY_UNIT);
    case ND_PATH: return path(c, n, want);
    case ND_CALL: return call(c, n, want);
    case ND_METHOD: return type_dot_call(c, n) ? call(c, n, want) : method(c, n);
    case ND_FIELD: return field(c, n);
    case ND_UNARY: return unary(c, n);
    case ND_DEREF: return deref(c, n);
    case ND_BINARY: return binary(c, n);
    case ND_AWAIT: return await_expr(c, n);
    case ND_IF: return if_expr(c, n, want);
    case ND_WHEN: return when_expr(c, n, want);
    case ND_BLOCK: return block(c, n, want);
    case ND_LOOP: return loop_expr(c, n);
    case ND_WHILE:
        loop_cond(c, n->cond, T(TY_BOOL));
        return loop_body(c, n->body);
    case ND_FOR: return for_expr(c, n);
    case ND_BREAK: case ND_CONTINUE:
        if (c->loops == 0)
            diag_error(n->loc, "'%s' outside of a loop", n->kind == ND_BREAK ? "break" : "continue");
        return T(TY_NEVER);
    case ND_RETURN: return return_expr(c, n);
    case ND_STRUCTLIT: return struct_lit(c, n);
    case ND_TUPLE: return tuple(c, n, want);
    case ND_CAST: return cast(c, n);
    case ND_TERNARY: {
        expect_type(c, n->cond, T(TY_BOOL));
        Type *a = value(c, n->then, want);
        return join_types(n->els, a, value(c, n->els, a), false);
    }
    case ND_ASSIGN: return assign(c, n);
    case ND_LET: return let(c, n);
    case ND_RANGE:
        diag_error(n->loc, "a range can only be used in a 'for' loop");
        return T(TY_NEVER);
    default:
        diag_error(n->loc, "unexpected expression");
        return T(TY_NEVER);
    }
}

/* Checks any expression, async calls included (the operand of await,
 * spawn and block_on). */
static Type *expr(Checker *c, Node *n, Type *want) {
    n->ty = expr_kind(c, n, want);
    return n->ty;
}

/* Checks an expression used as a value: an async call is not one. */
static Type *value(Checker *c, Node *n, Type *want) {
    Type *t = expr(c, n, want);
    if (t->kind == TY_FUTURE) {
        diag_error_hint(n->loc, arena_printf("write `await %s(...)` or `spawn(%s(...))`",
                                             t->fn->name, t->fn->name),
                        "the result of async function '%s' must be awaited", t->fn->name);
        n->ty = T(TY_NEVER);
        return n->ty;
    }
    return t;
}

/* ---------------------------------------------------------- items */

/* The receiver `this` of a method: the value, or for `mut this` a
 * reference to the caller's variable. */
static void receiver(Checker *c, Func *f) {
    StructDecl *sd = lookup_struct(c, f->owner);
    if (!sd) {
        diag_error(f->loc, "'impl %s': no type '%s' is declared", f->owner, f->owner);
        return;
    }
    if (!f->receiver)
        return;
    if (f->is_async)
        diag_error_hint(f->loc, "write an async func that takes the value as a parameter",
                        "async methods are not supported");
    Var *v = arena_alloc(sizeof *v);
    v->name = "this";
    v->cname = arena_printf("this_%d", ++c->next_id);
    v->ty = sd->ty;
    v->is_param = true;
    v->mutable_ = v->by_ref = f->receiver == 2;
    v->owner = f;
    f->this_var = v;
}

static void check_signature(Checker *c, Func *f) {
    if (f->broken) {                /* a syntax error: its result is an error */
        f->ret = &error_type;
        return;
    }
    if (f->owner)
        receiver(c, f);
    for (int i = 0; i < f->params.n; i++) {
        Param *pa = f->params.v[i];
        Var *v = arena_alloc(sizeof *v);
        v->name = pa->name;
        v->cname = arena_printf("%s_%d", pa->name, ++c->next_id);
        v->ty = resolve_type(c, pa->texpr);
        v->is_param = true;
        v->owner = f;
        pa->var = v;
    }
    f->ret = f->ret_texpr ? resolve_type(c, f->ret_texpr) : T(TY_UNIT);
}

static void check_body(Checker *c, Func *f) {
    if (f->broken)
        return;
    c->fn = f;
    c->scope = c->globals;
    push_scope(c);
    if (f->this_var)
        vec_push(&c->scope->vars, f->this_var);
    for (int i = 0; i < f->params.n; i++)
        vec_push(&c->scope->vars, ((Param *)f->params.v[i])->var);
    Type *t = value(c, f->body, f->ret);
    if (f->ret->kind != TY_UNIT && !compatible(t, f->ret)) {
        Node *at = f->body->lhs ? f->body->lhs : f->body;
        if (t->kind == TY_UNIT && !f->body->lhs)
            diag_error(f->loc, "function '%s' must return a value of type %s", f->name,
                       ty_name(f->ret));
        else
            mismatch(at, t, f->ret);
    }
    pop_scope(c);
}

/* Test mode: every @test function takes no parameters and returns Unit
 * or an integer status (non-zero fails); async ones run via block_on. */
static void check_tests(Checker *c) {
    for (int i = 0; i < c->prog->funcs.n; i++) {
        Func *f = c->prog->funcs.v[i];
        if (!f->is_test)
            continue;
        if ((f->params.n && !f->broken) || f->receiver || f->owner)
            diag_error(f->loc, "a @test function takes no parameters");
        if (f->ret->kind != TY_UNIT && !ty_is_int(f->ret) && f->ret != &error_type)
            diag_error(f->loc, "a @test function returns Unit or an integer, not %s",
                       ty_name(f->ret));
        if (f->is_async)
            f->spawned = true;
    }
}

static void check_main(Checker *c) {
    Func *m = lookup_func(c, "main");
    if (!m) {
        Loc start = {c->prog->src, 1, 1, 0};
        diag_error_hint(start, "add `func main() { ... }` or `async func main() { ... }`",
                        "no 'main' function");
        return;
    }
    if (m->params.n && !m->broken)
        diag_error(m->loc, "'main' takes no parameters");
    if (m->ret->kind != TY_UNIT && !(ty_is_int(m->ret)) && m->ret != &error_type)
        diag_error(m->loc, "'main' must return Unit or I32, not %s", ty_name(m->ret));
    if (m->is_async)
        m->spawned = true;
}

int check(Program *prog) {
    Checker c = {.prog = prog};
    for (int i = 0; i < prog->structs.n; i++) {
        StructDecl *sd = prog->structs.v[i];
        if (map_get(&c.structs, sd->name))
            diag_error(sd->loc, "type '%s' is defined twice", sd->name);
        else
            map_put(&c.structs, sd->name, sd);
        if (!sd->alias)
            sd->ty = ty_struct(sd);
    }
    for (int i = 0; i < prog->structs.n; i++) { /* aliases, each once (cycles are errors) */
        StructDecl *sd = prog->structs.v[i];
        if (sd->alias)
            resolve_type(&c, &(TypeExpr){.loc = sd->loc, .name = sd->name});
    }
    Map lib_variants = {0};                     /* the prelude's, bare name -> Variant */
    for (int i = 0; i < prog->structs.n; i++) {
        StructDecl *sd = prog->structs.v[i];
        for (int j = 0; j < sd->variants.n; j++) {
            Variant *v = sd->variants.v[j];
            v->owner = sd;
            for (int k = 0; k < j; k++)
                if (!strcmp(v->name, ((Variant *)sd->variants.v[k])->name))
                    diag_error(v->loc, "variant '%s' is declared twice", v->name);
            Map *names = parse_is_prelude(&sd->loc) ? &lib_variants : &c.variants;
            map_put(names, v->name, map_get(names, v->name) ? &ambiguous : v);
            for (int k = 0; k < v->texprs.n; k++) {
                Type *pt = resolve_type(&c, v->texprs.v[k]);
                if (pt == sd->ty)
                    diag_error(v->loc, "enum '%s' cannot contain itself", sd->name);
                vec_push(&v->types, pt);
                vec_push(&sd->ty->elems, pt);   /* for ty_managed */
            }
        }
        for (int j = 0; j < sd->fields.n; j++) {
            Param *fld = sd->fields.v[j];
            fld->var = arena_alloc(sizeof *fld->var);
            fld->var->name = fld->name;
            fld->var->ty = resolve_type(&c, fld->texpr);
            if (fld->var->ty == sd->ty)
                diag_error(fld->loc, "type '%s' cannot contain itself", sd->name);
            vec_push(&sd->ty->elems, fld->var->ty);
        }
    }
    for (int i = 0; i < lib_variants.cap; i++)  /* a user variant shadows the library's */
        if (lib_variants.keys[i] && !map_get(&c.variants, lib_variants.keys[i]))
            map_put(&c.variants, lib_variants.keys[i], lib_variants.vals[i]);
    for (int i = 0; i < prog->funcs.n; i++) {
        Func *f = prog->funcs.v[i];
        if (f->owner)
            f->owner = unalias(&c, f->owner);
        Map *names = f->owner ? &c.methods : &c.funcs;
        const char *key = f->owner ? arena_printf("%s::%s", f->owner, f->name) : f->name;
        if (!map_get(names, key))
            map_put(names, key, f);
        else if (!f->broken)        /* a damaged one may not even have its name */
            diag_error(f->loc, "'%s' is defined twice", key);
        check_signature(&c, f);
    }
    static Func const_context = {.name = "<constant>"};   /* sync, no awaits */
    c.fn = &const_context;
    push_scope(&c);
    c.globals = c.scope;
    for (int i = 0; i < prog->consts.n; i++)
        constant(&c, prog->consts.v[i]);
    for (int i = 0; i < prog->funcs.n; i++)
        check_body(&c, prog->funcs.v[i]);
    if (prog->tests)
        check_tests(&c);
    else
        check_main(&c);
    return diag_count();
}
