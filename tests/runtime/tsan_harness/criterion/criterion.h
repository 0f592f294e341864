/* criterion/criterion.h (TSan harness) - the subset of Criterion 2.4 the
 * runtime tests use, for builds where the real Criterion cannot start.
 *
 * Why: under -fsanitize=thread, libcriterion aborts before running any
 * test ("Could not initialize inheritable arena", Snaipe/Criterion#274):
 * BoxFort probes random addresses for its arena and ThreadSanitizer owns
 * them all. Compiling a test file of tests/runtime/ with
 * -Itests/runtime/tsan_harness (and without -lcriterion) builds the same
 * test source against this header instead, so the whole unit suite runs
 * under ThreadSanitizer, e.g. (runtime/ and stdlib/ sources: all .c files)
 *
 *   cc -std=c11 -D_GNU_SOURCE -fsanitize=thread -g -O1 \
 *      -Itests/runtime/tsan_harness -Iruntime/include -Iruntime \
 *      tests/runtime/mt_task_test.c RUNTIME_AND_STDLIB_SOURCES \
 *      -latomic_ops -lpthread -o mt_task_test && ./mt_task_test
 *
 * Semantics kept from Criterion: each Test runs in its own forked process;
 * `.timeout` (seconds) kills it; `.exit_code` is the expected exit status
 * (tests that end in a runtime panic expect 101); a failed cr_assert ends
 * the test. The output ends with Criterion's "Synthesis" line and the exit
 * status is 0 only when every test passed. A ThreadSanitizer report makes
 * the child exit with status 66, so it fails the test.
 * Assertion messages print the failed expression, not Criterion's
 * formatted operands. Only this header's macros exist; anything else from
 * Criterion is a compile error, never a silent no-op. */
#ifndef RT_TSAN_HARNESS_CRITERION_H
#define RT_TSAN_HARNESS_CRITERION_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

struct cr_harness_opts {
    double timeout;  /* seconds; 0: none */
    int exit_code;   /* expected exit status */
};

struct cr_harness_test {
    const char *suite, *name;
    void (*fn)(void);
    struct cr_harness_opts opts;
    struct cr_harness_test *next;
};

static struct cr_harness_test *cr_harness_tests;

static void cr_harness_register(struct cr_harness_test *t) {
    struct cr_harness_test **p = &cr_harness_tests;
    while (*p)
        p = &(*p)->next;
    *p = t;
}

#define Test(suite, name, ...)                                                   \
    static void suite##_##name##_fn(void);                                       \
    static struct cr_harness_test suite##_##name##_test = {                      \
        #suite, #name, suite##_##name##_fn, {__VA_ARGS__}, NULL};                \
    __attribute__((constructor)) static void suite##_##name##_register(void) {   \
        cr_harness_register(&suite##_##name##_test);                             \
    }                                                                            \
    static void suite##_##name##_fn(void)

static _Noreturn void cr_harness_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "%s:%d: Assertion failed: %s\n", file, line, expr);
    fflush(NULL);
    _exit(1);
}

#define cr_assert(cond, ...) ((cond) ? (void)0 : cr_harness_fail(__FILE__, __LINE__, #cond))
#define cr_assert_not(cond, ...) cr_assert(!(cond))
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b))
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b))
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b))
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b))
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b))
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b))
#define cr_assert_null(p, ...) cr_assert((p) == NULL)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL)

/* Runs `t` in a child process; true when it exited as expected. */
static bool cr_harness_run(const struct cr_harness_test *t) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (t->opts.timeout > 0)
            alarm((unsigned)(t->opts.timeout + 0.999));
        t->fn();
        fflush(NULL);
        exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return false;
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "[FAIL] %s::%s: killed by signal %d%s\n", t->suite, t->name,
                WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (timed out)" : "");
        return false;
    }
    if (WEXITSTATUS(status) != t->opts.exit_code) {
        fprintf(stderr, "[FAIL] %s::%s: exit status %d, expected %d\n", t->suite, t->name,
                WEXITSTATUS(status), t->opts.exit_code);
        return false;
    }
    return true;
}

int main(void) {
    int tested = 0, failed = 0;
    for (const struct cr_harness_test *t = cr_harness_tests; t; t = t->next) {
        tested++;
        if (!cr_harness_run(t))
            failed++;
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: 0\n", tested,
           tested - failed, failed);
    return failed ? 1 : 0;
}

#endif /* RT_TSAN_HARNESS_CRITERION_H */
