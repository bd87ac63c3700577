/*
 * kern_remap.c: the remapped descriptor tables of CloudABI's exec
 * (FreeBSD review D3079): fdcopy_remapped, fdinstall_remapped and
 * fdescfree_remapped, and the exec's own form of them, which moves
 * references instead of taking them.
 *
 * FreeBSD's loop does, per entry, the dependent loads entry -> file ->
 * ops, a whole-entry copy, a capabilities copy and a locked increment,
 * each miss waiting for the one before.  Ours keeps every rule and
 * overlaps the misses: it prefetches old entries, and then their files,
 * ahead of use (kern_internal.h); a slot is one cache line and carries
 * the file's passability (UF_PASSABLE), so the checks read nothing else;
 * capabilities are shared, so a copy is a pointer; and the references of
 * a run of one file are taken with one locked instruction.
 *
 * The remap is bound by memory: a random permutation of a large table
 * waits on one line per old slot and one per file.  The exec's form
 * (fdcopy_remapped_move) leaves the file lines alone: the old table is
 * not shared and stays locked until the new one replaces it, so each
 * slot named once lends its reference to the new table, and only the
 * slots not named are released at install.
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

	if ((unsigned int)fd <= last)
		__builtin_prefetch(&ofde[fd], 0, 3);
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
 * Take k references on fp at once.  Runs of one file (a list naming the
 * same descriptor many times) cost one locked instruction instead of k.
 */
static inline void
remap_hold(struct file *fp, unsigned int k)
{

	__atomic_fetch_add(&fp->f_count, k, __ATOMIC_RELAXED);
}

/*
 * The checks of one list entry: 0, or EBADF for a descriptor out of
 * range or free, EINVAL for a file that is not passable.
 */
static inline int
remap_check(const struct filedescent *ofde, unsigned int last, int fd)
{

	if ((unsigned int)fd > last || ofde[fd].fde_file == NULL)
		return (EBADF);
	if ((ofde[fd].fde_flags & UF_PASSABLE) == 0)
		return (EINVAL);
	return (0);
}

/*
 * Copy entry fds[i] of the old table to nfde[i] for each i in order,
 * taking a reference per copy (file and capabilities), until the first
 * bad descriptor.  Sets *donep to the number of entries copied.  Returns
 * 0, EBADF or EINVAL.  The caller holds the old table's lock, so every
 * file copied keeps the old table's reference meanwhile and the
 * references of a run of one file can be taken together when the run
 * ends: all of them are taken when this returns.
 */
static int
remap_gather(const struct filedesc *fdp, const int *fds, size_t nfds,
    struct filedescent *nfde, size_t *donep)
{
	const struct filedescent *ofde = fdp->fd_ofiles, *fde;
	unsigned int last = (unsigned int)fdp->fd_lastfile;
	unsigned int runlen = 0;
	struct file *fp, *run = NULL;
	size_t i, pfent = REMAP_PF_ENT, pffile = REMAP_PF_FILE;
	int error = 0;

	if (last < REMAP_PF_MIN)
		pfent = pffile = nfds;		/* in cache: no prefetch */
	for (i = 0; i < nfds; i++) {
		if (i + pfent < nfds)
			remap_prefetch_entry(ofde, last, fds[i + pfent]);
		if (i + pffile < nfds)
			remap_prefetch_file(ofde, last, fds[i + pffile]);
		if ((error = remap_check(ofde, last, fds[i])) != 0)
			break;
		fde = &ofde[fds[i]];
		nfde[i] = *fde;
		fdcaps_hold(fde->fde_caps);
		fp = fde->fde_file;
		if (fp == run) {
			runlen++;
			continue;
		}
		if (run != NULL)
			remap_hold(run, runlen);
		run = fp;
		runlen = 1;
	}
	if (run != NULL)
		remap_hold(run, runlen);
	*donep = i;
	return (error);
}

/* Whether bit fd of bitmap map is set, and set it. */
static inline bool
remap_test_and_set(NDSLOTTYPE *map, int fd)
{
	NDSLOTTYPE *w = &map[NDSLOT(fd)], bit = NDBIT(fd);
	bool was = (*w & bit) != 0;

	*w |= bit;
	return (was);
}

/*
 * The exec's gather: as remap_gather(), but the first entry naming an
 * old slot takes no reference: it borrows the slot's, and the slot's bit
 * is set in taken.  A later entry naming the same slot takes references
 * of its own, those of a run of one file with one locked instruction.
 * Reads no file but a duplicate's.  The caller holds the old table's
 * exclusive lock, and the table is not shared.
 */
static int
remap_gather_move(const struct filedesc *fdp, const int *fds, size_t nfds,
    struct filedescent *nfde, NDSLOTTYPE *taken, size_t *donep)
{
	const struct filedescent *ofde = fdp->fd_ofiles, *fde;
	unsigned int last = (unsigned int)fdp->fd_lastfile, runlen = 0;
	struct file *run = NULL;
	size_t i, pfent = REMAP_PF_ENT;
	int error = 0;

	if (last < REMAP_PF_MIN)
		pfent = nfds;			/* in cache: no prefetch */
	for (i = 0; i < nfds; i++) {
		if (i + pfent < nfds)
			remap_prefetch_entry(ofde, last, fds[i + pfent]);
		if ((error = remap_check(ofde, last, fds[i])) != 0)
			break;
		fde = &ofde[fds[i]];
		nfde[i] = *fde;
		if (!remap_test_and_set(taken, fds[i]))
			continue;
		fdcaps_hold(fde->fde_caps);
		if (fde->fde_file == run) {
			runlen++;
			continue;
		}
		if (run != NULL)
			remap_hold(run, runlen);
		run = fde->fde_file;
		runlen = 1;
	}
	if (run != NULL)
		remap_hold(run, runlen);
	*donep = i;
	return (error);
}

