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

/*
 * The same actions built once (launch_actions_build(), for one mapping)
 * and reused by every launch_posix_spawn_prebuilt(): posix_spawn(3)
 * without the cost of building its actions.  launch_actions_free() ends
 * them.  Both return 0 or an errno value.
 */
int	launch_actions_build(const int *fds, size_t k);
int	launch_posix_spawn_prebuilt(const char *path, pid_t *pid);
void	launch_actions_free(void);

/*
 * The floor: what a hand-written launcher does at the least, with none
 * of our guarantees (no signal handling, no checks, no error report):
 * clone(CLONE_VM | CLONE_VFORK), then in the child dup2(fds[i], i) for
 * each i in order, close_range(k, ~0), execve(path).  The same mapping
 * rule as launch_posix_spawn().  Returns 0 or clone's errno.
 */
int	launch_floor(const char *path, const int *fds, size_t k, pid_t *pid);

/*
 * The fresh floor: what a hand-written launcher does at the least with
 * our launcher's way from 256 descriptors: every fds[i] sent through a
 * socket pair (SCM_RIGHTS, 253 a message), then
 * clone(CLONE_VM | CLONE_VFORK | CLONE_FILES), and in the child
 * close_range(CLOSE_RANGE_UNSHARE) above the socket (a table of its
 * own, nothing above the socket copied), everything below the socket
 * closed, the files received at 0 .. k-1, close_range(k, ~0),
 * execve(path).  No fallback, no checks.  Any mapping.  Returns 0 or an
 * errno.
 */
int	launch_floor_fresh(const char *path, const int *fds, size_t k,
	    pid_t *pid);

/* path opened with O_PATH | O_CLOEXEC, for execveat(); -1 on error. */
int	launch_open_exec(const char *path);

/* Wait for pid; returns its exit status, or -1. */
int	launch_wait(pid_t pid);

/* A monotonic clock in nanoseconds. */
unsigned long long launch_now_ns(void);

#endif /* !_LAUNCH_BENCH_H_ */
