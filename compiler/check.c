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
 * held in a local that is then run exactly once), a wait-capable library
 * operation without `await` inside an async func, a Sender or Receiver
 * variable used after it moved into another one, assignment to an
 * immutable binding, break/continue outside a loop.
 * Integer widths are lax as upstream TML: any integer converts to any
 * other (lower inserts the cast, lower.c coerce), also inside tuples; never
 * int <-> float. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* The error type: that of a type expression that failed to resolve, and so
 * of whatever is declared with it (variable, parameter, field, return
 * value). It is a Never (compatible with everything; no field, method or
 * pattern complains about it), but a distinct one, so that a value of it
 * is not taken for a diverging expression, which `let` turns into Unit. */
Type check_error_type = {.kind = TY_NEVER, .mangled = "Never"};

/* Did an expression of type t, checked since the error count was
 * `errors`, fail? Then its uses draw no further errors. */
bool check_failed(Type *t, int errors) {
    return t == &check_error_type || (t->kind == TY_NEVER && diag_count() > errors);
}

/* ------------------------------------------------------ helpers */

void check_push_scope(Checker *c) {
    Scope *s = arena_alloc(sizeof *s);
    s->parent = c->scope;
    c->scope = s;
}

/* Leaves the innermost scope; a future local in it must have been used. */
void check_pop_scope(Checker *c) {
    for (int i = 0; i < c->scope->vars.n; i++) {
        Var *v = c->scope->vars.v[i];
        if (v->future && !v->reads)
            diag_error_hint(v->future->loc, "await it, spawn it or pass it to block_on",
                            "the future in '%s' is never run", v->name);
    }
    c->scope = c->scope->parent;
}

Var *check_declare(Checker *c, const char *name, Type *ty, bool mutable_) {
    Var *v = arena_alloc(sizeof *v);
    v->name = name;
    v->cname = arena_printf("%s_%d", name, ++c->next_id);
    v->ty = ty;
    v->mutable_ = mutable_;
    v->owner = c->fn;
    v->repeats = c->repeats;
    vec_push(&c->scope->vars, v);
    return v;
}

/* A node the checker adds to the tree (named, when `name` is not NULL). */
Node *check_new_node(NodeKind kind, Loc loc, const char *name) {
    Node *n = arena_alloc(sizeof *n);
    n->kind = kind;
    n->loc = loc;
    n->name = name;
    return n;
}

Var *check_lookup_var(Checker *c, const char *name) {
    for (Scope *s = c->scope; s; s = s->parent)
        for (int i = s->vars.n - 1; i >= 0; i--)
            if (!strcmp(((Var *)s->vars.v[i])->name, name))
                return s->vars.v[i];
    return NULL;
}

Func *check_lookup_func(Checker *c, const char *name) { return map_get(&c->funcs, name); }

StructDecl *check_lookup_struct(Checker *c, const char *name) {
    return map_get(&c->structs, name);
}

/* The name that `name` stands for: `use path::x as name` makes it another
 * name for x (section 2), unless the program declares a type or function
 * of that name itself; an alias of an alias is followed (a cycle stops
 * after a few steps, at a name that then does not resolve). */
const char *check_unalias(Checker *c, const char *name) {
    for (int hops = 0; hops < 8; hops++) {
        const char *target = map_get(&c->prog->aliases, name);
        if (!target || !strcmp(target, name) || check_lookup_struct(c, name) || check_lookup_func(c, name))
            break;
        name = target;
    }
    return name;
}

/* What a variant lookup gives for a name two enums share (or a
 * qualified name the enum lacks): already reported. */
Variant check_ambiguous;

/* The variant `name` of enum `qual` (qualified); bare, the variant of
 * that name of the expected enum `want` (NULL: none known), else the only
 * one of that name, a user enum's shadowing the library's. Reports an
 * ambiguous bare name. NULL: none. */
