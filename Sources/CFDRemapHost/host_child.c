/*
 * host_child.c: the child that carries out a plan: shuffle the
 * descriptors, close the rest, execveat().
 *
 * It runs in the caller's memory (CLONE_VM) on a stack of its own, with
 * the caller suspended (CLONE_VFORK) and every signal blocked.  It makes
 * system calls directly (host_sys) and calls nothing else: nothing that
 * allocates, takes a lock, writes errno or is instrumented by a
 * sanitizer.  It uses only what host_plan.c prepared and reports a
 * failure in hp_error before it exits.  For a
 * spawn it is a process, for an exec a thread of the caller's process
 * (CLONE_THREAD), so that its execveat() replaces the process.  Either
 * way its descriptor table is its own, so that its failure leaves the
 * caller's untouched: a copy of the caller's (no CLONE_FILES), which it
 * shuffles, or, where the caller could send it the files (a fresh
 * table, host_fresh_send()), a table that it unshares at once from the
 * caller's, keeping nothing of it, and into which it receives them.
 */
#define	_GNU_SOURCE
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"

#ifndef CLOSE_RANGE_UNSHARE
#define	CLOSE_RANGE_UNSHARE	(1U << 1)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define	CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

/*
 * glibc's clone() under its own name: ThreadSanitizer intercepts clone()
 * and treats it as fork(), which a CLONE_VM child cannot survive.
 */
#ifdef __GLIBC__
extern int	__clone(int (*)(void *), void *, int, void *, ...);
#define	host_clone	__clone
#else
#define	host_clone	clone
#endif

HOST_CHILD static bool host_child_callerthere(const struct host_plan *hp);
static void	host_fresh_stream(struct host_plan *hp);

#define	HOST_STACK_SIZE	(64 * 1024)	/* the child's stack */
#define	HOST_AWAIT_NS	50000000L	/* an early child's check, 50 ms */
#define	HOST_KCMP_VM	1		/* kcmp(2): the same memory? */
#define	HOST_STACK_GUARD 4096		/* and a PROT_NONE page below it */

/*
 * The calling thread's signal mask through the system call itself:
 * glibc's sigprocmask() will not block the signals it uses internally,
 * and the child must not take any.
 */
HOST_CHILD static void
host_sigmask(int how, const sigset_t *set, sigset_t *oset)
{

	(void)host_sys(SYS_rt_sigprocmask, how, (long)set, (long)oset,
	    HOST_NSIG / 8, 0);
}

/*
 * Reset every caught signal to SIG_DFL, as posix_spawn does, so that no
 * handler of the caller can run in the child once the caller's mask is
 * back; ignored signals stay ignored (execve keeps them so).  Through
 * the system call, glibc's two internal signals included; elsewhere
 * through sigaction(), which refuses those two.
 */
HOST_CHILD static void
host_child_signals(void)
{
#ifdef HOST_RAW_SIGACTION
	struct host_ksigaction ksa, dfl = { SIG_DFL, 0, NULL, 0 };
	int sig;

	for (sig = 1; sig <= HOST_NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (host_sys(SYS_rt_sigaction, sig, 0, (long)&ksa,
		    HOST_NSIG / 8, 0) != 0 ||
		    ksa.ks_handler == SIG_IGN || ksa.ks_handler == SIG_DFL)
			continue;
		(void)host_sys(SYS_rt_sigaction, sig, (long)&dfl, 0,
		    HOST_NSIG / 8, 0);
	}
#else
	struct sigaction sa;
	int sig;

	for (sig = 1; sig < _NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, NULL, &sa) != 0 ||
		    sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL)
			continue;
		sa.sa_handler = SIG_DFL;
		sa.sa_flags = 0;
		(void)sigaction(sig, &sa, NULL);
	}
#endif
}

/* dup2(from, to) for from != to; the result or -errno. */
HOST_CHILD static long
host_dup2(int from, int to)
{

	return (host_sys(SYS_dup3, from, to, 0, 0, 0));
}

/*
 * An F_DUPFD_CLOEXEC copy of fd at hp_n or above (neither a source, which
 * is open, nor a target, which is below hp_n): EMFILE when there is no
 * room under RLIMIT_NOFILE (F_DUPFD says EINVAL when the minimum itself
 * is past it).
 */
HOST_CHILD static int
host_child_dupfd(const struct host_plan *hp, int fd, int *newfdp)
{
	long r;

	r = host_sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, hp->hp_n, 0, 0);
	if (r < 0)
		return (r == -EINVAL ? EMFILE : (int)-r);
	*newfdp = (int)r;
	return (0);
}

/*
 * One message through a fresh table's socket pair: send the m
 * descriptors fds (SCM_RIGHTS, so the kernel takes a reference to each
 * file as it stands now), or receive m of them into fds (installed at
 * the lowest free numbers, in order, without close-on-exec), waiting
 * for them when wait (as long as the socket's timeout).  Returns 0 or an
 * errno; a short receive is EMFILE, the end of the stream EPIPE.
 */
HOST_CHILD static int
host_child_scmmsg(int sock, bool recv, int *fds, int m, bool wait)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * HOST_SCM_BATCH)];
	} cm;
	struct msghdr mh;
	struct iovec iov;
	char byte = 0;
	int *data = (int *)(void *)CMSG_DATA(&cm.hdr), j;
	long r;

	iov.iov_base = &byte;
	iov.iov_len = 1;
	mh.msg_name = NULL;
	mh.msg_namelen = 0;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)m);
	mh.msg_flags = 0;
	cm.hdr.cmsg_level = SOL_SOCKET;
	cm.hdr.cmsg_type = SCM_RIGHTS;
	cm.hdr.cmsg_len = CMSG_LEN(sizeof(int) * (size_t)m);
	if (!recv) {
		for (j = 0; j < m; j++)
			data[j] = fds[j];
		r = host_sys(SYS_sendmsg, sock, (long)&mh,
		    MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
		return (r < 0 ? (int)-r : r == 1 ? 0 : EIO);
	}
	cm.hdr.cmsg_len = 0;
	r = host_sys(SYS_recvmsg, sock, (long)&mh, wait ? 0 : MSG_DONTWAIT,
	    0, 0);
	if (r < 0)
		return ((int)-r);
	if (r == 0)
		return (EPIPE);
	if (r != 1 || (mh.msg_flags & MSG_CTRUNC) != 0 ||
	    mh.msg_controllen < CMSG_LEN(0) || cm.hdr.cmsg_level != SOL_SOCKET ||
	    cm.hdr.cmsg_type != SCM_RIGHTS ||
	    cm.hdr.cmsg_len != CMSG_LEN(sizeof(int) * (size_t)m))
		return (EMFILE);
	for (j = 0; j < m; j++)
		fds[j] = data[j];
	return (0);
}

