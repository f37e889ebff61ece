/* minirt -- a tiny Whitted-style ray tracer that renders to the terminal.
 *
 *   make && ./minirt scenes/demo.rt          24-bit colour, two pixels per cell
 *   ./minirt -a scenes/demo.rt               plain ASCII shading
 *   ./minirt -w 120 -h 40 scenes/demo.rt     explicit size in cells
 *
 * C99 + libm, no other dependencies. Scene format: see scenes/demo.rt. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_OBJ 64
#define MAX_LIGHT 8
#define MAX_DEPTH 4
#define EPS 1e-4
#define PI 3.14159265358979323846

typedef struct { double x, y, z; } vec;

static vec v(double x, double y, double z) { vec r = {x, y, z}; return r; }
static vec add(vec a, vec b) { return v(a.x + b.x, a.y + b.y, a.z + b.z); }
static vec sub(vec a, vec b) { return v(a.x - b.x, a.y - b.y, a.z - b.z); }
static vec mul(vec a, double s) { return v(a.x * s, a.y * s, a.z * s); }
static double dot(vec a, vec b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static vec cross(vec a, vec b)
{
    return v(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static vec norm(vec a)
{
    double l = sqrt(dot(a, a));
    return l > 0 ? mul(a, 1.0 / l) : a;
}

enum kind { SPHERE, PLANE };

typedef struct {
    enum kind kind;
    vec p;          /* centre (sphere) or a point on the plane */
    vec n;          /* plane normal */
    double r;       /* sphere radius */
    vec colour;     /* 0..1 */
    double reflect; /* 0..1 */
    int checker;    /* plane only: checkerboard pattern */
} object;

typedef struct { vec p; double intensity; } light;

static struct {
    vec eye, look;
    double fov;
    double ambient;
    vec sky;
    object obj[MAX_OBJ];
    int nobj;
    light lights[MAX_LIGHT];
    int nlight;
} scene;

static unsigned long rays; /* statistics: every ray cast, shadow rays included */

static void die(const char *file, int line, const char *msg)
{
    fprintf(stderr, "%s:%d: %s\n", file, line, msg);
    exit(2);
}

/* Read exactly n doubles from s; returns the number read. */
static int numbers(const char *s, double *out, int n)
{
    int i = 0;
    char *end;
    while (i < n) {
        double d = strtod(s, &end);
        if (end == s)
            break;
        out[i++] = d;
        s = end;
    }
    return i;
}

