/* net_test.c - TCP on the reactor (runtime/net.c) and Buffer
 * (stdlib/std_buffer.c): an echo server written as hand-made frames
 * against 1,000 clients with random message sizes and against 10,000
 * concurrent connections, fd accounting over 10,000 connect/disconnect
 * cycles, error kinds, cancellation (drop, runtime shutdown, close), and
 * the blocking forms on plain threads.
 *
 * Clients are plain sockets driven by pthreads (or, for 10,000
 * connections, a forked process: both ends in one process would need
 * more than the 20,000 descriptors the hard limit allows). Nothing
 * sleeps: waits are on latches, poll(2) or a pidfd, each bounded. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "rt_test.h"

/* The plain clients below speak POSIX sockets. On Windows the same calls
 * have winsock's names, a socket handle fits an int, errors come from
 * WSAGetLastError, and a client socket is made non-blocking where POSIX
 * passes MSG_DONTWAIT. The tests that need fork, rlimits, /proc or a
 * backlog that drops SYNs are Linux's (#ifdef __linux__). */
#ifdef _WIN32
/* Under wine every socket call goes through its server: the 1,000-client
 * echo moves 1.4 GB at about 35 MB/s there, past the test's timeout, so
 * it runs a quarter of the clients (the same paths). */
#define WINE_SLOWDOWN 4
#define SOCK_CLOEXEC 0
#define MSG_NOSIGNAL 0
#define MSG_DONTWAIT 0
#define SHUT_WR SD_SEND
typedef ULONG nfds_t;
#define poll WSAPoll
#define close(fd) closesocket((SOCKET)(fd))
static int sock_errno(void) {
    int e = WSAGetLastError();
    return e == WSAEWOULDBLOCK ? EAGAIN : e;
}
static void dont_wait(int fd) {
    u_long one = 1;
    cr_assert_eq(ioctlsocket((SOCKET)fd, FIONBIO, &one), 0);
}
#else
#define WINE_SLOWDOWN 1
static int sock_errno(void) { return errno; }
static void dont_wait(int fd) { (void)fd; /* each call passes MSG_DONTWAIT */ }
#endif

/* Every test here has the same .timeout: Criterion 2.4's runner (BoxFort's
 * timeout list) leaks the pending timeout of a running test, and so stops
 * enforcing it, when a test that starts later has an EARLIER deadline;
 * LeakSanitizer then fails the ASan build. With equal timeouts, deadlines
 * follow start order. Generous: the slowest test takes a few seconds. */
#define TIMEOUT 60

/* ------------------------------------------------------------ helpers */

static tml_sockaddr parse(const char *text) {
    tml_str s = TML_STR_LIT("");
    s.ptr = text;
    s.len = (int64_t)strlen(text);
    tml_sockaddr a;
    cr_assert_eq(tml_sockaddr_parse(&s, &a), TML_NET_OK, "parse %s", text);
    return a;
}

/* A listener on 127.0.0.1 at a port the OS picks; its address in *a. */
static tml_tcp *listen_local(tml_sockaddr *a) {
    tml_tcp *l = NULL;
    cr_assert_eq(tml_tcp_bind(&(tml_sockaddr){.family = TML_AF_IPV4, .ip = {127, 0, 0, 1}}, &l), TML_NET_OK);
    cr_assert_eq(tml_tcp_local_addr(l, a), TML_NET_OK);
    cr_assert_neq(a->port, 0);
    return l;
}

static struct sockaddr_in os_addr(const tml_sockaddr *a) {
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(a->port)};
    memcpy(&in.sin_addr, a->ip, 4);
    return in;
}

/* A plain blocking client socket connected to `a`. */
static int plain_connect(const tml_sockaddr *a) {
    struct sockaddr_in in = os_addr(a);
    int fd = (int)socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&in, sizeof in), 0, "connect: error %d", sock_errno());
    return fd;
}

/* latch_wait for up to `seconds` (WAIT_MS steps). */
static bool latch_wait_s(latch *l, int64_t target, int seconds) {
    for (int i = 0; i < seconds * 1000 / WAIT_MS + 1; i++)
        if (latch_wait(l, target))
            return true;
    return false;
}

/* Leaf polls and drops with the signatures mt_block_on_leaf wants. */
static tml_poll accept_leaf(void *f, tml_cx *cx) { return tml_accept_poll(f, cx); }
static tml_poll connect_leaf(void *f, tml_cx *cx) { return tml_connect_poll(f, cx); }
static tml_poll read_leaf(void *f, tml_cx *cx) { return tml_read_poll(f, cx); }
static tml_poll write_leaf(void *f, tml_cx *cx) { return tml_write_poll(f, cx); }
static void accept_drop(void *f) { tml_accept_drop(f); }
static void connect_drop(void *f) { tml_connect_drop(f); }
static void read_drop(void *f) { tml_read_drop(f); }
static void write_drop(void *f) { tml_write_drop(f); }

static tml_tcp *accept_one(tml_tcp *l) {
    tml_accept_fut f;
    tml_accept_init(&f, l);
    mt_block_on_leaf(accept_leaf, accept_drop, &f);
    cr_assert_eq(f.status, TML_NET_OK);
    return f.stream;
}

static int32_t connect_async(const tml_sockaddr *a, tml_tcp **out) {
    tml_connect_fut f;
    tml_connect_init(&f, a);
    mt_block_on_leaf(connect_leaf, connect_drop, &f);
    *out = f.stream;
    return f.status;
}

static int32_t read_async(tml_tcp *s, tml_buffer *b, int64_t *n) {
    tml_read_fut f;
    tml_read_init(&f, s, b);
    mt_block_on_leaf(read_leaf, read_drop, &f);
    *n = f.n;
    return f.status;
}

static int32_t write_async(tml_tcp *s, tml_buffer *b, int64_t *n) {
    tml_write_fut f;
    tml_write_init(&f, s, b);
    mt_block_on_leaf(write_leaf, write_drop, &f);
    *n = f.n;
    return f.status;
}

/* --------------------------------------------------------- echo server */

typedef struct echo_stats {
    latch ended;          /* connection tasks finished */
    mt_atomic live, max_live;
    mt_atomic errors;     /* accept errors other than the close that ends it */
} echo_stats;

static void stats_init(echo_stats *st) {
    latch_init(&st->ended);
    mt_atomic_store(&st->live, 0);
    mt_atomic_store(&st->max_live, 0);
    mt_atomic_store(&st->errors, 0);
}

/* async func echo_conn(s, bufsize): reads into a buffer and write_all's
 * it back until the peer closes or an error; then releases s. */
typedef struct conn_frame {
    uint32_t state;
    tml_tcp *s;
    int64_t bufsize;
    echo_stats *st;
    tml_buffer *buf;
    union {
        tml_read_fut rd;
        tml_write_all_fut wr;
    } aw;
} conn_frame;

static void conn_end(conn_frame *f) {
    tml_buffer_release(f->buf);
    tml_tcp_release(f->s);
    mt_atomic_fetch_add(&f->st->live, (uint64_t)-1);
    latch_add(&f->st->ended, 1);
}

static tml_poll conn_poll(void *frame, tml_cx *cx) {
    conn_frame *f = frame;
    for (;;) {
        switch (f->state) {
        case 0: {
            f->buf = tml_buffer_new(f->bufsize);
            uint64_t live = mt_atomic_fetch_add(&f->st->live, 1) + 1;
            for (uint64_t m = mt_atomic_load(&f->st->max_live); m < live;)
                m = mt_atomic_cas(&f->st->max_live, m, live) == m ? live : mt_atomic_load(&f->st->max_live);
            f->state = 1;
            break;
        }
        case 1:
            tml_buffer_clear(f->buf);
            tml_read_init(&f->aw.rd, f->s, f->buf);
            f->state = 2;
            /* fallthrough */
        case 2:
            if (tml_read_poll(&f->aw.rd, cx) == TML_PENDING)
                return TML_PENDING;
            if (f->aw.rd.status != TML_NET_OK || f->aw.rd.n == 0) {
                conn_end(f);
                return TML_READY;
            }
            tml_write_all_init(&f->aw.wr, f->s, f->buf);
            f->state = 3;
            /* fallthrough */
        case 3:
            if (tml_write_all_poll(&f->aw.wr, cx) == TML_PENDING)
                return TML_PENDING;
            if (f->aw.wr.status != TML_NET_OK) {
                conn_end(f);
                return TML_READY;
            }
            f->state = 1;
            break;
        }
    }
}

static void conn_drop(void *frame) {
    conn_frame *f = frame;
    if (f->state == 0) {
        tml_tcp_release(f->s);
        return;
    }
    if (f->state == 2)
        tml_read_drop(&f->aw.rd);
    if (f->state == 3)
        tml_write_all_drop(&f->aw.wr);
    conn_end(f);
}

