/* mir.h - the typed IR between check and emit_c (DESIGN.md section 2).
 *
 * lower.c builds one MFunc per TML function from the checked AST;
 * lower_async.c then decides, for an async function, which locals live
 * in the frame and numbers its resume states; emit_c.c spells the result
 * as C; mir.c prints it (`tml emit-mir`).
 *
 * The IR is structured and close to C, so the output keeps its if/for
 * shape:
 *   - locals (MLocal) are typed: TML variables and the temporaries of
 *     A-normal form. Every operand is an MExpr tree over locals,
 *     constants, field paths, calls of named runtime or user functions
 *     and C operators; never C text.
 *   - statements (MStmt) assign, evaluate, release, branch, loop, leave
 *     (break, continue, return, goto a label of the same function),
 *     panic and await.
 *   - ownership is explicit: a copy that needs a reference is an MX_DUP,
 *     a release an MS_RELEASE, both at the place lower.c put them; emit_c
 *     adds none.
 *   - an await is one MS_AWAIT: the future it polls (a runtime leaf or an
 *     async callee's frame), what a drop of the frame suspended there
 *     releases, and the locals the future points into.
 * Invariants: every MX_LOCAL names a local of the same MFunc; an
 * MS_GOTO's label is an MS_LABEL of the same MFunc; MS_BREAK and
 * MS_CONTINUE sit inside an MS_LOOP; await ids are 0..nawait-1 in the
 * order lower.c met them, state = id + 1 (a select's branches are not
 * awaits of their own: they share the select's id and state). */
#ifndef MIR_H
#define MIR_H

#include "tmlc.h"

typedef struct MExpr MExpr;
typedef struct MStmt MStmt;

/* A local of an MFunc: a TML variable, a parameter or a temporary. */
typedef struct MLocal {
    int id;                     /* 1-based position in MFunc.locals */
    const char *name;           /* C identifier: the Var's cname, or tN */
    Type *ty;
    Var *var;                   /* the TML variable, or NULL (a temporary) */
    bool param;                 /* a parameter or `this` (async: the caller
                                   stores it in the frame) */
    bool by_ref;                /* `mut this`: a pointer to the caller's value */
    bool in_frame;              /* lower_async: lives in the frame */
    int reads;                  /* uses other than as an assignment target */
} MLocal;

typedef enum MExprKind {
    MX_LOCAL,                   /* local */
    MX_INT,                     /* ival, of type ty (NULL: a plain C int) */
    MX_FLOAT,                   /* fval, a double */
    MX_SYM,                     /* sym: a named C constant (NULL, TML_CHAN_OK) */
    MX_STR,                     /* a TML Str literal (text, len): borrowed */
    MX_CSTR,                    /* a C string literal (text, len) */
    MX_LOC,                     /* the source location `loc` as the three
                                   arguments tml_file, line, col */
    MX_FIELD,                   /* a[0].sym, or a[0]->sym when arrow */
    MX_CALL,                    /* sym(args), or the user function fn(args) */
    MX_BINOP,                   /* a[0] sym a[1] */
    MX_UNOP,                    /* sym a[0] */
    MX_COND,                    /* a[0] ? a[1] : a[2] */
    MX_CAST,                    /* (ty)a[0] */
    MX_ADDR,                    /* &a[0] */
    MX_DEREF,                   /* *(ty *)a[0]: a pointer into a runtime object */
    MX_COMPOUND,                /* (ty){args}; ty NULL: a nested {args} */
    MX_SIZEOF,                  /* sizeof(ty) */
    MX_DUP,                     /* a[0] with one more reference: ty's retain */
    MX_VARIANT_NAME,            /* "Enum::Variant" of a[0], a payload-free
                                   user enum of type ty: a borrowed Str */
    MX_AW,                      /* the future of await `ival` (part: see MAwPart) */
    MX_FRAME_SIZE,              /* sizeof the frame of async function fn */
} MExprKind;

/* Which part of an await's slot in the frame's `aw` union MX_AW names:
 * the future itself, or, under `timeout`, the future or its timer. */
typedef enum MAwPart { AW_WHOLE, AW_IN, AW_TIMER } MAwPart;

