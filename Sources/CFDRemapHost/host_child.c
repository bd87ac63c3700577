/*
 * host_child.c: the child that carries out a plan: shuffle the
 * descriptors, close the rest, execveat().
 *
 * It runs in the caller's memory (CLONE_VM) on a stack of its own, with
 * the caller suspended (CLONE_VFORK) and every signal blocked.  It calls
 * nothing that allocates or takes a lock, uses only what host_plan.c
 * prepared, and reports a failure in hp_error before it exits.  For a
 * spawn it is a process with a copy of the caller's descriptor table;
 * for an exec it is a thread of the caller's process (CLONE_THREAD) with
 * a private copy of the table (no CLONE_FILES), so that its execveat()
 * replaces the process and its failure leaves the caller untouched.
 */
#define	_GNU_SOURCE
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define	CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

#define	HOST_STACK_SIZE	(64 * 1024)	/* the child's stack */
#define	HOST_STACK_GUARD 4096		/* and a PROT_NONE page below it */

/*
 * The calling thread's signal mask through the system call itself:
 * glibc's sigprocmask() will not block the signals it uses internally,
 * and the child must not take any.
 */
static void
host_sigmask(int how, const sigset_t *set, sigset_t *oset)
{

	(void)syscall(SYS_rt_sigprocmask, how, set, oset, _NSIG / 8);
}

/*
 * Reset every caught signal to SIG_DFL, so that no handler of the
 * caller can run in the child once the caller's mask is back; ignored
 * signals stay ignored (execve keeps them so).  glibc refuses its two
 * internal signals, which it never sends to a process it did not make.
 */
static void
host_child_signals(void)
{
	struct sigaction sa;
	int sig;

	for (sig = 1; sig < _NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, NULL, &sa) != 0 ||
		    sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		(void)sigaction(sig, &sa, NULL);
	}
}

/*
 * An F_DUPFD_CLOEXEC copy of fd at hp_mintemp or above: EMFILE when
 * there is no room under RLIMIT_NOFILE (F_DUPFD says EINVAL when the
 * minimum itself is past it).
 */
static int
host_child_dupfd(const struct host_plan *hp, int fd, int *newfdp)
{

	*newfdp = fcntl(fd, F_DUPFD_CLOEXEC, hp->hp_mintemp);
	if (*newfdp == -1)
		return (errno == EINVAL ? EMFILE : errno);
	return (0);
}

/*
 * Run the shuffle's steps in order.  *execfdp is the executable's number
 * after it (moved above everything when a target would clobber it).
 */
static int
host_child_shuffle(const struct host_plan *hp, int *execfdp)
{
	const struct host_step *st;
	int temp = -1, execfd = hp->hp_execfd, error;
	size_t k;

	for (k = 0; k < hp->hp_nsteps; k++) {
		st = &hp->hp_steps[k];
		error = 0;
		switch (st->hs_op) {
		case HOP_SETFD0:
			if (fcntl(st->hs_to, F_SETFD, 0) == -1)
				error = errno;
			break;
		case HOP_DUP2:
			if (dup2(st->hs_from, st->hs_to) == -1)
				error = errno;
			break;
		case HOP_SAVE:
			if (temp == -1)
				error = host_child_dupfd(hp, st->hs_from, &temp);
			else if (dup3(st->hs_from, temp, O_CLOEXEC) == -1)
				error = errno;
			break;
		case HOP_DUP2TEMP:
			if (dup2(temp, st->hs_to) == -1)
				error = errno;
			break;
		case HOP_MOVEEXEC:
			error = host_child_dupfd(hp, execfd, &execfd);
			break;
		}
		if (error != 0)
			return (error);
	}
	*execfdp = execfd;
	return (0);
}

/* What the /proc walk closes: lo and up, but keep and the walker. */
struct host_closer {
	int	hc_lo;
	int	hc_keep;
	int	hc_dirfd;
};

static int
host_close_cb(int fd, void *arg)
{
	const struct host_closer *hc = arg;

	if (fd >= hc->hc_lo && fd != hc->hc_keep && fd != hc->hc_dirfd)
		(void)syscall(SYS_close, fd);
	return (0);
}

/* close_range(2) of everything from lo up, except keep (-1: none). */
static int
host_closerange_around(unsigned int lo, int keep)
{

	if (keep >= 0 && (unsigned int)keep > lo &&
	    syscall(SYS_close_range, lo, (unsigned int)keep - 1, 0) == -1)
		return (errno);
	if (keep >= 0)
		lo = (unsigned int)keep + 1;
	if (syscall(SYS_close_range, lo, ~0U, 0) == -1)
		return (errno);
	return (0);
}

/*
 * Close every descriptor from hp_n up, except the executable (keep, -1
 * when it is passed), which stays open with close-on-exec until
 * execveat().  close_range(CLOSE_RANGE_CLOEXEC) marks them all at once
 * (Linux 5.11); then plain close_range() around keep (5.9); then a walk
 * of /proc/self/fd with getdents64 into a stack buffer; then close() of
 * every number up to hp_bruteend.  The test hooks skip the first ones.
 * Cannot fail: the last way always works.
 */
