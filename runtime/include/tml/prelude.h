/* tml/prelude.h - the C helpers every program `tml` generates may call.
 *
 * Generated C includes this header (which includes tml/rt.h) and nothing
 * else. It holds what is spelled once for every program: numeric `as`
 * conversions, wrapping and checked integer operators, MutexGuard words,
 * JoinError words, Duration/Instant arithmetic and the assert_* failure.
 * Nothing in it depends on the program; what does (types, literals, the
 * RuntimeMetrics sum) compiler/emit_c.c writes after the include.
 *
 * Contract with the including file: it must define, BEFORE the #include,
 *
 *     static const char tml_file[] = "path/of/prog.tml";
 *
 * the .tml path the panicking helpers (those taking `line, col`) pass to
 * tml_panic_at, so a panic reads `prog.tml:LINE:COL: ...`. Every helper
 * is `static inline` and marked unused: a program that calls none of them
 * compiles warning-free under gcc and clang -Wall -Wextra, and pays
 * nothing for them.
 *
 * Units: Instant and the runtime's waits are I64 nanoseconds on
 * CLOCK_MONOTONIC (tml/rt.h); `line, col` are 1-based positions in
 * tml_file. Threads: every helper is safe on any thread (none keeps
 * state; the JoinError strings are immutable literals). */
#ifndef TML_PRELUDE_H
#define TML_PRELUDE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tml/rt.h"

/* A helper every program may use; an unused one costs nothing. Generated
 * code marks its own per-function helpers (drop functions) with it too. */
#define TML_HELPER static inline __attribute__((unused))

/* ------------------------------------------------- float -> integer `as` */

/* tml_f2i_<i8..u64>(x): TML `x as I8` ... `x as U64` for an F64 (or
 * widened F32) `x`. Saturating, as Rust's `as`: below the type's range
 * gives its MIN, above gives its MAX, NaN gives 0; never panics. The
 * bounds lo/hi are exact doubles (-2^(N-1) and 2^(N-1), or 0 and 2^N), so
 * the comparisons are exact. */
#define TML_F2I(sfx, T, lo, hi, min, max)                                   \
    TML_HELPER T tml_f2i_##sfx(double x) {                                  \
        return x != x ? 0 : x <= lo ? min : x >= hi ? max : (T)x;           \
    }
TML_F2I(i8, int8_t, -128.0, 128.0, INT8_MIN, INT8_MAX)
TML_F2I(i16, int16_t, -32768.0, 32768.0, INT16_MIN, INT16_MAX)
TML_F2I(i32, int32_t, -2147483648.0, 2147483648.0, INT32_MIN, INT32_MAX)
TML_F2I(i64, int64_t, -9223372036854775808.0, 9223372036854775808.0, INT64_MIN, INT64_MAX)
TML_F2I(u8, uint8_t, 0.0, 256.0, 0, UINT8_MAX)
TML_F2I(u16, uint16_t, 0.0, 65536.0, 0, UINT16_MAX)
TML_F2I(u32, uint32_t, 0.0, 4294967296.0, 0, UINT32_MAX)
TML_F2I(u64, uint64_t, 0.0, 18446744073709551616.0, 0, UINT64_MAX)

/* ------------------------------------------------- library value types */

/* Unit is one byte, so it can sit in a struct, a channel or a JoinHandle. */
typedef uint8_t tml_unit;
/* Duration: secs * 10^9 + nanos nanoseconds, 0 <= nanos < 10^9. */
typedef struct tml_Duration { int64_t secs; int32_t nanos; } tml_Duration;
/* Instant: I64 nanoseconds on CLOCK_MONOTONIC (tml_now_ns). */
typedef int64_t tml_Instant;
/* RecvError, TimeoutError: one-value error types, carried as a byte. */
typedef uint8_t tml_RecvError;
typedef uint8_t tml_TimeoutError;
/* Interval: the next tick and the period, I64 nanoseconds. */
typedef struct tml_Interval { int64_t next_ns, period_ns; } tml_Interval;
/* The empty Str, a static literal (never counted). */
static __attribute__((unused)) tml_str tml_lit_empty = TML_STR_LIT("");

/* ------------------------------------------------------------ MutexGuard */

/* A MutexGuard is a tml_mutex word: the mutex, NULL once dropped or moved.
 * Bit 0 set: the guard holds a reference to the mutex; clear: it borrows
 * one from an immutable variable that outlives it (lock()), and takes a
 * reference when it is moved out of its variable (tml_guard_take). */
#define TML_GUARD_MUTEX(g) ((tml_mutex *)((uintptr_t)(g) & ~(uintptr_t)1))

/* A guard word owning a new reference to `m` (borrowed, locked). */
TML_HELPER tml_mutex *tml_guard_owning(tml_mutex *m) {
    tml_mutex_retain(m);
    return (tml_mutex *)((uintptr_t)m | 1);
}

