/* tinylisp -- a small Lisp-1 with closures, tail calls and a mark-sweep GC.
 *
 *   make && ./tinylisp               REPL; Ctrl-D or q to leave
 *   ./tinylisp < examples.lisp       run a file
 *
 * Values: integers, symbols, pairs, builtins, closures; () is nil, t is true.
 * Special forms: quote define set! lambda if let begin.  C99 only. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum tag { NIL, INT, SYM, PAIR, PRIM, CLOSURE, FREE };

typedef struct cell cell;
typedef cell *(*prim_fn)(cell *args);
struct cell {
    enum tag tag;
    unsigned char mark;
    union {
        long num;
        const char *sym;
        struct { cell *car, *cdr; } p;   /* pairs; closures: car=(params . body), cdr=env */
        prim_fn fn;
    } u;
};

#ifndef HEAP
#define HEAP 200000 /* cells; 24 bytes each on x86-64 */
#endif
#define MAXROOTS 262144
static cell heap[HEAP], *freelist, nil_cell = {NIL, 0, {0}};
static cell *nil = &nil_cell, *t_sym, *global;
static cell *s_quote, *s_if, *s_begin, *s_lambda, *s_define, *s_let, *s_set;
static cell **roots[MAXROOTS];
static int nroots;
static jmp_buf on_error;
static long allocated, collections;
static int depth;

/* Every C local that holds a cell across an allocation is registered here. */
#define PUSH(v) (nroots < MAXROOTS ? (void)(roots[nroots++] = &(v)) : error("out of roots", NULL))
#define POP(n) (nroots -= (n))

static void error(const char *msg, const char *detail)
{
    printf("error: %s%s%s\n", msg, detail ? " " : "", detail ? detail : "");
    longjmp(on_error, 1);
}

static void mark(cell *c)
{
    while (c->tag != NIL && !c->mark) {
        c->mark = 1;
        if (c->tag != PAIR && c->tag != CLOSURE) return;
        mark(c->u.p.car);
        c = c->u.p.cdr; /* loop on the cdr so long lists do not recurse */
    }
}

static void collect(void)
{
    int i;
    for (i = 0; i < nroots; i++) mark(*roots[i]);
    mark(global);
    freelist = NULL;
    for (i = 0; i < HEAP; i++) {
        if (heap[i].mark) { heap[i].mark = 0; continue; }
        if (heap[i].tag == SYM) continue; /* symbols are interned forever */
        heap[i].tag = FREE, heap[i].u.p.cdr = freelist, freelist = &heap[i];
    }
    collections++;
}

static cell *alloc(enum tag tag)
{
    cell *c;
#ifdef GC_STRESS
    collect(); /* collect on every allocation: finds missing roots fast */
#endif
    if (!freelist) collect();
    if (!freelist) error("out of memory", NULL);
    c = freelist;
    freelist = c->u.p.cdr;
    c->tag = tag;
    allocated++;
    return c;
}

static cell *num(long n) { cell *c = alloc(INT); c->u.num = n; return c; }

static cell *cons(cell *a, cell *d)
{
    cell *c;
    PUSH(a); PUSH(d);
    c = alloc(PAIR);
    POP(2);
    c->u.p.car = a, c->u.p.cdr = d;
    return c;
}

#define car(c) ((c)->tag == PAIR ? (c)->u.p.car : nil)
#define cdr(c) ((c)->tag == PAIR ? (c)->u.p.cdr : nil)

static cell *symbols[4096];
static int nsymbols;

static cell *intern(const char *name)
{
    int i;
    cell *c;
    char *s;
    for (i = 0; i < nsymbols; i++)
        if (!strcmp(symbols[i]->u.sym, name)) return symbols[i];
    if (nsymbols == 4096 || !(s = malloc(strlen(name) + 1))) error("too many symbols", NULL);
    c = alloc(SYM);
    c->u.sym = strcpy(s, name);
    return symbols[nsymbols++] = c;
}

/* ---- reader ---- */
static const char *src;

