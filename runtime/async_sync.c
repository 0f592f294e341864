/* async_sync.c - intrusive wait lists and channels. (Semaphore, Mutex
 * and Notify: async_sem.c, async_mutex.c; the leaf protocol they all
 * follow: async_sync.h.)
 *
 * mt_waitlist: a FIFO of tml_waiter nodes embedded in leaf futures, so
 * waiting never allocates. Every list is guarded by its owner's lock
 * (channel, join block, permit queue). A node is `linked` exactly while
 * it is on a list; whoever unlinks a node completes or wakes its leaf, or
 * is the leaf's own drop, so a node never outlives its future on a list.
 *
 * Channel. One object backs both ends: a lock, a ring buffer of values
 * (elem_size bytes each), a count of granted slots and two wait lists.
 * Invariants, under the lock:
 *   - len <= ring_cap, and the values in order are
 *     ring[(head + i) % ring_cap], i < len;
 *   - len + granted <= cap (cap = SIZE_MAX when unbounded), where
 *     `granted` counts slots reserved for senders that were granted one
 *     but have not written yet; except just after a dropped receive gave
 *     its value back (below): then len + granted may exceed cap by the
 *     number of such values, and no sender is admitted or granted a slot
 *     until receives bring it under cap again;
 *   - receivers wait only while len == 0 and the channel is open;
 *   - senders wait only while len + granted >= cap and the channel is
 *     open; a new sender is admitted (into the ring) only below that, so
 *     it never takes a slot a waiting or granted sender is owed;
 *   - a waiting leaf is served by the thread that makes progress possible
 *     (as Go's chansend/chanrecv, runtime/chan.go), before its task is
 *     woken, so waiters are served in FIFO order and no wake-up is wasted
 *     or lost. A send moves its value straight into the oldest waiting
 *     receiver's `out` and completes it ("hand-off"). A receive that
 *     frees a slot does not move a waiting sender's value: it reserves
 *     the slot for the oldest waiting sender (granted++) and sets its
 *     status to GRANTED; the sender's next poll writes its value under
 *     the lock (to a receiver that waits meanwhile, else into its slot)
 *     and returns Ready (Tokio's bounded send: a permit, then a write
 *     inside the poll). So a send's value moves only in a poll of its own
 *     leaf, which returns Ready with that status: a send that is dropped
 *     before Ready never delivers, and a `timeout` or select that drops
 *     it can report it not sent and be right. Values enter in the order
 *     of these writes, which may differ from that of the grants; a task
 *     has one send pending at a time, so its own values keep their order;
 *   - once closed: sends fail (the value stays with the caller), and so
 *     does a granted send that polls after the close (its grant is void;
 *     Tokio's batch_semaphore, too, fails an acquire polled after close
 *     even when its permits were assigned); receives drain the ring and
 *     then fail, never waiting for granted senders; close completes
 *     every waiter.
 *     Rejected: letting a grant taken before the close still write, as
 *     receivers would then have to wait past the close for a sender that
 *     may never poll again, and RT-CHAN-4 says a waiting send fails.
 * Drop (async_sync.h, "Waiting-leaf protocol"): a waiting send or recv
 * unlinks. A send that was granted a slot passes it on (pass_grant): to
 * the oldest waiting sender, granted and woken in turn, else back to the
 * pool (also while given-back values overshoot, below). Its value stays
 * with the caller, as any dropped send's does (status not OK). A granted
 * send whose value went to a waiting receiver passes its unused slot on
 * the same way. A recv that was served but dropped
 * before it saw Ready gives its value back: to the oldest waiting
 * receiver if there is one (then the ring is empty), else to the front
 * of the ring, so it is received next, in its original place. The ring
 * may have filled up meanwhile, hence the overshoot above: refusing the
 * value would lose it, and making it wait would need memory the drop does
 * not have. (A receive cannot be undone as a send is: its value must move
 * out of the channel to complete it, hence the give-back.)
 * The ring grows by doubling (up to cap), so a bounded channel with a
 * huge cap costs memory only for values actually buffered.
 * Ends: `ends` counts senders (high 32 bits) and receivers (low 32 bits)
 * in one atomic word, so exactly one release sees both reach zero and
 * frees. Releasing the last sender closes the channel (receivers drain,
 * then get CLOSED); so does releasing the last receiver (sends fail
 * rather than wait forever on a channel nobody reads, as in Rust).
 * The lock is a spin lock (mt_spin): every critical section is a few
 * dozen instructions and never blocks. A leaf completed by a hand-off
 * sees it through an acquire load of its `status` (written with release
 * by finish()), so a woken receive's poll takes no lock at all; a woken
 * (granted) send takes it once, to write its value (measured on W5 over
 * 100 alternating runs against the send hand-off it replaced: 1 worker,
 * median 25.1 vs 24.9 ms; 2 workers, paired ratios' medians 0.98 to 1.10
 * in six rounds, the noise of that bimodal benchmark).
 * Wakes happen under the channel lock: tml_wake never takes a channel
 * lock, so there is no cycle. Deferring them past the unlock was tried
 * and measured slower on W5 (4 producers, 1 consumer, capacity 1024, 2
 * workers: median 35 vs 29 ms over 25 interleaved runs).
 * Rejected: a lock-free ring (the lock keeps close, hand-off and the
 * give-back of a dropped receive simple and obviously correct); a pthread
 * mutex (two locked instructions per section, 40 bytes). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "async_sync.h"

#define FIRST_RING_CAP 16
#define SENDER (UINT64_C(1) << 32)
#define RECEIVER UINT64_C(1)

#define SEND_OF(w) ((tml_send_fut *)((char *)(w) - offsetof(tml_send_fut, w)))
#define RECV_OF(w) ((tml_recv_fut *)((char *)(w) - offsetof(tml_recv_fut, w)))

struct tml_chan {
    mt_atomic ends;          /* senders << 32 | receivers */
    mt_spin lock;            /* guards everything below; held briefly */
    size_t elem_size;
    size_t cap;              /* most values buffered; SIZE_MAX: unbounded */
    void (*elem_drop)(void *);
    unsigned char *ring;     /* ring_cap values */
    size_t ring_cap, head, len;
    size_t granted;          /* slots reserved for GRANTED sends */
    bool closed;
    mt_waitlist senders;     /* tml_send_fut.w */
    mt_waitlist receivers;   /* tml_recv_fut.w */
};

