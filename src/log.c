/* log.c: stderr or syslog, one line per message. */
#include "config.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

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
