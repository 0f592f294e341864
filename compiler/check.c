/* check.c - scopes and types; annotates the AST (TML-SUBSET.md 3-6).
 *
 * Takes the parsed Program; sets every expression's `ty`, resolves names
 * to Vars, Funcs and builtins (Node.builtin = BI_*, typed by builtins.c's
 * table) and records which async functions are spawned (the awaits
 * and the async call graph are lower's and lower_async's).
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
static Type *value(Checker *c, Node *n, Type *want);
static void pattern(Checker *c, Node *p, Type *t);
static void never_pattern(Checker *c, Node *p);
static Func *lookup_method(Checker *c, const char *type, const char *name);
static Type *user_method(Checker *c, Node *n, Func *m);

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

static const char *name_hint(Checker *c, const char *name) {
    Vec cands = {0};
    for (Scope *s = c->scope; s; s = s->parent)
        for (int i = 0; i < s->vars.n; i++)
            vec_push(&cands, (void *)((Var *)s->vars.v[i])->name);
    for (int i = 0; i < c->prog->funcs.n; i++)
        vec_push(&cands, (void *)((Func *)c->prog->funcs.v[i])->name);
    for (int i = 0; bi_row(i); i++)                     /* the library's functions */
        if (bi_row(i)->recv == BI_FUNC && !bi_row(i)->qual)
            vec_push(&cands, (void *)bi_row(i)->name);
    static const char *ctors[] = {"Ok", "Err", "Just", "Nothing"};
    for (int i = 0; i < 4; i++)
        vec_push(&cands, (void *)ctors[i]);
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

/* Does t mention the error type (`JoinHandle[E]` from spawning a function
 * whose signature has an error, `Maybe[E]`, `(I64, E)`...)? User types
 * are named, so it is not looked for inside them. */
static bool mentions_error(Type *t) {
    if (!t || t->kind == TY_STRUCT || t->kind == TY_ENUM)
        return false;
    if (t == &error_type || mentions_error(t->a) || mentions_error(t->b))
        return true;
    for (int i = 0; i < t->elems.n; i++)
        if (mentions_error(t->elems.v[i]))
            return true;
    return false;
}

/* Can a value of type `got` be used where `want` is expected? (An
 * expected Never comes from an error already reported: accept all; so
 * does a type built from the error type.) */
