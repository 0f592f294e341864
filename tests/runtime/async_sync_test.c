/* async_sync_test.c - channels end to end: order, bounded waits, close,
 * end counting, dropping buffered values, many producers and consumers
 * on several workers, wakes from a foreign thread, ping-pong; dropped
 * send and recv leaves (waiting and served), recv_timeout, try forms. */
#include "rt_test.h"

#include "async_sync.h"

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
                                        sizeof(int64_t), NULL, "producer", NULL};

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
                                        sizeof(tally), NULL, "consumer", NULL};

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
                                        sizeof(int32_t), NULL, "send_box", NULL};

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

/* `producers` tasks each send `each` consecutive values into one channel
 * of capacity `cap`, read by `consumers` tasks sharing its receiver: the
 * senders' count, and the receivers' count and sum, are exact. */
static void exact_mpmc(const char *workers, int producers, int consumers, int64_t each,
                       int64_t cap) {
    enum { MAX_TASKS = 16 };
    cr_assert(producers <= MAX_TASKS && consumers <= MAX_TASKS);
    enter_with_workers(workers);
    tml_chan *c = tml_chan_new(sizeof(int64_t), cap, NULL);
    tml_join *p[MAX_TASKS], *r[MAX_TASKS];
    for (int i = 0; i < consumers; i++) {
        tml_receiver_retain(c);
        r[i] = spawn_consumer(c, NULL);
    }
    for (int i = 0; i < producers; i++) {
        tml_sender_retain(c);
        p[i] = tml_spawn(&producer_vt, &(producer_frame){.tx = c, .next = (int64_t)i * each + 1,
                                                         .last = (int64_t)(i + 1) * each, .release_tx = true});
    }
    release_both(c); /* the producers' releases close it */
    int64_t sent = 0, sum = 0, count = 0;
    for (int i = 0; i < producers; i++)
        sent += join_i64(p[i]);
    for (int i = 0; i < consumers; i++) {
        tally t = join_tally(r[i]);
        sum += t.sum;
        count += t.count;
        tml_receiver_release(c);
    }
    const int64_t n = (int64_t)producers * each;
    cr_assert_eq(sent, n);
    cr_assert_eq(count, n);
    cr_assert_eq(sum, n * (n + 1) / 2);
    tml_main_exit(0);
}

Test(async_sync, many_producers_and_consumers_get_the_exact_sum, .timeout = 10) {
    exact_mpmc("4", 8, 4, 5000, 16);
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

static const tml_task_vt echo_vt = {echo_poll, sizeof(echo_frame), 0, 0, NULL, "echo", NULL};

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
                                      sizeof(int64_t), NULL, "pinger", NULL};

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

/* ------------------------------------------- drops, timeouts, try forms */

Test(async_sync, four_producers_two_consumers_get_the_exact_count_and_sum, .timeout = 10) {
    exact_mpmc("2", 4, 2, 250000 / TEST_SCALE, 1024);
}

Test(async_sync, close_wakes_every_waiting_sender, .timeout = 10) {
    enum { SENDERS = 3 };
    enter_with_workers("3");
    latch blocked;
    latch_init(&blocked);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    int64_t v = 0;
    cr_assert_eq(tml_chan_try_send(c, &v), TML_CHAN_OK); /* full */
    tml_join *p[SENDERS];
    for (int i = 0; i < SENDERS; i++)
        p[i] = spawn_producer(c, 1, 1, &blocked);
    cr_assert(latch_wait(&blocked, SENDERS));
    tml_chan_close(c);
    for (int i = 0; i < SENDERS; i++)
        cr_assert_eq(join_i64(p[i]), 0); /* the send failed */
    cr_assert_eq(tml_chan_len(c), 1);
    release_both(c);
    tml_main_exit(0);
}

