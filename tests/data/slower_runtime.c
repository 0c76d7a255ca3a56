/* A runtime wrapper that injects a slowdown, for sandbench's A/B tests and figures:
 *
 *     slower-runtime PERCENT RUNTIME-BINARY ARGS...
 *
 * runs the runtime as asked; for `create`, it then spins for PERCENT% of the time from its own
 * start until create returned, so that step takes PERCENT% longer whatever the host's load.
 * Every other command is exec'd untouched. PERCENT 0 gives the same wrapper (a fork, a wait)
 * with no slowdown: the A side. In C rather than shell: a shell wrapper's own forks (date,
 * awk, sleep) cost milliseconds that the slowdown would not scale.
 *
 * Built by the tests: gcc -O2 -o slower-runtime slower_runtime.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long long started = now_ns();
    if (argc < 3) {
        fprintf(stderr, "usage: %s PERCENT RUNTIME-BINARY ARGS...\n", argv[0]);
        return 2;
    }
    double percent = strtod(argv[1], NULL);
    int creating = 0;
    for (int i = 3; i < argc; i++)
        if (strcmp(argv[i], "create") == 0) creating = 1;
    if (!creating) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "slower-runtime: cannot run %s: %s\n", argv[2], strerror(errno));
        return 127;
    }
    pid_t child = fork();
    if (child < 0) return 126;
    if (child == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "slower-runtime: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    /* Spin rather than sleep: on this (virtual) machine a nanosleep of 0.6 ms overshoots by
     * a millisecond or more, which turned an injected 3% into a measured 15%. */
    long long now = now_ns();
    long long until = now + (long long)((now - started) * percent / 100.0);
    while (now_ns() < until) {}
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