/* ------------------------------------------------------------ wait lists */

/* Appends `w` (not linked) with the waker to wake. Owner's lock held. */
void mt_waitlist_push(mt_waitlist *l, tml_waiter *w, tml_waker waker) {
    MT_ASSERT(!w->linked);
    w->waker = waker;
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    w->linked = 1;
}

/* Unlinks and returns the oldest node, or NULL. Owner's lock held. */
tml_waiter *mt_waitlist_pop(mt_waitlist *l) {
    tml_waiter *w = l->head;
    if (w)
        mt_waitlist_remove(l, w);
    return w;
}

/* Unlinks `w`, which is on `l`, wherever it is. Owner's lock held. */
void mt_waitlist_remove(mt_waitlist *l, tml_waiter *w) {
    MT_ASSERT(w->linked);
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->prev = w->next = NULL;
    w->linked = 0;
}

/* Unlinks every node, waking each. Owner's lock held. */
void mt_waitlist_wake_all(mt_waitlist *l) {
    tml_waiter *w;
    while ((w = mt_waitlist_pop(l)))
        tml_wake(w->waker);
}

/* --------------------------------------------------------------- the ring */

/* Copies one value of `size` bytes: inline for the usual sizes (word
 * values and handles), where a call to the library memcpy costs more
 * than the copy itself. */
static inline void copy_value(void *dst, const void *src, size_t size) {
    switch (size) {
    case 8: memcpy(dst, src, 8); break;
    case 16: memcpy(dst, src, 16); break;
    case 4: memcpy(dst, src, 4); break;
    case 0: break;
    default: memcpy(dst, src, size); break;
    }
}

