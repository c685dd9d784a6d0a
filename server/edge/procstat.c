/*
 * process_* metrics, the families every Prometheus client library exports, read from
 * /proc/self at scrape time (edge_proc_metrics_update runs in the registry's render hook).
 *
 * Design: /proc/self/stat gives CPU ticks, start time (ticks after boot), virtual and resident
 * size; /proc/self/fd is counted; the fd limit is getrlimit's soft RLIMIT_NOFILE (what
 * /proc/self/limits prints). The start time is turned into Unix time with CLOCK_BOOTTIME
 * instead of /proc/stat's btime, because the systemd unit's ProcSubset=pid hides /proc/stat.
 * Invariant: a read that fails leaves the last value; nothing here allocates.
 */
#include "edge/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void set_start_time(const edge_proc_metrics *p);

int edge_proc_metrics_register(edge_metrics *m, edge_proc_metrics *out, char *err, size_t errcap)
{
    const edge_metric_def defs[] = {
        {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, EDGE_METRIC_FLOAT, 0, NULL},
        {"process_resident_memory_bytes", "Resident memory size in bytes.", EDGE_METRIC_GAUGE, NULL,
         0, NULL, 0, 0, 0, NULL},
        {"process_virtual_memory_bytes", "Virtual memory size in bytes.", EDGE_METRIC_GAUGE, NULL,
         0, NULL, 0, 0, 0, NULL},
        {"process_open_fds", "Number of open file descriptors.", EDGE_METRIC_GAUGE, NULL, 0, NULL,
         0, 0, 0, NULL},
        {"process_max_fds", "Maximum number of open file descriptors.", EDGE_METRIC_GAUGE, NULL, 0,
         NULL, 0, 0, 0, NULL},
        {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
         EDGE_METRIC_GAUGE, NULL, 0, NULL, 0, EDGE_METRIC_FLOAT, 0, NULL},
    };
    edge_metric **slots[] = {&out->cpu_seconds, &out->resident, &out->virtual_mem,
                             &out->open_fds,    &out->max_fds,  &out->start_time};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        *slots[i] = edge_metrics_register(m, &defs[i], err, errcap);
        if (!*slots[i])
            return -1;
    }
    set_start_time(out);
    edge_proc_metrics_update(out);
    return 0;
}

/* Fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss) of /proc/self/stat
 * (numbered as in proc(5)), counted after the ")" that ends the command name, which may itself
 * hold spaces or ")"; the field after it is 3 (state). */
static int read_stat(unsigned long long *utime, unsigned long long *stime,
                     unsigned long long *start, unsigned long long *vsize, long long *rss)
{
    static const int want[5] = {14, 15, 22, 23, 24};
    unsigned long long v[5];
    size_t got = 0;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    for (int field = 3; *p && got < 5; field++) {
        while (*p == ' ')
            p++;
        if (field == want[got]) {
            char *end;
            errno = 0;
            v[got] = strtoull(p, &end, 10);
            if (errno != 0 || end == p || (*end != ' ' && *end != '\n' && *end != '\0'))
                return -1;
            got++;
        }
        while (*p && *p != ' ')
            p++;
    }
    if (got != 5 || v[4] > (unsigned long long)INT64_MAX)
        return -1;
    *utime = v[0];
    *stime = v[1];
    *start = v[2];
    *vsize = v[3];
    *rss = (long long)v[4];
    return 0;
}

static long long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long long n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

/* Once, at registration: the value never changes, and computing it per scrape would make it
 * jitter with the two clock reads. */
static void set_start_time(const edge_proc_metrics *p)
{
    unsigned long long ut, st, start, vsize;
    long long rss;
    long tick = sysconf(_SC_CLK_TCK);
    struct timespec real, boot;
    if (tick <= 0 || read_stat(&ut, &st, &start, &vsize, &rss) != 0 ||
        clock_gettime(CLOCK_REALTIME, &real) != 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
        return;
    double since_boot = (double)boot.tv_sec + (double)boot.tv_nsec / 1e9;
    double now = (double)real.tv_sec + (double)real.tv_nsec / 1e9;
    double t = now - since_boot + (double)start / (double)tick;
    edge_metric_set_double(p->start_time, 0, (double)(long long)(t * 100.0) / 100.0);
}

void edge_proc_metrics_update(const edge_proc_metrics *p)
{
    unsigned long long ut, st, start, vsize;
    long long rss;
    long tick = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (tick > 0 && page > 0 && read_stat(&ut, &st, &start, &vsize, &rss) == 0) {
        edge_metric_set_double(p->cpu_seconds, 0, (double)(ut + st) / (double)tick);
        edge_metric_set(p->resident, 0, rss * page);
        edge_metric_set(p->virtual_mem, 0, (int64_t)vsize);
    }
    long long fds = count_fds();
    if (fds >= 0)
        edge_metric_set(p->open_fds, 0, fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        edge_metric_set(p->max_fds, 0,
                        rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : (int64_t)rl.rlim_cur);
}
