/* criterion.h - Criterion's test API, for ThreadSanitizer builds and the
 * cross targets (Windows, macOS).
 *
 * Why this exists: Criterion 2.4 cannot start under ThreadSanitizer. Its
 * BoxFort "inheritable arena" is mmap'ed at random fixed addresses that
 * TSan's shadow memory already owns, so every run aborts with "Could not
 * initialize inheritable arena" (Snaipe/Criterion#274, open). Nor is it
 * packaged for mingw-w64. The plain and ASan builds use the real
 * Criterion; `./configure.py --sanitize=thread` and `--target=...` put
 * tests/tsan/ first on the include path instead, so the same test
 * sources run there unchanged.
 *
 * Supported: Test(suite, name, .timeout = S, .init = f, .fini = f,
 * .disabled = b, .exit_code = N, .signal = S), cr_assert / cr_expect and their _eq _neq _lt _leq _gt
 * _geq _null _not_null _not _str_eq _str_neq forms with optional printf
 * messages, cr_fail, cr_skip_test, cr_log_info / cr_log_warn, and the
 * options --filter PATTERN (a glob, `*` and `?`, on `suite/name`) and
 * --verbose. Each test runs in its own forked child (the parent stays
 * single-threaded, as TSan requires to fork), killed after its timeout.
 * Windows has no fork: the binary starts itself once per test
 * (`--cr-run suite/name`, CreateProcess), waits for it with the timeout,
 * and reads its exit code; a test expecting `.signal = SIGSEGV` passes on
 * an access violation (0xC0000005). A skipped test exits with
 * CR_SHIM_SKIPPED, printing its reason itself with --verbose.
 * Output follows Criterion's: a line per failure and the closing
 * `[====] Synthesis:` line, where a skipped test is not counted as tested
 * (its `[SKIP] suite::name: why` line shows only with --verbose, as in
 * Criterion); the exit status is 1 when a test failed or crashed (a TSan
 * report makes the child exit 66). */
#ifndef TML_TSAN_CRITERION_H
#define TML_TSAN_CRITERION_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

#define CR_SHIM_SKIPPED 77 /* a skipped test's exit status */
#ifdef __MINGW_PRINTF_FORMAT /* mingw's printf: gnu_printf with its ANSI stdio */
#define CR_SHIM_PRINTF __MINGW_PRINTF_FORMAT
#else
#define CR_SHIM_PRINTF printf
#endif

struct cr_shim_opts {
    double timeout;             /* seconds; 0 = none */
    void (*init)(void);
    void (*fini)(void);
    bool disabled;
    int exit_code;              /* the status a passing test exits with */
    int signal;                 /* the signal a passing test dies of; 0 none */
};

struct cr_shim_test {
    const char *suite, *name;
    void (*fn)(void);
    struct cr_shim_opts opts;
    struct cr_shim_test *next;
};

static struct cr_shim_test *cr_shim_tests, **cr_shim_tail = &cr_shim_tests;
static int cr_shim_failed;      /* in the child: a non-fatal check failed */
static bool cr_shim_verbose;    /* --verbose */
static struct cr_shim_test *cr_shim_current; /* in the child: its test */

#define Test(suite, name, ...)                                                      \
    static void suite##_##name##_impl(void);                                        \
    static struct cr_shim_test suite##_##name##_desc;                               \
    __attribute__((constructor)) static void suite##_##name##_register(void) {      \
        suite##_##name##_desc = (struct cr_shim_test){                              \
            #suite, #name, suite##_##name##_impl, {__VA_ARGS__}, NULL};             \
        *cr_shim_tail = &suite##_##name##_desc;                                     \
        cr_shim_tail = &suite##_##name##_desc.next;                                 \
    }                                                                               \
    static void suite##_##name##_impl(void)

/* Reports a failed check: the user's message when given, else `text`.
 * `fmt` is the user's format behind a one-character marker, so that an
 * absent message is not a zero-length format. */