static void
host_child_closerest(struct host_plan *hp, int keep)
{
	uint64_t buf[512];
	struct host_closer hc;
	unsigned int lo = (unsigned int)hp->hp_n;
	int fd, how;

	if ((hp->hp_flags & PROGRAM_TEST_NOCLOSERANGE) == 0) {
		if ((hp->hp_flags & PROGRAM_TEST_NOCLOEXECRANGE) == 0 &&
		    syscall(SYS_close_range, lo, ~0U, CLOSE_RANGE_CLOEXEC) == 0) {
			hp->hp_closedby = PROGRAM_CLOSED_CLOEXECRANGE;
			return;
		}
		if (host_closerange_around(lo, keep) == 0) {
			how = PROGRAM_CLOSED_RANGE;
			goto done;
		}
	}
	hc.hc_lo = hp->hp_n;
	hc.hc_keep = keep;
	hc.hc_dirfd = -1;
	if ((hp->hp_flags & PROGRAM_TEST_NOPROCFS) == 0)
		hc.hc_dirfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
	if (hc.hc_dirfd != -1 &&
	    host_fdwalk(hc.hc_dirfd, buf, sizeof(buf), host_close_cb, &hc) ==
	    0) {
		(void)syscall(SYS_close, hc.hc_dirfd);
		how = PROGRAM_CLOSED_PROCFS;
		goto done;
	}
	for (fd = hp->hp_n; fd < hp->hp_bruteend; fd++)
		if (fd != keep)
			(void)syscall(SYS_close, fd);
	how = PROGRAM_CLOSED_BRUTE;
done:
	if (keep >= 0)
		(void)fcntl(keep, F_SETFD, FD_CLOEXEC);
	hp->hp_closedby = how;
}

/*
 * Restore the caller's mask and execveat() the executable.  The #!
 * policy of program.h: on ENOENT, unless the executable is passed, once
 * more with it at descriptor hp_n without close-on-exec.
 */
static int
host_child_exec(const struct host_plan *hp, int execfd)
{
	int error, n = hp->hp_n, r;

	host_sigmask(SIG_SETMASK, &hp->hp_oldmask, NULL);
	(void)syscall(SYS_execveat, execfd, "", hp->hp_argv, hp->hp_envp,
	    AT_EMPTY_PATH);
	error = errno;
	if (error != ENOENT || hp->hp_execpassed)
		return (error);
	r = execfd == n ? fcntl(n, F_SETFD, 0) : dup2(execfd, n);
	if (r == -1)
		return (errno == EBADF ? EMFILE : errno);
	(void)syscall(SYS_execveat, n, "", hp->hp_argv, hp->hp_envp,
	    AT_EMPTY_PATH);
	return (errno);
}

/*
 * The child: only returns by exiting (SYS_exit ends this thread only,
 * which for the exec form matters), after storing its error.
 */
static int
host_child(void *arg)
{
	struct host_plan *hp = arg;
	int execfd, error;

	if (hp->hp_spawn)
		host_child_signals();
	error = host_child_shuffle(hp, &execfd);
	if (error == 0) {
		host_child_closerest(hp, hp->hp_execpassed ? -1 : execfd);
		error = host_child_exec(hp, execfd);
	}
	__atomic_store_n(&hp->hp_error, error, __ATOMIC_RELEASE);
	(void)syscall(SYS_exit, 127);
	return (127);	/* not reached */
}

/*
 * Start the child on a fresh stack, every signal blocked around the
 * clone, and wait (CLONE_VFORK) until it has exec'd or exited.  A failed
 * spawn child is reaped.  For a spawn, *pidp gets the child.  Returns 0
 * or the child's (or clone's) errno; the caller's errno is kept.
 */
int
host_start(struct host_plan *hp, pid_t *pidp)
{
	const size_t size = HOST_STACK_SIZE + HOST_STACK_GUARD;
	sigset_t all;
	char *stack;
	int flags, error, saved_errno = errno, status;
	pid_t pid;

	stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		error = errno;
		errno = saved_errno;
		return (error);
	}
	(void)mprotect(stack, HOST_STACK_GUARD, PROT_NONE);
	if (hp->hp_spawn)
		flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
	else
		flags = CLONE_VM | CLONE_VFORK | CLONE_THREAD | CLONE_SIGHAND |
		    CLONE_SYSVSEM;
	hp->hp_error = 0;
	memset(&all, 0xff, sizeof(all));
	host_sigmask(SIG_BLOCK, &all, &hp->hp_oldmask);
	pid = clone(host_child, stack + size, flags, hp);
	error = pid == -1 ? errno :
	    __atomic_load_n(&hp->hp_error, __ATOMIC_ACQUIRE);
	host_sigmask(SIG_SETMASK, &hp->hp_oldmask, NULL);
	if (pid > 0 && error != 0 && hp->hp_spawn)
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
	(void)munmap(stack, size);
	errno = saved_errno;
	if (error == 0)
		*pidp = pid;
	return (error);
}
