/* timer_wheel.h - a hierarchical timing wheel of intrusive timer nodes.
 *
 * A plain data structure: NOT thread-safe, the runtime calls it under its
 * timer lock. It never allocates (the node is embedded in the waiting
 * future) and is given the time by its caller (tests drive it with a fake
 * `now`). Algorithm, invariants and costs: timer_wheel.c.
 *
 * Units: every instant is in nanoseconds (int64_t, CLOCK_MONOTONIC, as
 * tml_now_ns()). The wheel counts in ticks of TIMER_WHEEL_TICK_NS since
 * the `now_ns` it was initialised with (its origin). */
#ifndef TIMER_WHEEL_H
#define TIMER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tml/rt.h"

#define TIMER_WHEEL_TICK_SHIFT 16 /* one tick: 2^16 ns = 65.536 us */
#define TIMER_WHEEL_TICK_NS (INT64_C(1) << TIMER_WHEEL_TICK_SHIFT)
#define TIMER_WHEEL_SLOT_BITS 6   /* 64 slots per level: one uint64 bitmap */
#define TIMER_WHEEL_SLOTS (1 << TIMER_WHEEL_SLOT_BITS)
#define TIMER_WHEEL_LEVELS 6      /* level L slots span 64^L ticks */
/* Ticks spanned by the whole wheel: 2^36 ticks = 2^52 ns, about 52 days.
 * A deadline further ahead waits in the top level and is re-cascaded once
 * per rotation (still never early). */
#define TIMER_WHEEL_RANGE_TICKS (UINT64_C(1) << (TIMER_WHEEL_LEVELS * TIMER_WHEEL_SLOT_BITS))

/* The wheel, embedded by value in its owner. Fields are private to
 * timer_wheel.c (tests may read them).
 *   origin_ns  the instant of tick 0 (now_ns at init).
 *   now_ns     the latest time a poll was given (never goes back).
 *   elapsed    the current tick: every slot before it has been processed.
 *   len        pending timers.
 *   occupied   per level, bit s set iff slots[level][s] is non-empty.
 *   slots      per level and slot, the head of a NULL-terminated doubly
 *              linked list of tml_timer_node; a node's `where` is
 *              level * TIMER_WHEEL_SLOTS + slot. */
typedef struct timer_wheel {
    int64_t origin_ns;
    int64_t now_ns;
    uint64_t elapsed;
    size_t len;
    uint64_t occupied[TIMER_WHEEL_LEVELS];
    tml_timer_node *slots[TIMER_WHEEL_LEVELS][TIMER_WHEEL_SLOTS];
} timer_wheel;

/* Initialises an empty wheel whose tick 0 starts at `now_ns`.
 * Threads: the caller owns `w`. Never fails, never allocates. */
void timer_wheel_init(timer_wheel *w, int64_t now_ns);

/* Forgets every pending timer (the wheel only resets itself: pending
 * nodes belong to their futures and are not touched, so their `where`
 * keeps its stale value). `w` must be initialised again before reuse. */
void timer_wheel_fini(timer_wheel *w);

/* Arms `t` to fire at `deadline_ns` (any value: one at or before the
 * wheel's time fires at the next poll) and to yield `waker` then. O(1).
 * Ownership: `t` is caller memory, borrowed until it fires (a poll
 * returns its waker) or timer_wheel_cancel(t) returns; it must not move
 * meanwhile. Precondition: t->where == -1 (in no wheel), asserted.
 * Sets t->deadline_ns, t->waker and t->where; t->reserved is untouched. */
void timer_wheel_insert(timer_wheel *w, tml_timer_node *t, int64_t deadline_ns, tml_waker waker);

/* Disarms `t`: returns true if it was pending in `w` (it will not fire;
 * t->where becomes -1), false when it was not armed (never inserted,
 * already fired or cancelled: a no-op). O(1). `t` must be pending in `w`
 * or have where == -1; a node of another wheel is a caller bug. */
bool timer_wheel_cancel(timer_wheel *w, tml_timer_node *t);

/* Removes timers whose deadline_ns <= now_ns, never one with a later
 * deadline, and stores their wakers in out[0..max); returns how many. If
 * more than `max` are due, a further call with the same now_ns returns
 * the rest. Fired nodes get where == -1 and are the caller's again.
 * Order: non-decreasing due tick, a timer's due tick being its deadline's
 * tick or, if later, the wheel's current tick when it was inserted (as in
 * Linux and Tokio, a timer inserted overdue is due now); any order within
 * one tick. A now_ns earlier than a previous poll's
 * counts as that time (no progress). Cost: O(1) per fired timer and per
 * cascade step (each timer cascades at most LEVELS - 1 times, plus once
 * per 52-day rotation beyond the wheel's range), plus a scan of the
 * current tick's slot when polled within that tick. */
size_t timer_wheel_poll(timer_wheel *w, int64_t now_ns, tml_waker *out, size_t max);

/* A time to poll at next: INT64_MAX when no timer is pending (or when
 * the earliest deadline is INT64_MAX itself); otherwise a time no later
 * than the earliest pending deadline at which a poll makes progress: it
 * fires a timer, or cascades so that the next call returns a strictly
 * later time. Exact (the earliest deadline) when that timer is in the
 * finest level (due before the end of the current 64-tick block); else
 * the start of the slot that must cascade next. May be before the last
 * poll's now_ns when timers are due already (overdue inserts, or a poll
 * that stopped at `max`). O(levels) plus a scan of one finest-level slot.
 * The runtime uses it as its reactor's poll timeout. */
int64_t timer_wheel_next_deadline(const timer_wheel *w);

/* Number of pending timers. O(1). */
size_t timer_wheel_len(const timer_wheel *w);

#endif /* TIMER_WHEEL_H */
