/* mir.c - building and printing the IR (mir.h).
 *
 * Constructors for expressions and statements, all in the compilation's
 * arena, and the printer behind `tml emit-mir`: a C-like listing of each
 * function's locals (with `frame` on those lower_async placed in an
 * async function's frame), its statements and, for an async function,
 * a table of its await states: the future each polls and what a drop of
 * the frame suspended there releases. The listing is for people
 * debugging a miscompile and for golden tests; nothing parses it. */
#include <string.h>

#include "mir.h"

MExpr *mx_new(MExprKind kind, Type *ty) {
    MExpr *e = arena_alloc(sizeof *e);
    e->kind = kind;
    e->ty = ty;
    return e;
}

static MExpr *with_args(MExpr *e, int n) {
    e->n = n;
    e->a = arena_alloc(sizeof *e->a * (size_t)(n ? n : 1));
    return e;
}

MExpr *mx_local(MLocal *l) {
    MExpr *e = mx_new(MX_LOCAL, l->ty);
    e->local = l;
    return e;
}

MExpr *mx_int(Type *ty, int64_t v) {
    MExpr *e = mx_new(MX_INT, ty);
    e->ival = v;
    return e;
}

MExpr *mx_sym(const char *sym) {
    MExpr *e = mx_new(MX_SYM, NULL);
    e->sym = sym;
    return e;
}

MExpr *mx_field(MExpr *base, const char *member) {
    MExpr *e = with_args(mx_new(MX_FIELD, NULL), 1);
    e->a[0] = base;
    e->sym = member;
    return e;
}

MExpr *mx_arrow(MExpr *base, const char *member) {
    MExpr *e = mx_field(base, member);
    e->arrow = true;
    return e;
}

MExpr *mx_callv(const char *fn, Vec *args) {
    MExpr *e = with_args(mx_new(MX_CALL, NULL), args->n);
    e->sym = fn;
    for (int i = 0; i < args->n; i++)
        e->a[i] = args->v[i];
    return e;
}

MExpr *mx_call(const char *fn, int n, ...) {
    MExpr *e = with_args(mx_new(MX_CALL, NULL), n);
    e->sym = fn;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        e->a[i] = va_arg(ap, MExpr *);
    va_end(ap);
    return e;
}

MExpr *mx_binop(const char *op, MExpr *l, MExpr *r) {
    MExpr *e = with_args(mx_new(MX_BINOP, NULL), 2);
    e->sym = op;
    e->a[0] = l;
    e->a[1] = r;
    return e;
}

MExpr *mx_unop(const char *op, MExpr *x) {
    MExpr *e = with_args(mx_new(MX_UNOP, NULL), 1);
    e->sym = op;
    e->a[0] = x;
    return e;
}

MExpr *mx_cast(Type *ty, MExpr *x) {
    MExpr *e = with_args(mx_new(MX_CAST, ty), 1);
    e->a[0] = x;
    return e;
}

MExpr *mx_addr(MExpr *x) {
    MExpr *e = with_args(mx_new(MX_ADDR, NULL), 1);
    e->a[0] = x;
    return e;
}

MExpr *mx_out(MExpr *x) {
    MExpr *e = mx_addr(x);
    e->out = true;
    return e;
}

MExpr *mx_cond(MExpr *c, MExpr *a, MExpr *b) {
    MExpr *e = with_args(mx_new(MX_COND, NULL), 3);
    e->a[0] = c;
    e->a[1] = a;
    e->a[2] = b;
    return e;
}

MExpr *mx_compound(Type *ty, Vec *elems) {
    MExpr *e = with_args(mx_new(MX_COMPOUND, ty), elems->n);
    for (int i = 0; i < elems->n; i++)
        e->a[i] = elems->v[i];
    return e;
}

MExpr *mx_str(const char *text, int len) {
    MExpr *e = mx_new(MX_STR, ty_prim(TY_STR));
    e->text = text;
    e->len = len;
    return e;
}

MExpr *mx_cstr(const char *text) {
    MExpr *e = mx_new(MX_CSTR, NULL);
    e->text = text;
    e->len = (int)strlen(text);
    return e;
}

MExpr *mx_loc(Loc loc) {
    MExpr *e = mx_new(MX_LOC, NULL);
    e->loc = loc;
    return e;
}

MExpr *mx_aw(int id, MAwPart part) { return mx_aw_branch(id, -1, part); }

MExpr *mx_aw_branch(int id, int branch, MAwPart part) {
    MExpr *e = mx_new(MX_AW, NULL);
    e->ival = id;
    e->branch = branch;
    e->part = part;
    return e;
}

MExpr *mx_deref(Type *ty, MExpr *ptr) {
    MExpr *e = with_args(mx_new(MX_DEREF, ty), 1);
    e->a[0] = ptr;
    return e;
}

MStmt *ms_new(MStmtKind kind) {
    MStmt *s = arena_alloc(sizeof *s);
    s->kind = kind;
    return s;
}

