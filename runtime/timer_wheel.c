/* timer_wheel.c - hierarchical timing wheel: O(1) insert and cancel,
 * deadlines exact to the nanosecond.
 *
 * Algorithm: Varghese & Lauck, "Hashed and hierarchical timing wheels"
 * (SOSP 1987), scheme 7, laid out as Tokio's time wheel: LEVELS levels of
 * 64 slots, a slot of level L spans 64^L ticks, a 64-bit bitmap per level
 * marks the occupied slots so the next slot to process is one rotate and
 * one count-trailing-zeros away. Ticks are 2^16 ns (65.536 us); six
 * levels span 2^36 ticks, about 52 days.
 *
 * Placement. A timer due at tick `t` (counted from the origin, never
 * before the current tick `elapsed`) goes to the level of the highest
 * 6-bit group in which t differs from elapsed, in the slot numbered by t's
 * bits of that group: level_for(elapsed, t) = msb((elapsed ^ t) | 63) / 6.
 * A timer beyond the wheel's range (msb >= 36) goes to the top level at
 * its own top-level slot number: the top level is a ring, and a slot
 * whose number is not after elapsed's is due one rotation (2^36 ticks)
 * later; the timer is re-placed each time its slot comes round.
 *
 * Time passing (poll). Only the current slot (level 0, number
 * elapsed & 63) fires timers, each when deadline_ns <= now: that is the
 * whole of "never early". Then, while elapsed is behind now's tick, jump
 * elapsed to the start of the earliest occupied slot (if not after now's
 * tick) and cascade it: re-place each of its timers relative to the new
 * elapsed, which moves it to a lower level, or to the current slot when
 * it is due at that very tick. When no slot starts by now's tick, elapsed
 * becomes now's tick. A timer of a slot thus fires in the tick it is due,
 * after every timer of earlier ticks: poll output is in tick order.
 *
 * Invariants (between calls):
 *   I1 each pending node is on exactly one slot list, named by its
 *      `where`; a level's occupied bit s is set iff its slot s is
 *      non-empty; len counts the nodes.
 *   I2 elapsed <= tick(now_ns). The current slot holds the timers due at
 *      tick elapsed and the overdue ones (inserted with tick < elapsed,
 *      hence deadline < now_ns); every other slot holds timers due after
 *      elapsed.
 *   I3 a node at level L, slot s, other than the current slot and the
 *      top level's ring: its tick agrees with elapsed above bit 6(L+1)
 *      and s > elapsed's slot number at L. So every timer of level L is
 *      due before every timer of level L+1, and the lowest occupied level
 *      holds the earliest deadline.
 *   I4 a slot is cascaded at its start tick, which is <= the tick of
 *      each of its timers (for the ring: its next occurrence after
 *      elapsed comes no later than the timer's own tick).
 * Alternatives rejected: a ready list for overdue timers (they would need
 * sorting to keep tick order; in the current slot they fire at the next
 * poll, due "now", as in Linux and Tokio); rounding deadlines up to ticks
 * (fires up to a tick late; here only the current slot compares ns, so
 * deadlines stay exact); a tail pointer per slot for FIFO order within a
 * tick (doubles the slot array; the contract allows any order in a tick).
 * The wheel never calls malloc: nodes are intrusive. */
#include "timer_wheel.h"

#include <string.h>

#include "mt_internal.h"

#define SLOT_MASK (TIMER_WHEEL_SLOTS - 1)
#define TOP (TIMER_WHEEL_LEVELS - 1)

/* Bit position of the lowest (resp. highest) set bit; x != 0. */
static unsigned ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
static unsigned msb64(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x); }

static uint64_t rotr64(uint64_t x, unsigned r) {
    r &= 63;
    return r ? x >> r | x << (64 - r) : x;
}

/* Ticks spanned by one slot of `level`. */
static uint64_t slot_span(unsigned level) { return UINT64_C(1) << (TIMER_WHEEL_SLOT_BITS * level); }

