/* async_sync_test.c - channels end to end: order, bounded waits, close,
 * end counting, dropping buffered values, many producers and consumers
 * on several workers, wakes from a foreign thread, ping-pong. */
#include "rt_test.h"

/* async func producer(tx, next, last) -> I64: sends next..last, stops at
 * the first failed send, returns how many were sent; drops tx if asked. */
typedef struct producer_frame {
    uint32_t state;
    tml_chan *tx;
    int64_t next, last;
    bool release_tx;
    latch *blocked; /* counts polls where the send had to wait for room */
    int64_t v;
    tml_send_fut aw;
    int64_t ret;
} producer_frame;

static tml_poll producer_poll(void *frame, tml_cx *cx) {
    producer_frame *f = frame;
    for (; f->next <= f->last; f->next++) {
        if (f->state == 0) {
            f->v = f->next;
            tml_send_init(&f->aw, f->tx, &f->v);
            f->state = 1;
        }
        if (tml_send_poll(&f->aw, cx) == TML_PENDING) {
            if (f->blocked && !budget_spent(cx)) /* waits, not a budget yield */
                latch_add(f->blocked, 1);
            return TML_PENDING;
        }
        f->state = 0;
        if (f->aw.status != TML_CHAN_OK)
            break;
        f->ret++;
    }
    if (f->release_tx)
        tml_sender_release(f->tx);
    return TML_READY;
}

static const tml_task_vt producer_vt = {producer_poll, sizeof(producer_frame), offsetof(producer_frame, ret),
                                        sizeof(int64_t), NULL, "producer"};

typedef struct tally {
    int64_t sum, count, last;
    bool in_order; /* every value greater than the one before */
} tally;

/* async func consumer(rx) -> Tally: receives until the channel closes. */
typedef struct consumer_frame {
    uint32_t state;
    tml_chan *rx;
    latch *waiting; /* counts polls where the receive had to wait for a value */
    int64_t v;
    tml_recv_fut aw;
    tally ret;
} consumer_frame;

static tml_poll consumer_poll(void *frame, tml_cx *cx) {
    consumer_frame *f = frame;
    for (;;) {
        if (f->state == 0) {
            tml_recv_init(&f->aw, f->rx, &f->v);
            f->state = 1;
        }
        if (tml_recv_poll(&f->aw, cx) == TML_PENDING) {
            if (f->waiting && !budget_spent(cx)) /* waits, not a budget yield */
                latch_add(f->waiting, 1);
            return TML_PENDING;
        }
        f->state = 0;
        if (f->aw.status != TML_CHAN_OK)
            return TML_READY;
        f->ret.in_order = f->ret.in_order && (f->ret.count == 0 || f->v > f->ret.last);
        f->ret.last = f->v;
        f->ret.sum += f->v;
        f->ret.count++;
    }
}

static const tml_task_vt consumer_vt = {consumer_poll, sizeof(consumer_frame), offsetof(consumer_frame, ret),
                                        sizeof(tally), NULL, "consumer"};

static tml_join *spawn_producer(tml_chan *tx, int64_t first, int64_t last, latch *blocked) {
    return tml_spawn(&producer_vt, &(producer_frame){.tx = tx, .next = first, .last = last, .blocked = blocked});
}

static tml_join *spawn_consumer(tml_chan *rx, latch *waiting) {
    return tml_spawn(&consumer_vt, &(consumer_frame){.rx = rx, .waiting = waiting, .ret.in_order = true});
}

static tally join_tally(tml_join *h) {
    tally t = {0};
    cr_assert_eq(tml_join_blocking(h, &t), TML_JOIN_OK);
    tml_join_release(h);
    return t;
}

static int64_t join_i64(tml_join *h) {
    int64_t v = -1;
    cr_assert_eq(tml_join_blocking(h, &v), TML_JOIN_OK);
    tml_join_release(h);
    return v;
}

static void release_both(tml_chan *c) {
    tml_sender_release(c);
    tml_receiver_release(c);
}

Test(async_sync, values_arrive_in_send_order, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 4, NULL);
    tml_join *p = spawn_producer(c, 1, 1000, NULL);
    tml_join *r = spawn_consumer(c, NULL);
    cr_assert_eq(join_i64(p), 1000);
    tml_sender_release(c); /* last sender: closes, the consumer drains and ends */
    tally t = join_tally(r);
    cr_assert_eq(t.count, 1000);
    cr_assert_eq(t.sum, 500500);
    cr_assert(t.in_order);
    tml_receiver_release(c);
    tml_main_exit(0);
}

