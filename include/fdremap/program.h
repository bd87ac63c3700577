/*
 * fdremap/program.h: starting real programs with an exact descriptor
 * table, CloudABI's proc_exec() made real on a Linux host.
 *
 * program_spawn_raw() starts a child, program_exec_raw() replaces the
 * calling process.  Given the executable's descriptor execfd, the data
 * bytes and the list fds, the new program's descriptor i is the open file
 * that the caller's descriptor fds[i] refers to, for every i, and every
 * other descriptor is closed: none of the caller's other files, none that
 * another thread opened meanwhile, none of the launcher's own.  Passed
 * descriptors lose close-on-exec; any mapping works (cycles, overlaps,
 * the same source many times).
 *
 * The request is validated through the kernel model (fdremap/kernel.h):
 * the launcher builds a model process whose table mirrors the caller's
 * descriptors that matter and runs the model's proc_exec(), whose image
 * activator starts the real program.  So the errors, and their order,
 * are the model's: E2BIG (datalen >= EXEC_ARG_MAX, or fdslen beyond the
 * caller's highest open descriptor + 1), EFAULT (data or fds unreadable),
 * EBADF (fds[i] not open, the first bad index deciding), EBADF (execfd
 * not open, open for writing, or readable neither by read nor as O_PATH).
 * Then the host's: E2BIG when the strings cannot travel (below), EMFILE
 * when fdslen descriptors do not fit under RLIMIT_NOFILE or when the
 * shuffle needs a temporary (a cycle, or execfd among the numbers to be
 * overwritten) and no number at or above fdslen is free, ENOMEM, and
 * what execveat(2) says (ENOENT, EACCES, ENOEXEC, ETXTBSY, ...).  Every
 * error is reported before the new program runs, with nothing left behind
 * in the caller: no descriptor, no memory, no child (a child that failed
 * is reaped).
 *
 * How the host is asked: a launch first takes every entry of fds for an
 * open descriptor without asking (a question per descriptor would take
 * and drop a reference on its file in a threaded process); a closed one
 * makes the child fail with EBADF before anything runs.  After that, as
 * after any error but EFAULT and ENOMEM, the launch is made once more,
 * the model asking which entries are open (poll(2), and fcntl(2) for
 * what poll cannot see, such as O_PATH), so the error returned is the
 * model's for the caller's table as it is.  A failing launch may so
 * start, and reap, two children.
 *
 * The new table.  From 256 descriptors (to 32,768 for a spawn, 999 for
 * an exec) a launch in turn gives its child a fresh table: the caller
 * sends every listed file through a socket pair of its own (SCM_RIGHTS,
 * 253 a message; the pair is close-on-exec and open only for the
 * launch), the child starts sharing the caller's table (CLONE_FILES),
 * takes a table of its own that holds only the receiving end and what
 * lies below it (close_range(CLOSE_RANGE_UNSHARE), Linux 5.9), closes
 * that, and receives the files, which the kernel installs at the lowest
 * free numbers: 0 .. fdslen-1 in order.  Nothing above the socket in the
 * caller's table is copied and nothing of it closed.  No more than 1,000
 * files are ever in flight: the kernel counts a user's files in flight
 * and refuses SCM_RIGHTS to any of the user's unprivileged processes
 * whose soft RLIMIT_NOFILE (1,024 for most) the count exceeds, so a
 * spawn of more starts its child without CLONE_VFORK and sends the rest
 * while the child receives them, waiting for it to take some before it
 * sends more.  Files the child did not take are dropped from the socket
 * before it is closed (a process another thread forked meanwhile holds a
 * copy of it).  When the caller cannot send (a closed entry, a file
 * SCM_RIGHTS refuses such as an io_uring), or the child cannot unshare
 * so (an older kernel) or does not get every file (a security module
 * refusing one), that child exits having changed nothing of the
 * caller's, and a child with a copy of the caller's table shuffles it
 * with dup2, as below 256 (where the socket costs more than it saves).
 *
 * How the data travels: argv[0] is a name (attr->pa_name, or the file
 * name of execfd), argv[1..] is the data split at each NUL byte (k NUL
 * bytes give k+1 strings; empty data gives none), so the program joins
 * argv[1..] with NULs to get the bytes back.  The environment is empty
 * unless attr->pa_envp gives one.  A NUL-free run longer than 131071
 * bytes (Linux's MAX_ARG_STRLEN of 131072 with its NUL), or strings and
 * pointers past the kernel's total argument limit (a quarter of
 * RLIMIT_STACK, at most 6 MiB, at least 128 KiB, counting argv,
 * environment and the "/dev/fd/N" name the kernel copies) is E2BIG,
 * before anything starts.
 *
 * #! scripts.  Linux runs a script whose descriptor is close-on-exec only
 * by failing with ENOENT (its interpreter could not open /dev/fd/N), and
 * keeps the descriptor open in the interpreter when it is not.  Policy:
 * when execveat() of the close-on-exec executable fails with ENOENT and
 * execfd is not itself one of the passed descriptors, the launcher tries
 * once more with the executable at descriptor fdslen, without
 * close-on-exec.  So a #! script (or a binfmt_misc program) gets exactly
 * one documented extra descriptor, number fdslen: its own file, open as
 * execfd is (read-only or O_PATH); an ELF program never does.  When
 * execfd is passed at its own number (fds[execfd] == execfd) nothing
 * extra is needed or added.  A missing interpreter still fails with
 * ENOENT.
 *
 * The child is started with clone(CLONE_VM | CLONE_VFORK) on a stack of
 * its own, with every signal blocked; its caught signals are reset to
 * SIG_DFL (ignored ones stay ignored: by the kernel, with clone3(2)'s
 * CLONE_CLEAR_SIGHAND, where Linux 5.5 and x86-64 allow, else by the
 * child itself), it restores the caller's mask right before
 * execveat(), allocates nothing, and reports errors through memory
 * shared with the caller.  A child that fails is reaped by a pidfd, so
 * that a waitpid(-1) elsewhere in the process cannot hand its number to
 * another child first: the one made with it (CLONE_PIDFD) when the
 * caller asks for one (pa_pidfd) or clone3 is missing; else, so that a
 * launch that succeeds makes no pidfd only to close it, the child is
 * started with CLONE_CHILD_CLEARTID instead of CLONE_VFORK (the caller
 * waits on that word, which the kernel clears when the child execs or
 * exits), and a failed one waits until the caller has taken a pidfd of
 * it (pidfd_open(2), exact: nobody can reap a running child), then
 * exits; with no descriptor free for that pidfd it is reaped by its
 * pid.  A spawn of 3,072 descriptors or more that a fresh table cannot
 * take (more than 32,768, or a kernel that cannot unshare so; within
 * RLIMIT_NOFILE, without PROGRAM_LISTEN_PID, on a thread that may run
 * on two CPUs or more, with clone3, on a machine that has had a CPU to
 * spare of late: a 1-minute load average at most the online CPUs less
 * a half) starts its child first, without CLONE_VFORK, on another of the
 * calling thread's CPUs: it shuffles while the caller runs the model,
 * then waits for the verdict, takes back the calling thread's CPU
 * affinity and execs, or exits when the model refused (the caller then
 * reaps it before returning the model's error; such a launch so sends
 * the caller a SIGCHLD, as a failed posix_spawn(3) does).  The calling
 * thread keeps every signal blocked and cancellation disabled until the
 * child has exec'd or exited; should its process exit or exec meanwhile,
 * the child notices within 50 ms and exits.  program_exec_raw() runs the same
 * sequence in a thread of the calling process with a descriptor table
 * of its own (clone(CLONE_THREAD | CLONE_VFORK): a copy of the caller's,
 * or a fresh one unshared from it at once, as above): a successful
 * execveat() from it replaces the whole
 * process (same pid), and a failed one leaves the caller's table exactly
 * as it was, so program_exec_raw() can return its error cleanly.  That
 * thread shares the caller's signal handlers, yet none of them ever runs
 * on it: for the length of the exec each caught signal's handler is a
 * trap that runs the caller's handler on the caller's threads and, on
 * the helper, only notes the signal.  As with execve(2), a signal that
 * arrives during a failed exec is then delivered to the calling thread
 * (with its siginfo; real-time signals of one number noted on the helper
 * coalesce), and the new program starts with the caller's mask, its
 * ignored signals ignored and every caught one reset to SIG_DFL.  Exec
 * calls of several threads take turns.
 *
 * Every function returns 0 or an errno value and is safe to call from
 * several threads at once.
 */
