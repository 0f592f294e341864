/* tmlc.h - the compiler's internal header, one section per pass.
 *
 * Pipeline (DESIGN.md section 2): lex -> parse -> check -> lower (with
 * lower_async; the IR is mir.h) -> emit_c -> driver runs $CC. All compiler memory comes from one arena
 * freed at exit; no node is freed on its own. */
#ifndef TMLC_H
#define TMLC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------ arena.c */

void *arena_alloc(size_t bytes);               /* zeroed; never NULL */
char *arena_strndup(const char *s, size_t n);
char *arena_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void arena_free_all(void);

/* Growable array of pointers in the arena. */
typedef struct Vec {
    void **v;
    int n, cap;
} Vec;
void vec_push(Vec *v, void *p);

/* A string -> pointer hash map in the arena (open addressing, FNV-1a).
 * Keys are borrowed and must outlive the map. */
typedef struct Map {
    const char **keys;
    void **vals;
    int n, cap;
} Map;
void *map_get(const Map *m, const char *key);     /* NULL when absent */
void map_put(Map *m, const char *key, void *val); /* replaces an old value */

/* A growable text buffer (malloc'd; freed with buf_free). */
typedef struct Buf {
    char *s;
    size_t len, cap;
} Buf;
void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(Buf *b, const char *fmt, va_list ap);
void buf_puts(Buf *b, const char *s);
void buf_putc(Buf *b, char c);
void buf_putn(Buf *b, const char *s, size_t n);
void buf_free(Buf *b);

/* ------------------------------------------------------------- diag.c */

typedef struct Source {
    const char *path;   /* as given on the command line */
    const char *text;   /* whole file, NUL-terminated */
    size_t len;
} Source;

typedef struct Loc {
    const Source *src;
    int line, col;      /* 1-based; col counts bytes */
    int off;            /* byte offset of the token */
} Loc;

/* Prints `file:line:col: error: msg`, the source line and a caret, and
 * counts the error. Stops the compilation (exit 1) after 20 errors. */