Test(async_sync, unbounded_send_never_waits, .timeout = 10) {
    enter_with_workers("2");
    latch blocked;
    latch_init(&blocked);
    tml_chan *c = tml_chan_new(sizeof(int64_t), -1, NULL);
    cr_assert_eq(join_i64(spawn_producer(c, 1, 10000, &blocked)), 10000);
    cr_assert_eq(latch_count(&blocked), 0);
    tml_chan_close(c);
    tally t = join_tally(spawn_consumer(c, NULL));
    cr_assert_eq(t.count, 10000);
    cr_assert(t.in_order);
    release_both(c);
    tml_main_exit(0);
}

Test(async_sync, bounded_send_waits_while_full_and_resumes, .timeout = 10) {
    enter_with_workers("2");
    latch blocked;
    latch_init(&blocked);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 2, NULL);
    tml_join *p = spawn_producer(c, 1, 3, &blocked);
    cr_assert(latch_wait(&blocked, 1)); /* the third send waits: 2 buffered */
    cr_assert_not(tml_join_is_finished(p));
    int64_t v = 0;
    cr_assert_eq(tml_chan_recv_blocking(c, &v), TML_CHAN_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(join_i64(p), 3); /* resumed: its value took the freed slot */
    for (int64_t want = 2; want <= 3; want++) {
        cr_assert_eq(tml_chan_recv_blocking(c, &v), TML_CHAN_OK);
        cr_assert_eq(v, want);
    }
    release_both(c);
    tml_main_exit(0);
}

Test(async_sync, close_drains_buffered_values_then_reports_closed, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 8, NULL);
    for (int64_t v = 1; v <= 2; v++)
        cr_assert_eq(tml_chan_send_blocking(c, &v), TML_CHAN_OK);
    tml_chan_close(c);
    tml_chan_close(c); /* idempotent */
    int64_t out = 0;
    for (int64_t want = 1; want <= 2; want++) {
        cr_assert_eq(tml_chan_recv_blocking(c, &out), TML_CHAN_OK);
        cr_assert_eq(out, want);
    }
    out = -7;
    cr_assert_eq(tml_chan_recv_blocking(c, &out), TML_CHAN_CLOSED);
    cr_assert_eq(out, -7); /* untouched */
    release_both(c);
    tml_main_exit(0);
}

Test(async_sync, close_wakes_every_waiting_receiver, .timeout = 10) {
    enter_with_workers("3");
    latch waiting;
    latch_init(&waiting);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *r[3];
    for (int i = 0; i < 3; i++)
        r[i] = spawn_consumer(c, &waiting);
    cr_assert(latch_wait(&waiting, 3));
    tml_chan_close(c);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(join_tally(r[i]).count, 0);
    release_both(c);
    tml_main_exit(0);
}

/* Values that own memory, to check who drops them. */
static mt_atomic drops;

static void drop_box(void *value) {
    free(*(int64_t **)value);
    mt_atomic_fetch_add(&drops, 1);
}

static int64_t *box(int64_t v) {
    int64_t *b = malloc(sizeof *b);
    *b = v;
    return b;
}

/* async func send_box(tx, b) -> I32: one send; returns its status. */
typedef struct send_box_frame {
    uint32_t state;
    tml_chan *tx;
    int64_t *b;
    tml_send_fut aw;
    latch *blocked;
    int32_t ret;
} send_box_frame;

static tml_poll send_box_poll(void *frame, tml_cx *cx) {
    send_box_frame *f = frame;
    if (f->state == 0) {
        tml_send_init(&f->aw, f->tx, &f->b);
        f->state = 1;
    }
    if (tml_send_poll(&f->aw, cx) == TML_PENDING) {
        latch_add(f->blocked, 1);
        return TML_PENDING;
    }
    f->ret = f->aw.status;
    if (f->ret != TML_CHAN_OK)
        drop_box(&f->b); /* not taken: still ours to drop */
    return TML_READY;
}

static const tml_task_vt send_box_vt = {send_box_poll, sizeof(send_box_frame), offsetof(send_box_frame, ret),
                                        sizeof(int32_t), NULL, "send_box"};

