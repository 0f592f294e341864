/* lower_test.c - Criterion twin of lower.c and lower_async.c: the IR an
 * async function lowers to, and which of its values live in the frame. */
#include "tmlc_test.h"
#include "mir.h"

/* The checked program of `text` lowered, with frame layout. */
static MProgram *tt_lower(const char *text) {
    Program *prog = tt_check(text);
    cr_assert_eq(diag_count(), 0, "%s", tt_diags);
    lower_async_graph(prog);
    MProgram *mp = lower(prog);
    lower_async_frames(mp);
    return mp;
}

static MFunc *mfunc(MProgram *mp, const char *name) {
    for (int i = 0; i < mp->funcs.n; i++) {
        MFunc *mf = mp->funcs.v[i];
        if (!strcmp(mf->f->name, name))
            return mf;
    }
    cr_assert_fail("no function %s", name);
    return NULL;
}

/* The local for TML variable `name` of mf. */
static MLocal *var_local(MFunc *mf, const char *name) {
    for (int i = 0; i < mf->locals.n; i++) {
        MLocal *l = mf->locals.v[i];
        if (l->var && !strcmp(l->var->name, name))
            return l;
    }
    cr_assert_fail("no local %s", name);
    return NULL;
}

static int frame_locals(MFunc *mf) {
    int n = 0;
    for (int i = 0; i < mf->locals.n; i++)
        n += ((MLocal *)mf->locals.v[i])->in_frame;
    return n;
}

Test(lower, a_value_dead_across_every_await_is_a_c_local) {
    MFunc *mf = mfunc(tt_lower("async func f(x: I64) -> I64 {\n"
                               "    let a = x * 2\n"
                               "    println(\"{a}\")\n"
                               "    await sleep(Duration::from_millis(1))\n"
                               "    let b = x + 1\n"
                               "    b\n"
                               "}\n"
                               "async func main() { println(\"{await f(1)}\") }\n"),
                      "f");
    cr_assert_not(var_local(mf, "a")->in_frame);
    cr_assert_not(var_local(mf, "b")->in_frame);
    cr_assert(var_local(mf, "x")->in_frame, "parameters are stored by the caller");
    cr_assert_eq(frame_locals(mf), 1);
}

Test(lower, a_value_read_after_an_await_on_one_branch_only_is_in_the_frame) {
    MFunc *mf = mfunc(tt_lower("async func f(c: Bool) -> I64 {\n"
                               "    let a = 40 + 2\n"
                               "    await sleep(Duration::from_millis(1))\n"
                               "    if c { a } else { 0 }\n"
                               "}\n"
                               "async func main() { println(\"{await f(true)}\") }\n"),
                      "f");
    cr_assert(var_local(mf, "a")->in_frame);
}

Test(lower, a_value_written_again_before_any_read_is_dead_across_the_await) {
    MFunc *mf = mfunc(tt_lower("async func f() -> I64 {\n"
                               "    var a = 1\n"
                               "    println(\"{a}\")\n"
                               "    await sleep(Duration::from_millis(1))\n"
                               "    a = 2\n"
                               "    a\n"
                               "}\n"
                               "async func main() { println(\"{await f()}\") }\n"),
                      "f");
    cr_assert_not(var_local(mf, "a")->in_frame);
}

Test(lower, a_loop_carries_a_value_around_its_await) {
    MFunc *mf = mfunc(tt_lower("async func f() -> I64 {\n"
                               "    var i = 0\n"
                               "    while i < 3 {\n"
                               "        await sleep(Duration::from_millis(1))\n"
                               "        i = i + 1\n"
                               "    }\n"
                               "    0\n"
                               "}\n"
                               "async func main() { println(\"{await f()}\") }\n"),
                      "f");
    cr_assert(var_local(mf, "i")->in_frame, "read at the next test of the loop");
}

Test(lower, a_value_the_scope_owns_at_an_await_is_in_its_drop_and_the_frame) {
    MFunc *mf = mfunc(tt_lower("async func f(n: I64) {\n"
                               "    let s = \"n = {n}\"\n"
                               "    await sleep(Duration::from_millis(1))\n"
                               "}\n"
                               "async func main() { await f(1) }\n"),
                      "f");
    MLocal *s = var_local(mf, "s");
    cr_assert(s->in_frame, "its release at the end of the scope reads it");
    cr_assert_eq(mf->awaits.n, 1);
    MAwait *aw = mf->awaits.v[0];
    cr_assert_eq(aw->owned.n, 1, "a drop while suspended releases s");
    MOwned *o = aw->owned.v[0];
    cr_assert_eq(o->place->kind, MX_LOCAL);
    cr_assert_eq(o->place->local, s);
    cr_assert_str_eq(aw->leaf, "sleep");
}

