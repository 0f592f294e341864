/* lower_async.c - the async pass: the call graph, then frame layout.
 *
 * 1. lower_async_graph, before lower: which callee frames are inline.
 * Takes the checked Program and finds, for each async function, the
 * async functions it awaits (Func.callees). An awaited callee's frame is embedded by value
 * in the caller's `aw` union (DESIGN.md section 3), so a task is one
 * allocation. That is impossible on a cycle (async recursion: the frame
 * would contain itself), so the call edges inside one strongly connected
 * component are boxed: the callee frame is heap-allocated for the
 * duration of that await. Produces Func.scc and Func.order: frames are
 * emitted in increasing `order`, which puts every inline-embedded frame
 * before its embedder. Algorithm: Tarjan, "Depth-first search and linear
 * graph algorithms" (1972); Tarjan emits SCCs in reverse topological
 * order, i.e. callees first, which is exactly the emission order.
 *
 * 2. lower_async_frames, after lower: which locals live in the frame.
 * A local must survive a suspension when it is live at an await (read
 * on some path after the poll resumes, before it is written again),
 * when a drop of the frame suspended there reads it (what the scopes
 * own) or when the future points into it (an out-parameter such as
 * recv's slot). Liveness is the classic backward dataflow (Kildall
 * 1973; Aho, Lam, Sethi, Ullman, section 9.2.5) over a control-flow
 * graph built from the structured IR: one node per statement, edges
 * for if/loop/break/continue/goto/return. Only a local that may hold a
 * value there matters (a forward "maybe defined" pass), so a temporary
 * first written after the await is never in the frame. Parameters
 * always are: the caller stores them there. Everything else is a C
 * local of the poll function. The same walk counts each local's reads,
 * so emit_c marks locals nothing reads as unused. */
#include <string.h>

#include "mir.h"

typedef struct Tarjan {
    Vec stack;                  /* Func* */
    int *index, *low;           /* per function, by position in funcs */
    bool *on_stack;
    int next_index, next_scc, next_order;
    Program *prog;
} Tarjan;

static int pos(Tarjan *t, const Func *f) {
    for (int i = 0; i < t->prog->funcs.n; i++)
        if (t->prog->funcs.v[i] == f)
            return i;
    return -1;
}

static void strongconnect(Tarjan *t, Func *f) {
    int v = pos(t, f);
    t->index[v] = t->low[v] = ++t->next_index;
    vec_push(&t->stack, f);
    t->on_stack[v] = true;
    for (int i = 0; i < f->callees.n; i++) {
        Func *g = f->callees.v[i];
        int w = pos(t, g);
        if (!t->index[w]) {
            strongconnect(t, g);
            if (t->low[w] < t->low[v])
                t->low[v] = t->low[w];
        } else if (t->on_stack[w] && t->index[w] < t->low[v]) {
            t->low[v] = t->index[w];
        }
    }
    if (t->low[v] != t->index[v])
        return;
    int scc = ++t->next_scc;
    Func *g;
    do {
        g = t->stack.v[--t->stack.n];
        t->on_stack[pos(t, g)] = false;
        g->scc = scc;
        g->order = ++t->next_order;
    } while (g != f);
}

/* Adds to f (ctx) the async function the await n calls (through
 * `timeout(d, fut)`), once. */
static bool add_callee(Node *n, void *ctx) {
    Func *f = ctx;
    if (n->kind != ND_AWAIT)
        return true;
    Node *e = n->lhs;
    while (e->builtin == BI_TIMEOUT && e->args.n == 2)
        e = e->args.v[1];
    bool known = !(e->kind == ND_CALL && e->fn && e->fn->is_async);
    for (int i = 0; !known && i < f->callees.n; i++)
        known = f->callees.v[i] == e->fn;
    if (!known)
        vec_push(&f->callees, e->fn);
    return true;
}

