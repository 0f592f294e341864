/* lower_async.c - the async call graph: which callee frames are inline.
 *
 * Takes the checked Program (Func.callees lists the async functions each
 * async function awaits). An awaited callee's frame is embedded by value
 * in the caller's `aw` union (DESIGN.md section 3), so a task is one
 * allocation. That is impossible on a cycle (async recursion: the frame
 * would contain itself), so the call edges inside one strongly connected
 * component are boxed: the callee frame is heap-allocated for the
 * duration of that await. Produces Func.scc and Func.order: frames are
 * emitted in increasing `order`, which puts every inline-embedded frame
 * before its embedder. Algorithm: Tarjan, "Depth-first search and linear
 * graph algorithms" (1972); Tarjan emits SCCs in reverse topological
 * order, i.e. callees first, which is exactly the emission order. */
#include "tmlc.h"

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

void lower_async(Program *prog) {
    int n = prog->funcs.n;
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