static void skip(void)
{
    for (;;) {
        while (isspace((unsigned char)*src)) src++;
        if (*src != ';') return;
        while (*src && *src != '\n') src++;
    }
}

static cell *read_expr(void);

static cell *read_list(void)
{
    cell *head = nil, *tail = nil, *x;
    PUSH(head); PUSH(tail);
    for (;;) {
        skip();
        if (!*src) error("unexpected end of input", NULL);
        if (*src == ')') { src++; break; }
        x = read_expr();
        x = cons(x, nil);
        if (head == nil) head = x; else tail->u.p.cdr = x;
        tail = x;
    }
    POP(2);
    return head;
}

static cell *read_expr(void)
{
    char buf[64];
    int n = 0;
    skip();
    if (!*src) return NULL;
    if (*src == '(') { src++; return read_list(); }
    if (*src == ')') { src++; error("unexpected )", NULL); }
    if (*src == '\'') {
        cell *x;
        src++;
        if (!(x = read_expr())) error("nothing to quote", NULL);
        x = cons(x, nil);
        return cons(s_quote, x);
    }
    while (*src && !isspace((unsigned char)*src) && !strchr("()';", *src) && n < 63)
        buf[n++] = *src++;
    buf[n] = 0;
    if (isdigit((unsigned char)buf[0]) || (buf[0] == '-' && isdigit((unsigned char)buf[1])))
        return num(strtol(buf, NULL, 10));
    return strcmp(buf, "nil") ? intern(buf) : nil;
}

/* ---- printer ---- */
static void print(cell *c)
{
    switch (c->tag) {
    case NIL: printf("()"); break;
    case INT: printf("%ld", c->u.num); break;
    case SYM: printf("%s", c->u.sym); break;
    case PRIM: printf("#<builtin>"); break;
    case CLOSURE: printf("#<lambda>"); break;
    case FREE: break;
    case PAIR:
        putchar('(');
        for (print(c->u.p.car); (c = c->u.p.cdr)->tag == PAIR; print(c->u.p.car))
            putchar(' ');
        if (c != nil) { printf(" . "); print(c); }
        putchar(')');
    }
}

/* ---- environments: a list of frames, each an alist ((sym . val) ...) ---- */
static cell *lookup(cell *env, cell *sym)
{
    for (; env != nil; env = cdr(env)) {
        cell *b;
        for (b = car(env); b != nil; b = cdr(b))
            if (car(car(b)) == sym) return car(b);
    }
    return NULL;
}

static void define(cell *env, cell *sym, cell *val)
{
    cell *b;
    for (b = car(env); b != nil; b = cdr(b))
        if (car(car(b)) == sym) { car(b)->u.p.cdr = val; return; }
    PUSH(env);
    b = cons(sym, val);
    env->u.p.car = cons(b, car(env));
    POP(1);
}

static cell *eval(cell *x, cell *env);

static cell *evlis(cell *xs, cell *env)
{
    cell *head = nil, *tail = nil, *v;
    PUSH(xs); PUSH(env); PUSH(head); PUSH(tail);
    for (; xs->tag == PAIR; xs = xs->u.p.cdr) {
        v = cons(eval(xs->u.p.car, env), nil);
        if (head == nil) head = v; else tail->u.p.cdr = v;
        tail = v;
    }
    POP(4);
    return head;
}

/* A new frame binding params to args (a symbol alone takes the whole list). */
static cell *bind(cell *params, cell *args, cell *env)
{
    cell *frame = nil, *b = nil;
    PUSH(params); PUSH(args); PUSH(env); PUSH(frame); PUSH(b);
    for (; params->tag == PAIR; params = cdr(params), args = cdr(args)) {
        if (args == nil) error("too few arguments", NULL);
        b = cons(car(params), car(args));
        frame = cons(b, frame);
    }
    if (params != nil) { b = cons(params, args); frame = cons(b, frame); }
    else if (args != nil) error("too many arguments", NULL);
    frame = cons(frame, env);
    POP(5);
    return frame;
}