static bool compatible(Type *got, Type *want) {
    if (got == want || got->kind == TY_NEVER || want->kind == TY_NEVER)
        return true;
    if (mentions_error(got) || mentions_error(want))
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

/* JoinError's one variant with a payload: OsError(I32). */
static int join_os_error(void) { return bi_join_error("OsError"); }

/* Does `name` name a type: a declared one (also the prelude's) or the
 * library's? */
static bool is_type_name(Checker *c, const char *name) {
    TypeKind k;
    int n;
    return lookup_struct(c, name) || bi_atomic_type(name) || !strcmp(name, "Arc") ||
           bi_lib_type(name, &k, &n);
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
    TypeKind kind;
    int nargs;
    if (!te->name) {
        if (te->args.n == 0)
            return T(TY_UNIT);
        Vec elems = {0};
        for (int i = 0; i < te->args.n; i++)
            vec_push(&elems, type_arg(c, te, i));
        return ty_tuple(&elems);
    }
    te->name = unalias(c, te->name);
    if (bi_prim(te->name, &kind) && arity(te, 0))
        return T(kind);
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
    if (bi_lib_type(te->name, &kind, &nargs)) {
        if (!arity(te, nargs))
            return T(TY_NEVER);
        Type *a = nargs > 0 ? type_arg(c, te, 0) : NULL;
        Type *b = nargs > 1 ? type_arg(c, te, 1) : NULL;
        return ty_make(kind, a, b);
    }
    Type *atomic = bi_atomic_type(te->name);
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
        } else if (!bi_has_to_string(t) && t->kind != TY_NEVER) {
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

/* A library type the prelude declares (NetError, TryRecvError...), which
 * the program must not redefine; `fn` names the function returning it. */
static Type *lib_type(Checker *c, Node *n, const char *fn, const char *name) {
    StructDecl *sd = lookup_struct(c, name);
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
        expect_type(c, arg(n, i), bi_type(desc, self, NULL, NULL));
        return;
    }
    Type *a = value(c, arg(n, i), NULL);
    if (a->kind != TY_STR && a->kind != TY_SOCKADDR && a->kind != TY_NEVER)
        diag_error(arg(n, i)->loc, "type mismatch: expected SocketAddr or Str, found %s",
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
    Type *t = value(c, a, NULL);
    if (!is_primitive(t) && t->kind != TY_NEVER && t->kind != TY_DURATION)
        diag_error(a->loc, "cannot print a value of type %s", ty_name(t));
    return t;
}

/* Arc::new(e) is e (section 9 MAY). */
static Type *arc_new(Checker *c, Node *n, Type *want) {
    if (!check_argc(n, "Arc::new", 1, 1))
        return T(TY_NEVER);
    *n = *arg(n, 0);
    return expr(c, n, want);
}

static Type *list_new(Checker *c, Node *n, Node *callee, Type *want) {
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

static Type *mutex_new(Checker *c, Node *n, Node *callee, Type *want) {
    if (!check_argc(n, "Mutex::new", 1, 1))
        return T(TY_NEVER);
    Type *el = callee->targs.n == 1 ? resolve_type(c, callee->targs.v[0])
               : want && want->kind == TY_MUTEX ? want->a : NULL;
    Type *t = el ? expect_type(c, arg(n, 0), el) : value(c, arg(n, 0), NULL);
    return t->kind == TY_NEVER ? t : ty_make(TY_MUTEX, el ? el : t, NULL);
}

static Type *drop_call(Checker *c, Node *n) {
    if (!check_argc(n, "drop", 1, 1))
        return T(TY_UNIT);
    Type *t = value(c, arg(n, 0), NULL);
    bool droppable = t->kind == TY_GUARD || t->kind == TY_SENDER || t->kind == TY_RECEIVER;
    if (t->kind != TY_NEVER && (!droppable || arg(n, 0)->kind != ND_PATH))
        diag_error_hint(arg(n, 0)->loc, "let the value go out of scope instead",
                        "'drop' releases a MutexGuard, Sender or Receiver held in a variable");
    return T(TY_UNIT);
}

/* assert_eq / assert_ne */
static Type *assert_cmp(Checker *c, Node *n, const Builtin *b) {
    if (check_argc(n, b->name, b->lo, b->hi)) {
        Type *t = value(c, arg(n, 0), NULL);
        if (!is_primitive(t) && t->kind != TY_NEVER && t->kind != TY_DURATION &&
            !(t->kind == TY_ENUM && !t->elems.n))
            diag_error_hint(arg(n, 0)->loc,
                            "it takes numbers, Bool, Char, Str, Duration and enums without payloads",
                            "cannot compare a value of type %s with '%s'", ty_name(t), b->name);
        expect_type(c, arg(n, 1), t);
        if (n->args.n == 3)
            expect_type(c, arg(n, 2), T(TY_STR));
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
    Func *f = async_operand(c, arg(n, 0), arena_printf("'%s'", b->name));
    if (!f)                     /* an operand of the error type passes it on */
        return arg(n, 0)->ty == &error_type ? &error_type : T(TY_NEVER);
    f->spawned = true;
    return spawn ? ty_make(TY_JOIN, f->ret, NULL) : f->ret;
}

/* channel[T](cap?) / bounded_channel[T](cap) */
static Type *channel_call(Checker *c, Node *n, Node *callee, const Builtin *b) {
    if (callee->targs.n != 1) {
        diag_error_hint(n->loc, "write `channel[I64](16)`", "'%s' needs its element type",
                        b->name);
        return T(TY_NEVER);
    }
    Type *el = resolve_type(c, callee->targs.v[0]);
    if (check_argc(n, b->name, b->lo, b->hi) && n->args.n == 1)
        expect_type(c, arg(n, 0), T(TY_I64));
    Vec pair = {0};
    vec_push(&pair, ty_make(TY_SENDER, el, NULL));
    vec_push(&pair, ty_make(TY_RECEIVER, el, NULL));
    return ty_tuple(&pair);
}

/* A call of the library function b (builtins.c's table). */
static Type *lib_call(Checker *c, Node *n, Node *callee, const Builtin *b, Type *want) {
    n->builtin = b->id;
    switch (b->hook) {
    case BH_PRINT:
        if (check_argc(n, b->name, 1, 1))
            printable_arg(c, arg(n, 0));
        return T(TY_UNIT);
    case BH_ASSERT_CMP: return assert_cmp(c, n, b);
    case BH_SPAWN: return spawn_call(c, n, b);
    case BH_TIMEOUT: return timeout_call(c, n);
    case BH_CHANNEL: return channel_call(c, n, callee, b);
    case BH_DROP: return drop_call(c, n);
    case BH_ARC_NEW: return arc_new(c, n, want);
    case BH_LIST_NEW: return list_new(c, n, callee, want);
    case BH_MUTEX_NEW: return mutex_new(c, n, callee, want);
    default: break;
    }
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
    diag_error_hint(n->loc, suggest(callee->name, (const char **)cands.v, cands.n),
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
        return enum_ctor(c, n, name, want);
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

/* The type of the library method m (its arity checked) on a receiver of
 * type rt: the row's rule, parameters and result. */
static Type *method_result(Checker *c, Node *n, const Builtin *m, Type *rt) {
    switch (m->hook) {
    case BH_UNDER_STAR:
        if (c->dereffed != n)
            diag_error_hint(n->loc, "write `*m.get_mut() = v` (or lock it)",
                            "'get_mut' gives the value in place, only under '*'");
        break;
    case BH_MUTABLE_RECV: {
        Var *v = root_var(n->lhs);
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
    return lib_result(c, n, m, rt);
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
    const Builtin *own = bi_method(TY_GUARD, n->name);
    if (n->args.n || !own)
        return false;
    if (under_star && own->id == BI_GUARD_SELF)
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

static Type *await_expr(Checker *c, Node *n) {
    if (!c->fn->is_async)
        diag_error_hint(n->loc, "make the enclosing function an `async func`",
                        "'await' is only allowed inside 'async func'");
    Node *e = n->lhs;
    Node *outer = c->awaited;
    c->awaited = c->started = e;
    Type *t = expr(c, e, NULL);
    c->awaited = outer;
    return awaited_type(n, e, t);
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
    int errors = diag_count();
    Type *t = awaited_type(n, fut, expr(c, fut, NULL));
    if (failed(t, errors))
        t = &error_type;            /* Outcome[E, TimeoutError]: no more errors */
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
        last = value(c, n->args.v[i], NULL);    /* an async call must be awaited */
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

/* How to make v assignable: a receiver, a parameter, a local. */
static const char *mutable_hint(Var *v) {
    if (v->is_param && v == v->owner->this_var)
        return "take the receiver as `mut this`";
    if (v->is_param)
        return arena_printf("declare the parameter `mut %s: %s`", v->name, ty_name(v->ty));
    return arena_printf("declare it with `var %s` or `let mut %s`", v->name, v->name);
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
        diag_error_hint(l->loc, mutable_hint(v), "cannot assign to immutable binding '%s'",
                        v->name);
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
    p->variant = bi_join_error(p->name);
    int want = p->variant == join_os_error();
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
        if (!ann && !n->texpr)  /* a diverging init gives Unit; an erroneous one the */
            t = failed(it, errors) ? &error_type        /* error type: no more errors */
                : it->kind == TY_NEVER ? T(TY_UNIT) : it;
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
    if ((bare || !strcmp(n->qual, "JoinError")) && bi_join_error(n->name)) {
        n->builtin = BI_JOIN_ERROR;             /* payload-free JoinError values */
        n->variant = bi_join_error(n->name);
        if (n->variant == join_os_error())
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
            diag_error_hint(n->loc, suggest(n->name, (const char **)names.v, names.n),
                            "no ordering 'Ordering::%s'", n->name);
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
        const char *f = t->fn->name;
        const char *hint = c->fn && !c->fn->is_async   /* sync code: no await */
            ? arena_printf("write `block_on(%s(...))` or `spawn(%s(...))`", f, f)
            : arena_printf("write `await %s(...)` or `spawn(%s(...))`", f, f);
        diag_error_hint(n->loc, hint, "the result of async function '%s' must be awaited", f);
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
        v->mutable_ = pa->mutable_;
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
    bi_check_table();
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
