/* types.c - the type representation shared by check and emit_c.
 *
 * Primitive types are singletons; composite types (Maybe, Outcome,
 * tuples, handles...) are interned, so two spellings of one type are the
 * same pointer: type equality is pointer equality (check.c adds the lax
 * integer rules). Each composite type carries a mangled name that is
 * unique and C-safe because every constructor has a fixed arity written
 * into the name (prefix code): Outcome_I64_Str, Tup2_I64_Bool, u_Point for
 * the user type Point. */
#include <string.h>

#include "tmlc.h"

static Type prims[TY_NEVER + 1];
static Vec composites;          /* Type*, in creation order */

static const char *prim_names[] = {
    [TY_UNIT] = "Unit", [TY_BOOL] = "Bool", [TY_I8] = "I8", [TY_I16] = "I16",
    [TY_I32] = "I32", [TY_I64] = "I64", [TY_U8] = "U8", [TY_U16] = "U16",
    [TY_U32] = "U32", [TY_U64] = "U64", [TY_F32] = "F32", [TY_F64] = "F64",
    [TY_CHAR] = "Char", [TY_STR] = "Str", [TY_NEVER] = "Never",
};

static const char *prim_c[] = {
    [TY_UNIT] = "tml_unit", [TY_BOOL] = "bool", [TY_I8] = "int8_t",
    [TY_I16] = "int16_t", [TY_I32] = "int32_t", [TY_I64] = "int64_t",
    [TY_U8] = "uint8_t", [TY_U16] = "uint16_t", [TY_U32] = "uint32_t",
    [TY_U64] = "uint64_t", [TY_F32] = "float", [TY_F64] = "double",
    [TY_CHAR] = "uint32_t", [TY_STR] = "tml_str *", [TY_NEVER] = "tml_unit",
};

Type *ty_make(TypeKind k, Type *a, Type *b);

/* A primitive, or one of the parameterless library types (Duration...). */
Type *ty_prim(TypeKind k) {
    if (k > TY_NEVER)
        return ty_make(k, NULL, NULL);
    Type *t = &prims[k];
    t->kind = k;
    t->mangled = prim_names[k];
    return t;
}

static const char *generic_name(TypeKind k) {
    switch (k) {
    case TY_MAYBE: return "Maybe";
    case TY_OUTCOME: return "Outcome";
    case TY_JOIN: return "JoinHandle";
    case TY_ORDERING: return "Ordering";
    case TY_LIST: return "List";
    case TY_SENDER: return "Sender";
    case TY_RECEIVER: return "Receiver";
    case TY_SEND_ERROR: return "SendError";
    case TY_DURATION: return "Duration";
    case TY_INSTANT: return "Instant";
    case TY_RECV_ERROR: return "RecvError";
    case TY_JOIN_ERROR: return "JoinError";
    case TY_TIMEOUT_ERROR: return "TimeoutError";
    case TY_INTERVAL: return "Interval";
    case TY_MUTEX: return "Mutex";
    case TY_GUARD: return "MutexGuard";
    case TY_SEMAPHORE: return "Semaphore";
    case TY_NOTIFY: return "Notify";
    case TY_BUFFER: return "Buffer";
    case TY_SOCKADDR: return "SocketAddr";
    case TY_LISTENER: return "TcpListener";
    case TY_STREAM: return "TcpStream";
    default: return "?";
    }
}

static Type *intern(Type *probe) {
    for (int i = 0; i < composites.n; i++) {
        Type *t = composites.v[i];
        if (t->kind == probe->kind && t->a == probe->a && t->b == probe->b &&
            t->fn == probe->fn && t->elems.n == probe->elems.n &&
            (t->elems.n == 0 ||
             !memcmp(t->elems.v, probe->elems.v, sizeof(void *) * (size_t)t->elems.n)))
            return t;
    }
    Type *t = arena_alloc(sizeof *t);
    *t = *probe;
    vec_push(&composites, t);
    return t;
}

Type *ty_make(TypeKind k, Type *a, Type *b) {
    Type probe = {.kind = k, .a = a, .b = b};
    if (k == TY_ATOMIC)
        probe.mangled = arena_printf("Atomic%s", a->mangled);
    else if (b)
        probe.mangled = arena_printf("%s_%s_%s", generic_name(k), a->mangled, b->mangled);
    else if (a)
        probe.mangled = arena_printf("%s_%s", generic_name(k), a->mangled);
    else
        probe.mangled = generic_name(k);
    return intern(&probe);
}