void lower_async_graph(Program *prog) {
    int n = prog->funcs.n;
    for (int i = 0; i < n; i++) {
        Func *f = prog->funcs.v[i];
        if (f->is_async)
            parse_walk(f->body, add_callee, f);
    }
    Tarjan t = {.prog = prog};
    t.index = arena_alloc(sizeof(int) * (size_t)(n + 1));
    t.low = arena_alloc(sizeof(int) * (size_t)(n + 1));
    t.on_stack = arena_alloc(sizeof(bool) * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        if (!t.index[i])
            strongconnect(&t, prog->funcs.v[i]);
}

bool lower_edge_boxed(const Func *caller, const Func *callee) {
    return caller->scc == callee->scc;
}

/* ------------------------------------------------------------ frames */

typedef uint64_t Word;

/* One statement of the control-flow graph. */
typedef struct CNode {
    Word *use, *def;            /* read / written (killed) here */
    Word *may;                  /* written here, wholly or in part */
    Word *live, *defined;       /* live-in; maybe defined at entry */
    int succ[2], nsucc;
    MAwait *aw;                 /* an await */
    bool reached;               /* on some path from the entry */
} CNode;

typedef struct Cfg {
    MFunc *mf;
    Vec nodes;                  /* CNode* */
    int words;
    Map labels;                 /* label -> 1 + node index */
    int brk, cont;              /* targets of break and continue */
    bool flat;                  /* a sync function: count reads, no graph */
    int open;                   /* a straight-line node only its block's
                                   next statement leads to, or -1 */
    CNode *scratch;             /* one statement's effects, to merge */
} Cfg;

static CNode *at(Cfg *g, int i) { return g->nodes.v[i]; }
static Word *bits(Cfg *g) { return arena_alloc(sizeof(Word) * (size_t)g->words); }
static void set_bit(Word *w, int i) { w[i / 64] |= (Word)1 << (i % 64); }
static bool has_bit(const Word *w, int i) { return w[i / 64] >> (i % 64) & 1; }

static int node(Cfg *g, int next) {
    if (g->flat && g->nodes.n) {        /* counting reads only: one node */
        at(g, 0)->nsucc = 0;
        return 0;
    }
    CNode *c = arena_alloc(sizeof *c);
    c->use = bits(g);
    c->def = bits(g);
    c->may = bits(g);
    c->live = bits(g);
    c->defined = bits(g);
    if (next >= 0)
        c->succ[c->nsucc++] = next;
    vec_push(&g->nodes, c);
    return g->nodes.n - 1;
}


/* &x passed to a callee that writes x: a whole local is killed; a
 * field of one is written in part (nothing read). */
static void out_target(CNode *c, const MExpr *x) {
    if (x->kind == MX_LOCAL)
        set_bit(c->def, x->local->id);
    while (x->kind == MX_FIELD && !x->arrow)
        x = x->a[0];
    if (x->kind == MX_LOCAL)
        set_bit(c->may, x->local->id);
}

/* Records the reads in e (and counts them). */
static void uses(Cfg *g, CNode *c, const MExpr *e) {
    if (!e)
        return;
    if (e->kind == MX_LOCAL) {
        set_bit(c->use, e->local->id);
        e->local->reads++;
        return;
    }
    if (e->kind == MX_ADDR && e->out) {     /* the callee writes it, reads nothing */
        out_target(c, e->a[0]);
        return;
    }
    if (e->kind == MX_ADDR) {               /* the callee may read it, or write it */
        const MExpr *x = e->a[0];
        while (x->kind == MX_FIELD && !x->arrow)
            x = x->a[0];
        if (x->kind == MX_LOCAL)
            set_bit(c->may, x->local->id);
    }
    for (int i = 0; i < e->n; i++)
        uses(g, c, e->a[i]);
}

/* An assignment to dst: a whole local is killed; a field of one is
 * written in part, which reads the rest. */
static void target(Cfg *g, CNode *c, const MExpr *dst) {
    if (dst->kind == MX_LOCAL) {
        set_bit(c->def, dst->local->id);
        set_bit(c->may, dst->local->id);
        return;
    }
    const MExpr *x = dst;
    while (x->kind == MX_FIELD && !x->arrow)
        x = x->a[0];
    if (x->kind != MX_LOCAL) {
        uses(g, c, x);
        return;
    }
    set_bit(c->may, x->local->id);
    set_bit(c->use, x->local->id);      /* not counted: C sees no read */
}

static int block_cfg(Cfg *g, const MBlock *b, int next);

static int label_node(Cfg *g, const char *label) {
    intptr_t i = (intptr_t)map_get(&g->labels, label);
    if (!i) {
        i = node(g, -1) + 1;
        map_put(&g->labels, label, (void *)i);
    }
    return (int)i - 1;
}

static int loop_cfg(Cfg *g, const MStmt *s, int next) {
    int head = node(g, -1);
    int step = block_cfg(g, &s->step, head);
    int brk = g->brk, cont = g->cont;
    g->brk = next;
    g->cont = step;
    int body = block_cfg(g, &s->body, step);
    g->brk = brk;
    g->cont = cont;
    CNode *h = at(g, head);
    uses(g, h, s->src);
    h->succ[h->nsucc++] = body;
    if (s->src)
        h->succ[h->nsucc++] = next;
    return head;
}

/* What the future of aw reads while it waits or is cancelled: the
 * locals it points into, what its undo releases, what a select's
 * branches hold; a timed one writes who won. */
static void future_uses(Cfg *g, CNode *c, const MAwait *aw) {
    for (int i = 0; i < aw->pinned.n; i++)
        set_bit(c->use, ((MLocal *)aw->pinned.v[i])->id);
    for (int i = 0; i < aw->undo.n; i++) {   /* the undo reads what it releases */
        const MStmt *u = aw->undo.v[i];
        uses(g, c, u->src);
        for (int k = 0; k < u->body.n; k++)
            uses(g, c, u->body.v[k]->dst);
    }
    for (int i = 0; i < aw->held.n; i++)
        uses(g, c, ((MOwned *)aw->held.v[i])->place);
    if (aw->expired)
        target(g, c, aw->expired);
    if (aw->mask)
        uses(g, c, aw->mask);
    for (int i = 0; i < aw->branches.n; i++)
        future_uses(g, c, aw->branches.v[i]);
}

/* An await (or select): a suspension point, whose drop releases what the
 * scopes own there. */
static void await_uses(Cfg *g, CNode *c, MAwait *aw) {
    c->aw = aw;
    for (int i = 0; i < aw->owned.n; i++) {
        uses(g, c, ((MOwned *)aw->owned.v[i])->place);
        uses(g, c, ((MOwned *)aw->owned.v[i])->live);
    }
    future_uses(g, c, aw);
}

/* Records what statement s reads and writes in c. */
static void effects(Cfg *g, CNode *c, const MStmt *s) {
    uses(g, c, s->src);
    for (int i = 0; i < s->nargs; i++)
        uses(g, c, s->args[i]);
    if (s->kind == MS_AWAIT || s->kind == MS_SELECT)
        await_uses(g, c, s->aw);
    if (s->kind == MS_CANCEL)
        future_uses(g, c, s->aw);
    if (s->kind == MS_RELEASE)
        uses(g, c, s->dst);
    else if (s->dst)
        target(g, c, s->dst);
}

static bool straight(const MStmt *s) {
    return s->kind == MS_ASSIGN || s->kind == MS_EVAL || s->kind == MS_ZERO ||
           s->kind == MS_RELEASE || s->kind == MS_SPAWN || s->kind == MS_BLOCK_ON;
}

/* A statement without control flow: prepended to the straight-line node
 * `next` when nothing else leads there (a basic block), else a node. */
static int straight_cfg(Cfg *g, const MStmt *s, int next) {
    if (g->flat || next < 0 || next != g->open) {
        int n = node(g, next);
        effects(g, at(g, n), s);
        g->open = n;
        return n;
    }
    CNode *t = g->scratch, *c = at(g, next);
    memset(t->use, 0, sizeof(Word) * (size_t)g->words * 3);
    effects(g, t, s);
    for (int w = 0; w < g->words; w++) {
        c->use[w] = t->use[w] | (c->use[w] & ~t->def[w]);
        c->def[w] |= t->def[w];
        c->may[w] |= t->may[w];
    }
    return next;
}

static int stmt_cfg(Cfg *g, const MStmt *s, int next) {
    int n;
    switch (s->kind) {
    case MS_LINE: return next;
    case MS_IF: {
        int then = block_cfg(g, &s->body, next), els = block_cfg(g, &s->els, next);
        n = node(g, then);
        at(g, n)->succ[at(g, n)->nsucc++] = els;
        uses(g, at(g, n), s->src);
        return n;
    }
    case MS_LOOP: return loop_cfg(g, s, next);
    case MS_BREAK: return node(g, g->brk);
    case MS_CONTINUE: return node(g, g->cont);
    case MS_GOTO: return node(g, label_node(g, s->text));
    case MS_LABEL:
        n = label_node(g, s->text);
        at(g, n)->succ[at(g, n)->nsucc++] = next;
        return n;
    case MS_RETURN: case MS_PANIC: n = node(g, -1); break;
    default: n = node(g, next); break;
    }
    effects(g, at(g, n), s);
    return n;
}

static int block_cfg(Cfg *g, const MBlock *b, int next) {
    g->open = -1;                       /* `next` may have other ways in */
    for (int i = b->n - 1; i >= 0; i--) {
        const MStmt *s = b->v[i];
        if (straight(s)) {
            next = straight_cfg(g, s, next);
        } else if (s->kind != MS_LINE) {
            next = stmt_cfg(g, s, next);
            g->open = -1;
        }
    }
    return next;
}

/* live-in = use | (live-out & ~def), to a fixed point. */
static void liveness(Cfg *g) {
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < g->nodes.n; i++) {
            CNode *c = at(g, i);
            for (int w = 0; w < g->words; w++) {
                Word out = 0;
                for (int k = 0; k < c->nsucc; k++)
                    out |= at(g, c->succ[k])->live[w];
                Word in = c->use[w] | (out & ~c->def[w]);
                changed |= in != c->live[w];
                c->live[w] = in;
            }
        }
    }
}

