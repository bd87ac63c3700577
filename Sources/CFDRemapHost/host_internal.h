/*
 * host_internal.h: what the host launcher's files share.
 *
 * A launch goes caller -> model -> activator -> child:
 *   host_model.c	mirrors the caller's descriptors in a model process
 *			and runs the model's proc_exec()
 *   host_plan.c	the activator's planning: argv, environment and the
 *			descriptor shuffle, all allocated before the child
 *   host_child.c	the child that carries the plan out, and its start
 *   host_program.c	the raw entry points and the image activator
 *   host_argdata.c	the argdata entry points and the child's reader
 *   host_reaper.c	the background reaper of children nobody waits for
 *   host_wait.c		waiting and signalling by pidfd
 *   host_sigtrap.c	the caller's signal handlers kept off the exec helper
 *   host_listen.c	the environment of PROGRAM_LISTEN_PID
 */
#ifndef _HOST_INTERNAL_H_
#define _HOST_INTERNAL_H_

#include <sys/syscall.h>
#include <sched.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include <fdremap/kernel.h>
#include <fdremap/program.h>
#include <fdremap/testing.h>

/*
 * The child runs in the caller's memory, so it must not run sanitizer
 * instrumentation or interceptors (they keep per-thread state that the
 * child would corrupt): its functions carry HOST_CHILD and make system
 * calls only through host_sys(), which on x86-64 and AArch64 is the
 * instruction itself and never writes errno.
 */
#if defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
#define	HOST_CHILD	__attribute__((disable_sanitizer_instrumentation))
#elif __has_attribute(no_sanitize)
#define	HOST_CHILD \
	__attribute__((no_sanitize("address", "thread", "undefined")))
#endif
#endif
#ifndef HOST_CHILD
#define	HOST_CHILD
#endif

/* A system call: the result, or -errno. */
HOST_CHILD static inline long
host_sys(long n, long a, long b, long c, long d, long e)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	long ret;

	__asm__ volatile ("syscall" : "=a" (ret) : "a" (n), "D" (a), "S" (b),
	    "d" (c), "r" (r10), "r" (r8) : "rcx", "r11", "memory");
	return (ret);
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;

	__asm__ volatile ("svc 0" : "+r" (x0) : "r" (x8), "r" (x1), "r" (x2),
	    "r" (x3), "r" (x4) : "memory", "cc");
	return (x0);
#else
	long ret = syscall(n, a, b, c, d, e);

	return (ret == -1 ? -errno : ret);
#endif
}

#define	HOST_NSIG	64		/* the kernel's signals: 1 .. 64 */

/* The kernel's struct sigaction, where it has sa_restorer. */
#if defined(__x86_64__) || defined(__aarch64__)
#define	HOST_RAW_SIGACTION
struct host_ksigaction {
	void		(*ks_handler)(int);
	unsigned long	  ks_flags;
	void		(*ks_restorer)(void);
	uint64_t	  ks_mask;
};
#endif

/* What the image activator needs besides the image_args. */
struct host_launch {
	const struct program_attr *hl_attr;
	unsigned int	 hl_flags;	/* attr's PROGRAM_TEST_* */
	bool		 hl_spawn;	/* spawn a child, or exec */
	bool		 hl_fdsfault;	/* fds could not be read to mirror */
	pid_t		 hl_pid;	/* the child, after a spawn */
	struct host_plan *hl_early;	/* a child started before the model */
	int		*hl_kfds;	/* its list, as the child read it */
	const int	*hl_list;	/* the list the model read (our copy) */
	bool		 hl_released;	/* the activator let it go on */
	bool		 hl_exact;	/* the model asks which entries are open */
	bool		 hl_guessed;	/* it took them all for open instead */
};

/*
 * The payload of the mirror's files: the real descriptor the executable's
 * file stands for (-1 for the one file every other slot shares).
 */
struct hostfile {
	int			 hf_fd;
	struct host_launch	*hf_launch;
};

/*
 * host_program.c: the activator that starts the real program, and the
 * launch of both forms (a spawn with *pid when spawn, else an exec).
 */
extern const struct fileops host_fileops FDR_SYM(host_fileops);
int	host_launch(int execfd, const void *data, size_t datalen,
	    const int *fds, size_t fdslen, const struct program_attr *attr,
	    bool spawn, pid_t *pid) FDR_SYM(host_launch);

/* host_model.c */
int	host_model_exec(struct host_launch *hl, int execfd, const void *data,
	    size_t datalen, const int *fds, size_t fdslen) FDR_SYM(host_model_exec);