/* The i-th value, i < ring_cap. A compare, not `%`: ring_cap need not be
 * a power of two, and a division would cost more than the copy. */
static inline void *value_at(tml_chan *c, size_t i) {
    size_t j = c->head + i; /* head < ring_cap, so j < 2 * ring_cap */
    if (j >= c->ring_cap)
        j -= c->ring_cap;
    return c->ring + j * c->elem_size;
}

/* Doubles the ring, keeping the order: up to cap, or to len + 1 when a
 * given-back value overshoots cap. Lock held. Returns 0 or -ENOMEM. */
static __attribute__((noinline, cold)) int grow(tml_chan *c) {
    size_t ncap = c->ring_cap ? c->ring_cap * 2 : FIRST_RING_CAP;
    if (ncap > c->cap)
        ncap = c->cap > c->len ? c->cap : c->len + 1;
    if (c->elem_size && ncap > SIZE_MAX / c->elem_size)
        return -ENOMEM;
    unsigned char *ring = malloc(ncap * c->elem_size + 1); /* +1: elem_size may be 0 */
    if (!ring)
        return -ENOMEM;
    for (size_t i = 0; i < c->len; i++)
        copy_value(ring + i * c->elem_size, value_at(c, i), c->elem_size);
    free(c->ring);
    c->ring = ring;
    c->ring_cap = ncap;
    c->head = 0;
    return 0;
}

static inline void make_room(tml_chan *c) {
    if (__builtin_expect(c->len == c->ring_cap, 0)) {
        int err = grow(c);
        if (err)
            mt_panic_err("channel send", err);
    }
}

/* Copies `value` in at the back, even past cap (a granted send's slot
 * while given-back values overshoot). Lock held. */
static inline __attribute__((always_inline)) void ring_append(tml_chan *c, const void *value) {
    make_room(c);
    copy_value(value_at(c, c->len), value, c->elem_size);
    c->len++;
}

/* Copies `value` in at the back. Lock held; len < cap. */
static inline __attribute__((always_inline)) void ring_push(tml_chan *c, const void *value) {
    MT_ASSERT(c->len < c->cap);
    ring_append(c, value);
}

/* Copies `value` in at the front, even past cap. Lock held. */
static void ring_push_front(tml_chan *c, const void *value) {
    make_room(c);
    c->head = c->head == 0 ? c->ring_cap - 1 : c->head - 1;
    copy_value(value_at(c, 0), value, c->elem_size);
    c->len++;
}

/* Moves the front value to `out`. Lock held; len > 0. */
static inline __attribute__((always_inline)) void ring_pop(tml_chan *c, void *out) {
    copy_value(out, value_at(c, 0), c->elem_size);
    c->head = c->head + 1 == c->ring_cap ? 0 : c->head + 1;
    c->len--;
}

/* -------------------------------------------------------------- channels */

tml_chan *tml_chan_new(size_t elem_size, int64_t cap, void (*elem_drop)(void *)) {
    if (cap == 0)
        tml_panic_at(NULL, 0, 0, "channel capacity must be positive");
    tml_chan *c = tml_alloc(sizeof *c);
    memset(c, 0, sizeof *c);
    mt_atomic_store(&c->ends, SENDER | RECEIVER); /* before the channel is shared */
    mt_spin_init(&c->lock);
    c->elem_size = elem_size;
    c->cap = cap < 0 ? SIZE_MAX : (size_t)cap;
    c->elem_drop = elem_drop;
    return c;
}

/* Frees `c`, dropping buffered values. Threads: the last handle's owner. */
static void chan_free(tml_chan *c) {
    MT_ASSERT(!c->senders.head && !c->receivers.head); /* waiters hold handles */
    for (; c->len > 0; c->len--, c->head = c->head + 1 == c->ring_cap ? 0 : c->head + 1) {
        if (c->elem_drop)
            c->elem_drop(value_at(c, 0));
    }
    free(c->ring);
    tml_free(c);
}