Test(async_sync, try_forms_never_wait, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 2, NULL);
    int64_t v = 0;
    cr_assert_eq(tml_chan_try_recv(c, &v), TML_CHAN_EMPTY);
    for (int64_t i = 1; i <= 2; i++)
        cr_assert_eq(tml_chan_try_send(c, &i), TML_CHAN_OK);
    int64_t three = 3;
    cr_assert_eq(tml_chan_try_send(c, &three), TML_CHAN_FULL);
    cr_assert_eq(tml_chan_len(c), 2);
    cr_assert_eq(tml_chan_try_recv(c, &v), TML_CHAN_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(tml_chan_len(c), 1);
    tml_chan_close(c);
    cr_assert_eq(tml_chan_try_send(c, &three), TML_CHAN_CLOSED);
    cr_assert_eq(tml_chan_try_recv(c, &v), TML_CHAN_OK); /* drains */
    cr_assert_eq(v, 2);
    v = -1;
    cr_assert_eq(tml_chan_try_recv(c, &v), TML_CHAN_CLOSED);
    cr_assert_eq(v, -1);
    release_both(c);
    tml_main_exit(0);
}

Test(async_sync, try_send_hands_off_to_a_waiting_receiver, .timeout = 10) {
    enter_with_workers("2");
    latch waiting;
    latch_init(&waiting);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *r = spawn_consumer(c, &waiting);
    cr_assert(latch_wait(&waiting, 1));
    int64_t v = 9;
    cr_assert_eq(tml_chan_try_send(c, &v), TML_CHAN_OK);
    cr_assert_eq(tml_chan_len(c), 0); /* straight to the receiver */
    tml_chan_close(c);
    tally t = join_tally(r);
    cr_assert_eq(t.count, 1);
    cr_assert_eq(t.sum, 9);
    release_both(c);
    tml_main_exit(0);
}

/* async func drop_recv(c, gate) -> I32: polls a recv leaf on c (empty:
 * it queues), then waits for the gate without polling the leaf again (a
 * send may hand it a value meanwhile), drops it (twice: the second is a
 * no-op) and returns its status at the drop. */
typedef struct drop_recv_frame {
    uint32_t state;
    tml_chan *c, *gate;
    latch *queued;
    int64_t v, g;
    tml_recv_fut recv, aw;
    int32_t ret;
} drop_recv_frame;

static tml_poll drop_recv_poll(void *frame, tml_cx *cx) {
    drop_recv_frame *f = frame;
    if (f->state == 0) {
        tml_recv_init(&f->recv, f->c, &f->v);
        f->state = 1;
    }
    if (f->state == 1) {
        cr_assert_eq(tml_recv_poll(&f->recv, cx), TML_PENDING);
        if (budget_spent(cx))
            return TML_PENDING; /* a budget yield (chaos), not the wait: poll again */
        cr_assert_eq(f->recv.phase, LEAF_QUEUED);
        latch_add(f->queued, 1);
        tml_recv_init(&f->aw, f->gate, &f->g);
        f->state = 2;
    }
    if (tml_recv_poll(&f->aw, cx) == TML_PENDING)
        return TML_PENDING;
    f->ret = mt_atomic32_load_acquire(&f->recv.status);
    tml_recv_drop(&f->recv);
    tml_recv_drop(&f->recv);
    return TML_READY;
}

static const tml_task_vt drop_recv_vt = {.poll = drop_recv_poll,
                                         .frame_size = sizeof(drop_recv_frame),
                                         .result_offset = offsetof(drop_recv_frame, ret),
                                         .result_size = sizeof(int32_t),
                                         .name = "drop_recv"};

/* async func drop_send(c, v, gate, repoll) -> I32: as drop_recv, for a
 * send of v into a full channel: after the gate it drops the send, or
 * with `repoll` awaits it again; returns the send's status then. This is
 * what `timeout(d, tx.send(v))` does when the deadline passes: the send
 * polled Pending, the sleep Ready, then the send dropped unpolled. */
typedef struct drop_send_frame {
    uint32_t state;
    tml_chan *c, *gate;
    latch *queued;
    bool repoll;
    int64_t v, g;
    tml_send_fut send;
    tml_recv_fut aw;
    int32_t ret;
} drop_send_frame;

