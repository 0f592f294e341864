/* mt_deadlock_test.c - mt_deadlock.c: the report counts the waiting
 * tasks by kind, and never fires in a runtime nobody watches. A
 * deadlocked program runs in a child process (the report ends it), its
 * stderr captured. */
#include "rt_child.h"

/* async func wait_on(kind, obj): awaits one leaf of MT_WAIT_* `kind` on
 * `obj` (a channel to send to, a mutex, a semaphore, a Notify). */
typedef struct leaf_wait_frame {
    uint32_t state;
    uint32_t kind;
    void *obj;
    int64_t v;
    union {
        tml_send_fut send;
        tml_lock_fut lock;
        tml_acquire_fut acquire;
        tml_notified_fut notified;
    } aw;
} leaf_wait_frame;

static tml_poll leaf_wait_poll(void *frame, tml_cx *cx) {
    leaf_wait_frame *f = frame;
    bool fresh = f->state == 0;
    f->state = 1;
    switch (f->kind) {
    case MT_WAIT_SEND:
        if (fresh)
            tml_send_init(&f->aw.send, f->obj, &f->v);
        return tml_send_poll(&f->aw.send, cx);
    case MT_WAIT_LOCK:
        if (fresh)
            tml_lock_init(&f->aw.lock, f->obj);
        return tml_lock_poll(&f->aw.lock, cx);
    case MT_WAIT_ACQUIRE:
        if (fresh)
            tml_acquire_init(&f->aw.acquire, f->obj);
        return tml_acquire_poll(&f->aw.acquire, cx);
    default:
        if (fresh)
            tml_notified_init(&f->aw.notified, f->obj);
        return tml_notified_poll(&f->aw.notified, cx);
    }
}

static const tml_task_vt leaf_wait_vt = {leaf_wait_poll, sizeof(leaf_wait_frame), 0, 0, NULL, "wait_on",
                                         NULL};

/* The deadlocked program: a task waits on each of a full channel's send,
 * a mutex this thread holds, an empty semaphore and a Notify; this
 * thread then joins the last one, and nothing can wake any of them. */
static void deadlocked_program(int unused) {
    (void)unused;
    enter_with_workers("2");
    tml_main_watch_deadlocks();
    tml_chan *full = tml_chan_new(sizeof(int64_t), 1, NULL);
    int64_t v = 1;
    tml_chan_send_blocking(full, &v);
    tml_mutex *m = tml_mutex_new(0, NULL, NULL);
    tml_mutex_lock_blocking(m); /* held by this thread for ever */
    void *objs[] = {full, m, tml_sem_new(0), tml_notify_new()};
    uint32_t kinds[] = {MT_WAIT_SEND, MT_WAIT_LOCK, MT_WAIT_ACQUIRE, MT_WAIT_NOTIFIED};
    tml_join *h = NULL;
    for (int i = 0; i < 4; i++)
        h = tml_spawn(&leaf_wait_vt, &(leaf_wait_frame){.kind = kinds[i], .obj = objs[i]});
    tml_join_blocking(h, NULL); /* the report ends the process here */
    _exit(0);
}

// RT-DEADLOCK-1: the report names each kind of wait with its count, in order, and exits with 101
Test(mt_deadlock, report_counts_the_tasks_by_what_they_wait_on, .timeout = 10) {
    char buf[512];
    int status = run_child(STDERR_FILENO, deadlocked_program, 0, buf, sizeof buf);
    cr_assert_eq(status, 101);
    cr_assert_str_eq(buf, "fatal error: all tasks are asleep - deadlock!\n\n"
                          "1 task waiting on channel send\n1 task waiting on lock\n"
                          "1 task waiting on acquire\n1 task waiting on notified\n"
                          "1 task waiting on join\n");
}

/* async func wait_gate(g) { await g.recv() } */
static tml_poll gate_task_poll(void *frame, tml_cx *cx) {
    return gate_wait(frame, cx);
}

static const tml_task_vt gate_task_vt = {gate_task_poll, sizeof(gate), 0, 0, NULL, "wait_gate", NULL};

/* Opens the gate once every counted thread of the process runtime is
 * parked: a wake no counted thread can give, as a C thread of the
 * embedding program would. */
static void *open_when_idle(void *arg) {
    mt_runtime *rt = mt_runtime_current();
    int64_t deadline = tml_now_ns() + (int64_t)WAIT_MS * 1000000;
    while (mt_activity_active(mt_atomic_load_acquire(&rt->activity)) != 0 && tml_now_ns() < deadline)
        tml_yield_blocking();
    cr_assert_eq(mt_activity_active(mt_atomic_load_acquire(&rt->activity)), 0);
    open_gate(arg);
    return NULL;
}

// RT-DEADLOCK-2: a runtime nobody watches (a C program with threads of its own) never reports, even with every counted thread parked
Test(mt_deadlock, an_unwatched_runtime_waits_for_its_foreign_threads, .timeout = 10) {
    enter_with_workers("2");
    tml_chan *g = new_gate();
    tml_join *h = tml_spawn(&gate_task_vt, &(gate){.g = g});
    pthread_t t = foreign_thread(open_when_idle, g);
    cr_assert_eq(tml_join_blocking(h, NULL), TML_JOIN_OK); /* the workers park meanwhile */
    pthread_join(t, NULL);
    tml_join_release(h);
    release_both(g);
    tml_main_exit(0);
}
