/*
 * testhooks.c: see fdremap_testhooks.h.
 */
#define	_GNU_SOURCE
#include <linux/sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

/* The forker of fdr_test_forker_start(). */
static struct {
	pthread_t	thread;
	int		fd;
	int		release[2];	/* workers live until its end closes */
	int		*closed;	/* shared: workers that closed fd */
	volatile int	stop;
	int		forked;
	pid_t		pids[100000];
} forker;

static void *
forker_main(void *arg)
{
	char c;
	pid_t pid;

	(void)arg;
	while (!forker.stop && forker.forked < 100000) {
		pid = fork();
		if (pid == 0) {
			close(forker.fd);
			close(forker.release[1]);
			__atomic_add_fetch(forker.closed, 1, __ATOMIC_SEQ_CST);
			while (read(forker.release[0], &c, 1) == -1 &&
			    errno == EINTR)
				;
			_exit(0);
		}
		if (pid > 0)
			forker.pids[forker.forked++] = pid;
		usleep(20);
	}
	return (NULL);
}

/* See fdremap_testhooks.h. */
int
fdr_test_forker_start(int fd)
{

	if (forker.closed == NULL) {
		forker.closed = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (forker.closed == MAP_FAILED) {
			forker.closed = NULL;
			return (errno);
		}
	}
	if (pipe2(forker.release, O_CLOEXEC) != 0)
		return (errno);
	*forker.closed = 0;
	forker.fd = fd;
	forker.stop = 0;
	forker.forked = 0;
	return (pthread_create(&forker.thread, NULL, forker_main, NULL));
}

/* See fdremap_testhooks.h. */
int
fdr_test_forker_stop(void)
{
	int i;

	forker.stop = 1;
	(void)pthread_join(forker.thread, NULL);
	for (i = 0; i < 5000 && __atomic_load_n(forker.closed,
	    __ATOMIC_SEQ_CST) < forker.forked; i++)
		usleep(1000);
	return (forker.forked);
}

/* See fdremap_testhooks.h. */
void
fdr_test_forker_reap(void)
{
	int i;

	close(forker.release[1]);
	for (i = 0; i < forker.forked; i++)
		while (waitpid(forker.pids[i], NULL, 0) == -1 && errno == EINTR)
			;
	close(forker.release[0]);
}