HOST_CHILD int host_fdwalk(int dirfd, void *buf, size_t buflen,
	    int (*fn)(int fd, void *arg), void *arg) FDR_SYM(host_fdwalk);

/*
 * A serial launch of HOST_FRESH_MIN to HOST_FRESH_MAX descriptors gives
 * its child a fresh table instead (host_child.c): the caller sends every
 * file through a socket pair of its own, and the child, started sharing
 * the caller's table (CLONE_FILES), takes a table of its own holding only
 * the receiving end (close_range(CLOSE_RANGE_UNSHARE), Linux 5.9) and
 * receives the files at 0 .. n-1.  No copy of the caller's table and no
 * closing of it: below the minimum the socket costs more than that saves
 * (benchmarks/interleaved, random lists, this machine: 1.06x the floor at
 * 128 against 1.04x shuffling a copy, even at 200, 1.02x against 1.04x
 * at 400).  No more than HOST_FRESH_INFLIGHT files are ever in flight:
 * the kernel counts a user's files in flight and refuses SCM_RIGHTS to
 * any of the user's unprivileged processes whose soft RLIMIT_NOFILE
 * (1,024 for most) that count exceeds, so more would make other
 * programs' descriptor passing fail for the length of the launch.  A
 * spawn of more (hp_stream, up to HOST_FRESH_MAX) starts its child
 * without CLONE_VFORK and the caller sends the rest while the child
 * receives, waiting for it to take some before it sends more.
 */
#ifndef HOST_FRESH_MIN
#define	HOST_FRESH_MIN	256
#endif
#define	HOST_FRESH_INFLIGHT 1000
#define	HOST_FRESH_MAX	32768

/* SCM_RIGHTS takes at most HOST_SCM_BATCH (SCM_MAX_FD) to a message. */
#define	HOST_SCM_BATCH	253

/*
 * hp_error: the fresh table could not be had, nothing of the caller's
 * changed: the kernel cannot unshare so (HOST_EFRESH, for good), or this
 * launch's files did not all arrive (HOST_EFRESHRECV: an LSM refusing a
 * file, a limit lowered meanwhile).  Either way a child with a copy of
 * the caller's table is started instead.
 */
#define	HOST_EFRESH	(-2)
#define	HOST_EFRESHRECV	(-3)

/* One step of the descriptor shuffle, run by the child in order. */
enum host_op {
	HOP_SETFD0,	/* fcntl(to, F_SETFD, 0): an identity entry */
	HOP_DUP2,	/* dup2(from, to) */
	HOP_SAVE,	/* temp = close-on-exec copy of from, at n or above */
	HOP_DUP2TEMP,	/* dup2(temp, to) */
};

struct host_step {
	int	hs_op;
	int	hs_from;
	int	hs_to;
};

/*
 * Everything the child needs, allocated by the caller before the child
 * starts, and the two words the child writes back (hp_error and
 * hp_closedby: the only memory it writes outside its own stack, besides
 * the suspended caller's errno, which the caller restores).  An early
 * child (hp_early) runs beside the caller while the model decides: the
 * caller then fills hp_argv, hp_envp and hp_name and publishes them with
 * hp_go (release), and the child reads them only after it has seen
 * HOST_GO_EXEC (acquire).
 */
