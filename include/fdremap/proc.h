/*
 * fdremap/proc.h: processes and threads of the kernel model.
 *
 * A user-space model has no fork(), so the core constructs processes
 * itself.  Each process has exactly one thread; functions take the
 * thread, as FreeBSD's system calls do.
 */
#ifndef _FDREMAP_PROC_H_
#define _FDREMAP_PROC_H_

#include <fdremap/cdefs.h>

struct filedesc;
struct thread;

struct proc {
	struct filedesc	*p_fd;		/* descriptor table, maybe shared */
	int		 p_maxfd;	/* RLIMIT_NOFILE of the model */
	struct thread	*p_thread;	/* the single thread */
};

struct thread {
	struct proc	*td_proc;
	long		 td_retval[2];	/* system call results */
};

/* Default p_maxfd: large enough for the benchmarks' 16M-slot tables. */
#define	PROC_MAXFD_DEFAULT	(1 << 30)

/*
 * The model's RLIMIT_NOFILE of p, read and set atomically: one thread
 * may lower it while others open descriptors, as setrlimit(2) may.  A
 * call that has read the limit goes by what it read.
 */
static inline int
lim_nofile(const struct proc *p)
{

	return (__atomic_load_n(&p->p_maxfd, __ATOMIC_RELAXED));
}

static inline void
lim_set_nofile(struct proc *p, int n)
{

	__atomic_store_n(&p->p_maxfd, n, __ATOMIC_RELAXED);
}

/* A new process with an empty table; NULL when out of memory. */
struct thread	*proc_create(void) FDR_SYM(proc_create);

/*
 * A child of td's process.  share_table non-zero shares the table (one
 * more reference on it); zero copies it as FreeBSD's fork does: every
 * passable file (one more reference each), capabilities and flags,
 * close-on-exec included, and the umask.  NULL when out of memory.
 */
struct thread	*proc_fork(struct thread *td, int share_table) FDR_SYM(proc_fork);

/*
 * Destroy the process: release its table (closing every file whose last
 * reference it held, when the table is not shared) and free it.
 */
void		 proc_destroy(struct thread *td) FDR_SYM(proc_destroy);

#endif /* !_FDREMAP_PROC_H_ */
