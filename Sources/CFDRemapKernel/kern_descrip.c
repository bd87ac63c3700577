/*
 * kern_descrip.c: descriptor tables: allocation and growth, the slot
 * bitmap, capabilities, finstall, kern_dup, kern_close, and the copies and
 * releases that fork and process exit make (FreeBSD's kern_descrip.c).
 * The remapped functions of CloudABI's exec are in kern_remap.c.
 */
#define	_GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>

#include "kern_internal.h"

#define	CMASK	022	/* default umask */

/* The table lock for observers (filedesc.h). */
void
filedesc_slock(struct filedesc *fdp)
{

	FILEDESC_SLOCK(fdp);
}

void
filedesc_unlock(struct filedesc *fdp)
{

	FILEDESC_UNLOCK(fdp);
}

/* All rights: no ioctl list, every fcntl. */
const struct filecaps filecaps_all = {
	.fc_rights = { CAP_RIGHTS_ALL, CAP_RIGHTS_ALL },
	.fc_ioctls = NULL,
	.fc_nioctls = -1,
	.fc_fcntls = CAP_FCNTL_ALL,
};

/* Whether fcaps is all rights, exactly filecaps_all. */
static bool
filecaps_isall(const struct filecaps *fcaps)
{

	return (fcaps->fc_rights[0] == CAP_RIGHTS_ALL &&
	    fcaps->fc_rights[1] == CAP_RIGHTS_ALL &&
	    fcaps->fc_ioctls == NULL && fcaps->fc_nioctls == -1 &&
	    fcaps->fc_fcntls == CAP_FCNTL_ALL);
}

/* Free the ioctl array of fcaps and forget it. */
void
filecaps_free(struct filecaps *fcaps)
{

	fdr_free(fcaps->fc_ioctls);
	fcaps->fc_ioctls = NULL;
	fcaps->fc_nioctls = -1;
}

/*
 * The slot form of fcaps (NULL: all rights), which takes fcaps's ioctl
 * array and clears fcaps.  Returns 0 with *fcsp set, or ENOMEM with the
 * array freed.  fcaps NULL, or all rights, costs no allocation.
 */
int
fdcaps_make(struct filecaps *fcaps, struct fdcaps **fcsp)
{
	struct fdcaps *fcs;

	*fcsp = NULL;
	if (fcaps == NULL)
		return (0);
	if (filecaps_isall(fcaps))
		return (0);
	fcs = fdr_malloc(sizeof(*fcs));
	if (fcs == NULL) {
		filecaps_free(fcaps);
		return (ENOMEM);
	}
	fcs->fcs_caps = *fcaps;
	fcs->fcs_refcnt = 1;
	fcaps->fc_ioctls = NULL;
	fcaps->fc_nioctls = -1;
	*fcsp = fcs;
	return (0);
}

/*
 * Drop a slot's reference on its capabilities; the last one frees them
 * and their ioctl array.  NULL (all rights) is nothing to drop.
 */
