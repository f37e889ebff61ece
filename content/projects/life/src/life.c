/* life -- Conway's Game of Life on a torus, 64 cells per machine word.
 *
 *   make && ./life                 random soup, 300 generations
 *   ./life -p gun -n 600 -d 40     Gosper glider gun, 600 generations, 40 ms/frame
 *   ./life -b 2000                 benchmark: no drawing, report generations/s
 *
 * Keys while it runs: q quits, space pauses. C99 + POSIX termios. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

typedef uint64_t word;

static int W, H, NW;          /* width, height in cells; words per row */
static word *cur, *nxt;
static struct termios saved;
static int raw_mode;

#define ROW(g, y) ((g) + (size_t)(y) * NW)

static int get(const word *g, int x, int y)
{
    x = (x % W + W) % W;
    y = (y % H + H) % H;
    return (int)(ROW(g, y)[x / 64] >> (x % 64)) & 1;
}

static void set(word *g, int x, int y)
{
    x = (x % W + W) % W;
    y = (y % H + H) % H;
    ROW(g, y)[x / 64] |= (word)1 << (x % 64);
}

/* Cell x-1 and x+1 of a row, 64 at a time, wrapping around the torus.
 * Bit i of west(r, k) is cell 64k+i-1; bit i of east(r, k) is cell 64k+i+1. */
static word west(const word *r, int k)
{
    int last = (W - 1) % 64 + 1; /* bits used in the last word */
    word w = r[k] << 1;
    if (k > 0) w |= r[k - 1] >> 63;
    else w |= (r[NW - 1] >> (last - 1)) & 1;
    return w;
}

static word east(const word *r, int k)
{
    int last = (W - 1) % 64 + 1;
    word e = r[k] >> 1;
    if (k < NW - 1) e |= r[k + 1] << 63;
    else e |= (r[0] & 1) << (last - 1);
    return e;
}

/* One generation. Each of the eight neighbour words contributes one bit per
 * cell; a bit-sliced adder tree sums them into a 3-bit count (s2 s1 s0, with
 * 8 wrapping to 0, which is harmless: 8 neighbours means death either way). */
static void step(void)
{
    int y, k, last = (W - 1) % 64 + 1;
    word tail = last == 64 ? ~(word)0 : ((word)1 << last) - 1;
    for (y = 0; y < H; y++) {
        const word *up = ROW(cur, (y + H - 1) % H), *mid = ROW(cur, y),
                   *dn = ROW(cur, (y + 1) % H);
        word *out = ROW(nxt, y);
        for (k = 0; k < NW; k++) {
            word n[8], s0 = 0, s1 = 0, s2 = 0;
            int i;
            n[0] = west(up, k); n[1] = up[k]; n[2] = east(up, k);
            n[3] = west(mid, k);              n[4] = east(mid, k);
            n[5] = west(dn, k); n[6] = dn[k]; n[7] = east(dn, k);
            for (i = 0; i < 8; i++) { /* ripple-carry add of one bit plane */
                word c0 = s0 & n[i], c1;
                s0 ^= n[i];
                c1 = s1 & c0;
                s1 ^= c0;
                s2 ^= c1;
            }
            /* alive next: count == 3, or count == 2 and alive now */
            out[k] = ~s2 & s1 & (s0 | mid[k]);
        }
        out[NW - 1] &= tail; /* keep the unused bits of the last word zero */
    }
    { word *t = cur; cur = nxt; nxt = t; }
}

static void restore(void)
{
    if (raw_mode) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        printf("\x1b[0m\x1b[?25h\n");
        fflush(stdout);
        raw_mode = 0;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    restore();
    _exit(130);
}

static void enter_raw(void)
{
    struct termios t;
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0)
        return;
    t = saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &t);
    raw_mode = 1;
    atexit(restore);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
}

/* Wait up to ms for a key; returns the key, 0 on timeout, -1 on EOF. */
static int key(int ms)
{
    fd_set fds;
    struct timeval tv;
    char c;
    FD_ZERO(&fds);
    FD_SET(STDIN_FILENO, &fds);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (select(STDIN_FILENO + 1, &fds, NULL, NULL, &tv) <= 0)
        return 0;
    return read(STDIN_FILENO, &c, 1) == 1 ? c : -1;
}