static const tml_task_vt conn_vt = {conn_poll, sizeof(conn_frame), 0, 0, NULL, "echo_conn", conn_drop};

/* async func echo_server(l, bufsize): accepts until an accept fails (the
 * listener was closed, or the reactor cancelled), spawning echo_conn per
 * stream; releases its reference to l. */
typedef struct server_frame {
    uint32_t state;
    tml_tcp *l;
    int64_t bufsize;
    echo_stats *st;
    tml_accept_fut aw;
} server_frame;

static tml_poll server_poll(void *frame, tml_cx *cx) {
    server_frame *f = frame;
    for (;;) {
        if (f->state == 0) {
            tml_accept_init(&f->aw, f->l);
            f->state = 1;
        }
        if (tml_accept_poll(&f->aw, cx) == TML_PENDING)
            return TML_PENDING;
        f->state = 0;
        if (f->aw.status != TML_NET_OK) {
            if (f->aw.status != TML_NET_OTHER && f->aw.status != TML_NET_CANCELLED)
                mt_atomic_fetch_add(&f->st->errors, 1);
            tml_tcp_release(f->l);
            return TML_READY;
        }
        tml_tcp_set_nodelay(f->aw.stream, true);
        tml_join_release(tml_spawn(&conn_vt, &(conn_frame){.s = f->aw.stream, .bufsize = f->bufsize, .st = f->st}));
    }
}

static void server_drop(void *frame) {
    server_frame *f = frame;
    if (f->state == 1)
        tml_accept_drop(&f->aw);
    tml_tcp_release(f->l);
}

static const tml_task_vt server_vt = {server_poll, sizeof(server_frame), 0, 0, NULL, "echo_server", server_drop};

/* Spawns echo_server on `l` (taking a reference of its own). */
static tml_join *spawn_server(tml_tcp *l, int64_t bufsize, echo_stats *st) {
    tml_tcp_retain(l);
    return tml_spawn(&server_vt, &(server_frame){.l = l, .bufsize = bufsize, .st = st});
}

/* Closes the listener, which ends the server task; joins it. */
static void stop_server(tml_tcp *l, tml_join *server) {
    tml_tcp_close(l);
    join_unit(server);
    tml_tcp_release(l);
}

/* ------------------------------------------------ echo correctness */

#define MAX_MSG 65536

static uint64_t mix(uint64_t z) { /* splitmix64's finaliser */
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Bytes [off, off+len) of a pseudo-random stream named by `key`. */
static void pattern(uint8_t *dst, uint64_t key, size_t off, size_t len) {
    for (size_t i = 0; i < len;) {
        size_t pos = off + i, k = pos % 8;
        uint64_t v = mix(key + pos / 8);
        for (; k < 8 && i < len; k++, i++)
            dst[i] = (uint8_t)(v >> (8 * k));
    }
}

/* Message contents: a slice of one random table, starting at an offset
 * that depends on the message, so sending and checking are a send from,
 * and a memcmp against, the table (cheap even in a -O0 build). A byte
 * echoed out of place or from another message almost surely differs. */
#define TABLE (3 * MAX_MSG)
static uint8_t table[TABLE];

static void table_init(void) {
    pattern(table, 42, 0, TABLE);
}

static const uint8_t *message_bytes(uint64_t key) {
    return table + key % (2 * MAX_MSG);
}

typedef struct client_conn {
    int fd;
    int msg;            /* messages completed */
    size_t size, sent, got;
    uint64_t key;
    bool draining;      /* all echoed; waiting for the server's EOF */
} client_conn;

typedef struct echo_clients {
    tml_sockaddr addr;
    int first, n, msgs;
    int64_t bytes;      /* echoed bytes verified */
    char err[160];      /* empty when every byte came back */
} echo_clients;

/* Message `m` of connection `id`: its key and size. Sizes are random
 * in 1 .. 64 KiB, log-uniform (a power of two 2^k, k uniform in 0..16,
 * then uniform in 1 .. 2^k), so small and large messages both occur
 * often without 3 GB of traffic; each connection also starts with one
 * 1-byte and one 64 KiB message, so both ends of the range occur. */
static void next_message(client_conn *c, int id) {
    c->key = mix((uint64_t)id << 20 | (uint64_t)c->msg);
    uint64_t r = mix(c->key);
    c->size = c->msg == 0 ? 1 : c->msg == 1 ? MAX_MSG : 1 + (r >> 8) % (UINT64_C(1) << (r % 17));
    c->sent = c->got = 0;
}

/* One step of connection c after poll said `rev`. Returns false when it
 * is finished (closed), true while it goes on; sets cl->err on error. */
static bool client_step(echo_clients *cl, client_conn *c, int id, short rev, uint8_t *scratch) {
    const uint8_t *msg = message_bytes(c->key);
    if ((rev & POLLOUT) && !c->draining && c->sent < c->size) {
        ssize_t n = send(c->fd, (const void *)(msg + c->sent), c->size - c->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && sock_errno() != EAGAIN) {
            snprintf(cl->err, sizeof cl->err, "conn %d: send: error %d", id, sock_errno());
            return false;
        }
        c->sent += n > 0 ? (size_t)n : 0;
    }
    if (!(rev & (POLLIN | POLLHUP | POLLERR)))
        return true;
    size_t want = c->draining ? MAX_MSG : c->size - c->got;
    ssize_t n = recv(c->fd, (void *)scratch, want, MSG_DONTWAIT);
    if (n < 0 && sock_errno() == EAGAIN)
        return true;
    if (c->draining && n == 0) { /* the server closed after our shutdown: exact */
        close(c->fd);
        return false;
    }
    if (n <= 0 || c->draining) {
        snprintf(cl->err, sizeof cl->err, "conn %d msg %d: recv %zd (%s) after %zu of %zu bytes", id, c->msg, n,
                 n < 0 ? strerror(sock_errno()) : c->draining ? "extra bytes" : "EOF", c->got, c->size);
        return false;
    }
    if (memcmp(scratch, msg + c->got, (size_t)n) != 0) {
        snprintf(cl->err, sizeof cl->err, "conn %d msg %d: wrong bytes at %zu", id, c->msg, c->got);
        return false;
    }
    c->got += (size_t)n;
    cl->bytes += n;
    if (c->got == c->size && ++c->msg == cl->msgs) {
        shutdown(c->fd, SHUT_WR);
        c->draining = true;
    } else if (c->got == c->size) {
        next_message(c, id);
    }
    return true;
}

/* A client thread: connects its n connections, then drives them all at
 * once with poll(2), one message outstanding per connection. */
static void *echo_client_main(void *arg) {
    echo_clients *cl = arg;
    client_conn *cs = calloc((size_t)cl->n, sizeof *cs);
    struct pollfd *pf = calloc((size_t)cl->n, sizeof *pf);
    uint8_t *scratch = malloc(MAX_MSG);
    struct sockaddr_in in = os_addr(&cl->addr);
    for (int i = 0; i < cl->n; i++) {
        cs[i].fd = (int)socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cs[i].fd < 0 || connect(cs[i].fd, (struct sockaddr *)&in, sizeof in) < 0) {
            snprintf(cl->err, sizeof cl->err, "connect %d: error %d", cl->first + i, sock_errno());
            goto out;
        }
        dont_wait(cs[i].fd);
        next_message(&cs[i], cl->first + i);
    }
    for (int active = cl->n; active > 0 && !cl->err[0];) {
        int m = 0;
        for (int i = 0; i < cl->n; i++) {
            if (cs[i].fd < 0)
                continue;
            bool out = !cs[i].draining && cs[i].sent < cs[i].size;
            pf[m++] = (struct pollfd){.fd = cs[i].fd, .events = (short)(POLLIN | (out ? POLLOUT : 0))};
        }
        int r = poll(pf, (nfds_t)m, WAIT_MS * 2);
        if (r <= 0) {
            snprintf(cl->err, sizeof cl->err, "poll: %s", r == 0 ? "no progress for 10 s" : strerror(sock_errno()));
            break;
        }
        for (int i = 0, k = 0; i < cl->n && !cl->err[0]; i++) {
            if (cs[i].fd < 0)
                continue;
            short rev = pf[k++].revents;
            if (rev && !client_step(cl, &cs[i], cl->first + i, rev, scratch)) {
                cs[i].fd = -1;
                active--;
            }
        }
    }
out:
    for (int i = 0; i < cl->n; i++)
        if (cs[i].fd > 0)
            close(cs[i].fd);
    free(cs);
    free(pf);
    free(scratch);
    return NULL;
}