/* The tick holding `ns`; 0 for an instant before the origin. */
static uint64_t tick_of(const timer_wheel *w, int64_t ns) {
    if (ns <= w->origin_ns)
        return 0;
    return ((uint64_t)ns - (uint64_t)w->origin_ns) >> TIMER_WHEEL_TICK_SHIFT;
}

/* The first instant of `tick`. Only called for ticks that start no later
 * than some pending deadline, so it does not overflow. */
static int64_t tick_start_ns(const timer_wheel *w, uint64_t tick) {
    return (int64_t)((uint64_t)w->origin_ns + (tick << TIMER_WHEEL_TICK_SHIFT));
}

static unsigned current_slot(const timer_wheel *w) { return (unsigned)(w->elapsed & SLOT_MASK); }

/* The list head of slot `where` (level * TIMER_WHEEL_SLOTS + slot). */
static tml_timer_node **slot_head(timer_wheel *w, unsigned where) {
    return &w->slots[where / TIMER_WHEEL_SLOTS][where & SLOT_MASK];
}

/* Links `t` at the head of slot `where`. */
static void link_node(timer_wheel *w, tml_timer_node *t, unsigned where) {
    tml_timer_node **head = slot_head(w, where);
    t->prev = NULL;
    t->next = *head;
    if (*head)
        (*head)->prev = t;
    *head = t;
    t->where = (int32_t)where;
    w->occupied[where / TIMER_WHEEL_SLOTS] |= UINT64_C(1) << (where & SLOT_MASK);
}

/* Unlinks pending `t` from its slot; where becomes -1. */
static void unlink_node(timer_wheel *w, tml_timer_node *t) {
    unsigned where = (unsigned)t->where;
    tml_timer_node **head = slot_head(w, where);
    if (t->prev)
        t->prev->next = t->next;
    else
        *head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (!*head)
        w->occupied[where / TIMER_WHEEL_SLOTS] &= ~(UINT64_C(1) << (where & SLOT_MASK));
    t->prev = t->next = NULL;
    t->where = -1;
}

/* Links `t` where its deadline belongs relative to elapsed (placement
 * rule above); an overdue timer joins the current slot. */
static void place(timer_wheel *w, tml_timer_node *t) {
    uint64_t tick = tick_of(w, t->deadline_ns);
    if (tick < w->elapsed)
        tick = w->elapsed;
    unsigned level = msb64((w->elapsed ^ tick) | SLOT_MASK) / TIMER_WHEEL_SLOT_BITS;
    if (level > TOP)
        level = TOP; /* beyond the range: the top level's ring */
    unsigned slot = (unsigned)(tick >> (TIMER_WHEEL_SLOT_BITS * level)) & SLOT_MASK;
    link_node(w, t, level * TIMER_WHEEL_SLOTS + slot);
}

/* The earliest occupied slot, the current slot being empty: stores its
 * level and slot number and returns its start tick (I3: the lowest
 * occupied level holds it; I4: the ring's slots not after elapsed's come
 * round one rotation later). Returns UINT64_MAX when there is none. */
static uint64_t next_slot(const timer_wheel *w, unsigned *level_out, unsigned *slot_out) {
    MT_ASSERT(!w->slots[0][current_slot(w)]);
    for (unsigned level = 0; level < TIMER_WHEEL_LEVELS; level++) {
        uint64_t occupied = w->occupied[level];
        if (!occupied)
            continue;
        unsigned shift = TIMER_WHEEL_SLOT_BITS * level;
        unsigned now_slot = (unsigned)(w->elapsed >> shift) & SLOT_MASK;
        /* the first occupied slot after now_slot, wrapping round */
        unsigned slot = (now_slot + 1 + ctz64(rotr64(occupied, now_slot + 1))) & SLOT_MASK;
        uint64_t level_span = slot_span(level + 1);
        uint64_t start = (w->elapsed & ~(level_span - 1)) + ((uint64_t)slot << shift);
        if (slot <= now_slot) {
            MT_ASSERT(level == TOP); /* I3: only the ring wraps */
            start += level_span;
        }
        *level_out = level;
        *slot_out = slot;
        return start;
    }
    return UINT64_MAX;
}