Test(async_sync, close_fails_a_waiting_sender_and_leaves_it_the_value, .timeout = 10) {
    enter_with_workers("2");
    latch blocked;
    latch_init(&blocked);
    tml_chan *c = tml_chan_new(sizeof(int64_t *), 1, drop_box);
    int64_t *first = box(1);
    cr_assert_eq(tml_chan_send_blocking(c, &first), TML_CHAN_OK);
    tml_join *s = tml_spawn(&send_box_vt, &(send_box_frame){.tx = c, .b = box(2), .blocked = &blocked});
    cr_assert(latch_wait(&blocked, 1)); /* full: it waits */
    tml_chan_close(c);
    int32_t status = -1;
    cr_assert_eq(tml_join_blocking(s, &status), TML_JOIN_OK);
    tml_join_release(s);
    cr_assert_eq(status, TML_CHAN_CLOSED);
    cr_assert_eq(mt_atomic_load(&drops), 1); /* the sender dropped its own value */
    release_both(c);                         /* frees the channel: drops `first` */
    cr_assert_eq(mt_atomic_load(&drops), 2);
    tml_main_exit(0);
}

Test(async_sync, send_after_close_returns_closed_with_the_value_untouched, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t *), -1, drop_box);
    tml_chan_close(c);
    int64_t *b = box(9);
    int64_t *sent = b;
    cr_assert_eq(tml_chan_send_blocking(c, &sent), TML_CHAN_CLOSED);
    cr_assert_eq(sent, b);
    cr_assert_eq(*sent, 9);
    release_both(c);
    cr_assert_eq(mt_atomic_load(&drops), 0); /* the channel never owned it */
    free(b);
    tml_main_exit(0);
}

Test(async_sync, freeing_the_channel_drops_buffered_values, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t *), -1, drop_box);
    for (int i = 0; i < 40; i++) { /* the ring grows and wraps */
        int64_t *b = box(i), *out;
        cr_assert_eq(tml_chan_send_blocking(c, &b), TML_CHAN_OK);
        if (i % 3 == 0) {
            cr_assert_eq(tml_chan_recv_blocking(c, &out), TML_CHAN_OK);
            free(out);
        }
    }
    release_both(c);
    cr_assert_eq(mt_atomic_load(&drops), 26); /* 40 sent, 14 received */
    tml_main_exit(0);
}

Test(async_sync, last_sender_release_closes, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 4, NULL);
    tml_join *r = spawn_consumer(c, NULL);
    tml_sender_retain(c); /* a second sender */
    tml_sender_release(c);
    int64_t v = 5;
    cr_assert_eq(tml_chan_send_blocking(c, &v), TML_CHAN_OK); /* still open */
    tml_sender_release(c); /* the last one */
    tally t = join_tally(r);
    cr_assert_eq(t.count, 1);
    cr_assert_eq(t.sum, 5);
    tml_receiver_release(c);
    tml_main_exit(0);
}

Test(async_sync, last_receiver_release_fails_waiting_senders, .timeout = 10) {
    enter_with_workers("2");
    latch blocked;
    latch_init(&blocked);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *p = spawn_producer(c, 1, 5, &blocked);
    cr_assert(latch_wait(&blocked, 1));
    tml_receiver_release(c); /* nobody can receive any more */
    cr_assert_eq(join_i64(p), 1); /* one buffered, the second send failed */
    tml_sender_release(c);
    tml_main_exit(0);
}

Test(async_sync, unit_values_travel, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(0, 2, NULL);
    char unit;
    for (int i = 0; i < 2; i++)
        cr_assert_eq(tml_chan_send_blocking(c, &unit), TML_CHAN_OK);
    tml_chan_close(c);
    cr_assert_eq(tml_chan_recv_blocking(c, &unit), TML_CHAN_OK);
    cr_assert_eq(tml_chan_recv_blocking(c, &unit), TML_CHAN_OK);
    cr_assert_eq(tml_chan_recv_blocking(c, &unit), TML_CHAN_CLOSED);
    release_both(c);
    tml_main_exit(0);
}

Test(async_sync, many_producers_and_consumers_get_the_exact_sum, .timeout = 10) {
    enum { PRODUCERS = 8, CONSUMERS = 4, EACH = 5000 };
    enter_with_workers("4");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 16, NULL);
    tml_join *p[PRODUCERS], *r[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        tml_receiver_retain(c);
        r[i] = spawn_consumer(c, NULL);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        tml_sender_retain(c);
        p[i] = tml_spawn(&producer_vt, &(producer_frame){.tx = c, .next = (int64_t)i * EACH + 1,
                                                         .last = (int64_t)(i + 1) * EACH, .release_tx = true});
    }
    release_both(c); /* the producers' releases close it */
    int64_t sent = 0, sum = 0, count = 0;
    for (int i = 0; i < PRODUCERS; i++)
        sent += join_i64(p[i]);
    for (int i = 0; i < CONSUMERS; i++) {
        tally t = join_tally(r[i]);
        sum += t.sum;
        count += t.count;
        tml_receiver_release(c);
    }
    const int64_t n = (int64_t)PRODUCERS * EACH;
    cr_assert_eq(sent, n);
    cr_assert_eq(count, n);
    cr_assert_eq(sum, n * (n + 1) / 2);
    tml_main_exit(0);
}

