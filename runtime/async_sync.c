/* async_sync.c - intrusive wait lists and channels (Mutex and Semaphore
 * join them in a later issue).
 *
 * mt_waitlist: a FIFO of tml_waiter nodes embedded in leaf futures, so
 * waiting never allocates. Every list is guarded by its owner's lock
 * (channel, join block). A node is `linked` exactly while it is on a list;
 * whoever unlinks a node wakes its waker, and only after that may the
 * waiting leaf return Ready, so a node never outlives its future on a list.
 *
 * Channel. One object backs both ends: a lock, a ring buffer of values
 * (elem_size bytes each) and two wait lists. Invariants, under the lock:
 *   - len <= cap (cap = SIZE_MAX when unbounded), len <= ring_cap, and the
 *     values in order are ring[(head + i) % ring_cap], i < len;
 *   - receivers wait only while len == 0 and the channel is open;
 *   - senders wait only while len == cap and the channel is open;
 *   - a waiting leaf is completed by the thread that makes progress
 *     possible ("hand-off", as Go's chansend/chanrecv, runtime/chan.go):
 *     a send moves its value straight into the oldest waiting receiver's
 *     `out`; a receive that frees a slot moves the oldest waiting
 *     sender's value into the ring. Its `status` is set before its task
 *     is woken, so a woken leaf never retries, waiters are served in FIFO
 *     order, and no wake-up is wasted or lost;
 *   - once closed: sends fail (the value stays with the caller), receives
 *     drain the ring and then fail; close completes every waiter.
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
 * by finish()), so the woken task's poll takes no lock at all.
 * Wakes happen under the channel lock: tml_wake never takes a channel
 * lock, so there is no cycle; deferring them past the unlock is an
 * optimisation for the contention issue.
 * Rejected: a lock-free ring (the channel issue may bring one; the lock
 * keeps close and hand-off simple and obviously correct); a pthread
 * mutex (two locked instructions per section, 40 bytes). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_internal.h"

#define IN_FLIGHT (-1) /* status of a leaf that has not finished */
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
    if (!w)
        return NULL;
    l->head = w->next;
    if (l->head)
        l->head->prev = NULL;
    else
        l->tail = NULL;
    w->prev = w->next = NULL;
    w->linked = 0;
    return w;
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
static void copy_value(void *dst, const void *src, size_t size) {
    switch (size) {
    case 8: memcpy(dst, src, 8); break;
    case 16: memcpy(dst, src, 16); break;
    case 4: memcpy(dst, src, 4); break;
    case 0: break;
    default: memcpy(dst, src, size); break;
    }
}

static void *value_at(tml_chan *c, size_t i) {
    return c->ring + (c->head + i) % c->ring_cap * c->elem_size;
}

/* Doubles the ring (up to cap), keeping the order. Lock held.
 * Returns 0 or -ENOMEM. */