/* Moves every timer of slot `slot` of `level` to where it belongs now
 * that elapsed is the slot's start: a lower level, the current slot, or
 * (beyond the range) the top level's ring again. */
static void cascade(timer_wheel *w, unsigned level, unsigned slot) {
    tml_timer_node *t = w->slots[level][slot];
    w->slots[level][slot] = NULL;
    w->occupied[level] &= ~(UINT64_C(1) << slot);
    while (t) {
        tml_timer_node *next = t->next;
        place(w, t);
        t = next;
    }
}

/* Fires the current slot's timers due by `now` into out[n..max);
 * returns the new count. */
static size_t fire_current(timer_wheel *w, int64_t now, tml_waker *out, size_t n, size_t max) {
    tml_timer_node *t = w->slots[0][current_slot(w)];
    while (t && n < max) {
        tml_timer_node *next = t->next;
        if (t->deadline_ns <= now) {
            unlink_node(w, t);
            w->len--;
            out[n++] = t->waker;
        }
        t = next;
    }
    return n;
}

/* The earliest deadline on a finest-level slot's list (non-empty). */
static int64_t min_deadline(const tml_timer_node *t) {
    int64_t min = t->deadline_ns;
    for (t = t->next; t; t = t->next)
        if (t->deadline_ns < min)
            min = t->deadline_ns;
    return min;
}

/* ------------------------------------ public functions: contracts in timer_wheel.h */

void timer_wheel_init(timer_wheel *w, int64_t now_ns) {
    MT_ASSERT(w);
    memset(w, 0, sizeof *w);
    w->origin_ns = now_ns;
    w->now_ns = now_ns;
}

void timer_wheel_fini(timer_wheel *w) {
    MT_ASSERT(w);
    memset(w, 0, sizeof *w); /* pending nodes are their owners' */
}

void timer_wheel_insert(timer_wheel *w, tml_timer_node *t, int64_t deadline_ns, tml_waker waker) {
    MT_ASSERT(w && t);
    MT_ASSERT(t->where == -1);
    t->deadline_ns = deadline_ns;
    t->waker = waker;
    place(w, t);
    w->len++;
}

bool timer_wheel_cancel(timer_wheel *w, tml_timer_node *t) {
    MT_ASSERT(w && t);
    if (t->where < 0)
        return false;
    MT_ASSERT(t->where < TIMER_WHEEL_LEVELS * TIMER_WHEEL_SLOTS && w->len > 0);
    unlink_node(w, t);
    w->len--;
    return true;
}

size_t timer_wheel_len(const timer_wheel *w) {
    MT_ASSERT(w);
    return w->len;
}

size_t timer_wheel_poll(timer_wheel *w, int64_t now_ns, tml_waker *out, size_t max) {
    MT_ASSERT(w && (out || max == 0));
    if (now_ns > w->now_ns)
        w->now_ns = now_ns;
    int64_t now = w->now_ns;
    uint64_t now_tick = tick_of(w, now);
    size_t n = 0;
    for (;;) {
        n = fire_current(w, now, out, n, max);
        if (n == max || w->elapsed == now_tick)
            break;
        /* the current slot is empty: each of its timers was due (I2) */
        unsigned level, slot;
        uint64_t start = next_slot(w, &level, &slot);
        if (start > now_tick) {
            w->elapsed = now_tick;
            break;
        }
        w->elapsed = start;
        if (level > 0)
            cascade(w, level, slot);
    }
    return n;
}

int64_t timer_wheel_next_deadline(const timer_wheel *w) {
    MT_ASSERT(w);
    if (w->len == 0)
        return INT64_MAX;
    const tml_timer_node *current = w->slots[0][current_slot(w)];
    if (current)
        return min_deadline(current);
    unsigned level, slot;
    uint64_t start = next_slot(w, &level, &slot);
    MT_ASSERT(start != UINT64_MAX);
    if (level == 0)
        return min_deadline(w->slots[0][slot]);
    return tick_start_ns(w, start);
}
