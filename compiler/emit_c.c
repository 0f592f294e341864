/* emit_c.c - IR -> one readable C translation unit (spelling only).
 *
 * Takes the lowered program (mir.h) after lower_async_frames; writes C
 * that includes only tml/prelude.h (which includes tml/rt.h): the type definitions (one C type per TML
 * type instantiation, with dup/drop helpers for those holding
 * references), then per function its C: a sync function as a C
 * function; an async function (DESIGN.md section 3) as
 *   struct tml_u_F_frame  the resume state, the parameters and the
 *                         locals lower_async placed in the frame, the
 *                         `aw` union of the futures awaited (callee frames
 *                         inline, or boxed on a recursion edge) and the
 *                         result;
 *   tml_u_F_poll          a switch on the state that jumps to the label
 *                         after the await it stopped at, then the body;
 *   tml_u_F_drop          per state, what a frame suspended there holds.
 * Every decision (evaluation order, ownership, frame layout) was made
 * before; this file only spells. #line directives lead back to the TML
 * source. Rejects nothing. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

typedef struct Emitter {
    Buf lits;                   /* string literal objects */
    int nlits;
    MFunc *mf;                  /* the function being spelled */
} Emitter;

static Emitter E;

static bool is_unit(const Type *t) { return t->kind == TY_UNIT || t->kind == TY_NEVER; }

/* The C member for a TML field or variant name (never a C keyword). */
const char *emit_field_name(const char *n) { return arena_printf("%s_", n); }

static const char *frame_struct(Func *f) { return arena_printf("struct tml_u_%s_frame", f->cname); }

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

/* A static Str literal object; its address is the borrowed Str. */
static const char *str_lit(const char *s, int len) {
    int id = ++E.nlits;
    buf_printf(&E.lits, "static tml_str tml_lit%d = TML_STR_LIT(%s);\n", id, c_string(s, len));
    return arena_printf("(&tml_lit%d)", id);
}

/* ------------------------------------------------- reference counts */