__attribute__((format(CR_SHIM_PRINTF, 6, 7))) static inline void
cr_shim_check(bool ok, bool fatal, const char *file, int line, const char *text,
              const char *fmt, ...) {
    if (ok)
        return;
    fprintf(stderr, "[----] %s:%d: Assertion Failed\n[----]   ", file, line);
    if (fmt[1]) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt + 1, ap);
        va_end(ap);
    } else {
        fputs(text, stderr);
    }
    fputc('\n', stderr);
    if (fatal) {
        fflush(NULL);
        _exit(1);
    }
    cr_shim_failed = 1;
}

#define CR_SHIM_(fatal, cond, text, ...) \
    cr_shim_check((cond), (fatal), __FILE__, __LINE__, (text), "@" __VA_ARGS__)
#define CR_SHIM_BIN_(fatal, a, op, b, ...) CR_SHIM_(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)

#define cr_assert(c, ...) CR_SHIM_(1, (c), #c, __VA_ARGS__)
#define cr_expect(c, ...) CR_SHIM_(0, (c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) CR_SHIM_(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_not(c, ...) CR_SHIM_(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...) CR_SHIM_BIN_(1, a, ==, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) CR_SHIM_BIN_(0, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) CR_SHIM_BIN_(1, a, !=, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) CR_SHIM_BIN_(0, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) CR_SHIM_BIN_(1, a, <, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) CR_SHIM_BIN_(0, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) CR_SHIM_BIN_(1, a, <=, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) CR_SHIM_BIN_(0, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) CR_SHIM_BIN_(1, a, >, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) CR_SHIM_BIN_(0, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) CR_SHIM_BIN_(1, a, >=, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) CR_SHIM_BIN_(0, a, >=, b, __VA_ARGS__)
#define cr_assert_null(p, ...) CR_SHIM_(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) CR_SHIM_(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) CR_SHIM_(1, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) CR_SHIM_(1, strcmp((a), (b)) != 0, #a " != " #b, __VA_ARGS__)
#define cr_fail(...) CR_SHIM_(0, false, "cr_fail", __VA_ARGS__)
#define cr_assert_fail(...) CR_SHIM_(1, false, "cr_assert_fail", __VA_ARGS__)
/* Ends the test as skipped, `fmt` saying why (Criterion's cr_skip_test);
 * as failed when a cr_expect failed before. */
__attribute__((format(CR_SHIM_PRINTF, 1, 2), noreturn)) static inline void cr_skip_test(const char *fmt, ...) {
    if (!cr_shim_failed && cr_shim_verbose) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[SKIP] %s::%s: ", cr_shim_current->suite, cr_shim_current->name);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fflush(NULL);
    _exit(cr_shim_failed ? 1 : CR_SHIM_SKIPPED);
}

#define cr_log_info(...) (fprintf(stderr, "[----] " __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn(...) cr_log_info(__VA_ARGS__)

/* The test's own process: runs it and exits with its result. */
static inline _Noreturn void cr_shim_child(struct cr_shim_test *t) {
    cr_shim_current = t;
    if (t->opts.init)
        t->opts.init();
    t->fn();
    if (t->opts.fini)
        t->opts.fini();
    fflush(NULL);
    _exit(cr_shim_failed);
}

/* Whether `s` matches the glob `p` (`*`: any run, `?`: one character). */
static inline bool cr_shim_match(const char *p, const char *s) {
    if (*p == '*')
        return cr_shim_match(p + 1, s) || (*s && cr_shim_match(p, s + 1));
    if (!*p)
        return !*s;
    return *s && (*p == '?' || *p == *s) && cr_shim_match(p + 1, s + 1);
}

#ifdef _WIN32
/* Runs one test in a process of its own; returns 0 passed, 1 failed,
 * 2 crashed, 3 skipped. */