#ifndef _FDREMAP_PROGRAM_H_
#define _FDREMAP_PROGRAM_H_

#include <stddef.h>
#include <sys/types.h>

#include <argdata.h>

/*
 * Options of a launch; a NULL attr, or one of all zeros, means all
 * defaults.
 *
 * pa_name	argv[0]; NULL: the file name of execfd (from /proc/self/fd),
 *		or "program" when that is unknown.  Ignored with pa_argv.
 * pa_envp	the environment, a NULL-terminated array; NULL: empty.
 * pa_flags	PROGRAM_SETSID, PROGRAM_SETPGROUP, PROGRAM_CWDFD,
 *		PROGRAM_LISTEN_PID (below);
 *		tests add PROGRAM_TEST_* hooks (fdremap/testing.h).
 * pa_closedby	if not NULL, receives how the child closed the descriptors
 *		it does not pass (PROGRAM_CLOSED_*), for tests.
 * pa_pidfd	if not NULL, receives a pidfd of the spawned child, made
 *		with the child (CLONE_PIDFD, so it cannot name another
 *		process), close-on-exec, the caller's to close; -1 where the
 *		kernel has none (before Linux 5.2).  Ignored by exec.
 * pa_sigmask	the signal mask the program starts with, a const sigset_t *
 *		(void * so that this header needs no POSIX feature macro:
 *		a strict C11 <signal.h> has no sigset_t); NULL: the calling
 *		thread's (a thread of a pool that blocks signals, as
 *		Dispatch's do, would hand its mask on).
 * pa_argv	the whole argument vector, argv[0] included, a
 *		NULL-terminated array, for programs that take strings (the
 *		data must then be empty: EINVAL otherwise); NULL: argv[0]
 *		is the name and argv[1..] the data, as described above.
 *		An empty vector (pa_argv[0] NULL) is EINVAL.
 * pa_cwd	the working directory's path (relative to the caller's),
 *		changed to in the child before the descriptor shuffle;
 *		NULL: the caller's.  Not with PROGRAM_CWDFD (EINVAL).
 * pa_cwdfd	with PROGRAM_CWDFD, a descriptor of the working directory
 *		(open, O_PATH will do), a number of the caller's before the
 *		shuffle: it need not be passed and is not kept.
 * pa_pgroup	with PROGRAM_SETPGROUP, the process group to join:
 *		setpgid(0, pa_pgroup), 0 for a new group led by the child.
 *
 * PROGRAM_LISTEN_PID, for systemd's socket activation (sd_listen_fds(3):
 * the program checks that LISTEN_PID is its own pid before it takes
 * LISTEN_FDS descriptors from 3 up): the program's environment gets
 * LISTEN_PID=<the program's pid>, at its end, and every entry of pa_envp
 * named LISTEN_PID is left out.  Only the child knows its pid before
 * execveat(), so the caller reserves the entry (ten digits, counted so by
 * the E2BIG checks) in memory of its own and the child writes its
 * getpid(2) into it; for program_exec_raw() that is the calling
 * process's pid, which the program keeps.  pa_envp itself is never
 * written.  The caller sets LISTEN_FDS and LISTEN_FDNAMES in pa_envp and
 * passes fds = { 0, 1, 2, the sockets }: the launcher knows nothing else
 * of the protocol.  Its one error of its own: ENOMEM.
 *
 * Errors of these options are the child's, reported as the others are,
 * before the new program runs (the child is reaped): from chdir(2) or
 * fchdir(2) (ENOENT, ENOTDIR, EACCES, EBADF for a closed pa_cwdfd),
 * setsid(2) (EPERM) and setpgid(2) (EPERM: a group of another session,
 * ESRCH: no such group).  With PROGRAM_SETSID and PROGRAM_SETPGROUP
 * both, EINVAL.  program_exec_raw() refuses PROGRAM_SETSID and
 * PROGRAM_SETPGROUP with EINVAL: they change the whole calling process
 * and could not be undone after a failed exec (call setsid(2) or
 * setpgid(2) first); its pa_cwd and pa_cwdfd change only the helper's
 * working directory (it shares no CLONE_FS), so a failure leaves the
 * caller's as it was.
 */
