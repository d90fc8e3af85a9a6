/* log.h: the one logging path.  Messages go to stderr until sif_log_syslog()
 * switches them to syslog (when the daemon detaches).  Never pass secrets.
 */
#ifndef SIF_LOG_H
#define SIF_LOG_H

#include <stdbool.h>

enum sif_log_level { SIF_LOG_ERR, SIF_LOG_WARN, SIF_LOG_INFO, SIF_LOG_DEBUG };

void sif_log_init(const char *progname, bool debug);
void sif_log_syslog(void);
/* Once detached (stderr is /dev/null): makes fd 2 a pipe whose lines go to
 * the log as warnings, so what libraries and key programs write to stderr
 * is not lost.  Starts a thread: call after every fork that must happen
 * single-threaded.  0 or -errno. */
int sif_log_capture_stderr(void);
void sif_log(enum sif_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sif_err(...) sif_log(SIF_LOG_ERR, __VA_ARGS__)
#define sif_warn(...) sif_log(SIF_LOG_WARN, __VA_ARGS__)
#define sif_info(...) sif_log(SIF_LOG_INFO, __VA_ARGS__)
#define sif_debug(...) sif_log(SIF_LOG_DEBUG, __VA_ARGS__)

#endif