void
fdcaps_drop(struct fdcaps *fcs)
{

	if (fcs == NULL ||
	    __atomic_sub_fetch(&fcs->fcs_refcnt, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	fdr_free(fcs->fcs_caps.fc_ioctls);
	fdr_free(fcs);
}

/*
 * A table with room for nslots slots (rounded up to whole bitmap words),
 * all free, one reference, the default umask.  NULL when out of memory.
 */
struct filedesc *
fdalloc_table(size_t nslots)
{
	struct filedesc *fdp;
	size_t nfiles;

	nfiles = NDSLOTS(nslots) * NDENTRIES;
	if (nfiles > INT_MAX)
		return (NULL);
	fdp = fdr_calloc(1, sizeof(*fdp));
	if (fdp == NULL)
		return (NULL);
	if (nfiles > 0) {
		fdp->fd_ofiles = fdr_aligned_alloc(FDE_ALIGN,
		    nfiles * sizeof(*fdp->fd_ofiles));
		fdp->fd_map = fdr_calloc(NDSLOTS(nfiles), NDSLOTSIZE);
		if (fdp->fd_ofiles == NULL || fdp->fd_map == NULL) {
			fdr_free(fdp->fd_ofiles);
			fdr_free(fdp->fd_map);
			fdr_free(fdp);
			return (NULL);
		}
	}
	if (pthread_rwlock_init(FILEDESC_RWLOCK(fdp), NULL) != 0) {
		fdr_free(fdp->fd_ofiles);
		fdr_free(fdp->fd_map);
		fdr_free(fdp);
		return (NULL);
	}
	fdp->fd_nfiles = (int)nfiles;
	fdp->fd_lastfile = -1;
	fdp->fd_freefile = 0;
	fdp->fd_cmask = CMASK;
	fdp->fd_refcnt = 1;
	return (fdp);
}

/*
 * An empty table for a new process.  Its slots are zeroed; tables built
 * by fdalloc_table() for a remap leave that to their filler.
 */
struct filedesc *
fdinit(void)
{
	struct filedesc *fdp;

	fdp = fdalloc_table(NDENTRIES);
	if (fdp != NULL)
		memset(fdp->fd_ofiles, 0,
		    (size_t)fdp->fd_nfiles * sizeof(*fdp->fd_ofiles));
	return (fdp);
}

/*
 * Free a table's memory and lock.  Its slots must already have been
 * released.
 */
void
fdfree_table(struct filedesc *fdp)
{

	pthread_rwlock_destroy(FILEDESC_RWLOCK(fdp));
	fdr_free(fdp->fd_ofiles);
	fdr_free(fdp->fd_map);
	fdr_free(fdp);
}

/*
 * The lowest free slot at or above low and below size, or size when there
 * is none.  Scans the bitmap a word at a time.
 */
static int
fd_first_free(const struct filedesc *fdp, int low, int size)
{
	const NDSLOTTYPE *map = fdp->fd_map;
	NDSLOTTYPE mask;
	int off, maxoff;

	if (low >= size)
		return (low);
	off = NDSLOT(low);
	if (low % NDENTRIES) {
		mask = ~(~(NDSLOTTYPE)0 >> (NDENTRIES - (low % NDENTRIES)));
		if ((mask &= ~map[off]) != 0)
			return (off * (int)NDENTRIES + __builtin_ctzll(mask));
		off++;
	}
	for (maxoff = NDSLOTS(size); off < maxoff; off++)
		if (map[off] != ~(NDSLOTTYPE)0)
			return (off * (int)NDENTRIES +
			    __builtin_ctzll(~map[off]));
	return (size);
}

/* The highest used slot below low, or -1 when there is none. */
static int
fd_last_used(const struct filedesc *fdp, int low)
{
	const NDSLOTTYPE *map = fdp->fd_map;
	NDSLOTTYPE mask;
	int off, minoff;

	off = NDSLOT(low);
	if (low % NDENTRIES) {
		mask = ~(~(NDSLOTTYPE)0 << (low % NDENTRIES));
		if ((mask &= map[off]) != 0)
			return (off * (int)NDENTRIES + 63 -
			    __builtin_clzll(mask));
	}
	for (minoff = NDSLOT(0), off--; off >= minoff; off--)
		if (map[off] != 0)
			return (off * (int)NDENTRIES + 63 -
			    __builtin_clzll(map[off]));
	return (-1);
}

/* Mark slot fd used and keep fd_lastfile and fd_freefile true. */
static void
fdused(struct filedesc *fdp, int fd)
{

	fdp->fd_map[NDSLOT(fd)] |= NDBIT(fd);
	if (fd > fdp->fd_lastfile)
		fd_set_lastfile(fdp, fd);
	if (fd == fdp->fd_freefile)
		fdp->fd_freefile = fd_first_free(fdp, fd, fdp->fd_nfiles);
}

/* Mark slot fd free and keep fd_lastfile and fd_freefile true. */
static void
fdunused(struct filedesc *fdp, int fd)
{

	fdp->fd_map[NDSLOT(fd)] &= ~NDBIT(fd);
	if (fd < fdp->fd_freefile)
		fdp->fd_freefile = fd;
	if (fd == fdp->fd_lastfile)
		fd_set_lastfile(fdp, fd_last_used(fdp, fd));
}

/*
 * Grow the table to at least nfd slots, rounded up to whole bitmap
 * words.  Every reader holds the lock, so the arrays are replaced in
 * place (FreeBSD keeps old arrays for its lockless readers); the slots
 * move to a new FDE_ALIGN-aligned array, as realloc(3) does not keep an
 * alignment.  A large table also has memory prepared for the table an
 * exec will remap it into (fdr_prepare()).  Returns 0 or ENOMEM with the
 * table unchanged.
 */
static int
fdgrowtable(struct filedesc *fdp, int nfd)
{
	struct filedescent *ntable;
	NDSLOTTYPE *nmap;
	size_t onfiles, nnfiles;

	onfiles = (size_t)fdp->fd_nfiles;
	nnfiles = NDSLOTS((size_t)nfd) * NDENTRIES;
	if (nnfiles <= onfiles)
		return (0);
	nmap = fdr_reallocarray(fdp->fd_map, NDSLOTS(nnfiles), NDSLOTSIZE);
	if (nmap == NULL)
		return (ENOMEM);
	memset(nmap + NDSLOTS(onfiles), 0,
	    (NDSLOTS(nnfiles) - NDSLOTS(onfiles)) * NDSLOTSIZE);
	fdp->fd_map = nmap;
	ntable = fdr_aligned_alloc(FDE_ALIGN, nnfiles * sizeof(*ntable));
	if (ntable == NULL)
		return (ENOMEM);	/* the larger map is harmless */
	if (onfiles > 0)
		memcpy(ntable, fdp->fd_ofiles, onfiles * sizeof(*ntable));
	memset(ntable + onfiles, 0, (nnfiles - onfiles) * sizeof(*ntable));
	fdr_free(fdp->fd_ofiles);
	fdp->fd_ofiles = ntable;
	fdp->fd_nfiles = (int)nnfiles;
	fdr_prepare(nnfiles * sizeof(*ntable));	/* for the exec's table */
	return (0);
}

/*
 * Grow for slot fd: double the table, or more if fd needs it, within the
 * process limit maxfd.
 */
static int
fdgrowtable_exp(struct filedesc *fdp, int fd, int maxfd)
{
	long nfd;

	nfd = (long)fdp->fd_nfiles * 2;
	if (nfd < (long)fd + 1)
		nfd = (long)fd + 1;
	if (nfd > maxfd)
		nfd = maxfd;
	return (fdgrowtable(fdp, (int)nfd));
}

/*
 * The lowest free slot at or above minfd within the process limit, in
 * *result: 0, or EMFILE.  Nothing changes; fdalloc_take() takes it.
 */
static int
fdalloc_find(struct thread *td, int minfd, int *result)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	int fd, maxfd;

	maxfd = lim_nofile(td->td_proc);
	if (minfd < fdp->fd_freefile)
		minfd = fdp->fd_freefile;
	if (minfd >= maxfd)
		return (EMFILE);
	fd = fd_first_free(fdp, minfd, fdp->fd_nfiles);
	if (fd >= maxfd)
		return (EMFILE);
	*result = fd;
	return (0);
}

/*
 * Mark free slot fd used, growing the table for it first (within the
 * process limit).  Returns 0, or ENOMEM with the table unchanged.
 */
static int
fdalloc_take(struct thread *td, int fd)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	int error;

	if (fd >= fdp->fd_nfiles) {
		error = fdgrowtable_exp(fdp, fd, lim_nofile(td->td_proc));
		if (error != 0)
			return (error);
	}
	fdused(fdp, fd);
	return (0);
}