void mblock_push(MBlock *b, MStmt *s) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        MStmt **v = arena_alloc(sizeof *v * (size_t)cap);
        if (b->n)
            memcpy(v, b->v, sizeof *v * (size_t)b->n);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = s;
}

/* ---------------------------------------------------------- printer */

static void print_expr(FILE *out, const MExpr *e);

static void print_args(FILE *out, const MExpr *e, int from) {
    for (int i = from; i < e->n; i++) {
        if (i > from)
            fputs(", ", out);
        print_expr(out, e->a[i]);
    }
}

static void print_text(FILE *out, const char *s, int len) {
    fputc('"', out);
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c >= 0x20 && c < 0x7F)
            fputc(c, out);
        else
            fprintf(out, "\\x%02x", c);
    }
    fputc('"', out);
}

static const char *part_name(MAwPart p) {
    return p == AW_IN ? ".in" : p == AW_TIMER ? ".timer" : "";
}

static void print_expr(FILE *out, const MExpr *e) {
    switch (e->kind) {
    case MX_LOCAL: fputs(e->local->name, out); break;
    case MX_INT:
        fprintf(out, e->wide ? "%llu" : "%lld", (unsigned long long)e->ival);
        if (e->ty)
            fprintf(out, "_%s", ty_name(e->ty));
        break;
    case MX_FLOAT: fprintf(out, "%.17g", e->fval); break;
    case MX_SYM: fputs(e->sym, out); break;
    case MX_STR: print_text(out, e->text, e->len); break;
    case MX_CSTR: fputs("c", out); print_text(out, e->text, e->len); break;
    case MX_LOC: fprintf(out, "@%d:%d", e->loc.line, e->loc.col); break;
    case MX_FIELD:
        print_expr(out, e->a[0]);
        fprintf(out, "%s%s", e->arrow ? "->" : ".", e->sym);
        break;
    case MX_CALL:
        fprintf(out, "%s(", e->fn ? e->fn->name : e->sym);
        print_args(out, e, 0);
        fputc(')', out);
        break;
    case MX_BINOP:
        fputc('(', out);
        print_expr(out, e->a[0]);
        fprintf(out, " %s ", e->sym);
        print_expr(out, e->a[1]);
        fputc(')', out);
        break;
    case MX_UNOP: fputs(e->sym, out); print_expr(out, e->a[0]); break;
    case MX_COND:
        fputc('(', out);
        print_expr(out, e->a[0]);
        fputs(" ? ", out);
        print_expr(out, e->a[1]);
        fputs(" : ", out);
        print_expr(out, e->a[2]);
        fputc(')', out);
        break;
    case MX_CAST: fprintf(out, "(%s)", ty_name(e->ty)); print_expr(out, e->a[0]); break;
    case MX_ADDR: fputc('&', out); print_expr(out, e->a[0]); break;
    case MX_DEREF: fprintf(out, "*(%s *)", ty_name(e->ty)); print_expr(out, e->a[0]); break;
    case MX_COMPOUND:
        fprintf(out, "%s{", e->ty ? ty_name(e->ty) : "");
        print_args(out, e, 0);
        fputc('}', out);
        break;
    case MX_SIZEOF: fprintf(out, "sizeof(%s)", ty_name(e->ty)); break;
    case MX_DUP: fputs("dup ", out); print_expr(out, e->a[0]); break;
    case MX_VARIANT_NAME: fputs("variant_name ", out); print_expr(out, e->a[0]); break;
    case MX_AW:
        fprintf(out, "aw%d", (int)e->ival);
        if (e->branch >= 0)
            fprintf(out, ".b%d", e->branch);
        fputs(part_name(e->part), out);
        break;
    case MX_FRAME_SIZE: fprintf(out, "sizeof(frame %s)", e->fn->name); break;
    }
}

static void print_block(FILE *out, const MBlock *b, int depth);

static void indent(FILE *out, int depth) {
    for (int i = 0; i < depth; i++)
        fputs("    ", out);
}

static const char *future_name(const MAwait *aw) {
    if (aw->callee)
        return arena_printf("%s%s", aw->callee->name, aw->boxed ? " (boxed)" : "");
    if (!aw->branches.n)
        return arena_printf("%s%s", aw->leaf, aw->expired ? " beside a timer" : "");
    Buf b = {0};
    buf_printf(&b, "%s of", aw->biased ? "select_biased" : "select");
    for (int i = 0; i < aw->branches.n; i++)
        buf_printf(&b, "%s %s", i ? "," : "", future_name(aw->branches.v[i]));
    const char *r = arena_strndup(b.s, b.len);
    buf_free(&b);
    return r;
}

static void print_call_stmt(FILE *out, const MStmt *s, const char *what) {
    if (s->dst) {
        print_expr(out, s->dst);
        fputs(" = ", out);
    }
    fprintf(out, "%s %s(", what, s->fn->name);
    for (int i = 0; i < s->nargs; i++) {
        if (i)
            fputs(", ", out);
        print_expr(out, s->args[i]);
    }
    fputs(")\n", out);
}

