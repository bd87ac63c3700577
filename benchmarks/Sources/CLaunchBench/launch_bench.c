/*
 * launch_bench.c: descriptors to pass and the posix_spawn(3) baseline of
 * FDRemap's launch benchmarks (launch_bench.h).
 */
#define	_GNU_SOURCE
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>

#include "launch_bench.h"

/* Raise RLIMIT_NOFILE's soft limit to the hard one; return it. */
long
launch_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return (-1);
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return (-1);
	return (rl.rlim_cur > 1L << 30 ? 1L << 30 : (long)rl.rlim_cur);
}

/* /dev/null at base .. base+k-1, close-on-exec. */
int
launch_open_sources(int base, int k)
{
	int fd, i, error;

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return (errno);
	for (i = 0; i < k; i++) {
		if (dup3(fd, base + i, O_CLOEXEC) < 0) {
			error = errno;
			launch_close_sources(base, i);
			close(fd);
			return (error);
		}
	}
	close(fd);
	return (0);
}

/* Close base .. base+k-1. */
void
launch_close_sources(int base, int k)
{
	int i;

	for (i = 0; i < k; i++)
		close(base + i);
}

/* posix_spawn(3) with k dup2 actions and closefrom(k). */
int
launch_posix_spawn(const char *path, const int *fds, size_t k, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { (char *)path, NULL };
	char *envp[] = { NULL };
	size_t i;
	int error;

	error = posix_spawn_file_actions_init(&fa);
	if (error != 0)
		return (error);
	for (i = 0; i < k && error == 0; i++)
		error = posix_spawn_file_actions_adddup2(&fa, fds[i], (int)i);
	if (error == 0)
		error = posix_spawn_file_actions_addclosefrom_np(&fa, (int)k);
	if (error == 0)
		error = posix_spawn(pid, path, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	return (error);
}

/* An O_PATH descriptor of path, as our launcher takes executables. */
int
launch_open_exec(const char *path)
{

	return (open(path, O_PATH | O_CLOEXEC));
}

/* waitpid(2) for pid: its exit status, or -1. */
int
launch_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return (-1);
	return (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* A monotonic clock in nanoseconds. */
unsigned long long
launch_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((unsigned long long)ts.tv_sec * 1000000000ull +
	    (unsigned long long)ts.tv_nsec);
}