static tml_poll drop_send_poll(void *frame, tml_cx *cx) {
    drop_send_frame *f = frame;
    if (f->state == 0) {
        tml_send_init(&f->send, f->c, &f->v);
        f->state = 1;
    }
    if (f->state == 1) {
        cr_assert_eq(tml_send_poll(&f->send, cx), TML_PENDING);
        if (budget_spent(cx))
            return TML_PENDING; /* a budget yield (chaos), not the wait: poll again */
        cr_assert_eq(f->send.phase, LEAF_QUEUED);
        latch_add(f->queued, 1);
        tml_recv_init(&f->aw, f->gate, &f->g);
        f->state = 2;
    }
    if (f->state == 2) {
        if (tml_recv_poll(&f->aw, cx) == TML_PENDING)
            return TML_PENDING;
        f->state = 3;
    }
    if (f->repoll && tml_send_poll(&f->send, cx) == TML_PENDING)
        return TML_PENDING;
    tml_send_drop(&f->send); /* after Ready: a no-op */
    f->ret = f->send.status;
    return TML_READY;
}

static const tml_task_vt drop_send_vt = {.poll = drop_send_poll,
                                         .frame_size = sizeof(drop_send_frame),
                                         .result_offset = offsetof(drop_send_frame, ret),
                                         .result_size = sizeof(int32_t),
                                         .name = "drop_send"};

static void expect_recv(tml_chan *c, int64_t want) {
    int64_t v = -1;
    cr_assert_eq(tml_chan_try_recv(c, &v), TML_CHAN_OK);
    cr_assert_eq(v, want);
}

