/*
 * testhooks.c: see fdremap_testhooks.h.
 */
#define	_GNU_SOURCE
#include <linux/sched.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fdremap_testhooks.h"

/* See fdremap_testhooks.h. */
int
fdr_test_mkstemp_cloexec(char *template)
{

	return (mkostemp(template, O_CLOEXEC));
}

/*
 * The child only sleeps and exits (system calls, nothing of the
 * caller's libraries: it is a copy of one thread of a threaded process).
 */
pid_t
fdr_test_child_at(pid_t pid, unsigned int ms, int status)
{
	struct clone_args ca;
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	pid_t tid = pid;
	long r;

	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&tid;
	ca.set_tid_size = 1;
	r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r == 0) {
		if (ms > 0)
			(void)syscall(SYS_nanosleep, &ts, NULL);
		(void)syscall(SYS_exit_group, status);
	}
	return (r < 0 ? -errno : (pid_t)r);
}

/* See fdremap_testhooks.h. */
int
fdr_test_io_uring(void)
{
	uint32_t params[30];	/* struct io_uring_params: 120 bytes */
	long fd;

	memset(params, 0, sizeof(params));
	fd = syscall(SYS_io_uring_setup, 1, params);
	if (fd < 0)
		return (-errno);
	if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0) {
		close((int)fd);
		return (-EIO);
	}
	return ((int)fd);
}