static void print_stmt(FILE *out, const MStmt *s, int depth) {
    if (s->kind == MS_LABEL) {
        fprintf(out, "%s:\n", s->text);
        return;
    }
    indent(out, depth);
    switch (s->kind) {
    case MS_ASSIGN:
        print_expr(out, s->dst);
        fputs(" = ", out);
        print_expr(out, s->src);
        fputc('\n', out);
        break;
    case MS_EVAL: print_expr(out, s->src); fputc('\n', out); break;
    case MS_ZERO: fputs("zero ", out); print_expr(out, s->dst); fputc('\n', out); break;
    case MS_RELEASE:
        fputs("release ", out);
        print_expr(out, s->dst);
        fprintf(out, ": %s\n", ty_name(s->ty));
        break;
    case MS_IF:
        fputs("if ", out);
        print_expr(out, s->src);
        fputs(" {\n", out);
        print_block(out, &s->body, depth + 1);
        if (s->els.n) {
            indent(out, depth);
            fputs("} else {\n", out);
            print_block(out, &s->els, depth + 1);
        }
        indent(out, depth);
        fputs("}\n", out);
        break;
    case MS_LOOP:
        fputs("loop", out);
        if (s->src) {
            fputs(" while ", out);
            print_expr(out, s->src);
        }
        fputs(" {\n", out);
        print_block(out, &s->body, depth + 1);
        if (s->step.n) {
            indent(out, depth);
            fputs("} step {\n", out);
            print_block(out, &s->step, depth + 1);
        }
        indent(out, depth);
        fputs("}\n", out);
        break;
    case MS_BREAK: fputs("break\n", out); break;
    case MS_CONTINUE: fputs("continue\n", out); break;
    case MS_RETURN:
        fputs("return", out);
        if (s->src) {
            fputc(' ', out);
            print_expr(out, s->src);
        }
        fputc('\n', out);
        break;
    case MS_GOTO: fprintf(out, "goto %s\n", s->text); break;
    case MS_PANIC:
        fprintf(out, "panic @%d:%d ", s->loc.line, s->loc.col);
        if (s->src)
            print_expr(out, s->src);
        else
            print_text(out, s->text, (int)strlen(s->text));
        fputc('\n', out);
        break;
    case MS_AWAIT: case MS_SELECT:
        if (s->dst) {
            print_expr(out, s->dst);
            fputs(" = ", out);
        }
        fprintf(out, "await %d (state %d): %s\n", s->aw->id, s->aw->id + 1, future_name(s->aw));
        break;
    case MS_CANCEL:
        fprintf(out, "cancel aw%d.b%d\n", s->aw->parent->id, s->aw->branch);
        break;
    case MS_SPAWN: print_call_stmt(out, s, "spawn"); break;
    case MS_BLOCK_ON: print_call_stmt(out, s, "block_on"); break;
    case MS_LINE: fprintf(out, "# line %d\n", s->loc.line); break;
    case MS_LABEL: break;
    }
}

static void print_block(FILE *out, const MBlock *b, int depth) {
    for (int i = 0; i < b->n; i++)
        print_stmt(out, b->v[i], depth);
}

static void print_locals(FILE *out, const MFunc *mf) {
    for (int i = 0; i < mf->locals.n; i++) {
        MLocal *l = mf->locals.v[i];
        fprintf(out, "    %s%s: %s%s\n", l->param ? "param " : "", l->name, ty_name(l->ty),
                mf->async && l->in_frame ? "  [frame]" : "");
    }
}

static void print_owned(FILE *out, const Vec *owned) {
    for (int k = owned->n - 1; k >= 0; k--) {
        MOwned *o = owned->v[k];
        fputs(" ", out);
        print_expr(out, o->place);
    }
}

static void print_states(FILE *out, const MFunc *mf) {
    fputs("  states:\n    0: start; drop releases the parameters\n", out);
    for (int i = 0; i < mf->awaits.n; i++) {
        MAwait *aw = mf->awaits.v[i];
        fprintf(out, "    %d: after await %d on %s; drop: the future%s", aw->id + 1, aw->id,
                future_name(aw), aw->branches.n ? "s still enabled, what they hold" : "");
        if (aw->expired)
            fputs(", its timer", out);
        if (aw->owned.n) {
            fputs(", then", out);
            print_owned(out, &aw->owned);
        }
        fputc('\n', out);
    }
}

void mir_print(MProgram *mp, FILE *out) {
    for (int i = 0; i < mp->funcs.n; i++) {
        MFunc *mf = mp->funcs.v[i];
        if (parse_is_prelude(&mf->f->loc))
            continue;
        fprintf(out, "%sfunc %s -> %s\n", mf->async ? "async " : "", mf->f->cname,
                ty_name(mf->f->ret));
        fputs("  locals:\n", out);
        print_locals(out, mf);
        if (mf->async)
            print_states(out, mf);
        fputs("  body:\n", out);
        print_block(out, &mf->body, 2);
        fputc('\n', out);
    }
}