Test(async_sync, a_dropped_receive_gives_its_value_back_to_the_front, .timeout = 10) {
    enter_with_workers("2");
    latch queued;
    latch_init(&queued);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 2, NULL);
    tml_chan *gate = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *d = tml_spawn(&drop_recv_vt, &(drop_recv_frame){.c = c, .gate = gate, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    for (int64_t v = 1; v <= 3; v++) /* 1 to the waiting leaf, 2 and 3 fill the ring */
        cr_assert_eq(tml_chan_try_send(c, &v), TML_CHAN_OK);
    int64_t four = 4;
    cr_assert_eq(tml_chan_try_send(c, &four), TML_CHAN_FULL);
    open_gate(gate);
    cr_assert_eq(join_i32(d), TML_CHAN_OK); /* it had been handed 1 */
    cr_assert_eq(tml_chan_len(c), 3);       /* back in front, one past cap */
    cr_assert_eq(tml_chan_try_send(c, &four), TML_CHAN_FULL);
    expect_recv(c, 1);
    cr_assert_eq(tml_chan_try_send(c, &four), TML_CHAN_FULL); /* at cap again */
    expect_recv(c, 2);
    cr_assert_eq(tml_chan_try_send(c, &four), TML_CHAN_OK);
    expect_recv(c, 3);
    expect_recv(c, 4);
    int64_t v;
    cr_assert_eq(tml_chan_try_recv(c, &v), TML_CHAN_EMPTY);
    release_both(c);
    release_both(gate);
    tml_main_exit(0);
}

Test(async_sync, a_dropped_receive_hands_its_value_to_the_next_waiting_receiver, .timeout = 10) {
    enter_with_workers("2");
    latch queued, waiting;
    latch_init(&queued);
    latch_init(&waiting);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 2, NULL);
    tml_chan *gate = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *d = tml_spawn(&drop_recv_vt, &(drop_recv_frame){.c = c, .gate = gate, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    int64_t v = 5;
    cr_assert_eq(tml_chan_try_send(c, &v), TML_CHAN_OK); /* handed to d's leaf */
    tml_join *r = spawn_consumer(c, &waiting);
    cr_assert(latch_wait(&waiting, 1)); /* the ring is empty: it waits */
    open_gate(gate);
    cr_assert_eq(join_i32(d), TML_CHAN_OK);
    tml_chan_close(c);
    tally t = join_tally(r);
    cr_assert_eq(t.count, 1);
    cr_assert_eq(t.sum, 5);
    release_both(c);
    release_both(gate);
    tml_main_exit(0);
}

Test(async_sync, a_dropped_waiting_send_keeps_its_value, .timeout = 10) {
    enter_with_workers("2");
    latch queued;
    latch_init(&queued);
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_chan *gate = tml_chan_new(sizeof(int64_t), 1, NULL);
    int64_t v = 1;
    cr_assert_eq(tml_chan_try_send(c, &v), TML_CHAN_OK); /* full */
    tml_join *d = tml_spawn(&drop_send_vt, &(drop_send_frame){.c = c, .v = 2, .gate = gate, .queued = &queued});
    cr_assert(latch_wait(&queued, 1));
    open_gate(gate);
    cr_assert_eq(join_i32(d), IN_FLIGHT); /* not taken: the caller owns it */
    expect_recv(c, 1);
    cr_assert_eq(tml_chan_try_recv(c, &v), TML_CHAN_EMPTY); /* 2 never arrived */
    release_both(c);
    release_both(gate);
    tml_main_exit(0);
}

/* A capacity-1 channel holding 1, with drop_send's send of 2 waiting in
 * it (queued first) and, when `then_send` says so, a producer's send of 3
 * waiting behind it. */
typedef struct granted_case {
    tml_chan *c, *gate;
    latch queued, blocked;
    tml_join *d, *p;
} granted_case;

static void queue_two_sends(granted_case *g, bool repoll, bool then_send) {
    latch_init(&g->queued);
    latch_init(&g->blocked);
    g->c = tml_chan_new(sizeof(int64_t), 1, NULL);
    g->gate = tml_chan_new(sizeof(int64_t), 1, NULL);
    int64_t v = 1;
    cr_assert_eq(tml_chan_try_send(g->c, &v), TML_CHAN_OK); /* full */
    g->d = tml_spawn(&drop_send_vt, &(drop_send_frame){.c = g->c, .v = 2, .gate = g->gate,
                                                        .queued = &g->queued, .repoll = repoll});
    cr_assert(latch_wait(&g->queued, 1));
    g->p = then_send ? spawn_producer(g->c, 3, 3, &g->blocked) : NULL;
    cr_assert(!then_send || latch_wait(&g->blocked, 1));
}

static void end_case(granted_case *g) {
    release_both(g->c);
    release_both(g->gate);
    tml_main_exit(0);
}

/* RT-CHAN-7: a send dropped after a receive freed a slot for it, but
 * before it was polled again, delivers nothing; the slot goes to the
 * next waiting send */
Test(async_sync, a_send_dropped_after_its_slot_was_granted_delivers_nothing_and_passes_the_slot_on,
     .timeout = 10) {
    enter_with_workers("2");
    granted_case g;
    queue_two_sends(&g, false, true);
    expect_recv(g.c, 1); /* frees the slot: granted to the send of 2 */
    open_gate(g.gate);   /* drop_send drops it without polling it */
    cr_assert_neq(join_i32(g.d), TML_CHAN_OK, "a dropped send reported its value delivered");
    cr_assert_eq(join_i64(g.p), 1); /* the send of 3 got the slot */
    expect_recv(g.c, 3);
    int64_t v = -1;
    cr_assert_eq(tml_chan_try_recv(g.c, &v), TML_CHAN_EMPTY, "got %ld", (long)v); /* 2 never arrived */
    end_case(&g);
}

Test(async_sync, a_slot_granted_to_a_dropped_send_is_freed_when_no_send_waits, .timeout = 10) {
    enter_with_workers("2");
    granted_case g;
    queue_two_sends(&g, false, false);
    expect_recv(g.c, 1);
    open_gate(g.gate);
    cr_assert_neq(join_i32(g.d), TML_CHAN_OK);
    int64_t four = 4;
    cr_assert_eq(tml_chan_try_send(g.c, &four), TML_CHAN_OK); /* the slot is free again */
    expect_recv(g.c, 4);
    end_case(&g);
}

Test(async_sync, a_granted_send_polled_again_writes_its_value, .timeout = 10) {
    enter_with_workers("2");
    granted_case g;
    queue_two_sends(&g, true, true);
    expect_recv(g.c, 1);
    int64_t four = 4;
    cr_assert_eq(tml_chan_try_send(g.c, &four), TML_CHAN_FULL); /* the freed slot is the send's */
    open_gate(g.gate);
    cr_assert_eq(join_i32(g.d), TML_CHAN_OK);
    expect_recv(g.c, 2);
    cr_assert_eq(join_i64(g.p), 1); /* then 3 took the slot 2 left */
    expect_recv(g.c, 3);
    end_case(&g);
}

Test(async_sync, a_granted_send_polled_after_close_fails_and_keeps_its_value, .timeout = 10) {
    enter_with_workers("2");
    granted_case g;
    queue_two_sends(&g, true, true);
    expect_recv(g.c, 1);
    tml_chan_close(g.c);
    cr_assert_eq(join_i64(g.p), 0); /* the waiting send of 3 failed */
    open_gate(g.gate);
    cr_assert_eq(join_i32(g.d), TML_CHAN_CLOSED); /* so does the granted one */
    int64_t v = -1;
    cr_assert_eq(tml_chan_try_recv(g.c, &v), TML_CHAN_CLOSED, "got %ld", (long)v);
    end_case(&g);
}

Test(async_sync, a_granted_send_that_meets_a_waiting_receiver_passes_its_slot_on, .timeout = 10) {
    enter_with_workers("2");
    granted_case g;
    queue_two_sends(&g, true, true);
    expect_recv(g.c, 1); /* the ring is empty, its one slot granted to 2 */
    latch waiting;
    latch_init(&waiting);
    tml_join *r = spawn_consumer(g.c, &waiting);
    cr_assert(latch_wait(&waiting, 1)); /* so the receiver waits */
    open_gate(g.gate);
    cr_assert_eq(join_i32(g.d), TML_CHAN_OK);   /* 2 went straight to the receiver */
    cr_assert_eq(join_i64(g.p), 1);             /* and the unused slot to 3 */
    tml_chan_close(g.c);
    tally t = join_tally(r);
    cr_assert_eq(t.count, 2);
    cr_assert_eq(t.sum, 5);
    cr_assert(t.in_order);
    end_case(&g);
}

/* Leaves never polled, and leaves dropped after Ready, release nothing. */
typedef struct idle_drops_frame {
    uint32_t state;
    tml_chan *c;
    int64_t v;
    tml_send_fut send;
    tml_recv_fut recv;
    tml_recv_timeout_fut timed;
} idle_drops_frame;

/* Polls a leaf that is Ready at once; Pending only as a budget yield
 * (chaos), after which the task is polled again. */
#define READY_OR_YIELD(poll, cx)               \
    do {                                       \
        if ((poll) == TML_PENDING) {           \
            cr_assert(budget_spent(cx));       \
            return TML_PENDING;                \
        }                                      \
    } while (0)

static tml_poll idle_drops_poll(void *frame, tml_cx *cx) {
    idle_drops_frame *f = frame;
    switch (f->state) {
    case 0:
        tml_send_init(&f->send, f->c, &f->v);
        tml_recv_init(&f->recv, f->c, &f->v);
        tml_recv_timeout_init(&f->timed, f->c, &f->v, 1000);
        tml_send_drop(&f->send);
        tml_recv_drop(&f->recv);
        tml_recv_timeout_drop(&f->timed);
        f->v = 11;
        tml_send_init(&f->send, f->c, &f->v);
        f->state = 1;
        /* fallthrough */
    case 1:
        READY_OR_YIELD(tml_send_poll(&f->send, cx), cx);
        tml_send_drop(&f->send);
        tml_recv_init(&f->recv, f->c, &f->v);
        f->state = 2;
        /* fallthrough */
    default:
        READY_OR_YIELD(tml_recv_poll(&f->recv, cx), cx);
        tml_recv_drop(&f->recv); /* must not give 11 back */
        return TML_READY;
    }
}

static const tml_task_vt idle_drops_vt = {.poll = idle_drops_poll, .frame_size = sizeof(idle_drops_frame),
                                          .name = "idle_drops"};

Test(async_sync, drops_of_idle_or_ready_leaves_change_nothing, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 4, NULL);
    tml_join *h = tml_spawn(&idle_drops_vt, &(idle_drops_frame){.c = c});
    join_unit(h);
    cr_assert_eq(tml_chan_len(c), 0);
    release_both(c);
    tml_main_exit(0);
}

Test(async_sync, recv_timeout_times_out_on_an_empty_channel, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    int64_t v = -1;
    int64_t t0 = tml_now_ns();
    cr_assert_eq(tml_chan_recv_timeout_blocking(c, &v, 2000000), TML_CHAN_TIMEOUT);
    cr_assert_geq(tml_now_ns() - t0, 2000000); /* never early */
    cr_assert_eq(v, -1);
    cr_assert_eq(tml_chan_recv_timeout_blocking(c, &v, 0), TML_CHAN_TIMEOUT);
    cr_assert_eq(tml_chan_recv_timeout_blocking(c, &v, -5), TML_CHAN_TIMEOUT);
    v = 3;
    cr_assert_eq(tml_chan_try_send(c, &v), TML_CHAN_OK);
    v = -1;
    cr_assert_eq(tml_chan_recv_timeout_blocking(c, &v, 0), TML_CHAN_OK); /* a value wins */
    cr_assert_eq(v, 3);
    tml_chan_close(c);
    cr_assert_eq(tml_chan_recv_timeout_blocking(c, &v, 1000000000), TML_CHAN_CLOSED);
    release_both(c);
    tml_main_exit(0);
}

static void *send_one_later(void *c) {
    int64_t v = 77;
    tml_chan_send_blocking(c, &v);
    return NULL;
}

Test(async_sync, recv_timeout_returns_a_value_sent_before_the_deadline, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    pthread_t t = foreign_thread(send_one_later, c);
    int64_t v = -1;
    cr_assert_eq(tml_chan_recv_timeout_blocking(c, &v, (int64_t)WAIT_MS * 1000000), TML_CHAN_OK);
    cr_assert_eq(v, 77);
    pthread_join(t, NULL);
    release_both(c);
    tml_main_exit(0);
}

/* async func flaky_consumer(rx) -> Tally: receives until closed, but
 * gives up on most receives: a recv_timeout (mostly of 0 ns, so its
 * cancel races with senders), a recv polled once and dropped, or a recv
 * polled once and dropped a yield later (a sender may hand it a value
 * meanwhile, which the drop must give back). Yields after each give-up so
 * that producers on this worker run. */
typedef struct flaky_frame {
    uint32_t state;
    tml_chan *rx;
    int64_t iter, v;
    union {
        tml_recv_fut recv;
        tml_recv_timeout_fut timed;
    } aw;
    tally ret;
} flaky_frame;

static bool flaky_took(flaky_frame *f, int32_t status) {
    if (status != TML_CHAN_OK)
        return false;
    f->ret.sum += f->v;
    f->ret.count++;
    return true;
}

static tml_poll flaky_poll(void *frame, tml_cx *cx) {
    flaky_frame *f = frame;
    for (;; f->iter++, f->state = 0) {
        int kind = (int)(f->iter % 3);
        if (f->state == 0) {
            if (kind == 0)
                tml_recv_timeout_init(&f->aw.timed, f->rx, &f->v, f->iter % 64 == 0 ? 20000 : 0);
            else
                tml_recv_init(&f->aw.recv, f->rx, &f->v);
            f->state = 1;
        }
        if (f->state == 2) { /* kind 2, a yield later: drop without polling */
            tml_recv_drop(&f->aw.recv);
            continue;
        }
        if (kind == 0) {
            if (tml_recv_timeout_poll(&f->aw.timed, cx) == TML_PENDING)
                return TML_PENDING;
            if (f->aw.timed.status == TML_CHAN_CLOSED)
                return TML_READY;
            if (!flaky_took(f, f->aw.timed.status)) {
                f->iter++, f->state = 0;
                mt_worker_self_wake(cx);
                return TML_PENDING;
            }
            continue;
        }
        if (tml_recv_poll(&f->aw.recv, cx) == TML_READY) {
            if (f->aw.recv.status == TML_CHAN_CLOSED)
                return TML_READY;
            flaky_took(f, f->aw.recv.status);
            continue;
        }
        if (kind == 1 || budget_spent(cx)) {
            tml_recv_drop(&f->aw.recv);
            f->iter++, f->state = 0;
        } else {
            f->state = 2;
        }
        mt_worker_self_wake(cx);
        return TML_PENDING;
    }
}

static const tml_task_vt flaky_vt = {.poll = flaky_poll, .frame_size = sizeof(flaky_frame),
                                     .result_offset = offsetof(flaky_frame, ret), .result_size = sizeof(tally),
                                     .name = "flaky_consumer"};

/* Ends a delivery test: releases the test's sender (the producers'
 * releases then close `c`), joins the `np` producers p[] (each returns
 * how many it sent) and the consumer `r`, and asserts that the values
 * 1..n arrived exactly once: count and sum. Releases the receiver and the
 * runtime. */
static void assert_exact_delivery(tml_chan *c, tml_join **p, int np, tml_join *r, int64_t n) {
    tml_sender_release(c);
    int64_t sent = 0;
    for (int i = 0; i < np; i++)
        sent += join_i64(p[i]);
    tally t = join_tally(r);
    cr_assert_eq(sent, n);
    cr_assert_eq(t.count, n, "received %ld of %ld", (long)t.count, (long)n);
    cr_assert_eq(t.sum, n * (n + 1) / 2);
    tml_receiver_release(c);
    tml_main_exit(0);
}

Test(async_sync, receives_dropped_in_a_loop_never_lose_a_message, .timeout = 10) {
    enum { PRODUCERS = 2, EACH = 50000 / TEST_SCALE };
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        tml_sender_retain(c);
        p[i] = tml_spawn(&producer_vt, &(producer_frame){.tx = c, .next = (int64_t)i * EACH + 1,
                                                         .last = (int64_t)(i + 1) * EACH, .release_tx = true});
    }
    tml_join *r = tml_spawn(&flaky_vt, &(flaky_frame){.rx = c});
    assert_exact_delivery(c, p, PRODUCERS, r, (int64_t)PRODUCERS * EACH);
}

