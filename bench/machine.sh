#!/usr/bin/env bash
# What phase the machine is in, in one line: the same binary's full diagnose took from 0.34 s to
# 1.8 s on one 200 MB log within a day on the shared 2-core VM, while `grep -F` on it barely
# moved, so a series is only comparable with another taken in a like phase. Three probes, in C
# (built here with the machine's `cc`, which cargo's linking needs anyway), each a second or so:
# - the load-to-use latency of a pointer chase over 1 MB (within one core's 2 MB L2 here) and
#   8 MB (past it): what the correlator's index probes and the records in flight pay;
# - the time per 64-byte line written by one thread and read by another (the two stages' hand-over
#   of records), scattered so the prefetcher cannot help;
# - a dependent add loop, 2e8 rounds on one core: a compute phase that `grep -F` does not feel.
# Not a target and not a test: a label for the series printed beside it (bench/diagnose_full.sh
# prints it before and after its rounds).
#
# usage: bench/machine.sh [--smoke]     (--smoke: tiny counts, checks it still builds and runs)
set -euo pipefail
SCALE=1
if [ "${1:-}" = --smoke ]; then SCALE=100; fi
CC=${CC:-cc}
command -v "$CC" > /dev/null || { echo "machine phase: no C compiler ($CC)"; exit 0; }
DIR=$(mktemp -d /tmp/flowtest-machine.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
cat > "$DIR/phase.c" <<'C'
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* A random cyclic permutation of n slots (Sattolo), followed `steps` times: ns per load. */
static double chase(size_t bytes, long steps) {
    size_t n = bytes / sizeof(size_t);
    size_t *next = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) next[i] = i;
    srand(7);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = ((size_t)rand() * RAND_MAX + rand()) % i;
        size_t t = next[i]; next[i] = next[j]; next[j] = t;
    }
    size_t p = 0;
    double t0 = now();
    for (long k = 0; k < steps; k++) p = next[p];
    double ns = (now() - t0) / steps * 1e9;
    free(next);
    return p == (size_t)-1 ? -1 : ns;
}

/* One thread writes chunks of scattered 64-byte lines, the other reads them (half the ring in
   flight at most): ns per line handed over. */
#define LINES (1 << 15)
#define CHUNK 1024
static unsigned char ring[LINES][64] __attribute__((aligned(64)));
static unsigned order[LINES];
static atomic_long made, used;
static long rounds;
static long sink;

static void *produce(void *arg) {
    (void)arg;
    for (long c = 0; c < rounds * (LINES / CHUNK); c++) {
        while (atomic_load(&made) - atomic_load(&used) >= (LINES / CHUNK) / 2) {}
        long base = (c % (LINES / CHUNK)) * CHUNK;
        for (int k = 0; k < CHUNK; k++) ring[order[base + k]][0] = (unsigned char)c;
        atomic_fetch_add(&made, 1);
    }
    return NULL;
}

static void *consume(void *arg) {
    (void)arg;
    long s = 0;
    for (long c = 0; c < rounds * (LINES / CHUNK); c++) {
        while (atomic_load(&made) <= c) {}
        long base = (c % (LINES / CHUNK)) * CHUNK;
        for (int k = 0; k < CHUNK; k++) s += ring[order[base + k]][0];
        atomic_fetch_add(&used, 1);
    }
    sink = s;
    return NULL;
}

static double handover(long r) {
    rounds = r;
    srand(3);
    for (unsigned i = 0; i < LINES; i++) order[i] = i;
    for (unsigned i = LINES - 1; i > 0; i--) {
        unsigned j = rand() % (i + 1);
        unsigned t = order[i]; order[i] = order[j]; order[j] = t;
    }
    pthread_t a, b;
    double t0 = now();
    pthread_create(&a, NULL, produce, NULL);
    pthread_create(&b, NULL, consume, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return (now() - t0) / ((double)r * LINES) * 1e9;
}

int main(int argc, char **argv) {
    long scale = argc > 1 ? atol(argv[1]) : 1;
    double l1 = chase(1 << 20, 5000000 / scale);
    double l8 = chase(8 << 20, 5000000 / scale);
    double h = handover(60 / scale + 1);
    volatile unsigned long x = 0;
    double t0 = now();
    for (unsigned long i = 0; i < 200000000UL / scale; i++) x += i;
    double spin = now() - t0;
    printf("load 1 MB %.0f ns, 8 MB %.0f ns; line handed between cores %.1f ns; 2e8 adds %.2f s\n",
           l1, l8, h, spin * scale);
    return 0;
}
C
"$CC" -O2 -pthread -o "$DIR/phase" "$DIR/phase.c"
echo "machine phase $(date -u +%H:%M:%S): $("$DIR/phase" "$SCALE")"