/* Sets a waiting leaf's status and wakes its task. Lock held; `w` was
 * just popped. The token is read first: once `status` is final the leaf
 * may complete and its frame go away (async_sync.h, "Wakes"). */
static void finish(int32_t *status, tml_waiter *w, int32_t st) {
    tml_waker waker = w->waker;
    /* release: the value moved to or from the leaf happens before its
     * poll's lock-free acquire of `status` (step) */
    mt_atomic32_store_release(status, st);
    tml_wake(waker);
}

/* Fails every waiter. A GRANTED send is on no list: its own poll sees
 * `closed` and fails (send_granted), its drop frees its slot. */
static void close_locked(tml_chan *c) {
    tml_waiter *w;
    c->closed = true;
    while ((w = mt_waitlist_pop(&c->senders)))
        finish(&SEND_OF(w)->status, w, TML_CHAN_CLOSED);
    while ((w = mt_waitlist_pop(&c->receivers))) /* the ring is empty */
        finish(&RECV_OF(w)->status, w, TML_CHAN_CLOSED);
}

void tml_chan_close(tml_chan *c) {
    MT_ASSERT(c);
    mt_spin_lock(&c->lock);
    if (!c->closed)
        close_locked(c);
    mt_spin_unlock(&c->lock);
}

static uint32_t count_of(uint64_t ends, uint64_t unit) {
    return (uint32_t)(unit == SENDER ? ends >> 32 : ends);
}

/* Drops one handle of the end counted by `unit`. The last one of an end
 * closes the channel first: once an end's count reads 1, only our handle
 * is left, so nobody can add or drop one of that end while we close. */
static void release_end(tml_chan *c, uint64_t unit) {
    uint64_t old = mt_atomic_load(&c->ends); /* relaxed: the CAS re-checks */
    while (count_of(old, unit) > 1) {
        uint64_t seen = mt_atomic_cas(&c->ends, old, old - unit); /* acq_rel: see below */
        if (seen == old)
            return;
        old = seen;
    }
    MT_ASSERT(count_of(old, unit) == 1);
    tml_chan_close(c);
    /* acq_rel: every other owner's use happens before the free */
    if (mt_atomic_fetch_add(&c->ends, -unit) == unit)
        chan_free(c);
}

/* Retain: the caller holds a handle of that end, so the object is alive
 * and the count cannot be reaching zero; any ordering would do. */
void tml_sender_retain(tml_chan *c) { mt_atomic_fetch_add(&c->ends, SENDER); }
void tml_receiver_retain(tml_chan *c) { mt_atomic_fetch_add(&c->ends, RECEIVER); }
void tml_sender_release(tml_chan *c) { release_end(c, SENDER); }
void tml_receiver_release(tml_chan *c) { release_end(c, RECEIVER); }

/* Moves `value` straight to the oldest waiting receiver, if one waits
 * (then the ring is empty). Lock held. Returns whether one did. */
static inline __attribute__((always_inline)) bool hand_off(tml_chan *c, const void *value) {
    tml_waiter *w = mt_waitlist_pop(&c->receivers);
    if (!w)
        return false;
    copy_value(RECV_OF(w)->out, value, c->elem_size);
    finish(&RECV_OF(w)->status, w, TML_CHAN_OK);
    return true;
}

/* Sends `value`: hand-off to a waiting receiver, else into the ring if a
 * slot is neither full nor granted. Returns TML_CHAN_OK, TML_CHAN_CLOSED,
 * or IN_FLIGHT when full. This, hand_off, recv_locked and step are forced
 * inline: they are the hot path of every message, and gcc stops inlining
 * them once they have a second caller (measured: 20% slower per message
 * on one worker). */
static inline __attribute__((always_inline)) int32_t send_locked(tml_chan *c, void *value) {
    if (c->closed)
        return TML_CHAN_CLOSED;
    if (hand_off(c, value))
        return TML_CHAN_OK;
    if (c->len + c->granted >= c->cap)
        return IN_FLIGHT;
    ring_push(c, value);
    return TML_CHAN_OK;
}

