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

/* Fill fcaps with all rights: no ioctl list, every fcntl. */
void
filecaps_fill(struct filecaps *fcaps)
{

	fcaps->fc_rights[0] = CAP_RIGHTS_ALL;
	fcaps->fc_rights[1] = CAP_RIGHTS_ALL;
	fcaps->fc_ioctls = NULL;
	fcaps->fc_nioctls = -1;
	fcaps->fc_fcntls = CAP_FCNTL_ALL;
}

/*
 * Copy src to dst with an ioctl array of dst's own.  Returns 0, or ENOMEM
 * with dst untouched.
 */
int
filecaps_copy(const struct filecaps *src, struct filecaps *dst)
{
	unsigned long *ioctls = NULL;
	size_t n;

	if (src->fc_ioctls != NULL) {
		n = src->fc_nioctls > 0 ? (size_t)src->fc_nioctls : 0;
		ioctls = fdr_malloc(n * sizeof(*ioctls));
		if (ioctls == NULL)
			return (ENOMEM);
		memcpy(ioctls, src->fc_ioctls, n * sizeof(*ioctls));
	}
	*dst = *src;
	dst->fc_ioctls = ioctls;
	return (0);
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
		fdp->fd_ofiles = fdr_malloc(nfiles * sizeof(*fdp->fd_ofiles));
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
 * words.  Every reader holds the lock, so the arrays are reallocated in
 * place (FreeBSD keeps old arrays for its lockless readers).  Returns 0
 * or ENOMEM with the table unchanged.
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
	ntable = fdr_reallocarray(fdp->fd_ofiles, nnfiles, sizeof(*ntable));
	if (ntable == NULL)
		return (ENOMEM);	/* the larger map is harmless */
	memset(ntable + onfiles, 0, (nnfiles - onfiles) * sizeof(*ntable));
	fdp->fd_ofiles = ntable;
	fdp->fd_nfiles = (int)nnfiles;
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
 * Allocate the lowest free slot at or above minfd, growing the table as
 * needed.  Returns 0 with *result set and the slot marked used (its entry
 * is still empty), EMFILE past the process limit, or ENOMEM.
 */
static int
fdalloc(struct thread *td, int minfd, int *result)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	int fd, maxfd, error;

	maxfd = lim_nofile(td->td_proc);
	if (minfd < fdp->fd_freefile)
		minfd = fdp->fd_freefile;
	if (minfd >= maxfd)
		return (EMFILE);
	fd = fd_first_free(fdp, minfd, fdp->fd_nfiles);
	if (fd >= maxfd)
		return (EMFILE);
	if (fd >= fdp->fd_nfiles) {
		error = fdgrowtable_exp(fdp, fd, maxfd);
		if (error != 0)
			return (error);
	}
	fdused(fdp, fd);
	*result = fd;
	return (0);
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
 * from O_CLOEXEC in flags, and the capabilities moved from fcaps (which
 * is cleared) or all rights.  Locked.
 */
static void
fdefill(struct filedescent *fde, struct file *fp, int flags,
    struct filecaps *fcaps)
{

	fhold(fp);
	fde->fde_file = fp;
	fde->fde_flags = (flags & O_CLOEXEC) != 0 ? UF_EXCLOSE : 0;
	if (fcaps != NULL) {
		fde->fde_caps = *fcaps;
		fcaps->fc_ioctls = NULL;
		fcaps->fc_nioctls = -1;
	} else
		filecaps_fill(&fde->fde_caps);
}

/* Install fp in the lowest free slot. */
int
finstall(struct thread *td, struct file *fp, int *fd, int flags,
    struct filecaps *fcaps)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	int error;

	FILEDESC_XLOCK(fdp);
	error = fdalloc(td, 0, fd);
	if (error == 0)
		fdefill(&fdp->fd_ofiles[*fd], fp, flags, fcaps);
	FILEDESC_UNLOCK(fdp);
	if (error != 0 && fcaps != NULL)
		filecaps_free(fcaps);
	return (error);
}

/*
 * Install fp at slot fd, which must be free: one lock for what
 * finstall() and kern_dup(FDDUP_FIXED) do in three, for building a
 * table whose numbers are given.
 */
