/* io_reactor.c - the backend-neutral reactor: a slab of sources, their
 * readiness words and waker slots, cancellation, wake-up coalescing.
 *
 * Algorithm: Tokio's ScheduledIo (tokio/src/runtime/io/scheduled_io.rs):
 * readiness and a tick live in one atomic word that events set and
 * operations clear with "clear only if the tick is unchanged"; the wakers
 * sit beside it under a small lock. mio's token scheme for late events.
 *
 * A source (40 bytes, _Static_assert below):
 *   word       gen << 32 | tick << 8 | ready bits (IO_*), one atomic word;
 *   lock       an mt_spin guarding waker[]; held for a few instructions;
 *   waker[2]   read and write slots; 0 = empty (a zero token is stale:
 *              worker generations start at 1, mt_runtime.c);
 *   fd, link   the fd (for deregister) and, in use, the slot's own index;
 *              free, the next free index. Written under the slab lock.
 * Sources live in chunks that never move or shrink before destroy (same
 * chunk sizes as the task slab: mt_slab_chunk_of), found by index through
 * an acquire load, so a token can always be resolved to memory.
 *
 * Invariants:
 *   1. The backend knows a source by token = index << 32 | gen, never by
 *      pointer. deregister removes the fd from the backend, then bumps gen
 *      (under the source's lock): an event the poller took before the
 *      removal carries the old gen and is ignored (gen is checked by the
 *      CAS that sets the bits, and again under the lock before any waker
 *      is taken). Gen has 32 bits: a stale event could only match after
 *      2^32 re-registrations of one slot during one dispatch batch.
 *   2. A free slot holds no waker (deregister empties both slots).
 *   3. Every change of `word` is a CAS (dispatch, clear, cancel,
 *      deregister) or, in register, a store under the slab lock made
 *      while no live token names the slot.
 *   4. The tick has 24 bits and wraps: clear_ready could wrongly match
 *      only if 2^24 events for one fd came between an operation's
 *      poll_ready and its clear, a few instructions apart.
 *
 * No lost wake-up (waiting versus an event):
 *   P1. poll_ready loads `word`; ready bits for its interest -> returns;
 *   P2. else takes the lock, reloads `word` (ready -> unlocks, returns),
 *       stores the waker, unlocks, returns 0.
 *   E1. dispatch CASes the bits into `word`, then
 *   E2. takes the lock, takes the ready directions' wakers, unlocks,
 *   E3. wakes them, outside every lock (tml_wake takes no reactor lock).
 * If P2's critical section comes first, E2 finds the waker; otherwise E2
 * came first, so E1 happens before P2's reload (through the lock) and P2
 * sees the bits. Clearing (EAGAIN) cannot hide an event: a clear whose
 * tick is older than the word's changes nothing.
 *
 * Wake-up of the poller (io_reactor_wake), coalesced through `wake_pending`
 * (the number of wakes since the last drain):
 *   W1. every wake increments pending (an RMW); only the one that saw 0
 *       signals the backend (one syscall per burst of wakes);
 *   W2. the poller drains the backend's wake source, and only then
 *   W3. resets pending to 0 with a CAS (an RMW).
 * pending > 0 means a signal is in the backend or about to be: a wake
 * before the poll makes it return at once, and no wake is lost. A wake
 * whose W1 comes after W3 in pending's modification order signals again;
 * one before W3 skipped its signal, but W3 reads-from it (all writes to
 * pending are RMWs: one release sequence), so whatever that waker
 * published before waking is visible to the poller once the poll returns.
 * Rejected: skipping W1's RMW when a plain load sees pending > 0 (W3 would
 * not synchronise with that waker: its work could be missed by the
 * poller's re-check, and the next poll would block without a signal).
 *
 * Cancellation (io_reactor_cancel_all): sets `cancelled` and reads the
 * slab's high-water mark under the slab lock, then sets IO_CANCELLED in
 * every slot below it and wakes their wakers. A source registered before
 * that lock section is in the range; one registered after reads
 * `cancelled` under the same lock and starts cancelled.
 *
 * Rejected: epoll data holding the source pointer with deferred
 * reclamation (Tokio's current scheme; needs an epoch per poll batch);
 * a mutex per source (40 bytes each); waiter lists per direction (a
 * source has one reader and one writer in net.c). */
#include <errno.h>
#include <stdlib.h>

#include "io_reactor.h"
#include "mt_internal.h"