/* Gives the slot of a send that will not fill it (dropped, or its value
 * went to a receiver) to the oldest waiting sender, granting and waking
 * it; frees it when none waits, or while given-back values overshoot.
 * Lock held; granted > 0. */
static void pass_grant(tml_chan *c) {
    MT_ASSERT(c->granted > 0);
    tml_waiter *w = c->len + c->granted <= c->cap ? mt_waitlist_pop(&c->senders) : NULL;
    if (w)
        finish(&SEND_OF(w)->status, w, GRANTED);
    else
        c->granted--;
}

/* The write of a GRANTED send, in its own poll: to a receiver that waits
 * (passing the unused slot on), else into its slot. A grant is void once
 * the channel is closed: the value is not taken. Lock held. */
static int32_t send_granted(tml_chan *c, void *value) {
    MT_ASSERT(c->granted > 0);
    if (c->closed) {
        c->granted--;
        return TML_CHAN_CLOSED;
    }
    if (hand_off(c, value)) {
        pass_grant(c);
        return TML_CHAN_OK;
    }
    c->granted--;
    ring_append(c, value); /* may overshoot with given-back values */
    return TML_CHAN_OK;
}

/* Receives into `out`; the freed slot is granted to the oldest waiting
 * sender, which writes its value when it polls. Returns TML_CHAN_OK,
 * TML_CHAN_CLOSED (closed and drained), or IN_FLIGHT when empty. */
static inline __attribute__((always_inline)) int32_t recv_locked(tml_chan *c, void *out) {
    if (c->len == 0)
        return c->closed ? TML_CHAN_CLOSED : IN_FLIGHT;
    ring_pop(c, out);
    if (c->len + c->granted < c->cap) { /* not while given-back values overshoot */
        tml_waiter *w = mt_waitlist_pop(&c->senders);
        if (w) {
            c->granted++;
            finish(&SEND_OF(w)->status, w, GRANTED);
        }
    }
    return TML_CHAN_OK;
}

/* A value a dropped receive had been handed goes back where it came
 * from: to the oldest waiting receiver (then the ring is empty), else to
 * the front of the ring. Lock held. */
static void give_back(tml_chan *c, const void *value) {
    if (!hand_off(c, value))
        ring_push_front(c, value);
}

/* One attempt of a send or recv leaf, without the budget. Returns true
 * once `status` is final. A FRESH leaf tries `op` once and, if it cannot
 * finish, queues on `list`; a QUEUED one only waits for its hand-off or
 * grant, whose `status` it reads without the lock (one acquire load: a
 * woken receive costs no lock). Under the lock a QUEUED leaf that is not
 * linked was completed or granted (async_sync.h), and must not run `op`
 * a second time; a GRANTED one (sends only: `write` is NULL for
 * receives) runs `write` instead, once. Inlined into each leaf, so `op`
 * and `write` are direct calls. */
static inline __attribute__((always_inline)) bool
step(tml_chan *c, int32_t (*op)(tml_chan *, void *), int32_t (*write)(tml_chan *, void *), void *data,
     mt_waitlist *list, tml_waiter *w, int32_t *status, int32_t *phase, tml_waker waker) {
    if (mt_atomic32_load_acquire(status) >= 0) /* final; pairs with finish() */
        return true;
    bool done = true;
    mt_spin_lock(&c->lock);
    if (w->linked) {
        w->waker = waker; /* a spurious wake: wait on */
        done = false;
    } else if (*phase == LEAF_FRESH) {
        int32_t st = op(c, data);
        mt_atomic32_store_release(status, st); /* every write is atomic: read without the lock */
        if (st == IN_FLIGHT) {
            mt_waitlist_push(list, w, waker);
            *phase = LEAF_QUEUED;
            done = false;
        }
    } else if (write && *status == GRANTED) { /* stable: only this leaf changes it now */
        mt_atomic32_store_release(status, write(c, data));
    }
    mt_spin_unlock(&c->lock);
    return done;
}

static inline __attribute__((always_inline)) bool send_step(tml_send_fut *f, tml_waker waker) {
    return step(f->c, send_locked, send_granted, f->value, &f->c->senders, &f->w, &f->status, &f->phase,
                waker);
}