/* defined-in of a successor |= defined-in | may, from the entry; and
 * which nodes the entry reaches. */
static void maybe_defined(Cfg *g, int entry) {
    MFunc *mf = g->mf;
    if (entry < 0)
        return;
    at(g, entry)->reached = true;
    for (int i = 0; i < mf->locals.n; i++)
        if (((MLocal *)mf->locals.v[i])->param)
            set_bit(at(g, entry)->defined, i + 1);
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = g->nodes.n - 1; i >= 0; i--) {
            CNode *c = at(g, i);
            for (int k = 0; k < c->nsucc; k++) {
                CNode *s = at(g, c->succ[k]);
                changed |= c->reached && !s->reached;
                s->reached |= c->reached;
                for (int w = 0; w < g->words; w++) {
                    Word d = s->defined[w] | c->defined[w] | c->may[w];
                    changed |= d != s->defined[w];
                    s->defined[w] = d;
                }
            }
        }
    }
}

static void place(MFunc *mf) {
    Cfg g = {.mf = mf, .words = mf->locals.n / 64 + 1, .brk = -1, .cont = -1, .flat = !mf->async};
    g.scratch = arena_alloc(sizeof *g.scratch);
    g.scratch->use = arena_alloc(sizeof(Word) * (size_t)g.words * 3);
    g.scratch->def = g.scratch->use + g.words;
    g.scratch->may = g.scratch->def + g.words;
    int entry = block_cfg(&g, &mf->body, -1);
    if (!mf->async)
        return;
    liveness(&g);
    maybe_defined(&g, entry);
    for (int i = 0; i < mf->locals.n; i++) {
        MLocal *l = mf->locals.v[i];
        l->in_frame = l->param;
    }
    for (int i = 0; i < g.nodes.n; i++) {
        CNode *c = at(&g, i);
        if (!c->aw)
            continue;
        /* An await no path reaches (after a return or break) still has
         * its case in the drop function, which names what it reads: those
         * live there go in the frame, though nothing defines them. */
        for (int k = 0; k < mf->locals.n; k++)
            if (has_bit(c->live, k + 1) && (has_bit(c->defined, k + 1) || !c->reached))
                ((MLocal *)mf->locals.v[k])->in_frame = true;
    }
}

void lower_async_frames(MProgram *mp) {
    for (int i = 0; i < mp->funcs.n; i++)
        place(mp->funcs.v[i]);
}