/*
 * Undo remap_gather_move() over its first n entries: the first entry
 * naming a slot clears the slot's bit (its reference was borrowed); the
 * later ones, finding it clear, drop the references they took (a run of
 * one file at once), never the last one: the old slot holds one.  taken
 * is all zero again.
 */
static void
remap_unmove(const int *fds, size_t n, NDSLOTTYPE *taken,
    const struct filedescent *nfde)
{
	struct file *run = NULL;
	unsigned int runlen = 0;
	NDSLOTTYPE *w, bit;
	size_t i;

	for (i = 0; i < n; i++) {
		w = &taken[NDSLOT(fds[i])];
		bit = NDBIT(fds[i]);
		if ((*w & bit) != 0) {
			*w &= ~bit;
			continue;
		}
		fdcaps_drop(nfde[i].fde_caps);
		if (nfde[i].fde_file == run) {
			runlen++;
			continue;
		}
		if (run != NULL)
			(void)fdrop_n(run, runlen, NULL);
		run = nfde[i].fde_file;
		runlen = 1;
	}
	if (run != NULL)
		(void)fdrop_n(run, runlen, NULL);
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
	error = remap_gather(fdp, fds, nfds, newfdp->fd_ofiles, &done);
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
 * The exec's remap (kern_internal.h): fdcopy_remapped()'s table, errors
 * and order, built by remap_gather_move() into a table of its own and a
 * bitmap of the old slots it borrowed from.  On error nothing is
 * borrowed or taken and nothing stays allocated.
 */
int
fdcopy_remapped_move(struct filedesc *fdp, const int *fds, size_t nfds,
    struct remap_move *rm)
{
	struct filedesc *newfdp;
	NDSLOTTYPE *taken;
	size_t done;
	int error;

	if (nfds > (size_t)((long)fdp->fd_lastfile + 1))
		return (E2BIG);
	newfdp = fdalloc_table(nfds);
	if (newfdp == NULL)
		return (ENOMEM);
	taken = fdr_calloc(NDSLOTS((size_t)fdp->fd_nfiles), NDSLOTSIZE);
	if (taken == NULL) {
		fdfree_table(newfdp);
		return (ENOMEM);
	}
	newfdp->fd_cmask = fdp->fd_cmask;
	error = remap_gather_move(fdp, fds, nfds, newfdp->fd_ofiles, taken,
	    &done);
	if (error != 0) {
		remap_unmove(fds, done, taken, newfdp->fd_ofiles);
		fdr_free(taken);
		fdfree_table(newfdp);
		return (error);
	}
	remap_finish(newfdp, nfds);
	rm->rm_fdp = newfdp;
	rm->rm_taken = taken;
	return (0);
}

/*
 * Give back a table of fdcopy_remapped_move() that is not installed:
 * the references it took go, the borrowed ones stay with the old table,
 * which is as it was.
 */
void
fdescfree_remapped_move(struct remap_move *rm, const int *fds, size_t nfds)
{

	remap_unmove(fds, nfds, rm->rm_taken, rm->rm_fdp->fd_ofiles);
	fdr_free(rm->rm_taken);
	fdfree_table(rm->rm_fdp);
	rm->rm_fdp = NULL;
	rm->rm_taken = NULL;
}

/*
 * Release the used slots of fdp that are not in taken: the references
 * the new table did not borrow, those of a run of one file at once.
 * Scans the bitmaps a word at a time, so a list that names every slot
 * releases nothing and reads no slot.
 */
static void
remap_release_untaken(struct filedesc *fdp, const NDSLOTTYPE *taken,
    struct thread *td)
{
	struct filedescent *fde;
	struct file *run = NULL;
	unsigned int runlen = 0;
	NDSLOTTYPE left;
	size_t w, nw = NDSLOTS((size_t)fdp->fd_lastfile + 1);

	for (w = 0; w < nw; w++) {
		left = fdp->fd_map[w] & ~taken[w];
		while (left != 0) {
			fde = &fdp->fd_ofiles[w * NDENTRIES +
			    (size_t)__builtin_ctzll(left)];
			left &= left - 1;
			fdcaps_drop(fde->fde_caps);
			if (fde->fde_file == run) {
				runlen++;
				continue;
			}
			if (run != NULL)
				(void)fdrop_n(run, runlen, td);
			run = fde->fde_file;
			runlen = 1;
		}
	}
	if (run != NULL)
		(void)fdrop_n(run, runlen, td);
}

/*
 * Install the table of fdcopy_remapped_move() as td's and free the old
 * one, which the caller had locked: its borrowed references are the new
 * table's now, the others are released.  Close hooks of the files it
 * held last see the new table already in place.
 */
void
fdinstall_remapped_move(struct thread *td, struct remap_move *rm)
{
	struct filedesc *ofdp = td->td_proc->p_fd;

	td->td_proc->p_fd = rm->rm_fdp;
	remap_release_untaken(ofdp, rm->rm_taken, td);
	FILEDESC_UNLOCK(ofdp);
	fdfree_table(ofdp);
	fdr_free(rm->rm_taken);
	rm->rm_fdp = NULL;
	rm->rm_taken = NULL;
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
