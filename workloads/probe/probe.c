/*
 * sandbench probe: the entrypoint of every sandbox.
 *
 * Built with `gcc -O2 -static` so it runs in any root filesystem (and in a
 * bare initramfs) without a dynamic loader; the loader's own work would
 * otherwise be part of the start latency we measure.
 *
 *   probe start [linger_s]              stamp, stay up linger_s seconds, stamp, exit
 *   probe clock <port>                  answer each byte on TCP <port> with
 *                                       CLOCK_REALTIME ns (clock offset)
 *   probe syscall [iterations]          time common syscalls, print ns/op
 *   probe fio <dir> <jobfile> [args]    test O_DIRECT in <dir>, exec fio
 *   probe idle <hold_s>                 report own RSS, block up to hold_s
 *                                       seconds or until SIGTERM, exit 0
 *   probe rr <addr> <port> <n> <bytes>  n TCP round trips of <bytes> each to an
 *                                       rr-serve peer; p50/p99 ns (net.c)
 *   probe rr-serve <addr> <port>        echo every message back, forever
 *   probe iperf3 [args]                 stamp, exec iperf3 -J [args]
 *
 * Every mode prints exactly one JSON line first (fio mode: fio's JSON
 * follows it). "realtime_ns" is CLOCK_REALTIME read before anything else
 * in main, so the harness can compute create-to-workload latency.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FIO_PATH "/usr/bin/fio"
#define DEFAULT_ITERATIONS 100000L
/* open/stat/mmap are 10x slower than a bare syscall and much slower still
 * under gVisor or in a VM; a tenth of the count keeps a run short. */
#define SLOW_DIVISOR 10L
#define BLOCK 4096

/* Compiler barrier: the loop bodies below have no visible effect the
 * optimiser must keep, so each iteration ends with this. */
#define BARRIER() __asm__ __volatile__("" ::: "memory")