#define NO_SLOT UINT32_MAX
#define READY_MASK UINT64_C(0xff)
#define TICK_SHIFT 8
#define TICK_MASK UINT32_C(0xffffff)
#define BOTH_BITS (IO_HUP | IO_ERROR | IO_CANCELLED)     /* ready for either direction */
#define READ_BITS (IO_READABLE | IO_READ_CLOSED | BOTH_BITS)
#define WRITE_BITS (IO_WRITABLE | BOTH_BITS)

struct io_source {
    mt_atomic word;     /* gen << 32 | tick << 8 | ready */
    mt_spin lock;       /* guards waker[] */
    tml_waker waker[2]; /* [0] read, [1] write; 0 = empty */
    io_fd fd;           /* slab lock (written), owner (read) */
    uint32_t link;      /* in use: own index; free: next free; slab lock */
};

_Static_assert(sizeof(struct io_source) == (sizeof(io_fd) == 4 ? 40 : 48), "io_source grew: it is per connection");

struct io_reactor {
    io_backend *os;
    mt_atomic wake_pending;               /* W1-W3 */
    mt_atomic polling;                    /* debug: a thread is in io_reactor_poll */
    mt_atomic chunks[MT_SLAB_CHUNKS];     /* io_source *, published once */
    pal_mutex lock;                 /* guards the fields below */
    uint32_t free_head;                   /* free list through link */
    uint32_t fresh;                       /* slots [0, fresh) were handed out */
    bool cancelled;                       /* cancel_all ran */
};

static inline uint64_t word_of(uint32_t gen, uint32_t tick, unsigned ready) {
    return (uint64_t)gen << 32 | (uint64_t)(tick & TICK_MASK) << TICK_SHIFT | ready;
}
static inline uint32_t gen_of(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint32_t tick_of(uint64_t w) { return (uint32_t)(w >> TICK_SHIFT) & TICK_MASK; }
static inline unsigned ready_of(uint64_t w) { return (unsigned)(w & READY_MASK); }

/* The bits that count as ready for `interest`. */
static unsigned mask_of(unsigned interest) {
    return (interest & IO_READABLE ? READ_BITS : 0) | (interest & IO_WRITABLE ? WRITE_BITS : 0);
}

static uint32_t chunk_len(unsigned k) {
    return k + 1 < MT_SLAB_CHUNKS ? mt_slab_chunk_start(k + 1) - mt_slab_chunk_start(k)
                                  : MT_MAX_SLOTS - mt_slab_chunk_start(k);
}

/* The source in slot `index`, or NULL when its chunk was never grown. */
static io_source *slot_at(io_reactor *r, uint32_t index) {
    if (index >= MT_MAX_SLOTS)
        return NULL;
    unsigned k = mt_slab_chunk_of(index);
    /* pairs with the release in take_slot's growth */
    io_source *chunk = (io_source *)(uintptr_t)mt_atomic_load_acquire(&r->chunks[k]);
    return chunk ? chunk + (index - mt_slab_chunk_start(k)) : NULL;
}

/* Pops a free slot, or hands out a fresh one (growing a chunk).
 * Slab lock held. Returns 0 or -ENOMEM / -ENOSPC. */
static int take_slot(io_reactor *r, uint32_t *index) {
    if (r->free_head != NO_SLOT) {
        *index = r->free_head;
        r->free_head = slot_at(r, *index)->link;
        return 0;
    }
    if (r->fresh >= MT_MAX_SLOTS)
        return -ENOSPC;
    unsigned k = mt_slab_chunk_of(r->fresh);
    if (r->fresh == mt_slab_chunk_start(k)) {
        uint32_t n = chunk_len(k);
        io_source *chunk = calloc(n, sizeof *chunk);
        if (!chunk)
            return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
            mt_spin_init(&chunk[i].lock);
            mt_atomic_store(&chunk[i].word, word_of(1, 0, 0)); /* relaxed: published below */
        }
        mt_atomic_store_release(&r->chunks[k], (uintptr_t)chunk); /* pairs with slot_at's acquire */
    }
    *index = r->fresh++;
    return 0;
}

/* Releases slot `index` (in use): bumps its generation, so every token of
 * the registration goes stale, empties its wakers, frees it. */
static void release_slot(io_reactor *r, io_source *s, uint32_t index) {
    mt_spin_lock(&s->lock);
    uint64_t w = mt_atomic_load(&s->word); /* relaxed: the CAS re-checks */
    for (uint64_t seen;; w = seen) {
        /* pairs with dispatch's gen checks (the CAS, and the load under the lock) */
        seen = mt_atomic_cas(&s->word, w, word_of(gen_of(w) + 1, 0, 0));
        if (seen == w)
            break;
    }
    s->waker[0] = s->waker[1] = 0; /* invariant 2 */
    mt_spin_unlock(&s->lock);
    pal_mutex_lock(&r->lock);
    s->link = r->free_head;
    r->free_head = index;
    pal_mutex_unlock(&r->lock);
}

