/* emit_c.c - checked AST -> one readable C translation unit.
 *
 * Takes the Program after check and lower_async; writes C that includes
 * only tml/prelude.h (the helpers every program may call; it includes
 * tml/rt.h). Expressions are emitted in A-normal form: every value that
 * is not a variable or literal lands in a named temporary, so an `await`
 * may sit anywhere inside an expression.
 *
 * Async functions (DESIGN.md section 3): `struct tml_u_F_frame` holds the
 * resume state, the parameters, every local and temporary, the `aw` union
 * of the futures awaited (callee frames inline, or boxed on call edges
 * that close a cycle, see lower_async.c) and the result. The poll
 * function starts with a switch that jumps to the label after the await
 * it stopped at; labels may sit inside loops and branches because every
 * value lives in the frame. (Keeping only values live across an await in
 * the frame is a later refinement: see the issue on lowering quality.)
 *
 * Ownership (DESIGN.md section 3b): Str and handles are reference
 * counted. A Val is either owned (+1, the consumer must store or release
 * it) or borrowed (a variable or a field path of one). Consumers that
 * keep a value (let, assignment, arguments, return, channel send) take
 * ownership, duplicating borrowed values; locals are released when their
 * scope ends, also through break, continue and return. An owned operand
 * waiting for a later one to be evaluated is held by the innermost scope
 * meanwhile (see hold), so a frame dropped at an await inside that later
 * operand releases it too. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tmlc.h"

typedef struct Val {
    const char *c;              /* side-effect-free C expression */
    bool owned;
} Val;

/* A value a scope owns and releases on every way out of it: a local,
 * or a temporary an expression holds (see hold). */
typedef struct Owned {
    const char *lv;             /* C lvalue */
    Type *ty;
    Var *var;                   /* the local it is, or NULL (a temporary) */
} Owned;

/* Where an async function's local is mentioned, for place_values. */
typedef struct Local {
    Var *var;
    int depth;                  /* loops open at its declaration */
    Vec loops;                  /* ids (intptr_t) of loops inside its scope
                                   that mention it */
} Local;

typedef struct EScope {
    Vec owned;                  /* Owned*: managed locals and temporaries */
    bool loop;                  /* break/continue target boundary */
} EScope;

typedef struct Fn {
    Func *f;
    bool async;
    Buf body;                   /* statements */
    Buf fields;                 /* async: frame fields (locals, live temps) */
    Buf locals;                 /* async: temps kept as C locals of poll */
    Vec temp_types;             /* async: Type* of temp N at index N - 1 */
    Vec pinned;                 /* async: temps that stay in the frame */
    Vec local_info;             /* async: Local* of non-parameter locals */
    Map local_ids;              /* async: C name -> 1 + index in local_info */
    Vec open_loops;             /* async: ids of the loops being emitted */
    Vec loop_awaits;            /* async: loop id -> contains an await */
    Buf aw;                     /* async: aw union members */
    Buf drops;                  /* async: the drop function's switch cases */
    struct Timeout *tmo;        /* async: the timeout(d, fut) being emitted */
    Vec scopes;                 /* EScope* */
    int indent, ntemp, nlabel;
} Fn;

typedef struct Emitter {
    Buf lits;                   /* string literal objects */
    int nlits;
} Emitter;

static Emitter E;

static Val emit(Fn *F, Node *n);
static void emit_block_stmts(Fn *F, Node *b);

static Val val(const char *c, bool owned) { return (Val){c, owned}; }
static Val unit_val(void) { return val("0", false); }
static bool is_unit(const Type *t) { return t->kind == TY_UNIT || t->kind == TY_NEVER; }

/* The C member for a TML field or variant name (never a C keyword). */
static const char *field_name(const char *n) { return arena_printf("%s_", n); }

/* ----------------------------------------------------------- output */

__attribute__((format(printf, 2, 3)))
static void line(Fn *F, const char *fmt, ...) {
    for (int i = 0; i < F->indent; i++)
        buf_puts(&F->body, "    ");
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&F->body, fmt, ap);
    va_end(ap);
    buf_putc(&F->body, '\n');
}

static void line_directive(Fn *F, Loc loc) {
    buf_printf(&F->body, "#line %d \"%s\"\n", loc.line, loc.src->path);
}

/* Declares a temporary of type t; returns its C lvalue. */
static const char *tmp(Fn *F, Type *t) {
    int id = ++F->ntemp;
    if (F->async) {             /* frame or C local: decided by place_temps */
        vec_push(&F->temp_types, t);
        return arena_printf("fr->t%d", id);
    }
    line(F, "%s t%d;", ty_c(t), id);
    return arena_printf("t%d", id);
}

/* A temporary that stays in the frame even when all its mentions sit in
 * one stretch of code: one the loop header reuses after the body ran. */
static const char *loop_tmp(Fn *F, Type *t) {
    const char *name = tmp(F, t);
    if (F->async)
        vec_push(&F->pinned, (void *)(intptr_t)F->ntemp);
    return name;
}

static Val to_tmp(Fn *F, Type *t, const char *expr) {
    const char *name = tmp(F, t);
    line(F, "%s = %s;", name, expr);
    return val(name, true);
}

/* Records a mention of local `v` for place_values: one inside a loop
 * that its declaration is outside of names that loop. */
static void note_mention(Fn *F, Var *v) {
    if (!F->async || !v || !v->emit_id)
        return;
    Local *l = F->local_info.v[v->emit_id - 1];
    if (F->open_loops.n > l->depth)
        vec_push(&l->loops, F->open_loops.v[l->depth]);
}

static const char *var_c(Fn *F, Var *v) {
    note_mention(F, v);
    if (v->by_ref)                  /* `mut this` (never in an async func) */
        return arena_printf("(*%s)", v->cname);
    return F->async ? arena_printf("fr->%s", v->cname) : v->cname;
}

/* Loops bracket their emission with these, so that place_values can tell
 * the values a loop carries across an await. */
static void loop_open(Fn *F) {
    vec_push(&F->open_loops, (void *)(intptr_t)F->loop_awaits.n);
    vec_push(&F->loop_awaits, (void *)0);
}

static void loop_close(Fn *F) { F->open_loops.n--; }

/* ------------------------------------------------- reference counts */

static const char *dup_expr(Type *t, const char *x) {
    switch (t->kind) {
    case TY_STR: return arena_printf("tml_str_retain(%s)", x);
    case TY_JOIN: return arena_printf("(tml_join_retain(%s), %s)", x, x);
    case TY_SENDER: return arena_printf("(tml_sender_retain(%s), %s)", x, x);
    case TY_RECEIVER: return arena_printf("(tml_receiver_retain(%s), %s)", x, x);
    case TY_ATOMIC: return arena_printf("(tml_atomic_retain(%s), %s)", x, x);
    case TY_LIST: return arena_printf("(tml_list_retain(%s), %s)", x, x);
    case TY_MUTEX: return arena_printf("(tml_mutex_retain(%s), %s)", x, x);
    case TY_GUARD: return arena_printf("tml_guard_take(&%s)", x);    /* a guard moves */
    case TY_SEMAPHORE: return arena_printf("(tml_sem_retain(%s), %s)", x, x);
    case TY_NOTIFY: return arena_printf("(tml_notify_retain(%s), %s)", x, x);
    case TY_BUFFER: return arena_printf("(tml_buffer_retain(%s), %s)", x, x);
    case TY_LISTENER: case TY_STREAM: return arena_printf("(tml_tcp_retain(%s), %s)", x, x);
    default: return arena_printf("tml_dup_%s(%s)", t->mangled, x);
    }
}

static const char *drop_stmt(Type *t, const char *x) {
    switch (t->kind) {
    case TY_STR: return arena_printf("tml_str_release(%s);", x);
    case TY_JOIN: return arena_printf("tml_join_release(%s);", x);
    /* channel ends and guards may have been released by drop(): NULL */
    case TY_SENDER: return arena_printf("if (%s) tml_sender_release(%s);", x, x);
    case TY_RECEIVER: return arena_printf("if (%s) tml_receiver_release(%s);", x, x);
    case TY_GUARD: return arena_printf("tml_guard_release(&%s);", x);
    case TY_MUTEX: return arena_printf("tml_mutex_release(%s);", x);
    case TY_SEMAPHORE: return arena_printf("tml_sem_unref(%s);", x);
    case TY_NOTIFY: return arena_printf("tml_notify_release(%s);", x);
    case TY_BUFFER: return arena_printf("tml_buffer_release(%s);", x);
    case TY_LISTENER: case TY_STREAM: return arena_printf("tml_tcp_release(%s);", x);
    case TY_ATOMIC: return arena_printf("tml_atomic_release(%s);", x);
    case TY_LIST: return arena_printf("tml_list_release(%s);", x);
    default: return arena_printf("tml_drop_%s(&%s);", t->mangled, x);
    }
}

static Val own(Fn *F, Val v, Type *t) {
    if (v.owned && t->kind == TY_GUARD)     /* leaving where lock() made it: see lock() */
        return to_tmp(F, t, arena_printf("tml_guard_take(&%s)", v.c));
    if (v.owned || !ty_managed(t))
        return val(v.c, true);
    return to_tmp(F, t, dup_expr(t, v.c));
}

static void release(Fn *F, Val v, Type *t) {
    if (v.owned && ty_managed(t))
        line(F, "%s", drop_stmt(t, v.c));
}

/* Drops the value of an expression used as a statement. */
static void discard(Fn *F, Val v, Type *t) {
    if (v.owned && ty_managed(t))
        release(F, v, t);
    else if (v.owned && !is_unit(t))
        line(F, "(void)%s;", v.c);
}

/* Converts between integer widths (or float widths): TML is lax here. */
static Val coerce(Val v, Type *from, Type *to) {
    if (to && from != to && from->kind == TY_TUPLE && to->kind == TY_TUPLE) {
        Buf b = {0};                 /* element by element; v.c names a value */
        for (int i = 0; i < from->elems.n; i++)
            buf_printf(&b, "%s%s", i ? ", " : "",
                       coerce(val(arena_printf("(%s).f%d", v.c, i), false), from->elems.v[i],
                              to->elems.v[i]).c);
        Val r = val(arena_printf("((%s){%s})", ty_c(to), b.s), v.owned);
        buf_free(&b);
        return r;
    }
    if (!to || from == to || from->kind == TY_NEVER || !ty_is_num(from) || !ty_is_num(to))
        return v;
    return val(arena_printf("((%s)(%s))", ty_c(to), v.c), v.owned);
}

/* An owned value of type `to` for a consumer that keeps it. */
static Val take(Fn *F, Node *n, Type *to) {
    Val v = emit(F, n);
    return own(F, coerce(v, n->ty, to), to ? to : n->ty);
}

/* ----------------------------------------------------------- scopes */

static void scope_push(Fn *F, bool loop) {
    EScope *s = arena_alloc(sizeof *s);
    s->loop = loop;
    vec_push(&F->scopes, s);
}

static void drop_scope_vars(Fn *F, EScope *s) {
    for (int i = s->owned.n - 1; i >= 0; i--) {
        Owned *o = s->owned.v[i];
        note_mention(F, o->var);
        line(F, "%s", drop_stmt(o->ty, o->lv));
    }
}

/* The innermost scope takes over releasing `lv` (if its type needs it);
 * `var` is the local it names, if any. */
static void own_in_scope(Fn *F, const char *lv, Type *ty, Var *var) {
    if (!ty_managed(ty))
        return;
    Owned *o = arena_alloc(sizeof *o);
    o->lv = lv;
    o->ty = ty;
    o->var = var;
    vec_push(&((EScope *)F->scopes.v[F->scopes.n - 1])->owned, o);
}

static void scope_pop(Fn *F) {
    drop_scope_vars(F, F->scopes.v[--F->scopes.n]);
}

/* Held temporaries. A construct that keeps an owned operand while it
 * evaluates a later one (an argument before the next, the left side of
 * `+`, the text of an interpolation so far, the fields of a literal
 * built so far, a receiver; a leaf's handle while it waits) holds it:
 * the innermost scope owns it until the construct consumes it, so every
 * way out in between releases it - the drop case of an await in the
 * later operand (the frame dropped while suspended there: timeout,
 * shutdown) and a break, continue or return inside it.
 * Invariant: a construct settles (returns the innermost scope to the
 * mark it took before its first operand) before or right after its code
 * that moves or releases what it held, with nothing that suspends or
 * leaves (break, continue, return) in between; the scopes its operands
 * opened are closed by then, so what it held is on top. Settling emits
 * nothing, so a held value is released exactly once: by the construct,
 * or on a way out taken before it got there. */
static int hold_mark(Fn *F) { return ((EScope *)F->scopes.v[F->scopes.n - 1])->owned.n; }

static Val hold(Fn *F, Val v, Type *t) {
    if (v.owned)
        own_in_scope(F, v.c, t, NULL);
    return v;
}

static void settle(Fn *F, int mark) { ((EScope *)F->scopes.v[F->scopes.n - 1])->owned.n = mark; }

/* take(), held: an operand that later operands follow. */
static Val take_held(Fn *F, Node *n, Type *to) {
    return hold(F, take(F, n, to), to ? to : n->ty);
}

/* Releases the locals of every scope from `from` to the innermost. */
static void drops_from(Fn *F, int from) {
    for (int i = F->scopes.n - 1; i >= from; i--)
        drop_scope_vars(F, F->scopes.v[i]);
}

static int innermost_loop(Fn *F) {
    for (int i = F->scopes.n - 1; i >= 0; i--)
        if (((EScope *)F->scopes.v[i])->loop)
            return i;
    return 0;
}

/* Registers local `v` in the current scope. In an async function a
 * parameter is a frame field (the caller stores it there); any other
 * local is placed by place_values. */
static void add_local(Fn *F, Var *v) {
    if (F->async && v->is_param) {
        buf_printf(&F->fields, "    %s %s;\n", ty_c(v->ty), v->cname);
    } else if (F->async) {
        Local *l = arena_alloc(sizeof *l);
        l->var = v;
        l->depth = F->open_loops.n;
        vec_push(&F->local_info, l);
        v->emit_id = F->local_info.n;
        map_put(&F->local_ids, v->cname, (void *)(intptr_t)v->emit_id);
    }
    own_in_scope(F, var_c(F, v), v->ty, v);
}

/* The C declaration of local or parameter `v` of a sync function: marked
 * unused when TML never reads it, so -Wall -Wextra stays quiet. */
static const char *declaration(Var *v) {
    return arena_printf("%s %s%s%s", ty_c(v->ty), v->by_ref ? "*" : "", v->cname,
                        v->reads > 0 ? "" : " __attribute__((unused))");
}

/* Declares `v` and initialises it with the owned value `init`. */
static void bind_var(Fn *F, Var *v, const char *init) {
    if (F->async) {
        add_local(F, v);
        line(F, "fr->%s = %s;", v->cname, init);
        return;
    }
    line(F, "%s = %s;", declaration(v), init);
    add_local(F, v);
}

/* --------------------------------------------------------- literals */

static const char *c_string(const char *s, int len) {
    Buf b = {0};
    buf_putc(&b, '"');
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            buf_printf(&b, "\\%c", c);
        else if (c == '?')
            buf_puts(&b, "\\?");     /* no trigraphs */
        else if (c >= 0x20 && c < 0x7F)
            buf_putc(&b, (char)c);
        else
            buf_printf(&b, "\\%03o", c);
    }
    buf_putc(&b, '"');
    const char *r = arena_strndup(b.s, b.len);
    buf_free(&b);
    return r;
}

