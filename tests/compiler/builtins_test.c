/* builtins_test.c - compiler/builtins.c: the table's invariants, which
 * qualifier finds which function, the type descriptors, the library enums
 * rt.h defines, and check typing calls from the rows. */
#include <stdlib.h>

#include "tmlc_test.h"

static Type *I(TypeKind k) { return ty_prim(k); }

static Type *prelude_none(void *ctx, const char *name) {
    (void)ctx;
    (void)name;
    return NULL;
}

static Type *prelude_unit(void *ctx, const char *name) {
    *(const char **)ctx = name;
    return I(TY_UNIT);
}

Test(builtins, table_invariants_hold) {
    bi_check_table();           /* asserts: a descriptor per argument, rows of one id agree */
    for (int i = 0; bi_row(i); i++) {
        const Builtin *b = bi_row(i);
        cr_assert(b->name && b->result, "row %d", i);
        cr_assert(!(b->flags & BF_CALL) || b->leaf, "BF_CALL row '%s' has no leaf", b->name);
        cr_assert(!b->waits || b->leaf, "wait-capable '%s' has no leaf", b->name);
    }
}

Test(builtins, every_library_id_has_a_row) {
    for (int id = BI_PRINT; id <= BI_ATOMIC_CAS; id++) {
        if (id == BI_ENUM_CTOR || id == BI_VARIANT || id == BI_ORDERING)
            continue;           /* values of enums, not functions */
        cr_assert_not_null(bi_info(id), "BI id %d has no row", id);
        cr_assert_eq((int)bi_info(id)->id, id);
    }
}

Test(builtins, qualifiers_pick_the_function) {
    cr_assert_eq(bi_function(NULL, "sleep")->id, BI_SLEEP);
    cr_assert_eq(bi_function("thread", "sleep")->id, BI_SLEEP);   /* any other qualifier */
    cr_assert_null(bi_function("Duration", "sleep"));              /* a closed type */
    cr_assert_eq(bi_function("Duration", "from_millis")->id, BI_DUR_FROM_MILLIS);
    cr_assert_eq(bi_function("Duration", "from_millis")->konst, 1000);
    cr_assert_null(bi_function("Foo", "drop"));                    /* bare only */
    cr_assert_eq(bi_function(NULL, "drop")->id, BI_DROP);
    cr_assert_eq(bi_function("JoinError", "OsError")->id, BI_JOIN_ERROR);
    cr_assert_null(bi_function(NULL, "now"));                      /* Instant::now only */
    cr_assert(bi_closed("TcpStream") && !bi_closed("Mutex"));
}

Test(builtins, methods_by_receiver) {
    cr_assert_eq(bi_method(TY_RECEIVER, "is_empty")->id, BI_CHAN_IS_EMPTY);
    cr_assert_eq(bi_method(TY_LIST, "is_empty")->id, BI_LIST_IS_EMPTY);
    cr_assert_eq(bi_method(TY_NOTIFY, "notify_all")->id, BI_NOTIFY_ALL);
    cr_assert_null(bi_method(TY_LIST, "recv"));
    cr_assert_null(bi_method(BI_FUNC, "sleep"));                   /* functions are no methods */
    cr_assert(bi_waits(BI_RECV) && bi_waits(BI_SLEEP_UNTIL) && bi_waits(BI_CONNECT));
    cr_assert(!bi_waits(BI_TRY_RECV) && !bi_waits(BI_NONE));
    cr_assert_str_eq(bi_info(BI_RECV)->leaf, "recv");
    cr_assert(bi_leaf_drops("recv") && bi_leaf_drops("sleep") && !bi_leaf_drops("yield"));
    cr_assert_str_eq(bi_info(BI_RECV)->blocking, "chan_recv_blocking");
}

Test(builtins, descriptors_build_types) {
    Type *mutex = ty_make(TY_MUTEX, I(TY_I64), NULL);
    Type *guard = bi_type("Maybe[MutexGuard[T]]", mutex, NULL, NULL);
    cr_assert_eq(guard, ty_make(TY_MAYBE, ty_make(TY_GUARD, I(TY_I64), NULL), NULL));
    Type *outcome = ty_make(TY_OUTCOME, I(TY_STR), I(TY_BOOL));
    cr_assert_eq(bi_type("Maybe[E]", outcome, NULL, NULL), ty_make(TY_MAYBE, I(TY_BOOL), NULL));
    cr_assert_eq(bi_type("Self", outcome, NULL, NULL), outcome);
    cr_assert_eq(bi_type("()", NULL, NULL, NULL), I(TY_UNIT));
    cr_assert_eq(bi_type("AtomicBool", NULL, NULL, NULL), ty_make(TY_ATOMIC, I(TY_BOOL), NULL));
    const char *asked = NULL;   /* a prelude type goes through the callback */
    Type *accept = bi_type("Outcome[(TcpStream, SocketAddr), NetError]", NULL, prelude_unit, &asked);
    cr_assert_str_eq(asked, "NetError");
    cr_assert_eq(accept->kind, TY_OUTCOME);
    cr_assert_eq(accept->a->kind, TY_TUPLE);
    cr_assert_eq(accept->a->elems.v[1], I(TY_SOCKADDR));
    cr_assert_null(bi_type("Outcome[I64, NetError]", NULL, prelude_none, NULL));
    cr_assert_null(bi_type("Outcome[I64, NetError]", NULL, NULL, NULL));
}

Test(builtins, enums_rt_h_defines_are_spelled_by_name) {
    cr_assert_str_eq(bi_join_error_c(bi_join_error("OsError")), "TML_JOIN_OS_ERROR");
    cr_assert_str_eq(bi_join_error_c(bi_join_error("Panicked")), "TML_JOIN_PANICKED");
    cr_assert_eq(bi_join_error("Ok"), 0);
    cr_assert_str_eq(bi_ordering_c(bi_ordering("AcqRel")), "TML_ORDER_ACQ_REL");
    cr_assert_str_eq(bi_ordering_c(-1), "TML_ORDER_SEQ_CST");
    cr_assert_eq(bi_ordering("Weak"), -1);
    cr_assert_null(bi_ordering_name(5));
}

Test(builtins, check_types_calls_from_the_rows) {
    Program *prog = tt_check("func main() {\n"
                             "    let d = Duration::from_millis(5).checked_sub(Duration::from_secs(1))\n"
                             "    let b = Buffer::new(8)\n"
                             "    b.write_byte(1)\n"
                             "    let n = Notify::new()\n"
                             "    n.notify_all()\n"
                             "}\n");
    tt_assert_errors(0);
    Node *sub = tt_find(prog, "main", ND_METHOD, 0);
    cr_assert_eq(sub->builtin, BI_DUR_CHECKED_SUB);
    cr_assert_eq(sub->ty, ty_make(TY_MAYBE, I(TY_DURATION), NULL));
    cr_assert_eq(tt_find(prog, "main", ND_METHOD, 2)->builtin, BI_NOTIFY_ALL);
}

Test(builtins, check_reports_from_the_rows) {
    tt_check("func main() {\n"
             "    let b = Buffer::new(8)\n"
             "    b.write_str(1)\n"
             "    let d = Duration::from_secs(1, 2)\n"
             "}\n");
    tt_assert_errors(2, "t.tml:3:17: error: type mismatch: expected Str, found I64",
                     "t.tml:4:13: error: 'from_secs' takes 1 argument but 2 were given");
}