int io_reactor_new(io_reactor **out) {
    MT_ASSERT(out);
    io_reactor *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    int err = io_backend_new(&r->os);
    if (err < 0) {
        free(r);
        return err;
    }
    pal_mutex_init(&r->lock);
    r->free_head = NO_SLOT;
    *out = r;
    return 0;
}

void io_reactor_destroy(io_reactor *r) {
    MT_ASSERT(r && mt_atomic_load(&r->polling) == 0); /* relaxed: no thread may poll */
    io_backend_destroy(r->os);
    for (unsigned k = 0; k < MT_SLAB_CHUNKS; k++)
        free((void *)(uintptr_t)mt_atomic_load(&r->chunks[k])); /* relaxed: no other thread */
    pal_mutex_fini(&r->lock);
    free(r);
}

int io_reactor_register(io_reactor *r, io_fd fd, io_source **out) {
    MT_ASSERT(r && fd != IO_FD_NONE && out);
    uint32_t index, gen = 0;
    io_source *s = NULL;
    pal_mutex_lock(&r->lock);
    int err = take_slot(r, &index);
    if (err == 0) {
        s = slot_at(r, index);
        gen = gen_of(mt_atomic_load(&s->word)); /* relaxed: only deregister (lock-ordered) wrote it */
        /* invariant 3: no live token names the slot yet; release: pairs
         * with the acquire loads of poll_ready on other threads */
        mt_atomic_store_release(&s->word, word_of(gen, 0, r->cancelled ? IO_CANCELLED : 0));
        s->fd = fd;
        s->link = index;
    }
    pal_mutex_unlock(&r->lock);
    if (err < 0)
        return err;
    if ((err = io_backend_add(r->os, fd, (uint64_t)index << 32 | gen)) < 0) {
        release_slot(r, s, index);
        return err;
    }
    *out = s;
    return 0;
}

void io_reactor_deregister(io_reactor *r, io_source *s) {
    MT_ASSERT(r && s);
    uint64_t token = (uint64_t)s->link << 32 | gen_of(mt_atomic_load(&s->word)); /* relaxed: only release_slot changes gen */
    io_backend_del(r->os, s->fd, token); /* first: then only taken events name it (invariant 1) */
    release_slot(r, s, s->link);
}

unsigned io_source_poll_ready(io_source *s, unsigned interest, tml_waker waker, uint32_t *tick_out) {
    MT_ASSERT(s && interest && !(interest & ~(IO_READABLE | IO_WRITABLE)));
    unsigned mask = mask_of(interest);
    uint64_t w = mt_atomic_load_acquire(&s->word); /* P1; pairs with dispatch's CAS */
    if (!(ready_of(w) & mask)) {
        mt_spin_lock(&s->lock);
        w = mt_atomic_load_acquire(&s->word); /* P2: the lock orders it after E1 of an E2 before us */
        if (!(ready_of(w) & mask)) {
            if (interest & IO_READABLE)
                s->waker[0] = waker;
            if (interest & IO_WRITABLE)
                s->waker[1] = waker;
        }
        mt_spin_unlock(&s->lock);
    }
    if (tick_out)
        *tick_out = tick_of(w);
    return ready_of(w) & mask;
}

/* Clears `clear` from s's ready bits unless an event came since `tick`;
 * where the backend re-arms (IO_BACKEND_REARMS), a clear that took a
 * direction bit asks it for that direction's next readiness. */
static void clear_bits(io_reactor *r, io_source *s, unsigned interest, uint64_t clear, uint32_t tick) {
    uint64_t w = mt_atomic_load(&s->word); /* relaxed: the CAS re-checks */
    while (tick_of(w) == (tick & TICK_MASK) && (w & clear)) {
        uint64_t seen = mt_atomic_cas(&s->word, w, w & ~clear); /* pairs with dispatch's CAS */
        if (seen == w) {
            if (IO_BACKEND_REARMS && (w & interest))
                io_backend_rearm(r->os, s->fd, (uint64_t)s->link << 32 | gen_of(w), (unsigned)(w & interest));
            return;
        }
        w = seen; /* an event (new tick: keep its bits) or a concurrent clear */
    }
}