/* Two rows of cells per text row, using the upper/lower half block. */
static void draw(long gen, long gens)
{
    static char buf[1 << 16];
    int x, y, len = 0, pop = 0;
    len += sprintf(buf + len, "\x1b[H");
    for (y = 0; y < H; y += 2) {
        for (x = 0; x < W; x++) {
            int a = get(cur, x, y), b = y + 1 < H && get(cur, x, y + 1);
            const char *g = a && b ? "\xe2\x96\x88" : a ? "\xe2\x96\x80" : b ? "\xe2\x96\x84" : " ";
            pop += a + b;
            len += sprintf(buf + len, "%s", g);
        }
        len += sprintf(buf + len, "\r\n");
    }
    len += sprintf(buf + len, "\x1b[7m gen %ld/%ld  pop %d  %dx%d  q: quit  space: pause \x1b[0m\x1b[K",
                   gen, gens, pop, W, H);
    fwrite(buf, 1, (size_t)len, stdout);
    fflush(stdout);
}

static void place(const char *const *pat, int ox, int oy)
{
    int x, y;
    for (y = 0; pat[y]; y++)
        for (x = 0; pat[y][x]; x++)
            if (pat[y][x] == 'O')
                set(cur, ox + x, oy + y);
}

static const char *const gun[] = {
    "........................O",
    "......................O.O",
    "............OO......OO............OO",
    "...........O...O....OO............OO",
    "OO........O.....O...OO",
    "OO........O...O.OO....O.O",
    "..........O.....O.......O",
    "...........O...O",
    "............OO",
    NULL,
};
static const char *const acorn[] = {".O.....", "...O...", "OO..OOO", NULL};

int main(int argc, char **argv)
{
    const char *pattern = "soup";
    long gens = 300, bench = 0, g;
    int delay = 50, opt, cols = 80, rows = 24, paused = 0;
    unsigned seed = (unsigned)time(NULL);
    struct winsize ws;
    while ((opt = getopt(argc, argv, "p:n:d:s:b:")) != -1) {
        if (opt == 'p') pattern = optarg;
        else if (opt == 'n') gens = atol(optarg);
        else if (opt == 'd') delay = atoi(optarg);
        else if (opt == 's') seed = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'b') bench = atol(optarg);
        else {
            fprintf(stderr, "usage: life [-p soup|gun|acorn] [-n gens] [-d ms] [-s seed] [-b gens]\n");
            return 2;
        }
    }
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40 && ws.ws_row >= 10) {
        cols = ws.ws_col;
        rows = ws.ws_row;
    }
    W = bench ? 1024 : (cols > 600 ? 600 : cols);
    H = bench ? 1024 : 2 * ((rows > 200 ? 200 : rows) - 1);
    NW = (W + 63) / 64;
    cur = calloc((size_t)NW * H, sizeof *cur);
    nxt = calloc((size_t)NW * H, sizeof *nxt);
    if (!cur || !nxt) return 1;
    if (!strcmp(pattern, "gun")) place(gun, 2, 2);
    else if (!strcmp(pattern, "acorn")) place(acorn, W / 2 - 3, H / 2 - 1);
    else {
        int x, y;
        srand(seed);
        for (y = 0; y < H; y++)
            for (x = 0; x < W; x++)
                if (rand() % 100 < 30) set(cur, x, y);
    }
    if (bench) {
        struct timespec t0, t1;
        double s;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (g = 0; g < bench; g++) step();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("%dx%d, %ld generations in %.3f s: %.0f gen/s, %.2f ns/cell\n", W, H, bench, s,
               bench / s, s * 1e9 / ((double)bench * W * H));
        return 0;
    }
    enter_raw();
    printf("\x1b[2J\x1b[?25l");
    for (g = 0; g <= gens;) {
        int c;
        draw(g, gens);
        c = key(delay);
        if (c == 'q' || c == 'Q' || c == 4 || c == -1) break;
        if (c == ' ') paused = !paused;
        if (!paused) {
            if (g == gens) break;
            step();
            g++;
        }
    }
    if (raw_mode) restore();
    else printf("\x1b[0m\x1b[?25h\n");
    return 0;
}
