/* parse_test.c - compiler/parse.c: the AST of each expression and
 * statement form (printed by ast_str), operator precedence and
 * associativity, newline rules, items (functions, async functions, impl
 * blocks, structs, enums, aliases), and syntax errors: one error per
 * mistake, at the right token, with parsing resumed at the next
 * statement or item (a signature error: at the body; a reserved word as a
 * name: at once, taking it as the name). */
#include "tmlc_test.h"

/* The AST of main's body when `body` is its text, parsed without error. */
static const char *body(const char *text) {
    Program *prog = tt_parse(arena_printf("func main() {\n%s\n}\n", text));
    cr_assert_eq(diag_count(), 0, "%s", tt_diags);
    return ast_str(tt_func(prog, "main")->body);
}

/* The AST of expression `e`, the value of main's body. */
static const char *expr(const char *e) {
    Program *prog = tt_parse(arena_printf("func main() {\n    %s\n}\n", e));
    cr_assert_eq(diag_count(), 0, "%s: %s", e, tt_diags);
    return ast_str(tt_func(prog, "main")->body->lhs);
}

#define cr_assert_expr(e, want) cr_assert_str_eq(expr(e), want)

Test(parse, multiplication_binds_tighter_than_addition) {
    cr_assert_expr("1 + 2 * 3", "(+ 1 (* 2 3))");
    cr_assert_expr("1 * 2 + 3 % 4", "(+ (* 1 2) (% 3 4))");
    cr_assert_expr("(1 + 2) * 3", "(* (+ 1 2) 3)");
}

Test(parse, binary_levels_from_or_to_shifts) {
    cr_assert_expr("a or b and c", "(or a (and b c))");
    cr_assert_expr("a and b == c", "(and a (== b c))");
    cr_assert_expr("a == b | c", "(== a (| b c))");
    cr_assert_expr("a | b ^ c & d", "(| a (^ b (& c d)))");
    cr_assert_expr("a & b << 1 + 2", "(& a (<< b (+ 1 2)))");
}

Test(parse, binary_operators_associate_left) {
    cr_assert_expr("a - b - c", "(- (- a b) c)");
    cr_assert_expr("a / b * c", "(* (/ a b) c)");
    cr_assert_expr("a < b == c", "(== (< a b) c)");
}

Test(parse, ternary_associates_right_and_binds_loosest) {
    cr_assert_expr("a ? b : c ? d : e", "(? a b (? c d e))");
    cr_assert_expr("a or b ? 1 + 2 : 3", "(? (or a b) (+ 1 2) 3)");
}

Test(parse, operator_aliases_take_one_spelling) {
    cr_assert_expr("a && b || !c", "(or (and a b) (not c))");
    cr_assert_expr("a xor b shl 1 shr 2", "(^ a (>> (<< b 1) 2))");
}

Test(parse, prefix_operators_bind_tighter_than_binary_ones) {
    cr_assert_expr("-a * b", "(* (- a) b)");
    cr_assert_expr("not a == b", "(== (not a) b)");
    cr_assert_expr("~a & *g", "(& (~ a) (deref g))");
    cr_assert_expr("- -a", "(- (- a))");
}

Test(parse, as_binds_between_prefix_and_multiplication) {
    cr_assert_expr("x as I64 * 2", "(* (as x I64) 2)");
    cr_assert_expr("-x as U8", "(as (- x) U8)");
    cr_assert_expr("p as (I32, List[I64])", "(as p (I32, List[I64]))");
}

Test(parse, ranges_bind_tighter_than_any_binary_operator) {
    cr_assert_str_eq(body("    for i in 0 to n + 1 { }"),
                     "(block => (for i (+ (to 0 n) 1) (block)))");
    cr_assert_str_eq(body("    for i in 0 through (n + 1) { }"),
                     "(block => (for i (through 0 (+ n 1)) (block)))");
}

Test(parse, await_prefix_takes_the_whole_postfix_chain) {
    cr_assert_expr("await f() + 1", "(+ (await (call f)) 1)");
    cr_assert_expr("await h.unwrap()", "(await (.unwrap h))");
    cr_assert_expr("(await h).unwrap()", "(.unwrap (await h))");
    cr_assert_expr("h.await.unwrap()", "(.unwrap (await h))");
}

Test(parse, spawn_without_parens_is_the_call_spawn) {
    cr_assert_expr("spawn work(1, 2)", "(call spawn (call work 1 2))");
    cr_assert_expr("spawn(work(1, 2))", "(call spawn (call work 1 2))");
}