Test(net, echo_returns_exactly_what_each_of_1000_clients_sent, .timeout = TIMEOUT) {
    enum { THREADS = 8 };
    const int conns = 1000 / TEST_SCALE / WINE_SLOWDOWN, msgs = 100 / TEST_SCALE;
    table_init();
    enter_with_workers("2");
    echo_stats st;
    stats_init(&st);
    tml_sockaddr a;
    tml_tcp *l = listen_local(&a);
    tml_join *server = spawn_server(l, MAX_MSG, &st);
    echo_clients cl[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        int first = conns * t / THREADS, last = conns * (t + 1) / THREADS;
        cl[t] = (echo_clients){.addr = a, .first = first, .n = last - first, .msgs = msgs};
        th[t] = foreign_thread(echo_client_main, &cl[t]);
    }
    int64_t bytes = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        cr_expect_eq(cl[t].err[0], '\0', "client thread %d: %s", t, cl[t].err);
        bytes += cl[t].bytes;
    }
    cr_assert(latch_wait_s(&st.ended, conns, 30), "%lld of %d connection tasks ended",
              (long long)latch_count(&st.ended), conns);
    cr_assert_eq(mt_atomic_load(&st.errors), 0);
    cr_assert_gt(bytes, (int64_t)conns * MAX_MSG); /* at least the 64 KiB message each */
    cr_log_info("echo: %d connections x %d messages, %lld bytes echoed and checked\n", conns, msgs,
                (long long)bytes);
    stop_server(l, server);
    cr_assert_eq(mt_atomic_load(&mt_runtime_current()->io_sources), 0);
    tml_main_exit(0);
}

/* ------------------------------------------- 10,000 concurrent clients */

#ifdef __linux__ /* fork and RLIMIT_NOFILE */
/* The forked client of concurrent_connections: opens n connections,
 * sends each its index, reads every echo back, and only then closes
 * them all, so all n are open at once. Returns the exit status. */
static int many_clients(const tml_sockaddr *a, int n) {
    struct sockaddr_in in = os_addr(a);
    int *fds = malloc((size_t)n * sizeof *fds);
    struct timeval tv = {.tv_sec = 30};
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&in, sizeof in) < 0) {
            fprintf(stderr, "client: connect %d: %s\n", i, strerror(errno));
            return 2;
        }
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); /* bounds each wait below */
    }
    for (int i = 0; i < n; i++) {
        uint64_t v = (uint64_t)i;
        if (send(fds[i], &v, sizeof v, MSG_NOSIGNAL) != sizeof v) {
            fprintf(stderr, "client: send %d: %s\n", i, strerror(errno));
            return 3;
        }
    }
    for (int i = 0; i < n; i++) {
        uint64_t v = 0;
        if (recv(fds[i], &v, sizeof v, MSG_WAITALL) != sizeof v || v != (uint64_t)i) {
            fprintf(stderr, "client: echo %d: %s (got %llu)\n", i, strerror(errno), (unsigned long long)v);
            return 4;
        }
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    return 0;
}

/* Waits up to `seconds` for child `pid`; returns its wait status, or -1
 * (after killing it) on timeout. */
static int wait_child(pid_t pid, int seconds) {
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd >= 0) {
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        int r;
        while ((r = poll(&p, 1, seconds * 1000)) < 0 && errno == EINTR)
            ;
        close(pfd);
        if (r == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
    } /* no pidfd (old kernel): the test's .timeout bounds waitpid */
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

Test(net, ten_thousand_concurrent_connections_each_complete_a_round_trip, .timeout = TIMEOUT) {
    const int n = 10000 / TEST_SCALE;
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t want = rl.rlim_max < 25000 ? rl.rlim_max : 25000;
    if (want < (rlim_t)n + 100) {
        printf("net: skipped 10,000 connections: RLIMIT_NOFILE hard limit %llu < %d\n",
               (unsigned long long)rl.rlim_max, n + 100);
        return;
    }
    rl.rlim_cur = want;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    tml_sockaddr a;
    tml_tcp *l = listen_local(&a); /* before the fork: the child knows the port */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        tml_tcp_release(l); /* the child's copy of the descriptor */
        _exit(many_clients(&a, n));
    }
    enter_with_workers("2");
    echo_stats st;
    stats_init(&st);
    tml_join *server = spawn_server(l, 64, &st);
    int status = wait_child(pid, 100);
    cr_assert(status != -1, "the client process timed out");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client process status %d", status);
    cr_assert(latch_wait_s(&st.ended, n, 30), "%lld of %d connection tasks ended", (long long)latch_count(&st.ended),
              n);
    cr_assert_eq(mt_atomic_load(&st.max_live), (uint64_t)n, "only %llu connections were open at once",
                 (unsigned long long)mt_atomic_load(&st.max_live));
    cr_assert_eq(mt_atomic_load(&st.errors), 0);
    stop_server(l, server);
    tml_main_exit(0);
}
#endif

/* ---------------------------------------------- connect/disconnect fds */

/* async func cycles(addr, n): n times connects and drops the stream. */
typedef struct cycle_frame {
    uint32_t state;
    tml_sockaddr addr;
    int64_t left;
    int64_t failures;
    tml_connect_fut aw;
    int64_t ret; /* failures */
} cycle_frame;

static tml_poll cycle_poll(void *frame, tml_cx *cx) {
    cycle_frame *f = frame;
    for (; f->left > 0; f->left--) {
        if (f->state == 0) {
            tml_connect_init(&f->aw, &f->addr);
            f->state = 1;
        }
        if (tml_connect_poll(&f->aw, cx) == TML_PENDING)
            return TML_PENDING;
        f->state = 0;
        if (f->aw.status == TML_NET_OK)
            tml_tcp_release(f->aw.stream); /* the disconnect */
        else
            f->ret++;
    }
    return TML_READY;
}

static const tml_task_vt cycle_vt = {cycle_poll, sizeof(cycle_frame), offsetof(cycle_frame, ret), sizeof(int64_t),
                                     NULL, "cycles", NULL};

Test(net, ten_thousand_connect_disconnect_cycles_leave_no_fd_open, .timeout = TIMEOUT) {
    enum { TASKS = 4 };
    const int64_t n = 10000 / TEST_SCALE;
    enter_with_workers("2");
#ifdef __linux__
    int before = count_fds();
#endif
    echo_stats st;
    stats_init(&st);
    tml_sockaddr a;
    tml_tcp *l = listen_local(&a);
    tml_join *server = spawn_server(l, 64, &st);
    tml_join *c[TASKS];
    for (int t = 0; t < TASKS; t++)
        c[t] = tml_spawn(&cycle_vt, &(cycle_frame){.addr = a, .left = n / TASKS});
    for (int t = 0; t < TASKS; t++) {
        int64_t failures = -1;
        cr_assert_eq(tml_join_blocking(c[t], &failures), TML_JOIN_OK);
        cr_assert_eq(failures, 0);
        tml_join_release(c[t]);
    }
    cr_assert(latch_wait_s(&st.ended, n, 30), "%lld of %lld server ends closed", (long long)latch_count(&st.ended),
              (long long)n);
    stop_server(l, server);
    cr_assert_eq(mt_atomic_load(&mt_runtime_current()->io_sources), 0);
#ifdef __linux__ /* /proc/self/fd */
    cr_assert_eq(count_fds(), before);
#endif
    tml_main_exit(0);
}

#ifdef __linux__ /* a full backlog drops SYNs there; /proc/self/fd */
/* async func connect_once(addr) -> Bool: polls a connect leaf once, then
 * drops it; returns whether that poll was Pending. */
typedef struct connect_once_frame {
    tml_sockaddr addr;
    tml_connect_fut aw;
    bool ret;
} connect_once_frame;

static tml_poll connect_once_poll(void *frame, tml_cx *cx) {
    connect_once_frame *f = frame;
    tml_connect_init(&f->aw, &f->addr);
    f->ret = tml_connect_poll(&f->aw, cx) == TML_PENDING;
    if (f->ret)
        tml_connect_drop(&f->aw);
    else if (f->aw.status == TML_NET_OK)
        tml_tcp_release(f->aw.stream);
    return TML_READY;
}

static const tml_task_vt connect_once_vt = {connect_once_poll, sizeof(connect_once_frame),
                                            offsetof(connect_once_frame, ret), sizeof(bool), NULL, "connect_once",
                                            NULL};

/* Dropping a connect leaf, waiting or never polled, closes its socket. A
 * plain listener with a full accept queue (backlog 0, filled by two
 * connections) drops further SYNs, so connects stay in progress. */