struct host_plan {
	const int	*hp_list;	/* the list (outlives the child) */
	bool		 hp_latesteps;	/* the child plans hp_steps if needed */
	bool		 hp_fresh;	/* a fresh table: the files sent, */
	int		 hp_sock;	/* to be received from here */
	bool		 hp_freshdone;	/* written by the child: it did */
	bool		 hp_stream;	/* more than fit in flight: the caller */
	int		 hp_sendsock;	/* sends the rest from here, */
	int		 hp_sent;	/* from this entry on, */
	int		 hp_recvd;	/* as the child says it took them
					   (-1: it stopped) */
	bool		 hp_direct;	/* else run down the list, or */
	struct host_step *hp_steps;	/* the steps, in order */
	size_t		 hp_nsteps;	/* 0: not planned yet */
	int		*hp_src;	/* their memory: the list's copy */
	int		*hp_readers;	/* and each target's readers */
	int		 hp_n;		/* descriptors passed: 0 .. n-1 */
	int		 hp_execfd;	/* the executable, before the shuffle */
	bool		 hp_execpassed;	/* it is passed at its own number */
	bool		 hp_moveexec;	/* a target: moved to n or above first */
	int		 hp_bruteend;	/* brute force closes below this */
	unsigned int	 hp_flags;	/* PROGRAM_TEST_* */
	bool		 hp_spawn;	/* a child process (not an exec thread) */
	bool		 hp_sighandcleared; /* clone3 reset caught signals */
	char		**hp_argv;	/* name, then the data's strings */
	char *const	*hp_envp;
	char		*hp_name;	/* owned copy of argv[0], or NULL */
	sigset_t	 hp_oldmask;	/* the caller's mask, restored at exec */
	int		 hp_error;	/* written by the child */
	int		 hp_closedby;	/* written by the child */
	int		 hp_pidfd;	/* CLONE_PIDFD: written by clone */
	bool		 hp_wantpidfd;	/* make a pidfd with the child */
	bool		 hp_setmask;	/* hp_execmask given, not the caller's */
	sigset_t	 hp_execmask;	/* the mask at execveat() */
	const char	*hp_cwd;	/* chdir() first, or NULL */
	int		 hp_cwdfd;	/* fchdir() first, or -1 */
	bool		 hp_setsid;	/* setsid() first */
	pid_t		 hp_pgroup;	/* setpgid(0, hp_pgroup) first, or -1 */
	bool		 hp_ownargv;	/* hp_argv is ours (not pa_argv) */
	bool		 hp_early;	/* started before the model decided */
	int		 hp_go;		/* HOST_GO_*: written by the caller */
	int		 hp_ctid;	/* CLONE_CHILD_CLEARTID: 0 once gone,
					   HOST_CTID_HELD: failed, waiting */
	bool		 hp_holdfail;	/* on failure wait for hp_go first */
	pid_t		 hp_pid;	/* the early child */
	char		*hp_stack;	/* and its stack */
	pid_t		 hp_ppid;	/* the caller's process, watched */
	bool		 hp_migrated;	/* moved off the caller's CPU, */
	cpu_set_t	 hp_cpus;	/* from the caller's affinity */
	char		*hp_listenpid;	/* PROGRAM_LISTEN_PID: the child's
					   digits go here, or NULL */
};

/* hp_go: what an early child does after its shuffle. */
#define	HOST_GO_WAIT	0	/* wait: the model has not decided */
#define	HOST_GO_EXEC	1	/* the model accepted: execveat() */
#define	HOST_GO_ABORT	2	/* it refused: exit */

/* hp_ctid: a serial spawn child without a pidfd (hp_holdfail). */
#define	HOST_CTID_RUN	(-1)	/* running; the kernel zeroes it at exec */
#define	HOST_CTID_HELD	(-2)	/* failed: waits for hp_go to exit */

/* host_plan.c */
int	host_plan_args(struct host_plan *hp, const struct image_args *args,
	    const struct program_attr *attr, int execfd) FDR_SYM(host_plan_args);
int	host_plan_attr(struct host_plan *hp, const struct program_attr *attr)
	    FDR_SYM(host_plan_attr);
int	host_plan_fds(struct host_plan *hp, const int *list, int n,
	    int execfd)
	    FDR_SYM(host_plan_fds);
HOST_CHILD void host_plan_late(struct host_plan *hp) FDR_SYM(host_plan_late);
void	host_plan_free(struct host_plan *hp) FDR_SYM(host_plan_free);

/*
 * host_sigtrap.c: the caller's handlers kept off the exec form's helper:
 * armed by the caller before the helper starts (every signal blocked),
 * announced by the helper first thing, disarmed by the caller after a
 * failed exec, which then has the signals the helper took queued.
 */
void	host_sigtrap_arm(void) FDR_SYM(host_sigtrap_arm);
HOST_CHILD void host_sigtrap_helper(void) FDR_SYM(host_sigtrap_helper);
void	host_sigtrap_disarm(void) FDR_SYM(host_sigtrap_disarm);

/* host_listen.c */
int	host_listen_env(char *const *envp, char ***envpp, char **digitsp)
	    FDR_SYM(host_listen_env);

/* host_child.c */
int	host_start(struct host_plan *hp, pid_t *pidp) FDR_SYM(host_start);
int	host_start_early(struct host_plan *hp) FDR_SYM(host_start_early);
bool	host_fresh_likely(size_t n, unsigned int flags, bool spawn)
	    FDR_SYM(host_fresh_likely);
int	host_finish_early(struct host_plan *hp, int go) FDR_SYM(host_finish_early);

#endif /* !_HOST_INTERNAL_H_ */