static inline __attribute__((always_inline)) bool recv_step(tml_recv_fut *f, tml_waker waker) {
    return step(f->c, recv_locked, NULL, f->out, &f->c->receivers, &f->w, &f->status, &f->phase, waker);
}

void tml_send_init(tml_send_fut *f, tml_chan *c, void *value) {
    MT_ASSERT(f && c && value);
    memset(f, 0, sizeof *f);
    f->c = c;
    f->value = value;
    f->status = IN_FLIGHT;
}

/* A Ready spends one unit of the cooperative budget; with none left the
 * leaf stays untouched and returns Pending (mt_worker.c). */
tml_poll tml_send_poll(tml_send_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->c && cx && f->phase != LEAF_DONE);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    if (!send_step(f, cx->waker))
        return mt_task_waits(cx, MT_WAIT_SEND);
    f->phase = LEAF_DONE;
    return mt_budget_ready(cx);
}

/* Unlinks a waiting send, or passes on the slot it was granted; either
 * way its value was not taken and stays the caller's (rt.h), and its
 * status reads IN_FLIGHT (or CLOSED, when a close failed it first). */
void tml_send_drop(tml_send_fut *f) {
    MT_ASSERT(f && f->c);
    /* acquire: pairs with finish(); a final status needs no lock */
    if (f->phase == LEAF_QUEUED && mt_atomic32_load_acquire(&f->status) < 0) {
        mt_spin_lock(&f->c->lock);
        if (f->w.linked) {
            mt_waitlist_remove(&f->c->senders, &f->w);
        } else if (f->status == GRANTED) { /* stable: only this leaf changes it now */
            pass_grant(f->c);
            mt_atomic32_store_release(&f->status, IN_FLIGHT); /* atomic, as every write */
        }
        mt_spin_unlock(&f->c->lock);
    }
    f->phase = LEAF_DONE;
}

void tml_recv_init(tml_recv_fut *f, tml_chan *c, void *out) {
    MT_ASSERT(f && c && out);
    memset(f, 0, sizeof *f);
    f->c = c;
    f->out = out;
    f->status = IN_FLIGHT;
}

tml_poll tml_recv_poll(tml_recv_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->c && cx && f->phase != LEAF_DONE);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    if (!recv_step(f, cx->waker))
        return mt_task_waits(cx, MT_WAIT_RECV);
    f->phase = LEAF_DONE;
    return mt_budget_ready(cx);
}

/* Takes a recv leaf out of its channel's queue, ending it. Returns true
 * when it had been served first (its status is final and `out` holds
 * the value on OK), false when it was still waiting. */
static bool recv_cancel(tml_recv_fut *f) {
    bool served = mt_atomic32_load_acquire(&f->status) != IN_FLIGHT; /* pairs with finish() */
    if (f->phase == LEAF_QUEUED && !served) {
        mt_spin_lock(&f->c->lock);
        if (f->w.linked)
            mt_waitlist_remove(&f->c->receivers, &f->w);
        else
            served = true; /* completed while we took the lock */
        mt_spin_unlock(&f->c->lock);
    }
    f->phase = LEAF_DONE;
    return served;
}

/* Unlinks a waiting receive; a value it was handed goes back (rt.h). */
void tml_recv_drop(tml_recv_fut *f) {
    MT_ASSERT(f && f->c);
    if (f->phase != LEAF_QUEUED) { /* FRESH: nothing happened; DONE: no-op */
        f->phase = LEAF_DONE;
        return;
    }
    if (recv_cancel(f) && f->status == TML_CHAN_OK) {
        mt_spin_lock(&f->c->lock);
        give_back(f->c, f->out);
        mt_spin_unlock(&f->c->lock);
    }
}

void tml_recv_timeout_init(tml_recv_timeout_fut *f, tml_chan *c, void *out, int64_t duration_ns) {
    MT_ASSERT(f && c && out);
    tml_recv_init(&f->recv, c, out);
    tml_sleep_init(&f->sleep, duration_ns);
    f->status = IN_FLIGHT;
    f->reserved = 0;
}