Test(parse, postfix_forms) {
    cr_assert_expr("a.b.c(1)(2)", "(call (.c (. a b) 1) 2)");
    cr_assert_expr("t.0.1", "(. (. t 0) 1)");
    cr_assert_expr("l[i + 1]", "(.get l (+ i 1))");
    cr_assert_expr("channel[I64](16)", "(call channel[I64] 16)");
    cr_assert_expr("List[Str]::new(8)", "(call List::new[Str] 8)");
    cr_assert_expr("Duration::from_millis(5)", "(call Duration::from_millis 5)");
}

Test(parse, literals_tuples_and_interpolation) {
    cr_assert_expr("(1, 2.5, 'c', \"s\", true, ())", "(tuple 1 2.5 'c' \"s\" true ())");
    cr_assert_expr("\"a{x + 1}b{y}\"", "\"a{(+ x 1)}b{y}\"");
    cr_assert_expr("7_u8", "7u8");
}

Test(parse, struct_literal_needs_a_capital_and_a_field_after_the_brace) {
    cr_assert_expr("Point { x: 1, y }", "(Point x: 1 y: y)");
    cr_assert_expr("Point { x: 5, ..p }", "(Point x: 5 ..p)");
    cr_assert_expr("Unit {}", "(Unit)");
    cr_assert_expr("if ok { x } else { y }", "(if ok (block => x) (block => y))");
}

Test(parse, a_line_starting_with_an_operator_continues_the_expression) {
    cr_assert_str_eq(body("    let x = 1\n        + 2\n    let y = f\n        .g()\n"
                          "    let z = a\n        as I64"),
                     "(block (let x (+ 1 2)) (let y (.g f)) (let z (as a I64)))");
}

Test(parse, a_line_starting_with_star_or_paren_is_a_new_statement) {
    cr_assert_str_eq(body("    let x = a\n    *g = 1\n    (b)"),
                     "(block (let x a) (= (deref g) 1) => b)");
}

Test(parse, newlines_inside_parens_and_after_a_trailing_operator_are_ignored) {
    cr_assert_str_eq(body("    f(1,\n      2,\n    )\n    let x = 1 +\n        2"),
                     "(block (call f 1 2) (let x (+ 1 2)))");
}

/* ------------------------------------------------------- statements */

Test(parse, bindings_let_var_const_and_patterns) {
    cr_assert_str_eq(body("    let a = 1\n    let b: I32 = 2\n    var c = 3\n    let mut d = 4\n"
                          "    const E: I64 = 5\n    let (f, mut g): (I32, I32) = p\n"
                          "    let _ = h\n    var late: Str"),
                     "(block (let a 1) (let b: I32 2) (var c 3) (var d 4) (const E: I64 5) "
                     "(let (tuple f mut g): (I32, I32) p) (let _ h) (var late: Str))");
}

Test(parse, assignment_and_compound_assignment_are_statements) {
    cr_assert_str_eq(body("    x = 1\n    p.y += 2\n    t.0 <<= 3; *g = 4"),
                     "(block (= x 1) (+= (. p y) 2) (<<= (. t 0) 3) (= (deref g) 4))");
}

Test(parse, if_else_chains_and_the_then_form) {
    cr_assert_expr("if a { 1 } else if b { 2 } else { 3 }",
                   "(if a (block => 1) (if b (block => 2) (block => 3)))");
    cr_assert_expr("if c then x else y", "(if c x y)");
    cr_assert_str_eq(body("    if c then return 1\n    if d { }\n    else { f() }"),
                     "(block (if c (return 1)) => (if d (block) (block => (call f))))");
}

Test(parse, if_let_is_a_when_with_a_wildcard_arm) {
    cr_assert_expr("if let Just(v) = m { v } else { 0 }",
                   "(when m (arm (Just v) => (block => v)) (arm _ => (block => 0)))");
}

Test(parse, when_arms_with_alternatives_guards_and_nested_patterns) {
    cr_assert_expr("when v {\n"
                   "        Just(x) if x > 0 => 1,\n"
                   "        Just(_) | Nothing => 2\n"
                   "        0 to 9, 'a' => 3\n"
                   "        (a, Shape::Rect(w, h)) => { 4 }\n"
                   "        Point { x: 0 | 1, mut y, .. } => 5\n"
                   "        _ => count += 1\n"
                   "    }",
                   "(when v (arm (Just x) if (> x 0) => 1) (arm (Just _) Nothing => 2) "
                   "(arm (to 0 9) 'a' => 3) (arm (tuple a (Shape::Rect w h)) => (block => 4)) "
                   "(arm (Point x: (| 0 1) y: mut y ..) => 5) (arm _ => (+= count 1)))");
}

