/* builtins.c - the builtin library as one table every pass reads.
 *
 * Takes nothing: it is data. One row per library function, associated
 * function (`Duration::from_millis`) and method (`rx.recv`): its TML
 * name, receiver kind or qualifier, arity, parameter and result types as
 * small type descriptors, whether it can wait, the runtime leaf it runs
 * on, and its BI_* id, which check stores in Node.builtin and lower.c
 * (lower_lib.c, lower_wait.c) switches on. Also here: the library's type
 * names (prims, generic handles, atomics), the library enums whose values
 * rt.h defines (Ordering, JoinError, NetErrorKind) with the C constants
 * they stand for, and the _Static_assert lines that tie the generated C
 * to rt.h.
 *
 * A type descriptor is TML type syntax over these names: the library's
 * types (`I64`, `Duration`, `Outcome[T, NetError]`, `(TcpStream,
 * SocketAddr)`, `()`), `Self` (the receiver, or the qualifier's type of an
 * associated function), `T` and `E` (Self's first and second type
 * arguments); any other name is a prelude type (NetError...) that check
 * looks up, since a program may redefine it. BI_ADDR is the one union.
 * A row whose hook types the whole call (BH_PRINT ... BH_MUTEX_NEW) is
 * typed by check.c's hook: its descriptors there only inform the reader
 * (T in spawn's result is the spawned function's).
 *
 * Adding a library method: one row here (plus its BI_ id in tmlc.h) and
 * its runtime function. A row flagged BF_CALL needs nothing else: it is
 * lowered to the call tml_<leaf>(receiver, arguments...). Otherwise
 * lower_lib.c or lower_wait.c has a case for the IR it becomes; a hook
 * (BH_*) only where the typing rule is not data.
 * Rejects nothing: a malformed descriptor is a compiler bug (abort). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "tmlc.h"

/* ------------------------------------------------------------- rows */

#define P0 {NULL}
#define P(...) {__VA_ARGS__}
/* a method of receiver kind R */
#define M(R, name_, id_, lo_, params_, result_, ...) \
    {.recv = R, .name = name_, .id = id_, .lo = lo_, .hi = lo_, .params = params_, \
     .result = result_, __VA_ARGS__}
/* a free function (qual NULL) or an associated function of `qual` */
#define F(qual_, name_, id_, lo_, hi_, params_, result_, ...) \
    {.qual = qual_, .recv = BI_FUNC, .name = name_, .id = id_, .lo = lo_, .hi = hi_, \
     .params = params_, .result = result_, __VA_ARGS__}

/* AtomicI64::new(v) ...: one row per atomic type */
#define ATOMIC_NEW(qual_) \
    F(qual_, "new", BI_ATOMIC_NEW, 1, 1, P("T"), "Self", .flags = BF_SHORT, .leaf = "atomic_new")