/* The receive first, then the timer: a value that is there wins over an
 * expired deadline, and one handed over while the deadline passes is
 * found by recv_cancel and returned. Ready cancels the timer. One budget
 * check for both (the deadline is polled outside it). */
tml_poll tml_recv_timeout_poll(tml_recv_timeout_fut *f, tml_cx *cx) {
    MT_ASSERT(f && cx && f->recv.phase != LEAF_DONE);
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    if (recv_step(&f->recv, cx->waker)) {
        f->recv.phase = LEAF_DONE;
        f->status = f->recv.status;
        tml_sleep_drop(&f->sleep);
        return mt_budget_ready(cx);
    }
    if (tml_deadline_poll(&f->sleep, cx) == TML_PENDING)
        return TML_PENDING;
    f->status = recv_cancel(&f->recv) ? f->recv.status : TML_CHAN_TIMEOUT;
    return mt_budget_ready(cx);
}

void tml_recv_timeout_drop(tml_recv_timeout_fut *f) {
    MT_ASSERT(f);
    tml_recv_drop(&f->recv);
    tml_sleep_drop(&f->sleep);
}

static tml_poll send_leaf(void *leaf, tml_cx *cx) { return tml_send_poll(leaf, cx); }
static tml_poll recv_leaf(void *leaf, tml_cx *cx) { return tml_recv_poll(leaf, cx); }
static tml_poll recv_timeout_leaf(void *leaf, tml_cx *cx) { return tml_recv_timeout_poll(leaf, cx); }
static void send_leaf_drop(void *leaf) { tml_send_drop(leaf); }
static void recv_leaf_drop(void *leaf) { tml_recv_drop(leaf); }
static void recv_timeout_leaf_drop(void *leaf) { tml_recv_timeout_drop(leaf); }

/* The blocking forms report a wait the shutdown deadline ended (its leaf
 * dropped) as TML_CHAN_CLOSED. */
int32_t tml_chan_send_blocking(tml_chan *c, void *value) {
    tml_send_fut f;
    tml_send_init(&f, c, value);
    if (!mt_block_on_leaf(send_leaf, send_leaf_drop, &f))
        return TML_CHAN_CLOSED; /* a dropped send delivered nothing (rt.h) */
    return f.status;
}

int32_t tml_chan_recv_blocking(tml_chan *c, void *out) {
    tml_recv_fut f;
    tml_recv_init(&f, c, out);
    if (!mt_block_on_leaf(recv_leaf, recv_leaf_drop, &f))
        return TML_CHAN_CLOSED; /* a value it was handed went back */
    return f.status;
}

int32_t tml_chan_recv_timeout_blocking(tml_chan *c, void *out, int64_t duration_ns) {
    tml_recv_timeout_fut f;
    tml_recv_timeout_init(&f, c, out, duration_ns);
    if (!mt_block_on_leaf(recv_timeout_leaf, recv_timeout_leaf_drop, &f))
        return TML_CHAN_CLOSED; /* as recv */
    return f.status;
}

int32_t tml_chan_try_send(tml_chan *c, const void *value) {
    MT_ASSERT(c && value);
    mt_spin_lock(&c->lock);
    int32_t st = send_locked(c, (void *)value); /* only read */
    mt_spin_unlock(&c->lock);
    return st == IN_FLIGHT ? TML_CHAN_FULL : st;
}

int32_t tml_chan_try_recv(tml_chan *c, void *out) {
    MT_ASSERT(c && out);
    mt_spin_lock(&c->lock);
    int32_t st = recv_locked(c, out);
    mt_spin_unlock(&c->lock);
    return st == IN_FLIGHT ? TML_CHAN_EMPTY : st;
}

int64_t tml_chan_len(tml_chan *c) {
    MT_ASSERT(c);
    mt_spin_lock(&c->lock);
    int64_t len = (int64_t)c->len;
    mt_spin_unlock(&c->lock);
    return len;
}
