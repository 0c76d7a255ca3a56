/*
 * The net workload's probe modes, included by probe.c (one static binary).
 *
 *   rr <addr> <port> <n> <bytes> [wait_s]
 *                                  client: n round trips of <bytes> over one TCP
 *                                  connection, each timed on CLOCK_MONOTONIC;
 *                                  prints one line with p50/p99 (nearest rank).
 *                                  A refused connect is retried for up to wait_s
 *                                  (default 0): a server in a sandbox may still
 *                                  be starting
 *   rr-serve <addr> <port> [once]  echo each message back, one connection after
 *                                  another, until killed (once: after the first)
 *   iperf3 [args]                  stamp, then exec iperf3 -J [args]
 *
 * TCP_NODELAY on both ends: without it Nagle's algorithm and delayed ACKs
 * hold small messages back by up to 40 ms, which is not the path's cost.
 * A tenth of the round trips (at least one) go first, untimed: the
 * connection's first exchanges fault in buffers and warm the peer.
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>

#define IPERF3_PATH "/usr/bin/iperf3"
#define RR_MAX_BYTES 65536

static void net_error(const char *mode, int64_t stamp, const char *what) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
    printf("{\"probe\":\"error\",\"mode\":\"%s\",\"realtime_ns\":%lld,\"error\":",
           mode, (long long)stamp);
    json_str(msg);
    printf("}\n");
    fflush(stdout);
}

static int net_addr(struct sockaddr_in *sa, const char *addr, const char *port) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(port));
    return inet_pton(AF_INET, addr, &sa->sin_addr) == 1 ? 0 : -1;
}

/* All of len, or -1: a short read or write is not a message. */
static int net_full(int fd, char *buf, size_t len, int writing) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = writing ? write(fd, buf + done, len - done)
                            : read(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = ECONNRESET;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int mode_rr(int64_t stamp, int argc, char **argv) {
    struct sockaddr_in sa;
    long n = argc > 4 ? strtol(argv[4], NULL, 10) : 0;
    long bytes = argc > 5 ? strtol(argv[5], NULL, 10) : 0;
    if (argc < 6 || net_addr(&sa, argv[2], argv[3]) != 0 || n < 1 || bytes < 1
            || bytes > RR_MAX_BYTES) {
        fprintf(stderr, "usage: probe rr <ipv4> <port> <round trips >= 1> <bytes 1..%d> "
                "[wait_s]\n",
                RR_MAX_BYTES);
        return 2;
    }
    static char buf[RR_MAX_BYTES];
    int64_t *rtt = calloc((size_t)n, sizeof *rtt);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (!rtt || fd < 0) { net_error("rr", stamp, "socket"); return 1; }
    long wait_s = argc > 6 ? strtol(argv[6], NULL, 10) : 0;
    int64_t give_up = now_ns(CLOCK_MONOTONIC) + wait_s * 1000000000LL;
    while (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        /* Refused: nobody listens yet; unreachable: no one has the address yet (a VM's
         * guest before it configures it). Anything else, or too long, is an error. */
        int later = errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ETIMEDOUT;
        if (!later || now_ns(CLOCK_MONOTONIC) > give_up) {
            net_error("rr", stamp, "connect"); return 1;
        }
        close(fd);
        usleep(10000);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) { net_error("rr", stamp, "socket"); return 1; }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    long warm = n / 10 > 0 ? n / 10 : 1;
    for (long i = -warm; i < n; i++) {
        int64_t t0 = now_ns(CLOCK_MONOTONIC);
        if (net_full(fd, buf, (size_t)bytes, 1) != 0 || net_full(fd, buf, (size_t)bytes, 0) != 0) {
            net_error("rr", stamp, i < 0 ? "warm-up round trip" : "round trip");
            return 1;
        }
        if (i >= 0) rtt[i] = now_ns(CLOCK_MONOTONIC) - t0;
    }
    close(fd);
    qsort(rtt, (size_t)n, sizeof *rtt, cmp_i64);
    int64_t sum = 0;
    for (long i = 0; i < n; i++) sum += rtt[i];
    /* Nearest rank: the smallest value with at least p% of values at or below it. */
    long p50 = (n * 50 + 99) / 100 - 1, p99 = (n * 99 + 99) / 100 - 1;
    printf("{\"probe\":\"rr\",\"realtime_ns\":%lld,\"round_trips\":%ld,\"warmup\":%ld,"
           "\"bytes\":%ld,\"p50_ns\":%lld,\"p99_ns\":%lld,\"min_ns\":%lld,\"max_ns\":%lld,"
           "\"mean_ns\":%lld}\n", (long long)stamp, n, warm, bytes, (long long)rtt[p50],
           (long long)rtt[p99], (long long)rtt[0], (long long)rtt[n - 1], (long long)(sum / n));
    free(rtt);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int mode_rr_serve(int64_t stamp, int argc, char **argv) {
    struct sockaddr_in sa;
    if (argc < 4 || net_addr(&sa, argv[2], argv[3]) != 0) {
        fprintf(stderr, "usage: probe rr-serve <ipv4> <port> [once]\n");
        return 2;
    }
    int srv = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (srv < 0 || bind(srv, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(srv, 4) != 0) {
        net_error("rr-serve", stamp, "listen");
        return 1;
    }
    printf("{\"probe\":\"rr-serve\",\"realtime_ns\":%lld}\n", (long long)stamp);
    fflush(stdout);
    static char buf[RR_MAX_BYTES];
    for (;;) {
        int conn = accept(srv, NULL, NULL);
        if (conn < 0) continue;
        setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ssize_t got;
        while ((got = read(conn, buf, sizeof buf)) > 0)
            if (net_full(conn, buf, (size_t)got, 1) != 0) break;
        close(conn);
        if (argc > 4 && strcmp(argv[4], "once") == 0) return 0;
    }
}

static int mode_iperf3(int64_t stamp, int argc, char **argv) {
    printf("{\"probe\":\"iperf3\",\"realtime_ns\":%lld}\n", (long long)stamp);
    fflush(stdout);
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return 1;
    int n = 0;
    args[n++] = "iperf3";
    args[n++] = "-J";
    for (int i = 2; i < argc; i++) args[n++] = argv[i];
    args[n] = NULL;
    execv(IPERF3_PATH, args);
    net_error("iperf3", stamp, "execv " IPERF3_PATH);
    return 127;
}

static int mode_net(int64_t stamp, int argc, char **argv) {
    if (strcmp(argv[1], "rr") == 0) return mode_rr(stamp, argc, argv);
    if (strcmp(argv[1], "rr-serve") == 0) return mode_rr_serve(stamp, argc, argv);
    if (strcmp(argv[1], "iperf3") == 0) return mode_iperf3(stamp, argc, argv);
    fprintf(stderr, "unknown net mode '%s'\n", argv[1]);
    return 2;
}