static const Builtin rows[] = {
    /* ---- free functions (any qualifier but a closed type's),
     * in the order name_hint offers them */
    F(NULL, "print", BI_PRINT, 1, 1, P0, "()", .hook = BH_PRINT),
    F(NULL, "println", BI_PRINTLN, 1, 1, P0, "()", .hook = BH_PRINT),
    F(NULL, "panic", BI_PANIC, 1, 1, P("Str"), "Never"),
    F(NULL, "assert", BI_ASSERT, 1, 2, P("Bool", "Str"), "()"),
    F(NULL, "assert_eq", BI_ASSERT_EQ, 2, 3, P0, "()", .hook = BH_ASSERT_CMP),
    F(NULL, "assert_ne", BI_ASSERT_NE, 2, 3, P0, "()", .hook = BH_ASSERT_CMP),
    F(NULL, "assert_true", BI_ASSERT, 2, 2, P("Bool", "Str"), "()"),
    F(NULL, "assert_false", BI_ASSERT_FALSE, 2, 2, P("Bool", "Str"), "()"),
    F(NULL, "spawn", BI_SPAWN, 1, 1, P0, "JoinHandle[T]", .hook = BH_SPAWN),
    F(NULL, "block_on", BI_BLOCK_ON, 1, 1, P0, "T", .hook = BH_SPAWN),
    F(NULL, "sleep", BI_SLEEP, 1, 1, P("Duration"), "()", .waits = true, .leaf = "sleep",
      .blocking = "sleep_blocking"),
    F(NULL, "channel", BI_CHANNEL, 0, 1, P("I64"), "(Sender[T], Receiver[T])",
      .hook = BH_CHANNEL, .leaf = "chan_new"),
    F(NULL, "yield_now", BI_YIELD, 0, 0, P0, "()", .waits = true, .leaf = "yield",
      .blocking = "yield_blocking", .flags = BF_NO_DROP),
    F(NULL, "runtime_metrics", BI_METRICS, 0, 0, P0, "RuntimeMetrics", .leaf = "metrics_total",
      .flags = BF_CALL),
    F(NULL, "timeout", BI_TIMEOUT, 2, 2, P0, "Outcome[T, TimeoutError]",
      .hook = BH_TIMEOUT, .waits = true, .leaf = "deadline"),
    F(NULL, "join", BI_JOIN_FUTURES, 2, 8, P0, "(T, ...)", .hook = BH_JOIN_FUTURES, .waits = true,
      .leaf = "select"),
    F(NULL, "race", BI_RACE, 2, 8, P0, "T", .hook = BH_JOIN_FUTURES, .waits = true,
      .leaf = "select"),
    F(NULL, "join_all", BI_JOIN_ALL, 1, 1, P("List[JoinHandle[T]]"), "List[Outcome[T, JoinError]]",
      .hook = BH_JOIN_ALL, .waits = true, .leaf = "join"),
    F(NULL, "sleep_until", BI_SLEEP_UNTIL, 1, 1, P("Instant"), "()", .waits = true,
      .leaf = "sleep", .blocking = "sleep_blocking"),
    F(NULL, "interval", BI_INTERVAL, 1, 1, P("Duration"), "Interval"),
    F(NULL, "drop", BI_DROP, 1, 1, P0, "()", .hook = BH_DROP, .flags = BF_BARE),
    F(NULL, "sleep_ms", BI_SLEEP_MS, 1, 1, P("I64"), "()", .blocking = "sleep_blocking"),
    F(NULL, "available_parallelism", BI_PARALLELISM, 0, 0, P0, "U32",
      .leaf = "available_parallelism", .flags = BF_CALL),
    F(NULL, "bounded_channel", BI_CHANNEL, 1, 1, P("I64"), "(Sender[T], Receiver[T])",
      .hook = BH_CHANNEL, .leaf = "chan_new"),
    F(NULL, "OsError", BI_JOIN_ERROR, 1, 1, P("I32"), "JoinError", .flags = BF_BARE,
      .leaf = "join_os_error"),
    F("JoinError", "OsError", BI_JOIN_ERROR, 1, 1, P("I32"), "JoinError",
      .flags = BF_SHORT, .leaf = "join_os_error"),
    /* ---- associated functions; a BF_CLOSED type has no others */
    F("Duration", "from_secs", BI_DUR_FROM_SECS, 1, 1, P("I64"), "Duration",
      .flags = BF_CLOSED | BF_SHORT, .leaf = "dur_from", .konst = 1),
    F("Duration", "from_millis", BI_DUR_FROM_MILLIS, 1, 1, P("I64"), "Duration",
      .flags = BF_CLOSED | BF_SHORT, .leaf = "dur_from", .konst = 1000),
    F("Duration", "from_micros", BI_DUR_FROM_MICROS, 1, 1, P("I64"), "Duration",
      .flags = BF_CLOSED | BF_SHORT, .leaf = "dur_from", .konst = 1000000),
    F("Duration", "from_nanos", BI_DUR_FROM_NANOS, 1, 1, P("I64"), "Duration",
      .flags = BF_CLOSED | BF_SHORT, .leaf = "dur_from", .konst = 1000000000),
    F("Duration", "new", BI_DUR_NEW, 2, 2, P("I64", "I32"), "Duration", .flags = BF_CLOSED,
      .leaf = "dur_new"),
    F("Instant", "now", BI_INSTANT_NOW, 0, 0, P0, "Instant", .leaf = "now_ns", .flags = BF_CALL),
    F("Arc", "new", BI_NONE, 1, 1, P0, "T", .hook = BH_ARC_NEW),
    ATOMIC_NEW("AtomicI64"), ATOMIC_NEW("AtomicI32"), ATOMIC_NEW("AtomicU64"),
    ATOMIC_NEW("AtomicBool"),
    F("List", "new", BI_LIST_NEW, 0, 1, P("I64"), "List[T]", .hook = BH_LIST_NEW,
      .leaf = "list_new"),
    F("Mutex", "new", BI_MUTEX_NEW, 1, 1, P("T"), "Mutex[T]", .hook = BH_MUTEX_NEW,
      .leaf = "mutex_new"),
    F("Semaphore", "new", BI_SEM_NEW, 1, 1, P("I64"), "Semaphore", .leaf = "sem_new",
      .flags = BF_CALL),
    F("Notify", "new", BI_NOTIFY_NEW, 0, 0, P0, "Notify", .leaf = "notify_new", .flags = BF_CALL),
    F("SocketAddr", "parse", BI_ADDR_PARSE, 1, 1, P("Str"), "Outcome[SocketAddr, NetError]",
      .flags = BF_CLOSED | BF_SHORT, .leaf = "sockaddr_parse"),
    F("TcpListener", "bind", BI_BIND, 1, 1, P(BI_ADDR), "Outcome[TcpListener, NetError]",
      .flags = BF_CLOSED | BF_SHORT, .leaf = "tcp_bind"),
    F("AsyncTcpListener", "bind", BI_BIND, 1, 1, P(BI_ADDR), "Outcome[TcpListener, NetError]",
      .flags = BF_CLOSED | BF_SHORT, .leaf = "tcp_bind"),
    F("TcpStream", "connect", BI_CONNECT, 1, 1, P(BI_ADDR), "Outcome[TcpStream, NetError]",
      .flags = BF_CLOSED | BF_SHORT, .waits = true, .leaf = "connect",
      .blocking = "tcp_connect_blocking"),
    F("AsyncTcpStream", "connect", BI_CONNECT, 1, 1, P(BI_ADDR), "Outcome[TcpStream, NetError]",
      .flags = BF_CLOSED | BF_SHORT, .waits = true, .leaf = "connect",
      .blocking = "tcp_connect_blocking"),
    F("Buffer", "new", BI_BUFFER_NEW, 1, 1, P("I64"), "Buffer", .flags = BF_CLOSED | BF_SHORT,
      .leaf = "buffer_new_at"),

    /* ---- methods */
    M(BI_PRINTABLE, "to_string", BI_TO_STRING, 0, P0, "Str"),
    M(TY_STR, "len", BI_STR_LEN, 0, P0, "I64"),
    M(TY_STR, "is_empty", BI_STR_IS_EMPTY, 0, P0, "Bool"),
    M(TY_MAYBE, "unwrap", BI_UNWRAP, 0, P0, "T"),
    M(TY_MAYBE, "expect", BI_EXPECT, 1, P("Str"), "T"),
    M(TY_MAYBE, "unwrap_or", BI_UNWRAP_OR, 1, P("T"), "T"),
    M(TY_MAYBE, "is_just", BI_IS_A, 0, P0, "Bool"),
    M(TY_MAYBE, "is_nothing", BI_IS_B, 0, P0, "Bool"),
    M(TY_OUTCOME, "unwrap", BI_UNWRAP, 0, P0, "T"),
    M(TY_OUTCOME, "expect", BI_EXPECT, 1, P("Str"), "T"),
    M(TY_OUTCOME, "unwrap_or", BI_UNWRAP_OR, 1, P("T"), "T"),
    M(TY_OUTCOME, "is_ok", BI_IS_A, 0, P0, "Bool"),
    M(TY_OUTCOME, "is_err", BI_IS_B, 0, P0, "Bool"),
    M(TY_OUTCOME, "unwrap_err", BI_UNWRAP_ERR, 0, P0, "E"),
    M(TY_OUTCOME, "ok", BI_OK, 0, P0, "Maybe[T]"),
    M(TY_OUTCOME, "err", BI_ERR, 0, P0, "Maybe[E]"),
    M(TY_JOIN, "join", BI_JOIN, 0, P0, "Outcome[T, JoinError]", .leaf = "join",
      .blocking = "join_blocking"),
    M(TY_JOIN, "is_finished", BI_IS_FINISHED, 0, P0, "Bool", .leaf = "join_is_finished",
      .flags = BF_CALL),
    M(TY_JOIN, "abort", BI_ABORT, 0, P0, "()", .leaf = "join_abort", .flags = BF_CALL),
    M(TY_SENDER, "send", BI_SEND, 1, P("T"), "Outcome[(), SendError[T]]", .waits = true,
      .leaf = "send", .blocking = "chan_send_blocking"),
    M(TY_SENDER, "close", BI_CLOSE, 0, P0, "()", .leaf = "chan_close", .flags = BF_CALL),
    M(TY_SENDER, "duplicate", BI_DUPLICATE, 0, P0, "Self"),
    M(TY_SENDER, "clone", BI_DUPLICATE, 0, P0, "Self"),
    M(TY_RECEIVER, "recv", BI_RECV, 0, P0, "Outcome[T, RecvError]", .waits = true,
      .leaf = "recv", .blocking = "chan_recv_blocking"),
    M(TY_RECEIVER, "try_recv", BI_TRY_RECV, 0, P0, "Outcome[T, TryRecvError]",
      .leaf = "chan_try_recv"),
    M(TY_RECEIVER, "recv_timeout", BI_RECV_TIMEOUT, 1, P("Duration"),
      "Outcome[T, RecvTimeoutError]", .waits = true, .leaf = "recv_timeout",
      .blocking = "chan_recv_timeout_blocking"),
    M(TY_RECEIVER, "len", BI_CHAN_LEN, 0, P0, "I64", .leaf = "chan_len", .flags = BF_CALL),
    M(TY_RECEIVER, "is_empty", BI_CHAN_IS_EMPTY, 0, P0, "Bool", .leaf = "chan_len"),
    M(TY_SENDER, "try_send", BI_TRY_SEND, 1, P("T"), "Outcome[(), SendError[T]]",
      .leaf = "chan_try_send"),
    M(TY_RECEIVER, "close", BI_CLOSE, 0, P0, "()", .leaf = "chan_close", .flags = BF_CALL),
    M(TY_DURATION, "as_secs", BI_DUR_AS_SECS, 0, P0, "I64", .leaf = "dur_as", .konst = 1),
    M(TY_DURATION, "as_millis", BI_DUR_AS_MILLIS, 0, P0, "I64", .leaf = "dur_as",
      .konst = 1000),
    M(TY_DURATION, "as_micros", BI_DUR_AS_MICROS, 0, P0, "I64", .leaf = "dur_as",
      .konst = 1000000),
    M(TY_DURATION, "as_nanos", BI_DUR_AS_NANOS, 0, P0, "I64", .leaf = "dur_as",
      .konst = 1000000000),
    M(TY_DURATION, "subsec_nanos", BI_DUR_SUBSEC_NANOS, 0, P0, "I32", .konst = 1),
    M(TY_DURATION, "subsec_millis", BI_DUR_SUBSEC_MILLIS, 0, P0, "I32", .konst = 1000000),
    M(TY_DURATION, "subsec_micros", BI_DUR_SUBSEC_MICROS, 0, P0, "I32", .konst = 1000),
    M(TY_DURATION, "is_zero", BI_DUR_IS_ZERO, 0, P0, "Bool"),
    M(TY_DURATION, "saturating_add", BI_DUR_SATURATING_ADD, 1, P("Duration"), "Duration",
      .leaf = "dur_saturate", .konst = 1),
    M(TY_DURATION, "saturating_sub", BI_DUR_SATURATING_SUB, 1, P("Duration"), "Duration",
      .leaf = "dur_saturate", .konst = -1),
    M(TY_DURATION, "checked_add", BI_DUR_CHECKED_ADD, 1, P("Duration"), "Maybe[Duration]",
      .leaf = "dur_checked", .konst = 1),
    M(TY_DURATION, "checked_sub", BI_DUR_CHECKED_SUB, 1, P("Duration"), "Maybe[Duration]",
      .leaf = "dur_checked", .konst = -1),
    M(TY_DURATION, "mul", BI_DUR_MUL, 1, P("I32"), "Duration", .leaf = "dur_scaled",
      .konst = 0),
    M(TY_DURATION, "div", BI_DUR_DIV, 1, P("I32"), "Duration", .leaf = "dur_scaled",
      .konst = 1),
    M(TY_DURATION, "debug_string", BI_DUR_DEBUG_STRING, 0, P0, "Str", .leaf = "dur_debug"),
    M(TY_INSTANT, "elapsed", BI_ELAPSED, 0, P0, "Duration", .leaf = "dur_between"),
    M(TY_INSTANT, "duration_since", BI_DURATION_SINCE, 1, P("Instant"), "Duration",
      .leaf = "dur_between"),
    M(TY_INSTANT, "as_nanos", BI_INSTANT_AS_NANOS, 0, P0, "I64"),
    M(TY_INTERVAL, "tick", BI_TICK, 0, P0, "Instant", .hook = BH_MUTABLE_RECV, .waits = true,
      .leaf = "sleep", .blocking = "sleep_blocking"),
    M(TY_MUTEX, "lock", BI_LOCK, 0, P0, "MutexGuard[T]", .waits = true, .leaf = "lock",
      .blocking = "mutex_lock_blocking"),
    M(TY_MUTEX, "try_lock", BI_TRY_LOCK, 0, P0, "Maybe[MutexGuard[T]]", .leaf = "mutex_try_lock"),
    M(TY_MUTEX, "is_locked", BI_IS_LOCKED, 0, P0, "Bool", .leaf = "mutex_is_locked",
      .flags = BF_CALL),
    M(TY_MUTEX, "into_inner", BI_INTO_INNER, 0, P0, "T", .leaf = "mutex_value"),
    /* typed as a guard so that `*` reads through it */
    M(TY_MUTEX, "get_mut", BI_MUTEX_GET_MUT, 0, P0, "MutexGuard[T]", .hook = BH_UNDER_STAR,
      .leaf = "mutex_value"),
    M(TY_SEND_ERROR, "into_inner", BI_SEND_INTO_INNER, 0, P0, "T"),
    M(TY_GUARD, "get", BI_GUARD_SELF, 0, P0, "Self"),
    M(TY_GUARD, "get_mut", BI_GUARD_SELF, 0, P0, "Self"),
    M(TY_GUARD, "deref", BI_GUARD_DEREF, 0, P0, "T", .leaf = "guard_value"),
    M(TY_SEMAPHORE, "acquire", BI_ACQUIRE, 0, P0, "()", .waits = true, .leaf = "acquire",
      .blocking = "sem_acquire_blocking"),
    M(TY_SEMAPHORE, "try_acquire", BI_TRY_ACQUIRE, 0, P0, "Bool", .leaf = "sem_try_acquire",
      .flags = BF_CALL),
    M(TY_SEMAPHORE, "release", BI_SEM_RELEASE, 0, P0, "()", .leaf = "sem_release",
      .flags = BF_CALL),
    M(TY_SEMAPHORE, "available_permits", BI_SEM_AVAILABLE, 0, P0, "I64", .leaf = "sem_available",
      .flags = BF_CALL),
    M(TY_NOTIFY, "notify_one", BI_NOTIFY_ONE, 0, P0, "()", .leaf = "notify_one", .flags = BF_CALL),
    M(TY_NOTIFY, "notify_all", BI_NOTIFY_ALL, 0, P0, "()", .leaf = "notify_all", .flags = BF_CALL),
    M(TY_NOTIFY, "notified", BI_NOTIFIED, 0, P0, "()", .waits = true, .leaf = "notified",
      .blocking = "notified_blocking"),
    M(TY_SOCKADDR, "port", BI_ADDR_PORT, 0, P0, "I64"),
    M(TY_LISTENER, "accept", BI_ACCEPT, 0, P0, "Outcome[(TcpStream, SocketAddr), NetError]",
      .waits = true, .leaf = "accept", .blocking = "tcp_accept_blocking"),
    M(TY_LISTENER, "local_addr", BI_LOCAL_ADDR, 0, P0, "Outcome[SocketAddr, NetError]",
      .leaf = "tcp_local_addr"),
    M(TY_LISTENER, "close", BI_TCP_CLOSE, 0, P0, "()", .leaf = "tcp_close", .flags = BF_CALL),
    M(TY_STREAM, "read", BI_READ, 1, P("Buffer"), "Outcome[I64, NetError]", .waits = true,
      .leaf = "read", .blocking = "tcp_read_blocking"),
    M(TY_STREAM, "write", BI_WRITE, 1, P("Buffer"), "Outcome[I64, NetError]", .waits = true,
      .leaf = "write", .blocking = "tcp_write_blocking"),
    M(TY_STREAM, "write_all", BI_WRITE_ALL, 1, P("Buffer"), "Outcome[(), NetError]",
      .waits = true, .leaf = "write_all", .blocking = "tcp_write_all_blocking"),
    M(TY_STREAM, "set_nodelay", BI_NODELAY, 1, P("Bool"), "Outcome[(), NetError]",
      .leaf = "tcp_set_nodelay"),
    M(TY_STREAM, "local_addr", BI_LOCAL_ADDR, 0, P0, "Outcome[SocketAddr, NetError]",
      .leaf = "tcp_local_addr"),
    M(TY_STREAM, "peer_addr", BI_PEER_ADDR, 0, P0, "Outcome[SocketAddr, NetError]",
      .leaf = "tcp_peer_addr"),
    M(TY_STREAM, "close", BI_TCP_CLOSE, 0, P0, "()", .leaf = "tcp_close", .flags = BF_CALL),
    M(TY_BUFFER, "len", BI_BUF_LEN, 0, P0, "I64", .leaf = "buffer_len", .flags = BF_CALL),
    M(TY_BUFFER, "capacity", BI_BUF_CAPACITY, 0, P0, "I64", .leaf = "buffer_capacity",
      .flags = BF_CALL),
    M(TY_BUFFER, "clear", BI_BUF_CLEAR, 0, P0, "()", .leaf = "buffer_clear", .flags = BF_CALL),
    M(TY_BUFFER, "write_byte", BI_BUF_WRITE_BYTE, 1, P("U8"), "()",
      .leaf = "buffer_write_byte_at"),
    M(TY_BUFFER, "read_byte", BI_BUF_READ_BYTE, 0, P0, "Maybe[U8]", .leaf = "buffer_read_byte"),
    M(TY_BUFFER, "write_str", BI_BUF_WRITE_STR, 1, P("Str"), "()", .leaf = "buffer_write_str_at"),
    M(TY_BUFFER, "is_empty", BI_BUF_IS_EMPTY, 0, P0, "Bool", .leaf = "buffer_len"),
    M(TY_LIST, "push", BI_LIST_PUSH, 1, P("T"), "()", .leaf = "list_push"),
    M(TY_LIST, "pop", BI_LIST_POP, 0, P0, "T", .leaf = "list_pop"),
    M(TY_LIST, "get", BI_LIST_GET, 1, P("I64"), "T", .leaf = "list_at"),
    M(TY_LIST, "set", BI_LIST_SET, 2, P("I64", "T"), "()", .leaf = "list_set"),
    M(TY_LIST, "len", BI_LIST_LEN, 0, P0, "I64", .leaf = "list_len"),
    M(TY_LIST, "is_empty", BI_LIST_IS_EMPTY, 0, P0, "Bool", .leaf = "list_len"),
    M(TY_LIST, "clear", BI_LIST_CLEAR, 0, P0, "()", .leaf = "list_clear"),
    M(TY_ATOMIC, "load", BI_ATOMIC_LOAD, 1, P("Ordering"), "T", .leaf = "atomic_load"),
    M(TY_ATOMIC, "store", BI_ATOMIC_STORE, 2, P("T", "Ordering"), "()", .leaf = "atomic_store"),
    M(TY_ATOMIC, "swap", BI_ATOMIC_SWAP, 2, P("T", "Ordering"), "T", .leaf = "atomic_swap"),
    M(TY_ATOMIC, "fetch_add", BI_ATOMIC_FETCH_ADD, 2, P("T", "Ordering"), "T",
      .hook = BH_INT_ATOMIC, .leaf = "atomic_fetch_add"),
    M(TY_ATOMIC, "fetch_sub", BI_ATOMIC_FETCH_SUB, 2, P("T", "Ordering"), "T",
      .hook = BH_INT_ATOMIC, .leaf = "atomic_fetch_sub"),
    M(TY_ATOMIC, "compare_exchange", BI_ATOMIC_CAS, 4, P("T", "T", "Ordering", "Ordering"),
      "Outcome[T, T]", .leaf = "atomic_compare_exchange"),
};
enum { NROWS = sizeof rows / sizeof rows[0] };