/* The fresh table's last entry: n-1, or n for the executable. */
HOST_CHILD static int
host_fresh_top(const struct host_plan *hp)
{

	return (hp->hp_execpassed ? hp->hp_n - 1 : hp->hp_n);
}

/*
 * How many entries the message from entry i carries (HOST_SCM_BATCH but
 * the last): sender and receiver cut the table alike.
 */
HOST_CHILD static int
host_fresh_msglen(int top, int i)
{

	return (top + 1 - i < HOST_SCM_BATCH ? top + 1 - i : HOST_SCM_BATCH);
}

/*
 * The fresh table (hp_fresh): the caller has sent every entry's source
 * in order, then the executable unless it is passed, and this child
 * shares the caller's table.  Take a table of our own holding only what
 * lies below the receiving end and the end itself
 * (close_range(CLOSE_RANGE_UNSHARE): the kernel copies no more), move
 * the end above the targets and close everything below it, and receive:
 * the files land at the lowest free numbers, 0 .. n-1 in order, the
 * executable at n.  Nothing of the caller's is copied that is not closed
 * at once, and nothing of it is closed.  When the caller streams the
 * files (hp_stream: it runs beside this child), wait for each message,
 * HOST_AWAIT_NS at a time while the caller is there, and say how many
 * were taken (hp_recvd), so that it sends more.  HOST_EFRESH, with nothing
 * changed, when the kernel cannot unshare so (before Linux 5.9, a
 * seccomp filter, or PROGRAM_TEST_NOCLOSERANGE); HOST_EFRESHRECV when it
 * could not this time (ENOMEM) or when, the table unshared, the files
 * cannot all be had at their numbers (PROGRAM_TEST_FRESHRECV makes it
 * so); either way the caller's table was not touched.  Else 0, with
 * *execfdp the executable's number.
 */
HOST_CHILD static int
host_child_fresh(struct host_plan *hp, int *execfdp)
{
	struct timeval tv = { 0, HOST_AWAIT_NS / 1000 };
	int fds[HOST_SCM_BATCH], s = hp->hp_sock, top, i, m, j, error;
	long r;

	if ((hp->hp_flags & PROGRAM_TEST_NOCLOSERANGE) != 0)
		return (HOST_EFRESH);
	r = host_sys(SYS_close_range, s + 1, ~0U, CLOSE_RANGE_UNSHARE, 0, 0);
	if (r == -ENOSYS || r == -EINVAL || r == -EPERM)
		return (HOST_EFRESH);
	if (r != 0)
		return (HOST_EFRESHRECV);	/* ENOMEM: this launch only */
	top = host_fresh_top(hp);
	if ((hp->hp_flags & PROGRAM_TEST_FRESHRECV) != 0)
		return (HOST_EFRESHRECV);
	if (s <= top) {
		r = host_sys(SYS_fcntl, s, F_DUPFD_CLOEXEC, top + 1, 0, 0);
		if (r < 0)
			return (HOST_EFRESHRECV);
		s = (int)r;
	}
	if (s > 0 && host_sys(SYS_close_range, 0, s - 1, 0, 0, 0) < 0)
		return (HOST_EFRESHRECV);
	if (hp->hp_stream && host_sys(SYS_setsockopt, s, SOL_SOCKET,
	    SO_RCVTIMEO, (long)&tv, sizeof(tv)) < 0)
		return (HOST_EFRESHRECV);
	for (i = 0; i <= top; i += m) {
		m = host_fresh_msglen(top, i);
		while ((error = host_child_scmmsg(s, true, fds, m,
		    hp->hp_stream)) == EAGAIN && hp->hp_stream &&
		    host_child_callerthere(hp))
			;
		if (error != 0)
			return (HOST_EFRESHRECV);
		for (j = 0; j < m; j++)
			if (fds[j] != i + j)
				return (HOST_EFRESHRECV);
		if (hp->hp_stream) {
			__atomic_store_n(&hp->hp_recvd, i + m,
			    __ATOMIC_RELEASE);
			(void)host_sys(SYS_futex, (long)&hp->hp_recvd,
			    FUTEX_WAKE_PRIVATE, 1, 0, 0);
		}
	}
	(void)host_sys(SYS_close, s, 0, 0, 0, 0);
	hp->hp_freshdone = true;
	*execfdp = hp->hp_execpassed ? hp->hp_execfd : hp->hp_n;
	return (0);
}

/*
 * Run down the list (hp_direct): no source is a target, so each entry is
 * one call.
 */
HOST_CHILD static int
host_child_direct(const struct host_plan *hp)
{
	int i, from;
	long r;

	for (i = 0; i < hp->hp_n; i++) {
		from = hp->hp_list[i];
		if (from == i)
			r = host_sys(SYS_fcntl, i, F_SETFD, 0, 0, 0);
		else
			r = host_dup2(from, i);
		if (r < 0)
			return ((int)-r);
	}
	return (0);
}

/* Run the general shuffle's steps in order. */
HOST_CHILD static int
host_child_steps(const struct host_plan *hp)
{
	const struct host_step *st;
	int temp = -1, error;
	size_t k;
	long r;

	for (k = 0; k < hp->hp_nsteps; k++) {
		st = &hp->hp_steps[k];
		r = 0;
		error = 0;
		switch (st->hs_op) {
		case HOP_SETFD0:
			r = host_sys(SYS_fcntl, st->hs_to, F_SETFD, 0, 0, 0);
			break;
		case HOP_DUP2:
			r = host_dup2(st->hs_from, st->hs_to);
			break;
		case HOP_SAVE:
			if (temp == -1)
				error = host_child_dupfd(hp, st->hs_from, &temp);
			else
				r = host_sys(SYS_dup3, st->hs_from, temp,
				    O_CLOEXEC, 0, 0);
			break;
		case HOP_DUP2TEMP:
			r = host_dup2(temp, st->hs_to);
			break;
		}
		if (r < 0)
			error = (int)-r;
		if (error != 0)
			return (error);
	}
	return (0);
}

/*
 * The shuffle: a fresh table when the caller sent the files (hp_fresh);
 * else the executable moved out of the targets' way first when the plan
 * says so, then down the list or by the steps (planned now if the plan
 * left them to the child).  *execfdp is the executable's number after it.
 */