/* The guarded value (borrowed). Panics at line:col when `g` was dropped
 * or moved (NULL). */
TML_HELPER void *tml_guard_value(tml_mutex *g, int line, int col) {
    if (!g)
        tml_panic_at(tml_file, line, col, "use of a MutexGuard after it was dropped or moved");
    return tml_mutex_value(TML_GUARD_MUTEX(g));
}

/* Moves the guard out of *g (left NULL); the result owns its reference. */
TML_HELPER tml_mutex *tml_guard_take(tml_mutex **g) {
    tml_mutex *m = *g;
    *g = NULL;
    return m && !((uintptr_t)m & 1) ? tml_guard_owning(m) : m;
}

/* Drops the guard in *g (left NULL): unlocks, releases an owned reference.
 * A NULL *g (already dropped or moved) is a no-op. */
TML_HELPER void tml_guard_release(tml_mutex **g) {
    tml_mutex *m = *g;
    *g = NULL;
    if (m) {
        tml_mutex_unlock(TML_GUARD_MUTEX(m));
        if ((uintptr_t)m & 1)
            tml_mutex_release(TML_GUARD_MUTEX(m));
    }
}

/* ------------------------------------------------------------- JoinError */

/* A JoinError: its TML_JOIN_* code in the low 32 bits, and OsError's I32
 * in the high 32 bits. */
typedef int64_t tml_JoinError;

TML_HELPER tml_JoinError tml_join_os_error(int32_t code) {
    return (tml_JoinError)((uint64_t)(uint32_t)code << 32 | TML_JOIN_OS_ERROR);
}
TML_HELPER int32_t tml_join_tag(tml_JoinError e) { return (int32_t)(uint32_t)e; }
TML_HELPER int32_t tml_join_os_code(tml_JoinError e) {
    return (int32_t)((uint64_t)e >> 32);
}

/* e.to_string(): a static literal (never counted); an unknown tag reads
 * as "no error". */
_Static_assert(TML_JOIN_OK == 0 && TML_JOIN_ALREADY_JOINED == 1 && TML_JOIN_OS_ERROR == 2 &&
                   TML_JOIN_NO_RESULT == 3 && TML_JOIN_PANICKED == 4 && TML_JOIN_CANCELLED == 5,
               "tml_join_error_string's s[] is indexed by TML_JOIN_* code");
TML_HELPER tml_str *tml_join_error_string(tml_JoinError e) {
    static tml_str s[] = {TML_STR_LIT("no error"), TML_STR_LIT("task was already joined"),
                          TML_STR_LIT("task failed with an OS error"),
                          TML_STR_LIT("task produced no result"), TML_STR_LIT("task panicked"),
                          TML_STR_LIT("task was cancelled")};
    int32_t k = tml_join_tag(e);
    return &s[k >= 0 && k < (int32_t)(sizeof s / sizeof *s) ? k : 0];
}

/* ------------------------------------------------------ integer operators */

/* tml_<op>_<i8..u64> for the integer type T (UT: the unsigned type the
 * arithmetic runs in, at least 32 bits; S: signed; BITS: T's width).
 *   add, sub, mul, neg   wrap around (two's complement), never panic;
 *   shl, shr             shift by b mod BITS (shr is arithmetic for signed T);
 *   div, rem             panic "division by zero" at line:col when b == 0;
 *                        MIN / -1 wraps to MIN and MIN % -1 is 0. */
#define TML_INT_OPS(N, T, UT, S, BITS)                                              \
    TML_HELPER T tml_add_##N(T a, T b) { return (T)((UT)a + (UT)b); }               \
    TML_HELPER T tml_sub_##N(T a, T b) { return (T)((UT)a - (UT)b); }               \
    TML_HELPER T tml_mul_##N(T a, T b) { return (T)((UT)a * (UT)b); }               \
    TML_HELPER T tml_neg_##N(T a) { return (T)((UT)0 - (UT)a); }                    \
    TML_HELPER T tml_shl_##N(T a, T b) { return (T)((UT)a << (b & (BITS - 1))); }   \
    TML_HELPER T tml_shr_##N(T a, T b) { return (T)(a >> (b & (BITS - 1))); }       \
    TML_HELPER T tml_div_##N(T a, T b, int line, int col) {                         \
        if (b == 0)                                                                 \
            tml_panic_at(tml_file, line, col, "division by zero");                  \
        if (S && b == (T)-1)                                                        \
            return tml_neg_##N(a);                                                  \
        return a / b;                                                               \
    }                                                                               \
    TML_HELPER T tml_rem_##N(T a, T b, int line, int col) {                         \
        if (b == 0)                                                                 \
            tml_panic_at(tml_file, line, col, "division by zero");                  \
        if (S && b == (T)-1)                                                        \
            return 0;                                                               \
        return a % b;                                                               \
    }