int
finstall_fixed(struct thread *td, struct file *fp, int fd, int flags,
    struct filecaps *fcaps)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	int error = 0, maxfd = lim_nofile(td->td_proc);

	if (fd < 0 || fd >= maxfd) {
		if (fcaps != NULL)
			filecaps_free(fcaps);
		return (EBADF);
	}
	FILEDESC_XLOCK(fdp);
	if (fd >= fdp->fd_nfiles)
		error = fdgrowtable_exp(fdp, fd, maxfd);
	else if (fdp->fd_ofiles[fd].fde_file != NULL)
		error = EBUSY;
	if (error == 0) {
		fdused(fdp, fd);
		fdefill(&fdp->fd_ofiles[fd], fp, flags, fcaps);
	}
	FILEDESC_UNLOCK(fdp);
	if (error != 0 && fcaps != NULL)
		filecaps_free(fcaps);
	return (error);
}

/*
 * dup() and dup2() of the model.  The capabilities are copied before
 * anything changes, so ENOMEM leaves the table as it was.
 */
int
kern_dup(struct thread *td, unsigned int mode, int flags, int old, int new)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct filedescent *oldfde, *newfde;
	struct file *fp, *delfp = NULL;
	struct filecaps caps;
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
	error = filecaps_copy(&oldfde->fde_caps, &caps);
	if (error != 0)
		goto unlock;
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
		filecaps_free(&fdp->fd_ofiles[new].fde_caps);
	}
	if (error != 0) {
		filecaps_free(&caps);
		goto unlock;
	}
	/* The table may have moved: find old's entry again. */
	oldfde = &fdp->fd_ofiles[old];
	fp = oldfde->fde_file;
	fhold(fp);
	newfde = &fdp->fd_ofiles[new];
	newfde->fde_file = fp;
	newfde->fde_caps = caps;
	newfde->fde_flags = (flags & FDDUP_FLAG_CLOEXEC) != 0 ? UF_EXCLOSE : 0;
	td->td_retval[0] = new;
unlock:
	FILEDESC_UNLOCK(fdp);
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
	filecaps_free(&fde->fde_caps);
	memset(fde, 0, sizeof(*fde));
	fdunused(fdp, fd);
	FILEDESC_UNLOCK(fdp);
	return (fdrop(fp, td));
}

/*
 * The copy that fork makes: every passable file (one more reference),
 * its capabilities and flags, and the umask.  Non-passable files, such
 * as kqueues, are not inherited (FreeBSD's fdcopy).  NULL when out of
 * memory, with nothing taken.
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
		if (ofde->fde_file == NULL || !ofde->fde_file->f_passable)
			continue;
		nfde = &newfdp->fd_ofiles[i];
		if (filecaps_copy(&ofde->fde_caps, &nfde->fde_caps) != 0) {
			FILEDESC_UNLOCK(fdp);
			fdescfree_remapped(newfdp);
			return (NULL);
		}
		nfde->fde_file = ofde->fde_file;
		nfde->fde_flags = ofde->fde_flags;
		fhold(nfde->fde_file);
		fdused(newfdp, i);
	}
unlock:
	FILEDESC_UNLOCK(fdp);
	return (newfdp);
}

/*
 * Release slots 0 .. n-1 of a table: free each used slot's capabilities
 * and drop its reference, with td for the close hooks.  The files are
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
		if (fde[i].fde_caps.fc_ioctls != NULL)
			filecaps_free(&fde[i].fde_caps);
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

/* Whether an ioctl array and its length agree (-1: all, no array). */
static bool
filecaps_valid(const struct filecaps *fcaps)
{

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
 * array and its length agree; 6 a used slot's file has references.
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
	for (i = 0; bad == 0 && i < fdp->fd_nfiles; i++) {
		fde = &fdp->fd_ofiles[i];
		used = (fdp->fd_map[NDSLOT(i)] & NDBIT(i)) != 0;
		if (used != (fde->fde_file != NULL))
			bad = 1;
		else if (!used && i < fdp->fd_freefile)
			bad = 4;
		else if (used && !filecaps_valid(&fde->fde_caps))
			bad = 5;
		else if (used && __atomic_load_n(&fde->fde_file->f_count,
		    __ATOMIC_RELAXED) == 0)
			bad = 6;
		if (used)
			last = i;
	}
	if (bad == 0 && last != fdp->fd_lastfile)
		bad = 3;
	FILEDESC_UNLOCK(fdp);
	return (bad);
}