const char *emit_dup_expr(Type *t, const char *x) {
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

const char *emit_drop_stmt(Type *t, const char *x) {
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

/* ------------------------------------------------------ expressions */

static const char *expr(const MExpr *e);

/* e as an operand of an operator: parenthesised unless atomic. */
static const char *operand(const MExpr *e) {
    bool compound = e->kind == MX_BINOP || e->kind == MX_COND || e->kind == MX_CAST ||
                    e->kind == MX_UNOP || (e->kind == MX_INT && e->ival < 0);
    return compound ? arena_printf("(%s)", expr(e)) : expr(e);
}

static const char *local(const MLocal *l) {
    if (l->by_ref)                  /* `mut this` (never in an async func) */
        return arena_printf("(*%s)", l->name);
    return E.mf->async && l->in_frame ? arena_printf("fr->%s", l->name) : l->name;
}

/* An integer constant of its type; a narrower type gets an explicit
 * cast, so a wrapping value (`300_i8`) draws no C warning. */
static const char *int_const(const MExpr *e) {
    if (!e->ty)
        return arena_printf("%lld", (long long)e->ival);
    if (e->ty->kind == TY_BOOL)
        return e->ival ? "true" : "false";
    if (e->ty->kind == TY_CHAR)
        return arena_printf("%lluu", (unsigned long long)e->ival);
    const char *c = e->wide ? arena_printf("UINT64_C(%llu)", (unsigned long long)e->ival)
                            : arena_printf("INT64_C(%lld)", (long long)e->ival);
    bool exact = e->ty->kind == TY_U64 || (e->ty->kind == TY_I64 && !e->wide);
    return exact ? c : arena_printf("((%s)%s)", ty_c(e->ty), c);
}

static const char *float_const(double v) {
    const char *f = arena_printf("%.17g", v);
    return strpbrk(f, ".eni") ? f : arena_printf("%s.0", f);  /* stay a double */
}

static const char *args(const MExpr *e) {
    Buf b = {0};
    for (int i = 0; i < e->n; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", expr(e->a[i]));
    const char *s = b.s ? arena_strndup(b.s, b.len) : "";
    buf_free(&b);
    return s;
}

/* "Enum::Variant" of a payload-free user enum value x. */
static const char *variant_name(const MExpr *e) {
    Type *t = e->ty;
    Buf names = {0};
    for (int i = 0; i < t->sd->variants.n; i++) {
        const char *s = arena_printf("%s::%s", t->sd->name, ((Variant *)t->sd->variants.v[i])->name);
        buf_printf(&names, "%s%s", i ? ", " : "", str_lit(s, (int)strlen(s)));
    }
    const char *pick = arena_printf("((tml_str *[]){%s})[%s.tag]", names.s, operand(e->a[0]));
    buf_free(&names);
    return pick;
}

/* The slot of await `id` in the frame's aw union; of its branch
 * `branch` (>= 0) for a select. */
static const char *slot(int id, int branch) {
    return branch < 0 ? arena_printf("fr->aw.a%d", id) : arena_printf("fr->aw.a%d.b%d", id, branch);
}

static const char *aw_slot(const MExpr *e) {
    static const char *parts[] = {"", ".in", ".timer"};
    return arena_printf("%s%s", slot((int)e->ival, e->branch), parts[e->part]);
}

static const char *expr(const MExpr *e) {
    switch (e->kind) {
    case MX_LOCAL: return local(e->local);
    case MX_INT: return int_const(e);
    case MX_FLOAT: return float_const(e->fval);
    case MX_SYM: return e->sym;
    case MX_STR: return str_lit(e->text, e->len);
    case MX_CSTR: return c_string(e->text, e->len);
    case MX_LOC: return arena_printf("tml_file, %d, %d", e->loc.line, e->loc.col);
    case MX_FIELD: return arena_printf("%s%s%s", operand(e->a[0]), e->arrow ? "->" : ".", e->sym);
    case MX_CALL:
        return e->fn ? arena_printf("tml_u_%s(%s)", e->fn->cname, args(e))
                     : arena_printf("%s(%s)", e->sym, args(e));
    case MX_BINOP: return arena_printf("%s %s %s", operand(e->a[0]), e->sym, operand(e->a[1]));
    case MX_UNOP: return arena_printf("%s%s", e->sym, operand(e->a[0]));
    case MX_COND:
        return arena_printf("%s ? %s : %s", operand(e->a[0]), operand(e->a[1]), operand(e->a[2]));
    case MX_CAST: return arena_printf("(%s)%s", ty_c(e->ty), operand(e->a[0]));
    case MX_ADDR: return arena_printf("&%s", operand(e->a[0]));
    case MX_DEREF: return arena_printf("(*(%s *)%s)", ty_c(e->ty), operand(e->a[0]));
    case MX_COMPOUND:
        return e->ty ? arena_printf("(%s){%s}", ty_c(e->ty), args(e)) : arena_printf("{%s}", args(e));
    case MX_SIZEOF: return arena_printf("sizeof(%s)", ty_c(e->ty));
    case MX_DUP: return emit_dup_expr(e->ty, expr(e->a[0]));
    case MX_VARIANT_NAME: return variant_name(e);
    case MX_AW: return aw_slot(e);
    case MX_FRAME_SIZE: return arena_printf("sizeof(%s)", frame_struct(e->fn));
    }
    return "0";
}

/* ------------------------------------------------------- statements */

typedef struct Out {
    Buf *b;
    int depth;
} Out;

__attribute__((format(printf, 2, 3)))
static void line(Out *o, const char *fmt, ...) {
    for (int i = 0; i < o->depth; i++)
        buf_puts(o->b, "    ");
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(o->b, fmt, ap);
    va_end(ap);
    buf_putc(o->b, '\n');
}

static void block(Out *o, const MBlock *b);

static void nested(Out *o, const MBlock *b) {
    o->depth++;
    block(o, b);
    o->depth--;
}

/* The for-header step: assignments separated by commas. */
static const char *step(const MBlock *b) {
    Buf s = {0};
    for (int i = 0; i < b->n; i++)
        buf_printf(&s, "%s%s = %s", i ? ", " : "", expr(b->v[i]->dst), expr(b->v[i]->src));
    const char *r = s.s ? arena_strndup(s.s, s.len) : "";
    buf_free(&s);
    return r;
}

static void if_stmt(Out *o, const MStmt *s) {
    line(o, "if (%s) {", expr(s->src));
    nested(o, &s->body);
    if (s->els.n) {
        line(o, "} else {");
        nested(o, &s->els);
    }
    line(o, "}");
}

static void loop_stmt(Out *o, const MStmt *s) {
    if (s->src || s->step.n)
        line(o, "for (; %s; %s) {", s->src ? expr(s->src) : "", step(&s->step));
    else
        line(o, "for (;;) {");
    nested(o, &s->body);
    line(o, "}");
}

static void return_stmt(Out *o, const MStmt *s) {
    if (E.mf->async) {
        if (s->src)
            line(o, "fr->ret = %s;", expr(s->src));
        line(o, "return TML_READY;");
    } else if (s->src) {
        line(o, "return %s;", expr(s->src));
    } else {
        line(o, "return;");
    }
}

static void panic_stmt(Out *o, const MStmt *s) {
    if (s->src)
        line(o, "tml_panic_str(tml_file, %d, %d, %s);", s->loc.line, s->loc.col, expr(s->src));
    else
        line(o, "tml_panic_at(tml_file, %d, %d, %s);", s->loc.line, s->loc.col,
             c_string(s->text, (int)strlen(s->text)));
}

/* The future of await aw, and a pointer to it. */
static const char *future(const MAwait *aw) {
    return arena_printf("%s%s", slot(aw->id, aw->branch), aw->expired ? ".in" : "");
}

static const char *timer(const MAwait *aw) { return arena_printf("%s.timer", slot(aw->id, aw->branch)); }

static const char *future_ref(const MAwait *aw) {
    return aw->boxed ? future(aw) : arena_printf("&%s", future(aw));
}

static const char *poll_call(const MAwait *aw) {
    if (aw->callee)
        return arena_printf("tml_u_%s_poll(%s, cx)", aw->callee->cname, future_ref(aw));
    return arena_printf("tml_%s_poll(%s, cx)", aw->leaf, future_ref(aw));
}

/* Cancels the future of aw: its drop, then the undo statements. */
static void cancel(Out *o, const MAwait *aw) {
    if (aw->callee)
        line(o, "tml_u_%s_drop(%s);", aw->callee->cname, future_ref(aw));
    if (aw->boxed)
        line(o, "tml_free(%s);", future(aw));
    if (aw->leaf && aw->leaf_drop)
        line(o, "tml_%s_drop(%s);", aw->leaf, future_ref(aw));
    block(o, &aw->undo);
}

/* Polls aw's future beside its timer: opens `if (...) {` chains that set
 * aw->expired and then run `done` (C statements) when either is Ready;
 * the caller closes the last brace. */
static void timed_poll(Out *o, const MAwait *aw, const char *done) {
    line(o, "if (%s == TML_READY) {", poll_call(aw));
    line(o, "    tml_sleep_drop(&%s);", timer(aw));
    line(o, "    %s = 0;%s", expr(aw->expired), done);
    /* outside the budget: a future that spends it all still times out */
    line(o, "} else if (tml_deadline_poll(&%s, cx) == TML_READY) {", timer(aw));
    o->depth++;
    cancel(o, aw);
    line(o, "%s = 1;%s", expr(aw->expired), done);
    o->depth--;
}

/* One branch of a select in its poll loop (`sel_i` the branch polled):
 * on Ready, the winner is it and the loop ends. */
static void branch_poll(Out *o, const MAwait *b, const char *winner) {
    const char *done = arena_printf(" %s = %d; break;", winner, b->branch);
    line(o, "if (sel_i == %d) {", b->branch);
    o->depth++;
    if (b->expired) {
        timed_poll(o, b, done);
        line(o, "}");
    } else {
        line(o, "if (%s == TML_READY) {%s }", poll_call(b), done);
    }
    o->depth--;
    line(o, "}");
}

/* select!: the enabled branches polled from a random one (biased: the
 * first), the first Ready one the winner; none enabled: the else branch
 * (index n) or a panic. */
static void select_stmt(Out *o, const MStmt *s) {
    const MAwait *sel = s->aw;
    int n = sel->branches.n, state = sel->id + 1;
    const char *mask = expr(sel->mask), *winner = expr(s->dst);
    line(o, "fr->state = %d;", state);
    buf_printf(o->b, "resume%d:\n", state);
    line(o, "if (%s == 0) {", mask);
    if (sel->has_else)
        line(o, "    %s = %d;", winner, n);
    else
        line(o, "    tml_panic_at(tml_file, %d, %d, \"all branches of select! are disabled\");",
             s->loc.line, s->loc.col);
    line(o, "} else {");
    o->depth++;
    line(o, "uint32_t sel_i = %s, sel_k;", sel->biased ? "0" : arena_printf("tml_select_start(%d)", n));
    line(o, "for (sel_k = 0; sel_k < %d; sel_k++, sel_i = sel_i + 1 == %d ? 0 : sel_i + 1) {", n, n);
    o->depth++;
    line(o, "if (!(%s >> sel_i & 1))", mask);
    line(o, "    continue;");
    for (int i = 0; i < n; i++)
        branch_poll(o, sel->branches.v[i], winner);
    o->depth--;
    line(o, "}");
    line(o, "if (sel_k == %d)", n);
    line(o, "    return TML_PENDING;");
    o->depth--;
    line(o, "}");
}

static void await_stmt(Out *o, const MStmt *s) {
    const MAwait *aw = s->aw;
    int state = aw->id + 1;
    line(o, "fr->state = %d;", state);
    buf_printf(o->b, "resume%d:\n", state);
    if (!aw->expired) {
        line(o, "if (%s == TML_PENDING)", poll_call(aw));
        line(o, "    return TML_PENDING;");
        return;
    }
    timed_poll(o, aw, "");
    line(o, "} else {");
    line(o, "    return TML_PENDING;");
    line(o, "}");
}

/* spawn / block_on: the callee frame is built in the task's block, or
 * on this stack. */
static void start_stmt(Out *o, const MStmt *s) {
    Func *g = s->fn;
    bool spawn = s->kind == MS_SPAWN;
    const char *sep = spawn ? "->" : ".";
    line(o, "{");
    o->depth++;
    if (spawn) {
        line(o, "%s *sp = tml_spawn_frame(&tml_u_%s_vt);", frame_struct(g), g->cname);
        line(o, "sp->state = 0;");
    } else {
        line(o, "%s sp;", frame_struct(g));
        line(o, "memset(&sp, 0, sizeof sp);");
    }
    for (int i = 0; i < s->nargs; i++)
        line(o, "sp%s%s = %s;", sep, ((Param *)g->params.v[i])->var->cname, expr(s->args[i]));
    if (spawn)
        line(o, "%s = tml_spawn_start(sp);", expr(s->dst));
    else
        line(o, "tml_block_on(&tml_u_%s_vt, &sp, %s);", g->cname,
             s->dst ? arena_printf("&%s", expr(s->dst)) : "NULL");
    o->depth--;
    line(o, "}");
}

static void stmt(Out *o, const MStmt *s) {
    switch (s->kind) {
    case MS_ASSIGN: line(o, "%s = %s;", expr(s->dst), expr(s->src)); break;
    case MS_EVAL: line(o, "%s;", expr(s->src)); break;
    case MS_ZERO: {
        const char *x = expr(s->dst);
        line(o, "memset(&%s, 0, sizeof %s);", x, x);
        break;
    }
    case MS_RELEASE: line(o, "%s", emit_drop_stmt(s->ty, expr(s->dst))); break;
    case MS_IF: if_stmt(o, s); break;
    case MS_LOOP: loop_stmt(o, s); break;
    case MS_BREAK: line(o, "break;"); break;
    case MS_CONTINUE: line(o, "continue;"); break;
    case MS_RETURN: return_stmt(o, s); break;
    case MS_LABEL: buf_printf(o->b, "%s:;\n", s->text); break;
    case MS_GOTO: line(o, "goto %s;", s->text); break;
    case MS_PANIC: panic_stmt(o, s); break;
    case MS_AWAIT: await_stmt(o, s); break;
    case MS_SELECT: select_stmt(o, s); break;
    case MS_CANCEL:
        cancel(o, s->aw);
        if (s->aw->expired)
            line(o, "tml_sleep_drop(&%s);", timer(s->aw));
        break;
    case MS_SPAWN: case MS_BLOCK_ON: start_stmt(o, s); break;
    case MS_LINE: buf_printf(o->b, "#line %d \"%s\"\n", s->loc.line, s->loc.src->path); break;
    }
}

static void block(Out *o, const MBlock *b) {
    for (int i = 0; i < b->n; i++)
        stmt(o, b->v[i]);
}

/* ------------------------------------------------------------ program */

/* The C declaration of local l: marked unused when nothing reads it, so
 * -Wall -Wextra stays quiet. */
static const char *declaration(const MLocal *l) {
    return arena_printf("%s %s%s%s", ty_c(l->ty), l->by_ref ? "*" : "", l->name,
                        l->reads > 0 ? "" : " __attribute__((unused))");
}

/* The C alignment of a value of type t, bytes. */
static int align_of(const Type *t) {
    int a = 1;
    switch (t->kind) {
    case TY_UNIT: case TY_BOOL: case TY_I8: case TY_U8: case TY_RECV_ERROR: case TY_TIMEOUT_ERROR:
        return 1;
    case TY_I16: case TY_U16: return 2;
    case TY_I32: case TY_U32: case TY_F32: case TY_CHAR: case TY_SOCKADDR: return 4;
    case TY_ENUM:               /* uint32_t tag, then the payloads */
        a = 4;
        for (int i = 0; i < t->sd->variants.n; i++) {
            Variant *v = t->sd->variants.v[i];
            for (int k = 0; k < v->types.n; k++)
                a = a > align_of(v->types.v[k]) ? a : align_of(v->types.v[k]);
        }
        return a;
    case TY_MAYBE: case TY_OUTCOME: case TY_SEND_ERROR: case TY_TUPLE: case TY_STRUCT:
        if (t->a)
            a = align_of(t->a);
        if (t->b && align_of(t->b) > a)
            a = align_of(t->b);
        for (int i = 0; i < t->elems.n; i++)
            a = a > align_of(t->elems.v[i]) ? a : align_of(t->elems.v[i]);
        return a;
    default: return 8;
    }
}

/* The frame's fields after `state` (4 bytes): those aligned to 4, 2 and
 * 1 fill the rest of its word, the 8-aligned ones follow. */
static void frame_fields(FILE *out, const MFunc *mf) {
    static const int order[] = {4, 2, 1, 8};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < mf->locals.n; i++) {
            MLocal *l = mf->locals.v[i];
            int a = align_of(l->ty);
            if (l->in_frame && (a == order[k] || (order[k] == 8 && a > 8)))
                fprintf(out, "    %s %s;\n", ty_c(l->ty), l->name);
        }
}

/* The C type of aw's slot: a leaf future, a callee frame (a pointer
 * when boxed), beside a timer; a select's: one member per branch. */
static const char *future_type(const MAwait *aw) {
    if (aw->branches.n) {
        Buf b = {0};
        buf_puts(&b, "struct {");
        for (int i = 0; i < aw->branches.n; i++)
            buf_printf(&b, " %s b%d;", future_type(aw->branches.v[i]), i);
        buf_puts(&b, " }");
        const char *r = arena_strndup(b.s, b.len);
        buf_free(&b);
        return r;
    }
    const char *ty = aw->callee ? arena_printf("%s%s", frame_struct(aw->callee), aw->boxed ? " *" : "")
                                : arena_printf("tml_%s_fut", aw->leaf);
    return aw->expired ? arena_printf("struct { %s in; tml_sleep_fut timer; }", ty) : ty;
}

static void emit_frame(FILE *out, const MFunc *mf) {
    Func *f = mf->f;
    fprintf(out, "%s {\n    uint32_t state;\n", frame_struct(f));
    frame_fields(out, mf);
    if (mf->awaits.n) {
        fprintf(out, "    union {\n");
        for (int i = 0; i < mf->awaits.n; i++) {
            MAwait *aw = mf->awaits.v[i];
            fprintf(out, "        %s a%d;\n", future_type(aw), aw->id);
        }
        fprintf(out, "    } aw;\n");
    }
    if (!is_unit(f->ret))
        fprintf(out, "    %s ret;\n", ty_c(f->ret));
    fprintf(out, "};\n");
}

static void spell_body(Buf *b, MFunc *mf) {
    E.mf = mf;
    Out o = {b, 1};
    block(&o, &mf->body);
}

static void emit_poll(FILE *out, MFunc *mf) {
    Func *f = mf->f;
    Buf body = {0};
    spell_body(&body, mf);
    fprintf(out, "static tml_poll tml_u_%s_poll(void *vfr, tml_cx *cx) {\n", f->cname);
    fprintf(out, "    %s *fr = vfr;\n", frame_struct(f));
    for (int i = 0; i < mf->locals.n; i++) {
        MLocal *l = mf->locals.v[i];
        if (!l->in_frame)
            fprintf(out, "    %s;\n", declaration(l));
    }
    fprintf(out, "    (void)cx;\n");
    fprintf(out, "    switch (fr->state) {\n    case 0: break;\n");
    for (int i = 0; i < mf->awaits.n; i++)
        fprintf(out, "    case %d: goto resume%d;\n", i + 1, i + 1);
    fprintf(out, "    default: tml_panic_at(NULL, 0, 0, \"poll of a finished future\");\n    }\n");
    if (body.s)
        fputs(body.s, out);
    fprintf(out, "}\n\n");
    buf_free(&body);
}

/* A frame dropped while suspended at aw: its future (its timer); a
 * select's: each enabled branch's, with what that branch holds. */
static void drop_future(Out *o, const MAwait *aw) {
    if (!aw->branches.n) {
        cancel(o, aw);
        if (aw->expired)
            line(o, "tml_sleep_drop(&%s);", timer(aw));
        return;
    }
    for (int i = 0; i < aw->branches.n; i++) {
        const MAwait *b = aw->branches.v[i];
        line(o, "if (%s >> %d & 1) {", expr(aw->mask), b->branch);
        o->depth++;
        drop_future(o, b);
        for (int k = b->held.n - 1; k >= 0; k--) {
            MOwned *ow = b->held.v[k];
            line(o, "%s", emit_drop_stmt(ow->ty, expr(ow->place)));
        }
        o->depth--;
        line(o, "}");
    }
}

/* The drop function: releases what a frame suspended at its state holds
 * (the awaited future, then the values in scope there). Only for a frame
 * that has not returned Ready (timeout, runtime shutdown). */
static void emit_drop(FILE *out, MFunc *mf) {
    Func *f = mf->f;
    Buf b = {0};
    E.mf = mf;
    Out o = {&b, 2};
    buf_puts(&b, "    case 0:\n");
    block(&o, &mf->drop0);
    line(&o, "break;");
    for (int i = 0; i < mf->awaits.n; i++) {
        MAwait *aw = mf->awaits.v[i];
        buf_printf(&b, "    case %d:\n", aw->id + 1);
        drop_future(&o, aw);
        for (int k = aw->owned.n - 1; k >= 0; k--) {
            MOwned *ow = aw->owned.v[k];
            line(&o, "%s%s", ow->live ? arena_printf("if (%s) ", expr(ow->live)) : "",
                 emit_drop_stmt(ow->ty, expr(ow->place)));
        }
        line(&o, "break;");
    }
    fprintf(out, "TML_HELPER void tml_u_%s_drop(void *vfr) {\n", f->cname);
    fprintf(out, "    %s *fr = vfr;\n", frame_struct(f));
    fprintf(out, "    switch (fr->state) {\n%s    default: break;\n    }\n}\n\n", b.s);
    buf_free(&b);
}

static const char *sync_signature(const MFunc *mf) {
    Func *f = mf->f;
    Buf b = {0};
    buf_printf(&b, "static %s%s tml_u_%s(", parse_is_prelude(&f->loc) ? "__attribute__((unused)) " : "",
               is_unit(f->ret) ? "void" : ty_c(f->ret), f->cname);
    const char *sep = "";
    for (int i = 0; i < mf->locals.n; i++) {
        MLocal *l = mf->locals.v[i];
        if (!l->param)
            continue;
        buf_printf(&b, "%s%s", sep, declaration(l));
        sep = ", ";
    }
    if (!*sep)
        buf_puts(&b, "void");
    buf_putc(&b, ')');
    const char *s = arena_strndup(b.s, b.len);
    buf_free(&b);
    return s;
}

static void emit_sync(FILE *out, MFunc *mf) {
    Buf body = {0};
    spell_body(&body, mf);
    fprintf(out, "%s {\n", sync_signature(mf));
    for (int i = 0; i < mf->locals.n; i++) {
        MLocal *l = mf->locals.v[i];
        if (!l->param)
            fprintf(out, "    %s;\n", declaration(l));
    }
    if (body.s)
        fputs(body.s, out);
    fprintf(out, "}\n\n");
    buf_free(&body);
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
                 "    tml_main_enter(argc, argv);\n    tml_main_watch_deadlocks();\n");
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
          "    tml_main_watch_deadlocks();\n"
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

static void emit_task_vt(FILE *out, Func *f) {
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

/* Frame structs in lower_async's order: embedded frames first. */
static void emit_frames(FILE *out, MProgram *mp) {
    int n = mp->funcs.n;
    int *by_order = arena_alloc(sizeof *by_order * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        by_order[((MFunc *)mp->funcs.v[i])->f->order] = i + 1;
    for (int order = 1; order <= n; order++) {
        int i = by_order[order] - 1;
        if (i >= 0 && ((MFunc *)mp->funcs.v[i])->async)
            emit_frame(out, mp->funcs.v[i]);
    }
}

static void emit_declarations(FILE *out, MProgram *mp) {
    for (int i = 0; i < mp->funcs.n; i++) {
        MFunc *mf = mp->funcs.v[i];
        if (mf->async) {
            fprintf(out, "static tml_poll tml_u_%s_poll(void *vfr, tml_cx *cx);\n", mf->f->cname);
            fprintf(out, "TML_HELPER void tml_u_%s_drop(void *vfr);\n", mf->f->cname);
        } else {
            fprintf(out, "%s;\n", sync_signature(mf));
        }
    }
    for (int i = 0; i < mp->funcs.n; i++) {
        MFunc *mf = mp->funcs.v[i];
        if (mf->f->spawned)
            emit_task_vt(out, mf->f);
    }
    fputc('\n', out);
}

void emit_c(MProgram *mp, FILE *out) {
    Program *prog = mp->prog;
    E = (Emitter){0};
    Buf code = {0};                 /* functions, spelled first: they add literals */
    FILE *fns = open_memstream(&code.s, &code.len);
    for (int i = 0; i < mp->funcs.n; i++) {
        MFunc *mf = mp->funcs.v[i];
        if (mf->async) {
            emit_poll(fns, mf);
            emit_drop(fns, mf);
        } else {
            emit_sync(fns, mf);
        }
    }
    fclose(fns);

    fprintf(out, "/* generated by tml from %s; do not edit */\n", prog->src->path);
    /* tml/prelude.h's panicking helpers name tml_file: define it first */
    fprintf(out, "static const char tml_file[] = %s;\n",
            c_string(prog->src->path, (int)strlen(prog->src->path)));
    fputs("#include \"tml/prelude.h\"\n", out);
    bi_rt_asserts(out, prog);
    emit_type(out, ty_prim(TY_STR));
    Vec *all = ty_all();
    for (int i = 0; i < all->n; i++)
        emit_type(out, all->v[i]);
    emit_metrics_total(out, prog);
    if (E.lits.s)
        fputs(E.lits.s, out);
    for (int i = 0; i < mp->funcs.n; i++) {
        MFunc *mf = mp->funcs.v[i];
        if (mf->async)
            fprintf(out, "%s;\n", frame_struct(mf->f));
    }
    emit_frames(out, mp);
    emit_declarations(out, mp);
    if (code.s)
        fwrite(code.s, 1, code.len, out);
    free(code.s);
    if (prog->tests)
        emit_test_main(out, prog);
    else
        emit_main(out, find_main(prog));
    buf_free(&E.lits);
}
