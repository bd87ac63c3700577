/*
 * host_reaper.c: program_reap(), the background reaper of children
 * nobody waits for.
 *
 * One thread, started on first use with every signal blocked, sleeps in
 * epoll_wait(2) on the pidfds of the children it was given.  A pidfd
 * becomes readable when its process has exited; the thread then reaps it
 * by the pidfd with program_wait() (it cannot block: the child is a
 * zombie, or gone if someone else reaped it, and a pid reused meanwhile
 * is never mistaken for it) and closes the pidfd.  Each registration
 * carries the pid and the pidfd in the epoll data, so the reaper keeps
 * no memory per child.  A process made by
 * fork(2) has no reaper thread: its first use starts its own.  Without
 * pidfds a small detached thread waits for the one child.
 */
#define	_GNU_SOURCE
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "host_internal.h"

#define	HOST_REAPER_STACK	(64 * 1024)

/* A program_watch() registration. */
struct host_watch {
	void	(*hw_fn)(void *);
	void	 *hw_arg;
	pid_t	  hw_pid;
	int	  hw_pidfd;	/* the caller's, or -1 without pidfds */
};

#define	HOST_WATCH_TAG	(UINT64_C(1) << 63)

static pthread_mutex_t	host_reaper_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t		host_reaper_owner;	/* the process it runs in */
static int		host_reaper_epfd = -1;

/* Start a detached thread running fn(arg) with every signal blocked. */
static int
host_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int error;

	if ((error = pthread_attr_init(&attr)) != 0)
		return (error);
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	(void)pthread_attr_setstacksize(&attr, HOST_REAPER_STACK);
	sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	error = pthread_create(&t, &attr, fn, arg);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	(void)pthread_attr_destroy(&attr);
	return (error);
}

/*
 * A watched child has exited: drop the registration first (so that the
 * pidfd is no longer referred to once the watcher knows), then tell the
 * watcher, then free the watch.
 */
static void
host_watch_fire(int epfd, struct host_watch *w)
{

	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, w->hw_pidfd, NULL);
	w->hw_fn(w->hw_arg);
	free(w);
}

/*
 * The reaper thread: reap each child whose pidfd becomes readable, and
 * tell the watcher of each watched one.
 */
static void *
host_reaper_main(void *arg)
{
	struct epoll_event ev[32];
	int i, n, pidfd, epfd = (int)(intptr_t)arg;
	pid_t pid;

	for (;;) {
		n = epoll_wait(epfd, ev, 32, -1);
		for (i = 0; i < n; i++) {
			if ((ev[i].data.u64 & HOST_WATCH_TAG) != 0) {
				host_watch_fire(epfd, (struct host_watch *)
				    (uintptr_t)(ev[i].data.u64 &
				    ~HOST_WATCH_TAG));
				continue;
			}
			pid = (pid_t)(ev[i].data.u64 >> 32);
			pidfd = (int)(uint32_t)ev[i].data.u64;
			/* ECHILD (someone else reaped it) is fine. */
			(void)program_wait(pid, pidfd, NULL);
			(void)epoll_ctl(epfd, EPOLL_CTL_DEL, pidfd, NULL);
			(void)close(pidfd);
		}
	}
	return (NULL);
}

/*
 * The reaper's epoll instance in *epfdp, made with its thread on the
 * first use in this process (an instance inherited through fork(2) is
 * the parent's: closed and replaced).  Returns 0 or an errno.
 */
static int
host_reaper_get(int *epfdp)
{
	int error = 0, epfd;

	(void)pthread_mutex_lock(&host_reaper_lock);
	if (host_reaper_owner != getpid()) {
		if (host_reaper_epfd != -1)
			(void)close(host_reaper_epfd);
		host_reaper_epfd = -1;
		host_reaper_owner = 0;
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd == -1)
			error = errno;
		else if ((error = host_thread(host_reaper_main,
		    (void *)(intptr_t)epfd)) != 0)
			(void)close(epfd);
		else {
			host_reaper_epfd = epfd;
			host_reaper_owner = getpid();
		}
	}
	*epfdp = host_reaper_epfd;
	(void)pthread_mutex_unlock(&host_reaper_lock);
	return (error);
}

/* Without pidfds: a thread that waits for one child. */
static void *
host_waiter_main(void *arg)
{

	(void)program_wait((pid_t)(intptr_t)arg, -1, NULL);
	return (NULL);
}

/* Hand a child to the reaper: see program.h. */
int
program_reap(pid_t pid, int pidfd)
{
	struct epoll_event ev;
	int error, epfd;

	if (pid <= 0) {
		if (pidfd >= 0)
			(void)close(pidfd);
		return (EINVAL);
	}
	if (pidfd < 0)
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return (host_thread(host_waiter_main, (void *)(intptr_t)pid));
	if ((error = host_reaper_get(&epfd)) != 0) {
		(void)close(pidfd);
		return (error);
	}
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)(uint32_t)pid << 32 | (uint32_t)pidfd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, pidfd, &ev) == -1) {
		error = errno;
		(void)close(pidfd);
		return (error);
	}
	return (0);
}

/*
 * Without pidfds: a thread that waits until the one watched child has
 * exited, without reaping it (WNOWAIT), and tells the watcher.
 */
static void *
host_watcher_main(void *arg)
{
	struct host_watch *w = arg;
	siginfo_t si;

	while (waitid(P_PID, (id_t)w->hw_pid, &si, WEXITED | WNOWAIT) == -1 &&
	    errno == EINTR)
		continue;
	w->hw_fn(w->hw_arg);
	free(w);
	return (NULL);
}

/* Tell when a child has exited: see program.h. */
int
program_watch(pid_t pid, int pidfd, void (*fn)(void *), void *arg)
{
	struct epoll_event ev;
	struct host_watch *w;
	int error, epfd;

	if (fn == NULL || (pidfd < 0 && pid <= 0))
		return (EINVAL);
	/* Not fdr_malloc: the reaper thread frees it, not the caller's. */
	if ((w = malloc(sizeof(*w))) == NULL)
		return (ENOMEM);
	w->hw_fn = fn;
	w->hw_arg = arg;
	w->hw_pid = pid;
	w->hw_pidfd = pidfd;
	if (pidfd < 0) {
		if ((error = host_thread(host_watcher_main, w)) != 0)
			free(w);
		return (error);
	}
	if ((error = host_reaper_get(&epfd)) != 0) {
		free(w);
		return (error);
	}
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.u64 = HOST_WATCH_TAG | (uint64_t)(uintptr_t)w;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, pidfd, &ev) == -1) {
		error = errno;
		free(w);
		return (error);
	}
	return (0);
}