static int grow(tml_chan *c) {
    size_t ncap = c->ring_cap ? c->ring_cap * 2 : FIRST_RING_CAP;
    if (ncap > c->cap)
        ncap = c->cap;
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

/* Copies `value` in at the back. Lock held; len < cap. */
static void ring_push(tml_chan *c, const void *value) {
    MT_ASSERT(c->len < c->cap);
    if (c->len == c->ring_cap) {
        int err = grow(c);
        if (err)
            mt_panic_err("channel send", err);
    }
    copy_value(value_at(c, c->len), value, c->elem_size);
    c->len++;
}

/* Moves the front value to `out`. Lock held; len > 0. */
static void ring_pop(tml_chan *c, void *out) {
    copy_value(out, value_at(c, 0), c->elem_size);
    c->head = (c->head + 1) % c->ring_cap;
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
    for (; c->len > 0; c->len--, c->head = (c->head + 1) % c->ring_cap) {
        if (c->elem_drop)
            c->elem_drop(value_at(c, 0));
    }
    free(c->ring);
    tml_free(c);
}

/* Sets a waiting leaf's status and wakes its task. Lock held. */
static void finish(int32_t *status, tml_waiter *w, int32_t st) {
    /* release: the value moved to or from the leaf happens before its
     * poll's lock-free acquire of `status` (poll_leaf) */
    mt_atomic32_store_release(status, st);
    tml_wake(w->waker);
}

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

/* Sends `value`: hand-off to a waiting receiver, else into the ring.
 * Returns TML_CHAN_OK, TML_CHAN_CLOSED, or IN_FLIGHT when full. */
static int32_t send_locked(tml_chan *c, void *value) {
    if (c->closed)
        return TML_CHAN_CLOSED;
    tml_waiter *w = mt_waitlist_pop(&c->receivers);
    if (w) {
        copy_value(RECV_OF(w)->out, value, c->elem_size);
        finish(&RECV_OF(w)->status, w, TML_CHAN_OK);
        return TML_CHAN_OK;
    }
    if (c->len == c->cap)
        return IN_FLIGHT;
    ring_push(c, value);
    return TML_CHAN_OK;
}

/* Receives into `out`; the freed slot takes the oldest waiting sender's
 * value. Returns TML_CHAN_OK, TML_CHAN_CLOSED (closed and drained), or
 * IN_FLIGHT when empty. */
static int32_t recv_locked(tml_chan *c, void *out) {
    if (c->len == 0)
        return c->closed ? TML_CHAN_CLOSED : IN_FLIGHT;
    ring_pop(c, out);
    tml_waiter *w = mt_waitlist_pop(&c->senders);
    if (w) {
        ring_push(c, SEND_OF(w)->value);
        finish(&SEND_OF(w)->status, w, TML_CHAN_OK);
    }
    return TML_CHAN_OK;
}

/* The poll shared by send and recv: tries `op` once; if it cannot finish,
 * queues the leaf on `list`. A queued leaf waits for its hand-off, whose
 * `status` it reads without the lock (one acquire load: a woken leaf
 * costs no lock). A Ready spends one unit of the cooperative budget; with
 * none left the leaf stays untouched and returns Pending (mt_worker.c).
 * Inlined into each leaf, so `op` is a direct call. */
static inline __attribute__((always_inline)) tml_poll
poll_leaf(tml_chan *c, int32_t (*op)(tml_chan *, void *), void *data, mt_waitlist *list, tml_waiter *w,
          int32_t *status, tml_cx *cx) {
    if (!mt_budget_poll(cx))
        return TML_PENDING;
    if (mt_atomic32_load_acquire(status) != IN_FLIGHT) /* pairs with finish() */
        return mt_budget_ready(cx);
    bool ready = false;
    mt_spin_lock(&c->lock);
    if (!w->linked) {
        int32_t st = op(c, data);
        mt_atomic32_store_release(status, st); /* every write is atomic: read without the lock */
        if (st == IN_FLIGHT)
            mt_waitlist_push(list, w, cx->waker);
        ready = st != IN_FLIGHT;
    }
    mt_spin_unlock(&c->lock);
    return ready ? mt_budget_ready(cx) : TML_PENDING;
}

void tml_send_init(tml_send_fut *f, tml_chan *c, void *value) {
    MT_ASSERT(f && c && value);
    memset(f, 0, sizeof *f);
    f->c = c;
    f->value = value;
    f->status = IN_FLIGHT;
}

tml_poll tml_send_poll(tml_send_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->c && cx);
    return poll_leaf(f->c, send_locked, f->value, &f->c->senders, &f->w, &f->status, cx);
}

void tml_recv_init(tml_recv_fut *f, tml_chan *c, void *out) {
    MT_ASSERT(f && c && out);
    memset(f, 0, sizeof *f);
    f->c = c;
    f->out = out;
    f->status = IN_FLIGHT;
}

tml_poll tml_recv_poll(tml_recv_fut *f, tml_cx *cx) {
    MT_ASSERT(f && f->c && cx);
    return poll_leaf(f->c, recv_locked, f->out, &f->c->receivers, &f->w, &f->status, cx);
}

static tml_poll send_leaf(void *leaf, tml_cx *cx) { return tml_send_poll(leaf, cx); }
static tml_poll recv_leaf(void *leaf, tml_cx *cx) { return tml_recv_poll(leaf, cx); }

int32_t tml_chan_send_blocking(tml_chan *c, void *value) {
    tml_send_fut f;
    tml_send_init(&f, c, value);
    mt_block_on_leaf(send_leaf, &f);
    return f.status;
}

int32_t tml_chan_recv_blocking(tml_chan *c, void *out) {
    tml_recv_fut f;
    tml_recv_init(&f, c, out);
    mt_block_on_leaf(recv_leaf, &f);
    return f.status;
}