void diag_error(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with a `hint: ...` line after the caret. */
void diag_error_hint(Loc loc, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints `file:line:col: warning: msg`, the source line, a caret and the
 * hint (NULL: none); not counted, so compilation goes on. */
void diag_warning_hint(Loc loc, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int diag_count(void);

/* -------------------------------------------------------------- lex.c */

typedef enum TokKind {
    TK_EOF, TK_NL, TK_IDENT, TK_INT, TK_FLOAT, TK_STR, TK_CHAR, TK_KEYWORD,
    TK_PUNCT,
} TokKind;

/* One segment of a string literal: literal bytes, or an interpolated
 * expression given as a source range lexed again by the parser. */
typedef struct StrPart {
    bool is_expr;
    char *text;         /* decoded bytes (literal part) */
    int len;
    int expr_off, expr_end; /* byte range in the source (expr part) */
    int line, line_off;     /* line of expr_off and its first byte's offset */
    struct StrPart *next;
} StrPart;

typedef struct Tok {
    TokKind kind;
    Loc loc;
    int len;            /* bytes of source text */
    const char *str;    /* NUL-terminated spelling (ident, keyword, punct) */
    uint64_t ival;      /* TK_INT value, TK_CHAR code point */
    double fval;        /* TK_FLOAT */
    const char *suffix; /* "i32", "u64", "f64"... or NULL */
    StrPart *parts;     /* TK_STR */
    bool nl_before;     /* a newline separated it from the previous token */
    signed char prec;   /* parse.c's cache of its binary-operator level */
} Tok;

/* Lexes src->text[off, end) into a TK_EOF-terminated token array; `off`
 * lies on line `line`, which starts at byte `line_off`. Lexical errors
 * are reported through diag and the offending bytes are skipped, so the
 * parser always gets a well-formed stream. */
Tok *lex(const Source *src, int off, int end, int line, int line_off, int *ntok);
bool tok_is(const Tok *t, const char *s);   /* keyword or punct spelling */

/* ------------------------------------------------------------ parse.c */

typedef enum NodeKind {
    /* expressions */
    ND_INT, ND_FLOAT, ND_BOOL, ND_CHAR, ND_STR, ND_UNIT, ND_PATH, ND_CALL,
    ND_METHOD, ND_FIELD, ND_UNARY, ND_DEREF, ND_BINARY, ND_AWAIT, ND_IF, ND_WHEN,
    ND_BLOCK, ND_LOOP, ND_WHILE, ND_FOR, ND_BREAK, ND_CONTINUE, ND_RETURN,
    ND_STRUCTLIT, ND_TUPLE, ND_CAST, ND_TERNARY, ND_ASSIGN, ND_LET, ND_RANGE,
    ND_ARM,                     /* when arm: args = alternatives, cond =
                                   guard, body = arm body */
    /* patterns */
    ND_PWILD, ND_PBIND, ND_PLIT, ND_PVARIANT, ND_PTUPLE,
    ND_PSTRUCT,                 /* Pt { x, y: p, .. }: fields = names,
                                   args = their patterns, rest = `..` */
    ND_POR,                     /* p | q inside a pattern: args = alternatives */
    /* async control flow */
    ND_ASYNC_BLOCK,             /* async { ... }: body; check makes it the call
                                   of a function of its own (Func.outer) */
    ND_SELECT,                  /* select! / select_biased! (biased): args =
                                   ND_ARM branches (pat = binding, init = an
                                   ND_AWAIT of the awaitable, cond = the
                                   precondition, body), els = the else branch */
} NodeKind;

typedef struct TypeExpr {
    Loc loc;
    const char *name;           /* NULL for a tuple type */
    Vec args;                   /* TypeExpr*: generic args or tuple elems */
} TypeExpr;

typedef struct Type Type;
typedef struct Var Var;
typedef struct Func Func;

typedef struct Node {
    NodeKind kind;
    Loc loc;
    Type *ty;                   /* set by check */
    const char *name;           /* path's last segment, field, method */
    const char *qual;           /* path qualifier (`Duration` in Duration::x) */
    const char *op;             /* operator spelling */
    struct Node *lhs, *rhs, *cond, *then, *els, *body, *init;
    Vec args;                   /* Node*: call args, block stmts, elems,
                                   when arms (ND_LET nodes hold pat+body) */
    Vec fields;                 /* const char*: struct literal field names */
    Vec targs;                  /* TypeExpr*: generic args of a path */
    TypeExpr *texpr;            /* let annotation, cast target */
    struct Node *pat;           /* let / for / when-arm pattern */
    uint64_t ival;
    double fval;
    const char *suffix;         /* literal suffix */
    StrPart *parts;             /* ND_STR */
    const char *src_file;       /* for ND_STR interpolation sub-lexing */
    bool inclusive;             /* for: `through` */
    bool is_var;                /* let: `var` / `let mut`; ND_PBIND: `mut x` */
    bool rest;                  /* ND_PSTRUCT: ends with `..` */
    bool loop_var;              /* loop (var i: T < n) */
    bool is_const;              /* let: a `const` declaration */
    bool negated;               /* ND_INT: the operand of unary `-` */
    bool biased;                /* ND_SELECT: branches polled in written order */
    bool moves;                 /* ND_PATH: moves its Sender or Receiver
                                   variable out (LANG-MOVE-1) */
    /* filled by check */
    Var *var;                   /* ND_PATH / ND_PBIND / ND_LET / ND_FOR */
    Func *fn;                   /* call of a user function */
    Func *err_to_string;        /* BI_UNWRAP of an Outcome: the impl's
                                   to_string of its error type, if any */
    int builtin;                /* BuiltinId of a builtin call / method */
    int await_id;               /* ND_AWAIT: lower's number for it (MAwait.id) */
    int variant;                /* the variant a pattern (ND_PVARIANT) or a
                                   constructor (BI_ENUM_CTOR, BI_VARIANT,
                                   BI_JOIN_ERROR, BI_ORDERING) names: its
                                   tag, or its index in builtins.c's table */
} Node;

typedef struct Param {
    const char *name;
    TypeExpr *texpr;
    Loc loc;
    bool mutable_;              /* `mut x: T`: the function's copy may change */
    Var *var;
} Param;

struct Func {
    const char *name;           /* as written; methods: the method's name */
    const char *cname;          /* C name stem: name, or Type__name */
    const char *owner;          /* impl type of a method, or NULL */
    int receiver;               /* 0 none, 1 `this`, 2 `mut this` */
    Var *this_var;              /* the receiver, set by check */
    Loc loc;
    bool is_async, is_test;
    Func *outer;                /* an async block's function: the function it
                                   is written in; its parameters are the
                                   locals it captures (by value) */
    bool broken;                /* had a syntax error: check resolves none of
                                   its signature and skips its body */
    Vec params;                 /* Param* */
    TypeExpr *ret_texpr;
    Type *ret;
    Node *body;
    /* filled by lower_async_graph */
    Vec callees;                /* Func*: async functions awaited */
    int scc;                    /* strongly connected component id */
    int order;                  /* emission order of frame structs */
    bool spawned;               /* check: needs a tml_task_vt */
};

typedef struct Variant {
    struct StructDecl *owner;   /* its enum */
    const char *name;
    Loc loc;
    Vec texprs;                 /* TypeExpr*: payload */
    Vec types;                  /* Type*: payload, set by check */
    int tag;                    /* position in the enum */
} Variant;

/* A user type: a struct (fields) or an enum (variants). */
typedef struct StructDecl {
    const char *name;
    Loc loc;
    bool is_enum;
    Vec fields;                 /* Param*: name + type (struct) */
    Vec variants;               /* Variant* (enum) */
    TypeExpr *alias;            /* `type Name = T`: another name for T */
    bool resolving;             /* check: resolving the alias (cycles) */
    Type *ty;
} StructDecl;

typedef struct Program {
    Source *src;
    bool tests;                 /* `tml test`: main is ignored, @test
                                   functions are the entry points */
    Vec funcs;                  /* Func* */
    Vec structs;                /* StructDecl* */
    Vec consts;                 /* Node* (ND_LET): top-level constants */
    Map aliases;                /* `use path::x as y`: "y" -> "x" */
    bool broken;                /* a syntax error outside the functions
                                   (lexing, a type, a constant, an impl
                                   header): the program is not checked */
} Program;

/* Parses `src` and adds the prelude's library types it does not shadow. */
Program *parse(Source *src);
bool parse_is_prelude(const Loc *loc);   /* declared by the prelude? */
/* Calls visit(n, ctx) on n and, while it returns true, on the nodes under
 * it, pre-order (lhs, rhs, cond, then, els, body, init, then args). The
 * body of an async block is not under it: check makes it a function of
 * its own (Func.outer). */
void parse_walk(Node *n, bool (*visit)(Node *n, void *ctx), void *ctx);

/* The prelude's TML source, stdlib/prelude.tml, compiled in at build time
 * (compiler/embed.py writes $builddir/gen/prelude_tml.c): `_len` bytes
 * and a NUL. Immutable; parse() reads it as the source `<prelude>`. */
extern const char parse_prelude[];
extern const size_t parse_prelude_len;

/* ------------------------------------------------------------ types.c */

typedef enum TypeKind {
    TY_UNIT, TY_BOOL, TY_I8, TY_I16, TY_I32, TY_I64, TY_U8, TY_U16, TY_U32,
    TY_U64, TY_F32, TY_F64, TY_CHAR, TY_STR, TY_NEVER,
    TY_STRUCT, TY_TUPLE, TY_MAYBE, TY_OUTCOME, TY_JOIN, TY_SENDER,
    TY_RECEIVER, TY_DURATION, TY_INSTANT, TY_RECV_ERROR, TY_JOIN_ERROR, TY_TIMEOUT_ERROR, TY_INTERVAL,
    TY_SEND_ERROR, TY_ATOMIC, TY_ORDERING, TY_FUTURE, TY_ENUM, TY_LIST,
    TY_MUTEX, TY_GUARD, TY_SEMAPHORE, TY_NOTIFY, TY_BUFFER, TY_SOCKADDR, TY_LISTENER, TY_STREAM,
} TypeKind;

struct Type {
    TypeKind kind;
    Type *a, *b;                /* element types (Maybe a, Outcome a b, ...) */
    Vec elems;                  /* Type*: tuple elements, struct fields */
    StructDecl *sd;             /* TY_STRUCT */
    Func *fn;                   /* TY_FUTURE: the async function called */
    const char *mangled;        /* unique C-safe name, e.g. Outcome_I64_Str */
    bool emitted;               /* emit_types.c: C definition written */
};

Type *ty_prim(TypeKind k);
Type *ty_make(TypeKind k, Type *a, Type *b);    /* interned generic */
Type *ty_tuple(Vec *elems);                      /* interned */
Type *ty_struct(StructDecl *sd);
Type *ty_future(Func *fn);
bool ty_is_int(const Type *t);
bool ty_is_signed(const Type *t);
bool ty_is_float(const Type *t);
bool ty_is_num(const Type *t);
bool ty_managed(const Type *t);   /* holds references: needs dup/drop */
const char *ty_name(const Type *t);   /* TML spelling, for diagnostics */
const char *ty_c(const Type *t);      /* C type spelling */
Vec *ty_all(void);                    /* every interned composite type, in
                                         creation order (deps first) */

/* --------------------------------------------------------- builtins.c */

/* Builtin operations: check resolves a name to one (Node.builtin), lower
 * carries it out. One id per library operation, so no sub-operation
 * rides in Node.variant. */
typedef enum BuiltinId {
    BI_NONE,
    /* functions and associated functions */
    BI_PRINT, BI_PRINTLN, BI_PANIC, BI_ASSERT, BI_ASSERT_FALSE, BI_ASSERT_EQ, BI_ASSERT_NE,
    BI_SPAWN, BI_BLOCK_ON, BI_SLEEP, BI_SLEEP_UNTIL, BI_SLEEP_MS, BI_YIELD, BI_TIMEOUT,
    BI_JOIN_FUTURES, BI_RACE, BI_JOIN_ALL,
    BI_INTERVAL, BI_CHANNEL, BI_PARALLELISM, BI_METRICS, BI_DROP,
    BI_DUR_FROM_SECS, BI_DUR_FROM_MILLIS, BI_DUR_FROM_MICROS, BI_DUR_FROM_NANOS, BI_DUR_NEW,
    BI_INSTANT_NOW, BI_ATOMIC_NEW, BI_LIST_NEW, BI_MUTEX_NEW, BI_SEM_NEW, BI_NOTIFY_NEW,
    BI_ADDR_PARSE, BI_BIND, BI_CONNECT, BI_BUFFER_NEW,
    /* values of the library's enums and the program's */
    BI_ENUM_CTOR,               /* Ok(x) / Err(x) / Just(x) / Nothing; Node.variant =
                                   the tag (Ok 0, Err 1; Nothing 0, Just 1) */
    BI_VARIANT,                 /* a user enum's constructor; Node.variant = its tag */
    BI_JOIN_ERROR,              /* a JoinError value: a payload-free variant's path,
                                   or the call OsError(code); Node.variant =
                                   bi_join_error(name) */
    BI_ORDERING,                /* Ordering::X; Node.variant = bi_ordering(name) */
    /* methods */
    BI_TO_STRING, BI_STR_LEN, BI_STR_IS_EMPTY,
    BI_UNWRAP, BI_EXPECT, BI_UNWRAP_OR, BI_IS_A, BI_IS_B, BI_UNWRAP_ERR, BI_OK, BI_ERR,
    BI_JOIN, BI_IS_FINISHED, BI_ABORT,
    BI_SEND, BI_TRY_SEND, BI_CLOSE, BI_DUPLICATE, BI_RECV, BI_TRY_RECV, BI_RECV_TIMEOUT,
    BI_CHAN_LEN, BI_CHAN_IS_EMPTY, BI_SEND_INTO_INNER,
    BI_DUR_AS_SECS, BI_DUR_AS_MILLIS, BI_DUR_AS_MICROS, BI_DUR_AS_NANOS,
    BI_DUR_SUBSEC_NANOS, BI_DUR_SUBSEC_MILLIS, BI_DUR_SUBSEC_MICROS, BI_DUR_IS_ZERO,
    BI_DUR_SATURATING_ADD, BI_DUR_SATURATING_SUB, BI_DUR_CHECKED_ADD, BI_DUR_CHECKED_SUB,
    BI_DUR_MUL, BI_DUR_DIV, BI_DUR_DEBUG_STRING,
    BI_ELAPSED, BI_DURATION_SINCE, BI_INSTANT_AS_NANOS, BI_TICK,
    BI_LOCK, BI_TRY_LOCK, BI_IS_LOCKED, BI_INTO_INNER,
    BI_MUTEX_GET_MUT,           /* *m.get_mut(): the value, in place, unlocked */
    BI_GUARD_SELF,              /* g.get() / g.get_mut(): the guard, for `*` */
    BI_GUARD_DEREF,             /* g.deref(): the guarded value */
    BI_ACQUIRE, BI_TRY_ACQUIRE, BI_SEM_RELEASE, BI_SEM_AVAILABLE,
    BI_NOTIFY_ONE, BI_NOTIFY_ALL, BI_NOTIFIED,
    BI_ADDR_PORT, BI_ACCEPT, BI_LOCAL_ADDR, BI_PEER_ADDR, BI_TCP_CLOSE,
    BI_READ, BI_WRITE, BI_WRITE_ALL, BI_NODELAY,
    BI_BUF_LEN, BI_BUF_CAPACITY, BI_BUF_CLEAR, BI_BUF_WRITE_BYTE, BI_BUF_READ_BYTE,
    BI_BUF_WRITE_STR, BI_BUF_IS_EMPTY,
    BI_LIST_PUSH, BI_LIST_POP, BI_LIST_GET, BI_LIST_SET, BI_LIST_LEN, BI_LIST_IS_EMPTY,
    BI_LIST_CLEAR,
    BI_ATOMIC_LOAD, BI_ATOMIC_STORE, BI_ATOMIC_SWAP, BI_ATOMIC_FETCH_ADD, BI_ATOMIC_FETCH_SUB,
    BI_ATOMIC_CAS,
} BuiltinId;

/* A typing rule check.c adds to a row where the rule is not data. */
typedef enum BiHook {
    BH_NONE,
    /* the whole call (arity, arguments, result) */
    BH_PRINT, BH_ASSERT_CMP, BH_SPAWN, BH_TIMEOUT, BH_CHANNEL, BH_DROP, BH_ARC_NEW,
    BH_LIST_NEW, BH_MUTEX_NEW, BH_JOIN_FUTURES, BH_JOIN_ALL,
    /* a method: checked besides its parameters and result */
    BH_MUTABLE_RECV,            /* the receiver must be a mutable variable */
    BH_UNDER_STAR,              /* only as the operand of `*` */
    BH_INT_ATOMIC,              /* the atomic must hold an integer */
} BiHook;

enum {
    BF_BARE = 1,                /* a free function only without a qualifier */
    BF_CLOSED = 2,              /* its qualifier's functions are exactly its rows */
    BF_SHORT = 4,               /* arity errors name it without the qualifier */
    BF_CALL = 8,                /* lowered to tml_<leaf>(receiver, arguments...),
                                   whose C result is the TML result (void: Unit);
                                   without it, a case of lower_lib.c / lower_wait.c */
    BF_NO_DROP = 16,            /* its leaf future has no tml_<leaf>_drop (nothing
                                   to cancel: yield_now) */
};
#define BI_FUNC TY_UNIT         /* Builtin.recv of a function (Unit has no methods) */
#define BI_PRINTABLE TY_NEVER   /* Builtin.recv of to_string: any printable type */
#define BI_ADDR "SocketAddr|Str"   /* the one union parameter: an address or its text */

/* One library function or method. Types are descriptors (builtins.c's
 * header gives their syntax); strings are static. */
typedef struct Builtin {
    const char *qual;           /* an associated function's type (`Duration`), or NULL */
    TypeKind recv;              /* a method's receiver kind, or BI_FUNC / BI_PRINTABLE */
    const char *name;           /* as written in TML */
    BuiltinId id;               /* Node.builtin; rows may share one (unwrap of Maybe
                                   and of Outcome), and then agree on what follows */
    int lo, hi;                 /* arguments, the receiver not counted */
    const char *params[4];      /* descriptors; NULL past the last */
    const char *result;         /* descriptor */
    BiHook hook;
    int flags;                  /* BF_* */
    bool waits;                 /* wait-capable: awaitable, else blocks the thread */
    const char *leaf;           /* runtime stem: tml_<leaf>_fut/_init/_poll/_drop when
                                   it waits, else the function tml_<leaf>; NULL: inline C */
    const char *blocking;       /* the blocking form tml_<blocking>, or NULL */
    int64_t konst;              /* a constant operand of the leaf: units per second
                                   (from_*, as_*), the divisor of subsec_*, the sign
                                   of saturating_/checked_ add (1) and sub (-1),
                                   div (1) or mul (0) */
} Builtin;

/* A prelude type by name (NetError...), which a program may redefine;
 * NULL when unavailable. */
typedef Type *(*BiPrelude)(void *ctx, const char *name);

/* Asserts the table's invariants (a build without NDEBUG): a row typed
 * by data has a parameter descriptor per argument; rows sharing an id
 * agree on waiting, leaf, blocking form and constant. */
void bi_check_table(void);
const Builtin *bi_row(int i);           /* the i-th row, NULL past the last */
const Builtin *bi_info(int id);         /* the first row of id (not BI_NONE), or NULL */
/* Whether runtime leaf tml_<leaf>_fut has a drop function (no row with
 * that leaf says BF_NO_DROP). */
bool bi_leaf_drops(const char *leaf);
bool bi_waits(int id);                  /* is id a wait-capable operation? */
/* The function `qual::name` (qual NULL: bare): the qualifier's own row,
 * else, unless the qualifier is closed, a free function's; or NULL. */
const Builtin *bi_function(const char *qual, const char *name);
/* The method `name` of receiver kind recv (not BI_PRINTABLE's), or NULL. */
const Builtin *bi_method(TypeKind recv, const char *name);
bool bi_closed(const char *qual);       /* are qual's functions all in the table? */
bool bi_receives(const Builtin *b, const Type *t);  /* is b a method of t? */
bool bi_has_to_string(const Type *t);   /* the library's printable types */
/* The type `desc` describes, with Self = self (T, E: its arguments);
 * prelude names through `prelude` (NULL: the result is NULL). */
Type *bi_type(const char *desc, Type *self, BiPrelude prelude, void *ctx);
bool bi_prim(const char *name, TypeKind *kind);     /* I64, Str, Unit, Never... */
bool bi_lib_type(const char *name, TypeKind *kind, int *nargs);  /* Maybe, Duration... */
Type *bi_atomic_type(const char *name);  /* AtomicI64 ... AtomicBool, or NULL */
/* Library enums whose values rt.h defines: a variant's index (-1 / 0:
 * none) and the C constant the generated code spells for it. */
int bi_ordering(const char *name);
const char *bi_ordering_name(int k);    /* NULL past the last */
const char *bi_ordering_c(int k);       /* k < 0: TML_ORDER_SEQ_CST */
int bi_join_error(const char *name);
const char *bi_join_error_c(int k);
/* Writes the _Static_assert lines that make the generated C fail to
 * build when rt.h no longer says what the compiler assumes. */
void bi_rt_asserts(FILE *out, const Program *prog);

/* ------------------------------------------------------------ check.c */

struct Var {
    const char *name;
    const char *cname;          /* unique C identifier */
    Type *ty;
    bool mutable_;
    bool is_param;
    bool by_ref;                /* `mut this`: a pointer to the caller's value */
    Func *owner;
    int emit_id;                /* lower: 1 + index of its MLocal in the
                                   function being lowered */
    int reads;                  /* check: mentions other than as the target
                                   of an assignment; 0 = its C declaration is
                                   marked unused (no -Wunused-* warning) */
    struct Node *const_init;    /* a constant: uses emit this expression */
    struct Node *future;        /* check: a local holding an unstarted future
                                   (`let f = work(x)`): the call its one use
                                   becomes, on the arguments the let stored */
    int repeats;                /* check: loops (bodies, conditions) around
                                   its declaration */
    struct Node *moved;         /* check: the let or assignment that moved
                                   this channel end out (LANG-MOVE-1), until
                                   it is assigned again or used (reported) */
    Func *moved_in;             /* check: the function (or async block,
                                   which has a copy of its own) it moved in */
};

/* Resolves names and types, annotating the AST; reports every error it
 * finds. Returns the number of errors. */
int check(Program *prog);

/* ------------------------------------------------------------ emit_c.c */

/* lower_async.c, lower.c and emit_c.c's entry points are declared in
 * mir.h, the IR they share. */
/* Writes a C `main` that prints `NAME BYTES` for every async function's
 * frame; compiled together with the program's C (its main renamed). */
void emit_frame_probe(Program *prog, FILE *out);

#endif /* TMLC_H */