static cell *eval(cell *x, cell *env)
{
    cell *f = nil, *args = nil, *r = nil;
    int n = nroots;
    PUSH(x); PUSH(env); PUSH(f); PUSH(args); PUSH(r);
    if (++depth > 10000) error("recursion too deep", NULL);
    for (;;) { /* tail positions loop instead of recursing */
        if (x->tag == SYM) {
            cell *b = lookup(env, x);
            if (!b) error("unbound symbol", x->u.sym);
            r = b->u.p.cdr;
            break;
        }
        if (x->tag != PAIR) { r = x; break; }
        f = car(x);
        if (f == s_quote) { r = car(cdr(x)); break; }
        if (f == s_if) {
            x = eval(car(cdr(x)), env) != nil ? car(cdr(cdr(x))) : car(cdr(cdr(cdr(x))));
            continue;
        }
        if (f == s_begin) {
            if (cdr(x) == nil) { r = nil; break; }
            for (x = cdr(x); cdr(x) != nil; x = cdr(x)) eval(car(x), env);
            x = car(x);
            continue;
        }
        if (f == s_lambda) {
            r = alloc(CLOSURE);
            r->u.p.car = cdr(x);
            r->u.p.cdr = env;
            break;
        }
        if (f == s_define) { /* (define name expr) or (define (name . params) body...) */
            f = car(cdr(x));
            if (f->tag == PAIR) {
                r = cons(cdr(f), cdr(cdr(x)));
                r = cons(s_lambda, r);
                f = car(f);
            } else r = car(cdr(cdr(x)));
            if (f->tag != SYM) error("define: not a symbol", NULL);
            r = eval(r, env);
            define(env, f, r);
            r = f;
            break;
        }
        if (f == s_set) { /* (set! name expr): assign an existing binding */
            cell *b = lookup(env, car(cdr(x)));
            if (!b) error("set!: unbound", car(cdr(x))->tag == SYM ? car(cdr(x))->u.sym : NULL);
            r = b->u.p.cdr = eval(car(cdr(cdr(x))), env);
            break;
        }
        if (f == s_let) { /* (let ((a 1) (b 2)) body...) => ((lambda (a b) body...) 1 2) */
            cell *ps = nil, *vs = nil;
            PUSH(ps); PUSH(vs);
            for (args = car(cdr(x)); args != nil; args = cdr(args)) {
                ps = cons(car(car(args)), ps);
                vs = cons(car(cdr(car(args))), vs);
            }
            ps = cons(ps, cdr(cdr(x)));
            ps = cons(s_lambda, ps);
            x = cons(ps, vs); /* both lists are reversed, so they still line up */
            POP(2);
            continue;
        }
        f = eval(f, env);
        args = evlis(cdr(x), env);
        if (f->tag == PRIM) { r = f->u.fn(args); break; }
        if (f->tag != CLOSURE) error("not a function", NULL);
        env = bind(car(f->u.p.car), args, f->u.p.cdr);
        x = cons(s_begin, cdr(f->u.p.car));
    }
    depth--;
    nroots = n;
    return r;
}

/* ---- builtins ---- */
static long int_arg(cell *c)
{
    if (c->tag != INT) error("not a number", NULL);
    return c->u.num;
}
static cell *truth(int b) { return b ? t_sym : nil; }