struct program_attr {
	const char	*pa_name;
	char *const	*pa_envp;
	unsigned int	 pa_flags;
	int		*pa_closedby;
	int		*pa_pidfd;
	const void	*pa_sigmask;	/* a const sigset_t * */
	char *const	*pa_argv;
	const char	*pa_cwd;
	int		 pa_cwdfd;
	pid_t		 pa_pgroup;
};

/* pa_flags. */
#define	PROGRAM_SETSID		0x0100	/* a new session: setsid(2) */
#define	PROGRAM_SETPGROUP	0x0200	/* join pa_pgroup: setpgid(2) */
#define	PROGRAM_CWDFD		0x0400	/* pa_cwdfd is the working directory */
#define	PROGRAM_LISTEN_PID	0x0800	/* LISTEN_PID=<its pid> in its environment */

/* How the rest was closed (*pa_closedby). */
#define	PROGRAM_CLOSED_CLOEXECRANGE	1	/* close_range(CLOSE_RANGE_CLOEXEC) */
#define	PROGRAM_CLOSED_RANGE		2	/* close_range() around execfd */
#define	PROGRAM_CLOSED_PROCFS		3	/* walking /proc/self/fd */
#define	PROGRAM_CLOSED_BRUTE		4	/* close() of every number */

/*
 * Start the program at execfd as a child with descriptors fds and the
 * data as its arguments; on success *pid is the child's (wait for it
 * with waitpid(2)).  fds and data need not stay valid after the return.
 */