struct MExpr {
    MExprKind kind;
    Type *ty;                   /* the value's type where one is needed to
                                   spell it (MX_INT, MX_CAST, MX_DEREF,
                                   MX_COMPOUND, MX_SIZEOF, MX_DUP) */
    MLocal *local;              /* MX_LOCAL */
    int64_t ival;               /* MX_INT (bits), MX_AW: await id */
    double fval;                /* MX_FLOAT */
    const char *sym;            /* MX_SYM, MX_FIELD member, MX_CALL callee,
                                   MX_BINOP / MX_UNOP operator */
    const char *text;           /* MX_STR, MX_CSTR bytes */
    int len;
    bool arrow;                 /* MX_FIELD through a pointer */
    bool wide;                  /* MX_INT: spell as an unsigned constant */
    bool out;                   /* MX_ADDR: the callee only writes there */
    MAwPart part;               /* MX_AW */
    int branch;                 /* MX_AW of a select's branch: its index, else -1 */
    Func *fn;                   /* MX_CALL of a user function, MX_FRAME_SIZE */
    Loc loc;                    /* MX_LOC */
    MExpr **a;                  /* operands */
    int n;
};

typedef enum MStmtKind {
    MS_ASSIGN,                  /* dst = src */
    MS_EVAL,                    /* src; (a call, for its effect) */
    MS_ZERO,                    /* memset(&dst, 0, sizeof dst) */
    MS_RELEASE,                 /* releases dst, of type ty (its drop) */
    MS_IF,                      /* if (src) body else els (els may be empty) */
    MS_LOOP,                    /* for (; src; step) body; src NULL: forever */
    MS_BREAK, MS_CONTINUE,
    MS_RETURN,                  /* leaves the function with src (NULL: Unit) */
    MS_LABEL, MS_GOTO,          /* label, goto label (a `when` arm's exits) */
    MS_PANIC,                   /* panics at loc: text (static) or src (a Str) */
    MS_AWAIT,                   /* suspends until aw's future is Ready */
    MS_SELECT,                  /* suspends until one of aw's enabled
                                   branches is Ready (dst = its index) */
    MS_CANCEL,                  /* drops the future of branch aw (a loser) */
    MS_SPAWN,                   /* dst = spawn of fn(args): a JoinHandle */
    MS_BLOCK_ON,                /* runs fn(args) to completion here, its
                                   result (if any) into dst */
    MS_LINE,                    /* the statements after it come from loc */
} MStmtKind;

/* A statement list. */
typedef struct MBlock {
    MStmt **v;
    int n, cap;
} MBlock;

/* What an MS_AWAIT polls and what cancelling it must do. */
typedef struct MAwait MAwait;
struct MAwait {
    int id;                     /* 0-based, in the order met; state = id + 1 */
    const char *leaf;           /* a runtime leaf: tml_<leaf>_fut, _poll, _drop */
    bool leaf_drop;             /* the leaf has a drop function */
    Func *callee;               /* or an async function's frame */
    bool boxed;                 /* callee frame on the heap (recursion edge) */
    MBlock undo;                /* run after the future's own drop when the
                                   frame is dropped here (an undelivered send) */
    MExpr *expired;             /* under timeout: the I32 local set to 1 when
                                   the timer won, else NULL */
    Vec owned;                  /* MOwned*: what the frame holds here, released
                                   innermost first by a drop in this state */
    Vec pinned;                 /* MLocal*: locals the future points into */
    /* select!, join, race: the branches run side by side in one slot */
    Vec branches;               /* MAwait*: the branches, each a future */
    MExpr *mask;                /* U32 local: bit i set while branch i is
                                   enabled (set up, not finished) */
    bool biased;                /* poll in written order, not from a random one */
    bool has_else;              /* none enabled: dst = the branch count */
    MAwait *parent;             /* a branch: its select; else NULL */
    int branch;                 /* a branch: its index; else -1 */
    Vec held;                   /* a branch: MOwned* its setup holds until
                                   it wins (its result code releases them)
                                   or loses (released with its future) */
};

