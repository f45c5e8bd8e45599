/* The kernel floor of a rescan: fstatat every listed relative path below two
 * roots, on N threads, nothing else (no listing, no allocation, no output).
 *
 * Why: resync's no-op rescans are mostly `newfstatat`; this says what those
 * syscalls alone cost on this machine, so a target for a whole run can be
 * checked against what the syscalls it cannot drop already take.
 *
 * Build: cc -O2 -pthread bench/statfloor.c -o /tmp/statfloor
 * Use:   (cd SRC && find . -mindepth 1 -type d | sed 's|^\./||') > /tmp/dirs.txt
 *        /tmp/statfloor /tmp/dirs.txt SRC DST THREADS [ROUNDS]
 * Prints the median wall time of ROUNDS (default 9) passes; each pass stats
 * every path once below SRC and once below DST. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char **names;
static int n, s_fd, d_fd;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

struct range { int lo, hi; };

static void *work(void *p) {
    struct range *r = p;
    struct stat st;
    for (int i = r->lo; i < r->hi; i++) {
        fstatat(s_fd, names[i], &st, AT_SYMLINK_NOFOLLOW);
        fstatat(d_fd, names[i], &st, AT_SYMLINK_NOFOLLOW);
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s LIST SRC DST THREADS [ROUNDS]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 2; }
    size_t cap = 1024;
    names = malloc(cap * sizeof *names);
    char buf[4096];
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = 0;
        if (n == (int)cap) names = realloc(names, (cap *= 2) * sizeof *names);
        names[n++] = strdup(buf);
    }
    s_fd = open(argv[2], O_RDONLY | O_DIRECTORY);
    d_fd = open(argv[3], O_RDONLY | O_DIRECTORY);
    if (s_fd < 0 || d_fd < 0) { perror("open"); return 2; }
    int th = atoi(argv[4]), rounds = argc > 5 ? atoi(argv[5]) : 9;
    if (th < 1 || th > 64 || rounds < 1 || rounds > 1000) return 2;
    double *t = malloc(rounds * sizeof *t);
    pthread_t tid[64];
    struct range r[64];
    for (int k = 0; k < rounds; k++) {
        double t0 = now();
        for (int j = 0; j < th; j++) {
            r[j].lo = (int)((long)n * j / th);
            r[j].hi = (int)((long)n * (j + 1) / th);
            pthread_create(&tid[j], NULL, work, &r[j]);
        }
        for (int j = 0; j < th; j++) pthread_join(tid[j], NULL);
        t[k] = now() - t0;
    }
    qsort(t, rounds, sizeof *t, cmp);
    printf("%d paths x 2 roots, %d thread(s): median %.1f ms, min %.1f ms (%d rounds)\n",
           n, th, t[rounds / 2] * 1e3, t[0] * 1e3, rounds);
    return 0;
}