/*
 * Allocate the lowest free slot at or above minfd, growing the table as
 * needed.  Returns 0 with *result set and the slot marked used (its entry
 * is still empty), EMFILE past the process limit, or ENOMEM.
 */
static int
fdalloc(struct thread *td, int minfd, int *result)
{
	int error;

	error = fdalloc_find(td, minfd, result);
	if (error == 0)
		error = fdalloc_take(td, *result);
	return (error);
}

/* The entry of descriptor fd, or NULL when fd is not open.  Locked. */
static struct filedescent *
fget_locked(struct filedesc *fdp, int fd)
{

	if (fd < 0 || fd > fdp->fd_lastfile)
		return (NULL);
	if (fdp->fd_ofiles[fd].fde_file == NULL)
		return (NULL);
	return (&fdp->fd_ofiles[fd]);
}

/*
 * Fill the free entry fde with fp (one more reference), close-on-exec
 * from O_CLOEXEC in flags, the file's passability, and capabilities fcs
 * (their reference moves into the slot).  Locked.
 */
static void
fdefill(struct filedescent *fde, struct file *fp, int flags,
    struct fdcaps *fcs)
{

	fhold(fp);
	fde->fde_file = fp;
	fde->fde_caps = fcs;
	fde->fde_flags = ((flags & O_CLOEXEC) != 0 ? UF_EXCLOSE : 0) |
	    (fp->f_passable ? UF_PASSABLE : 0);
}

