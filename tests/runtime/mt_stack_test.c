/* mt_stack_test.c - stack overflow reporting (runtime/mt_stack.c): a task
 * that recurses without end panics with status 101 instead of dying of
 * SIGSEGV, and a fault that is not a stack overflow still kills the
 * process with SIGSEGV. */
#include <signal.h>

#include "rt_test.h"

/* Recurses until `bottom` (never: no stack is that deep); the volatile
 * array keeps each level's frame and stops the compiler from turning the
 * recursion into a loop. */
static volatile int bottom = -1;

static int sink(int n) {
    volatile char pad[256];
    pad[n % 256] = (char)n;
    if (n == bottom)
        return 0;
    return sink(n + 1) + pad[(n + 1) % 256];
}

static tml_poll bottomless_poll(void *frame, tml_cx *cx) {
    (void)frame, (void)cx;
    return sink(0) ? TML_READY : TML_PENDING;
}

static const tml_task_vt bottomless_vt = {bottomless_poll, sizeof(uint32_t), 0, 0, NULL, "bottomless", NULL};

/* RT-STACK-1: a stack overflow in a task is a panic (status 101) */
Test(mt_stack, overflow_in_a_task_panics, .timeout = 10, .exit_code = 101) {
    enter_with_workers("2");
    tml_block_on(&bottomless_vt, &(uint32_t){0}, NULL);
    cr_assert_fail("the overflowing task returned: no panic ended the process");
}

/* The sanitizers handle SIGSEGV themselves (a report, then their own exit
 * status), so only a plain build sees the default disposition. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(MT_THREAD_SANITIZER)
static tml_poll wild_poll(void *frame, tml_cx *cx) {
    (void)frame, (void)cx;
    int *volatile wild = (int *)(uintptr_t)16; /* far from any stack; volatile: gcc -O2 would
                                                 * flag the constant address */
    *wild = 1;
    return TML_READY;
}

static const tml_task_vt wild_vt = {wild_poll, sizeof(uint32_t), 0, 0, NULL, "wild", NULL};

/* RT-STACK-1: ... any other fault keeps its usual handling */
Test(mt_stack, another_fault_keeps_its_signal, .timeout = 10, .signal = SIGSEGV) {
    enter_with_workers("2");
    tml_block_on(&wild_vt, &(uint32_t){0}, NULL);
    cr_assert_fail("the faulting task returned: no SIGSEGV ended the process");
}
#endif