int	program_spawn_raw(int execfd, const void *data, size_t datalen,
	    const int *fds, size_t fdslen, const struct program_attr *attr,
	    pid_t *pid);

/*
 * Hand a spawned child that nobody will wait for to the background
 * reaper, so that it does not stay a zombie when it exits.  The child is
 * never signalled: it runs to its end, and is then waited for by a
 * thread of this process (started on first use, with every signal
 * blocked) that sleeps in epoll_wait(2) on the pidfds of the children
 * it was given.  pidfd is the child's pidfd (program_attr's pa_pidfd),
 * which the reaper takes over and closes, or -1: then one is opened
 * with pidfd_open(2), which is exact as long as nobody else waits for
 * the child meanwhile; without pidfds (before Linux 5.3) a small thread
 * waits for the child alone.  Returns 0, or ENOMEM or EAGAIN (no thread
 * could be started), with pidfd closed.  Do not wait for the child
 * yourself afterwards.
 */
int	program_reap(pid_t pid, int pidfd);

/*
 * Tell, without reaping it, when a spawned child has exited: fn(arg) is
 * called once, on the reaper thread of program_reap() (no thread per
 * child), as soon as the child's pidfd becomes readable: the child has
 * exited (it is a zombie until someone waits for it, with
 * program_wait(), which then does not block), or it had already, or
 * someone else reaped it.  The registration is one-shot and is removed
 * before fn is called, so once fn runs the reaper no longer refers to
 * pidfd; until then pidfd must stay open (closing it earlier drops the
 * registration silently and fn is never called, its memory lost).  fn
 * runs with every signal blocked and must return promptly: it delays
 * every other child's reaping and every other watcher.  There is no way
 * to take a registration back; to stop waiting, end the child
 * (program_kill()).  Where pidfd is -1 (kernels without pidfds) a small
 * thread waits for pid with waitid(WEXITED | WNOWAIT) instead.
 * Returns 0, or with nothing registered: EINVAL (fn is NULL, or neither
 * a pidfd nor a pid), ENOMEM, EAGAIN (no thread could be started), and
 * what epoll_ctl(2) says: EBADF (pidfd not open), EPERM (not a pidfd nor
 * pollable), EEXIST (this pidfd is already watched), ENOSPC (the user's
 * max_user_watches reached).
 */