/* A value a scope holds and releases on every way out of it. */
typedef struct MOwned {
    MExpr *place;
    Type *ty;
    MExpr *live;                /* held only while this is true; NULL: always
                                   (a join's result, once its branch is done) */
} MOwned;

struct MStmt {
    MStmtKind kind;
    Loc loc;                    /* MS_PANIC, MS_LINE */
    MExpr *dst, *src;
    Type *ty;                   /* MS_RELEASE */
    MBlock body, els, step;     /* MS_IF, MS_LOOP */
    const char *text;           /* MS_PANIC message; MS_LABEL / MS_GOTO label */
    MAwait *aw;                 /* MS_AWAIT */
    Func *fn;                   /* MS_SPAWN, MS_BLOCK_ON */
    MExpr **args;               /* MS_SPAWN, MS_BLOCK_ON: owned arguments */
    int nargs;
};

/* One lowered TML function. */
typedef struct MFunc {
    Func *f;
    bool async;
    Vec locals;                 /* MLocal*, ids 1..n; parameters first */
    MBlock body;
    Vec awaits;                 /* MAwait*, by id */
    MBlock drop0;               /* async: a frame dropped before its first
                                   poll releases these (the parameters) */
} MFunc;

/* The lowered program: one MFunc per Program.funcs entry, same order. */
typedef struct MProgram {
    Program *prog;
    Vec funcs;                  /* MFunc* */
} MProgram;

/* ------------------------------------------------------------- mir.c */

MExpr *mx_new(MExprKind kind, Type *ty);
MExpr *mx_local(MLocal *l);
MExpr *mx_int(Type *ty, int64_t v);          /* ty NULL: a plain C int */
MExpr *mx_sym(const char *sym);
MExpr *mx_field(MExpr *base, const char *member);
MExpr *mx_arrow(MExpr *base, const char *member);
MExpr *mx_call(const char *fn, int n, ...);  /* n MExpr* arguments */
MExpr *mx_callv(const char *fn, Vec *args);  /* args: MExpr* */
MExpr *mx_binop(const char *op, MExpr *l, MExpr *r);
MExpr *mx_unop(const char *op, MExpr *x);
MExpr *mx_cast(Type *ty, MExpr *x);
MExpr *mx_addr(MExpr *x);
MExpr *mx_out(MExpr *x);                     /* &x for a callee that writes x */
MExpr *mx_cond(MExpr *c, MExpr *a, MExpr *b);
MExpr *mx_compound(Type *ty, Vec *elems);    /* ty NULL: nested braces */
MExpr *mx_str(const char *text, int len);
MExpr *mx_cstr(const char *text);
MExpr *mx_loc(Loc loc);
MExpr *mx_aw(int id, MAwPart part);
MExpr *mx_aw_branch(int id, int branch, MAwPart part);
MExpr *mx_deref(Type *ty, MExpr *ptr);      /* *(ty *)ptr */

MStmt *ms_new(MStmtKind kind);
void mblock_push(MBlock *b, MStmt *s);

/* Prints the program as `tml emit-mir` shows it: per function its
 * locals (async: which are frame fields), body and, for an async
 * function, each await's state, future and drop. */
void mir_print(MProgram *mp, FILE *out);

/* ------------------------------------------------------------ lower.c */

/* Lowers the checked program (after lower_async_graph) to the IR. */
MProgram *lower(Program *prog);

/* -------------------------------------------------- lower_async.c */

/* The async call graph (before lower): boxes the call edges that close
 * a cycle and orders frame structs so embedded frames come first. */
void lower_async_graph(Program *prog);
bool lower_edge_boxed(const Func *caller, const Func *callee);
/* The frame pass (after lower): liveness over each async MFunc decides
 * MLocal.in_frame: a local live across an await (or read by a drop
 * there, or pointed into by the future) lives in the frame, every other
 * one is a C local of the poll function. */
void lower_async_frames(MProgram *mp);

/* ------------------------------------------------------------ emit_c.c */

/* Writes the whole program as one C translation unit. With prog->tests,
 * its main runs the @test function whose index is argv[1] (no argument:
 * prints their names, one per line) and exits 0 unless it failed. */
void emit_c(MProgram *mp, FILE *out);

#endif /* MIR_H */