const Builtin *bi_row(int i) { return i < NROWS ? &rows[i] : NULL; }

const Builtin *bi_info(int id) {
    for (int i = 0; i < NROWS; i++)
        if ((int)rows[i].id == id)
            return &rows[i];
    return NULL;
}

static bool same_str(const char *a, const char *b) {
    return a && b ? !strcmp(a, b) : a == b;
}

void bi_check_table(void) {
    for (int i = 0; i < NROWS; i++) {
        const Builtin *b = &rows[i], *first = bi_info(b->id);
        bool whole_hook = b->hook != BH_NONE && b->hook < BH_MUTABLE_RECV;
        assert(b->lo >= 0 && b->lo <= b->hi && (whole_hook || b->hi <= 4));
        for (int k = 0; !whole_hook && k < b->hi; k++)
            assert(b->params[k]);       /* a descriptor per argument */
        assert(b->id == BI_NONE || (first->waits == b->waits && same_str(first->leaf, b->leaf) &&
                                    same_str(first->blocking, b->blocking) &&
                                    first->konst == b->konst));
        (void)first;
        (void)whole_hook;
    }
}

bool bi_leaf_drops(const char *leaf) {
    for (int i = 0; i < NROWS; i++)
        if (same_str(rows[i].leaf, leaf) && (rows[i].flags & BF_NO_DROP))
            return false;
    return true;
}