TML_INT_OPS(i8, int8_t, uint32_t, 1, 8)
TML_INT_OPS(i16, int16_t, uint32_t, 1, 16)
TML_INT_OPS(i32, int32_t, uint32_t, 1, 32)
TML_INT_OPS(i64, int64_t, uint64_t, 1, 64)
TML_INT_OPS(u8, uint8_t, uint32_t, 0, 8)
TML_INT_OPS(u16, uint16_t, uint32_t, 0, 16)
TML_INT_OPS(u32, uint32_t, uint32_t, 0, 32)
TML_INT_OPS(u64, uint64_t, uint64_t, 0, 64)

/* --------------------------------------------------------- select! */

/* The branch a select! polls first, in [0, n): random per poll, as
 * Tokio's select! does, so that no branch starves (xorshift32, one
 * stream per thread; Marsaglia, "Xorshift RNGs", 2003). n > 0. */
TML_HELPER uint32_t tml_select_start(uint32_t n) {
    static __thread uint32_t s = 0x9E3779B9u;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s % n;
}

/* ------------------------------------------------------ Duration, Instant */

/* An exact 128-bit count (ns, ms, ...) clamped to I64. A wait of
 * INT64_MAX ns (~292 years) is "forever": the runtime saturates
 * now + duration there (tml_sleep_init), so a longer Duration waits
 * forever rather than wrapping to a short or negative wait. */