/*
 * Install fp in the lowest free slot.  The capabilities are made after
 * the slot is found and before the table grows for it, so that a full
 * table is EMFILE whatever memory there is, and ENOMEM leaves the table
 * as it was.
 */
int
finstall(struct thread *td, struct file *fp, int *fd, int flags,
    struct filecaps *fcaps)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct fdcaps *fcs = NULL;
	int error;

	FILEDESC_XLOCK(fdp);
	error = fdalloc_find(td, 0, fd);
	if (error != 0) {
		if (fcaps != NULL)
			filecaps_free(fcaps);
	} else if ((error = fdcaps_make(fcaps, &fcs)) == 0) {
		error = fdalloc_take(td, *fd);
		if (error == 0)
			fdefill(&fdp->fd_ofiles[*fd], fp, flags, fcs);
		else
			fdcaps_drop(fcs);
	}
	FILEDESC_UNLOCK(fdp);
	return (error);
}

/*
 * Install fp at slot fd, which must be free: one lock for what
 * finstall() and kern_dup(FDDUP_FIXED) do in three, for building a
 * table whose numbers are given.  EBUSY is known before anything is
 * allocated (a slot beyond the table is free).
 */
int
finstall_fixed(struct thread *td, struct file *fp, int fd, int flags,
    struct filecaps *fcaps)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct fdcaps *fcs = NULL;
	int error = 0, maxfd = lim_nofile(td->td_proc);

	if (fd < 0 || fd >= maxfd) {
		if (fcaps != NULL)
			filecaps_free(fcaps);
		return (EBADF);
	}
	FILEDESC_XLOCK(fdp);
	if (fd < fdp->fd_nfiles && fdp->fd_ofiles[fd].fde_file != NULL) {
		error = EBUSY;
		if (fcaps != NULL)
			filecaps_free(fcaps);
	} else if ((error = fdcaps_make(fcaps, &fcs)) == 0) {
		if (fd >= fdp->fd_nfiles)
			error = fdgrowtable_exp(fdp, fd, maxfd);
		if (error == 0) {
			fdused(fdp, fd);
			fdefill(&fdp->fd_ofiles[fd], fp, flags, fcs);
		} else
			fdcaps_drop(fcs);
	}
	FILEDESC_UNLOCK(fdp);
	return (error);
}

/* The checks of finstall_refed_fixed() that need no lock. */
static int
finstall_refed_check(const int *fds, size_t n, int maxfd)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (fds[i] < 0 || fds[i] >= maxfd ||
		    (i > 0 && fds[i] <= fds[i - 1]))
			return (EBADF);
	return (0);
}

/*
 * Install n files with their references at the given increasing slots
 * (filedesc.h): every check before the first change, one growth, then
 * the slots filled in order.
 */
int
finstall_refed_fixed(struct thread *td, struct file **fps, const int *fds,
    size_t n)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct filedescent *fde;
	int error, maxfd = lim_nofile(td->td_proc);
	size_t i;

	if ((error = finstall_refed_check(fds, n, maxfd)) != 0 || n == 0)
		return (error);
	FILEDESC_XLOCK(fdp);
	for (i = 0; i < n && fds[i] < fdp->fd_nfiles; i++)
		if (fdp->fd_ofiles[fds[i]].fde_file != NULL) {
			FILEDESC_UNLOCK(fdp);
			return (EBUSY);
		}
	if (fds[n - 1] >= fdp->fd_nfiles &&
	    (error = fdgrowtable_exp(fdp, fds[n - 1], maxfd)) != 0) {
		FILEDESC_UNLOCK(fdp);
		return (error);
	}
	for (i = 0; i < n; i++) {
		fde = &fdp->fd_ofiles[fds[i]];
		fde->fde_file = fps[i];
		fde->fde_caps = NULL;
		fde->fde_flags = fps[i]->f_passable ? UF_PASSABLE : 0;
		fdused(fdp, fds[i]);
	}
	FILEDESC_UNLOCK(fdp);
	return (0);
}

/*
 * dup() and dup2() of the model.  The new slot shares the old one's
 * capabilities, so only growing the table can fail with ENOMEM, and it
 * leaves the table as it was.
 */