Test(lower, the_slot_a_recv_writes_into_lives_in_the_frame) {
    MFunc *mf = mfunc(tt_lower("async func main() {\n"
                               "    let (tx, rx) = channel[I64](1)\n"
                               "    (await tx.send(5)).unwrap()\n"
                               "    let v = (await rx.recv()).unwrap()\n"
                               "    println(\"{v}\")\n"
                               "}\n"),
                      "main");
    cr_assert_eq(mf->awaits.n, 2);
    MAwait *recv = mf->awaits.v[1];
    cr_assert_str_eq(recv->leaf, "recv");
    cr_assert_eq(recv->pinned.n, 1);
    cr_assert(((MLocal *)recv->pinned.v[0])->in_frame, "the future points into it");
    cr_assert_not(var_local(mf, "v")->in_frame, "bound after the last await");
}

Test(lower, awaits_are_numbered_in_order_and_callee_frames_are_inline) {
    MFunc *mf = mfunc(tt_lower("async func g(x: I64) -> I64 { x }\n"
                               "async func main() {\n"
                               "    let a = await g(1)\n"
                               "    let b = await g(a)\n"
                               "    println(\"{b}\")\n"
                               "}\n"),
                      "main");
    cr_assert_eq(mf->awaits.n, 2);
    for (int i = 0; i < 2; i++) {
        MAwait *aw = mf->awaits.v[i];
        cr_assert_eq(aw->id, i);
        cr_assert_str_eq(aw->callee->name, "g");
        cr_assert_not(aw->boxed);
    }
}

Test(lower, an_operands_await_is_numbered_first_and_callees_are_recorded_once) {
    MProgram *mp = tt_lower("async func a() -> I64 { 1 }\n"
                            "async func b(x: I64) -> I64 { x }\n"
                            "async func main() {\n"
                            "    let x = await a()\n"
                            "    let y = await b(await a())\n"
                            "    let r = await timeout(Duration::from_millis(5), b(x + y))\n"
                            "    println(\"{r.is_ok()}\")\n"
                            "}\n");
    MFunc *mf = mfunc(mp, "main");
    Program *prog = mp->prog;
    cr_assert_eq(mf->awaits.n, 4);
    for (int i = 0; i < mf->awaits.n; i++)
        cr_assert_eq(((MAwait *)mf->awaits.v[i])->id, i);
    cr_assert_eq(tt_find(prog, "main", ND_AWAIT, 1)->await_id, 2, "b(...) waits for its argument");
    cr_assert_eq(tt_find(prog, "main", ND_AWAIT, 2)->await_id, 1);
    Func *m = mf->f;
    cr_assert_eq(m->callees.n, 2, "a and b, once each, b also under timeout");
    cr_assert_eq(m->callees.v[0], tt_func(prog, "a"));
    cr_assert_eq(m->callees.v[1], tt_func(prog, "b"));
    cr_assert_not_null(((MAwait *)mf->awaits.v[3])->expired);
    cr_assert_eq(((MAwait *)mf->awaits.v[3])->callee, tt_func(prog, "b"));
}

Test(lower, a_recursion_edge_boxes_the_callee_frame) {
    MFunc *mf = mfunc(tt_lower("async func fib(n: I64) -> I64 {\n"
                               "    if n < 2 { return n }\n"
                               "    (await fib(n - 1)) + (await fib(n - 2))\n"
                               "}\n"
                               "async func main() { println(\"{await fib(10)}\") }\n"),
                      "fib");
    cr_assert_eq(mf->awaits.n, 2);
    cr_assert(((MAwait *)mf->awaits.v[0])->boxed);
    cr_assert(((MAwait *)mf->awaits.v[1])->boxed);
}

Test(lower, a_timed_await_records_who_won) {
    MFunc *mf = mfunc(tt_lower("async func main() {\n"
                               "    let r = await timeout(Duration::from_millis(5),\n"
                               "                          sleep(Duration::from_millis(1)))\n"
                               "    println(\"{r.is_ok()}\")\n"
                               "}\n"),
                      "main");
    MAwait *aw = mf->awaits.v[0];
    cr_assert_not_null(aw->expired);
    cr_assert(aw->expired->local->in_frame == false, "written when the poll resumes");
}

Test(lower, a_sync_local_nothing_reads_counts_no_reads) {
    MFunc *mf = mfunc(tt_lower("func f() -> I64 {\n"
                               "    let unused = 5\n"
                               "    let used = 6\n"
                               "    used\n"
                               "}\n"
                               "async func main() { println(\"{f()}\") }\n"),
                      "f");
    cr_assert_eq(var_local(mf, "unused")->reads, 0);
    cr_assert_gt(var_local(mf, "used")->reads, 0);
    cr_assert_not(mf->async);
}

Test(lower, emit_mir_prints_frame_layout_and_states) {
    MProgram *mp = tt_lower("async func f(n: I64) {\n"
                            "    let s = \"n = {n}\"\n"
                            "    await sleep(Duration::from_millis(1))\n"
                            "}\n"
                            "async func main() { await f(1) }\n");
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    mir_print(mp, out);
    fclose(out);
    cr_assert(strstr(text, "async func f -> Unit"), "%s", text);
    cr_assert(strstr(text, "param n_"), "%s", text);
    cr_assert(strstr(text, ": Str  [frame]"), "%s", text);
    cr_assert(strstr(text, "1: after await 0 on sleep; drop: the future, then s_"), "%s", text);
    cr_assert(strstr(text, "await 0 (state 1): sleep"), "%s", text);
    free(text);
}