TML_HELPER int64_t tml_clamp_i64(__int128 v) {
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

/* a + b and a - b of I64 counts (ns), saturating at the I64 bounds: an
 * interval's next deadline, the wait until an Instant. */
TML_HELPER int64_t tml_sat_add_i64(int64_t a, int64_t b) { return tml_clamp_i64((__int128)a + b); }
TML_HELPER int64_t tml_sat_sub_i64(int64_t a, int64_t b) { return tml_clamp_i64((__int128)a - b); }

/* Duration::from_*: `v` units of which `per_sec` (1, 10^3, 10^6, 10^9)
 * make a second. Exact for every I64 `v` (|v / per_sec| fits secs), so
 * construction never wraps, saturates nor panics. */
TML_HELPER tml_Duration tml_dur_from(int64_t v, int64_t per_sec) {
    tml_Duration d = {v / per_sec, (int32_t)((v % per_sec) * (1000000000 / per_sec))};
    if (d.nanos < 0) {
        d.secs -= 1;
        d.nanos += 1000000000;
    }
    return d;
}

/* d.as_*: whole units (per_sec of them a second), clamped to I64. */
TML_HELPER int64_t tml_dur_as(tml_Duration d, int64_t per_sec) {
    return tml_clamp_i64((__int128)d.secs * per_sec + d.nanos / (1000000000 / per_sec));
}

/* The runtime's I64 nanoseconds (sleep, timeout, recv_timeout, interval),
 * clamped. */
TML_HELPER int64_t tml_dur_ns(tml_Duration d) { return tml_dur_as(d, 1000000000); }

/* Duration arithmetic runs in exact 128-bit nanoseconds. */
TML_HELPER __int128 tml_dur_total(tml_Duration d) {
    return (__int128)d.secs * 1000000000 + d.nanos;
}

/* The Duration of `ns` nanoseconds into *out; false (and *out untouched)
 * when its seconds do not fit I64. */
TML_HELPER bool tml_dur_of(__int128 ns, tml_Duration *out) {
    __int128 s = ns / 1000000000, r = ns % 1000000000;
    if (r < 0) {
        s -= 1;
        r += 1000000000;
    }
    if (s > INT64_MAX || s < INT64_MIN)
        return false;
    *out = (tml_Duration){(int64_t)s, (int32_t)r};
    return true;
}

/* a - b for Instants (I64 ns): exact, as |a - b| < 2^64 ns fits secs. */
TML_HELPER tml_Duration tml_dur_between(tml_Instant a, tml_Instant b) {
    tml_Duration d = {0, 0};
    tml_dur_of((__int128)a - b, &d);
    return d;
}

/* t + d (or t - d with `sub`). Past I64 it panics at line:col, as Rust's
 * Instant does. */
TML_HELPER tml_Instant tml_instant_shift(tml_Instant t, tml_Duration d, bool sub, int line,
                                         int col) {
    __int128 ns = sub ? (__int128)t - tml_dur_total(d) : (__int128)t + tml_dur_total(d);
    if (ns > INT64_MAX || ns < INT64_MIN)
        tml_panic_at(tml_file, line, col,
                     sub ? "overflow when subtracting duration from instant"
                         : "overflow when adding duration to instant");
    return (tml_Instant)ns;
}

/* Duration::new(s, ns); `ns` may be any I32 (it carries into secs).
 * Panics at line:col when the seconds overflow I64. */
TML_HELPER tml_Duration tml_dur_new(int64_t s, int32_t ns, int line, int col) {
    tml_Duration d;
    if (!tml_dur_of((__int128)s * 1000000000 + ns, &d))
        tml_panic_at(tml_file, line, col, "overflow in Duration::new");
    return d;
}

/* checked_*: false when the result leaves [0, max] (Durations are never
 * negative). */
TML_HELPER bool tml_dur_checked(__int128 ns, tml_Duration *out) {
    return ns >= 0 && tml_dur_of(ns, out);
}

/* saturating_*: clamped to [0, max]. */
TML_HELPER tml_Duration tml_dur_saturate(__int128 ns) {
    tml_Duration d;
    if (ns < 0)
        return (tml_Duration){0, 0};
    return tml_dur_of(ns, &d) ? d : (tml_Duration){INT64_MAX, 999999999};
}

/* d * k (or d / k with `div`). Panics at line:col on division by zero or
 * when the result leaves [0, max]. */
TML_HELPER tml_Duration tml_dur_scaled(tml_Duration d, int32_t k, bool div, int line, int col) {
    tml_Duration r;
    if (div && k == 0)
        tml_panic_at(tml_file, line, col, "divide by zero error when dividing duration by scalar");
    if (!tml_dur_checked(div ? tml_dur_total(d) / k : tml_dur_total(d) * k, &r))
        tml_panic_at(tml_file, line, col,
                     div ? "overflow when dividing duration by scalar"
                         : "overflow when multiplying duration by scalar");
    return r;
}

/* "{d:?}": `Duration(secs=S, nanos=N)`; a new Str (rc 1, caller owns). */
TML_HELPER tml_str *tml_dur_debug(tml_Duration d) {
    char b[80];
    snprintf(b, sizeof b, "Duration(secs=%lld, nanos=%d)", (long long)d.secs, (int)d.nanos);
    return tml_str_new(b, (int64_t)strlen(b));
}

/* d.to_string(), as Rust's Debug for Duration (LANG-DURATION-1): in the
 * largest of s, ms, µs and ns that leaves a nonzero integer part (ns for
 * zero), the rest as decimals with trailing zeros trimmed: `1.5s`, `5ms`,
 * `250µs`, `100ns`, `1.000000001s`, `0ns`; a negative Duration is its
 * magnitude after a `-`. A new Str (rc 1, caller owns). */
TML_HELPER tml_str *tml_dur_to_string(tml_Duration d) {
    int neg = d.secs < 0;
    uint64_t secs = neg ? 0 - (uint64_t)d.secs - (d.nanos > 0) : (uint64_t)d.secs;
    uint32_t nanos = neg && d.nanos ? 1000000000u - (uint32_t)d.nanos : (uint32_t)d.nanos;
    uint64_t whole = nanos;
    uint32_t frac = 0, div = 1;     /* frac < div * 10: the digits after the point */
    const char *unit = "ns";
    if (secs)
        whole = secs, frac = nanos, div = 100000000, unit = "s";
    else if (nanos >= 1000000)
        whole = nanos / 1000000, frac = nanos % 1000000, div = 100000, unit = "ms";
    else if (nanos >= 1000)
        whole = nanos / 1000, frac = nanos % 1000, div = 100, unit = "\xc2\xb5s";   /* µs */
    char b[64];
    int len = snprintf(b, sizeof b, "%s%llu%s", neg ? "-" : "", (unsigned long long)whole,
                       frac ? "." : "");
    for (; frac; div /= 10) {
        b[len++] = (char)('0' + frac / div);
        frac %= div;
    }
    len += snprintf(b + len, sizeof b - (size_t)len, "%s", unit);
    return tml_str_new(b, len);
}

/* ---------------------------------------------------------------- assert */

/* A failed assert_eq/assert_ne (`op` is "==" or "!="): panics at line:col
 * with both sides' text (borrowed) and the optional message `msg`
 * (borrowed, may be NULL); the text is cut at 512 bytes. */
TML_HELPER _Noreturn void tml_assert_fail(int line, int col, const char *op, tml_str *l,
                                          tml_str *r, tml_str *msg) {
    char b[512];
    snprintf(b, sizeof b, "assertion failed: left %s right (left: %.*s, right: %.*s)%s%.*s", op,
             (int)l->len, l->ptr, (int)r->len, r->ptr, msg ? ": " : "",
             msg ? (int)msg->len : 0, msg ? msg->ptr : "");
    tml_panic_at(tml_file, line, col, b);
}

#endif /* TML_PRELUDE_H */