void io_source_clear_ready(io_reactor *r, io_source *s, unsigned interest, uint32_t tick) {
    MT_ASSERT(r && s && interest && !(interest & ~(IO_READABLE | IO_WRITABLE)));
    clear_bits(r, s, interest, interest | IO_ERROR, tick);
}

void io_source_clear_drained(io_reactor *r, io_source *s, unsigned interest, uint32_t tick) {
    MT_ASSERT(r && s && interest && !(interest & ~(IO_READABLE | IO_WRITABLE)));
    clear_bits(r, s, interest, interest, tick);
}

void io_source_drop_waiter(io_source *s, unsigned interest) {
    MT_ASSERT(s && interest && !(interest & ~(IO_READABLE | IO_WRITABLE)));
    mt_spin_lock(&s->lock);
    if (interest & IO_READABLE)
        s->waker[0] = 0;
    if (interest & IO_WRITABLE)
        s->waker[1] = 0;
    mt_spin_unlock(&s->lock);
}

/* E1-E3 for `s`: sets `bits` and bumps the tick if s's generation is
 * `gen` (any generation when `any`), then wakes the wakers of the
 * directions `bits` makes ready. Returns false for a stale generation. */
static bool set_ready(io_source *s, uint32_t gen, bool any, unsigned bits) {
    uint64_t w = mt_atomic_load(&s->word); /* relaxed: the CAS re-checks */
    for (;;) {
        if (!any && gen_of(w) != gen)
            return false; /* invariant 1: a late event */
        gen = gen_of(w);
        uint64_t next = word_of(gen, tick_of(w) + 1, ready_of(w) | bits);
        uint64_t seen = mt_atomic_cas(&s->word, w, next); /* E1; pairs with P1/P2 and clear */
        if (seen == w)
            break;
        w = seen;
    }
    tml_waker wake[2] = {0, 0};
    mt_spin_lock(&s->lock); /* E2 */
    if (gen_of(mt_atomic_load(&s->word)) == gen) { /* relaxed: deregister bumps it under this lock */
        for (int d = 0; d < 2; d++) {
            if (bits & mask_of(d == 0 ? IO_READABLE : IO_WRITABLE)) {
                wake[d] = s->waker[d];
                s->waker[d] = 0;
            }
        }
    }
    mt_spin_unlock(&s->lock);
    for (int d = 0; d < 2; d++) /* E3: outside the lock */
        if (wake[d])
            tml_wake(wake[d]);
    return true;
}

void io_source_hang_up(io_source *s) {
    MT_ASSERT(s);
    set_ready(s, 0, true, IO_HUP);
}

bool io_reactor_dispatch(io_reactor *r, uint64_t token, unsigned bits) {
    MT_ASSERT(token != IO_WAKE_TOKEN && !(bits & ~READY_MASK));
    io_source *s = slot_at(r, (uint32_t)(token >> 32));
    return s && bits && set_ready(s, (uint32_t)token, false, bits);
}

int io_reactor_poll(io_reactor *r, int64_t timeout_ns) {
    MT_ASSERT(r);
#ifndef NDEBUG
    MT_ASSERT(mt_atomic_cas(&r->polling, 0, 1) == 0); /* one poller at a time */
#endif
    bool woken = false;
    int n = io_backend_wait(r->os, timeout_ns, r, &woken);
    if (woken) { /* W3: after W2 (the drain); an RMW reading the last W1 */
        uint64_t v = mt_atomic_load(&r->wake_pending); /* relaxed: the CAS re-checks */
        for (uint64_t seen; (seen = mt_atomic_cas(&r->wake_pending, v, 0)) != v;)
            v = seen;
    }
#ifndef NDEBUG
    mt_atomic_store_release(&r->polling, 0); /* pairs with the next poller's CAS */
#endif
    return n;
}

void io_reactor_wake(io_reactor *r) {
    MT_ASSERT(r);
    /* W1: an RMW even when coalesced (never a plain load), so that W3
     * reads-from it; pairs with W3 */
    if (mt_atomic_fetch_add(&r->wake_pending, 1) == 0)
        io_backend_wake(r->os);
}

void io_reactor_cancel_all(io_reactor *r) {
    MT_ASSERT(r);
    pal_mutex_lock(&r->lock);
    r->cancelled = true;
    uint32_t n = r->fresh;
    pal_mutex_unlock(&r->lock);
    for (uint32_t i = 0; i < n; i++) {
        io_source *s = slot_at(r, i);
        set_ready(s, 0, true, IO_CANCELLED); /* free slots too: register resets them */
    }
}