Test(parse, loops_while_and_for_ranges) {
    cr_assert_str_eq(body("    loop (var i: I64 < n) { i += 1 }\n    loop (true) { break }\n"
                          "    while x < 3 { continue }\n    for i in 0 to 10 { }"),
                     "(block (loop (var i: I64) n (block (+= i 1))) (loop true (block => break)) "
                     "(while (< x 3) (block => continue)) => (for i (to 0 10) (block)))");
}

Test(parse, for_over_a_pattern_binds_one_name_and_destructures_it_in_the_body) {
    Program *prog = tt_parse("func main() {\n    for (a, b) in pairs { f(a) }\n}\n");
    cr_assert_eq(diag_count(), 0, "%s", tt_diags);
    Node *loop = tt_func(prog, "main")->body->lhs;
    const char *name = loop->pat->name;
    cr_assert_eq(loop->pat->kind, ND_PBIND);
    cr_assert_eq(strncmp(name, "__for", 5), 0, "%s", name);
    cr_assert_str_eq(ast_str(loop), arena_printf("(for %s pairs (block (let (tuple a b) %s) => "
                                                 "(call f a)))", name, name));
}

Test(parse, return_with_and_without_a_value) {
    cr_assert_str_eq(body("    if a { return }\n    return x + 1"),
                     "(block (if a (block => (return))) => (return (+ x 1)))");
}

/* ------------------------------------------------------------ items */

Test(parse, functions_async_functions_and_tests) {
    Program *prog = tt_parse("func add(a: I64, b: I64,) -> I64 { a + b }\n"
                             "async func fetch(n: I64) -> Outcome[I64, Str] { Ok(n) }\n"
                             "@test\nasync func t() { }\n");
    cr_assert_eq(diag_count(), 0, "%s", tt_diags);
    Func *add = tt_func(prog, "add"), *fetch = tt_func(prog, "fetch"), *t = tt_func(prog, "t");
    cr_assert_not(add->is_async);
    cr_assert_eq(add->params.n, 2);
    cr_assert_str_eq(((Param *)add->params.v[1])->name, "b");
    cr_assert_str_eq(ast_str(add->body), "(block => (+ a b))");
    cr_assert(fetch->is_async);
    cr_assert_str_eq(fetch->ret_texpr->name, "Outcome");
    cr_assert_eq(fetch->ret_texpr->args.n, 2);
    cr_assert(t->is_async && t->is_test);
    cr_assert_null(t->ret_texpr);
}

Test(parse, impl_block_methods_and_receivers) {
    Program *prog = tt_parse("type P { x: I64 }\n"
                             "impl P {\n"
                             "    func new() -> P { P { x: 0 } }\n"
                             "    pub func get(this) -> I64 { this.x }\n"
                             "    func bump(mut this, by: I64) { this.x += by }\n"
                             "}\n");
    cr_assert_eq(diag_count(), 0, "%s", tt_diags);
    Func *new = tt_func(prog, "P::new"), *get = tt_func(prog, "P::get");
    Func *bump = tt_func(prog, "P::bump");
    cr_assert_not_null(new);
    cr_assert_null(tt_func(prog, "new"));    /* a method is not a free function */
    cr_assert_eq(new->receiver, 0);
    cr_assert_eq(get->receiver, 1);
    cr_assert_eq(bump->receiver, 2);
    cr_assert_eq(bump->params.n, 1);         /* the receiver is not a parameter */
    cr_assert_str_eq(bump->cname, "P__bump");
    cr_assert_str_eq(ast_str(get->body), "(block => (. this x))");
}