Type *ty_tuple(Vec *elems) {
    Type probe = {.kind = TY_TUPLE, .elems = *elems};
    Buf b = {0};
    buf_printf(&b, "Tup%d", elems->n);
    for (int i = 0; i < elems->n; i++)
        buf_printf(&b, "_%s", ((Type *)elems->v[i])->mangled);
    probe.mangled = arena_strndup(b.s, b.len);
    buf_free(&b);
    return intern(&probe);
}

Type *ty_struct(StructDecl *sd) {
    Type *t = arena_alloc(sizeof *t);
    t->kind = sd->is_enum ? TY_ENUM : TY_STRUCT;
    t->sd = sd;
    t->mangled = arena_printf("u_%s", sd->name);
    vec_push(&composites, t);
    return t;
}

Type *ty_future(Func *fn) {
    Type probe = {.kind = TY_FUTURE, .fn = fn, .mangled = "Future"};
    return intern(&probe);
}

bool ty_is_int(const Type *t) { return t->kind >= TY_I8 && t->kind <= TY_U64; }
bool ty_is_signed(const Type *t) { return t->kind >= TY_I8 && t->kind <= TY_I64; }
bool ty_is_float(const Type *t) { return t->kind == TY_F32 || t->kind == TY_F64; }
bool ty_is_num(const Type *t) { return ty_is_int(t) || ty_is_float(t); }

bool ty_managed(const Type *t) {
    switch (t->kind) {
    case TY_STR: case TY_JOIN: case TY_SENDER: case TY_RECEIVER: case TY_ATOMIC: case TY_LIST:
    case TY_MUTEX: case TY_GUARD: case TY_SEMAPHORE: case TY_NOTIFY: case TY_BUFFER:
    case TY_LISTENER: case TY_STREAM:
        return true;
    case TY_MAYBE: case TY_SEND_ERROR:
        return ty_managed(t->a);
    case TY_OUTCOME:
        return ty_managed(t->a) || ty_managed(t->b);
    case TY_TUPLE: case TY_STRUCT: case TY_ENUM:   /* enums: every payload */
        for (int i = 0; i < t->elems.n; i++)
            if (ty_managed(t->elems.v[i]))
                return true;
        return false;
    default:
        return false;
    }
}

const char *ty_name(const Type *t) {
    switch (t->kind) {
    case TY_STRUCT: case TY_ENUM:
        return t->sd->name;
    case TY_TUPLE: {
        Buf b = {0};
        buf_puts(&b, "(");
        for (int i = 0; i < t->elems.n; i++)
            buf_printf(&b, "%s%s", i ? ", " : "", ty_name(t->elems.v[i]));
        buf_puts(&b, ")");
        const char *s = arena_strndup(b.s, b.len);
        buf_free(&b);
        return s;
    }
    case TY_FUTURE:
        return arena_printf("async call of '%s'", t->fn->name);
    case TY_ATOMIC:
        return t->mangled;
    default:
        if (t->kind <= TY_NEVER)
            return prim_names[t->kind];
        if (t->b)
            return arena_printf("%s[%s, %s]", generic_name(t->kind), ty_name(t->a),
                                ty_name(t->b));
        if (t->a)
            return arena_printf("%s[%s]", generic_name(t->kind), ty_name(t->a));
        return generic_name(t->kind);
    }
}

const char *ty_c(const Type *t) {
    switch (t->kind) {
    case TY_JOIN: return "tml_join *";
    case TY_ATOMIC: return "tml_atomic *";
    case TY_LIST: return "tml_list *";
    case TY_MUTEX: case TY_GUARD: return "tml_mutex *";
    case TY_SEMAPHORE: return "tml_sem *";
    case TY_NOTIFY: return "tml_notify *";
    case TY_BUFFER: return "tml_buffer *";
    case TY_SOCKADDR: return "tml_sockaddr";
    case TY_LISTENER: case TY_STREAM: return "tml_tcp *";
    case TY_ORDERING: return "int32_t";
    case TY_SENDER: case TY_RECEIVER: return "tml_chan *";
    case TY_DURATION: return "tml_Duration";
    case TY_INSTANT: return "tml_Instant";
    case TY_RECV_ERROR: return "tml_RecvError";
    case TY_JOIN_ERROR: return "tml_JoinError";
    case TY_TIMEOUT_ERROR: return "tml_TimeoutError";
    case TY_INTERVAL: return "tml_Interval";
    case TY_FUTURE: return "tml_unit";
    default:
        if (t->kind <= TY_NEVER)
            return prim_c[t->kind];
        return arena_printf("tml_%s", t->mangled);
    }
}

Vec *ty_all(void) { return &composites; }