HOST_CHILD static int
host_child_shuffle(struct host_plan *hp, int *execfdp)
{
	int execfd = hp->hp_execfd, error = 0;

	if (hp->hp_fresh)
		return (host_child_fresh(hp, execfdp));
	if (hp->hp_moveexec)
		error = host_child_dupfd(hp, execfd, &execfd);
	if (error != 0)
		return (error);
	if (!hp->hp_direct)
		host_plan_late(hp);
	error = hp->hp_direct ? host_child_direct(hp) : host_child_steps(hp);
	if (error == 0)
		*execfdp = execfd;
	return (error);
}

/* What the /proc walk closes: lo and up, but keep and the walker. */
struct host_closer {
	int	hc_lo;
	int	hc_keep;
	int	hc_dirfd;
};

HOST_CHILD static int
host_close_cb(int fd, void *arg)
{
	const struct host_closer *hc = arg;

	if (fd >= hc->hc_lo && fd != hc->hc_keep && fd != hc->hc_dirfd)
		(void)host_sys(SYS_close, fd, 0, 0, 0, 0);
	return (0);
}

/* close_range(2) of everything from lo up, except keep (-1: none). */
HOST_CHILD static long
host_closerange_around(unsigned int lo, int keep)
{
	long r;

	if (keep >= 0 && (unsigned int)keep > lo &&
	    (r = host_sys(SYS_close_range, lo, (unsigned int)keep - 1, 0, 0,
	    0)) < 0)
		return (r);
	if (keep >= 0)
		lo = (unsigned int)keep + 1;
	return (host_sys(SYS_close_range, lo, ~0U, 0, 0, 0));
}

/*
 * Where brute-force closing stops: past every descriptor the caller can
 * hold.  Not the soft RLIMIT_NOFILE, which the caller may have lowered
 * below descriptors it holds, but the hard limit, no higher than
 * fs.nr_open (no descriptor is ever above that; the kernel's default
 * when it cannot be read), and past every source (hp_bruteend).  A hard
 * limit lowered below a held descriptor is the one case this misses.
 * Worked out here, only on this last way, so no launch pays for it.
 */
HOST_CHILD static int
host_child_bruteend(const struct host_plan *hp)
{
	struct rlimit rl;
	unsigned long nropen = 1048576, v;
	char buf[24];
	long fd, len, i;

	fd = host_sys(SYS_openat, AT_FDCWD, (long)"/proc/sys/fs/nr_open",
	    O_RDONLY | O_CLOEXEC, 0, 0);
	if (fd >= 0) {
		len = host_sys(SYS_read, fd, (long)buf, sizeof(buf), 0, 0);
		(void)host_sys(SYS_close, fd, 0, 0, 0, 0);
		for (i = 0, v = 0; i < len && buf[i] >= '0' && buf[i] <= '9';
		    i++)
			v = v * 10 + (unsigned long)(buf[i] - '0');
		if (i > 0 && v <= INT_MAX)
			nropen = v;
	}
	if (host_sys(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&rl, 0) != 0)
		rl.rlim_cur = rl.rlim_max = nropen;
	if (rl.rlim_max > nropen)
		rl.rlim_max = nropen;
	if (rl.rlim_max < rl.rlim_cur)
		rl.rlim_max = rl.rlim_cur > INT_MAX ? INT_MAX : rl.rlim_cur;
	return ((int)rl.rlim_max > hp->hp_bruteend ? (int)rl.rlim_max :
	    hp->hp_bruteend);
}

/*
 * Close every descriptor from hp_n up, except the executable (keep, -1
 * when it is passed), which stays open with close-on-exec until
 * execveat().  close_range(CLOSE_RANGE_CLOEXEC) marks them all at once
 * (Linux 5.11); then plain close_range() around keep (5.9); then a walk
 * of /proc/self/fd with getdents64 into a stack buffer; then close() of
 * every number the caller can hold (host_child_bruteend).  The test
 * hooks skip the first ones.
 * Cannot fail: the last way always works.
 */
