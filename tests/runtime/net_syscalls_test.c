/* net_syscalls_test.c - the system calls the TCP leaves make (runtime/
 * net.c, "Readiness" step 4).
 *
 * This file defines recv() itself: the runtime is linked statically into
 * the test binary, so its calls bind to this definition (symbol
 * interposition), which counts them and forwards them to the kernel. It
 * is kept apart from net_test.c so that only these tests bypass the
 * sanitizers' recv interceptors; nothing here relies on a socket to order
 * memory between threads (the latches do). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt_test.h"

static mt_atomic recv_calls;

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    mt_atomic_fetch_add(&recv_calls, 1);
    return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

/* async func two_reads(s, buf) { await s.read(buf); await s.read(buf) },
 * reporting each time it starts waiting (`waiting`) and the recv count
 * when the second read starts (`before_second`). */
typedef struct two_reads_frame {
    uint32_t state;
    tml_tcp *s;
    tml_buffer *buf;
    latch *waiting, *done;
    int64_t *before_second, *first_n;
    tml_read_fut rd;
} two_reads_frame;

static tml_poll two_reads_poll(void *frame, tml_cx *cx) {
    two_reads_frame *f = frame;
    switch (f->state) {
    case 0:
        tml_read_init(&f->rd, f->s, f->buf);
        f->state = 1;
        cr_assert_eq(tml_read_poll(&f->rd, cx), TML_PENDING, "nothing was sent yet");
        latch_add(f->waiting, 1);
        return TML_PENDING;
    case 1:
        if (tml_read_poll(&f->rd, cx) == TML_PENDING)
            return TML_PENDING;
        *f->first_n = f->rd.n;
        *f->before_second = (int64_t)mt_atomic_load(&recv_calls);
        tml_buffer_clear(f->buf);
        tml_read_init(&f->rd, f->s, f->buf);
        f->state = 2;
        if (tml_read_poll(&f->rd, cx) == TML_READY)
            break;
        latch_add(f->waiting, 1);
        return TML_PENDING;
    default:
        if (tml_read_poll(&f->rd, cx) == TML_PENDING)
            return TML_PENDING;
    }
    latch_add(f->done, 1);
    return TML_READY;
}

static const tml_task_vt two_reads_vt = {two_reads_poll, sizeof(two_reads_frame), 0, 0, NULL, "two_reads", NULL};

/* RT-NET-2: a read that leaves room in its buffer drained the socket, so
 * the next read waits for readiness without a recv that could only fail
 * with EAGAIN: the second read's first poll makes no system call. */
Test(net_syscalls, a_short_read_saves_the_next_read_its_eagain, .timeout = 10) {
    enter_with_workers("1");
    tml_tcp *l = NULL, *s = NULL;
    cr_assert_eq(tml_tcp_bind(&(tml_sockaddr){.family = TML_AF_IPV4, .ip = {127, 0, 0, 1}}, &l), TML_NET_OK);
    tml_sockaddr a;
    cr_assert_eq(tml_tcp_local_addr(l, &a), TML_NET_OK);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(a.port)};
    memcpy(&in.sin_addr, a.ip, 4);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&in, sizeof in), 0);
    cr_assert_eq(tml_tcp_accept_blocking(l, &s, NULL), TML_NET_OK);

    latch waiting, done;
    latch_init(&waiting);
    latch_init(&done);
    int64_t before_second = -1, first_n = -1;
    tml_buffer *b = tml_buffer_new(4096);
    tml_join_release(tml_spawn(&two_reads_vt, &(two_reads_frame){.s = s, .buf = b, .waiting = &waiting,
                                                                   .done = &done, .before_second = &before_second,
                                                                   .first_n = &first_n}));
    cr_assert(latch_wait(&waiting, 1), "the first read never waited");
    cr_assert_eq(send(fd, "abc", 3, 0), 3);
    cr_assert(latch_wait(&waiting, 2), "the second read never waited");
    int64_t after = (int64_t)mt_atomic_load(&recv_calls);
    cr_assert_eq(send(fd, "de", 2, 0), 2);
    cr_assert(latch_wait(&done, 1), "the second read never completed");
    cr_assert_eq(first_n, 3);
    cr_assert_eq(after, before_second, "the second read called recv %lld times before it waited",
                 (long long)(after - before_second));
    cr_assert_eq(tml_buffer_len(b), 2);
    cr_assert_eq(memcmp(b->bytes, "de", 2), 0);
    close(fd);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}
