/* emit.h - what emit_c.c and emit_types.c share: the spelling of a
 * type's retain and release, and its C definition. Private to the
 * emitter; mir.h declares its entry point, emit_c(). */
#ifndef EMIT_H
#define EMIT_H

#include "mir.h"

/* The C member for a TML field or variant name (never a C keyword). */
const char *emit_field_name(const char *n);
/* C expression: x (of type t) with one more reference; a guard moves. */
const char *emit_dup_expr(Type *t, const char *x);
/* C statement: releases x (of type t); channel ends and guards may be NULL. */
const char *emit_drop_stmt(Type *t, const char *x);
/* Writes t's C definition (and those of the types it contains) to out,
 * once per type, with its dup/drop helpers when it holds references. */
void emit_type(FILE *out, Type *t);

#endif /* EMIT_H */