bool bi_waits(int id) {
    const Builtin *b = id ? bi_info(id) : NULL;
    return b && b->waits;
}

bool bi_has_to_string(const Type *t) {
    return t->kind <= TY_STR || t->kind == TY_DURATION || t->kind == TY_RECV_ERROR ||
           t->kind == TY_JOIN_ERROR || t->kind == TY_TIMEOUT_ERROR || t->kind == TY_BUFFER ||
           t->kind == TY_SOCKADDR || t->kind == TY_SEND_ERROR;
}

bool bi_receives(const Builtin *b, const Type *t) {
    if (b->recv == BI_FUNC)
        return false;
    return b->recv == BI_PRINTABLE ? bi_has_to_string(t) : b->recv == t->kind;
}

const Builtin *bi_function(const char *qual, const char *name) {
    for (int i = 0; i < NROWS; i++)     /* the qualifier's own functions */
        if (rows[i].recv == BI_FUNC && same_str(rows[i].qual, qual) && !strcmp(rows[i].name, name))
            return &rows[i];
    if (!qual || bi_closed(qual))
        return NULL;
    for (int i = 0; i < NROWS; i++)     /* free functions under any other qualifier */
        if (rows[i].recv == BI_FUNC && !rows[i].qual && !(rows[i].flags & BF_BARE) &&
            !strcmp(rows[i].name, name))
            return &rows[i];
    return NULL;
}

