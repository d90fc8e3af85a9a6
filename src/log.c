/* log.c: stderr or syslog, one line per message. */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

/* Longest stderr line logged; the rest of a longer line is dropped. */
#define SIF_STDERR_LINE 512

static const char *sif_progname = "safeimgfs";
static bool sif_use_syslog;
static bool sif_debug_on;

void sif_log_init(const char *progname, bool debug)
{
    sif_progname = progname;
    sif_debug_on = debug;
}

void sif_log_syslog(void)
{
    openlog(sif_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    sif_use_syslog = true;
}

/* Reads the captured stderr and logs each line, control bytes shown as
 * '?' so that no line can forge another. */
static void *sif_stderr_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096], line[SIF_STDERR_LINE + 1];
    size_t len = 0;
    bool cut = false;

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[i];

            if (c == '\n') {
                line[len] = 0;
                if (len)
                    sif_log(SIF_LOG_WARN, "stderr: %s%s", line, cut ? "..." : "");
                len = 0;
                cut = false;
            } else if (len < SIF_STDERR_LINE) {
                line[len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
            } else {
                cut = true;
            }
        }
    }
    close(fd);
    return NULL;
}

int sif_log_capture_stderr(void)
{
    pthread_attr_t at;
    pthread_t t;
    int p[2], r;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    /* fd 2 itself stays open across exec (dup2 clears FD_CLOEXEC) */
    if (dup2(p[1], 2) < 0) {
        r = -errno;
        close(p[0]);
        close(p[1]);
        return r;
    }
    close(p[1]);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    r = pthread_create(&t, &at, sif_stderr_reader, (void *)(intptr_t)p[0]);
    pthread_attr_destroy(&at);
    if (r) {
        close(p[0]);
        return -r;
    }
    return 0;
}

void sif_log(enum sif_log_level level, const char *fmt, ...)
{
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    static const char *const tag[] = { "error: ", "warning: ", "", "debug: " };
    char line[1024];
    va_list ap;

    if (level == SIF_LOG_DEBUG && !sif_debug_on)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (sif_use_syslog)
        syslog(prio[level], "%s", line);
    else
        fprintf(stderr, "%s: %s%s\n", sif_progname, tag[level], line);
}