Test(net, dropped_connect_closes_its_half_made_socket, .timeout = TIMEOUT) {
    enter_with_workers("2");
    tml_sockaddr a;
    tml_tcp *tmp = listen_local(&a);
    tml_tcp_release(tmp); /* frees the port for the plain listener below */
    struct sockaddr_in in = os_addr(&a);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, fill[2];
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&in, sizeof in), 0);
    cr_assert_eq(listen(lfd, 0), 0);
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fill[i], (struct sockaddr *)&in, sizeof in); /* EINPROGRESS */
    }
    int before = count_fds();
    tml_connect_fut f;
    tml_connect_init(&f, &a);
    tml_connect_drop(&f); /* never polled: nothing to release */
    tml_connect_drop(&f); /* idempotent */
    int pending = 0;
    for (int i = 0; i < 20; i++) {
        tml_join *h = tml_spawn(&connect_once_vt, &(connect_once_frame){.addr = a});
        bool was_pending = false;
        cr_assert_eq(tml_join_blocking(h, &was_pending), TML_JOIN_OK);
        tml_join_release(h);
        pending += was_pending;
    }
    cr_assert_gt(pending, 0, "no connect waited: the accept queue was not full");
    cr_assert_eq(count_fds(), before);
    cr_assert_eq(mt_atomic_load(&mt_runtime_current()->io_sources), 0);
    close(fill[0]);
    close(fill[1]);
    close(lfd);
    tml_main_exit(0);
}
#endif

/* ------------------------------------------------- one leaf in a task */

enum { W_ACCEPT, W_READ, W_WRITE_ALL };

/* async func wait_on(kind, s, buf) -> NetError: one accept, read or
 * write_all; counts in `waiting` every poll that had to wait (not a
 * budget yield). An accepted stream is released at once. */
typedef struct wait_frame {
    uint32_t state;
    int kind;
    tml_tcp *s;
    tml_buffer *buf;
    latch *waiting;
    union {
        tml_accept_fut ac;
        tml_read_fut rd;
        tml_write_all_fut wa;
    } aw;
    int32_t ret;
} wait_frame;

static tml_poll wait_poll(void *frame, tml_cx *cx) {
    wait_frame *f = frame;
    if (f->state == 0) {
        if (f->kind == W_ACCEPT)
            tml_accept_init(&f->aw.ac, f->s);
        else if (f->kind == W_READ)
            tml_read_init(&f->aw.rd, f->s, f->buf);
        else
            tml_write_all_init(&f->aw.wa, f->s, f->buf);
        f->state = 1;
    }
    tml_poll r = f->kind == W_ACCEPT ? tml_accept_poll(&f->aw.ac, cx)
                 : f->kind == W_READ ? tml_read_poll(&f->aw.rd, cx)
                                     : tml_write_all_poll(&f->aw.wa, cx);
    if (r == TML_PENDING) {
        if (!budget_spent(cx))
            latch_add(f->waiting, 1);
        return TML_PENDING;
    }
    f->ret = f->kind == W_ACCEPT ? f->aw.ac.status : f->kind == W_READ ? f->aw.rd.status : f->aw.wa.status;
    if (f->kind == W_ACCEPT && f->ret == TML_NET_OK)
        tml_tcp_release(f->aw.ac.stream);
    if (f->kind == W_WRITE_ALL && f->ret == TML_NET_OK && f->aw.wa.n != f->buf->len)
        f->ret = -2; /* OK with bytes unsent */
    return TML_READY;
}

static const tml_task_vt wait_vt = {wait_poll, sizeof(wait_frame), offsetof(wait_frame, ret), sizeof(int32_t), NULL,
                                    "wait_on", NULL};

static tml_join *spawn_wait(int kind, tml_tcp *s, tml_buffer *buf, latch *waiting) {
    return tml_spawn(&wait_vt, &(wait_frame){.kind = kind, .s = s, .buf = buf, .waiting = waiting});
}

static int32_t join_status(tml_join *h) {
    int32_t st = -1;
    cr_assert_eq(tml_join_blocking(h, &st), TML_JOIN_OK);
    tml_join_release(h);
    return st;
}

/* A connected pair: *plain is a blocking client socket, the result the
 * accepted stream (through an accept leaf). */
static tml_tcp *pair(tml_tcp **l, int *plain) {
    tml_sockaddr a;
    *l = listen_local(&a);
    *plain = plain_connect(&a);
    return accept_one(*l);
}

/* -------------------------------------------------------------- errors */

Test(net, connect_to_a_port_nobody_listens_on_is_refused, .timeout = TIMEOUT) {
    enter_with_workers("2");
    tml_sockaddr a;
    tml_tcp_release(listen_local(&a)); /* nobody listens there now */
    tml_tcp *s = NULL;
    cr_assert_eq(connect_async(&a, &s), TML_NET_CONNECTION_REFUSED);
    cr_assert_null(s);
    cr_assert_eq(tml_tcp_connect_blocking(&a, &s), TML_NET_CONNECTION_REFUSED);
    cr_assert_null(s);
    cr_assert_str_eq(tml_net_error_message(TML_NET_CONNECTION_REFUSED), "connection refused");
    tml_sockaddr none = {0};
    cr_assert_eq(connect_async(&none, &s), TML_NET_INVALID_INPUT);
    cr_assert_eq(tml_tcp_connect_blocking(&none, &s), TML_NET_INVALID_INPUT);
    cr_assert_eq(mt_atomic_load(&mt_runtime_current()->io_sources), 0);
    tml_main_exit(0);
}

Test(net, binding_a_port_twice_reports_addr_in_use, .timeout = TIMEOUT) {
    tml_sockaddr a;
    tml_tcp *l = listen_local(&a), *l2 = NULL;
    cr_assert_eq(tml_tcp_bind(&a, &l2), TML_NET_ADDR_IN_USE);
    cr_assert_null(l2);
    cr_assert_str_eq(tml_net_error_message(TML_NET_ADDR_IN_USE), "address in use");
    cr_assert_eq(tml_tcp_bind(&(tml_sockaddr){0}, &l2), TML_NET_INVALID_INPUT);
    /* an address this host does not have: EADDRNOTAVAIL */
    cr_assert_eq(tml_tcp_bind(&(tml_sockaddr){.family = TML_AF_IPV4, .ip = {192, 0, 2, 1}}, &l2), TML_NET_OTHER);
    tml_tcp_release(l);
}

static int32_t parse_status(const char *text, int64_t len) {
    tml_str s = {-1, len, text};
    tml_sockaddr a = {.port = 4242};
    int32_t st = tml_sockaddr_parse(&s, &a);
    if (st != TML_NET_OK)
        cr_assert_eq(a.port, 4242, "%s: output written on error", text);
    return st;
}

static void round_trip(const char *text, const char *want) {
    tml_sockaddr a = parse(text);
    tml_str *back = tml_sockaddr_to_string(&a);
    cr_assert_eq(back->len, (int64_t)strlen(want));
    cr_assert_eq(memcmp(back->ptr, want, strlen(want)), 0, "%s printed as %s", text, back->ptr);
    tml_str_release(back);
}

Test(net, bad_address_text_is_invalid_input, .timeout = TIMEOUT) {
    static const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:-1",
                                "127.0.0.1:+80", "127.0.0.1:8o", "127.0.0.1:80 ", " 127.0.0.1:80", "256.0.0.1:80",
                                "1.2.3:80", "localhost:80", "::1:80", "[::1:80", "[::1]80", "[::1]:", "[]:80",
                                "[127.0.0.1]:80", "[fe80::1%]:80", "[fe80::1%eth0]:80", "127.0.0.1:1234567"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(parse_status(bad[i], (int64_t)strlen(bad[i])), TML_NET_INVALID_INPUT, "accepted \"%s\"", bad[i]);
    cr_assert_eq(parse_status("1.2.3.4:80\0", 11), TML_NET_INVALID_INPUT); /* an embedded NUL */
    cr_assert_str_eq(tml_net_error_message(TML_NET_INVALID_INPUT), "invalid input");
    tml_sockaddr a = parse("127.0.0.1:8080");
    cr_assert_eq(a.family, TML_AF_IPV4);
    cr_assert_eq(a.port, 8080);
    cr_assert_eq(memcmp(a.ip, (uint8_t[]){127, 0, 0, 1}, 4), 0);
    a = parse("[::1]:80");
    cr_assert_eq(a.family, TML_AF_IPV6);
    cr_assert_eq(a.ip[15], 1);
    round_trip("127.0.0.1:8080", "127.0.0.1:8080");
    round_trip("0.0.0.0:0", "0.0.0.0:0");
    round_trip("[::1]:80", "[::1]:80");
    round_trip("[0:0:0:0:0:0:0:1]:65535", "[::1]:65535");
    round_trip("[fe80::1%2]:443", "[fe80::1%2]:443");
    tml_str *none = tml_sockaddr_to_string(&(tml_sockaddr){0});
    cr_assert_str_eq(none->ptr, "<invalid address>");
    tml_str_release(none);
    static const char *msgs[] = {"ok", "connection refused", "connection reset", "address in use", "invalid input",
                                 "timed out", "cancelled", "other error"};
    for (int32_t k = TML_NET_OK; k <= TML_NET_OTHER; k++)
        cr_assert_str_eq(tml_net_error_message(k), msgs[k]);
}

