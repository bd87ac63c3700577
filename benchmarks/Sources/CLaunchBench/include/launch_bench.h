/*
 * launch_bench.h: the C side of FDRemap's launch benchmarks: descriptors
 * to pass, and glibc's posix_spawn(3) with file actions as the baseline.
 */
#ifndef _LAUNCH_BENCH_H_
#define _LAUNCH_BENCH_H_

#include <stddef.h>
#include <sys/types.h>

/*
 * Raise RLIMIT_NOFILE's soft limit to its hard limit, and return it
 * (-1 on error).
 */
long	launch_raise_nofile(void);

/*
 * Open /dev/null at descriptors base .. base+k-1 (close-on-exec), for a
 * launch to pass.  Returns 0 or an errno value, with nothing left open.
 */
int	launch_open_sources(int base, int k);

/* Close descriptors base .. base+k-1. */
void	launch_close_sources(int base, int k);

/*
 * glibc's posix_spawn(3) of path with no arguments and an empty
 * environment, giving the child descriptor i = fds[i] for i < k through
 * k posix_spawn_file_actions_adddup2() actions, and closing every other
 * descriptor with posix_spawn_file_actions_addclosefrom_np(k).  The
 * mapping must be one dup2() in order can do: no fds[j] (j > i) may be
 * i.  The file actions are built for each call, as a caller with a new
 * mapping each time would.  Returns 0 or an errno value; *pid is the
 * child's.
 */
int	launch_posix_spawn(const char *path, const int *fds, size_t k,
	    pid_t *pid);

/* path opened with O_PATH | O_CLOEXEC, for execveat(); -1 on error. */
int	launch_open_exec(const char *path);

/* Wait for pid; returns its exit status, or -1. */
int	launch_wait(pid_t pid);

/* A monotonic clock in nanoseconds. */
unsigned long long launch_now_ns(void);

#endif /* !_LAUNCH_BENCH_H_ */
