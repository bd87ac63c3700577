/*
 * kern_proc.c: the model's processes.  A user-space library has no fork,
 * so the core makes processes itself: each with one thread and a table.
 */
#define	_GNU_SOURCE
#include <errno.h>

#include "kern_internal.h"

/* A process and its thread, allocated together; freed by proc_free(). */
struct proc_alloc {
	struct proc	pa_proc;
	struct thread	pa_thread;
};

/* A process with table fdp (may be NULL for now), or NULL. */
static struct thread *
proc_alloc(struct filedesc *fdp)
{
	struct proc_alloc *pa;

	pa = fdr_calloc(1, sizeof(*pa));
	if (pa == NULL)
		return (NULL);
	pa->pa_proc.p_fd = fdp;
	pa->pa_proc.p_maxfd = PROC_MAXFD_DEFAULT;
	pa->pa_proc.p_thread = &pa->pa_thread;
	pa->pa_thread.td_proc = &pa->pa_proc;
	return (&pa->pa_thread);
}

/* A new process with an empty table, or NULL when out of memory. */
struct thread *
proc_create(void)
{
	struct filedesc *fdp;
	struct thread *td;

	fdp = fdinit();
	if (fdp == NULL)
		return (NULL);
	td = proc_alloc(fdp);
	if (td == NULL)
		fdfree_table(fdp);
	return (td);
}

/*
 * A child of td's process, sharing its table (one more reference) or
 * with a copy of it (fdcopy: passable files only), and its limit.
 */
struct thread *
proc_fork(struct thread *td, int share_table)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct thread *child;

	child = proc_alloc(NULL);
	if (child == NULL)
		return (NULL);
	if (share_table) {
		__atomic_fetch_add(&fdp->fd_refcnt, 1, __ATOMIC_RELAXED);
	} else if ((fdp = fdcopy(fdp)) == NULL) {
		fdr_free(child->td_proc);
		return (NULL);
	}
	child->td_proc->p_fd = fdp;
	lim_set_nofile(child->td_proc, lim_nofile(td->td_proc));
	return (child);
}

/* Release the process's table and free the process and its thread. */
void
proc_destroy(struct thread *td)
{

	if (td == NULL)
		return;
	fdescfree(td);
	fdr_free(td->td_proc);
}