Test(net, ipv6_loopback_round_trip, .timeout = TIMEOUT) {
    enter_with_workers("2");
    tml_sockaddr want = parse("[::1]:0"), a, peer;
    tml_tcp *l = NULL, *c = NULL;
    int32_t st = tml_tcp_bind(&want, &l);
    if (st != TML_NET_OK) { /* no IPv6 on this host */
        printf("net: skipped IPv6: bind [::1]:0 gave %s\n", tml_net_error_message(st));
        tml_main_exit(0);
        return;
    }
    cr_assert_eq(tml_tcp_local_addr(l, &a), TML_NET_OK);
    cr_assert_eq(connect_async(&a, &c), TML_NET_OK);
    tml_accept_fut f;
    tml_accept_init(&f, l);
    mt_block_on_leaf(accept_leaf, accept_drop, &f);
    cr_assert_eq(f.status, TML_NET_OK);
    cr_assert_eq(f.peer.family, TML_AF_IPV6);
    cr_assert_eq(tml_tcp_peer_addr(c, &peer), TML_NET_OK);
    cr_assert_eq(memcmp(&peer, &a, sizeof a), 0);
    tml_tcp_release(f.stream);
    tml_tcp_release(c);
    tml_tcp_release(l);
    tml_main_exit(0);
}

Test(net, peer_reset_is_reported_by_read_and_write, .timeout = TIMEOUT) {
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
#endif
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, (const void *)&lg, sizeof lg), 0);
    close(fd); /* sends RST */
    tml_buffer *b = tml_buffer_new(16);
    int64_t n = -1;
    int32_t rst = read_async(s, b, &n);
#ifdef _WIN32 /* wine 8's recv reports a reset as end of stream (Windows: WSAECONNRESET) */
    cr_assert(rst == TML_NET_CONNECTION_RESET || rst == TML_NET_OK, "read after a reset: %d", rst);
#else
    cr_assert_eq(rst, TML_NET_CONNECTION_RESET, "read after a reset: %d", rst);
#endif
    cr_assert_eq(n, 0);
    cr_assert_eq(tml_buffer_len(b), 0);
    tml_buffer_write_byte(b, 'x');
    cr_assert_eq(write_async(s, b, &n), TML_NET_CONNECTION_RESET);
    cr_assert_eq(n, 0);
    cr_assert_eq(tml_tcp_write_all_blocking(s, b), TML_NET_CONNECTION_RESET);
    cr_assert_str_eq(tml_net_error_message(TML_NET_CONNECTION_RESET), "connection reset");
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