Test(parse, struct_enum_and_alias_declarations) {
    Program *prog = tt_parse("type Point { x: I32\n y: I32 }\n"
                             "type Shape { Circle(F64), Rect(F64, F64), Empty }\n"
                             "type Dir = | North | South(I64)\n"
                             "enum Flag { On }\n"
                             "type Id = I64\n"
                             "type Pair = (I64, Str)\n"
                             "type Empty {}\n");
    cr_assert_eq(diag_count(), 0, "%s", tt_diags);
    StructDecl *point = tt_struct(prog, "Point"), *shape = tt_struct(prog, "Shape");
    cr_assert_not(point->is_enum);
    cr_assert_eq(point->fields.n, 2);
    cr_assert_str_eq(((Param *)point->fields.v[1])->name, "y");
    cr_assert(shape->is_enum);
    cr_assert_eq(shape->variants.n, 3);
    Variant *rect = shape->variants.v[1];
    cr_assert_str_eq(rect->name, "Rect");
    cr_assert_eq(rect->tag, 1);
    cr_assert_eq(rect->texprs.n, 2);
    StructDecl *dir = tt_struct(prog, "Dir");
    cr_assert(dir->is_enum);
    cr_assert_str_eq(((Variant *)dir->variants.v[1])->name, "South");
    cr_assert(tt_struct(prog, "Flag")->is_enum);
    cr_assert_str_eq(tt_struct(prog, "Id")->alias->name, "I64");
    cr_assert_null(tt_struct(prog, "Pair")->alias->name);
    cr_assert_not(tt_struct(prog, "Empty")->is_enum);
}

Test(parse, use_mod_and_pub_are_accepted_and_use_as_is_recorded) {
    Program *prog = tt_parse("use std::sync::{Mutex, mpsc::*}\npub use a::b as c\nmod m\n"
                             "pub func main() { }\n");
    cr_assert_eq(diag_count(), 0, "%s", tt_diags);
    cr_assert_str_eq(map_get(&prog->aliases, "c"), "b");
    cr_assert_not_null(tt_func(prog, "main"));
}

Test(parse, prelude_types_are_added_unless_the_program_declares_them) {
    Program *prog = tt_parse("type NetError { code: I64 }\nfunc main() { }\n");
    cr_assert_not_null(tt_struct(prog, "RuntimeMetrics"));
    StructDecl *mine = tt_struct(prog, "NetError");
    cr_assert_not(parse_is_prelude(&mine->loc));
    cr_assert_eq(mine->fields.n, 1);
    cr_assert_null(tt_func(prog, "NetError::to_string"));   /* nor its methods */
    cr_assert_not_null(tt_func(prog, "TryRecvError::is_empty"));
}

/* ----------------------------------------------------------- errors */

Test(parse, one_error_per_broken_statement_and_the_next_one_parses) {
    Program *prog = tt_parse("func main() {\n"
                             "    let x = (1 + 2\n"
                             "    let y = 3\n"        /* inside the parens: skipped with them */
                             "    let w = 3 4\n"
                             "    let z = 5\n"
                             "}\n");
    tt_assert_errors(2, "t.tml:3:5: error: expected ')' but found 'let'",
                        "t.tml:4:15: error: expected newline or ';' after statement but found "
                        "'4'");
    Func *m = tt_func(prog, "main");
    cr_assert(m->broken);
    cr_assert_not(prog->broken);            /* errors inside functions only */
    cr_assert_str_eq(ast_str(m->body->args.v[m->body->args.n - 1]), "(let z 5)");
}

Test(parse, missing_expression_is_reported_at_the_token_found) {
    tt_parse("func main() {\n    let x = \n    let y = * \n}\n");
    tt_assert_errors(2, "t.tml:2:13: error: expected an expression but found newline",
                        "t.tml:3:15: error: expected an expression but found newline");
}

Test(parse, a_broken_function_leaves_the_others_whole) {
    Program *prog = tt_parse("func a() {\n    f(\n}\n"
                             "func b() -> I64 {\n    1 + 2\n}\n");
    cr_assert_eq(diag_count(), 1, "%s", tt_diags);
    cr_assert(tt_func(prog, "a")->broken);
    Func *b = tt_func(prog, "b");
    cr_assert_not(b->broken);
    cr_assert_str_eq(ast_str(b->body), "(block => (+ 1 2))");
}

Test(parse, an_unclosed_brace_ends_at_the_next_item_in_column_one) {
    Program *prog = tt_parse("func a() {\n    if x {\n        f()\n"
                             "func b() {\n    g()\n}\n");
    tt_assert_errors(1, "t.tml:4:1: error: expected '}' but found 'func'");
    cr_assert_str_eq(ast_str(tt_func(prog, "b")->body), "(block => (call g))");
}

Test(parse, an_error_outside_functions_marks_the_program_broken) {
    Program *prog = tt_parse("42\nfunc main() { }\ntype T { x: }\nfunc f() { }\n");
    tt_assert_errors(2, "t.tml:1:1: error: expected 'func', 'async func' or 'type' but found '42'",
                        "t.tml:3:13: error: expected a type but found '}'");
    cr_assert(prog->broken);
    cr_assert_not_null(tt_func(prog, "main"));
    cr_assert_not_null(tt_func(prog, "f"));
}