static void *close_from_outside(void *c) {
    tml_chan_close(c);
    return NULL;
}

Test(async_sync, close_from_a_foreign_thread_wakes_the_receiver, .timeout = 10) {
    enter_with_workers("2");
    latch waiting;
    latch_init(&waiting);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *r = spawn_consumer(c, &waiting);
    cr_assert(latch_wait(&waiting, 1)); /* parked workers, a waiting task */
    pthread_join(foreign_thread(close_from_outside, c), NULL);
    cr_assert_eq(join_tally(r).count, 0);
    release_both(c);
    tml_main_exit(0);
}

/* async func echo(rx, tx): answers each value v with v + 1 until rx
 * closes; then drops both its handles. */
typedef struct echo_frame {
    uint32_t state;
    tml_chan *rx, *tx;
    int64_t v;
    union {
        tml_recv_fut recv;
        tml_send_fut send;
    } aw;
} echo_frame;

static tml_poll echo_poll(void *frame, tml_cx *cx) {
    echo_frame *f = frame;
    for (;;) {
        switch (f->state) {
        case 0:
            tml_recv_init(&f->aw.recv, f->rx, &f->v);
            f->state = 1;
            /* fallthrough */
        case 1:
            if (tml_recv_poll(&f->aw.recv, cx) == TML_PENDING)
                return TML_PENDING;
            if (f->aw.recv.status != TML_CHAN_OK) {
                tml_receiver_release(f->rx);
                tml_sender_release(f->tx);
                return TML_READY;
            }
            f->v++;
            tml_send_init(&f->aw.send, f->tx, &f->v);
            f->state = 2;
            /* fallthrough */
        case 2:
            if (tml_send_poll(&f->aw.send, cx) == TML_PENDING)
                return TML_PENDING;
            f->state = 0;
        }
    }
}

static const tml_task_vt echo_vt = {echo_poll, sizeof(echo_frame), 0, 0, NULL, "echo"};

/* async func pinger(tx, rx) -> I64: sends 1..ROUNDS, each after the
 * previous answer; returns how many answers were right; drops both its
 * handles (closing tx ends the echo). */
#define ROUNDS 1000
typedef struct pinger_frame {
    uint32_t state;
    tml_chan *tx, *rx;
    int64_t i, v;
    union {
        tml_send_fut send;
        tml_recv_fut recv;
    } aw;
    int64_t ret;
} pinger_frame;

static tml_poll pinger_poll(void *frame, tml_cx *cx) {
    pinger_frame *f = frame;
    for (;;) {
        switch (f->state) {
        case 0:
            if (f->i == ROUNDS) {
                tml_sender_release(f->tx);
                tml_receiver_release(f->rx);
                return TML_READY;
            }
            f->v = ++f->i;
            tml_send_init(&f->aw.send, f->tx, &f->v);
            f->state = 1;
            /* fallthrough */
        case 1:
            if (tml_send_poll(&f->aw.send, cx) == TML_PENDING)
                return TML_PENDING;
            tml_recv_init(&f->aw.recv, f->rx, &f->v);
            f->state = 2;
            /* fallthrough */
        case 2:
            if (tml_recv_poll(&f->aw.recv, cx) == TML_PENDING)
                return TML_PENDING;
            if (f->aw.recv.status == TML_CHAN_OK && f->v == f->i + 1)
                f->ret++;
            f->state = 0;
        }
    }
}

static const tml_task_vt pinger_vt = {pinger_poll, sizeof(pinger_frame), offsetof(pinger_frame, ret),
                                      sizeof(int64_t), NULL, "pinger"};

Test(async_sync, ping_pong_over_capacity_one_channels_never_loses_a_wake, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *ab = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_chan *ba = tml_chan_new(sizeof(int64_t), 1, NULL);
    /* the tasks take over this thread's handles and drop them */
    tml_join *echo = tml_spawn(&echo_vt, &(echo_frame){.rx = ab, .tx = ba});
    tml_join *pinger = tml_spawn(&pinger_vt, &(pinger_frame){.tx = ab, .rx = ba});
    cr_assert_eq(join_i64(pinger), ROUNDS);
    cr_assert_eq(tml_join_blocking(echo, NULL), TML_JOIN_OK);
    tml_join_release(echo);
    tml_main_exit(0);
}

Test(async_sync, capacity_zero_panics, .timeout = 10, .exit_code = 101) {
    tml_chan_new(sizeof(int64_t), 0, NULL);
}