int
kern_dup(struct thread *td, unsigned int mode, int flags, int old, int new)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct filedescent *oldfde, *newfde;
	struct file *delfp = NULL;
	struct fdcaps *delcaps = NULL;
	int error, maxfd = lim_nofile(td->td_proc);

	if (mode != FDDUP_NORMAL && mode != FDDUP_FIXED)
		return (EINVAL);
	if (old < 0)
		return (EBADF);
	if (mode == FDDUP_FIXED && (new < 0 || new >= maxfd))
		return (EBADF);

	FILEDESC_XLOCK(fdp);
	oldfde = fget_locked(fdp, old);
	if (oldfde == NULL) {
		error = EBADF;
		goto unlock;
	}
	if (mode == FDDUP_FIXED && old == new) {
		if ((flags & FDDUP_FLAG_CLOEXEC) != 0)
			oldfde->fde_flags |= UF_EXCLOSE;
		td->td_retval[0] = new;
		error = 0;
		goto unlock;
	}
	error = 0;
	if (mode == FDDUP_NORMAL) {
		error = fdalloc(td, 0, &new);
	} else if (new >= fdp->fd_nfiles) {
		error = fdgrowtable_exp(fdp, new, maxfd);
		if (error == 0)
			fdused(fdp, new);
	} else if (fdp->fd_ofiles[new].fde_file == NULL) {
		fdused(fdp, new);
	} else {
		delfp = fdp->fd_ofiles[new].fde_file;
		delcaps = fdp->fd_ofiles[new].fde_caps;
	}
	if (error != 0)
		goto unlock;
	/* The table may have moved: find old's entry again. */
	oldfde = &fdp->fd_ofiles[old];
	fhold(oldfde->fde_file);
	fdcaps_hold(oldfde->fde_caps);
	newfde = &fdp->fd_ofiles[new];
	newfde->fde_file = oldfde->fde_file;
	newfde->fde_caps = oldfde->fde_caps;
	newfde->fde_flags = (oldfde->fde_flags & UF_PASSABLE) |
	    ((flags & FDDUP_FLAG_CLOEXEC) != 0 ? UF_EXCLOSE : 0);
	td->td_retval[0] = new;
unlock:
	FILEDESC_UNLOCK(fdp);
	fdcaps_drop(delcaps);
	if (delfp != NULL)
		(void)fdrop(delfp, td);
	return (error);
}

/* Close descriptor fd; the file's close hook runs outside the lock. */
int
kern_close(struct thread *td, int fd)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct filedescent *fde;
	struct file *fp;

	FILEDESC_XLOCK(fdp);
	fde = fget_locked(fdp, fd);
	if (fde == NULL) {
		FILEDESC_UNLOCK(fdp);
		return (EBADF);
	}
	fp = fde->fde_file;
	fdcaps_drop(fde->fde_caps);
	memset(fde, 0, sizeof(*fde));
	fdunused(fdp, fd);
	FILEDESC_UNLOCK(fdp);
	return (fdrop(fp, td));
}

/*
 * The copy that fork makes: every passable file (one more reference),
 * its capabilities (shared) and flags, and the umask.  Non-passable
 * files, such as kqueues, are not inherited (FreeBSD's fdcopy).  NULL
 * when out of memory, with nothing taken.
 */
struct filedesc *
fdcopy(struct filedesc *fdp)
{
	struct filedesc *newfdp;
	struct filedescent *ofde, *nfde;
	int i, last;

	FILEDESC_SLOCK(fdp);
	newfdp = fdalloc_table((size_t)fdp->fd_lastfile + 1 > NDENTRIES ?
	    (size_t)fdp->fd_lastfile + 1 : NDENTRIES);
	if (newfdp == NULL)
		goto unlock;
	memset(newfdp->fd_ofiles, 0,
	    (size_t)newfdp->fd_nfiles * sizeof(*newfdp->fd_ofiles));
	newfdp->fd_cmask = fdp->fd_cmask;
	last = fdp->fd_lastfile;
	for (i = 0; i <= last; i++) {
		ofde = &fdp->fd_ofiles[i];
		if (ofde->fde_file == NULL ||
		    (ofde->fde_flags & UF_PASSABLE) == 0)
			continue;
		nfde = &newfdp->fd_ofiles[i];
		*nfde = *ofde;
		fhold(nfde->fde_file);
		fdcaps_hold(nfde->fde_caps);
		fdused(newfdp, i);
	}
unlock:
	FILEDESC_UNLOCK(fdp);
	return (newfdp);
}

/*
 * Release slots 0 .. n-1 of a table: drop each used slot's capabilities
 * and its file's reference, with td for the close hooks.  The files are
 * scattered in memory: each is prefetched for writing a few slots ahead,
 * so that the locked decrements do not wait on memory one by one.  A run
 * of slots holding one file (as a remapped list naming one descriptor
 * many times makes) drops its references with one locked instruction.
 */