Test(parse, a_brace_on_the_next_line_is_one_error) {
    tt_parse("func main() {\n    if true\n    { }\n    f()\n}\n");
    tt_assert_errors(1, "t.tml:2:12: error: expected '{' but found newline");
}

Test(parse, a_reserved_word_as_a_name_says_so) {
    tt_parse("func main() {\n    let type = 1\n}\n");
    tt_assert_errors(1, "t.tml:2:9: error: expected a pattern but found 'type', which is a "
                        "reserved word and cannot be a name");
}

Test(parse, a_reserved_word_as_a_declared_name_is_taken_as_the_name) {
    Program *prog = tt_parse("type P { x: I64 }\n"
                             "func f(type: I64, in: Str) -> I64 {\n    println(in)\n    type\n}\n"
                             "impl P {\n    func loop(this) -> I64 { this.x }\n"
                             "    func get(this) -> I64 { this.loop() }\n}\n");
    tt_assert_errors(3, "t.tml:2:8: error: expected a parameter name but found 'type', which "
                        "is a reserved word and cannot be a name",
                        "t.tml:2:19: error: expected a parameter name but found 'in', which is "
                        "a reserved word and cannot be a name",
                        "t.tml:7:10: error: expected a function name but found 'loop', which "
                        "is a reserved word and cannot be a name");
    Func *f = tt_func(prog, "f");
    cr_assert_eq(f->params.n, 2);
    cr_assert_str_eq(ast_str(f->body), "(block (call println in) => type)");
    cr_assert_str_eq(ast_str(tt_func(prog, "P::get")->body), "(block => (.loop this))");
    cr_assert_not(prog->broken);            /* errors inside functions only */
}

Test(parse, a_signature_error_resumes_at_the_body) {
    Program *prog = tt_parse("func f(a: I64 b: I64, c: loop) -> ref {\n    a\n}\n"
                             "func g() -> I64 {\n    1\n}\n");
    tt_assert_errors(1, "t.tml:1:15: error: expected ')' but found 'b'");
    cr_assert_str_eq(ast_str(tt_func(prog, "f")->body), "(block => a)");
    cr_assert_not(tt_func(prog, "g")->broken);
}

Test(parse, an_assignment_as_a_then_branch_is_one_error_at_its_target) {
    tt_parse("func main() {\n    if c then x = 5 else y\n    if c then 1 else x += f(2)\n}\n");
    tt_assert_errors(2, "t.tml:2:15: error: an assignment cannot be the branch of `if ... then`",
                        "t.tml:3:22: error: an assignment cannot be the branch of `if ... then`");
    cr_assert(tt_diags_have("hint: write the branch as a block: `{ x = 5 }`"));
    cr_assert(tt_diags_have("hint: write the branch as a block: `{ x += f(2) }`"));
}

Test(parse, mut_parameters_are_recorded) {
    Program *prog = tt_parse("func f(mut a: I64, b: I64) { }\n");
    cr_assert_eq(diag_count(), 0, "%s", tt_diags);
    Func *f = tt_func(prog, "f");
    cr_assert(((Param *)f->params.v[0])->mutable_);
    cr_assert_not(((Param *)f->params.v[1])->mutable_);
}

Test(parse, unsupported_operators_are_one_error_each) {
    tt_parse("func main() {\n    x++\n    y = a ** b\n    z = f()?\n}\n");
    tt_assert_errors(3, "t.tml:2:6: error: '++' (increment) is not supported in this TML subset; "
                        "write `x += 1`",
                        "t.tml:3:11: error: '**' (power) is not supported in this TML subset; "
                        "use a loop or repeated multiplication",
                        "t.tml:4:12: error: the '?' operator (error propagation) is not "
                        "supported in this TML subset; match the value with `when`, or call "
                        "`unwrap()`");
}

Test(parse, a_bare_loop_is_reported_and_parsed_as_loop_true) {
    Program *prog = tt_parse("func main() {\n    loop { f() }\n    g()\n}\n");
    cr_assert_eq(diag_count(), 1, "%s", tt_diags);
    cr_assert(tt_diags_have("t.tml:2:10: error: expected '(' but found '{'"));
    cr_assert_str_eq(ast_str(tt_func(prog, "main")->body),
                     "(block (loop true (block => (call f))) => (call g))");
}

Test(parse, an_error_in_an_interpolation_points_into_the_string) {
    tt_parse("func main() {\n    println(\"sum: {a +}\")\n}\n");
    tt_assert_errors(1, "t.tml:2:23: error: expected an expression but found end of file");
}