static inline int cr_shim_run(struct cr_shim_test *t) {
    char self[MAX_PATH], cmd[MAX_PATH + 300];
    GetModuleFileNameA(NULL, self, sizeof self);
    snprintf(cmd, sizeof cmd, "\"%s\" --cr-run %s/%s%s", self, t->suite, t->name,
             cr_shim_verbose ? " --verbose" : "");
    fflush(NULL);
    STARTUPINFOA si = {.cb = sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "[----] %s::%s: cannot start: error %lu\n", t->suite, t->name, GetLastError());
        return 2;
    }
    DWORD ms = t->opts.timeout > 0 ? (DWORD)(t->opts.timeout * 1000) : INFINITE;
    bool timed_out = WaitForSingleObject(pi.hProcess, ms) == WAIT_TIMEOUT;
    if (timed_out) {
        TerminateProcess(pi.hProcess, 2);
        WaitForSingleObject(pi.hProcess, INFINITE);
    }
    DWORD code = 2;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    if (timed_out) {
        fprintf(stderr, "[----] %s::%s: CRASH (timed out)\n", t->suite, t->name);
        return 2;
    }
    if (code == CR_SHIM_SKIPPED)
        return 3;
    if (t->opts.signal)
        return t->opts.signal == SIGSEGV && code == 0xC0000005 ? 0 : 1;
    if (code == (DWORD)t->opts.exit_code)
        return 0;
    if (code >= 0xC0000000) {
        fprintf(stderr, "[----] %s::%s: CRASH (exception %#lx)\n", t->suite, t->name, code);
        return 2;
    }
    if (code != 1)
        fprintf(stderr, "[----] %s::%s: exit status %lu\n", t->suite, t->name, code);
    return code == 1 ? 1 : 2;
}
#else
/* Runs one test in a forked child; returns 0 passed, 1 failed, 2 crashed,
 * 3 skipped. */
static inline int cr_shim_run(struct cr_shim_test *t) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        if (t->opts.timeout > 0)
            alarm((unsigned)(t->opts.timeout + 0.999));
        cr_shim_child(t);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == CR_SHIM_SKIPPED)
        return 3;
    if (t->opts.signal)
        return WIFSIGNALED(st) && WTERMSIG(st) == t->opts.signal ? 0 : 1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == t->opts.exit_code)
        return 0;
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "[----] %s::%s: CRASH (signal %d%s)\n", t->suite, t->name,
                WTERMSIG(st), WTERMSIG(st) == SIGALRM ? ": timed out" : "");
        return 2;
    }
    if (WEXITSTATUS(st) != 1)
        fprintf(stderr, "[----] %s::%s: exit status %d%s\n", t->suite, t->name,
                WEXITSTATUS(st), WEXITSTATUS(st) == 66 ? " (ThreadSanitizer report)" : "");
    return WEXITSTATUS(st) == 1 ? 1 : 2;
}
#endif

/* Weak where the object format has weak definitions (not PE). */
#ifndef _WIN32
__attribute__((weak))
#endif
int main(int argc, char **argv) {
    const char *filter = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verbose")) {
            cr_shim_verbose = true;
        } else if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
            filter = argv[++i];
        } else if (!strncmp(argv[i], "--filter=", 9)) {
            filter = argv[i] + 9;
        } else if (!strcmp(argv[i], "--cr-run") && i + 1 < argc) {
            only = argv[++i]; /* Windows: this process is one test's */
        } else {
            fprintf(stderr, "usage: %s [--filter PATTERN] [--verbose]\n", argv[0]);
            return 2;
        }
    }
#ifdef _WIN32
    /* a crash ends the process with its exception code, with no dialog or debugger */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
#endif
    int tested = 0, passing = 0, failing = 0, crashing = 0;
    for (struct cr_shim_test *t = cr_shim_tests; t; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (only) {
            if (!strcmp(only, full))
                cr_shim_child(t);
            continue;
        }
        if (t->opts.disabled || (filter && !cr_shim_match(filter, full)))
            continue;
        int r = cr_shim_run(t);
        if (r == 3)
            continue;
        tested++;
        if (r == 0) {
            passing++;
            continue;
        }
        fprintf(stderr, "[FAIL] %s::%s\n", t->suite, t->name);
        if (r == 1)
            failing++;
        else
            crashing++;
    }
    if (only) {
        fprintf(stderr, "no test %s\n", only);
        return 2;
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d \n", tested,
           passing, failing, crashing);
    return failing + crashing ? 1 : 0;
}

#endif /* TML_TSAN_CRITERION_H */