HOST_CHILD static void
host_child_closerest(struct host_plan *hp, int keep)
{
	uint64_t buf[512];
	struct host_closer hc;
	unsigned int lo = (unsigned int)hp->hp_n;
	int fd, end, how;
	long r;

	if ((hp->hp_flags & PROGRAM_TEST_NOCLOSERANGE) == 0) {
		if ((hp->hp_flags & PROGRAM_TEST_NOCLOEXECRANGE) == 0 &&
		    host_sys(SYS_close_range, lo, ~0U, CLOSE_RANGE_CLOEXEC, 0,
		    0) == 0) {
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
	if ((hp->hp_flags & PROGRAM_TEST_NOPROCFS) == 0 &&
	    (r = host_sys(SYS_openat, AT_FDCWD, (long)"/proc/self/fd",
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0)) >= 0)
		hc.hc_dirfd = (int)r;
	if (hc.hc_dirfd != -1 &&
	    host_fdwalk(hc.hc_dirfd, buf, sizeof(buf), host_close_cb, &hc) ==
	    0) {
		(void)host_sys(SYS_close, hc.hc_dirfd, 0, 0, 0, 0);
		how = PROGRAM_CLOSED_PROCFS;
		goto done;
	}
	end = host_child_bruteend(hp);
	for (fd = hp->hp_n; fd < end; fd++)
		if (fd != keep)
			(void)host_sys(SYS_close, fd, 0, 0, 0, 0);
	how = PROGRAM_CLOSED_BRUTE;
done:
	if (keep >= 0)
		(void)host_sys(SYS_fcntl, keep, F_SETFD, FD_CLOEXEC, 0, 0);
	hp->hp_closedby = how;
}

/* execveat(fd, "", argv, envp, AT_EMPTY_PATH): only returns -errno. */
HOST_CHILD static int
host_child_execveat(const struct host_plan *hp, int fd)
{

	return ((int)-host_sys(SYS_execveat, fd, (long)"", (long)hp->hp_argv,
	    (long)hp->hp_envp, AT_EMPTY_PATH));
}

/*
 * Set the program's mask (the caller's, or pa_sigmask) and execveat() the
 * executable.  The #!
 * policy of program.h: on ENOENT, unless the executable is passed, once
 * more with it at descriptor hp_n without close-on-exec.
 */
HOST_CHILD static int
host_child_exec(const struct host_plan *hp, int execfd)
{
	int error, n = hp->hp_n;
	long r;

	host_sigmask(SIG_SETMASK, &hp->hp_execmask, NULL);
	error = host_child_execveat(hp, execfd);
	if (error != ENOENT || hp->hp_execpassed)
		return (error);
	if (execfd == n)
		r = host_sys(SYS_fcntl, n, F_SETFD, 0, 0, 0);
	else
		r = host_dup2(execfd, n);
	if (r < 0)
		return (r == -EBADF ? EMFILE : (int)-r);
	return (host_child_execveat(hp, n));
}

/*
 * PROGRAM_LISTEN_PID: write this process's pid (the child's for a spawn;
 * for an exec the helper's thread group, the caller's) as decimal digits
 * and a NUL at digits, which the caller reserved (host_listen_env()).
 */
HOST_CHILD static void
host_child_listenpid(char *digits)
{
	char buf[12];
	long pid;
	int n = 0;

	pid = host_sys(SYS_getpid, 0, 0, 0, 0, 0);
	do {
		buf[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid > 0 && n < (int)sizeof(buf));
	while (n > 0)
		*digits++ = buf[--n];
	*digits = '\0';
}

/*
 * What the child does before the shuffle, while every descriptor has
 * its caller's number: the working directory (its own: no CLONE_FS), a
 * new session or a process group.  Returns 0 or the errno.
 */
HOST_CHILD static int
host_child_place(const struct host_plan *hp)
{
	long r = 0;

	if (hp->hp_cwdfd >= 0)
		r = host_sys(SYS_fchdir, hp->hp_cwdfd, 0, 0, 0, 0);
	else if (hp->hp_cwd != NULL)
		r = host_sys(SYS_chdir, (long)hp->hp_cwd, 0, 0, 0, 0);
	if (r >= 0 && hp->hp_setsid)
		r = host_sys(SYS_setsid, 0, 0, 0, 0, 0);
	if (r >= 0 && hp->hp_pgroup >= 0)
		r = host_sys(SYS_setpgid, 0, hp->hp_pgroup, 0, 0, 0);
	return (r < 0 ? (int)-r : 0);
}

/*
 * Whether the caller's process still runs in this child's memory.  Not
 * when it has exited (this child then has another parent) or when
 * another of its threads has exec'd (its memory is then a new one,
 * which kcmp(2) tells; without kcmp only the first is seen).
 */
HOST_CHILD static bool
host_child_callerthere(const struct host_plan *hp)
{
	long r;

	if (host_sys(SYS_getppid, 0, 0, 0, 0, 0) != hp->hp_ppid)
		return (false);
	r = host_sys(SYS_kcmp, host_sys(SYS_getpid, 0, 0, 0, 0, 0),
	    hp->hp_ppid, HOST_KCMP_VM, 0, 0);
	return (r == 0 || r == -ENOSYS || r == -EPERM);
}

/*
 * Wait until the caller has written hp_go, and return it; HOST_GO_ABORT
 * without it when the caller is gone.  The calling thread cannot be
 * interrupted on its way (its signals are blocked, its cancellation
 * disabled), but its whole process can end or exec meanwhile, and then
 * nobody would ever tell this child: so every HOST_AWAIT_NS it checks,
 * and gives up rather than wait forever.
 */
HOST_CHILD static int
host_child_waitgo(struct host_plan *hp)
{
	struct timespec ts = { 0, HOST_AWAIT_NS };
	long r;
	int go;

	while ((go = __atomic_load_n(&hp->hp_go, __ATOMIC_ACQUIRE)) ==
	    HOST_GO_WAIT) {
		r = host_sys(SYS_futex, (long)&hp->hp_go, FUTEX_WAIT_PRIVATE,
		    HOST_GO_WAIT, (long)&ts, 0);
		if (r == -ETIMEDOUT && !host_child_callerthere(hp))
			return (HOST_GO_ABORT);
	}
	return (go);
}

/*
 * An early child, its descriptors ready: wait until the caller has heard
 * the model (hp_go), then take back the caller's CPU affinity and return
 * 0 to exec, or ECANCELED to exit.
 */
HOST_CHILD static int
host_child_await(struct host_plan *hp)
{
	long r;

	if (host_child_waitgo(hp) != HOST_GO_EXEC)
		return (ECANCELED);
	if (hp->hp_migrated && (r = host_sys(SYS_sched_setaffinity, 0,
	    sizeof(hp->hp_cpus), (long)&hp->hp_cpus, 0, 0)) < 0)
		return ((int)-r);
	return (0);
}

/*
 * A serial spawn child without a pidfd has failed: say so (hp_ctid
 * HOST_CTID_HELD, woken as the kernel wakes it) and stay until the
 * caller, which can now take a pidfd of a child that cannot have been
 * reaped by anyone, tells it to exit.
 */
HOST_CHILD static void
host_child_hold(struct host_plan *hp)
{

	__atomic_store_n(&hp->hp_ctid, HOST_CTID_HELD, __ATOMIC_RELEASE);
	(void)host_sys(SYS_futex, (long)&hp->hp_ctid, FUTEX_WAKE, 1, 0, 0);
	(void)host_child_waitgo(hp);
}

/*
 * The child: only returns by exiting (SYS_exit ends this thread only,
 * which for the exec form matters), after storing its error.
 */
HOST_CHILD static int
host_child(void *arg)
{
	struct host_plan *hp = arg;
	sigset_t all;
	int execfd, error;

	if (hp->hp_spawn && !hp->hp_sighandcleared)
		host_child_signals();
	else if (!hp->hp_spawn)
		host_sigtrap_helper();
	if (hp->hp_listenpid != NULL)
		host_child_listenpid(hp->hp_listenpid);
	error = host_child_place(hp);
	if (error == 0)
		error = host_child_shuffle(hp, &execfd);
	if (error == 0) {
		host_child_closerest(hp, hp->hp_execpassed ? -1 : execfd);
		if (hp->hp_early)
			error = host_child_await(hp);
	}
	if (error == 0) {
		error = host_child_exec(hp, execfd);
		memset(&all, 0xff, sizeof(all));
		host_sigmask(SIG_BLOCK, &all, NULL);
	}
	__atomic_store_n(&hp->hp_error, error, __ATOMIC_RELEASE);
	if (error != 0 && hp->hp_stream) {
		/* The caller may be waiting to send more: it stops. */
		__atomic_store_n(&hp->hp_recvd, -1, __ATOMIC_RELEASE);
		(void)host_sys(SYS_futex, (long)&hp->hp_recvd,
		    FUTEX_WAKE_PRIVATE, 1, 0, 0);
	}
	if (error != 0 && hp->hp_holdfail)
		host_child_hold(hp);
	(void)host_sys(SYS_exit, 127, 0, 0, 0, 0);
	return (127);	/* not reached */
}

/*
 * The child's stack: a mapping of HOST_STACK_SIZE with a PROT_NONE guard
 * page below it.  One is kept for the next launch (taken and given back
 * with an atomic exchange, so concurrent launches each get their own),
 * which spares a launch its mmap, mprotect, munmap (and the TLB
 * shootdown munmap costs once the child has run on another CPU) and the
 * page faults of a fresh stack.  NULL when none can be mapped.
 */
static char	*host_stack_cache;

static char *
host_stack_get(void)
{
	const size_t size = HOST_STACK_SIZE + HOST_STACK_GUARD;
	char *stack;

	stack = __atomic_exchange_n(&host_stack_cache, NULL, __ATOMIC_ACQUIRE);
	if (stack != NULL)
		return (stack);
	stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return (NULL);
	(void)mprotect(stack, HOST_STACK_GUARD, PROT_NONE);
	return (stack);
}

/* Keep stack for the next launch, or unmap it when one is kept. */
static void
host_stack_put(char *stack)
{
	char *old;

	old = __atomic_exchange_n(&host_stack_cache, stack, __ATOMIC_RELEASE);
	if (old != NULL)
		(void)munmap(old, HOST_STACK_SIZE + HOST_STACK_GUARD);
}

#ifdef __x86_64__
#ifndef CLONE_CLEAR_SIGHAND
#define	CLONE_CLEAR_SIGHAND	0x100000000ULL	/* Linux 5.5 */
#endif

/* clone3(2)'s argument (linux/sched.h, which glibc's headers clash with). */
struct host_clone_args {
	uint64_t	ca_flags;
	uint64_t	ca_pidfd;
	uint64_t	ca_child_tid;
	uint64_t	ca_parent_tid;
	uint64_t	ca_exit_signal;
	uint64_t	ca_stack;
	uint64_t	ca_stack_size;
	uint64_t	ca_tls;
};

/*
 * A spawn child through clone3(2) with CLONE_CLEAR_SIGHAND, so that the
 * kernel resets its caught signals to SIG_DFL (ignored ones stay) and
 * the child need not read all 64 dispositions itself, and CLONE_PIDFD
 * when pidfdp is not NULL; flags adds CLONE_VFORK, or
 * CLONE_CHILD_CLEARTID with ctidp (the word the kernel zeroes and wakes
 * when the child execs or exits).  The child starts
 * on its stack at the instruction after the system call, with the
 * parent's registers: fn and arg ride in r12 and r13 (kept across the
 * call), and the child calls fn(arg) and exits with its result.  The
 * child's pid, or -errno (ENOSYS before Linux 5.3, EINVAL before 5.5).
 */
static long
host_clone3_spawn(char *stack, size_t size, uint64_t flags, int *pidfdp,
    int *ctidp, int (*fn)(void *), void *arg)
{
	struct host_clone_args ca = {
		.ca_flags = CLONE_VM | CLONE_CLEAR_SIGHAND | flags |
		    (pidfdp != NULL ? CLONE_PIDFD : 0),
		.ca_pidfd = (uint64_t)(uintptr_t)pidfdp,
		.ca_child_tid = (uint64_t)(uintptr_t)ctidp,
		.ca_exit_signal = SIGCHLD,
		.ca_stack = (uint64_t)(uintptr_t)stack,
		.ca_stack_size = size,
	};
	register long r12 __asm__("r12") = (long)fn;
	register long r13 __asm__("r13") = (long)arg;
	long ret;

	__asm__ volatile (
	    "syscall\n\t"
	    "testq %%rax, %%rax\n\t"
	    "jnz 1f\n\t"
	    "xorl %%ebp, %%ebp\n\t"		/* the child: a new frame chain */
	    "movq %%r13, %%rdi\n\t"
	    "callq *%%r12\n\t"
	    "movl %%eax, %%edi\n\t"
	    "movl %[sysexit], %%eax\n\t"
	    "syscall\n\t"
	    "hlt\n"
	    "1:"
	    : "=a" (ret)
	    : "a" ((long)SYS_clone3), "D" (&ca), "S" (sizeof(ca)), "r" (r12),
	      "r" (r13), [sysexit] "i" (SYS_exit)
	    : "rcx", "r11", "memory");
	return (ret);
}
#define	HOST_HAVE_CLONE3
#endif

/* What fdr_host_fresh_launches() tells, for this thread. */
static _Thread_local uint64_t host_fresh_launches;

uint64_t
fdr_host_fresh_launches(void)
{

	return (host_fresh_launches);
}

/* Count a finished child that took a fresh table. */
static void
host_count_fresh(const struct host_plan *hp)
{

	if (__atomic_load_n(&hp->hp_freshdone, __ATOMIC_ACQUIRE))
		host_fresh_launches++;
}

/* Close the child's pidfd, if it has one. */
static void
host_closepidfd(struct host_plan *hp)
{

	if (hp->hp_pidfd >= 0)
		(void)close(hp->hp_pidfd);
	hp->hp_pidfd = -1;
}

#ifdef HOST_HAVE_CLONE3
/* Wait until the kernel has cleared hp_ctid: the child exec'd or exited. */
static void
host_await_ctid(struct host_plan *hp)
{
	int t;

	while ((t = __atomic_load_n(&hp->hp_ctid, __ATOMIC_ACQUIRE)) != 0)
		(void)host_sys(SYS_futex, (long)&hp->hp_ctid, FUTEX_WAIT, t,
		    0, 0);
}

/*
 * Wait for a serial spawn child started without a pidfd (hp_holdfail)
 * until it has exec'd (the kernel zeroes hp_ctid, as CLONE_VFORK would
 * have released the caller) or failed (HOST_CTID_HELD).  A failed one is
 * still running, so nobody can have reaped it: take a pidfd of it, let
 * it exit, and reap it by that pidfd (by its pid only when no
 * descriptor is free for one).  Returns the child's error.
 */
static int
host_await_held(struct host_plan *hp, pid_t pid)
{
	int t, pidfd, error;

	while ((t = __atomic_load_n(&hp->hp_ctid, __ATOMIC_ACQUIRE)) != 0 &&
	    t != HOST_CTID_HELD)
		(void)host_sys(SYS_futex, (long)&hp->hp_ctid, FUTEX_WAIT, t,
		    0, 0);
	error = __atomic_load_n(&hp->hp_error, __ATOMIC_ACQUIRE);
	if (t == 0 && error == 0)
		return (0);	/* exec'd, or killed first: the caller's */
	/* Held, or killed between failing and holding: a zombie. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (t == HOST_CTID_HELD) {
		__atomic_store_n(&hp->hp_go, HOST_GO_ABORT, __ATOMIC_RELEASE);
		(void)host_sys(SYS_futex, (long)&hp->hp_go,
		    FUTEX_WAKE_PRIVATE, 1, 0, 0);
	}
	(void)program_wait(pid, pidfd, NULL);
	if (pidfd >= 0)
		(void)close(pidfd);
	return (error);
}

/*
 * A spawn's child through clone3: with CLONE_VFORK and its pidfd when
 * the caller wants one; else (no pidfd to make and close, which costs
 * as much as a tenth of a small launch) with CLONE_CHILD_CLEARTID, the
 * caller waiting on the word as CLONE_VFORK would have it wait, and a
 * failed child held until host_await_held() has a pidfd of it.  A
 * streamed fresh table's child is started so (with its pidfd when
 * wanted) either way: the caller sends beside it, then waits.  The
 * child's pid, its error in *errorp, or -1 (clone3 or
 * CLONE_CLEAR_SIGHAND missing: the caller falls back to clone).
 */
static pid_t
host_start_clone3(struct host_plan *hp, char *stack, size_t size,
    int *errorp)
{
	uint64_t files = hp->hp_fresh ? CLONE_FILES : 0;
	long r;

	hp->hp_sighandcleared = true;
	hp->hp_holdfail = !hp->hp_wantpidfd;
	hp->hp_ppid = getpid();
	if (hp->hp_holdfail || hp->hp_stream) {
		hp->hp_go = HOST_GO_WAIT;
		hp->hp_ctid = HOST_CTID_RUN;
		r = host_clone3_spawn(stack, size, CLONE_CHILD_CLEARTID | files,
		    hp->hp_holdfail ? NULL : &hp->hp_pidfd, &hp->hp_ctid,
		    host_child, hp);
	} else
		r = host_clone3_spawn(stack, size, CLONE_VFORK | files,
		    &hp->hp_pidfd, NULL, host_child, hp);
	if (r < 0) {
		hp->hp_sighandcleared = false;
		hp->hp_holdfail = false;
		return (-1);
	}
	if (hp->hp_stream)
		host_fresh_stream(hp);
	if (hp->hp_holdfail)
		*errorp = host_await_held(hp, (pid_t)r);
	else {
		host_await_ctid(hp);
		*errorp = __atomic_load_n(&hp->hp_error, __ATOMIC_ACQUIRE);
	}
	return ((pid_t)r);
}
#endif

/* The kernel cannot unshare a table by close_range: no fresh tables. */
static int	host_fresh_broken;

/*
 * Empty a fresh table's receiving end of the files still in flight: a
 * receive without room for descriptors makes the kernel drop them
 * (MSG_CTRUNC), so none waits in the socket after we close it.  Closing
 * alone would not do: a process that another thread forked meanwhile
 * holds a copy of the end, and with it every file that was not
 * received, for as long as it lives (a pipe's write end never closed).
 */
static void
host_fresh_drain(int sock)
{
	struct msghdr mh;
	struct iovec iov;
	char byte;

	iov.iov_base = &byte;
	iov.iov_len = 1;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	while (recvmsg(sock, &mh, MSG_DONTWAIT) > 0)
		;
}

/* The fresh table's entries i .. i+m-1: the list's, then the executable. */
static void
host_fresh_batch(const struct host_plan *hp, int *fds, int i, int m)
{
	int j;

	for (j = 0; j < m; j++)
		fds[j] = i + j < hp->hp_n ? hp->hp_list[i + j] : hp->hp_execfd;
}

/*
 * The fresh table's sending half, in the caller (host_child_fresh() is
 * the other): a socket pair of the caller's own, close-on-exec, and
 * every entry's source sent through it in order, then the executable
 * unless it is passed, HOST_SCM_BATCH to a message, so that the kernel
 * holds each file as the list names it now.  Only for a serial launch
 * that host_fresh_likely() allows whose table and socket fit under
 * RLIMIT_NOFILE.  At most HOST_FRESH_INFLIGHT are sent now: a spawn of
 * more keeps the sending end (hp_stream, hp_sendsock, hp_sent) and sends
 * the rest once its child runs (host_fresh_stream()).  Sets hp_fresh and
 * hp_sock (the receiving end); when anything fails (no socket, a source
 * that is closed or that the kernel will not pass, such as an io_uring,
 * the in-flight quota) closes both, dropping what was sent, and leaves
 * hp_fresh false: the child then shuffles a copy of the caller's table,
 * as it always could.
 */
static void
host_fresh_send(struct host_plan *hp)
{
	int fds[HOST_SCM_BATCH], sv[2], top = host_fresh_top(hp), i, m;
	struct rlimit rl;

	if (!host_fresh_likely((size_t)hp->hp_n, hp->hp_flags, hp->hp_spawn) ||
	    getrlimit(RLIMIT_NOFILE, &rl) != 0 || (rlim_t)top + 2 > rl.rlim_cur)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return;
	for (i = 0; i <= top; i += m) {
		m = host_fresh_msglen(top, i);
		if (i + m > HOST_FRESH_INFLIGHT)
			break;
		host_fresh_batch(hp, fds, i, m);
		if (host_child_scmmsg(sv[0], false, fds, m, false) != 0) {
			(void)close(sv[0]);
			host_fresh_drain(sv[1]);
			(void)close(sv[1]);
			return;
		}
	}
	hp->hp_stream = i <= top;
	if (hp->hp_stream) {
		hp->hp_sendsock = sv[0];
		hp->hp_sent = i;
		hp->hp_recvd = 0;
	} else
		(void)close(sv[0]);
	hp->hp_sock = sv[1];
	hp->hp_fresh = true;
}

/*
 * The rest of a streamed fresh table (hp_stream), sent while the child
 * receives: before each message, wait until the child has taken enough
 * (hp_recvd) that no more than HOST_FRESH_INFLIGHT are in flight.  Stop
 * when the child has stopped (hp_recvd -1, or gone: hp_ctid cleared or
 * held) or a send fails (a source closed meanwhile).  Either way the
 * socket is then shut for writing, so that a child still receiving
 * finds the end of its files and exits (HOST_EFRESHRECV): the caller
 * starts a child with a copy instead.
 */
static void
host_fresh_stream(struct host_plan *hp)
{
	struct timespec ts = { 0, HOST_AWAIT_NS };
	int fds[HOST_SCM_BATCH], top = host_fresh_top(hp), i, m, r, t;

	for (i = hp->hp_sent; i <= top; i += m) {
		m = host_fresh_msglen(top, i);
		while (i - (r = __atomic_load_n(&hp->hp_recvd,
		    __ATOMIC_ACQUIRE)) + m > HOST_FRESH_INFLIGHT) {
			t = __atomic_load_n(&hp->hp_ctid, __ATOMIC_ACQUIRE);
			if (r < 0 || t == 0 || t == HOST_CTID_HELD)
				goto out;
			(void)host_sys(SYS_futex, (long)&hp->hp_recvd,
			    FUTEX_WAIT_PRIVATE, r, (long)&ts, 0);
		}
		host_fresh_batch(hp, fds, i, m);
		if (host_child_scmmsg(hp->hp_sendsock, false, fds, m, false) !=
		    0)
			break;
	}
out:
	(void)shutdown(hp->hp_sendsock, SHUT_WR);
	(void)close(hp->hp_sendsock);
	hp->hp_sendsock = -1;
}

/*
 * Whether a serial launch of n descriptors with these flags, a spawn or
 * an exec, would try a fresh table: then an early child (which shuffles
 * a copy of the caller's table) would only be slower.  Only a spawn
 * streams (an exec's helper is a thread the caller waits for), so an
 * exec's table and executable must fit in flight at once.
 */
bool
host_fresh_likely(size_t n, unsigned int flags, bool spawn)
{
#ifdef HOST_HAVE_CLONE3
	size_t max = spawn ? HOST_FRESH_MAX : HOST_FRESH_INFLIGHT - 1;
#else
	size_t max = HOST_FRESH_INFLIGHT - 1;	/* no streaming */
#endif

	return ((flags & PROGRAM_TEST_NOFRESH) == 0 && n >= HOST_FRESH_MIN &&
	    n <= max && !__atomic_load_n(&host_fresh_broken, __ATOMIC_RELAXED));
}

/*
 * Close the fresh table's socket: the sending end if a stream left it
 * open, and the receiving end, drained unless the child took everything.
 */
static void
host_fresh_close(struct host_plan *hp)
{

	if (hp->hp_fresh) {
		if (hp->hp_sendsock >= 0)
			(void)close(hp->hp_sendsock);
		if (!__atomic_load_n(&hp->hp_freshdone, __ATOMIC_ACQUIRE))
			host_fresh_drain(hp->hp_sock);
		(void)close(hp->hp_sock);
	}
	hp->hp_fresh = false;
	hp->hp_stream = false;
	hp->hp_sock = -1;
	hp->hp_sendsock = -1;
}

/*
 * One start of the child (see host_start()), every signal blocked: its
 * pid and error in *errorp, or -1 with clone's errno there.  A failed
 * spawn child has been reaped.
 */
static pid_t
host_start_once(struct host_plan *hp, char *stack, size_t size, int *errorp)
{
	int flags, error = 0;
	pid_t pid = -1;

	if (hp->hp_spawn)
		flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
	else
		flags = CLONE_VM | CLONE_VFORK | CLONE_THREAD | CLONE_SIGHAND |
		    CLONE_SYSVSEM;
	if (hp->hp_fresh)
		flags |= CLONE_FILES;
	hp->hp_error = 0;
	hp->hp_pidfd = -1;
	hp->hp_sighandcleared = false;
	hp->hp_holdfail = false;
#ifdef HOST_HAVE_CLONE3
	if (hp->hp_spawn)
		pid = host_start_clone3(hp, stack, size, &error);
#endif
	if (pid == -1 && hp->hp_stream) {
		/* No clone3: the files that are not sent never will be. */
		host_fresh_close(hp);
		flags &= ~CLONE_FILES;
	}
	if (pid == -1) {
		pid = host_clone(host_child, stack + size, flags, hp,
		    &hp->hp_pidfd);
		if (pid == -1 && errno == EINVAL && hp->hp_spawn) {
			/* Before Linux 5.2: no pidfd. */
			hp->hp_pidfd = -1;
			pid = host_clone(host_child, stack + size,
			    flags & ~CLONE_PIDFD, hp, NULL);
		}
		error = pid == -1 ? errno :
		    __atomic_load_n(&hp->hp_error, __ATOMIC_ACQUIRE);
	}
	if (pid > 0)
		host_count_fresh(hp);
	if (pid > 0 && error != 0 && hp->hp_spawn && !hp->hp_holdfail) {
		(void)program_wait(pid, hp->hp_pidfd, NULL);
		host_closepidfd(hp);
	}
	*errorp = error;
	return (pid);
}

/*
 * Start the child on a fresh stack, every signal blocked around the
 * clone, and wait until it has exec'd or exited (CLONE_VFORK, or its
 * clear-tid word).  A spawn child that fails is reaped by a pidfd,
 * never by a pid that someone else's waitpid(-1) could have freed for
 * reuse meanwhile: the one made with the child (CLONE_PIDFD) when
 * hp_wantpidfd or without clone3, else one taken while the failed child
 * waits.  Where it can, the child gets a fresh table (host_fresh_send());
 * one that could not have it has changed nothing of the caller's, and a
 * child is started again the ordinary way.  For a spawn, *pidp gets the
 * child, and hp_pidfd its pidfd when hp_wantpidfd (-1 on kernels without
 * CLONE_PIDFD).  Returns 0 or the child's (or clone's) errno; the
 * caller's errno is kept.
 */
int
host_start(struct host_plan *hp, pid_t *pidp)
{
	const size_t size = HOST_STACK_SIZE + HOST_STACK_GUARD;
	sigset_t all;
	char *stack;
	int error, saved_errno = errno;
	pid_t pid;

	stack = host_stack_get();
	if (stack == NULL) {
		error = errno;
		errno = saved_errno;
		return (error);
	}
	hp->hp_fresh = false;
	hp->hp_stream = false;
	hp->hp_sock = -1;
	hp->hp_sendsock = -1;
	host_fresh_send(hp);
	memset(&all, 0xff, sizeof(all));	/* the kernel ignores 9 and 19 */
	host_sigmask(SIG_BLOCK, &all, &hp->hp_oldmask);
	if (!hp->hp_setmask)
		hp->hp_execmask = hp->hp_oldmask;
	if (!hp->hp_spawn)
		host_sigtrap_arm();
	pid = host_start_once(hp, stack, size, &error);
	if (pid > 0 && (error == HOST_EFRESH || error == HOST_EFRESHRECV)) {
		if (error == HOST_EFRESH &&
		    (hp->hp_flags & PROGRAM_TEST_NOCLOSERANGE) == 0)
			__atomic_store_n(&host_fresh_broken, 1,
			    __ATOMIC_RELAXED);
		host_fresh_close(hp);
		pid = host_start_once(hp, stack, size, &error);
	}
	host_fresh_close(hp);
	if (!hp->hp_spawn)
		host_sigtrap_disarm();
	host_sigmask(SIG_SETMASK, &hp->hp_oldmask, NULL);
	if (error == 0 && hp->hp_spawn && !hp->hp_wantpidfd)
		host_closepidfd(hp);
	host_stack_put(stack);
	errno = saved_errno;
	if (error == 0)
		*pidp = pid;
	return (error);
}

#ifdef HOST_HAVE_CLONE3
/* clone3 or CLONE_CLEAR_SIGHAND missing: no early child from now on. */
static int	host_early_broken;

/*
 * Move the early child to a CPU the caller may use but is not on, so
 * that the two really run at once: the scheduler leaves a new task on
 * its parent's CPU, where it would wait for the caller to sleep.  The
 * child takes the caller's whole affinity back before it execs.
 */
static void
host_early_migrate(struct host_plan *hp)
{
	cpu_set_t others = hp->hp_cpus;
	int cpu = sched_getcpu();

	hp->hp_migrated = false;
	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return;
	CPU_CLR(cpu, &others);
	if (CPU_COUNT(&others) > 0 &&
	    sched_setaffinity(hp->hp_pid, sizeof(others), &others) == 0)
		hp->hp_migrated = true;
}

/*
 * Whether the machine has had no CPU to spare of late: a 1-minute load
 * average (sysinfo(2), one system call) above the online CPUs less a
 * half, the caller's own thread counted.  An early child moved to a CPU
 * that is busy runs on a share of it while the caller waits for it:
 * beside two busy loops on this two-CPU machine, 1.17-1.18x prebuilt
 * posix_spawn at 10,000 descriptors early against 0.82x in turn.
 */
static bool
host_cpus_busy(void)
{
	static long online;
	struct sysinfo si;
	long n;

	n = __atomic_load_n(&online, __ATOMIC_RELAXED);
	if (n <= 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n <= 0)
			return (false);
		__atomic_store_n(&online, n, __ATOMIC_RELAXED);
	}
	if (sysinfo(&si) != 0)
		return (false);
	/* loads[] are fixed point with SI_LOAD_SHIFT (16) fraction bits. */
	return ((double)si.loads[0] / 65536.0 > (double)n - 0.5);
}

/*
 * Start hp's child early: beside the caller (no CLONE_VFORK), on another
 * CPU, so that it shuffles and closes while the caller runs the model;
 * it then waits for host_finish_early().  Every signal of the calling
 * thread stays blocked until then, so that no handler can leave the
 * child waiting (and it gives up by itself if the calling thread
 * vanishes).  ENOSYS, with nothing started, when the calling thread
 * may run on one CPU only (the two could not overlap), when the machine
 * has had no CPU to spare (host_cpus_busy(); PROGRAM_TEST_EARLY does
 * not ask) or the kernel lacks clone3; else 0 with hp_pid set, or the
 * errno of the start (the caller then launches the ordinary way, which
 * reports clone's own error).  The caller's errno is kept.
 */
int
host_start_early(struct host_plan *hp)
{
	const size_t size = HOST_STACK_SIZE + HOST_STACK_GUARD;
	sigset_t all;
	int saved_errno = errno;
	long r;

	if (__atomic_load_n(&host_early_broken, __ATOMIC_RELAXED) ||
	    sched_getaffinity(0, sizeof(hp->hp_cpus), &hp->hp_cpus) != 0 ||
	    CPU_COUNT(&hp->hp_cpus) < 2 ||
	    ((hp->hp_flags & PROGRAM_TEST_EARLY) == 0 && host_cpus_busy())) {
		errno = saved_errno;
		return (ENOSYS);
	}
	hp->hp_ppid = getpid();
	hp->hp_stack = host_stack_get();
	if (hp->hp_stack == NULL) {
		errno = saved_errno;
		return (ENOMEM);
	}
	hp->hp_early = true;
	hp->hp_error = 0;
	hp->hp_pidfd = -1;
	hp->hp_go = HOST_GO_WAIT;
	hp->hp_ctid = -1;
	hp->hp_sighandcleared = true;
	memset(&all, 0xff, sizeof(all));
	host_sigmask(SIG_BLOCK, &all, &hp->hp_oldmask);
	if (!hp->hp_setmask)
		hp->hp_execmask = hp->hp_oldmask;
	r = host_clone3_spawn(hp->hp_stack, size, CLONE_CHILD_CLEARTID,
	    &hp->hp_pidfd, &hp->hp_ctid, host_child, hp);
	if (r < 0) {
		if (r == -ENOSYS || r == -EINVAL)
			__atomic_store_n(&host_early_broken, 1,
			    __ATOMIC_RELAXED);
		host_sigmask(SIG_SETMASK, &hp->hp_oldmask, NULL);
		host_stack_put(hp->hp_stack);
		hp->hp_stack = NULL;
		hp->hp_early = false;
		errno = saved_errno;
		return ((int)-r);
	}
	hp->hp_pid = (pid_t)r;
	host_early_migrate(hp);
	errno = saved_errno;
	return (0);
}

/*
 * Tell the early child what the model decided (HOST_GO_EXEC or
 * HOST_GO_ABORT) and wait until it has exec'd or exited (the kernel
 * zeroes hp_ctid at either, and wakes it as a shared futex).  A child
 * that failed, or was told to stop, is reaped by its pidfd; hp_pidfd is
 * kept only for a started child that hp_wantpidfd.  Then the caller's
 * mask is back.  Returns the child's error for HOST_GO_EXEC, else 0;
 * the caller's errno is kept.
 */
int
host_finish_early(struct host_plan *hp, int go)
{
	int t, error = 0, saved_errno = errno;

	__atomic_store_n(&hp->hp_go, go, __ATOMIC_RELEASE);
	(void)host_sys(SYS_futex, (long)&hp->hp_go, FUTEX_WAKE_PRIVATE, 1,
	    0, 0);
	while ((t = __atomic_load_n(&hp->hp_ctid, __ATOMIC_ACQUIRE)) != 0)
		(void)host_sys(SYS_futex, (long)&hp->hp_ctid, FUTEX_WAIT, t,
		    0, 0);
	if (go == HOST_GO_EXEC)
		error = __atomic_load_n(&hp->hp_error, __ATOMIC_ACQUIRE);
	host_count_fresh(hp);
	host_sigmask(SIG_SETMASK, &hp->hp_oldmask, NULL);
	if (error != 0 || go != HOST_GO_EXEC) {
		(void)program_wait(hp->hp_pid, hp->hp_pidfd, NULL);
		host_closepidfd(hp);
	} else if (!hp->hp_wantpidfd)
		host_closepidfd(hp);
	host_stack_put(hp->hp_stack);
	hp->hp_stack = NULL;
	hp->hp_early = false;
	errno = saved_errno;
	return (error);
}
#else
/* Without clone3: never early. */
int
host_start_early(struct host_plan *hp __attribute__((unused)))
{

	return (ENOSYS);
}

int
host_finish_early(struct host_plan *hp __attribute__((unused)),
    int go __attribute__((unused)))
{

	return (ENOSYS);
}
#endif