int	program_watch(pid_t pid, int pidfd, void (*fn)(void *), void *arg);

/*
 * Whether a launch with this data, argv[0] name (NULL: the executable's
 * file name, counted as the longest one, NAME_MAX bytes) and environment
 * (NULL: none) would pass the argument checks above (for a plain
 * argument vector, pass its strings NUL-joined as the data, argv[0]
 * first, and a name of ""): 0, or E2BIG, as
 * the launch itself would decide on this machine now (RLIMIT_STACK may
 * change).  For callers that must know before a side effect they cannot
 * undo.
 */
int	program_args_fit(const void *data, size_t datalen, const char *name,
	    char *const envp[]);

/*
 * Wait for a spawned child to end and reap it: by its pidfd when pidfd
 * is one (waitid(2) with P_PIDFD), which can never take the status of
 * another process that got the same pid after someone else reaped this
 * child; by pid only when pidfd is -1 or the kernel has no P_PIDFD
 * (before Linux 5.4).  Retries on EINTR.  *status (may be NULL) gets a
 * waitpid(2) status.  The pidfd stays open, the caller's to close.
 * Returns 0, ECHILD (the child was reaped by someone else, or is not
 * this process's), or EINVAL (neither a pidfd nor a pid).
 */
int	program_wait(pid_t pid, int pidfd, int *status);

/*
 * Send signal sig to a spawned child: with pidfd_send_signal(2) when
 * pidfd is one (never to another process with a reused pid), by pid
 * only when pidfd is -1 or the kernel lacks the call (before 5.1).
 * Returns 0, ESRCH (the child has ended, or was reaped), EINVAL (a bad
 * signal, or neither a pidfd nor a pid) or EPERM.
 */
int	program_kill(pid_t pid, int pidfd, int sig);

/*
 * Replace the calling process (its pid stays) with the program at
 * execfd, as program_spawn_raw() would start it.  Returns only on error,
 * with the process and its descriptors as they were.  Other threads of
 * the process end when the new program starts, as with execve(2).
 */
int	program_exec_raw(int execfd, const void *data, size_t datalen,
	    const int *fds, size_t fdslen, const struct program_attr *attr);

/*
 * The argdata forms, shaped like cloudlibc's.  program_spawn() and
 * program_exec() serialise ad (argdata_serialize(), which lists each of
 * its descriptors once, in order of first appearance, and renumbers them
 * 0 .. n-1) and launch the program at fd with those bytes and that list,
 * as the raw forms do with a NULL attr (argv[0] the file name of fd, an
 * empty environment).  EINVAL for a NULL tree; otherwise the raw forms'
 * errors.  program_exec() returns only on error.
 */
int	program_spawn(int fd, const argdata_t *ad, pid_t *pid);
int	program_exec(int fd, const argdata_t *ad);

/*
 * The child's side: *ad is the tree of argv[1 .. argc-1] joined with NUL
 * bytes, in which descriptor index i is this process's descriptor i (as
 * the launcher arranged it).  The bytes are copied and nothing is
 * decoded yet: malformed data shows up as EINVAL from the getters and
 * iterators, as for argdata_from_buffer().  The tree belongs to the
 * library and stays valid until the process ends; calls with the same
 * argc and argv return the same tree.  Returns 0, EINVAL (argc < 0, a
 * NULL argv with arguments, a NULL ad), or ENOMEM.
 */
int	program_getargdata(int argc, char **argv, const argdata_t **ad);

#endif /* !_FDREMAP_PROGRAM_H_ */