const Builtin *bi_method(TypeKind recv, const char *name) {
    for (int i = 0; i < NROWS; i++)
        if (rows[i].recv == recv && recv != BI_FUNC && !strcmp(rows[i].name, name))
            return &rows[i];
    return NULL;
}

bool bi_closed(const char *qual) {
    for (int i = 0; i < NROWS; i++)
        if (rows[i].qual && !strcmp(rows[i].qual, qual) && (rows[i].flags & BF_CLOSED))
            return true;
    return false;
}

/* ------------------------------------------------------------ types */

static const struct { const char *name; TypeKind kind; int n; } named[] = {
    {"Unit", TY_UNIT, 0}, {"Bool", TY_BOOL, 0}, {"I8", TY_I8, 0}, {"I16", TY_I16, 0},
    {"I32", TY_I32, 0}, {"I64", TY_I64, 0}, {"U8", TY_U8, 0}, {"U16", TY_U16, 0},
    {"U32", TY_U32, 0}, {"U64", TY_U64, 0}, {"F32", TY_F32, 0}, {"F64", TY_F64, 0},
    {"Char", TY_CHAR, 0}, {"Str", TY_STR, 0}, {"String", TY_STR, 0}, {"Never", TY_NEVER, 0},
    /* the library's types besides the primitives, atomics and Arc */
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
enum { NPRIMS = 16, NNAMED = sizeof named / sizeof named[0] };

static bool find_named(const char *name, int from, int to, TypeKind *kind, int *nargs) {
    for (int i = from; i < to; i++)
        if (!strcmp(name, named[i].name)) {
            *kind = named[i].kind;
            *nargs = named[i].n;
            return true;
        }
    return false;
}

bool bi_prim(const char *name, TypeKind *kind) {
    int n;
    return find_named(name, 0, NPRIMS, kind, &n);
}

bool bi_lib_type(const char *name, TypeKind *kind, int *nargs) {
    return find_named(name, NPRIMS, NNAMED, kind, nargs);
}

Type *bi_atomic_type(const char *name) {
    static const struct { const char *name; TypeKind value; } kinds[] = {
        {"AtomicI64", TY_I64}, {"AtomicI32", TY_I32}, {"AtomicU64", TY_U64},
        {"AtomicBool", TY_BOOL},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(name, kinds[i].name))
            return ty_make(TY_ATOMIC, ty_prim(kinds[i].value), NULL);
    return NULL;
}

typedef struct Desc {
    const char *s;              /* the rest of the descriptor */
    Type *self;
    BiPrelude prelude;
    void *ctx;
} Desc;

static void skip_space(Desc *d) {
    while (*d->s == ' ')
        d->s++;
}

static bool eat(Desc *d, char c) {
    skip_space(d);
    if (*d->s != c)
        return false;
    d->s++;
    return true;
}

static Type *desc_type(Desc *d);

/* Types separated by commas up to `close`, into v; their count. */
static int desc_list(Desc *d, char close, Vec *v) {
    if (eat(d, close))
        return 0;
    do
        vec_push(v, desc_type(d));
    while (eat(d, ','));
    if (!eat(d, close))
        abort();                /* a malformed row: a compiler bug */
    return v->n;
}

static Type *desc_named(Desc *d, const char *name, Vec *args) {
    Type *a = args->n > 0 ? args->v[0] : NULL, *b = args->n > 1 ? args->v[1] : NULL;
    TypeKind k;
    int n;
    if (!strcmp(name, "Self"))
        return d->self;
    if (!strcmp(name, "T"))
        return d->self->a;
    if (!strcmp(name, "E"))
        return d->self->b;
    if (bi_prim(name, &k))
        return ty_prim(k);
    if (bi_lib_type(name, &k, &n))
        return n ? ty_make(k, a, b) : ty_prim(k);
    if (bi_atomic_type(name))
        return bi_atomic_type(name);
    return d->prelude ? d->prelude(d->ctx, name) : NULL;
}

static Type *desc_type(Desc *d) {
    Vec args = {0};
    if (eat(d, '(')) {
        int n = desc_list(d, ')', &args);
        if (n == 0)
            return ty_prim(TY_UNIT);
        for (int i = 0; i < n; i++)
            if (!args.v[i])
                return NULL;
        return n == 1 ? args.v[0] : ty_tuple(&args);
    }
    skip_space(d);
    const char *start = d->s;
    while ((*d->s >= 'A' && *d->s <= 'Z') || (*d->s >= 'a' && *d->s <= 'z') ||
           (*d->s >= '0' && *d->s <= '9'))
        d->s++;
    if (d->s == start)
        abort();                /* a malformed row: a compiler bug */
    const char *name = arena_strndup(start, (size_t)(d->s - start));
    if (eat(d, '['))
        desc_list(d, ']', &args);
    for (int i = 0; i < args.n; i++)
        if (!args.v[i])
            return NULL;
    return desc_named(d, name, &args);
}

Type *bi_type(const char *desc, Type *self, BiPrelude prelude, void *ctx) {
    Desc d = {desc, self, prelude, ctx};
    return desc_type(&d);
}

/* --------------------------------------------- enums rt.h defines */

/* Ordering's variants, in the order of the TML_ORDER_* codes. */
static const char *orderings[][2] = {
    {"Relaxed", "TML_ORDER_RELAXED"}, {"Acquire", "TML_ORDER_ACQUIRE"},
    {"Release", "TML_ORDER_RELEASE"}, {"AcqRel", "TML_ORDER_ACQ_REL"},
    {"SeqCst", "TML_ORDER_SEQ_CST"},
};

/* JoinError's variants after the TML_JOIN_OK placeholder, and the
 * TML_JOIN_* codes the generated C spells for them. */
static const char *join_errors[][2] = {
    {"", "TML_JOIN_OK"}, {"AlreadyJoined", "TML_JOIN_ALREADY_JOINED"},
    {"OsError", "TML_JOIN_OS_ERROR"}, {"NoResult", "TML_JOIN_NO_RESULT"},
    {"Panicked", "TML_JOIN_PANICKED"}, {"Cancelled", "TML_JOIN_CANCELLED"},
};

/* The prelude's NetErrorKind variants and the TML_NET_* codes they are:
 * a nonzero status st becomes the NetErrorKind whose tag is st - 1. */
static const char *net_errors[][2] = {
    {"ConnectionRefused", "TML_NET_CONNECTION_REFUSED"},
    {"ConnectionReset", "TML_NET_CONNECTION_RESET"}, {"AddrInUse", "TML_NET_ADDR_IN_USE"},
    {"InvalidInput", "TML_NET_INVALID_INPUT"}, {"TimedOut", "TML_NET_TIMED_OUT"},
    {"Cancelled", "TML_NET_CANCELLED"}, {"Other", "TML_NET_OTHER"},
};

int bi_ordering(const char *name) {
    for (int i = 0; i < (int)(sizeof orderings / sizeof orderings[0]); i++)
        if (!strcmp(name, orderings[i][0]))
            return i;
    return -1;
}

const char *bi_ordering_name(int k) {
    return k >= 0 && k < (int)(sizeof orderings / sizeof orderings[0]) ? orderings[k][0] : NULL;
}

const char *bi_ordering_c(int k) {
    return orderings[k < 0 ? (int)(sizeof orderings / sizeof orderings[0]) - 1 : k][1];
}

int bi_join_error(const char *name) {
    for (int i = 1; i < (int)(sizeof join_errors / sizeof join_errors[0]); i++)
        if (!strcmp(name, join_errors[i][0]))
            return i;
    return 0;
}

const char *bi_join_error_c(int k) { return join_errors[k][1]; }

/* The prelude's NetErrorKind tags as TML_NET_* codes minus one: a line
 * per variant, or one that fails when the variant has no code. */
static void net_asserts(FILE *out, const Program *prog) {
    for (int i = 0; i < prog->structs.n; i++) {
        StructDecl *sd = prog->structs.v[i];
        if (strcmp(sd->name, "NetErrorKind") || !parse_is_prelude(&sd->loc))
            continue;
        for (int k = 0; k < sd->variants.n; k++) {
            const char *name = ((Variant *)sd->variants.v[k])->name, *code = NULL;
            for (size_t j = 0; j < sizeof net_errors / sizeof net_errors[0]; j++)
                if (!strcmp(name, net_errors[j][0]))
                    code = net_errors[j][1];
            if (code)
                fprintf(out, "_Static_assert(%s == %d, \"NetErrorKind::%s is %s - 1\");\n",
                        code, k + 1, name, code);
            else
                fprintf(out, "_Static_assert(0, \"NetErrorKind::%s has no TML_NET_ code\");\n",
                        name);
        }
    }
}

void bi_rt_asserts(FILE *out, const Program *prog) {
    fputs("/* what the compiler assumes of tml/rt.h */\n"
          "_Static_assert(TML_CHAN_OK == 0 && TML_NET_OK == 0 && TML_JOIN_OK == 0,\n"
          "               \"a zero status is success (Ok)\");\n", out);
    net_asserts(out, prog);
}
