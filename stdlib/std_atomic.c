/* std_atomic.c - TML atomics (AtomicI64, AtomicI32, AtomicU64, AtomicBool).
 *
 * Each is a handle to one heap cell { refcount, value }: copies share the
 * cell, the last release frees it. The value is always 64 bits; the
 * compiler narrows and widens for the smaller TML types. Orderings map
 * one to one onto the C11 memory orders. Spelled with GCC's __atomic
 * builtins like std_str.c: stdlib uses only the public tml/ headers, and
 * the TML orderings are the C11 ones, which libatomic_ops does not take
 * as a run-time argument. */
#include "tml/rt.h"

struct tml_atomic {
    int64_t rc;
    int64_t value;
};

static int c11_order(int order) {
    switch (order) {
    case TML_ORDER_RELAXED: return __ATOMIC_RELAXED;
    case TML_ORDER_ACQUIRE: return __ATOMIC_ACQUIRE;
    case TML_ORDER_RELEASE: return __ATOMIC_RELEASE;
    case TML_ORDER_ACQ_REL: return __ATOMIC_ACQ_REL;
    default: return __ATOMIC_SEQ_CST;
    }
}

/* C11 forbids release/acq_rel on loads and acquire/acq_rel on stores;
 * TML's checker lets them through (like upstream), so round them to the
 * nearest valid order instead of invoking undefined behaviour. */
static int load_order(int order) {
    int o = c11_order(order);
    return o == __ATOMIC_RELEASE ? __ATOMIC_RELAXED : o == __ATOMIC_ACQ_REL ? __ATOMIC_ACQUIRE : o;
}

static int store_order(int order) {
    int o = c11_order(order);
    return o == __ATOMIC_ACQUIRE ? __ATOMIC_RELAXED : o == __ATOMIC_ACQ_REL ? __ATOMIC_RELEASE : o;
}

tml_atomic *tml_atomic_new(int64_t v) {
    tml_atomic *a = tml_alloc(sizeof *a);
    a->rc = 1;
    a->value = v;
    return a;
}

void tml_atomic_retain(tml_atomic *a) {
    __atomic_fetch_add(&a->rc, 1, __ATOMIC_RELAXED); /* a new owner of a live cell */
}

void tml_atomic_release(tml_atomic *a) {
    /* acq_rel: the freeing thread sees every other owner's last access */
    if (__atomic_fetch_sub(&a->rc, 1, __ATOMIC_ACQ_REL) == 1)
        tml_free(a);
}

int64_t tml_atomic_load(tml_atomic *a, int order) {
    return __atomic_load_n(&a->value, load_order(order));
}

void tml_atomic_store(tml_atomic *a, int64_t v, int order) {
    __atomic_store_n(&a->value, v, store_order(order));
}

int64_t tml_atomic_swap(tml_atomic *a, int64_t v, int order) {
    return __atomic_exchange_n(&a->value, v, c11_order(order));
}

int64_t tml_atomic_fetch_add(tml_atomic *a, int64_t v, int order) {
    return __atomic_fetch_add(&a->value, v, c11_order(order));
}

int64_t tml_atomic_fetch_sub(tml_atomic *a, int64_t v, int order) {
    return __atomic_fetch_sub(&a->value, v, c11_order(order));
}

bool tml_atomic_compare_exchange(tml_atomic *a, int64_t *expected, int64_t desired, int success,
                                 int failure) {
    int s = c11_order(success);
    int f = load_order(failure);
    if (f == __ATOMIC_SEQ_CST && s != __ATOMIC_SEQ_CST)
        s = __ATOMIC_SEQ_CST;                     /* failure may not be stronger */
    else if (f == __ATOMIC_ACQUIRE && (s == __ATOMIC_RELAXED || s == __ATOMIC_RELEASE))
        s = s == __ATOMIC_RELAXED ? __ATOMIC_ACQUIRE : __ATOMIC_ACQ_REL;
    return __atomic_compare_exchange_n(&a->value, expected, desired, false, s, f);
}