static int64_t now_ns(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Print s as a JSON string; error texts and paths may hold quotes. */
static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* ---- syscall mode -------------------------------------------------- */

/* Shared state the operations use; opened once so that only the measured
 * call is inside the timed loop.
 *
 * open_close and stat work on a file every sandbox has: the probe itself,
 * named relative to the directory it lives in (the workload directory:
 * /sandbench in the image, the unpacked image on the host for the native
 * runtime, the guest's disk in a VM). Every runtime thus makes the same
 * one-component lookup in its own copy of the image, whatever the absolute
 * path is. An absolute path would not do: the host's copy lies deeper, and
 * a procfs link (/proc/self/exe) takes a pid lookup and a ptrace check,
 * which is a different operation. */
struct ctx {
    int dir_fd;          /* the workload directory, or -1 */
    int dir_err;         /* why dir_fd is -1 */
    const char *name;    /* the probe's name in it */
    int zero_fd, null_fd;
    long page;
    char *buf;
};

/* Each op returns 0 or an errno; a failing op stops its loop and is
 * reported with the error instead of a misleading fast time. */
typedef int (*op_fn)(struct ctx *);

/* Raw syscall so that no libc caching can short-circuit the kernel entry. */
static int op_getpid(struct ctx *c) {
    (void)c;
    volatile long pid = syscall(SYS_getpid);
    (void)pid;
    return 0;
}

/* vDSO: no kernel entry at all, the floor of the table. */
static int op_clock_gettime(struct ctx *c) {
    (void)c;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    __asm__ __volatile__("" : : "r"(ts.tv_nsec) : "memory");
    return 0;
}

static int op_open_close(struct ctx *c) {
    if (c->dir_fd < 0) return c->dir_err;
    int fd = openat(c->dir_fd, c->name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

static int op_stat(struct ctx *c) {
    if (c->dir_fd < 0) return c->dir_err;
    struct stat st;
    return fstatat(c->dir_fd, c->name, &st, 0) == 0 ? 0 : errno;
}

static int op_read_4k(struct ctx *c) {
    ssize_t n = read(c->zero_fd, c->buf, BLOCK);
    return n == BLOCK ? 0 : (n < 0 ? errno : EIO);
}

static int op_write_4k(struct ctx *c) {
    ssize_t n = write(c->null_fd, c->buf, BLOCK);
    return n == BLOCK ? 0 : (n < 0 ? errno : EIO);
}

/* One anonymous page, written so that the page-fault path is taken. */
static int op_mmap_touch(struct ctx *c) {
    char *p = mmap(NULL, (size_t)c->page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return errno;
    *(volatile char *)p = 1;
    munmap(p, (size_t)c->page);
    return 0;
}

static const struct {
    const char *name;
    op_fn fn;
    long divisor;
} OPS[] = {
    {"getpid", op_getpid, 1},
    {"clock_gettime", op_clock_gettime, 1},
    {"open_close", op_open_close, SLOW_DIVISOR},
    {"stat", op_stat, SLOW_DIVISOR},
    {"read_4k", op_read_4k, 1},
    {"write_4k", op_write_4k, 1},
    {"mmap_touch", op_mmap_touch, SLOW_DIVISOR},
};

/* Time one op and print its JSON object (without a leading comma). */
static void run_op(struct ctx *c, const char *name, op_fn fn, long iters) {
    long warm = iters / 10 < 1000 ? iters / 10 : 1000;
    int err = 0;
    for (long i = 0; i < warm && !err; i++) { err = fn(c); BARRIER(); }
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    long done = 0;
    for (; done < iters && !err; done++) { err = fn(c); BARRIER(); }
    int64_t total = now_ns(CLOCK_MONOTONIC) - t0;

    json_str(name);
    if (err) {
        printf(":{\"iterations\":%ld,\"error\":", done);
        json_str(strerror(err));
        putchar('}');
    } else {
        printf(":{\"iterations\":%ld,\"total_ns\":%lld,\"ns_per_op\":%.3f}",
               iters, (long long)total, (double)total / (double)iters);
    }
}

/* Where the running probe is: the kernel's word for it (/proc/self/exe),
 * else argv[0] when it is absolute (a sandbox without /proc). Both name the
 * file that was executed, so either gives the same lookup to time. Fills
 * dir (the directory) and *from (which source said so) and returns the
 * name in dir, or NULL with why in err. Untimed: done once, before any loop. */
static const char *own_location(char *dir, size_t size, const char *argv0,
                                const char **from, char *err, size_t err_size) {
    static char name[256];
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    if (n > 0) {
        dir[n] = '\0';
        *from = "/proc/self/exe";
        /* The kernel's mark of an unlinked file; the name without it then
         * fails to resolve, and says so, rather than naming no file. */
        size_t len = (size_t)n, mark = strlen(" (deleted)");
        if (len > mark && strcmp(dir + len - mark, " (deleted)") == 0)
            dir[len - mark] = '\0';
    } else if (argv0[0] == '/' && strlen(argv0) < size) {
        snprintf(dir, size, "%s", argv0);
        *from = "argv[0]";
    } else {
        snprintf(err, err_size, "readlink /proc/self/exe: %s, and argv[0] '%s' "
                 "is not an absolute path", n < 0 ? strerror(errno) : "empty", argv0);
        return NULL;
    }
    char *slash = strrchr(dir, '/');
    if (dir[0] != '/' || !slash[1] || strlen(slash + 1) >= sizeof name) {
        snprintf(err, err_size, "%s gives '%s', not an absolute path to a file",
                 *from, dir);
        return NULL;
    }
    snprintf(name, sizeof name, "%s", slash + 1);
    /* "/probe": the directory is the root itself. */
    slash[slash == dir ? 1 : 0] = '\0';
    return name;
}

static int mode_syscall(int64_t stamp, int argc, char **argv) {
    long iters = DEFAULT_ITERATIONS;
    if (argc > 2) {
        char *end;
        errno = 0;
        iters = strtol(argv[2], &end, 10);
        if (errno || *end || iters < 1) {
            fprintf(stderr, "probe: iterations must be a positive integer, "
                            "got '%s'\n", argv[2]);
            return 2;
        }
    }
    struct ctx c = {.page = sysconf(_SC_PAGESIZE), .dir_fd = -1};
    char dir[4096], dir_error[4352] = "";
    const char *from = NULL;
    c.name = own_location(dir, sizeof dir, argv[0], &from, dir_error, sizeof dir_error);
    if (!c.name) {
        c.dir_err = ENOENT;
    } else if ((c.dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        c.dir_err = errno;
        snprintf(dir_error, sizeof dir_error, "open %s: %s", dir, strerror(errno));
    }
    c.zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    c.null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (posix_memalign((void **)&c.buf, BLOCK, BLOCK) != 0) return 1;

    /* "path" is relative to "dir": the same in every sandbox, so results
     * group across runtimes; "dir" says where it was in this one. */
    printf("{\"probe\":\"syscall\",\"realtime_ns\":%lld,\"dir\":",
           (long long)stamp);
    if (c.name) json_str(dir); else printf("null");
    printf(",\"dir_from\":");
    if (from) json_str(from); else printf("null");
    printf(",\"path\":");
    if (c.name) json_str(c.name); else printf("null");
    if (c.dir_fd < 0) {
        printf(",\"dir_error\":");
        json_str(dir_error);
    }
    printf(",\"results\":{");
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        long n = iters / OPS[i].divisor;
        if (i) putchar(',');
        run_op(&c, OPS[i].name, OPS[i].fn, n < 1 ? 1 : n);
    }
    printf("}}\n");
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- fio mode ------------------------------------------------------ */

/* Try one aligned O_DIRECT write in dir. Returns 0 or the errno that
 * says why fio must run with direct=0 there (tmpfs and some overlay or
 * shared filesystems refuse O_DIRECT). */
static int direct_works(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/.sandbench-direct-%ld", dir,
             (long)getpid());
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_DIRECT, 0600);
    if (fd < 0) return errno;
    void *buf = NULL;
    int err = posix_memalign(&buf, BLOCK, BLOCK);
    if (!err) {
        memset(buf, 0, BLOCK);
        ssize_t n = write(fd, buf, BLOCK);
        err = n == BLOCK ? 0 : (n < 0 ? errno : EIO);
        free(buf);
    }
    close(fd);
    unlink(path);
    return err;
}

static int mode_fio(int64_t stamp, int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: probe fio <dir> <jobfile> [fio args...]\n");
        return 2;
    }
    const char *dir = argv[2];
    int err = direct_works(dir);
    printf("{\"probe\":\"fio\",\"realtime_ns\":%lld,\"dir\":",
           (long long)stamp);
    json_str(dir);
    printf(",\"direct\":%s,\"direct_error\":", err ? "false" : "true");
    json_str(err ? strerror(err) : "");
    printf("}\n");
    /* fio writes through its own buffers after exec; ours must be out
     * first or the lines interleave wrongly. */
    fflush(stdout);

    /* The job file reads these through fio's ${VAR} expansion. */
    setenv("DIRECT", err ? "0" : "1", 1);
    setenv("DIR", dir, 1);

    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return 1;
    int n = 0;
    args[n++] = "fio";
    args[n++] = "--output-format=json";
    for (int i = 3; i < argc; i++) args[n++] = argv[i];
    args[n] = NULL;
    execv(FIO_PATH, args);

    /* Only reached when exec failed (no fio in this image). */
    char msg[512];
    snprintf(msg, sizeof msg, "execv %s: %s", FIO_PATH, strerror(errno));
    printf("{\"probe\":\"error\",\"mode\":\"fio\",\"realtime_ns\":%lld,"
           "\"error\":", (long long)stamp);
    json_str(msg);
    printf("}\n");
    fflush(stdout);
    return 127;
}

/* ---- start mode ---------------------------------------------------- */

/* Lingering lets an orchestrator see the sandbox Running and Ready before it
 * exits; a probe that exits at once may go straight to Succeeded. */
static int mode_start(int64_t stamp, int argc, char **argv) {
    printf("{\"probe\":\"start\",\"realtime_ns\":%lld}\n", (long long)stamp);
    if (fflush(stdout) != 0) return 1;
    long linger = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    if (linger > 0) sleep((unsigned)linger);
    /* The last instruction before exit: the host sees the sandbox gone only after the
     * teardown and after its own wake-up, so this stamp tells the two apart. */
    printf("{\"probe\":\"end\",\"realtime_ns\":%lld}\n", (long long)now_ns(CLOCK_REALTIME));
    if (fflush(stdout) != 0) return 1;
    return 0;
}

/* ---- clock mode ---------------------------------------------------- */

/* An NTP-style responder: the harness sends one byte and notes its own
 * send and receive times; the reply carries this sandbox's CLOCK_REALTIME
 * read in between. The exchange with the smallest round trip bounds the
 * offset best. Connections are served one after another, forever. */
static int mode_clock(int64_t stamp, int argc, char **argv) {
    int port = argc > 2 ? atoi(argv[2]) : 7123;
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_ANY)};
    setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (srv < 0 || bind(srv, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(srv, 4) != 0) {
        printf("{\"probe\":\"error\",\"mode\":\"clock\",\"error\":\"%s\"}\n", strerror(errno));
        return 1;
    }
    printf("{\"probe\":\"clock\",\"realtime_ns\":%lld,\"port\":%d}\n", (long long)stamp, port);
    fflush(stdout);
    for (;;) {
        int conn = accept(srv, NULL, NULL);
        if (conn < 0) continue;
        char byte, line[32];
        while (read(conn, &byte, 1) == 1) {
            int n = snprintf(line, sizeof line, "%lld\n", (long long)now_ns(CLOCK_REALTIME));
            if (write(conn, line, (size_t)n) != n) break;
        }
        close(conn);
    }
}

/* ---- idle mode ----------------------------------------------------- */

/* The sandbox stays up, doing nothing, while the harness measures what it
 * costs the host. The probe's own resident set (VmRSS as this sandbox's
 * kernel reports it) is what the workload itself holds: the harness
 * subtracts it. SIGTERM is the harness saying it is done: a clean exit. */
static volatile sig_atomic_t released;

static void on_release(int sig) { (void)sig; released = 1; }

static long own_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) { kib = strtol(line + 6, NULL, 10); break; }
    fclose(f);
    return kib;
}