/* A static Str literal; borrowed (literals are never counted). */
static Val str_lit(const char *s, int len) {
    int id = ++E.nlits;
    buf_printf(&E.lits, "static tml_str tml_lit%d = TML_STR_LIT(%s);\n", id, c_string(s, len));
    return val(arena_printf("(&tml_lit%d)", id), false);
}

static const char *loc_args(Loc l) { return arena_printf("tml_file, %d, %d", l.line, l.col); }

/* The value as an owned-or-borrowed Str (to_string). */
static Val str_of(Fn *F, Val v, Type *t) {
    switch (t->kind) {
    case TY_STR: return v;
    case TY_BOOL: return val(arena_printf("tml_str_from_bool(%s)", v.c), false);
    case TY_CHAR: return to_tmp(F, ty_prim(TY_STR), arena_printf("tml_str_from_char(%s)", v.c));
    case TY_F32: case TY_F64:
        return to_tmp(F, ty_prim(TY_STR), arena_printf("tml_str_from_f64(%s)", v.c));
    case TY_UNIT: case TY_NEVER: return str_lit("()", 2);
    case TY_DURATION:
        return to_tmp(F, ty_prim(TY_STR), arena_printf("tml_dur_to_string(%s)", v.c));
    case TY_BUFFER:
        return to_tmp(F, ty_prim(TY_STR), arena_printf("tml_buffer_to_string(%s)", v.c));
    case TY_SOCKADDR: {
        Val a = to_tmp(F, t, v.c);
        return to_tmp(F, ty_prim(TY_STR), arena_printf("tml_sockaddr_to_string(&%s)", a.c));
    }
    case TY_RECV_ERROR: case TY_TIMEOUT_ERROR:     /* one message each: the value is unused */
        line(F, "(void)%s;", v.c);
        return t->kind == TY_RECV_ERROR ? str_lit("receiving on a closed channel", 29)
                                        : str_lit("deadline has elapsed", 20);
    case TY_JOIN_ERROR:
        return val(arena_printf("tml_join_error_string(%s)", v.c), false);
    case TY_ENUM: {                                /* payload-free: Type::Variant */
        Buf names = {0};
        for (int i = 0; i < t->sd->variants.n; i++) {
            const char *s = arena_printf("%s::%s", t->sd->name,
                                         ((Variant *)t->sd->variants.v[i])->name);
            buf_printf(&names, "%s%s", i ? ", " : "", str_lit(s, (int)strlen(s)).c);
        }
        const char *pick = arena_printf("((tml_str *[]){%s})[%s.tag]", names.s, v.c);
        buf_free(&names);
        return val(pick, false);
    }
    default:
        if (ty_is_signed(t))
            return to_tmp(F, ty_prim(TY_STR), arena_printf("tml_str_from_i64(%s)", v.c));
        return to_tmp(F, ty_prim(TY_STR), arena_printf("tml_str_from_u64(%s)", v.c));
    }
}

/* "a{x}b": the text so far is held while the next part is evaluated. */
static Val interp(Fn *F, Node *n) {
    Type *str = ty_prim(TY_STR);
    Val acc = {0};
    bool have = false;
    int arg = 0, mark = hold_mark(F);
    for (StrPart *p = n->parts; p; p = p->next) {
        Val piece;
        if (p->is_expr) {
            Node *e = n->args.v[arg++];
            Val v = emit(F, e);
            piece = str_of(F, v, e->ty);
            if (e->ty->kind != TY_STR)
                release(F, v, e->ty);
        } else {
            piece = str_lit(p->text, p->len);
        }
        settle(F, mark);
        if (have) {
            Val next = to_tmp(F, str, arena_printf("tml_str_concat(%s, %s)", acc.c, piece.c));
            release(F, acc, str);
            release(F, piece, str);
            piece = next;
        }
        acc = hold(F, piece, str);
        have = true;
    }
    settle(F, mark);
    return have ? acc : str_lit("", 0);
}

/* -------------------------------------------------------- operators */

static const char *int_suffix(Type *t) {
    static const char *names[] = {[TY_I8] = "i8", [TY_I16] = "i16", [TY_I32] = "i32",
                                  [TY_I64] = "i64", [TY_U8] = "u8", [TY_U16] = "u16",
                                  [TY_U32] = "u32", [TY_U64] = "u64"};
    return names[t->kind];
}

