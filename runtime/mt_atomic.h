/* mt_atomic.h - the only place the runtime spells atomic operations.
 *
 * A thin wrapper over libatomic_ops (AO_*), so every atomic access in
 * runtime/ reads the same on every platform and names its ordering.
 * On gcc >= 4.8 and clang the AO_* primitives used here compile to the
 * __atomic builtins, which ThreadSanitizer understands; under
 * -fsanitize=thread we define AO_THREAD_SANITIZER before including
 * <atomic_ops.h> so the library avoids its inline-asm paths.
 *
 * Invariants:
 *   - an mt_atomic is only ever touched through these functions (the
 *     struct wrapper makes a plain read or write a compile error);
 *   - every value is a 64-bit word (AO_t is 64 bits on the LP64 targets
 *     we support; a task's state word needs 32 generation bits + state);
 *   - read-modify-writes are at least acquire+release (AO_*_full; the
 *     __atomic path gives seq_cst for add, acq_rel for CAS);
 *   - there is deliberately no standalone fence: ThreadSanitizer does not
 *     model fences (gcc rejects them under -fsanitize=thread). A protocol
 *     that needs store->load ordering ("announce, then re-check") gets it
 *     from a mutex both sides take, or keeps both flags in one word so a
 *     single modification order decides (mt_park.c, mt_runtime.c).
 * Callers comment each use with the access it pairs with (STYLE.md). */
#ifndef MT_ATOMIC_H
#define MT_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define MT_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MT_THREAD_SANITIZER 1
#endif
#endif
#if defined(MT_THREAD_SANITIZER) && !defined(AO_THREAD_SANITIZER)
#define AO_THREAD_SANITIZER
#endif

#include <atomic_ops.h>
#include "pal.h"

_Static_assert(sizeof(AO_t) == sizeof(uint64_t), "mt_atomic needs a 64-bit AO_t");

/* A 64-bit word accessed only atomically; all-zero bytes are the value 0. */
typedef struct mt_atomic {
    volatile AO_t v;
} mt_atomic;

/* Relaxed load: atomicity only, no ordering. */
static inline uint64_t mt_atomic_load(const mt_atomic *a) {
    return AO_load(&a->v);
}

/* Acquire load: later accesses cannot move before it. */
static inline uint64_t mt_atomic_load_acquire(const mt_atomic *a) {
    return AO_load_acquire(&a->v);
}

/* Relaxed store: atomicity only, no ordering. */
static inline void mt_atomic_store(mt_atomic *a, uint64_t x) {
    AO_store(&a->v, (AO_t)x);
}

/* Release store: earlier accesses cannot move after it. */
static inline void mt_atomic_store_release(mt_atomic *a, uint64_t x) {
    AO_store_release(&a->v, (AO_t)x);
}

/* Atomic add (at least acquire+release); returns the previous value.
 * Subtract by adding the two's complement: mt_atomic_fetch_add(a, -1). */
static inline uint64_t mt_atomic_fetch_add(mt_atomic *a, uint64_t delta) {
    return AO_fetch_and_add_full(&a->v, (AO_t)delta);
}

/* Compare-and-swap (acquire+release on success, acquire on failure):
 * stores `desired` if the word equals `expected`. Returns the value
 * seen, which equals `expected` exactly when the swap happened, so CAS
 * loops need no second load. */
static inline uint64_t mt_atomic_cas(mt_atomic *a, uint64_t expected, uint64_t desired) {
    return AO_fetch_compare_and_swap_full(&a->v, (AO_t)expected, (AO_t)desired);
}

/* 32-bit fields of ABI structs that a thread reads without the lock
 * others write them under (a leaf future's `status`). */
static inline int32_t mt_atomic32_load_acquire(const int32_t *p) {
    return (int32_t)AO_int_load_acquire((const volatile unsigned *)p);
}

static inline void mt_atomic32_store_release(int32_t *p, int32_t v) {
    AO_int_store_release((volatile unsigned *)p, (unsigned)v);
}

/* Spin-wait hint for busy-wait loops (x86 PAUSE: yields the core's
 * pipeline to its sibling, saves power); not an atomic access, kept here
 * so that no other file spells a CPU-specific primitive. */
static inline void mt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    AO_compiler_barrier();
#endif
}

/* One step of waiting for a lock another thread holds for a few dozen
 * instructions: for the first MT_SPINS steps, PAUSE 2, 4, ... 64 times
 * (exponential backoff, as in Anderson 1990 and the spin phase of Go's
 * lock_futex.go): while the waiter backs off, the holder keeps the cache
 * line for its next critical section instead of losing it to every
 * waiter's read; measured on W5 (two workers contending for one channel):
 * median 95 ms against 157 ms with a single PAUSE per step. Then yield the
 * CPU (the holder may have been preempted: with more threads than cores,
 * spinning on would only burn its time slice). */
#define MT_SPINS 16
static inline void mt_spin_wait(unsigned *steps) {
    if (++*steps < MT_SPINS) {
        for (unsigned i = 0; i < (1u << (*steps < 6 ? *steps : 6)); i++)
            mt_cpu_relax();
    } else {
        pal_yield();
    }
}

/* A test-and-test-and-set spin lock in one word (0 free, 1 held), for
 * critical sections of a few dozen instructions that never block (a
 * channel's state). Taking it costs one locked instruction and releasing
 * it a plain store, where a pthread mutex costs two locked instructions
 * and 40 bytes. Rejected for anything that can block or run long. */
typedef struct mt_spin {
    mt_atomic held;
} mt_spin;

static inline void mt_spin_init(mt_spin *l) {
    mt_atomic_store(&l->held, 0); /* relaxed: before the lock is shared */
}

static inline void mt_spin_lock(mt_spin *l) {
    unsigned steps = 0;
    /* waiters spin on a read, not on RMWs; the CAS acquires (pairs with
     * the release in mt_spin_unlock) */
    while (mt_atomic_load(&l->held) != 0 || mt_atomic_cas(&l->held, 0, 1) != 0)
        mt_spin_wait(&steps);
}

static inline void mt_spin_unlock(mt_spin *l) {
    mt_atomic_store_release(&l->held, 0); /* pairs with the CAS in mt_spin_lock */
}

#endif /* MT_ATOMIC_H */