static cell *p_add(cell *a)
{
    long s = 0;
    for (; a != nil; a = cdr(a)) s += int_arg(car(a));
    return num(s);
}
static cell *p_mul(cell *a)
{
    long s = 1;
    for (; a != nil; a = cdr(a)) s *= int_arg(car(a));
    return num(s);
}
static cell *p_sub(cell *a)
{
    long s = int_arg(car(a));
    if (cdr(a) == nil) return num(-s);
    for (a = cdr(a); a != nil; a = cdr(a)) s -= int_arg(car(a));
    return num(s);
}
static long divisor(cell *a)
{
    long d = int_arg(car(cdr(a)));
    if (!d) error("division by zero", NULL);
    return d;
}
static cell *p_div(cell *a) { return num(int_arg(car(a)) / divisor(a)); }
static cell *p_mod(cell *a) { return num(int_arg(car(a)) % divisor(a)); }
static cell *p_lt(cell *a) { return truth(int_arg(car(a)) < int_arg(car(cdr(a)))); }
static cell *p_gt(cell *a) { return truth(int_arg(car(a)) > int_arg(car(cdr(a)))); }
static cell *p_numeq(cell *a) { return truth(int_arg(car(a)) == int_arg(car(cdr(a)))); }
static cell *p_eq(cell *a)
{
    cell *x = car(a), *y = car(cdr(a));
    return truth(x == y || (x->tag == INT && y->tag == INT && x->u.num == y->u.num));
}
static cell *p_car(cell *a) { return car(car(a)); }
static cell *p_cdr(cell *a) { return cdr(car(a)); }
static cell *p_cons(cell *a) { return cons(car(a), car(cdr(a))); }
static cell *p_list(cell *a) { return a; }
static cell *p_nullp(cell *a) { return truth(car(a) == nil); }
static cell *p_print(cell *a) { print(car(a)); putchar('\n'); return car(a); }
static cell *p_gc(cell *a)
{
    long used = 0;
    int i;
    (void)a;
    collect();
    for (i = 0; i < HEAP; i++) used += heap[i].tag != FREE;
    printf("%ld cells live of %d, %ld allocated since start, %ld collections\n", used, HEAP,
           allocated, collections);
    return nil;
}

static void prim(const char *name, prim_fn fn)
{
    cell *c = alloc(PRIM);
    PUSH(c);
    c->u.fn = fn;
    define(global, intern(name), c);
    POP(1);
}

/* Reads one complete expression from stdin, continuing lines until the
 * parentheses balance. Returns 0 at end of input. */
static int read_input(char *buf, size_t size, int tty)
{
    size_t len = 0;
    int open = 0;
    buf[0] = 0;
    do {
        char *p;
        if (tty) { printf(len ? "... " : "> "); fflush(stdout); }
        if (!fgets(buf + len, (int)(size - len), stdin)) return len > 0;
        if (len == 0 && (!strcmp(buf, "q\n") || !strcmp(buf, "quit\n"))) return 0;
        for (p = buf + len; *p; p++) {
            if (*p == ';') while (p[1] && p[1] != '\n') p++;
            else if (*p == '(') open++;
            else if (*p == ')') open--;
        }
        len = strlen(buf);
    } while (open > 0 && len < size - 1);
    return 1;
}

int main(void)
{
    static char buf[16384];
    int tty = isatty(STDIN_FILENO), i;
    cell *x;
    for (i = 0; i < HEAP; i++)
        heap[i].tag = FREE, heap[i].u.p.cdr = freelist, freelist = &heap[i];
    global = nil;
    global = cons(nil, nil); /* one frame, initially empty */
    s_quote = intern("quote"), s_if = intern("if"), s_begin = intern("begin");
    s_lambda = intern("lambda"), s_define = intern("define"), s_let = intern("let");
    s_set = intern("set!"), t_sym = intern("t");
    define(global, t_sym, t_sym);
    prim("+", p_add); prim("-", p_sub); prim("*", p_mul); prim("/", p_div);
    prim("mod", p_mod); prim("<", p_lt); prim(">", p_gt); prim("=", p_numeq);
    prim("eq?", p_eq); prim("car", p_car); prim("cdr", p_cdr); prim("cons", p_cons);
    prim("list", p_list); prim("null?", p_nullp); prim("print", p_print); prim("gc", p_gc);
    if (tty)
        printf("tinylisp -- try (define (sq x) (* x x)) then (sq 12); (gc) shows the heap.\n"
               "q or Ctrl-D quits.\n");
    while (read_input(buf, sizeof buf, tty)) {
        if (setjmp(on_error)) { /* an error unwinds to here: drop the rest of the input */
            nroots = 0;
            depth = 0;
            continue;
        }
        src = buf;
        while ((x = read_expr()) != NULL) {
            x = eval(x, global);
            print(x);
            putchar('\n');
        }
    }
    if (tty) putchar('\n');
    return 0;
}