static Val arith(Fn *F, const char *op, Val l, Val r, Type *t, Loc loc) {
    if (t->kind == TY_STR) {
        Val s = to_tmp(F, t, arena_printf("tml_str_concat(%s, %s)", l.c, r.c));
        return s;
    }
    if (ty_is_float(t)) {
        if (!strcmp(op, "%"))
            return to_tmp(F, t, arena_printf("(%s)__builtin_fmod(%s, %s)", ty_c(t), l.c, r.c));
        return to_tmp(F, t, arena_printf("%s %s %s", l.c, op, r.c));
    }
    const char *sfx = int_suffix(t);
    static const struct { const char *op, *fn; } fns[] = {
        {"+", "add"}, {"-", "sub"}, {"*", "mul"}, {"<<", "shl"}, {">>", "shr"},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (!strcmp(op, fns[i].op))
            return to_tmp(F, t, arena_printf("tml_%s_%s(%s, %s)", fns[i].fn, sfx, l.c, r.c));
    if (!strcmp(op, "/") || !strcmp(op, "%"))
        return to_tmp(F, t, arena_printf("tml_%s_%s(%s, %s, %d, %d)", op[0] == '/' ? "div" : "rem",
                                         sfx, l.c, r.c, loc.line, loc.col));
    return to_tmp(F, t, arena_printf("(%s)(%s %s %s)", ty_c(t), l.c, op, r.c));
}

static Val compare(Fn *F, const char *op, Val l, Val r, Type *t) {
    Type *b = ty_prim(TY_BOOL);
    if (t->kind == TY_STR) {
        if (!strcmp(op, "=="))
            return to_tmp(F, b, arena_printf("tml_str_eq(%s, %s)", l.c, r.c));
        if (!strcmp(op, "!="))
            return to_tmp(F, b, arena_printf("!tml_str_eq(%s, %s)", l.c, r.c));
        return to_tmp(F, b, arena_printf("tml_str_cmp(%s, %s) %s 0", l.c, r.c, op));
    }
    if (t->kind == TY_ENUM)
        return to_tmp(F, b, arena_printf("%s.tag %s %s.tag", l.c, op, r.c));
    return to_tmp(F, b, arena_printf("%s %s %s", l.c, op, r.c));
}

static Val logical(Fn *F, Node *n) {
    bool is_and = !strcmp(n->op, "and");
    Val l = emit(F, n->lhs);
    const char *res = tmp(F, ty_prim(TY_BOOL));
    line(F, "%s = %s;", res, l.c);
    line(F, "if (%s%s) {", is_and ? "" : "!", res);
    F->indent++;
    Val r = emit(F, n->rhs);
    line(F, "%s = %s;", res, r.c);
    F->indent--;
    line(F, "}");
    return val(res, true);
}

static bool is_cmp_op(const char *op) {
    return !strcmp(op, "==") || !strcmp(op, "!=") || !strcmp(op, "<") || !strcmp(op, ">") ||
           !strcmp(op, "<=") || !strcmp(op, ">=");
}

static Val binary(Fn *F, Node *n) {
    if (!strcmp(n->op, "and") || !strcmp(n->op, "or"))
        return logical(F, n);
    Type *lt = n->lhs->ty;
    int mark = hold_mark(F);
    Val l = hold(F, emit(F, n->lhs), lt);
    Val r = coerce(emit(F, n->rhs), n->rhs->ty, lt);
    settle(F, mark);
    if (lt->kind == TY_NEVER || n->rhs->ty->kind == TY_NEVER)
        return unit_val();      /* unreachable: an operand left the function */
    Val res;
    if (lt->kind == TY_INSTANT && !is_cmp_op(n->op))    /* Instant +/- Duration */
        res = to_tmp(F, lt, arena_printf("tml_instant_shift(%s, %s, %d, %d, %d)", l.c, r.c,
                                         n->op[0] == '-', n->loc.line, n->loc.col));
    else
        res = is_cmp_op(n->op) ? compare(F, n->op, l, r, lt) : arith(F, n->op, l, r, lt, n->loc);
    release(F, l, lt);
    release(F, r, lt);
    return res;
}

static Val unary(Fn *F, Node *n) {
    Val v = emit(F, n->lhs);
    Type *t = n->ty;
    if (t->kind == TY_NEVER)
        return v;
    if (!strcmp(n->op, "not"))
        return to_tmp(F, t, arena_printf("!%s", v.c));
    if (!strcmp(n->op, "~"))
        return to_tmp(F, t, arena_printf("(%s)~%s", ty_c(t), v.c));
    if (ty_is_float(t))
        return to_tmp(F, t, arena_printf("-%s", v.c));
    return to_tmp(F, t, arena_printf("tml_neg_%s(%s)", int_suffix(t), v.c));
}

/* ------------------------------------------------------------ paths */

/* The C member that field access n (ND_FIELD) names. */
static const char *member(Node *n) {
    switch (n->lhs->ty->kind) {
    case TY_TUPLE: return arena_printf("f%d", (int)n->ival);
    case TY_SEND_ERROR: return "value";
    case TY_DURATION: return n->name;           /* tml_Duration's secs, nanos */
    default: return field_name(n->name);
    }
}

static Val field(Fn *F, Node *n) {
    Val base = emit(F, n->lhs);
    Type *bt = n->lhs->ty;
    Val fv = val(arena_printf("%s.%s", base.c, member(n)), false);
    if (!base.owned || !ty_managed(bt))
        return fv;
    Val kept = own(F, fv, n->ty);
    release(F, base, bt);
    return kept;
}

static const char *guard_place(Node *d, const char *g);
static Node *guard_of(Node *d);

/* The root of assignment target n past its fields and guards: a
 * variable's path, or an expression, the guard (or mutex) that no
 * variable holds of `*(await m.lock()) += 1` (check.c: through_guard). */
static Node *target_root(Node *n) {
    while (n->kind == ND_FIELD || n->kind == ND_DEREF)
        n = n->kind == ND_DEREF ? guard_of(n) : n->lhs;
    return n;
}

/* The C place that target n names; `root` is the C value of its root
 * when that is not a variable (evaluated once by the caller), else unused. */
static const char *lvalue(Fn *F, Node *n, const char *root) {
    if (n->kind == ND_DEREF)
        return guard_place(n, lvalue(F, guard_of(n), root));
    if (n->kind == ND_FIELD)
        return arena_printf("%s.%s", lvalue(F, n->lhs, root), member(n));
    return n->kind == ND_PATH ? var_c(F, n->var) : root;
}

/* ------------------------------------------------------- aggregates */

static Val aggregate(Fn *F, Type *t, Vec *elems, Vec *types) {
    Buf b = {0};
    buf_printf(&b, "(%s){", ty_c(t));
    int mark = hold_mark(F);
    for (int i = 0; i < elems->n; i++) {
        Val v = take_held(F, elems->v[i], types->v[i]);
        buf_printf(&b, "%s%s", i ? ", " : "", v.c);
    }
    settle(F, mark);
    buf_putc(&b, '}');
    Val r = to_tmp(F, t, b.s);
    buf_free(&b);
    return r;
}

/* Outcome/Maybe value with tag and one payload (NULL for none). */
static Val tagged(Fn *F, Type *t, int tag, const char *payload) {
    const char *r = tmp(F, t);
    line(F, "memset(&%s, 0, sizeof %s);", r, r);
    line(F, "%s.tag = %d;", r, tag);
    if (payload) {
        const char *slot = t->kind == TY_MAYBE ? "val" : tag ? "err" : "ok";
        line(F, "%s.%s = %s;", r, slot, payload);
    }
    return val(r, true);
}

static Val enum_ctor(Fn *F, Node *n) {
    Type *t = n->ty;
    if (n->kind == ND_PATH)
        return tagged(F, t, 0, NULL);   /* Nothing */
    Type *pt = t->kind == TY_MAYBE ? t->a : n->variant ? t->b : t->a;
    Val v = take(F, n->args.v[0], pt);
    return tagged(F, t, n->variant, is_unit(pt) ? NULL : v.c);
}

/* A user enum's value: Shape::Circle(r), Empty... (check.c: BI_VARIANT). */
static Val variant_ctor(Fn *F, Node *n) {
    Variant *v = n->ty->sd->variants.v[n->variant];
    Vec vals = {0};
    int mark = hold_mark(F);
    for (int i = 0; n->kind == ND_CALL && i < n->args.n; i++)
        vec_push(&vals, (void *)take_held(F, n->args.v[i], v->types.v[i]).c);
    settle(F, mark);
    const char *r = tmp(F, n->ty);
    line(F, "memset(&%s, 0, sizeof %s);", r, r);
    line(F, "%s.tag = %d;", r, v->tag);
    for (int i = 0; i < vals.n; i++)
        line(F, "%s.u.%s.f%d = %s;", r, field_name(v->name), i, (char *)vals.v[i]);
    return val(r, true);
}

/* --------------------------------------------------------- payloads */

/* The payload slot of a tagged value. */
static const char *slot(Type *t, bool second) {
    if (t->kind == TY_MAYBE)
        return "val";
    return second ? "err" : "ok";
}

/* The payload of variant `v` of x, a Maybe, an Outcome or a JoinError
 * (OsError's code), and in *pt its type. */
static const char *payload_of(const char *x, Type *t, int v, Type **pt) {
    if (t->kind == TY_JOIN_ERROR) {
        *pt = ty_prim(TY_I32);
        return arena_printf("tml_join_os_code(%s)", x);
    }
    *pt = t->kind == TY_MAYBE ? t->a : v ? t->b : t->a;
    return arena_printf("%s.%s", x, slot(t, v));
}

/* Moves (owned) or copies (borrowed) the payload of `v` into a new Val. */
static Val payload(Fn *F, Val v, Type *t, bool second) {
    Type *pt;
    const char *p = payload_of(v.c, t, second, &pt);
    if (is_unit(pt))
        return unit_val();
    return own(F, val(p, v.owned), pt);
}

/* Tag of the "good" variant: Ok = 0, Just = 1. */
static int good_tag(Type *t) { return t->kind == TY_MAYBE ? 1 : 0; }

static Val unwrap(Fn *F, Node *n, Val v, Type *t) {
    int good = good_tag(t);
    line(F, "if (%s.tag != %d) {", v.c, good);
    F->indent++;
    if (n->builtin == BI_EXPECT) {
        Val msg = emit(F, n->args.v[0]);
        line(F, "tml_panic_str(%s, %s);", loc_args(n->loc), msg.c);
    } else {
        line(F, "tml_panic_at(%s, \"called unwrap() on %s\");", loc_args(n->loc),
             t->kind == TY_MAYBE ? "Nothing" : "Err");
    }
    F->indent--;
    line(F, "}");
    return payload(F, v, t, t->kind == TY_OUTCOME && good);
}

static Val unwrap_or(Fn *F, Node *n, Val v, Type *t) {
    Type *pt = n->ty;
    Val d = take(F, n->args.v[0], pt);
    const char *r = tmp(F, pt);
    line(F, "if (%s.tag == %d) {", v.c, good_tag(t));
    F->indent++;
    line(F, "%s = %s;", r, payload(F, v, t, false).c);
    release(F, d, pt);
    F->indent--;
    line(F, "} else {");
    F->indent++;
    if (v.owned && ty_managed(t))
        line(F, "%s", drop_stmt(t, v.c));
    line(F, "%s = %s;", r, d.c);
    F->indent--;
    line(F, "}");
    return val(r, true);
}

/* Outcome.ok() / .err(): Maybe of one side. */
static Val outcome_side(Fn *F, Node *n, Val v, Type *t, bool err) {
    Type *mt = n->ty;
    const char *r = tmp(F, mt);
    line(F, "memset(&%s, 0, sizeof %s);", r, r);
    line(F, "if (%s.tag == %d) {", v.c, err);
    F->indent++;
    line(F, "%s.tag = 1;", r);
    if (!is_unit(mt->a))
        line(F, "%s.val = %s;", r, payload(F, v, t, err).c);
    F->indent--;
    line(F, "}");
    if (v.owned && ty_managed(t)) {
        line(F, "else {");
        F->indent++;
        line(F, "%s", drop_stmt(t, v.c));
        F->indent--;
        line(F, "}");
    }
    return val(r, true);
}

/* ------------------------------------------------ leaves and awaits */

/* A fresh resume point: sets the state and places its label. */
static int resume_point(Fn *F, int await_id) {
    int state = await_id + 1;
    for (int i = 0; i < F->open_loops.n; i++)
        F->loop_awaits.v[(intptr_t)F->open_loops.v[i]] = (void *)1;
    line(F, "fr->state = %d;", state);
    buf_printf(&F->body, "resume%d:\n", state);
    return state;
}

static void poll_leaf(Fn *F, const char *poll_call) {
    line(F, "if (%s == TML_PENDING)", poll_call);
    line(F, "    return TML_PENDING;");
}

/* `await timeout(d, fut)`: the future awaited at `at` runs beside a
 * sleep; whichever is Ready first wins and the other is dropped. */
typedef struct Timeout {
    Node *at;                   /* the await */
    const char *ns;             /* the duration, ns (evaluated before fut) */
    const char *timer;          /* the sleep leaf's lvalue */
    const char *expired;        /* I32 temp: 1 when the timer won */
} Timeout;

/* Declares the future awaited at `at`, of C type `ctype`, in the aw
 * union and returns its lvalue. Under timeout it shares a member with
 * the timer. */
static const char *aw_member(Fn *F, Node *at, const char *ctype) {
    int id = at->await_id;
    if (F->tmo && F->tmo->at == at) {
        buf_printf(&F->aw, "        struct { %s in; tml_sleep_fut timer; } a%d;\n", ctype, id);
        F->tmo->timer = arena_printf("fr->aw.a%d.timer", id);
        return arena_printf("fr->aw.a%d.in", id);
    }
    buf_printf(&F->aw, "        %s a%d;\n", ctype, id);
    return arena_printf("fr->aw.a%d", id);
}

/* The drop function's case for resume state `state`: the awaited future
 * (`drop`, C statements) and every value the open scopes own (locals and
 * held temporaries), innermost first. */
static void drop_case(Fn *F, int state, const char *drop) {
    buf_printf(&F->drops, "    case %d:\n", state);
    if (drop && *drop)
        buf_printf(&F->drops, "        %s\n", drop);
    for (int i = F->scopes.n - 1; i >= 0; i--) {
        EScope *sc = F->scopes.v[i];
        for (int k = sc->owned.n - 1; k >= 0; k--) {
            Owned *o = sc->owned.v[k];
            buf_printf(&F->drops, "        %s\n", drop_stmt(o->ty, o->lv));
        }
    }
    buf_printf(&F->drops, "        break;\n");
}

/* Suspends on the future set up at `at` (already initialised): polls it
 * with `poll_call` until Ready. `drop` (C statements, "" for none)
 * cancels it when the frame is dropped while it waits. */
static void suspend(Fn *F, Node *at, const char *poll_call, const char *drop) {
    Timeout *t = F->tmo && F->tmo->at == at ? F->tmo : NULL;
    if (!t) {
        drop_case(F, resume_point(F, at->await_id), drop);
        poll_leaf(F, poll_call);
        return;
    }
    line(F, "tml_sleep_init(&%s, %s);", t->timer, t->ns);
    int state = resume_point(F, at->await_id);
    drop_case(F, state, arena_printf("%s tml_sleep_drop(&%s);", drop, t->timer));
    line(F, "if (%s == TML_READY) {", poll_call);
    line(F, "    tml_sleep_drop(&%s);", t->timer);
    line(F, "    %s = 0;", t->expired);
    /* outside the budget: a future that spends it all still times out */
    line(F, "} else if (tml_deadline_poll(&%s, cx) == TML_READY) {", t->timer);
    if (*drop)
        line(F, "    %s", drop);
    line(F, "    %s = 1;", t->expired);
    line(F, "} else {");
    line(F, "    return TML_PENDING;");
    line(F, "}");
}

static const char *dur_ns(Fn *F, Node *d) {
    Val v = emit(F, d);
    return arena_printf("tml_dur_ns(%s)", v.c);
}

static Val outcome_from_status(Fn *F, Type *t, const char *status, const char *ok_payload,
                               const char *err_payload) {
    const char *r = tmp(F, t);
    line(F, "memset(&%s, 0, sizeof %s);", r, r);
    line(F, "%s.tag = %s != 0;", r, status);
    if (ok_payload)
        line(F, "if (!%s.tag) %s.ok = %s;", r, r, ok_payload);
    if (err_payload)
        line(F, "if (%s.tag) %s.err = %s;", r, r, err_payload);
    return val(r, true);
}

/* rx.recv_timeout(d): Outcome[T, RecvTimeoutError { Timeout, Disconnected }]. */
static Val recv_timeout(Fn *F, Node *at, Node *m, bool awaited) {
    int mark = hold_mark(F);
    Val ch = hold(F, emit(F, m->lhs), m->lhs->ty);
    const char *ns = dur_ns(F, m->args.v[0]);
    const char *out = tmp(F, m->lhs->ty->a);
    const char *status;
    if (awaited) {
        const char *aw = aw_member(F, at, "tml_recv_timeout_fut");
        line(F, "tml_recv_timeout_init(&%s, %s, &%s, %s);", aw, ch.c, out, ns);
        suspend(F, at, arena_printf("tml_recv_timeout_poll(&%s, cx)", aw),
                arena_printf("tml_recv_timeout_drop(&%s);", aw));
        status = arena_printf("%s.status", aw);
    } else {
        status = to_tmp(F, ty_prim(TY_I32), arena_printf("tml_chan_recv_timeout_blocking(%s, &%s, %s)",
                                                         ch.c, out, ns)).c;
    }
    Val r = outcome_from_status(F, m->ty, status, out,
                                arena_printf("(%s){%s == TML_CHAN_TIMEOUT ? 0 : 1}",
                                             ty_c(m->ty->b), status));
    settle(F, mark);
    release(F, ch, m->lhs->ty);
    return r;
}

/* ------------------------------------------------------------- TCP */

/* The NetError (a prelude struct over the NetErrorKind enum, in TML_NET_*
 * order) of the Outcome type `ot` for the nonzero code `st`. */
static const char *net_error(Type *ot, const char *st) {
    return arena_printf("(%s){{(uint32_t)(%s) - 1}}", ty_c(ot->b), st);
}

/* An address argument (SocketAddr, or Str parsed here) in a temporary;
 * *st gets the parse status (0 for a SocketAddr). */
static const char *addr_arg(Fn *F, Node *a, const char **st) {
    Val v = emit(F, a);
    if (a->ty->kind == TY_SOCKADDR) {
        *st = "0";
        return to_tmp(F, a->ty, v.c).c;
    }
    const char *addr = tmp(F, ty_prim(TY_SOCKADDR));
    *st = to_tmp(F, ty_prim(TY_I32), arena_printf("tml_sockaddr_parse(%s, &%s)", v.c, addr)).c;
    release(F, v, a->ty);
    return addr;
}

/* SocketAddr::parse, TcpListener::bind, TcpStream::connect: Outcome[_, NetError]. */
static Val net_ctor(Fn *F, Node *at, Node *n, bool awaited) {
    const char *st;
    const char *addr = addr_arg(F, n->args.v[0], &st);
    if (n->builtin == BI_ADDR_PARSE)
        return outcome_from_status(F, n->ty, st, addr, net_error(n->ty, st));
    const char *res = tmp(F, n->ty->a);
    const char *status = to_tmp(F, ty_prim(TY_I32), st).c;
    line(F, "if (%s == 0) {", status);
    F->indent++;
    if (n->builtin == BI_BIND) {
        line(F, "%s = tml_tcp_bind(&%s, &%s);", status, addr, res);
    } else if (awaited) {
        const char *aw = aw_member(F, at, "tml_connect_fut");
        line(F, "tml_connect_init(&%s, &%s);", aw, addr);
        suspend(F, at, arena_printf("tml_connect_poll(&%s, cx)", aw),
                arena_printf("tml_connect_drop(&%s);", aw));
        line(F, "%s = %s.status;", status, aw);
        line(F, "%s = %s.stream;", res, aw);
    } else {
        line(F, "%s = tml_tcp_connect_blocking(&%s, &%s);", status, addr, res);
    }
    F->indent--;
    line(F, "}");
    return outcome_from_status(F, n->ty, status, res, net_error(n->ty, status));
}

/* l.accept(), s.read(buf), s.write(buf), s.write_all(buf): wait-capable. */
static Val net_io(Fn *F, Node *at, Node *m, bool awaited) {
    static const char *names[] = {"accept", "read", "write", "write_all"};
    int k = m->builtin == BI_ACCEPT ? 0 : m->builtin == BI_READ ? 1 : m->builtin == BI_WRITE ? 2 : 3;
    int mark = hold_mark(F);
    Val s = hold(F, emit(F, m->lhs), m->lhs->ty);
    Val buf = k ? hold(F, emit(F, m->args.v[0]), ty_prim(TY_BUFFER)) : unit_val();
    const char *args = k ? arena_printf("%s, %s", s.c, buf.c) : s.c;
    const char *status, *ok = NULL;
    if (awaited) {
        const char *aw = aw_member(F, at, arena_printf("tml_%s_fut", names[k]));
        line(F, "tml_%s_init(&%s, %s);", names[k], aw, args);
        suspend(F, at, arena_printf("tml_%s_poll(&%s, cx)", names[k], aw),
                arena_printf("tml_%s_drop(&%s);", names[k], aw));
        status = arena_printf("%s.status", aw);
        if (k == 0)
            ok = arena_printf("(%s){%s.stream, %s.peer}", ty_c(m->ty->a), aw, aw);
        else if (k < 3)
            ok = arena_printf("%s.n", aw);
    } else {
        const char *fn = arena_printf("tml_tcp_%s_blocking", names[k]);
        if (k == 0) {
            const char *pair = tmp(F, m->ty->a);
            status = to_tmp(F, ty_prim(TY_I32), arena_printf("%s(%s, &%s.f0, &%s.f1)", fn, s.c,
                                                             pair, pair)).c;
            ok = pair;
        } else if (k < 3) {
            const char *n = tmp(F, ty_prim(TY_I64));
            status = to_tmp(F, ty_prim(TY_I32), arena_printf("%s(%s, &%s)", fn, args, n)).c;
            ok = n;
        } else {
            status = to_tmp(F, ty_prim(TY_I32), arena_printf("%s(%s)", fn, args)).c;
        }
    }
    Val r = outcome_from_status(F, m->ty, status, ok, net_error(m->ty, status));
    settle(F, mark);
    release(F, buf, ty_prim(TY_BUFFER));
    release(F, s, m->lhs->ty);
    return r;
}

/* Buffer methods (variant: len, capacity, clear, write_byte, read_byte,
 * write_str, is_empty) on buffer `b`. */
static Val buffer_op(Fn *F, Node *n, Val b) {
    switch (n->variant) {
    case 0: return to_tmp(F, n->ty, arena_printf("tml_buffer_len(%s)", b.c));
    case 1: return to_tmp(F, n->ty, arena_printf("tml_buffer_capacity(%s)", b.c));
    case 2: line(F, "tml_buffer_clear(%s);", b.c); return unit_val();
    case 3: {
        Val x = emit(F, n->args.v[0]);
        line(F, "tml_buffer_write_byte_at(%s, %s, %s);", b.c, x.c, loc_args(n->loc));
        return unit_val();
    }
    case 4: {
        const char *r = tmp(F, n->ty);
        line(F, "memset(&%s, 0, sizeof %s);", r, r);
        line(F, "%s.tag = tml_buffer_read_byte(%s, &%s.val);", r, b.c, r);
        return val(r, true);
    }
    case 5: {
        Val x = emit(F, n->args.v[0]);
        line(F, "tml_buffer_write_str_at(%s, %s, %s);", b.c, x.c, loc_args(n->loc));
        release(F, x, ty_prim(TY_STR));
        return unit_val();
    }
    default: return to_tmp(F, n->ty, arena_printf("tml_buffer_len(%s) == 0", b.c));
    }
}

/* Duration methods (variant: subsec_nanos/millis/micros, is_zero,
 * saturating_add/sub, checked_add/sub, mul, div, debug_string). */
static Val duration_op(Fn *F, Node *n, Val d) {
    static const char *subsec[] = {"", " / 1000000", " / 1000"};
    Val x = n->args.n ? emit(F, n->args.v[0]) : unit_val();
    const char *sum = arena_printf("tml_dur_total(%s) %s tml_dur_total(%s)", d.c,
                                   n->variant % 2 == 0 ? "+" : "-", x.c);
    switch (n->variant) {
    case 0: case 1: case 2:
        return to_tmp(F, n->ty, arena_printf("%s.nanos%s", d.c, subsec[n->variant]));
    case 3: return to_tmp(F, n->ty, arena_printf("%s.secs == 0 && %s.nanos == 0", d.c, d.c));
    case 4: case 5: return to_tmp(F, n->ty, arena_printf("tml_dur_saturate(%s)", sum));
    case 6: case 7: {
        const char *r = tmp(F, n->ty);
        line(F, "memset(&%s, 0, sizeof %s);", r, r);
        line(F, "%s.tag = tml_dur_checked(%s, &%s.val);", r, sum, r);
        return val(r, true);
    }
    case 8: case 9:
        return to_tmp(F, n->ty, arena_printf("tml_dur_scaled(%s, %s, %d, %d, %d)", d.c, x.c,
                                             n->variant == 9, n->loc.line, n->loc.col));
    default: return to_tmp(F, n->ty, arena_printf("tml_dur_debug(%s)", d.c));
    }
}

/* ------------------------------------------------------------ guards */

/* The guard a dereference reads: `*g` and `*g.get()` / `*g.get_mut()`;
 * for `*m.get_mut()` the mutex itself (tml_guard_value reads a mutex
 * pointer as an untagged guard). */
static Node *guard_of(Node *d) {
    Node *g = d->lhs;
    bool through = g->kind == ND_METHOD &&
                   (g->builtin == BI_GUARD_SELF || g->builtin == BI_MUTEX_GET_MUT);
    return through ? g->lhs : g;
}

/* The value guarded by guard expression `g`, as an lvalue. */
static const char *guard_place(Node *d, const char *g) {
    return arena_printf("(*(%s *)tml_guard_value(%s, %d, %d))", ty_c(d->ty), g, d->loc.line,
                        d->loc.col);
}

/* *g: borrowed from a guard variable; an unbound guard (`*(await
 * m.lock())`) is released at once, after its value is copied out. */
static Val deref_(Fn *F, Node *n) {
    Node *gn = guard_of(n);
    Val g = emit(F, gn);
    Val v = val(guard_place(n, g.c), false);
    if (!g.owned)
        return v;
    Val kept = to_tmp(F, n->ty, ty_managed(n->ty) ? dup_expr(n->ty, v.c) : v.c);
    release(F, g, gn->ty);
    return kept;
}

/* m.lock(): a MutexGuard. It borrows the mutex when `m` is an immutable
 * variable (a parameter or `let`): the guard is declared after it in
 * the same or an inner scope, so it is released first, and moving the
 * guard out takes a reference (tml_guard_take). Otherwise it holds a
 * reference of its own. Borrowing spares two contended atomic
 * operations per lock. */
static Val lock(Fn *F, Node *at, Node *m, bool awaited) {
    Node *r = m->lhs;
    bool borrow = r->kind == ND_PATH && r->var && !r->var->mutable_ && !r->var->const_init;
    int mark = hold_mark(F);
    Val mv = hold(F, emit(F, m->lhs), m->lhs->ty);
    if (awaited) {
        const char *aw = aw_member(F, at, "tml_lock_fut");
        line(F, "tml_lock_init(&%s, %s);", aw, mv.c);
        suspend(F, at, arena_printf("tml_lock_poll(&%s, cx)", aw),
                arena_printf("tml_lock_drop(&%s);", aw));
    } else {
        line(F, "tml_mutex_lock_blocking(%s);", mv.c);
    }
    const char *gc = borrow ? mv.c : arena_printf("tml_guard_owning(%s)", mv.c);
    if (awaited && F->tmo && F->tmo->at == at)  /* the timer won: no lock, no reference */
        gc = arena_printf("%s ? NULL : %s", F->tmo->expired, gc);
    Val g = to_tmp(F, m->ty, gc);
    settle(F, mark);
    release(F, mv, m->lhs->ty);
    return g;
}

/* s.acquire() / n.notified(): Unit once a permit (notification) is ours. */
static Val permit(Fn *F, Node *at, Node *m, bool awaited) {
    int mark = hold_mark(F);
    Val h = hold(F, emit(F, m->lhs), m->lhs->ty);
    bool sem = m->builtin == BI_ACQUIRE;
    if (awaited) {
        const char *kind = sem ? "acquire" : "notified";
        const char *aw = aw_member(F, at, arena_printf("tml_%s_fut", kind));
        line(F, "tml_%s_init(&%s, %s);", kind, aw, h.c);
        suspend(F, at, arena_printf("tml_%s_poll(&%s, cx)", kind, aw),
                arena_printf("tml_%s_drop(&%s);", kind, aw));
    } else {
        line(F, sem ? "tml_sem_acquire_blocking(%s);" : "tml_notified_blocking(%s);", h.c);
    }
    settle(F, mark);
    release(F, h, m->lhs->ty);
    return unit_val();
}

/* drop(x): releases the guard or channel end in variable x now; its
 * scope's release then finds NULL. */
static Val drop_(Fn *F, Node *n) {
    Node *x = n->args.v[0];
    const char *lv = lvalue(F, x, NULL);
    line(F, "%s", drop_stmt(x->ty, lv));
    line(F, "%s = NULL;", lv);
    return unit_val();
}

/* await h / h.join(): t = Outcome[T, JoinError]. */
static Val join(Fn *F, Node *at, Node *h, Type *t, bool awaited) {
    int mark = hold_mark(F);
    Val hv = hold(F, emit(F, h), h->ty);
    const char *out = is_unit(t->a) ? NULL : tmp(F, t->a);
    const char *outp = out ? arena_printf("&%s", out) : "NULL";
    const char *err;
    if (awaited) {
        const char *aw = aw_member(F, at, "tml_join_fut");
        line(F, "tml_join_init(&%s, %s, %s);", aw, hv.c, outp);
        suspend(F, at, arena_printf("tml_join_poll(&%s, cx)", aw),
                arena_printf("tml_join_drop(&%s);", aw));
        err = arena_printf("%s.err", aw);
    } else {
        err = to_tmp(F, ty_prim(TY_JOIN_ERROR), arena_printf("tml_join_blocking(%s, %s)", hv.c,
                                                             outp)).c;
    }
    Val r = outcome_from_status(F, t, err, out, err);
    settle(F, mark);
    release(F, hv, h->ty);
    return r;
}

/* tx.send(v): Outcome[Unit, SendError[T]]. */
static Val send(Fn *F, Node *at, Node *m, bool awaited) {
    int mark = hold_mark(F);
    Val ch = hold(F, emit(F, m->lhs), m->lhs->ty);
    Type *et = m->lhs->ty->a;
    Val v = take(F, m->args.v[0], et);
    const char *slotv = tmp(F, et);
    line(F, "%s = %s;", slotv, v.c);
    const char *status;
    if (awaited) {
        const char *aw = aw_member(F, at, "tml_send_fut");
        line(F, "tml_send_init(&%s, %s, &%s);", aw, ch.c, slotv);
        /* a dropped send that did not deliver leaves the value to us (rt.h) */
        const char *undelivered = ty_managed(et) ? arena_printf(" if (%s.status != TML_CHAN_OK) %s", aw,
                                                                drop_stmt(et, slotv)) : "";
        suspend(F, at, arena_printf("tml_send_poll(&%s, cx)", aw),
                arena_printf("tml_send_drop(&%s);%s", aw, undelivered));
        status = arena_printf("%s.status", aw);
    } else {
        status = to_tmp(F, ty_prim(TY_I32), arena_printf("tml_chan_send_blocking(%s, &%s)", ch.c,
                                                         slotv)).c;
    }
    Type *set = m->ty->b;
    Val r = outcome_from_status(F, m->ty, status, NULL,
                                arena_printf("(%s){%s}", ty_c(set), slotv));
    settle(F, mark);
    release(F, ch, m->lhs->ty);
    return r;
}

/* rx.recv(): Outcome[T, RecvError]. */
static Val recv(Fn *F, Node *at, Node *m, bool awaited) {
    int mark = hold_mark(F);
    Val ch = hold(F, emit(F, m->lhs), m->lhs->ty);
    Type *et = m->lhs->ty->a;
    const char *out = tmp(F, et);
    const char *status;
    if (awaited) {
        const char *aw = aw_member(F, at, "tml_recv_fut");
        line(F, "tml_recv_init(&%s, %s, &%s);", aw, ch.c, out);
        suspend(F, at, arena_printf("tml_recv_poll(&%s, cx)", aw),
                arena_printf("tml_recv_drop(&%s);", aw));
        status = arena_printf("%s.status", aw);
    } else {
        status = to_tmp(F, ty_prim(TY_I32), arena_printf("tml_chan_recv_blocking(%s, &%s)", ch.c,
                                                         out)).c;
    }
    Val r = outcome_from_status(F, m->ty, status, out, NULL);
    settle(F, mark);
    release(F, ch, m->lhs->ty);
    return r;
}

/* Waits until the monotonic clock reaches `deadline` (ns): the task
 * under await, else the thread. */
static void sleep_until(Fn *F, Node *at, const char *deadline, bool awaited) {
    if (!awaited) {
        line(F, "tml_sleep_blocking(tml_clamp_i64((__int128)(%s) - tml_now_ns()));", deadline);
        return;
    }
    const char *aw = aw_member(F, at, "tml_sleep_fut");
    line(F, "tml_sleep_until_init(&%s, %s);", aw, deadline);
    suspend(F, at, arena_printf("tml_sleep_poll(&%s, cx)", aw),
            arena_printf("tml_sleep_drop(&%s);", aw));
}

/* sleep(d) / sleep_until(t) */
static Val sleep_(Fn *F, Node *at, Node *call, bool awaited) {
    if (call->variant) {
        sleep_until(F, at, emit(F, call->args.v[0]).c, awaited);
        return unit_val();
    }
    const char *ns = dur_ns(F, call->args.v[0]);
    if (!awaited) {
        line(F, "tml_sleep_blocking(%s);", ns);
        return unit_val();
    }
    const char *aw = aw_member(F, at, "tml_sleep_fut");
    line(F, "tml_sleep_init(&%s, %s);", aw, ns);
    suspend(F, at, arena_printf("tml_sleep_poll(&%s, cx)", aw),
            arena_printf("tml_sleep_drop(&%s);", aw));
    return unit_val();
}

/* iv.tick(): waits for the interval's next deadline, returns it (an
 * Instant) and schedules the one after; missed ticks fire at once, one
 * per call, as Tokio's default (MissedTickBehavior::Burst). */
static Val tick(Fn *F, Node *at, Node *m, bool awaited) {
    const char *iv = lvalue(F, m->lhs, NULL);
    Val due = to_tmp(F, ty_prim(TY_INSTANT), arena_printf("%s.next_ns", iv));
    sleep_until(F, at, due.c, awaited);
    /* saturating: past I64 the next tick is "never" (INT64_MAX ns) */
    line(F, "%s.next_ns = tml_clamp_i64((__int128)(%s) + %s.period_ns);", iv, due.c, iv);
    return due;
}

static Val yield_(Fn *F, Node *at, bool awaited) {
    if (!awaited) {
        line(F, "tml_yield_blocking();");
        return unit_val();
    }
    const char *aw = aw_member(F, at, "tml_yield_fut");
    line(F, "tml_yield_init(&%s);", aw);
    suspend(F, at, arena_printf("tml_yield_poll(&%s, cx)", aw), "");
    return unit_val();
}

static const char *frame_struct(Func *f) { return arena_printf("struct tml_u_%s_frame", f->cname); }

/* Evaluates the arguments of an async call (owned, converted to the
 * parameter types) before the callee frame is initialised: an argument
 * may itself await, and its future shares the `aw` union. Each is held
 * until the last is evaluated; the caller then moves them into the
 * callee frame (store_params), whose drop releases them from there on,
 * before anything that can suspend. */
static Vec call_args(Fn *F, Node *call) {
    Vec vals = {0};
    int mark = hold_mark(F);
    for (int i = 0; i < call->args.n; i++) {
        Param *pa = call->fn->params.v[i];
        vec_push(&vals, (void *)take_held(F, call->args.v[i], pa->var->ty).c);
    }
    settle(F, mark);
    return vals;
}

/* Stores evaluated arguments into the callee frame `frame` (`sep` is "."
 * for a struct lvalue, "->" for a pointer). */
static void store_params(Fn *F, Func *g, Vec *vals, const char *frame, const char *sep) {
    for (int i = 0; i < vals->n; i++)
        line(F, "%s%s%s = %s;", frame, sep, ((Param *)g->params.v[i])->var->cname,
             (char *)vals->v[i]);
}

/* await f(args): the callee frame lives in this frame's aw union. */
static Val await_call(Fn *F, Node *at, Node *call) {
    Func *g = call->fn;
    bool boxed = lower_edge_boxed(F->f, g);
    Vec vals = call_args(F, call);
    const char *aw = aw_member(F, at, arena_printf("%s%s", frame_struct(g), boxed ? " *" : ""));
    const char *sep = boxed ? "->" : ".";
    if (boxed)
        line(F, "%s = tml_alloc(sizeof *%s);", aw, aw);
    /* Only the resume state must start at 0: parameters are stored here,
     * and the callee writes every other field before it reads it. */
    line(F, "%s%sstate = 0;", aw, sep);
    store_params(F, g, &vals, aw, sep);
    const char *ref = boxed ? aw : arena_printf("&%s", aw);
    suspend(F, at, arena_printf("tml_u_%s_poll(%s, cx)", g->cname, ref),
            boxed ? arena_printf("tml_u_%s_drop(%s); tml_free(%s);", g->cname, aw, aw)
                  : arena_printf("tml_u_%s_drop(%s);", g->cname, ref));
    Val r = unit_val();
    bool timed = F->tmo && F->tmo->at == at;
    if (timed) {                    /* a dropped callee has no result */
        line(F, "if (!%s) {", F->tmo->expired);
        F->indent++;
    }
    if (!is_unit(g->ret)) {
        r = val(tmp(F, g->ret), true);
        line(F, "%s = %s%sret;", r.c, aw, boxed ? "->" : ".");
    }
    if (boxed)
        line(F, "tml_free(%s);", aw);
    if (timed) {
        F->indent--;
        line(F, "}");
    }
    return r;
}

static Val timeout_(Fn *F, Node *at, Node *call);

/* A wait-capable method call `e` (send, recv, tick, lock, recv_timeout,
 * the TCP operations, acquire, notified): awaited at `at`, or blocking
 * the thread when `at` is NULL. Returns false when `e` is none of them. */
static bool wait_method(Fn *F, Node *at, Node *e, Val *out) {
    bool aw = at != NULL;
    switch (e->builtin) {
    case BI_SEND: *out = send(F, at, e, aw); return true;
    case BI_RECV: *out = recv(F, at, e, aw); return true;
    case BI_TICK: *out = tick(F, at, e, aw); return true;
    case BI_LOCK: *out = lock(F, at, e, aw); return true;
    case BI_RECV_TIMEOUT: *out = recv_timeout(F, at, e, aw); return true;
    case BI_ACCEPT: case BI_READ: case BI_WRITE: case BI_WRITE_ALL:
        *out = net_io(F, at, e, aw);
        return true;
    case BI_ACQUIRE: case BI_NOTIFIED: *out = permit(F, at, e, aw); return true;
    default: return false;
    }
}

/* Awaits `e` at the await `at` (or, under timeout, beside its timer). */
static Val awaited(Fn *F, Node *at, Node *e) {
    if (e->kind == ND_CALL && e->fn && e->fn->is_async)
        return await_call(F, at, e);
    if (e->builtin == BI_TIMEOUT)
        return timeout_(F, at, e);
    if (e->builtin == BI_SLEEP)
        return sleep_(F, at, e, true);
    if (e->builtin == BI_YIELD)
        return yield_(F, at, true);
    if (e->builtin == BI_CONNECT)
        return net_ctor(F, at, e, true);
    Val v;
    if (wait_method(F, at, e, &v))
        return v;
    if (e->ty->kind == TY_JOIN)
        return join(F, at, e, ty_make(TY_OUTCOME, e->ty->a, ty_prim(TY_JOIN_ERROR)), true);
    return emit(F, e);   /* Never-typed operand */
}

/* await timeout(d, fut): Outcome[T, TimeoutError]. The duration is
 * evaluated first, then fut is set up and polled beside a sleep: fut
 * first (as Tokio), so a future that is Ready at once never expires. */
static Val timeout_(Fn *F, Node *at, Node *call) {
    Timeout t = {at, dur_ns(F, call->args.v[0]), NULL, tmp(F, ty_prim(TY_I32))};
    Timeout *outer = F->tmo;
    F->tmo = &t;
    Val v = awaited(F, at, call->args.v[1]);
    F->tmo = outer;
    Type *ot = call->ty;
    const char *r = tmp(F, ot);
    line(F, "memset(&%s, 0, sizeof %s);", r, r);
    line(F, "%s.tag = %s;", r, t.expired);
    if (!is_unit(ot->a))
        line(F, "if (!%s) %s.ok = %s;", t.expired, r, v.c);
    return val(r, true);
}

static Val await_expr(Fn *F, Node *n) { return awaited(F, n, n->lhs); }

/* spawn(f(args)) / block_on(f(args)) */
static Val spawn_or_block(Fn *F, Node *n) {
    Node *call = n->args.v[0];
    Func *g = call->fn;
    Vec vals = call_args(F, call);
    Val r = unit_val();
    const char *res = is_unit(n->ty) ? NULL : tmp(F, n->ty);
    line(F, "{");
    F->indent++;
    if (n->builtin == BI_SPAWN) {   /* the frame is built in the task's block */
        line(F, "%s *sp = tml_spawn_frame(&tml_u_%s_vt);", frame_struct(g), g->cname);
        line(F, "sp->state = 0;");
        store_params(F, g, &vals, "sp", "->");
        line(F, "%s = tml_spawn_start(sp);", res);
    } else {
        line(F, "%s sp;", frame_struct(g));
        line(F, "memset(&sp, 0, sizeof sp);");
        store_params(F, g, &vals, "sp", ".");
        line(F, "tml_block_on(&tml_u_%s_vt, &sp, %s);", g->cname,
             res ? arena_printf("&%s", res) : "NULL");
    }
    F->indent--;
    line(F, "}");
    if (res)
        r = val(res, true);
    return r;
}

/* ------------------------------------------------------------ calls */

static Val print(Fn *F, Node *n) {
    Node *a = n->args.v[0];
    Val v = emit(F, a);
    Val s = str_of(F, v, a->ty);
    line(F, "tml_%s(%s);", n->builtin == BI_PRINTLN ? "println" : "print", s.c);
    if (a->ty->kind != TY_STR)
        release(F, v, a->ty);
    release(F, s, ty_prim(TY_STR));
    return unit_val();
}

static Val assert_(Fn *F, Node *n) {
    if (n->builtin == BI_ASSERT) {           /* assert, assert_true; assert_false: variant 1 */
        Val c = emit(F, n->args.v[0]);
        line(F, "if (%s%s) {", n->variant ? "" : "!", c.c);
        F->indent++;
        if (n->args.n == 2)
            line(F, "tml_panic_str(%s, %s);", loc_args(n->loc), emit(F, n->args.v[1]).c);
        else
            line(F, "tml_panic_at(%s, \"assertion failed\");", loc_args(n->loc));
        F->indent--;
        line(F, "}");
        return unit_val();
    }
    Node *a = n->args.v[0], *b = n->args.v[1];
    bool eq = n->builtin == BI_ASSERT_EQ;
    int mark = hold_mark(F);
    Val av = hold(F, emit(F, a), a->ty), bv = hold(F, coerce(emit(F, b), b->ty, a->ty), a->ty);
    Val same = compare(F, "==", av, bv, a->ty);
    line(F, "if (%s%s) {", eq ? "!" : "", same.c);
    F->indent++;
    const char *msg = n->args.n == 3 ? emit(F, n->args.v[2]).c : "NULL";
    Val as = str_of(F, av, a->ty), bs = str_of(F, bv, a->ty);   /* after msg: never held */
    line(F, "tml_assert_fail(%d, %d, \"%s\", %s, %s, %s);", n->loc.line, n->loc.col,
         eq ? "==" : "!=", as.c, bs.c, msg);
    F->indent--;
    line(F, "}");
    settle(F, mark);
    release(F, av, a->ty);
    release(F, bv, a->ty);
    return unit_val();
}

/* f(args), T::f(args) or, for a method, recv.f(args): the receiver goes
 * first, owned (`this`) or as the address of the caller's variable
 * (`mut this`). */
static Val user_call(Fn *F, Node *n) {
    Func *g = n->fn;
    Buf b = {0};
    buf_printf(&b, "tml_u_%s(", g->cname);
    const char *sep = "";
    int mark = hold_mark(F);
    if (g->this_var) {
        if (g->this_var->by_ref)
            buf_printf(&b, "&%s", lvalue(F, n->lhs, NULL));
        else
            buf_puts(&b, take_held(F, n->lhs, g->this_var->ty).c);
        sep = ", ";
    }
    for (int i = 0; i < n->args.n; i++) {
        Param *pa = g->params.v[i];
        Val v = take_held(F, n->args.v[i], pa->var->ty);
        buf_printf(&b, "%s%s", sep, v.c);
        sep = ", ";
    }
    settle(F, mark);
    buf_putc(&b, ')');
    Val r = unit_val();
    if (is_unit(g->ret))
        line(F, "%s;", b.s);
    else
        r = to_tmp(F, g->ret, b.s);
    buf_free(&b);
    return r;
}

static Val channel(Fn *F, Node *n) {
    Type *st = ((Type *)n->ty->elems.v[0]);
    Type *et = st->a;
    const char *cap = n->args.n ? emit(F, n->args.v[0]).c : "-1";
    const char *drop = ty_managed(et) ? arena_printf("tml_vdrop_%s", et->mangled) : "NULL";
    const char *ch = to_tmp(F, st, arena_printf("tml_chan_new(sizeof(%s), %s, %s)", ty_c(et),
                                                cap, drop)).c;
    return to_tmp(F, n->ty, arena_printf("(%s){%s, %s}", ty_c(n->ty), ch, ch));
}

static Val call(Fn *F, Node *n) {
    switch (n->builtin) {
    case BI_PRINT: case BI_PRINTLN: return print(F, n);
    case BI_PANIC: {
        Val m = emit(F, n->args.v[0]);
        line(F, "tml_panic_str(%s, %s);", loc_args(n->loc), m.c);
        return unit_val();
    }
    case BI_ASSERT: case BI_ASSERT_EQ: case BI_ASSERT_NE: return assert_(F, n);
    case BI_SPAWN: case BI_BLOCK_ON: return spawn_or_block(F, n);
    case BI_SLEEP: return sleep_(F, NULL, n, false);
    case BI_CHANNEL: return channel(F, n);
    case BI_SLEEP_MS: {
        Val ms = emit(F, n->args.v[0]);
        line(F, "tml_sleep_blocking(tml_clamp_i64((__int128)(%s) * 1000000));", ms.c);  /* ms -> ns */
        return unit_val();
    }
    case BI_PARALLELISM: return to_tmp(F, n->ty, "tml_available_parallelism()");
    case BI_DUR_NEW: {
        Val s = emit(F, n->args.v[0]);
        Val ns = emit(F, n->args.v[1]);
        return to_tmp(F, n->ty, arena_printf("tml_dur_new(%s, %s, %d, %d)", s.c, ns.c, n->loc.line,
                                             n->loc.col));
    }
    case BI_DUR_FROM: {
        static const char *units[] = {"1", "1000", "1000000", "1000000000"};
        Val v = emit(F, n->args.v[0]);
        return to_tmp(F, n->ty, arena_printf("tml_dur_from(%s, %s)", v.c, units[n->variant]));
    }
    case BI_INSTANT_NOW: return to_tmp(F, n->ty, "tml_now_ns()");
    case BI_INTERVAL: {
        const char *ns = dur_ns(F, n->args.v[0]);
        Val p = to_tmp(F, ty_prim(TY_I64), ns);
        line(F, "if (%s <= 0)", p.c);
        line(F, "    tml_panic_at(%s, \"interval period must be positive\");", loc_args(n->loc));
        return to_tmp(F, n->ty, arena_printf("(tml_Interval){tml_now_ns(), %s}", p.c));
    }
    case BI_YIELD: return yield_(F, NULL, false);
    case BI_LIST_NEW: {
        Type *et = n->ty->a;
        const char *cap = n->args.n ? emit(F, n->args.v[0]).c : "0";
        const char *drop = ty_managed(et) ? arena_printf("tml_vdrop_%s", et->mangled) : "NULL";
        return to_tmp(F, n->ty, arena_printf("tml_list_new(sizeof(%s), %s, %s)", ty_c(et), cap, drop));
    }
    case BI_METRICS: return to_tmp(F, n->ty, "tml_metrics_total()");
    case BI_ATOMIC_NEW: {
        Val v = emit(F, n->args.v[0]);
        return to_tmp(F, n->ty, arena_printf("tml_atomic_new((int64_t)%s)", v.c));
    }
    case BI_MUTEX_NEW: {
        Type *et = n->ty->a;
        Val v = take(F, n->args.v[0], et);
        const char *cell = tmp(F, et);      /* moved into the mutex */
        line(F, "%s = %s;", cell, v.c);
        const char *drop = ty_managed(et) ? arena_printf("tml_vdrop_%s", et->mangled) : "NULL";
        return to_tmp(F, n->ty, arena_printf("tml_mutex_new(sizeof(%s), &%s, %s)", ty_c(et), cell,
                                             drop));
    }
    case BI_SEM_NEW: {
        Val v = emit(F, n->args.v[0]);
        return to_tmp(F, n->ty, arena_printf("tml_sem_new(%s)", v.c));
    }
    case BI_NOTIFY_NEW: return to_tmp(F, n->ty, "tml_notify_new()");
    case BI_ADDR_PARSE: case BI_BIND: return net_ctor(F, NULL, n, false);
    case BI_CONNECT: return net_ctor(F, NULL, n, false);
    case BI_BUFFER_NEW: {
        Val c = emit(F, n->args.v[0]);
        return to_tmp(F, n->ty, arena_printf("tml_buffer_new_at(%s, %s)", c.c, loc_args(n->loc)));
    }
    case BI_DROP: return drop_(F, n);
    case BI_ENUM_CTOR: return enum_ctor(F, n);
    case BI_VARIANT: return variant_ctor(F, n);
    case BI_JOIN_ERROR: {                   /* OsError(code) */
        Val code = emit(F, n->args.v[0]);
        return val(arena_printf("tml_join_os_error(%s)", code.c), false);
    }
    default: return user_call(F, n);
    }
}

/* The int64_t an atomic cell returns, as the TML value type `t`. */
static const char *from_cell(Type *t, const char *x) {
    if (t->kind == TY_BOOL)
        return arena_printf("(%s != 0)", x);
    return arena_printf("(%s)%s", ty_c(t), x);
}

static Val atomic_op(Fn *F, Node *n, Val a, Type *at) {
    static const char *rmw[] = {"swap", "fetch_add", "fetch_sub"};
    Type *t = at->a;
    const char *args[4];
    for (int i = 0; i < n->args.n; i++)
        args[i] = emit(F, n->args.v[i]).c;
    switch (n->builtin) {
    case BI_ATOMIC_LOAD:
        return to_tmp(F, t, from_cell(t, arena_printf("tml_atomic_load(%s, %s)", a.c, args[0])));
    case BI_ATOMIC_STORE:
        line(F, "tml_atomic_store(%s, (int64_t)%s, %s);", a.c, args[0], args[1]);
        return unit_val();
    case BI_ATOMIC_RMW:
        return to_tmp(F, t, from_cell(t, arena_printf("tml_atomic_%s(%s, (int64_t)%s, %s)",
                                                      rmw[n->variant], a.c, args[0], args[1])));
    default: {   /* compare_exchange: Ok(previous) or Err(actual) */
        const char *cur = to_tmp(F, ty_prim(TY_I64), arena_printf("(int64_t)%s", args[0])).c;
        const char *ok = to_tmp(F, ty_prim(TY_BOOL),
                                arena_printf("tml_atomic_compare_exchange(%s, &%s, (int64_t)%s, %s, %s)",
                                             a.c, cur, args[1], args[2], args[3])).c;
        return outcome_from_status(F, n->ty, arena_printf("!%s", ok), from_cell(t, cur),
                                   from_cell(t, cur));
    }
    }
}

/* List[T] methods; values move in (push, set) and out (pop), get copies. */
static Val list_op(Fn *F, Node *n, Val l, Type *lt) {
    Type *t = lt->a;
    const char *at = loc_args(n->loc);
    switch (n->builtin) {
    case BI_LIST_PUSH: {
        Val v = take(F, n->args.v[0], t);
        const char *slot = to_tmp(F, t, v.c).c;
        line(F, "tml_list_push(%s, &%s);", l.c, slot);
        return unit_val();
    }
    case BI_LIST_POP: {
        const char *out = tmp(F, t);
        line(F, "tml_list_pop(%s, &%s, %s);", l.c, out, at);
        return val(out, true);
    }
    case BI_LIST_GET: {
        Val i = emit(F, n->args.v[0]);
        Val v = to_tmp(F, t, arena_printf("*(%s *)tml_list_at(%s, %s, %s)", ty_c(t), l.c, i.c, at));
        v.owned = false;                        /* still the list's */
        return own(F, v, t);
    }
    case BI_LIST_SET: {
        Val i = emit(F, n->args.v[0]);
        Val v = take(F, n->args.v[1], t);
        const char *slot = to_tmp(F, t, v.c).c;
        line(F, "tml_list_set(%s, %s, &%s, %s);", l.c, i.c, slot, at);
        return unit_val();
    }
    case BI_LIST_LEN:
        return to_tmp(F, n->ty, arena_printf(n->variant ? "tml_list_len(%s) == 0" : "tml_list_len(%s)",
                                             l.c));
    default:
        line(F, "tml_list_clear(%s);", l.c);
        return unit_val();
    }
}

/* Builtin method n on the receiver value v, of type rt (method holds an
 * owned one until this returns): each case evaluates its arguments
 * before it consumes v. */
static Val builtin_method(Fn *F, Node *n, Val v, Type *rt) {
    Val res;
    switch (n->builtin) {
    case BI_TO_STRING:
        if (rt->kind == TY_STR)
            return own(F, v, rt);
        res = own(F, str_of(F, v, rt), ty_prim(TY_STR));
        break;
    case BI_UNWRAP: case BI_EXPECT: return unwrap(F, n, v, rt);
    case BI_UNWRAP_OR: return unwrap_or(F, n, v, rt);
    case BI_UNWRAP_ERR: {
        line(F, "if (%s.tag != 1)", v.c);
        line(F, "    tml_panic_at(%s, \"called unwrap_err() on Ok\");", loc_args(n->loc));
        return payload(F, v, rt, true);
    }
    case BI_OK: case BI_ERR: return outcome_side(F, n, v, rt, n->builtin == BI_ERR);
    case BI_IS_A: case BI_IS_B: {
        int tag = n->builtin == BI_IS_A ? good_tag(rt) : !good_tag(rt);
        res = to_tmp(F, n->ty, arena_printf("%s.tag == %d", v.c, tag));
        break;
    }
    case BI_STR_LEN: res = to_tmp(F, n->ty, arena_printf("%s->len", v.c)); break;
    case BI_STR_IS_EMPTY: res = to_tmp(F, n->ty, arena_printf("%s->len == 0", v.c)); break;
    case BI_IS_FINISHED:
        res = to_tmp(F, n->ty, arena_printf("tml_join_is_finished(%s)", v.c));
        break;
    case BI_CLOSE:
        line(F, "tml_chan_close(%s);", v.c);
        res = unit_val();
        break;
    case BI_DUPLICATE: return own(F, v, rt);
    case BI_DUR_AS: {
        static const char *per[] = {"1", "1000", "1000000", "1000000000"};
        res = to_tmp(F, n->ty, arena_printf("tml_dur_as(%s, %s)", v.c, per[n->variant]));
        break;
    }
    case BI_ELAPSED:
        res = to_tmp(F, n->ty, arena_printf("tml_dur_between(tml_now_ns(), %s)", v.c));
        break;
    case BI_DURATION_SINCE: {
        Val o = emit(F, n->args.v[0]);
        res = to_tmp(F, n->ty, arena_printf("tml_dur_between(%s, %s)", v.c, o.c));
        break;
    }
    case BI_INSTANT_AS_NANOS: res = to_tmp(F, n->ty, v.c); break;
    case BI_ATOMIC_LOAD: case BI_ATOMIC_STORE: case BI_ATOMIC_RMW: case BI_ATOMIC_CAS:
        res = atomic_op(F, n, v, rt);
        break;
    case BI_LIST_PUSH: case BI_LIST_POP: case BI_LIST_GET: case BI_LIST_SET: case BI_LIST_LEN:
    case BI_LIST_CLEAR:
        res = list_op(F, n, v, rt);
        break;
    case BI_TRY_LOCK: {
        const char *r = tmp(F, n->ty);
        line(F, "memset(&%s, 0, sizeof %s);", r, r);
        line(F, "if ((%s.tag = tml_mutex_try_lock(%s)))", r, v.c);
        line(F, "    %s.val = tml_guard_owning(%s);", r, v.c);
        res = val(r, true);
        break;
    }
    case BI_IS_LOCKED: res = to_tmp(F, n->ty, arena_printf("tml_mutex_is_locked(%s)", v.c)); break;
    case BI_INTO_INNER: case BI_GUARD_DEREF: {
        const char *m = rt->kind == TY_GUARD ? arena_printf("tml_guard_value(%s, %d, %d)", v.c,
                                                            n->loc.line, n->loc.col)
                                             : arena_printf("tml_mutex_value(%s)", v.c);
        const char *x = arena_printf("(*(%s *)%s)", ty_c(n->ty), m);
        res = to_tmp(F, n->ty, ty_managed(n->ty) ? dup_expr(n->ty, x) : x);
        break;
    }
    case BI_SEND_INTO_INNER: return own(F, val(arena_printf("%s.value", v.c), false), n->ty);
    case BI_TRY_RECV: {
        const char *out = tmp(F, rt->a);
        Val st = to_tmp(F, ty_prim(TY_I32), arena_printf("tml_chan_try_recv(%s, &%s)", v.c, out));
        res = outcome_from_status(F, n->ty, st.c, out,
                                  arena_printf("(%s){%s == TML_CHAN_EMPTY ? 0 : 1}",
                                               ty_c(n->ty->b), st.c));
        break;
    }
    case BI_TRY_SEND: {
        Val x = take(F, n->args.v[0], rt->a);
        const char *cell = tmp(F, rt->a);
        line(F, "%s = %s;", cell, x.c);
        Val st = to_tmp(F, ty_prim(TY_I32), arena_printf("tml_chan_try_send(%s, &%s)", v.c, cell));
        res = outcome_from_status(F, n->ty, st.c, NULL,
                                  arena_printf("(%s){%s}", ty_c(n->ty->b), cell));
        break;
    }
    case BI_BUFFER_OP: res = buffer_op(F, n, v); break;
    case BI_DUR_OP: res = duration_op(F, n, v); break;
    case BI_ADDR_PORT: res = to_tmp(F, n->ty, arena_printf("(int64_t)%s.port", v.c)); break;
    case BI_TCP_CLOSE: line(F, "tml_tcp_close(%s);", v.c); res = unit_val(); break;
    case BI_NODELAY: {
        Val b = emit(F, n->args.v[0]);
        Val st = to_tmp(F, ty_prim(TY_I32), arena_printf("tml_tcp_set_nodelay(%s, %s)", v.c, b.c));
        res = outcome_from_status(F, n->ty, st.c, NULL, net_error(n->ty, st.c));
        break;
    }
    case BI_LOCAL_ADDR: case BI_PEER_ADDR: {
        const char *a = tmp(F, ty_prim(TY_SOCKADDR));
        Val st = to_tmp(F, ty_prim(TY_I32), arena_printf("tml_tcp_%s_addr(%s, &%s)",
                                                         n->builtin == BI_LOCAL_ADDR ? "local" : "peer",
                                                         v.c, a));
        res = outcome_from_status(F, n->ty, st.c, a, net_error(n->ty, st.c));
        break;
    }
    case BI_CHAN_LEN:
        res = to_tmp(F, n->ty, arena_printf("tml_chan_len(%s)%s", v.c, n->variant ? " == 0" : ""));
        break;
    case BI_TRY_ACQUIRE: res = to_tmp(F, n->ty, arena_printf("tml_sem_try_acquire(%s)", v.c)); break;
    case BI_SEM_RELEASE: line(F, "tml_sem_release(%s);", v.c); res = unit_val(); break;
    case BI_SEM_AVAILABLE: res = to_tmp(F, n->ty, arena_printf("tml_sem_available(%s)", v.c)); break;
    case BI_NOTIFY:
        line(F, "tml_notify_%s(%s);", n->variant ? "all" : "one", v.c);
        res = unit_val();
        break;
    default: res = unit_val(); break;
    }
    release(F, v, rt);
    return res;
}

static Val method(Fn *F, Node *n) {
    Node *r = n->lhs;
    Type *rt = r->ty;
    if (n->fn)
        return user_call(F, n);
    if (n->builtin == BI_JOIN)
        return join(F, n, r, n->ty, false);
    Val w;
    if (wait_method(F, NULL, n, &w))
        return w;
    if (n->builtin == BI_GUARD_SELF)
        return emit(F, r);
    int mark = hold_mark(F);
    Val v = hold(F, emit(F, r), rt);
    Val res = builtin_method(F, n, v, rt);
    settle(F, mark);
    return res;
}

/* ---------------------------------------------------- control flow */

/* Assigns branch value `v` (of node `b`) into the result slot `res`. */
static void store_branch(Fn *F, const char *res, Node *b, Type *t) {
    Val v = emit(F, b);
    if (res && b->ty->kind != TY_NEVER)
        line(F, "%s = %s;", res, own(F, coerce(v, b->ty, t), t).c);
    else
        discard(F, v, b->ty);
}

static Val if_expr(Fn *F, Node *n) {
    Val c = emit(F, n->cond);
    const char *res = n->els && !is_unit(n->ty) ? tmp(F, n->ty) : NULL;
    line(F, "if (%s) {", c.c);
    F->indent++;
    store_branch(F, res, n->then, n->ty);
    F->indent--;
    if (n->els) {
        line(F, "} else {");
        F->indent++;
        store_branch(F, res, n->els, n->ty);
        F->indent--;
    }
    line(F, "}");
    return res ? val(res, true) : unit_val();
}

static Val ternary(Fn *F, Node *n) {
    Node fake = *n;
    fake.kind = ND_IF;
    return if_expr(F, &fake);
}

/* C condition that `x` (of type t) matches pattern p; no side effects. */
static const char *match_cond(Fn *F, Node *p, const char *x, Type *t) {
    switch (p->kind) {
    case ND_PLIT: {
        Val lit = emit(F, p->lhs);
        if (p->rhs)                 /* lo to hi / lo through hi */
            return arena_printf("%s >= %s && %s %s %s", x, lit.c, x, p->inclusive ? "<=" : "<",
                                emit(F, p->rhs).c);
        if (t->kind == TY_STR)
            return arena_printf("tml_str_eq(%s, %s)", x, lit.c);
        return arena_printf("%s == %s", x, lit.c);
    }
    case ND_PTUPLE: {
        const char *c = "1";
        for (int i = 0; i < p->args.n; i++)
            c = arena_printf("%s && (%s)", c,
                             match_cond(F, p->args.v[i], arena_printf("%s.f%d", x, i),
                                        t->elems.v[i]));
        return c;
    }
    case ND_PSTRUCT: {
        const char *c = "1";
        for (int i = 0; i < p->args.n; i++) {
            Node *sub = p->args.v[i];
            c = arena_printf("%s && (%s)", c,
                             match_cond(F, sub, arena_printf("%s.%s", x, field_name(p->fields.v[i])),
                                        sub->ty));
        }
        return c;
    }
    case ND_POR: {
        const char *c = "0";
        for (int i = 0; i < p->args.n; i++)
            c = arena_printf("%s || (%s)", c, match_cond(F, p->args.v[i], x, t));
        return c;
    }
    case ND_PVARIANT: {
        if (t->kind == TY_ENUM) {
            Variant *v = t->sd->variants.v[p->variant];
            const char *c = arena_printf("%s.tag == %d", x, p->variant);
            for (int i = 0; i < p->args.n; i++)
                c = arena_printf("%s && (%s)", c,
                                 match_cond(F, p->args.v[i],
                                            arena_printf("%s.u.%s.f%d", x, field_name(v->name), i),
                                            v->types.v[i]));
            return c;
        }
        const char *tag = t->kind == TY_JOIN_ERROR ? arena_printf("tml_join_tag(%s)", x)
                                                   : arena_printf("%s.tag", x);
        const char *c = arena_printf("%s == %d", tag, p->variant);
        if (p->args.n) {
            Type *pt;
            const char *part = payload_of(x, t, p->variant, &pt);
            c = arena_printf("%s && (%s)", c, match_cond(F, p->args.v[0], part, pt));
        }
        return c;
    }
    default:
        return "1";
    }
}

/* Binds the names of pattern p to copies of the parts of `x`. */
static void bind_pattern(Fn *F, Node *p, const char *x, Type *t) {
    switch (p->kind) {
    case ND_PBIND:
        bind_var(F, p->var, own(F, val(x, false), t).c);
        return;
    case ND_PTUPLE:
        for (int i = 0; i < p->args.n; i++)
            bind_pattern(F, p->args.v[i], arena_printf("%s.f%d", x, i), t->elems.v[i]);
        return;
    case ND_PSTRUCT:
        for (int i = 0; i < p->args.n; i++) {
            Node *sub = p->args.v[i];
            bind_pattern(F, sub, arena_printf("%s.%s", x, field_name(p->fields.v[i])), sub->ty);
        }
        return;
    case ND_PVARIANT:
        if (t->kind == TY_ENUM) {
            Variant *v = t->sd->variants.v[p->variant];
            for (int i = 0; i < p->args.n; i++)
                bind_pattern(F, p->args.v[i],
                             arena_printf("%s.u.%s.f%d", x, field_name(v->name), i), v->types.v[i]);
            return;
        }
        if (p->args.n) {
            Type *pt;
            const char *part = payload_of(x, t, p->variant, &pt);
            if (!is_unit(pt))
                bind_pattern(F, p->args.v[0], part, pt);
        }
        return;
    default:
        return;
    }
}

// when = if-chain over the arms; each arm: match, bind, guard, body.
static Val when_expr(Fn *F, Node *n) {
    Type *st = n->cond->ty;
    Val s = emit(F, n->cond);
    const char *res = is_unit(n->ty) ? NULL : tmp(F, n->ty);
    int id = ++F->nlabel;
    scope_push(F, false);       /* releases an owned scrutinee on every exit */
    if (s.owned)
        own_in_scope(F, s.c, st, NULL);
    for (int i = 0; i < n->args.n; i++) {
        Node *arm = n->args.v[i];
        const char *cond = "0";
        for (int j = 0; j < arm->args.n; j++)
            cond = arena_printf("%s || (%s)", cond, match_cond(F, arm->args.v[j], s.c, st));
        line(F, "if (%s) {", cond);
        F->indent++;
        scope_push(F, false);
        bind_pattern(F, arm->args.v[0], s.c, st);
        if (arm->cond) {
            Val g = emit(F, arm->cond);
            line(F, "if (!%s) {", g.c);
            F->indent++;
            drops_from(F, F->scopes.n - 1);
            line(F, "goto when%d_arm%d;", id, i + 1);
            F->indent--;
            line(F, "}");
        }
        store_branch(F, res, arm->body, n->ty);
        scope_pop(F);
        line(F, "goto when%d_end;", id);
        F->indent--;
        line(F, "}");
        if (arm->cond)
            buf_printf(&F->body, "when%d_arm%d:;\n", id, i + 1);
    }
    line(F, "tml_panic_at(%s, \"no 'when' arm matched\");", loc_args(n->loc));
    buf_printf(&F->body, "when%d_end:;\n", id);
    scope_pop(F);
    return res ? val(res, true) : unit_val();
}

static void loop_body(Fn *F, Node *body) {
    scope_push(F, true);
    Val v = emit(F, body);
    discard(F, v, body->ty);
    scope_pop(F);
}

static Val loop_expr(Fn *F, Node *n) {
    if (n->loop_var) {
        Var *v = n->init->var;
        bind_var(F, v, "0");
    }
    loop_open(F);
    line(F, "for (;;) {");
    F->indent++;
    Val c = emit(F, n->cond);
    if (n->loop_var)
        line(F, "if (!(%s < %s)) break;", var_c(F, n->init->var),
             coerce(c, n->cond->ty, n->init->var->ty).c);
    else
        line(F, "if (!%s) break;", c.c);
    loop_body(F, n->body);
    F->indent--;
    line(F, "}");
    loop_close(F);
    return unit_val();
}

/* for x in list: the loop holds its own reference to the list (released
 * on every way out, by the scope around the loop) and binds a copy of
 * each element in turn. */
static Val for_list(Fn *F, Node *n) {
    Type *lt = n->cond->ty;
    Val l = emit(F, n->cond);
    scope_push(F, false);
    const char *list = loop_tmp(F, lt);
    line(F, "%s = %s;", list, own(F, l, lt).c);
    own_in_scope(F, list, lt, NULL);
    const char *i = loop_tmp(F, ty_prim(TY_I64));
    loop_open(F);
    line(F, "for (%s = 0; %s < tml_list_len(%s); %s++) {", i, i, list, i);
    F->indent++;
    scope_push(F, true);
    if (n->var) {
        Type *t = lt->a;
        Val e = to_tmp(F, t, arena_printf("*(%s *)tml_list_at(%s, %s, NULL, 0, 0)", ty_c(t), list, i));
        e.owned = false;                    /* the list's; the binding copies it */
        bind_var(F, n->var, own(F, e, t).c);
    }
    discard(F, emit(F, n->body), n->body->ty);
    scope_pop(F);
    F->indent--;
    line(F, "}");
    loop_close(F);
    scope_pop(F);
    return unit_val();
}

static Val for_expr(Fn *F, Node *n) {
    Node *r = n->cond;
    if (r->kind != ND_RANGE)
        return for_list(F, n);
    Type *t = r->ty;
    Val lo = coerce(emit(F, r->lhs), r->lhs->ty, t);
    Val hi = coerce(emit(F, r->rhs), r->rhs->ty, t);
    const char *i = n->var ? var_c(F, n->var) : loop_tmp(F, t);
    if (n->var && F->async)
        buf_printf(&F->fields, "    %s %s;\n", ty_c(t), n->var->cname);
    else if (n->var)
        line(F, "%s %s;", ty_c(t), i);
    const char *end = loop_tmp(F, t);
    line(F, "%s = %s;", end, hi.c);
    loop_open(F);
    if (r->inclusive) {
        const char *go = loop_tmp(F, ty_prim(TY_BOOL));
        line(F, "for (%s = %s, %s = %s <= %s; %s; %s = %s != %s, %s = tml_add_%s(%s, 1)) {", i,
             lo.c, go, lo.c, end, go, go, i, end, i, int_suffix(t), i);
    } else {
        line(F, "for (%s = %s; %s < %s; %s = tml_add_%s(%s, 1)) {", i, lo.c, i, end, i,
             int_suffix(t), i);
    }
    F->indent++;
    loop_body(F, n->body);
    F->indent--;
    line(F, "}");
    loop_close(F);
    return unit_val();
}

static Val while_expr(Fn *F, Node *n) {
    loop_open(F);
    line(F, "for (;;) {");
    F->indent++;
    Val c = emit(F, n->cond);
    line(F, "if (!%s) break;", c.c);
    loop_body(F, n->body);
    F->indent--;
    line(F, "}");
    loop_close(F);
    return unit_val();
}

/* Leaves the function with the owned value `v` (NULL: Unit). */
static void leave(Fn *F, const char *v) {
    drops_from(F, 0);
    if (F->async) {
        if (v)
            line(F, "fr->ret = %s;", v);
        line(F, "return TML_READY;");
    } else if (v) {
        line(F, "return %s;", v);
    } else {
        line(F, "return;");
    }
}

static Val return_expr(Fn *F, Node *n) {
    Type *rt = F->f->ret;
    if (n->lhs && !is_unit(rt)) {
        Val v = take(F, n->lhs, rt);
        const char *keep = tmp(F, rt);   /* survives the drops below */
        line(F, "%s = %s;", keep, v.c);
        leave(F, keep);
    } else {
        if (n->lhs)
            release(F, emit(F, n->lhs), n->lhs->ty);
        leave(F, NULL);
    }
    return unit_val();
}

static Val block_expr(Fn *F, Node *n) {
    scope_push(F, false);
    emit_block_stmts(F, n);
    Val v = unit_val();
    if (n->lhs) {
        v = emit(F, n->lhs);
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
        return unit_val();      /* uses emit the value */
    if (p->kind == ND_PBIND) {
        Var *v = n->var;
        if (!n->init && v->ty->kind == TY_STR) {
            bind_var(F, v, "(&tml_lit_empty)");
        } else if (!n->init) {   /* late init of plain data (check.c) */
            if (F->async)
                line(F, "memset(&fr->%s, 0, sizeof fr->%s);", v->cname, v->cname);
            else
                line(F, "%s = {0};", declaration(v));
            add_local(F, v);
        }
        if (!n->init)
            return unit_val();
        /* a fresh guard bound to a local may keep borrowing (lock()) */
        Val init = v->ty->kind == TY_GUARD ? emit(F, n->init) : (Val){0};
        if (!init.owned)
            init = take(F, n->init, v->ty);
        bind_var(F, v, init.c);
        return unit_val();
    }
    Val init = emit(F, n->init);
    if (!init.owned && p->kind != ND_PWILD) {
        bind_pattern(F, p, init.c, n->init->ty);
        return unit_val();
    }
    const char *hold = init.c;
    bind_pattern(F, p, hold, n->init->ty);
    release(F, init, n->init->ty);
    return unit_val();
}

/* target = v, target op= v: v first, then a root that is no variable
 * (a guard, held until the store, then released). */
static Val assign(Fn *F, Node *n) {
    Type *lt = n->lhs->ty;
    bool plain = !strcmp(n->op, "=");
    int mark = hold_mark(F);
    Val r = hold(F, plain ? take(F, n->rhs, lt) : coerce(emit(F, n->rhs), n->rhs->ty, lt), lt);
    Node *root = target_root(n->lhs);
    Val g = root->kind == ND_PATH ? unit_val() : emit(F, root);
    settle(F, mark);
    const char *lv = lvalue(F, n->lhs, g.c);
    Val nv = r;
    if (!plain) {
        nv = arith(F, arena_strndup(n->op, strlen(n->op) - 1), val(lv, false), r, lt, n->loc);
        release(F, r, lt);
    }
    if (ty_managed(lt))
        line(F, "%s", drop_stmt(lt, lv));
    line(F, "%s = %s;", lv, nv.c);
    if (root->kind != ND_PATH)
        release(F, g, root->ty);
    return unit_val();
}

/* ---------------------------------------------------------- dispatch */

/* An integer literal as a C constant of its type; a narrower type gets an
 * explicit cast, so a wrapping value (`300_i8`) draws no C warning. */
static Val int_lit(Node *n) {
    unsigned long long v = (unsigned long long)n->ival;
    if (ty_is_float(n->ty))
        return val(arena_printf("%llu.0", v), false);
    const char *c = n->ival <= INT64_MAX ? arena_printf("INT64_C(%llu)", v)
                                         : arena_printf("UINT64_C(%llu)", v);
    bool exact = n->ty->kind == TY_U64 || (n->ty->kind == TY_I64 && n->ival <= INT64_MAX);
    return val(exact ? c : arena_printf("((%s)%s)", ty_c(n->ty), c), false);
}

/* `e as T`: float to integer saturates (NaN gives 0) through the
 * tml_f2i_* helpers (tml/prelude.h), the same for constants and run-time
 * values; every other conversion is C's. */
static Val cast_expr(Fn *F, Node *n) {
    Val v = emit(F, n->lhs);
    if (n->lhs->ty->kind == TY_NEVER)
        return v;
    if (ty_is_float(n->lhs->ty) && ty_is_int(n->ty))
        return to_tmp(F, n->ty, arena_printf("tml_f2i_%s(%s)", int_suffix(n->ty), v.c));
    return to_tmp(F, n->ty, arena_printf("(%s)%s", ty_c(n->ty), v.c));
}

static Val emit(Fn *F, Node *n) {
    switch (n->kind) {
    case ND_INT: return int_lit(n);
    case ND_FLOAT: {
        const char *f = arena_printf("%.17g", n->fval);
        return val(strpbrk(f, ".eni") ? f : arena_printf("%s.0", f), false);  /* stay a double */
    }
    case ND_BOOL: return val(n->ival ? "true" : "false", false);
    case ND_CHAR: return val(arena_printf("%lluu", (unsigned long long)n->ival), false);
    case ND_STR: return interp(F, n);
    case ND_UNIT: return unit_val();
    case ND_PATH:
        if (n->builtin == BI_ENUM_CTOR)
            return enum_ctor(F, n);
        if (n->builtin == BI_VARIANT)
            return variant_ctor(F, n);
        if (n->var && n->var->const_init)     /* constants are pure: inline */
            return coerce(emit(F, n->var->const_init), n->var->const_init->ty, n->var->ty);
        if (n->builtin == BI_JOIN_ERROR)
            return val(arena_printf("%d", n->variant), false);
        if (n->builtin == BI_ORDERING) {
            static const char *orders[] = {"RELAXED", "ACQUIRE", "RELEASE", "ACQ_REL", "SEQ_CST"};
            return val(arena_printf("TML_ORDER_%s", orders[n->variant < 0 ? 4 : n->variant]), false);
        }
        return n->var ? val(var_c(F, n->var), false) : unit_val();
    case ND_CALL: return call(F, n);
    case ND_METHOD: return method(F, n);
    case ND_FIELD: return field(F, n);
    case ND_UNARY: return unary(F, n);
    case ND_DEREF: return deref_(F, n);
    case ND_BINARY: return binary(F, n);
    case ND_AWAIT: return await_expr(F, n);
    case ND_IF: return if_expr(F, n);
    case ND_TERNARY: return ternary(F, n);
    case ND_WHEN: return when_expr(F, n);
    case ND_BLOCK: return block_expr(F, n);
    case ND_LOOP: return loop_expr(F, n);
    case ND_WHILE: return while_expr(F, n);
    case ND_FOR: return for_expr(F, n);
    case ND_BREAK: case ND_CONTINUE:
        drops_from(F, innermost_loop(F));
        line(F, "%s", n->kind == ND_BREAK ? "break;" : "continue;");
        return unit_val();
    case ND_RETURN: return return_expr(F, n);
    case ND_STRUCTLIT:
        if (n->builtin == BI_DUR_NEW)           /* Duration { secs, nanos } */
            return call(F, n);
        if (n->ty->kind != TY_STRUCT)           /* TimeoutError {}, RecvError {}: no data */
            return val("0", false);
        return aggregate(F, n->ty, &n->args, &n->ty->elems);
    case ND_TUPLE: return aggregate(F, n->ty, &n->args, &n->ty->elems);
    case ND_CAST: return cast_expr(F, n);
    case ND_ASSIGN: return assign(F, n);
    case ND_LET: return let(F, n);
    default: return unit_val();
    }
}

static void emit_block_stmts(Fn *F, Node *b) {
    for (int i = 0; i < b->args.n; i++) {
        Node *s = b->args.v[i];
        line_directive(F, s->loc);
        Val v = emit(F, s);
        discard(F, v, s->ty);
    }
    if (b->lhs)
        line_directive(F, b->lhs->loc);
}

/* ------------------------------------------------------- functions */

static void emit_params_scope(Fn *F) {
    scope_push(F, false);
    if (F->f->this_var && !F->f->this_var->by_ref)   /* owned like a parameter */
        add_local(F, F->f->this_var);
    for (int i = 0; i < F->f->params.n; i++)
        add_local(F, ((Param *)F->f->params.v[i])->var);
}

/* Emits the function body: its value, or falling off its end, returns. */
static void emit_body(Fn *F) {
    Func *f = F->f;
    F->indent = 1;
    emit_params_scope(F);
    if (F->async)
        drop_case(F, 0, "");        /* never polled: only the parameters */
    Val v = emit(F, f->body);
    if (f->body->ty->kind == TY_NEVER)
        return;
    if (!is_unit(f->ret)) {
        Val r = own(F, coerce(v, f->body->ty, f->ret), f->ret);
        leave(F, r.c);
    } else {
        discard(F, v, f->body->ty);
        leave(F, NULL);
    }
}

/* A frame member mentioned at body[i] ("fr->NAME"): returns its value
 * number (temps 1..ntemp, then the locals of local_info) and sets *len to
 * the mention's length; 0 for anything else (state, aw, ret, params). */
static int value_ref(Fn *F, const char *s, size_t i, size_t *len) {
    if (s[i] != 'f' || s[i + 1] != 'r' || s[i + 2] != '-' || s[i + 3] != '>')
        return 0;
    size_t j = i + 4, k = j;
    while (s[k] == '_' || (s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
           (s[k] >= '0' && s[k] <= '9'))
        k++;
    *len = k - i;
    int n = 0;
    if (s[j] == 't' && k > j + 1) {
        size_t d = j + 1;
        while (d < k && s[d] >= '0' && s[d] <= '9')
            n = n * 10 + (s[d++] - '0');
        if (d == k && n >= 1 && n <= F->ntemp)
            return n;
    }
    char name[128];
    if (k - j >= sizeof name)
        return 0;
    memcpy(name, s + j, k - j);
    name[k - j] = '\0';
    intptr_t id = (intptr_t)map_get(&F->local_ids, name);
    return id ? F->ntemp + (int)id : 0;
}

/* Keeps in the frame only the values live across an await; the others
 * become C locals of the poll function.
 * 1. Split the body at its resume labels. An ANF temporary is defined
 *    before it is used on every path through one such stretch, so one
 *    whose mentions all lie in a single stretch is never live across an
 *    await. The same holds for a local whose mentions do...
 * 2. ...unless a loop carries it: a local declared outside a loop that
 *    mentions it, where the loop contains an await, can flow from one
 *    iteration's await to the next iteration's mention (which may precede
 *    the label textually). Such locals stay, as do the `for` header's
 *    temporaries (loop_tmp), parameters (the caller stores them) and the
 *    for loop variable.
 * The alternative, a liveness analysis over a control-flow graph, would
 * be exact where this is conservative (a local used in two stretches but
 * dead across the await between them stays in the frame). */
static void place_values(Fn *F) {
    int n = F->ntemp + F->local_info.n;
    if (!n || !F->body.s)
        return;
    int *seg = arena_alloc(sizeof *seg * (size_t)(n + 1));   /* 0: unseen */
    bool *live = arena_alloc(sizeof *live * (size_t)(n + 1));
    for (int i = 0; i < F->pinned.n; i++)
        live[(intptr_t)F->pinned.v[i]] = true;
    for (int l = 0; l < F->local_info.n; l++) {
        Local *loc = F->local_info.v[l];
        for (int k = 0; k < loc->loops.n; k++)
            live[F->ntemp + 1 + l] |= F->loop_awaits.v[(intptr_t)loc->loops.v[k]] != NULL;
    }
    for (size_t i = 0, len; F->drops.s && F->drops.s[i]; i++) {
        int v = value_ref(F, F->drops.s, i, &len);   /* the drop function reads it */
        if (v) {
            live[v] = true;
            i += len - 1;
        }
    }
    const char *s = F->body.s;
    int cur = 1;
    for (size_t i = 0, len; s[i]; i++) {
        if ((i == 0 || s[i - 1] == '\n') && !strncmp(s + i, "resume", 6))
            cur++;
        int v = value_ref(F, s, i, &len);
        if (v && seg[v] && seg[v] != cur)
            live[v] = true;
        if (v && !seg[v])
            seg[v] = cur;
        if (v)
            i += len - 1;
    }
    Buf body = {0};
    size_t run = 0;                         /* start of the text not copied yet */
    for (size_t i = 0, len; s[i];) {
        int v = value_ref(F, s, i, &len);
        if (v && !live[v]) {                /* copy up to it, dropping "fr->" */
            buf_putn(&body, s + run, i - run);
            run = i + 4;
        }
        i += v ? len : 1;
    }
    buf_putn(&body, s + run, strlen(s + run));
    for (int v = 1; v <= n; v++) {
        Buf *into = live[v] ? &F->fields : &F->locals;
        if (v <= F->ntemp)
            buf_printf(into, "    %s t%d;\n", ty_c(F->temp_types.v[v - 1]), v);
        else {
            Var *var = ((Local *)F->local_info.v[v - F->ntemp - 1])->var;
            /* a local only written (`let _x = await f()`) is not a C warning */
            buf_printf(into, "    %s %s%s;\n", ty_c(var->ty), var->cname,
                       live[v] ? "" : " __attribute__((unused))");
        }
    }
    buf_free(&F->body);
    F->body = body;
}

static Fn *emit_func(Func *f) {
    Fn *F = arena_alloc(sizeof *F);
    F->f = f;
    F->async = f->is_async;
    emit_body(F);
    if (F->async)
        place_values(F);
    return F;
}

static const char *sync_signature(Func *f) {
    Buf b = {0};
    buf_printf(&b, "static %s%s tml_u_%s(", parse_is_prelude(&f->loc) ? "__attribute__((unused)) " : "",
               is_unit(f->ret) ? "void" : ty_c(f->ret), f->cname);
    const char *sep = "";
    if (f->this_var) {
        buf_puts(&b, declaration(f->this_var));
        sep = ", ";
    }
    for (int i = 0; i < f->params.n; i++) {
        buf_printf(&b, "%s%s", sep, declaration(((Param *)f->params.v[i])->var));
        sep = ", ";
    }
    if (!*sep)
        buf_puts(&b, "void");
    buf_putc(&b, ')');
    const char *s = arena_strndup(b.s, b.len);
    buf_free(&b);
    return s;
}

/* --------------------------------------------------- type definitions */


static void emit_type(FILE *out, Type *t);

static void emit_deps(FILE *out, Type *t) {
    if (t->a)
        emit_type(out, t->a);
    if (t->b)
        emit_type(out, t->b);
    for (int i = 0; i < t->elems.n; i++)
        emit_type(out, t->elems.v[i]);
}

/* The parts of a value `v` of aggregate type t that hold references:
 * for each, the C condition under which it is live (NULL: always), its
 * lvalue spelled through `v` and `sep` ("." or "->"), and its type. */
typedef struct Part {
    const char *live;
    const char *lv;
    Type *ty;
} Part;

static int managed_parts(Type *t, const char *v, const char *sep, Part *out) {
    int n = 0;
    switch (t->kind) {
    case TY_MAYBE:
        out[n++] = (Part){arena_printf("%s%stag == 1", v, sep), arena_printf("%s%sval", v, sep), t->a};
        break;
    case TY_OUTCOME:
        if (ty_managed(t->a))
            out[n++] = (Part){arena_printf("%s%stag == 0", v, sep), arena_printf("%s%sok", v, sep), t->a};
        if (ty_managed(t->b))
            out[n++] = (Part){arena_printf("%s%stag == 1", v, sep), arena_printf("%s%serr", v, sep), t->b};
        break;
    case TY_SEND_ERROR:
        out[n++] = (Part){NULL, arena_printf("%s%svalue", v, sep), t->a};
        break;
    case TY_ENUM:
        for (int i = 0; i < t->sd->variants.n; i++) {
            Variant *var = t->sd->variants.v[i];
            for (int k = 0; k < var->types.n; k++)
                if (ty_managed(var->types.v[k]))
                    out[n++] = (Part){arena_printf("%s%stag == %d", v, sep, i),
                                      arena_printf("%s%su.%s.f%d", v, sep,
                                                   field_name(var->name), k),
                                      var->types.v[k]};
        }
        break;
    default:
        for (int i = 0; i < t->elems.n; i++) {
            Type *e = t->elems.v[i];
            const char *f = t->kind == TY_TUPLE
                                ? arena_printf("f%d", i)
                                : field_name(((Param *)t->sd->fields.v[i])->name);
            if (ty_managed(e))
                out[n++] = (Part){NULL, arena_printf("%s%s%s", v, sep, f), e};
        }
    }
    return n;
}

static const char *guard(const char *live) {
    return live ? arena_printf("if (%s) ", live) : "";
}

/* tml_drop_T(T *v) and tml_dup_T(T v) for an aggregate type holding
 * references: release, or retain, every live part. */
static void emit_drop_dup(FILE *out, Type *t) {
    const char *c = ty_c(t);
    Part *parts = arena_alloc(sizeof *parts * (size_t)(t->elems.n + 2));
    int n = managed_parts(t, "v", "->", parts);
    fprintf(out, "TML_HELPER void tml_drop_%s(%s *v) {\n", t->mangled, c);
    for (int i = 0; i < n; i++)
        fprintf(out, "    %s%s\n", guard(parts[i].live), drop_stmt(parts[i].ty, parts[i].lv));
    fprintf(out, "}\n");
    n = managed_parts(t, "v", ".", parts);
    fprintf(out, "TML_HELPER %s tml_dup_%s(%s v) {\n", c, t->mangled, c);
    for (int i = 0; i < n; i++)
        fprintf(out, "    %s%s = %s;\n", guard(parts[i].live), parts[i].lv,
                dup_expr(parts[i].ty, parts[i].lv));
    fprintf(out, "    return v;\n}\n");
}

static void emit_vdrop(FILE *out, Type *t) {
    fprintf(out, "TML_HELPER void tml_vdrop_%s(void *p) { %s v = *(%s *)p; %s }\n",
            t->mangled, ty_c(t), ty_c(t), drop_stmt(t, "v"));
}

/* A pointer to a reference-counted runtime object. */
static bool is_handle(const Type *t) {
    return t->kind == TY_JOIN || t->kind == TY_SENDER || t->kind == TY_RECEIVER ||
           t->kind == TY_ATOMIC || t->kind == TY_LIST || t->kind == TY_MUTEX ||
           t->kind == TY_GUARD || t->kind == TY_SEMAPHORE || t->kind == TY_NOTIFY ||
           t->kind == TY_BUFFER || t->kind == TY_LISTENER || t->kind == TY_STREAM;
}

static void emit_type(FILE *out, Type *t) {
    if (t->emitted || t->kind <= TY_NEVER) {
        if (t->kind == TY_STR && !t->emitted) {
            t->emitted = true;
            emit_vdrop(out, t);
        }
        return;
    }
    t->emitted = true;
    emit_deps(out, t);
    const char *c = ty_c(t);
    switch (t->kind) {
    case TY_MAYBE:
        fprintf(out, "typedef struct %s { uint8_t tag; %s val; } %s;\n", c + 0, ty_c(t->a), c);
        break;
    case TY_OUTCOME:
        fprintf(out, "typedef struct %s { uint8_t tag; %s ok; %s err; } %s;\n", c, ty_c(t->a),
                ty_c(t->b), c);
        break;
    case TY_SEND_ERROR:
        fprintf(out, "typedef struct %s { %s value; } %s;\n", c, ty_c(t->a), c);
        break;
    case TY_TUPLE:
        fprintf(out, "typedef struct %s {", c);
        for (int i = 0; i < t->elems.n; i++)
            fprintf(out, " %s f%d;", ty_c(t->elems.v[i]), i);
        fprintf(out, " } %s;\n", c);
        break;
    case TY_STRUCT:
        fprintf(out, "typedef struct %s {", c);
        for (int i = 0; i < t->elems.n; i++)
            fprintf(out, " %s %s;", ty_c(t->elems.v[i]),
                    field_name(((Param *)t->sd->fields.v[i])->name));
        if (!t->elems.n)
            fprintf(out, " uint8_t empty_;");
        fprintf(out, " } %s;\n", c);
        break;
    case TY_ENUM:                   /* tag + one payload struct per variant */
        fprintf(out, "typedef struct %s {\n    uint32_t tag;\n", c);
        if (t->elems.n) {
            fprintf(out, "    union {\n");
            for (int i = 0; i < t->sd->variants.n; i++) {
                Variant *v = t->sd->variants.v[i];
                if (!v->types.n)
                    continue;
                fprintf(out, "        struct {");
                for (int k = 0; k < v->types.n; k++)
                    fprintf(out, " %s f%d;", ty_c(v->types.v[k]), k);
                fprintf(out, " } %s;\n", field_name(v->name));
            }
            fprintf(out, "    } u;\n");
        }
        fprintf(out, "} %s;\n", c);
        break;
    default:
        break;                  /* handles and runtime types: no definition */
    }
    if (!ty_managed(t))
        return;
    if (!is_handle(t))             /* handles are released by one call */
        emit_drop_dup(out, t);
    emit_vdrop(out, t);
}

/* ------------------------------------------------------------ program */

static void emit_frame(FILE *out, Func *f, Fn *F) {
    fprintf(out, "%s {\n    uint32_t state;\n", frame_struct(f));
    if (F->fields.s)
        fputs(F->fields.s, out);
    if (F->aw.s)
        fprintf(out, "    union {\n%s    } aw;\n", F->aw.s);
    if (!is_unit(f->ret))
        fprintf(out, "    %s ret;\n", ty_c(f->ret));
    fprintf(out, "};\n");
}

static void emit_poll(FILE *out, Func *f, Fn *F) {
    fprintf(out, "static tml_poll tml_u_%s_poll(void *vfr, tml_cx *cx) {\n", f->cname);
    fprintf(out, "    %s *fr = vfr;\n", frame_struct(f));
    if (F->locals.s)
        fputs(F->locals.s, out);
    fprintf(out, "    (void)cx;\n");
    fprintf(out, "    switch (fr->state) {\n    case 0: break;\n");
    for (int i = 0; i < f->awaits.n; i++)
        fprintf(out, "    case %d: goto resume%d;\n", i + 1, i + 1);
    fprintf(out, "    default: tml_panic_at(NULL, 0, 0, \"poll of a finished future\");\n    }\n");
    fputs(F->body.s, out);
    fprintf(out, "}\n\n");
}

/* The drop function: releases what a frame suspended at its state holds
 * (the awaited future, then the values in scope there). Only for a frame
 * that has not returned Ready (timeout, runtime shutdown). */
static void emit_drop(FILE *out, Func *f, Fn *F) {
    fprintf(out, "TML_HELPER void tml_u_%s_drop(void *vfr) {\n", f->cname);
    fprintf(out, "    %s *fr = vfr;\n", frame_struct(f));
    fprintf(out, "    switch (fr->state) {\n%s    default: break;\n    }\n}\n\n", F->drops.s);
}

/* tml_metrics_total(): RuntimeMetrics (stdlib/prelude.tml) filled with
 * tml_runtime_metrics summed over the workers. */
static void emit_metrics_total(FILE *out, Program *prog) {
    for (int i = 0; i < prog->structs.n; i++) {
        StructDecl *sd = prog->structs.v[i];
        if (strcmp(sd->name, "RuntimeMetrics") || !parse_is_prelude(&sd->loc))
            continue;
        fputs("TML_HELPER tml_u_RuntimeMetrics tml_metrics_total(void) {\n"
              "    tml_worker_metrics m[256];\n"
              "    int n = tml_runtime_metrics(m, 256);\n"
              "    tml_u_RuntimeMetrics t = {0};\n"
              "    t.workers_ = n;\n"
              "    for (int i = 0; i < n && i < 256; i++) {\n"
              "        t.polls_ += (int64_t)m[i].polls;\n"
              "        t.steals_ += (int64_t)m[i].steals;\n"
              "        t.stolen_ += (int64_t)m[i].stolen;\n"
              "        t.parks_ += (int64_t)m[i].parks;\n"
              "        t.global_pops_ += (int64_t)m[i].global_pops;\n"
              "        t.overflows_ += (int64_t)m[i].overflows;\n"
              "    }\n"
              "    return t;\n"
              "}\n", out);
    }
}

/* Runs one call of `f` (a test or main) from C main, its integer result
 * (if any) into `status`. */
static void emit_entry_call(FILE *out, Func *f, const char *indent) {
    bool status = !is_unit(f->ret);
    if (f->is_async) {
        fprintf(out, "%s%s fr;\n%smemset(&fr, 0, sizeof fr);\n", indent, frame_struct(f), indent);
        if (status)
            fprintf(out, "%s%s st = 0;\n", indent, ty_c(f->ret));
        fprintf(out, "%stml_block_on(&tml_u_%s_vt, &fr, %s);\n", indent, f->cname,
                status ? "&st" : "NULL");
        if (status)
            fprintf(out, "%sstatus = (int)st;\n", indent);
    } else {
        fprintf(out, "%s%stml_u_%s();\n", indent, status ? "status = (int)" : "", f->cname);
    }
}

static void emit_main(FILE *out, Func *m) {
    fprintf(out, "int main(int argc, char **argv) {\n    int status = 0;\n"
                 "    tml_main_enter(argc, argv);\n");
    emit_entry_call(out, m, "    ");
    fprintf(out, "    return tml_main_exit(status);\n}\n");
}

static void emit_test_main(FILE *out, Program *prog) {
    fputs("int main(int argc, char **argv) {\n    static const char *tests[] = {", out);
    for (int i = 0; i < prog->funcs.n; i++) {
        Func *f = prog->funcs.v[i];
        if (f->is_test)
            fprintf(out, "\"%s\", ", f->name);
    }
    fputs("NULL};\n"
          "    if (argc < 2) {\n"
          "        for (int i = 0; tests[i]; i++)\n"
          "            printf(\"%s\\n\", tests[i]);\n"
          "        return 0;\n"
          "    }\n"
          "    int status = 0;\n"
          "    tml_main_enter(argc, argv);\n"
          "    switch (atoi(argv[1])) {\n", out);
    int index = 0;
    for (int i = 0; i < prog->funcs.n; i++) {
        Func *f = prog->funcs.v[i];
        if (!f->is_test)
            continue;
        fprintf(out, "    case %d: {\n", index++);
        emit_entry_call(out, f, "        ");
        fputs("        break;\n    }\n", out);
    }
    fputs("    default: return 2;\n    }\n    return tml_main_exit(status);\n}\n", out);
}

void emit_frame_probe(Program *prog, FILE *out) {
    fputs("int main(void) {\n    printf(\"frame sizes (bytes):\\n\");\n", out);
    for (int i = 0; i < prog->funcs.n; i++) {
        Func *f = prog->funcs.v[i];
        if (f->is_async)
            fprintf(out, "    printf(\"  %%-24s %%zu\\n\", \"%s\", sizeof(%s));\n", f->name,
                    frame_struct(f));
    }
    fputs("    return 0;\n}\n", out);
}

static Func *find_main(Program *prog) {
    for (int i = 0; i < prog->funcs.n; i++)
        if (!strcmp(((Func *)prog->funcs.v[i])->name, "main"))
            return prog->funcs.v[i];
    return NULL;
}

void emit_c(Program *prog, FILE *out) {
    E = (Emitter){0};
    int n = prog->funcs.n;
    Fn **fns = arena_alloc(sizeof *fns * (size_t)n);
    for (int i = 0; i < n; i++)
        fns[i] = emit_func(prog->funcs.v[i]);

    fprintf(out, "/* generated by tml from %s; do not edit */\n", prog->src->path);
    /* tml/prelude.h's panicking helpers name tml_file: define it first */
    fprintf(out, "static const char tml_file[] = %s;\n",
            c_string(prog->src->path, (int)strlen(prog->src->path)));
    fputs("#include \"tml/prelude.h\"\n", out);
    emit_type(out, ty_prim(TY_STR));
    Vec *all = ty_all();
    for (int i = 0; i < all->n; i++)
        emit_type(out, all->v[i]);
    emit_metrics_total(out, prog);
    if (E.lits.s)
        fputs(E.lits.s, out);

    for (int i = 0; i < n; i++) {
        Func *f = prog->funcs.v[i];
        if (f->is_async)
            fprintf(out, "%s;\n", frame_struct(f));
    }
    int *by_order = arena_alloc(sizeof *by_order * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        by_order[((Func *)prog->funcs.v[i])->order] = i + 1;
    for (int order = 1; order <= n; order++) {
        int i = by_order[order] - 1;
        if (i >= 0 && ((Func *)prog->funcs.v[i])->is_async)
            emit_frame(out, prog->funcs.v[i], fns[i]);
    }
    for (int i = 0; i < n; i++) {
        Func *f = prog->funcs.v[i];
        if (f->is_async) {
            fprintf(out, "static tml_poll tml_u_%s_poll(void *vfr, tml_cx *cx);\n", f->cname);
            fprintf(out, "TML_HELPER void tml_u_%s_drop(void *vfr);\n", f->cname);
        } else
            fprintf(out, "%s;\n", sync_signature(f));
    }
    for (int i = 0; i < n; i++) {
        Func *f = prog->funcs.v[i];
        if (!f->spawned)
            continue;
        bool res = !is_unit(f->ret);
        fprintf(out,
                "static const tml_task_vt tml_u_%s_vt = { tml_u_%s_poll, sizeof(%s), %s, %s, %s, "
                "\"%s\", tml_u_%s_drop };\n",
                f->cname, f->cname, frame_struct(f),
                res ? arena_printf("offsetof(%s, ret)", frame_struct(f)) : "0",
                res ? arena_printf("sizeof(%s)", ty_c(f->ret)) : "0",
                res && ty_managed(f->ret) ? arena_printf("tml_vdrop_%s", f->ret->mangled) : "NULL",
                f->name, f->cname);
    }
    fputc('\n', out);
    for (int i = 0; i < n; i++) {
        Func *f = prog->funcs.v[i];
        if (f->is_async) {
            emit_poll(out, f, fns[i]);
            emit_drop(out, f, fns[i]);
        } else {
            fprintf(out, "%s {\n%s}\n\n", sync_signature(f), fns[i]->body.s ? fns[i]->body.s : "");
        }
        buf_free(&fns[i]->body);
        buf_free(&fns[i]->locals);
        buf_free(&fns[i]->fields);
        buf_free(&fns[i]->aw);
        buf_free(&fns[i]->drops);
    }
    if (prog->tests)
        emit_test_main(out, prog);
    else
        emit_main(out, find_main(prog));
    buf_free(&E.lits);
}