Test(net, orderly_close_reads_zero, .timeout = TIMEOUT) {
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    cr_assert_eq(send(fd, "hi", 2, 0), 2);
    close(fd); /* FIN after the data */
    tml_buffer *b = tml_buffer_new(16);
    int64_t n = -1, total = 0;
    while (total < 2) {
        cr_assert_eq(read_async(s, b, &n), TML_NET_OK);
        cr_assert_gt(n, 0);
        total += n;
    }
    cr_assert_eq(memcmp(b->bytes, "hi", 2), 0);
    cr_assert_eq(read_async(s, b, &n), TML_NET_OK);
    cr_assert_eq(n, 0); /* end of stream */
    cr_assert_eq(read_async(s, b, &n), TML_NET_OK);
    cr_assert_eq(n, 0); /* and it stays so */
    cr_assert_eq(tml_buffer_len(b), 2);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

Test(net, writing_to_a_closed_peer_fails_without_sigpipe, .timeout = TIMEOUT) {
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_DFL);
#endif
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    close(fd); /* FIN; the first write after it draws an RST */
    tml_buffer *b = tml_buffer_new(1024);
    for (int i = 0; i < 1024; i++)
        tml_buffer_write_byte(b, (uint8_t)i);
    int64_t n;
    int32_t st = TML_NET_OK;
    for (int i = 0; i < 10000 && st == TML_NET_OK; i++)
        st = write_async(s, b, &n);
    cr_assert_eq(st, TML_NET_CONNECTION_RESET);
    cr_assert_eq(tml_tcp_write_blocking(s, b, &n), TML_NET_CONNECTION_RESET);
    cr_assert_eq(n, 0);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

Test(net, operations_after_close_fail_with_other, .timeout = TIMEOUT) {
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    tml_tcp_close(s);
    tml_tcp_close(s); /* idempotent */
    tml_buffer *b = tml_buffer_new(8);
    tml_buffer_write_byte(b, 1);
    int64_t n = -1;
    cr_assert_eq(write_async(s, b, &n), TML_NET_OTHER);
    cr_assert_eq(read_async(s, b, &n), TML_NET_OTHER);
    cr_assert_eq(tml_tcp_write_blocking(s, b, &n), TML_NET_OTHER);
    cr_assert_eq(tml_tcp_read_blocking(s, b, &n), TML_NET_OTHER);
    cr_assert_eq(tml_tcp_write_all_blocking(s, b), TML_NET_OTHER);
    cr_assert_eq(tml_tcp_set_nodelay(s, true), TML_NET_OTHER);
    tml_sockaddr a;
    cr_assert_eq(tml_tcp_peer_addr(s, &a), TML_NET_OTHER);
    cr_assert_eq(tml_tcp_local_addr(s, &a), TML_NET_OTHER);
    char c;
    cr_assert_eq(recv(fd, &c, 1, 0), 0); /* the peer saw our FIN */
    tml_tcp_close(l);
    tml_tcp *s2 = NULL;
    cr_assert_eq(tml_tcp_accept_blocking(l, &s2, NULL), TML_NET_OTHER);
    cr_assert_null(s2);
    cr_assert_str_eq(tml_net_error_message(TML_NET_OTHER), "other error");
    close(fd);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

Test(net, full_buffer_reads_zero_and_empty_buffer_writes_zero_at_once, .timeout = TIMEOUT) {
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    tml_buffer *b = tml_buffer_new(1);
    tml_buffer_write_byte(b, 7);
    int64_t n = -1;
    cr_assert_eq(read_async(s, b, &n), TML_NET_OK); /* no data sent: would wait if it read */
    cr_assert_eq(n, 0);
    cr_assert_eq(tml_tcp_read_blocking(s, b, &n), TML_NET_OK);
    cr_assert_eq(n, 0);
    tml_buffer_clear(b);
    cr_assert_eq(write_async(s, b, &n), TML_NET_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(tml_tcp_write_blocking(s, b, &n), TML_NET_OK);
    cr_assert_eq(n, 0);
    close(fd);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

/* write_all of more than the socket buffers hold: the leaf waits for room
 * (keeping its progress) while the peer drains, and every byte arrives. */
Test(net, write_all_waits_for_room_and_sends_everything, .timeout = TIMEOUT) {
    enum { SIZE = 8 << 20 };
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    tml_buffer *b = tml_buffer_new(SIZE);
    pattern(b->bytes, 99, 0, SIZE);
    b->len = SIZE;
    latch waiting;
    latch_init(&waiting);
    tml_join *h = spawn_wait(W_WRITE_ALL, s, b, &waiting);
    cr_assert(latch_wait(&waiting, 1)); /* the send buffer filled up */
    uint8_t *got = malloc(SIZE);
    size_t have = 0;
    while (have < SIZE) {
        ssize_t k = recv(fd, (void *)(got + have), SIZE - have, 0);
        cr_assert_gt(k, 0);
        have += (size_t)k;
    }
    cr_assert_eq(join_status(h), TML_NET_OK);
    cr_assert_eq(memcmp(got, b->bytes, SIZE), 0);
    free(got);
    close(fd);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

/* -------------------------------------------------------- cancellation */

/* What the dropping task reports to the test. */
typedef struct drop_probe {
    mt_atomic polls;
    tml_waker token;
    bool first_pending; /* its read waited (not a budget yield) */
    latch dropped;
} drop_probe;

/* async func read_then_drop(s, buf): polls a read once, drops it, and
 * returns Pending with nothing left to wake it; any later poll is Ready. */
typedef struct drop_frame {
    drop_probe *p;
    tml_tcp *s;
    tml_buffer *buf;
    tml_read_fut aw;
} drop_frame;

static tml_poll drop_poll(void *frame, tml_cx *cx) {
    drop_frame *f = frame;
    if (mt_atomic_fetch_add(&f->p->polls, 1) > 0)
        return TML_READY;
    f->p->token = cx->waker;
    tml_read_init(&f->aw, f->s, f->buf);
    f->p->first_pending = tml_read_poll(&f->aw, cx) == TML_PENDING && !budget_spent(cx);
    tml_read_drop(&f->aw);
    tml_read_drop(&f->aw); /* idempotent */
    latch_add(&f->p->dropped, 1);
    return TML_PENDING;
}

static const tml_task_vt drop_vt = {drop_poll, sizeof(drop_frame), 0, 0, NULL, "read_then_drop", NULL};

/* A read polled once (Pending) and dropped leaves no waker: data that
 * arrives later wakes nobody. Proof that the event was dispatched: a
 * second reader gets the byte only once the reactor set the readiness the
 * dropped read cleared, and a third, which waits, is woken by a later
 * event, dispatched after the first one's wake-ups. */
Test(net, dropped_read_leaves_no_waker_behind, .timeout = TIMEOUT) {
    SKIP_UNDER_CHAOS("it asserts that nothing wakes the task, and chaos wakes it spuriously");
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    tml_buffer *b = tml_buffer_new(16);
    drop_probe p = {.first_pending = false};
    latch_init(&p.dropped);
    tml_join *a = tml_spawn(&drop_vt, &(drop_frame){.p = &p, .s = s, .buf = b});
    cr_assert(latch_wait(&p.dropped, 1));
    cr_assert(p.first_pending);
    cr_assert_eq(send(fd, "x", 1, 0), 1);
    int64_t n = -1;
    cr_assert_eq(read_async(s, b, &n), TML_NET_OK);
    cr_assert_eq(n, 1);
    latch waiting;
    latch_init(&waiting);
    tml_join *c = spawn_wait(W_READ, s, b, &waiting);
    cr_assert(latch_wait(&waiting, 1));
    cr_assert_eq(send(fd, "y", 1, 0), 1);
    cr_assert_eq(join_status(c), TML_NET_OK);
    cr_assert_eq(tml_buffer_len(b), 2);
    /* the dropped task was neither polled nor woken */
    cr_assert_eq(mt_atomic_load(&p.polls), 1);
    mt_runtime *rt = mt_runtime_current();
    mt_slot *slot = mt_slab_slot(&mt_runtime_owner(rt, p.token)->slab, mt_token_slot(p.token));
    uint64_t word = mt_atomic_load_acquire(&slot->word);
    cr_assert_eq(mt_task_gen(word), mt_token_gen(p.token));
    cr_assert_eq(mt_task_state(word) & (MT_TASK_SCHEDULED | MT_TASK_NOTIFIED), 0);
    tml_wake(p.token); /* lets it finish */
    join_unit(a);
    cr_assert_eq(mt_atomic_load(&p.polls), 2);
    close(fd);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

Test(net, reactor_cancel_all_ends_a_waiting_read_with_cancelled, .timeout = TIMEOUT) {
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    tml_buffer *b = tml_buffer_new(16);
    latch waiting;
    latch_init(&waiting);
    tml_join *h = spawn_wait(W_READ, s, b, &waiting);
    cr_assert(latch_wait(&waiting, 1));
    io_reactor_cancel_all(mt_runtime_current()->reactor);
    cr_assert_eq(join_status(h), TML_NET_CANCELLED);
    cr_assert_str_eq(tml_net_error_message(TML_NET_CANCELLED), "cancelled");
    /* after cancellation, a wait that starts later is cancelled too */
    cr_assert_eq(join_status(spawn_wait(W_ACCEPT, l, NULL, &waiting)), TML_NET_CANCELLED);
    close(fd);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

Test(net, close_wakes_a_waiting_accept_and_a_waiting_read, .timeout = TIMEOUT) {
    enter_with_workers("2");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    latch waiting;
    latch_init(&waiting);
    tml_join *h = spawn_wait(W_ACCEPT, l, NULL, &waiting);
    cr_assert(latch_wait(&waiting, 1));
    tml_tcp_close(l);
    cr_assert_eq(join_status(h), TML_NET_OTHER);
    tml_buffer *b = tml_buffer_new(16);
    h = spawn_wait(W_READ, s, b, &waiting);
    cr_assert(latch_wait(&waiting, 2));
    tml_tcp_close(s);
    cr_assert_eq(join_status(h), TML_NET_OTHER);
    char c;
    cr_assert_eq(recv(fd, &c, 1, 0), 0); /* the peer sees end of stream */
    close(fd);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
}

/* ------------------------------------------------------- blocking forms */

/* A plain thread's echo, with blocking forms only: accept one stream,
 * echo until end of stream. */
static void *blocking_echo_main(void *arg) {
    tml_tcp *l = arg, *s = NULL;
    tml_sockaddr peer;
    if (tml_tcp_accept_blocking(l, &s, &peer) != TML_NET_OK)
        return (void *)"accept";
    if (peer.family != TML_AF_IPV4 || peer.port == 0)
        return (void *)"peer address";
    tml_buffer *b = tml_buffer_new(4096);
    const char *err = NULL;
    for (int64_t n = 1; n > 0 && !err;) {
        tml_buffer_clear(b);
        if (tml_tcp_read_blocking(s, b, &n) != TML_NET_OK || n != tml_buffer_len(b))
            err = "read";
        else if (tml_tcp_write_all_blocking(s, b) != TML_NET_OK)
            err = "write_all";
    }
    tml_buffer_release(b);
    tml_tcp_release(s);
    return (void *)err;
}

static void *blocking_accept_main(void *arg) {
    tml_tcp *s = NULL;
    return (void *)(intptr_t)tml_tcp_accept_blocking(arg, &s, NULL);
}

/* No runtime at all: the blocking forms wait with poll(2). */
Test(net, blocking_forms_work_on_plain_threads, .timeout = TIMEOUT) {
    enum { CHUNK = 16384, ROUNDS = 8 };
    tml_sockaddr a, local, peer;
    tml_tcp *l = listen_local(&a), *c = NULL;
    pthread_t t = foreign_thread(blocking_echo_main, l);
    cr_assert_eq(tml_tcp_connect_blocking(&a, &c), TML_NET_OK);
    cr_assert_eq(tml_tcp_set_nodelay(c, true), TML_NET_OK);
    cr_assert_eq(tml_tcp_peer_addr(c, &peer), TML_NET_OK);
    cr_assert_eq(memcmp(&peer, &a, sizeof a), 0);
    cr_assert_eq(tml_tcp_local_addr(c, &local), TML_NET_OK);
    cr_assert_eq(local.family, TML_AF_IPV4);
    tml_buffer *out = tml_buffer_new(CHUNK), *in = tml_buffer_new(CHUNK);
    for (int r = 0; r < ROUNDS; r++) {
        tml_buffer_clear(out);
        pattern(out->bytes, (uint64_t)r, 0, CHUNK);
        out->len = CHUNK;
        int64_t n = 0;
        if (r % 2)
            cr_assert_eq(tml_tcp_write_all_blocking(c, out), TML_NET_OK);
        else
            for (int64_t sent = 0; sent < CHUNK; sent += n) { /* write: one send each */
                tml_buffer *rest = tml_buffer_new(CHUNK - sent);
                memcpy(rest->bytes, out->bytes + sent, (size_t)(CHUNK - sent));
                rest->len = CHUNK - sent;
                cr_assert_eq(tml_tcp_write_blocking(c, rest, &n), TML_NET_OK);
                cr_assert_gt(n, 0);
                tml_buffer_release(rest);
            }
        tml_buffer_clear(in);
        while (tml_buffer_len(in) < CHUNK) {
            cr_assert_eq(tml_tcp_read_blocking(c, in, &n), TML_NET_OK);
            cr_assert_gt(n, 0);
        }
        cr_assert_eq(memcmp(in->bytes, out->bytes, CHUNK), 0, "round %d", r);
    }
    tml_tcp_release(c); /* the echo thread reads end of stream */
    void *err = NULL;
    pthread_join(t, &err);
    cr_assert_null(err, "echo thread: %s", (const char *)err);
    /* a thread blocked in accept returns when another closes the listener */
    t = foreign_thread(blocking_accept_main, l);
    tml_tcp_close(l);
    pthread_join(t, &err);
    cr_assert_eq((int32_t)(intptr_t)err, TML_NET_OTHER);
    tml_buffer_release(out);
    tml_buffer_release(in);
    tml_tcp_release(l);
}

/* -------------------------------------------------------------- Buffer */

/* ----------------------------------------- I/O behind a global backlog */

/* async func tally() { ran += 1 } */
static mt_atomic tallied;

static tml_poll tally_poll(void *frame, tml_cx *cx) {
    (void)frame, (void)cx;
    mt_atomic_fetch_add(&tallied, 1);
    return TML_READY;
}

static const tml_task_vt tally_vt = {tally_poll, sizeof(uint32_t), 0, 0, NULL, "tally", NULL};

/* async func first_reader(s) { await s.read(buf) }, noting when it
 * started waiting and, once woken, how many tallies had run before it. */
typedef struct first_reader_frame {
    uint32_t state;
    tml_tcp *s;
    tml_buffer *buf;
    latch *waiting, *woken;
    int64_t *tallied_before, *woken_ns;
    tml_read_fut rd;
} first_reader_frame;

/* A reader task's first poll: starts reading s into buf, which waits
 * (nothing was sent yet), and counts the task in `waiting`. */
static tml_poll start_waiting_read(tml_read_fut *rd, tml_tcp *s, tml_buffer *buf, latch *waiting,
                                   tml_cx *cx) {
    tml_read_init(rd, s, buf);
    cr_assert_eq(tml_read_poll(rd, cx), TML_PENDING, "nothing was sent yet, but the read completed");
    latch_add(waiting, 1);
    return TML_PENDING;
}

static tml_poll first_reader_poll(void *frame, tml_cx *cx) {
    first_reader_frame *f = frame;
    if (f->state == 0) {
        f->state = 1;
        return start_waiting_read(&f->rd, f->s, f->buf, f->waiting, cx);
    }
    if (tml_read_poll(&f->rd, cx) == TML_PENDING)
        return TML_PENDING;
    *f->tallied_before = (int64_t)mt_atomic_load(&tallied);
    *f->woken_ns = tml_now_ns();
    latch_add(f->woken, 1);
    return TML_READY;
}

static const tml_task_vt first_reader_vt = {first_reader_poll, sizeof(first_reader_frame), 0, 0,
                                            NULL, "first_reader", NULL};

/* async func flood(fd, n) { spawn n tallies; send one byte on fd }: the
 * spawns overflow the worker's local queue into the global queue, then
 * the reader's socket becomes readable. */
typedef struct flood_frame {
    uint32_t state;
    int fd;
    int64_t n;
    int64_t *started_ns;
} flood_frame;

static tml_poll flood_poll(void *frame, tml_cx *cx) {
    (void)cx;
    flood_frame *f = frame;
    *f->started_ns = tml_now_ns();
    for (int64_t i = 0; i < f->n; i++)
        tml_join_release(tml_spawn(&tally_vt, &(uint32_t){0}));
    cr_assert_eq(send(f->fd, "x", 1, 0), 1);
    return TML_READY;
}

static const tml_task_vt flood_vt = {flood_poll, sizeof(flood_frame), 0, 0, NULL, "flood", NULL};

/* RT-REACTOR-2: readiness does not overtake tasks waiting in the global
 * queue. One worker spawns 4 * MT_DEQUE_CAP tasks (most overflow into the
 * global queue), then makes a waiting reader's socket readable: the
 * reader runs after nearly all of them, not at the next fairness tick
 * (61 polls later), unless MT_IO_STARVE_NS passed first. */
Test(net, readiness_does_not_overtake_a_global_backlog, .timeout = TIMEOUT) {
    enter_with_workers("1");
    tml_tcp *l;
    int fd;
    tml_tcp *s = pair(&l, &fd);
    latch waiting, woken;
    latch_init(&waiting);
    latch_init(&woken);
    int64_t before = -1, woken_ns = 0, started_ns = 0, n = 4 * MT_DEQUE_CAP;
    mt_atomic_store(&tallied, 0);
    tml_buffer *b = tml_buffer_new(16);
    first_reader_frame rf = {.s = s, .buf = b, .waiting = &waiting, .woken = &woken,
                             .tallied_before = &before, .woken_ns = &woken_ns};
    tml_join_release(tml_spawn(&first_reader_vt, &rf));
    cr_assert(latch_wait(&waiting, 1), "the reader never started waiting");
    tml_join_release(tml_spawn(&flood_vt, &(flood_frame){.fd = fd, .n = n, .started_ns = &started_ns}));
    cr_assert(latch_wait(&woken, 1), "the readable socket never woke its reader");
    close(fd);
    tml_buffer_release(b);
    tml_tcp_release(s);
    tml_tcp_release(l);
    tml_main_exit(0);
    cr_assert_eq((int64_t)mt_atomic_load(&tallied), n);
    cr_assert(before >= n - MT_DEQUE_CAP / 2 || woken_ns - started_ns >= MT_IO_STARVE_NS,
              "the reader ran after %lld of %lld tasks, %lld ns after they were queued", (long long)before,
              (long long)n, (long long)(woken_ns - started_ns));
}

/* ------------------------------- readiness stays where it was polled */

enum { BURST = 16 };

/* What a busy_reader saw once woken: the worker that ran it, when it
 * started (its read done) and ended, and that worker's idle_ns then (the
 * start of its freshness, mt_worker.c's "Readiness stays where it was
 * polled"). */
typedef struct reader_run {
    unsigned worker;
    int64_t start_ns, idle_ns, done_ns;
} reader_run;

/* async func busy_reader(s, spin_ns) { await s.read(buf); burn spin_ns },
 * noting in `run` where and when it ran once woken. */
typedef struct busy_reader_frame {
    uint32_t state;
    tml_tcp *s;
    tml_buffer *buf;
    int64_t spin_ns;
    latch *waiting, *done;
    reader_run *run;
    tml_read_fut rd;
} busy_reader_frame;

static tml_poll busy_reader_poll(void *frame, tml_cx *cx) {
    busy_reader_frame *f = frame;
    if (f->state == 0) {
        f->state = 1;
        return start_waiting_read(&f->rd, f->s, f->buf, f->waiting, cx);
    }
    if (tml_read_poll(&f->rd, cx) == TML_PENDING)
        return TML_PENDING;
    int64_t start = tml_now_ns();
    *f->run = (reader_run){.worker = mt_current_worker->index, .start_ns = start,
                           .idle_ns = mt_current_worker->idle_ns}; /* its own field: no race */
    while (tml_now_ns() < start + f->spin_ns)
        mt_cpu_relax();
    f->run->done_ns = tml_now_ns();
    latch_add(f->done, 1);
    return TML_READY;
}

static const tml_task_vt busy_reader_vt = {busy_reader_poll, sizeof(busy_reader_frame), 0, 0, NULL,
                                           "busy_reader", NULL};

/* Waits until every worker of the runtime is parked; false after WAIT_MS. */
static bool all_parked(void) {
    mt_runtime *rt = mt_runtime_current();
    int64_t deadline = tml_now_ns() + (int64_t)WAIT_MS * 1000000;
    while (mt_idle_n_unparked(mt_atomic_load(&rt->idle.state)) > 0) {
        if (tml_now_ns() > deadline)
            return false;
        sched_yield();
    }
    return true;
}

/* Parks BURST readers on sockets with 2 workers, waits until both
 * workers park (so neither searches, ready to steal, and the one that
 * holds the driver is the only one the readiness wakes), makes every
 * socket readable from this thread, and waits until each reader burnt
 * spin_ns. Fills run[i] for reader i. */
static void burst(int64_t spin_ns, reader_run run[BURST]) {
    enter_with_workers("2");
    tml_tcp *l[BURST], *s[BURST];
    tml_buffer *b[BURST];
    int fd[BURST];
    busy_reader_frame rf[BURST];
    latch waiting, done;
    latch_init(&waiting);
    latch_init(&done);
    for (int i = 0; i < BURST; i++) {
        s[i] = pair(&l[i], &fd[i]);
        b[i] = tml_buffer_new(16);
        rf[i] = (busy_reader_frame){.s = s[i], .buf = b[i], .spin_ns = spin_ns, .waiting = &waiting,
                                    .done = &done, .run = &run[i]};
        tml_join_release(tml_spawn(&busy_reader_vt, &rf[i]));
    }
    cr_assert(latch_wait(&waiting, BURST), "the readers never all started waiting");
    cr_assert(all_parked(), "the workers never parked");
    for (int i = 0; i < BURST; i++)
        cr_assert_eq(send(fd[i], "x", 1, 0), 1);
    cr_assert(latch_wait(&done, BURST), "the readable sockets never woke all their readers");
    for (int i = 0; i < BURST; i++) {
        close(fd[i]);
        tml_buffer_release(b[i]);
        tml_tcp_release(s[i]);
        tml_tcp_release(l[i]);
    }
    tml_main_exit(0);
}

/* A burst seen from its polling worker: the one that ran the first
 * reader, i.e. that held the driver when the readiness came. */
typedef struct burst_view {
    unsigned polling;
    int64_t fresh_from; /* its idle_ns as its first reader saw it */
    int64_t last_start; /* when the last reader started */
    int early;          /* the first reader run elsewhere before fresh_from +
                           MT_IO_FRESH_NS, or -1 */
    unsigned early_worker;
    int64_t early_us;   /* how long before then it started */
} burst_view;

/* RT-REACTOR-3's rule holds however slow the machine is: the other
 * worker, parked, is woken for this work only by the polling worker's
 * notification, which waits until that worker is no longer fresh (and
 * its idle_ns only grows); so a reader runs elsewhere only once the
 * polling worker's freshness, as its first reader saw it, is over. */
static burst_view view_burst(const reader_run run[BURST]) {
    int first = 0;
    for (int i = 1; i < BURST; i++)
        first = run[i].start_ns < run[first].start_ns ? i : first;
    burst_view v = {.polling = run[first].worker, .fresh_from = run[first].idle_ns, .early = -1};
    for (int i = 0; i < BURST; i++) {
        v.last_start = run[i].start_ns > v.last_start ? run[i].start_ns : v.last_start;
        if (v.early < 0 && run[i].worker != v.polling && run[i].start_ns < v.fresh_from + MT_IO_FRESH_NS) {
            v.early = i;
            v.early_worker = run[i].worker;
            v.early_us = (v.fresh_from + MT_IO_FRESH_NS - run[i].start_ns) / 1000;
        }
    }
    return v;
}

#define HELPED_EARLY "reader %d ran on worker %u %lld us before polling worker %u stopped being fresh"

/* RT-REACTOR-3: a burst of readiness that one worker can serve within
 * MT_IO_FRESH_NS of unparking stays on that worker: no other worker is
 * woken to steal it (BURST x 300 us = 4.8 ms, 5.0-5.4 ms plain and under
 * TSan; with the old notification rule the idle worker took some in 9
 * runs of 10). Asserted for any burst: no reader ran elsewhere while the
 * polling worker was fresh, which for a burst whose readers all started
 * within its freshness means all ran on it. A burst that ran past it (a
 * machine so busy that help was due: under a CPU hog, 5.5 ms median, 12
 * ms at most in 30 runs) cannot show the rest: the test is skipped. */
Test(net, a_short_burst_of_readiness_stays_on_the_polling_worker, .timeout = TIMEOUT) {
    SKIP_UNDER_CHAOS("it asserts where tasks run, and chaos steals and parks at random");
    reader_run run[BURST];
    burst(300000, run);
    burst_view v = view_burst(run);
    cr_assert_eq(v.early, -1, HELPED_EARLY, v.early, v.early_worker, (long long)v.early_us, v.polling);
    if (v.last_start - v.fresh_from >= MT_IO_FRESH_NS) {
        int on_polling = 0;
        for (int i = 0; i < BURST; i++)
            on_polling += run[i].worker == v.polling;
        char why[256];
        snprintf(why, sizeof why,
                 "the machine was too busy: the last reader started %.1f ms after polling worker %u "
                 "became fresh, past MT_IO_FRESH_NS (%d ms), so help was due (%d of %d readers ran on "
                 "it; none was helped early)",
                 (double)(v.last_start - v.fresh_from) / 1e6, v.polling, MT_IO_FRESH_NS / 1000000,
                 on_polling, BURST);
        /* Criterion shows a skip only with --verbose: say it here too */
        fprintf(stderr, "[SKIP] net::a_short_burst_of_readiness_stays_on_the_polling_worker: %s\n", why);
        cr_skip_test("%s", why);
    }
}

/* RT-REACTOR-3: ... and a longer one gets help once the worker is no
 * longer fresh (BURST x 2 ms = 32 ms, MT_IO_FRESH_NS = 10 ms): both
 * workers run readers, the helper none before then. */
Test(net, a_long_burst_of_readiness_gets_help, .timeout = TIMEOUT) {
    SKIP_UNDER_CHAOS("it asserts where tasks run, and chaos steals and parks at random");
    reader_run run[BURST];
    burst(2000000, run);
    burst_view v = view_burst(run);
    cr_assert_eq(v.early, -1, HELPED_EARLY, v.early, v.early_worker, (long long)v.early_us, v.polling);
    int on_polling = 0;
    for (int i = 0; i < BURST; i++)
        on_polling += run[i].worker == v.polling;
    cr_assert_lt(on_polling, BURST, "all %d readers ran on worker %u", BURST, v.polling);
}

Test(buffer, bytes_go_in_at_the_end_and_come_out_from_the_read_position, .timeout = TIMEOUT) {
    tml_buffer *b = tml_buffer_new(4);
    cr_assert_eq(tml_buffer_capacity(b), 4);
    cr_assert_eq(tml_buffer_len(b), 0);
    uint8_t v = 0;
    cr_assert_not(tml_buffer_read_byte(b, &v));
    tml_buffer_write_byte(b, 'a');
    tml_buffer_write_byte(b, 'b');
    cr_assert(tml_buffer_read_byte(b, &v));
    cr_assert_eq(v, 'a');
    tml_str cd = TML_STR_LIT("cd");
    tml_buffer_write_str(b, &cd);
    cr_assert_eq(tml_buffer_len(b), 4);
    tml_str *all = tml_buffer_to_string(b);
    cr_assert_str_eq(all->ptr, "abcd"); /* read_byte does not shorten it */
    tml_str_release(all);
    for (const char *want = "bcd"; *want; want++) {
        cr_assert(tml_buffer_read_byte(b, &v));
        cr_assert_eq(v, *want);
    }
    cr_assert_not(tml_buffer_read_byte(b, &v));
    tml_buffer_retain(b);
    tml_buffer_release(b);
    tml_buffer_clear(b);
    cr_assert_eq(tml_buffer_len(b), 0);
    cr_assert_not(tml_buffer_read_byte(b, &v));
    tml_buffer_write_byte(b, 'z');
    cr_assert(tml_buffer_read_byte(b, &v)); /* the read position restarted at 0 */
    cr_assert_eq(v, 'z');
    tml_str empty = TML_STR_LIT("");
    tml_buffer_write_str(b, &empty);
    all = tml_buffer_to_string(b);
    cr_assert_eq(all->len, 1);
    tml_str_release(all);
    tml_buffer_release(b);
}

Test(buffer, zero_capacity_panics, .timeout = TIMEOUT, .exit_code = 101) {
    tml_buffer_new(0);
}

Test(buffer, huge_capacity_panics, .timeout = TIMEOUT, .exit_code = 101) {
    tml_buffer_new(TML_BUFFER_MAX_CAP + 1);
}

Test(buffer, write_byte_into_a_full_buffer_panics, .timeout = TIMEOUT, .exit_code = 101) {
    tml_buffer *b = tml_buffer_new(1);
    tml_buffer_write_byte(b, 1);
    tml_buffer_write_byte(b, 2);
}

Test(buffer, write_str_that_does_not_fit_panics, .timeout = TIMEOUT, .exit_code = 101) {
    tml_buffer *b = tml_buffer_new(2);
    tml_str s = TML_STR_LIT("abc");
    tml_buffer_write_str(b, &s);
}

/* The `_at` forms are what generated code calls: the same operations, with a
 * location for the panic message (checked by tests/spec/LANG-BUFFER-PANIC-1_*). */
Test(buffer, located_forms_write_as_the_plain_ones, .timeout = TIMEOUT) {
    tml_buffer *b = tml_buffer_new_at(3, "f.tml", 1, 2);
    tml_buffer_write_byte_at(b, 'a', "f.tml", 3, 4);
    tml_str bc = TML_STR_LIT("bc");
    tml_buffer_write_str_at(b, &bc, NULL, 0, 0);
    tml_str *all = tml_buffer_to_string(b);
    cr_assert_str_eq(all->ptr, "abc");
    tml_str_release(all);
    tml_buffer_release(b);
}

Test(buffer, located_zero_capacity_panics, .timeout = TIMEOUT, .exit_code = 101) {
    tml_buffer_new_at(0, "f.tml", 1, 2);
}

Test(buffer, located_write_byte_into_a_full_buffer_panics, .timeout = TIMEOUT, .exit_code = 101) {
    tml_buffer *b = tml_buffer_new_at(1, "f.tml", 1, 2);
    tml_buffer_write_byte_at(b, 1, "f.tml", 2, 3);
    tml_buffer_write_byte_at(b, 2, "f.tml", 3, 4);
}

Test(buffer, located_write_str_that_does_not_fit_panics, .timeout = TIMEOUT, .exit_code = 101) {
    tml_buffer *b = tml_buffer_new_at(2, "f.tml", 1, 2);
    tml_str s = TML_STR_LIT("abc");
    tml_buffer_write_str_at(b, &s, "f.tml", 2, 3);
}
