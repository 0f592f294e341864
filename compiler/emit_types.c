/* emit_types.c - the C definitions of the program's types.
 *
 * Part of the C emitter (emit.h): for every interned TML type instance
 * (ty_all, dependencies first) its C definition, a struct per tuple,
 * struct, Maybe, Outcome and SendError and a tagged union per enum, and
 * for a type holding references the helpers the generated code calls:
 * tml_dup_T and tml_drop_T (retain or release every live part) and
 * tml_vdrop_T (the element drop a runtime container calls). Handles and
 * runtime types need no definition. Rejects nothing. */
#include <string.h>

#include "emit.h"

/* --------------------------------------------------- type definitions */



static void emit_deps(FILE *out, Type *t) {
    if (t->a)
        emit_type(out, t->a);
    if (t->b)
        emit_type(out, t->b);
    for (int i = 0; i < t->elems.n; i++)
        emit_type(out, t->elems.v[i]);
}

/* The parts of a value `v` of aggregate type t that hold references:
 * for each, the C condition under which it is live (NULL: always), its
 * lvalue spelled through `v` and `sep` ("." or "->"), and its type. */
typedef struct Part {
    const char *live;
    const char *lv;
    Type *ty;
} Part;

static int managed_parts(Type *t, const char *v, const char *sep, Part *out) {
    int n = 0;
    switch (t->kind) {
    case TY_MAYBE:
        out[n++] = (Part){arena_printf("%s%stag == 1", v, sep), arena_printf("%s%sval", v, sep), t->a};
        break;
    case TY_OUTCOME:
        if (ty_managed(t->a))
            out[n++] = (Part){arena_printf("%s%stag == 0", v, sep), arena_printf("%s%sok", v, sep), t->a};
        if (ty_managed(t->b))
            out[n++] = (Part){arena_printf("%s%stag == 1", v, sep), arena_printf("%s%serr", v, sep), t->b};
        break;
    case TY_SEND_ERROR:
        out[n++] = (Part){NULL, arena_printf("%s%svalue", v, sep), t->a};
        break;
    case TY_ENUM:
        for (int i = 0; i < t->sd->variants.n; i++) {
            Variant *var = t->sd->variants.v[i];
            for (int k = 0; k < var->types.n; k++)
                if (ty_managed(var->types.v[k]))
                    out[n++] = (Part){arena_printf("%s%stag == %d", v, sep, i),
                                      arena_printf("%s%su.%s.f%d", v, sep,
                                                   emit_field_name(var->name), k),
                                      var->types.v[k]};
        }
        break;
    default:
        for (int i = 0; i < t->elems.n; i++) {
            Type *e = t->elems.v[i];
            const char *f = t->kind == TY_TUPLE
                                ? arena_printf("f%d", i)
                                : emit_field_name(((Param *)t->sd->fields.v[i])->name);
            if (ty_managed(e))
                out[n++] = (Part){NULL, arena_printf("%s%s%s", v, sep, f), e};
        }
    }
    return n;
}

static const char *guard(const char *live) {
    return live ? arena_printf("if (%s) ", live) : "";
}

/* tml_drop_T(T *v) and tml_dup_T(T v) for an aggregate type holding
 * references: release, or retain, every live part. */
static void emit_drop_dup(FILE *out, Type *t) {
    const char *c = ty_c(t);
    Part *parts = arena_alloc(sizeof *parts * (size_t)(t->elems.n + 2));
    int n = managed_parts(t, "v", "->", parts);
    fprintf(out, "TML_HELPER void tml_drop_%s(%s *v) {\n", t->mangled, c);
    for (int i = 0; i < n; i++)
        fprintf(out, "    %s%s\n", guard(parts[i].live), emit_drop_stmt(parts[i].ty, parts[i].lv));
    fprintf(out, "}\n");
    n = managed_parts(t, "v", ".", parts);
    fprintf(out, "TML_HELPER %s tml_dup_%s(%s v) {\n", c, t->mangled, c);
    for (int i = 0; i < n; i++)
        fprintf(out, "    %s%s = %s;\n", guard(parts[i].live), parts[i].lv,
                emit_dup_expr(parts[i].ty, parts[i].lv));
    fprintf(out, "    return v;\n}\n");
}

static void emit_vdrop(FILE *out, Type *t) {
    fprintf(out, "TML_HELPER void tml_vdrop_%s(void *p) { %s v = *(%s *)p; %s }\n",
            t->mangled, ty_c(t), ty_c(t), emit_drop_stmt(t, "v"));
}

/* A pointer to a reference-counted runtime object. */
static bool is_handle(const Type *t) {
    return t->kind == TY_JOIN || t->kind == TY_SENDER || t->kind == TY_RECEIVER ||
           t->kind == TY_ATOMIC || t->kind == TY_LIST || t->kind == TY_MUTEX ||
           t->kind == TY_GUARD || t->kind == TY_SEMAPHORE || t->kind == TY_NOTIFY ||
           t->kind == TY_BUFFER || t->kind == TY_LISTENER || t->kind == TY_STREAM;
}

void emit_type(FILE *out, Type *t) {
    if (t->emitted || t->kind <= TY_NEVER) {
        if (t->kind == TY_STR && !t->emitted) {
            t->emitted = true;
            emit_vdrop(out, t);
        }
        return;
    }
    t->emitted = true;
    emit_deps(out, t);
    const char *c = ty_c(t);
    switch (t->kind) {
    case TY_MAYBE:
        fprintf(out, "typedef struct %s { uint8_t tag; %s val; } %s;\n", c + 0, ty_c(t->a), c);
        break;
    case TY_OUTCOME:
        fprintf(out, "typedef struct %s { uint8_t tag; %s ok; %s err; } %s;\n", c, ty_c(t->a),
                ty_c(t->b), c);
        break;
    case TY_SEND_ERROR:
        fprintf(out, "typedef struct %s { %s value; } %s;\n", c, ty_c(t->a), c);
        break;
    case TY_TUPLE:
        fprintf(out, "typedef struct %s {", c);
        for (int i = 0; i < t->elems.n; i++)
            fprintf(out, " %s f%d;", ty_c(t->elems.v[i]), i);
        fprintf(out, " } %s;\n", c);
        break;
    case TY_STRUCT:
        fprintf(out, "typedef struct %s {", c);
        for (int i = 0; i < t->elems.n; i++)
            fprintf(out, " %s %s;", ty_c(t->elems.v[i]),
                    emit_field_name(((Param *)t->sd->fields.v[i])->name));
        if (!t->elems.n)
            fprintf(out, " uint8_t empty_;");
        fprintf(out, " } %s;\n", c);
        break;
    case TY_ENUM:                   /* tag + one payload struct per variant */
        fprintf(out, "typedef struct %s {\n    uint32_t tag;\n", c);
        if (t->elems.n) {
            fprintf(out, "    union {\n");
            for (int i = 0; i < t->sd->variants.n; i++) {
                Variant *v = t->sd->variants.v[i];
                if (!v->types.n)
                    continue;
                fprintf(out, "        struct {");
                for (int k = 0; k < v->types.n; k++)
                    fprintf(out, " %s f%d;", ty_c(v->types.v[k]), k);
                fprintf(out, " } %s;\n", emit_field_name(v->name));
            }
            fprintf(out, "    } u;\n");
        }
        fprintf(out, "} %s;\n", c);
        break;
    default:
        break;                  /* handles and runtime types: no definition */
    }
    if (!ty_managed(t))
        return;
    if (!is_handle(t))             /* handles are released by one call */
        emit_drop_dup(out, t);
    emit_vdrop(out, t);
}