/* async func flaky_producer(tx, next, last) -> I64: sends next..last,
 * but gives up on most sends and sends the value again, as a loop around
 * `timeout(d, tx.send(v))` does: a send awaited to the end, a send
 * polled once and dropped, or a send polled once and dropped a yield
 * later without another poll (a receive may grant it a slot meanwhile,
 * which the drop must pass on without delivering). Returns the number of
 * values sent; drops tx at the end. */
typedef struct flaky_send_frame {
    uint32_t state;
    tml_chan *tx;
    int64_t next, last, iter, v;
    tml_send_fut aw;
    int64_t ret;
} flaky_send_frame;

static tml_poll flaky_send_poll(void *frame, tml_cx *cx) {
    flaky_send_frame *f = frame;
    for (; f->next <= f->last; f->iter++) {
        if (f->state == 2) { /* a yield later: drop without polling */
            tml_send_drop(&f->aw);
            cr_assert_neq(f->aw.status, TML_CHAN_OK, "a dropped send delivered %ld", (long)f->v);
            f->state = 0;
            continue;
        }
        if (f->state == 0) {
            f->v = f->next;
            tml_send_init(&f->aw, f->tx, &f->v);
            f->state = 1;
        }
        if (tml_send_poll(&f->aw, cx) == TML_READY) {
            cr_assert_eq(f->aw.status, TML_CHAN_OK);
            f->ret++, f->next++, f->state = 0;
            continue;
        }
        int kind = (int)(f->iter % 3);
        if (kind == 0 && !budget_spent(cx))
            return TML_PENDING; /* waits for its slot; the grant wakes it */
        if (kind == 1) {
            tml_send_drop(&f->aw);
            cr_assert_neq(f->aw.status, TML_CHAN_OK);
            f->state = 0, f->iter++;
        } else {
            f->state = 2;
        }
        mt_worker_self_wake(cx);
        return TML_PENDING;
    }
    tml_sender_release(f->tx);
    return TML_READY;
}

static const tml_task_vt flaky_send_vt = {.poll = flaky_send_poll, .frame_size = sizeof(flaky_send_frame),
                                          .result_offset = offsetof(flaky_send_frame, ret),
                                          .result_size = sizeof(int64_t), .name = "flaky_producer"};

/* RT-CHAN-7: sends dropped in a loop and sent again never deliver a value
 * twice, nor lose one */
Test(async_sync, sends_dropped_in_a_loop_never_duplicate_a_message, .timeout = 10) {
    enum { PRODUCERS = 2, EACH = 50000 / TEST_SCALE };
    enter_with_workers("2");
    tml_chan *c = tml_chan_new(sizeof(int64_t), 1, NULL);
    tml_join *p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        tml_sender_retain(c);
        p[i] = tml_spawn(&flaky_send_vt, &(flaky_send_frame){.tx = c, .next = (int64_t)i * EACH + 1,
                                                             .last = (int64_t)(i + 1) * EACH});
    }
    tml_join *r = spawn_consumer(c, NULL);
    assert_exact_delivery(c, p, PRODUCERS, r, (int64_t)PRODUCERS * EACH);
}