static void load(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[512];
    int line = 0;
    if (!f) {
        fprintf(stderr, "minirt: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    scene.fov = 60;
    scene.ambient = 0.1;
    scene.eye = v(0, 1, -5);
    scene.look = v(0, 0, 0);
    while (fgets(buf, sizeof buf, f)) {
        char word[32];
        double a[11];
        int n, off = 0;
        line++;
        if (sscanf(buf, "%31s%n", word, &off) != 1 || word[0] == '#')
            continue;
        n = numbers(buf + off, a, 11);
        if (!strcmp(word, "camera")) {
            if (n != 7) die(path, line, "camera: want eye(3) look_at(3) fov");
            scene.eye = v(a[0], a[1], a[2]);
            scene.look = v(a[3], a[4], a[5]);
            scene.fov = a[6];
        } else if (!strcmp(word, "ambient")) {
            if (n != 1) die(path, line, "ambient: want one intensity");
            scene.ambient = a[0];
        } else if (!strcmp(word, "sky")) {
            if (n != 3) die(path, line, "sky: want r g b");
            scene.sky = v(a[0], a[1], a[2]);
        } else if (!strcmp(word, "light")) {
            if (n != 4) die(path, line, "light: want position(3) intensity");
            if (scene.nlight == MAX_LIGHT) die(path, line, "too many lights");
            scene.lights[scene.nlight].p = v(a[0], a[1], a[2]);
            scene.lights[scene.nlight++].intensity = a[3];
        } else if (!strcmp(word, "sphere") || !strcmp(word, "plane")
                   || !strcmp(word, "checker")) {
            object *o = &scene.obj[scene.nobj];
            int sphere = word[0] == 's';
            int want = sphere ? 7 : 9;
            if (n != want && n != want + 1)
                die(path, line, sphere ? "sphere: want centre(3) radius r g b [reflect]"
                                       : "plane: want point(3) normal(3) r g b [reflect]");
            if (scene.nobj == MAX_OBJ) die(path, line, "too many objects");
            memset(o, 0, sizeof *o);
            o->p = v(a[0], a[1], a[2]);
            if (sphere) {
                o->kind = SPHERE;
                o->r = a[3];
                o->colour = v(a[4], a[5], a[6]);
            } else {
                o->kind = PLANE;
                o->n = norm(v(a[3], a[4], a[5]));
                o->colour = v(a[6], a[7], a[8]);
                o->checker = word[0] == 'c';
            }
            o->reflect = n == want + 1 ? a[want] : 0;
            scene.nobj++;
        } else {
            die(path, line, "unknown directive");
        }
    }
    fclose(f);
}

/* Distance along the ray to the object, or -1 for a miss. dir is unit length. */
static double intersect(const object *o, vec orig, vec dir)
{
    if (o->kind == SPHERE) {
        vec oc = sub(orig, o->p);
        double b = dot(oc, dir);
        double c = dot(oc, oc) - o->r * o->r;
        double disc = b * b - c, s, t;
        if (disc < 0) return -1;
        s = sqrt(disc);
        t = -b - s;
        if (t > EPS) return t;
        t = -b + s;
        return t > EPS ? t : -1;
    } else {
        double den = dot(o->n, dir), t;
        if (fabs(den) < 1e-9) return -1;
        t = dot(sub(o->p, orig), o->n) / den;
        return t > EPS ? t : -1;
    }
}

static const object *nearest(vec orig, vec dir, double *tmin)
{
    const object *hit = NULL;
    int i;
    rays++;
    *tmin = INFINITY;
    for (i = 0; i < scene.nobj; i++) {
        double t = intersect(&scene.obj[i], orig, dir);
        if (t > 0 && t < *tmin) {
            *tmin = t;
            hit = &scene.obj[i];
        }
    }
    return hit;
}

static vec trace(vec orig, vec dir, int depth)
{
    double t;
    const object *o = nearest(orig, dir, &t);
    vec p, n, base, c;
    int i;
    if (!o) /* simple gradient sky */
        return mul(scene.sky, 0.6 + 0.4 * dir.y);
    p = add(orig, mul(dir, t));
    n = o->kind == SPHERE ? norm(sub(p, o->p)) : o->n;
    if (dot(n, dir) > 0) n = mul(n, -1); /* we may see a plane from below */
    base = o->colour;
    if (o->checker && ((int)floor(p.x) + (int)floor(p.z)) & 1)
        base = mul(base, 0.35);
    c = mul(base, scene.ambient);
    for (i = 0; i < scene.nlight; i++) {
        vec l = sub(scene.lights[i].p, p);
        double dist = sqrt(dot(l, l)), ts, diff, spec;
        vec h;
        l = mul(l, 1.0 / dist);
        diff = dot(n, l);
        if (diff <= 0) continue;
        if (nearest(add(p, mul(n, EPS)), l, &ts) && ts < dist) continue; /* shadow */
        h = norm(sub(l, dir));
        spec = pow(fmax(dot(n, h), 0), 48);
        c = add(c, mul(base, diff * scene.lights[i].intensity));
        c = add(c, mul(v(1, 1, 1), spec * scene.lights[i].intensity * 0.5));
    }
    if (o->reflect > 0 && depth < MAX_DEPTH) {
        vec r = sub(dir, mul(n, 2 * dot(dir, n)));
        vec rc = trace(add(p, mul(n, EPS)), norm(r), depth + 1);
        c = add(mul(c, 1 - o->reflect), mul(rc, o->reflect));
    }
    return c;
}

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

/* Render w x h pixels into img (row-major); 2x2 jittered-grid supersampling. */
static void render(vec *img, int w, int h, double aspect)
{
    vec fwd = norm(sub(scene.look, scene.eye));
    vec right = norm(cross(v(0, 1, 0), fwd));
    vec up = cross(fwd, right);
    double half = tan(scene.fov * PI / 360.0);
    int x, y, s;
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            vec acc = v(0, 0, 0);
            for (s = 0; s < 4; s++) {
                double px = (2 * ((x + 0.25 + 0.5 * (s & 1)) / w) - 1) * half * aspect;
                double py = (1 - 2 * ((y + 0.25 + 0.5 * (s >> 1)) / h)) * half;
                vec dir = norm(add(fwd, add(mul(right, px), mul(up, py))));
                acc = add(acc, trace(scene.eye, dir, 0));
            }
            img[y * w + x] = mul(acc, 0.25);
        }
}

static int to8(double c) { return (int)(255 * pow(clamp01(c), 1 / 2.2) + 0.5); }

static void show_ansi(const vec *img, int w, int h)
{
    int x, y;
    for (y = 0; y + 1 < h; y += 2) { /* upper half block: fg = top pixel, bg = bottom */
        for (x = 0; x < w; x++) {
            vec a = img[y * w + x], b = img[(y + 1) * w + x];
            printf("\x1b[38;2;%d;%d;%dm\x1b[48;2;%d;%d;%dm\xe2\x96\x80", to8(a.x), to8(a.y),
                   to8(a.z), to8(b.x), to8(b.y), to8(b.z));
        }
        printf("\x1b[0m\n");
    }
}

static void show_ascii(const vec *img, int w, int h)
{
    static const char ramp[] = " .:-=+*#%@";
    int x, y;
    for (y = 0; y < h; y++) {
        for (x = 0; x < w; x++) {
            vec c = img[y * w + x];
            double lum = pow(clamp01(0.2126 * c.x + 0.7152 * c.y + 0.0722 * c.z), 1 / 2.2);
            putchar(ramp[(int)(lum * (sizeof ramp - 2) + 0.5)]);
        }
        putchar('\n');
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: minirt [-a] [-w cols] [-h rows] scene.rt\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ascii = 0, cols = 0, rows = 0, w, h, opt;
    struct winsize ws;
    struct timespec t0, t1;
    vec *img;
    double ms;
    while ((opt = getopt(argc, argv, "aw:h:")) != -1) {
        if (opt == 'a') ascii = 1;
        else if (opt == 'w') cols = atoi(optarg);
        else if (opt == 'h') rows = atoi(optarg);
        else usage();
    }
    if (optind != argc - 1) usage();
    load(argv[optind]);
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        if (!cols) cols = ws.ws_col;
        if (!rows) rows = ws.ws_row - 1; /* leave a line for the status */
    }
    if (cols <= 0) cols = 80;
    if (rows <= 0) rows = 23;
    if (cols > 400 || rows > 200) usage();
    w = cols;
    h = ascii ? rows : rows * 2;
    img = malloc(sizeof *img * (size_t)w * (size_t)h);
    if (!img) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* a terminal cell is about twice as tall as it is wide */
    render(img, w, h, ascii ? (double)w / (2.0 * h) : (double)w / h);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (ascii) show_ascii(img, w, h);
    else show_ansi(img, w, h);
    fprintf(stderr, "%dx%d px, %d objects, %lu rays, %.1f ms\n", w, h, scene.nobj, rays, ms);
    free(img);
    return 0;
}
