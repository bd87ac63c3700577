/*
 * kern_remap.c: the remapped descriptor tables of CloudABI's exec
 * (FreeBSD review D3079): fdcopy_remapped, fdinstall_remapped and
 * fdescfree_remapped.
 *
 * FreeBSD's loop does, per entry, the dependent loads entry -> file ->
 * ops, a whole-entry copy, a capabilities copy and a locked increment,
 * each miss waiting for the one before.  Ours keeps every rule and
 * overlaps the misses: it prefetches old entries and then their files
 * ahead of use (kern_internal.h), reads passability from the file's own
 * cache line (f_passable, set by finit), touches each file once, and
 * copies ioctl arrays in a separate pass only when some entry has one.
 */
#define	_GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "kern_internal.h"

/* Prefetch the old entry of descriptor fd, when it is in range. */
static inline void
remap_prefetch_entry(const struct filedescent *ofde, unsigned int last,
    int fd)
{
	const char *p;

	if ((unsigned int)fd > last)
		return;
	p = (const char *)&ofde[fd];
	__builtin_prefetch(p, 0, 3);
	__builtin_prefetch(p + sizeof(*ofde) - 1, 0, 3);
}

/* Prefetch for writing the file of descriptor fd, when there is one. */
static inline void
remap_prefetch_file(const struct filedescent *ofde, unsigned int last,
    int fd)
{
	struct file *fp;

	if ((unsigned int)fd > last)
		return;
	fp = ofde[fd].fde_file;
	if (fp != NULL)
		__builtin_prefetch(fp, 1, 3);
}

/*
 * Copy entry fds[i] of the old table to nfde[i] for each i in order,
 * taking a reference per copy, until the first bad descriptor.  Sets
 * *donep to the number of entries copied and *ioctlsp non-zero if any of
 * them has an ioctl array (still the old table's).  Returns 0, EBADF or
 * EINVAL.  The caller holds the old table's lock.
 */
static int
remap_gather(const struct filedesc *fdp, const int *fds, size_t nfds,
    struct filedescent *nfde, size_t *donep, uintptr_t *ioctlsp)
{
	const struct filedescent *ofde = fdp->fd_ofiles, *fde;
	unsigned int last = (unsigned int)fdp->fd_lastfile;
	uintptr_t ioctls = 0;
	struct file *fp;
	size_t i;
	int error = 0;

	for (i = 0; i < nfds; i++) {
		if (i + REMAP_PF_ENT < nfds)
			remap_prefetch_entry(ofde, last, fds[i + REMAP_PF_ENT]);
		if (i + REMAP_PF_FILE < nfds)
			remap_prefetch_file(ofde, last, fds[i + REMAP_PF_FILE]);
		if ((unsigned int)fds[i] > last) {
			error = EBADF;
			break;
		}
		fde = &ofde[fds[i]];
		fp = fde->fde_file;
		if (fp == NULL) {
			error = EBADF;
			break;
		}
		if (!fp->f_passable) {
			error = EINVAL;
			break;
		}
		nfde[i] = *fde;
		ioctls |= (uintptr_t)fde->fde_caps.fc_ioctls;
		__atomic_fetch_add(&fp->f_count, 1, __ATOMIC_RELAXED);
	}
	*donep = i;
	*ioctlsp = ioctls;
	return (error);
}

/*
 * Give each of the n entries that has an ioctl array (the old table's) a
 * copy of its own.  On ENOMEM the copies made are kept, so that the
 * caller frees them, and the entries not yet copied forget the old
 * arrays.  The caller holds the old table's lock.
 */
static int
remap_copy_ioctls(struct filedescent *nfde, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (nfde[i].fde_caps.fc_ioctls == NULL)
			continue;
		if (filecaps_copy(&nfde[i].fde_caps, &nfde[i].fde_caps) != 0)
			break;
	}
	if (i == n)
		return (0);
	for (; i < n; i++) {
		nfde[i].fde_caps.fc_ioctls = NULL;
		nfde[i].fde_caps.fc_nioctls = -1;
	}
	return (ENOMEM);
}

/*
 * Forget the old table's ioctl arrays in the first n entries after a
 * failed gather: they were copied by value and are not ours to free.
 */
static void
remap_forget_ioctls(struct filedescent *nfde, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		nfde[i].fde_caps.fc_ioctls = NULL;
}

/*
 * Complete a table whose first n slots were filled: bitmap, empty tail
 * slots, fd_lastfile, fd_freefile.
 */
static void
remap_finish(struct filedesc *fdp, size_t n)
{
	size_t words = n / NDENTRIES;

	fd_set_lastfile(fdp, (int)n - 1);
	fdp->fd_freefile = (int)n;
	if (fdp->fd_nfiles == 0)	/* no arrays: n is 0 */
		return;
	memset(fdp->fd_map, 0xff, words * NDSLOTSIZE);
	if (n % NDENTRIES != 0)
		fdp->fd_map[words] = ~(~(NDSLOTTYPE)0 << (n % NDENTRIES));
	memset(fdp->fd_ofiles + n, 0,
	    ((size_t)fdp->fd_nfiles - n) * sizeof(*fdp->fd_ofiles));
}

/*
 * Build the table whose slot i copies slot fds[i] of fdp (filedesc.h
 * states the rules).  Close-on-exec is copied and not acted on: a
 * CloudABI program cannot mark its descriptors close-on-exec for this
 * exec, the descriptor list says all.
 */
int
fdcopy_remapped(struct filedesc *fdp, const int *fds, size_t nfds,
    struct filedesc **ret)
{
	struct filedesc *newfdp;
	uintptr_t ioctls;
	size_t done;
	int error;

	FILEDESC_SLOCK(fdp);
	if (nfds > (size_t)((long)fdp->fd_lastfile + 1)) {
		FILEDESC_UNLOCK(fdp);
		return (E2BIG);
	}
	newfdp = fdalloc_table(nfds);
	if (newfdp == NULL) {
		FILEDESC_UNLOCK(fdp);
		return (ENOMEM);
	}
	newfdp->fd_cmask = fdp->fd_cmask;
	error = remap_gather(fdp, fds, nfds, newfdp->fd_ofiles, &done,
	    &ioctls);
	if (error != 0)
		remap_forget_ioctls(newfdp->fd_ofiles, done);
	else if (ioctls != 0)
		error = remap_copy_ioctls(newfdp->fd_ofiles, nfds);
	FILEDESC_UNLOCK(fdp);
	if (error != 0) {
		fdrelease_slots(newfdp->fd_ofiles, done, NULL);
		fdfree_table(newfdp);
		return (error);
	}
	remap_finish(newfdp, nfds);
	*ret = newfdp;
	return (0);
}

/*
 * Install fdp as td's table, then release the old one: close hooks of
 * the files it held last see the new table already in place.
 */
void
fdinstall_remapped(struct thread *td, struct filedesc *fdp)
{
	struct filedesc *ofdp = td->td_proc->p_fd;

	td->td_proc->p_fd = fdp;
	if (ofdp != NULL)
		fddrop(ofdp, td);
}

/* Release a remapped table that was never installed. */
void
fdescfree_remapped(struct filedesc *fdp)
{

	fdrelease_slots(fdp->fd_ofiles, (size_t)(fdp->fd_lastfile + 1), NULL);
	fdfree_table(fdp);
}