Variant *check_lookup_variant(Checker *c, Node *n, const char *qual, const char *name,
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
        return &check_ambiguous;
    }
    Variant *v = map_get(&c->variants, name);
    if (v == &check_ambiguous)
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
const char *check_suggest(const char *name, const char **cands, int n) {
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

const char *check_name_hint(Checker *c, const char *name) {
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
    return check_suggest(name, (const char **)cands.v, cands.n);
}

/* A hint for an unknown type name: the closest declared or library type. */
const char *check_type_hint(Checker *c, const char *name) {
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
    return check_suggest(name, (const char **)cands.v, cands.n);
}

/* Does t mention the error type (`JoinHandle[E]` from spawning a function
 * whose signature has an error, `Maybe[E]`, `(I64, E)`...)? User types
 * are named, so it is not looked for inside them. */
static bool mentions_error(Type *t) {
    if (!t || t->kind == TY_STRUCT || t->kind == TY_ENUM)
        return false;
    if (t == &check_error_type || mentions_error(t->a) || mentions_error(t->b))
        return true;
    for (int i = 0; i < t->elems.n; i++)
        if (mentions_error(t->elems.v[i]))
            return true;
    return false;
}

/* Can a value of type `got` be used where `want` is expected? (An
 * expected Never comes from an error already reported: accept all; so
 * does a type built from the error type.) */
bool check_compatible(Type *got, Type *want) {
    if (got == want || got->kind == TY_NEVER || want->kind == TY_NEVER)
        return true;
    if (mentions_error(got) || mentions_error(want))
        return true;
    if (ty_is_int(got) && ty_is_int(want))
        return true;
    if (got->kind == TY_TUPLE && want->kind == TY_TUPLE && got->elems.n == want->elems.n) {
        for (int i = 0; i < got->elems.n; i++)   /* widths are lax inside tuples too */
            if (!check_compatible(got->elems.v[i], want->elems.v[i]))
                return false;
        return true;
    }
    return ty_is_float(got) && ty_is_float(want);
}

void check_mismatch(Node *n, Type *got, Type *want) {
    diag_error(n->loc, "type mismatch: expected %s, found %s", ty_name(want), ty_name(got));
}

/* Checks `n` as a value of type `want` (NULL: any type). */
Type *check_expect_type(Checker *c, Node *n, Type *want) {
    Type *got = check_value(c, n, want);
    if (want && !check_compatible(got, want) && got->kind != TY_FUTURE)
        check_mismatch(n, got, want);
    return got;
}

/* ---------------------------------------------------------- types */

static Type *resolve(Checker *c, TypeExpr *te);

/* JoinError's one variant with a payload: OsError(I32). */
int check_join_os_error(void) { return bi_join_error("OsError"); }

/* Does `name` name a type: a declared one (also the prelude's) or the
 * library's? */
static bool is_type_name(Checker *c, const char *name) {
    TypeKind k;
    int n;
    return check_lookup_struct(c, name) || bi_atomic_type(name) || !strcmp(name, "Arc") ||
           bi_lib_type(name, &k, &n);
}

static Type *type_arg(Checker *c, TypeExpr *te, int i) {
    return resolve(c, te->args.v[i]);
}

bool check_arity(TypeExpr *te, int n) {
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
    te->name = check_unalias(c, te->name);
    if (bi_prim(te->name, &kind) && check_arity(te, 0))
        return T(kind);
    StructDecl *sd = check_lookup_struct(c, te->name);     /* shadows a library type */
    if (sd && sd->alias && !sd->ty) {
        if (sd->resolving) {
            diag_error(sd->loc, "type alias '%s' refers to itself", sd->name);
            return T(TY_NEVER);
        }
        sd->resolving = true;
        sd->ty = check_resolve_type(c, sd->alias);
        sd->resolving = false;
    }
    if (sd)
        return check_arity(te, 0) ? sd->ty : T(TY_NEVER);
    if (!strcmp(te->name, "Arc"))               /* Arc[T] is T (section 9 MAY) */
        return check_arity(te, 1) ? type_arg(c, te, 0) : T(TY_NEVER);
    if (bi_lib_type(te->name, &kind, &nargs)) {
        if (!check_arity(te, nargs))
            return T(TY_NEVER);
        Type *a = nargs > 0 ? type_arg(c, te, 0) : NULL;
        Type *b = nargs > 1 ? type_arg(c, te, 1) : NULL;
        return ty_make(kind, a, b);
    }
    Type *atomic = bi_atomic_type(te->name);
    if (atomic && check_arity(te, 0))
        return atomic;
    if (!atomic)
        diag_error_hint(te->loc, check_type_hint(c, te->name), "unknown type '%s'", te->name);
    return T(TY_NEVER);
}

/* The type `te` names. A type expression with an error in it (an unknown
 * name, a wrong number of type arguments, a cyclic alias, at any depth)
 * is reported once and becomes Never, the error type: it is compatible
 * with everything and has no fields or methods to complain about, so a
 * parameter, return value, field or variable of that type draws no
 * follow-on errors. */
Type *check_resolve_type(Checker *c, TypeExpr *te) {
    int errors = diag_count();
    Type *t = resolve(c, te);
    return diag_count() == errors ? t : &check_error_type;
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

/* The `func to_string(this) -> Str` the impl of t (a struct or enum)
 * declares, or a broken method of that name (its calls draw no errors);
 * else NULL. */
Func *check_to_string(Checker *c, Type *t) {
    Func *f = t->kind == TY_STRUCT || t->kind == TY_ENUM
                  ? check_lookup_method(c, t->sd->name, "to_string") : NULL;
    bool fits = f && (f->broken || (f->receiver && f->ret->kind == TY_STR && !f->params.n));
    return fits ? f : NULL;
}

/* "{e}": e converted by to_string(), the library's or, for a struct or
 * enum, its impl's (the part becomes the call `e.to_string()`). */
static Type *str_lit(Checker *c, Node *n) {
    for (int i = 0; i < n->args.n; i++) {
        Node *e = n->args.v[i];
        Type *t = check_value(c, e, NULL);
        Func *f = check_to_string(c, t);
        if (f) {
            Node *m = arena_alloc(sizeof *m);
            m->kind = ND_METHOD;
            m->loc = e->loc;
            m->lhs = e;
            m->name = "to_string";
            m->ty = check_user_method(c, m, f);
            n->args.v[i] = m;
        } else if (!bi_has_to_string(t) && t->kind != TY_NEVER) {
            diag_error_hint(e->loc, "give its type a `func to_string(this) -> Str`",
                            "cannot interpolate a value of type %s", ty_name(t));
        }
    }
    return T(TY_STR);
}

/* ------------------------------------------------------ dispatch */

/* `Type.f(args)` is `Type::f(args)` (section 5 MAY) where Type names a
 * type and no variable: the method node becomes that call. */
static bool type_dot_call(Checker *c, Node *n) {
    Node *l = n->lhs;
    if (l->kind != ND_PATH || l->qual || n->op || check_lookup_var(c, l->name) ||
        !is_type_name(c, check_unalias(c, l->name)))
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
    case ND_PATH: return check_path(c, n, want);
    case ND_CALL: return check_call(c, n, want);
    case ND_METHOD: return type_dot_call(c, n) ? check_call(c, n, want) : check_method(c, n);
    case ND_FIELD: return check_field(c, n);
    case ND_UNARY: return check_unary(c, n);
    case ND_DEREF: return check_deref(c, n);
    case ND_BINARY: return check_binary(c, n);
    case ND_AWAIT: return check_await_expr(c, n);
    case ND_IF: return check_if_expr(c, n, want);
    case ND_WHEN: return check_when_expr(c, n, want);
    case ND_SELECT: return check_select(c, n, want);
    case ND_ASYNC_BLOCK: return check_async_block(c, n);
    case ND_BLOCK: return check_block(c, n, want);
    case ND_LOOP: return check_loop_expr(c, n);
    case ND_WHILE:
        check_loop_cond(c, n->cond, T(TY_BOOL));
        return check_loop_body(c, n->body);
    case ND_FOR: return check_for_expr(c, n);
    case ND_BREAK: case ND_CONTINUE:
        if (c->loops == 0)
            diag_error(n->loc, "'%s' outside of a loop", n->kind == ND_BREAK ? "break" : "continue");
        return T(TY_NEVER);
    case ND_RETURN: return check_return_expr(c, n);
    case ND_STRUCTLIT: return check_struct_lit(c, n);
    case ND_TUPLE: return check_tuple(c, n, want);
    case ND_CAST: return check_cast(c, n);
    case ND_TERNARY: {
        check_expect_type(c, n->cond, T(TY_BOOL));
        Type *a = check_value(c, n->then, want);
        return check_join_types(n->els, a, check_value(c, n->els, a), false);
    }
    case ND_ASSIGN: return check_assign(c, n);
    case ND_LET: return check_let(c, n);
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
Type *check_expr(Checker *c, Node *n, Type *want) {
    n->ty = expr_kind(c, n, want);
    return n->ty;
}

/* Checks an expression used as a value: an async call is not one. */
Type *check_value(Checker *c, Node *n, Type *want) {
    Type *t = check_expr(c, n, want);
    if (t->kind == TY_FUTURE && t->fn->outer) {
        diag_error_hint(n->loc, "write `await async { ... }` or `spawn(async { ... })`",
                        "an async block must be awaited or spawned");
        n->ty = T(TY_NEVER);
        return n->ty;
    }
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
void check_receiver(Checker *c, Func *f) {
    StructDecl *sd = check_lookup_struct(c, f->owner);
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
        f->ret = &check_error_type;
        return;
    }
    if (f->owner)
        check_receiver(c, f);
    for (int i = 0; i < f->params.n; i++) {
        Param *pa = f->params.v[i];
        Var *v = arena_alloc(sizeof *v);
        v->name = pa->name;
        v->cname = arena_printf("%s_%d", pa->name, ++c->next_id);
        v->ty = check_resolve_type(c, pa->texpr);
        v->is_param = true;
        v->mutable_ = pa->mutable_;
        v->owner = f;
        pa->var = v;
    }
    f->ret = f->ret_texpr ? check_resolve_type(c, f->ret_texpr) : T(TY_UNIT);
}

static void check_body(Checker *c, Func *f) {
    if (f->broken)
        return;
    c->fn = f;
    c->scope = c->globals;
    check_push_scope(c);
    if (f->this_var)
        vec_push(&c->scope->vars, f->this_var);
    for (int i = 0; i < f->params.n; i++)
        vec_push(&c->scope->vars, ((Param *)f->params.v[i])->var);
    Type *t = check_value(c, f->body, f->ret);
    if (f->ret->kind != TY_UNIT && !check_compatible(t, f->ret)) {
        Node *at = f->body->lhs ? f->body->lhs : f->body;
        if (t->kind == TY_UNIT && !f->body->lhs)
            diag_error(f->loc, "function '%s' must return a value of type %s", f->name,
                       ty_name(f->ret));
        else
            check_mismatch(at, t, f->ret);
    }
    check_pop_scope(c);
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
        if (f->ret->kind != TY_UNIT && !ty_is_int(f->ret) && f->ret != &check_error_type)
            diag_error(f->loc, "a @test function returns Unit or an integer, not %s",
                       ty_name(f->ret));
        if (f->is_async)
            f->spawned = true;
    }
}

static void check_main(Checker *c) {
    Func *m = check_lookup_func(c, "main");
    if (!m) {
        Loc start = {c->prog->src, 1, 1, 0};
        diag_error_hint(start, "add `func main() { ... }` or `async func main() { ... }`",
                        "no 'main' function");
        return;
    }
    if (m->params.n && !m->broken)
        diag_error(m->loc, "'main' takes no parameters");
    if (m->ret->kind != TY_UNIT && !(ty_is_int(m->ret)) && m->ret != &check_error_type)
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
            check_resolve_type(&c, &(TypeExpr){.loc = sd->loc, .name = sd->name});
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
            map_put(names, v->name, map_get(names, v->name) ? &check_ambiguous : v);
            for (int k = 0; k < v->texprs.n; k++) {
                Type *pt = check_resolve_type(&c, v->texprs.v[k]);
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
            fld->var->ty = check_resolve_type(&c, fld->texpr);
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
            f->owner = check_unalias(&c, f->owner);
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
    check_push_scope(&c);
    c.globals = c.scope;
    for (int i = 0; i < prog->consts.n; i++)
        check_constant(&c, prog->consts.v[i]);
    for (int i = 0; i < prog->funcs.n; i++)       /* async blocks: where they stand */
        if (!((Func *)prog->funcs.v[i])->outer)
            check_body(&c, prog->funcs.v[i]);
    if (prog->tests)
        check_tests(&c);
    else
        check_main(&c);
    return diag_count();
}