static int mode_idle(int64_t stamp, int argc, char **argv) {
    struct sigaction sa = {.sa_handler = on_release};
    sigaction(SIGTERM, &sa, NULL);
    long hold = argc > 2 ? strtol(argv[2], NULL, 10) : 30;
    long rss = own_rss_kib();
    if (rss >= 0)
        printf("{\"probe\":\"idle\",\"realtime_ns\":%lld,\"hold_s\":%ld,\"rss_kib\":%ld}\n",
               (long long)stamp, hold, rss);
    else
        printf("{\"probe\":\"idle\",\"realtime_ns\":%lld,\"hold_s\":%ld,\"rss_kib\":null,"
               "\"rss_error\":\"%s\"}\n", (long long)stamp, hold, strerror(errno));
    if (fflush(stdout) != 0) return 1;
    int64_t until = now_ns(CLOCK_MONOTONIC) + (int64_t)hold * 1000000000LL;
    while (!released) {
        int64_t left = until - now_ns(CLOCK_MONOTONIC);
        if (left <= 0) break;
        struct timespec nap = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
        nanosleep(&nap, NULL); /* EINTR on SIGTERM: the loop sees released */
    }
    printf("{\"probe\":\"end\",\"realtime_ns\":%lld,\"released\":%s}\n",
           (long long)now_ns(CLOCK_REALTIME), released ? "true" : "false");
    if (fflush(stdout) != 0) return 1;
    return 0;
}
#include "net.c"

int main(int argc, char **argv) {
    /* First instruction of the workload: everything before this line is
     * sandbox start-up cost, everything after is ours. */
    int64_t stamp = now_ns(CLOCK_REALTIME);

    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "start") == 0) return mode_start(stamp, argc, argv);
    if (strcmp(mode, "clock") == 0) return mode_clock(stamp, argc, argv);
    if (strcmp(mode, "syscall") == 0) return mode_syscall(stamp, argc, argv);
    if (strcmp(mode, "fio") == 0) return mode_fio(stamp, argc, argv);
    if (strcmp(mode, "idle") == 0) return mode_idle(stamp, argc, argv);
    if (strncmp(mode, "rr", 2) == 0 || strcmp(mode, "iperf3") == 0)
        return mode_net(stamp, argc, argv);

    fprintf(stderr,
            "usage: probe start [linger_s]\n"
            "       probe clock <port>\n"
            "       probe syscall [iterations]\n"
            "       probe fio <dir> <jobfile> [fio args...]\n"
            "       probe idle <hold_s>\n"
            "unknown mode '%s'\n", mode);
    return 2;
}