void
fdrelease_slots(struct filedescent *fde, size_t n, struct thread *td)
{
	unsigned int runlen = 0;
	struct file *fp, *run = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (i + REMAP_PF_REL < n &&
		    (fp = fde[i + REMAP_PF_REL].fde_file) != NULL)
			__builtin_prefetch(fp, 1, 3);
		if ((fp = fde[i].fde_file) == NULL)
			continue;
		if (fde[i].fde_caps != NULL)
			fdcaps_drop(fde[i].fde_caps);
		if (fp == run) {
			runlen++;
			continue;
		}
		if (run != NULL)
			(void)fdrop_n(run, runlen, td);
		run = fp;
		runlen = 1;
	}
	if (run != NULL)
		(void)fdrop_n(run, runlen, td);
}

/*
 * Drop one reference on a table.  The last one closes every file in it
 * (with td, so that close hooks see the thread) and frees it; no one else
 * can reach the table then, so no lock is taken.
 */
void
fddrop(struct filedesc *fdp, struct thread *td)
{

	if (__atomic_sub_fetch(&fdp->fd_refcnt, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	fdrelease_slots(fdp->fd_ofiles, (size_t)(fdp->fd_lastfile + 1), td);
	fdfree_table(fdp);
}

/* Release td's process's reference on its table and forget it. */
void
fdescfree(struct thread *td)
{
	struct filedesc *fdp = td->td_proc->p_fd;

	td->td_proc->p_fd = NULL;
	if (fdp != NULL)
		fddrop(fdp, td);
}

/*
 * Whether a slot's capabilities are sound: held, and an ioctl array and
 * its length agree (-1: all, no array).  NULL is all rights.
 */
static bool
fdcaps_valid(const struct fdcaps *fcs)
{
	const struct filecaps *fcaps;

	if (fcs == NULL)
		return (true);
	if (__atomic_load_n(&fcs->fcs_refcnt, __ATOMIC_RELAXED) == 0)
		return (false);
	fcaps = &fcs->fcs_caps;

	if (fcaps->fc_nioctls < -1)
		return (false);
	if (fcaps->fc_nioctls == -1)
		return (fcaps->fc_ioctls == NULL);
	return (fcaps->fc_nioctls == 0 || fcaps->fc_ioctls != NULL);
}

/*
 * Check a table's invariants under its shared lock.  Returns the first
 * broken rule: 1 a slot is used iff its bit is set; 2 fd_nfiles is a
 * multiple of NDENTRIES and the reference count is not 0; 3 fd_lastfile
 * is the highest used slot; 4 no free slot below fd_freefile; 5 an ioctl
 * array and its length agree, shared capabilities have references; 6 a
 * used slot's file has references; 7 UF_PASSABLE is the file's; 8 the
 * slots are FDE_ALIGN-aligned.
 */
int
fdcheck(struct filedesc *fdp)
{
	const struct filedescent *fde;
	int i, last = -1, bad = 0;
	bool used;

	FILEDESC_SLOCK(fdp);
	if (fdp->fd_nfiles % (int)NDENTRIES != 0 ||
	    __atomic_load_n(&fdp->fd_refcnt, __ATOMIC_RELAXED) == 0)
		bad = 2;
	else if ((uintptr_t)fdp->fd_ofiles % FDE_ALIGN != 0)
		bad = 8;
	for (i = 0; bad == 0 && i < fdp->fd_nfiles; i++) {
		fde = &fdp->fd_ofiles[i];
		used = (fdp->fd_map[NDSLOT(i)] & NDBIT(i)) != 0;
		if (used != (fde->fde_file != NULL))
			bad = 1;
		else if (!used && i < fdp->fd_freefile)
			bad = 4;
		else if (used && !fdcaps_valid(fde->fde_caps))
			bad = 5;
		else if (used && __atomic_load_n(&fde->fde_file->f_count,
		    __ATOMIC_RELAXED) == 0)
			bad = 6;
		else if (used && ((fde->fde_flags & UF_PASSABLE) != 0) !=
		    (fde->fde_file->f_passable != 0))
			bad = 7;
		if (used)
			last = i;
	}
	if (bad == 0 && last != fdp->fd_lastfile)
		bad = 3;
	FILEDESC_UNLOCK(fdp);
	return (bad);
}
