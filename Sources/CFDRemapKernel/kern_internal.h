/*
 * kern_internal.h: what the core's files share and callers do not see.
 */
#ifndef _KERN_INTERNAL_H_
#define _KERN_INTERNAL_H_

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>

#include <fdremap/kernel.h>
#include <fdremap/testing.h>

_Static_assert(sizeof(pthread_rwlock_t) <= sizeof(struct fd_lock),
    "struct fd_lock cannot hold a pthread_rwlock_t");
_Static_assert(_Alignof(pthread_rwlock_t) <= 8,
    "struct fd_lock is not aligned enough for a pthread_rwlock_t");
_Static_assert(sizeof(struct filedescent) == FDE_ALIGN,
    "a descriptor entry is 32 bytes: one cache line when aligned");
_Static_assert(sizeof(struct file) == 64, "a file is one cache line");

#define	FILEDESC_RWLOCK(fdp) \
	((pthread_rwlock_t *)(void *)(fdp)->fd_lock.fdl_storage)

/* The table lock.  Failure of these calls is a programming error. */
static inline void
FILEDESC_SLOCK(struct filedesc *fdp)
{
	int error __attribute__((unused));

	error = pthread_rwlock_rdlock(FILEDESC_RWLOCK(fdp));
	assert(error == 0);
}

static inline void
FILEDESC_XLOCK(struct filedesc *fdp)
{
	int error __attribute__((unused));

	error = pthread_rwlock_wrlock(FILEDESC_RWLOCK(fdp));
	assert(error == 0);
}

static inline void
FILEDESC_UNLOCK(struct filedesc *fdp)
{
	int error __attribute__((unused));

	error = pthread_rwlock_unlock(FILEDESC_RWLOCK(fdp));
	assert(error == 0);
}

/*
 * fd_lastfile is read without the lock by exec_copyin_data_fds()'s early
 * E2BIG check (as FreeBSD does), so every store to it is atomic.
 */
static inline void
fd_set_lastfile(struct filedesc *fdp, int last)
{

	__atomic_store_n(&fdp->fd_lastfile, last, __ATOMIC_RELAXED);
}

static inline int
fd_get_lastfile_unlocked(struct filedesc *fdp)
{

	return (__atomic_load_n(&fdp->fd_lastfile, __ATOMIC_RELAXED));
}

/*
 * Prefetch distances of the remap loops, in slots: the old entry of
 * fds[i + REMAP_PF_ENT] is fetched first; REMAP_PF_FILE slots ahead its
 * entry has arrived and the file it points to is fetched for writing.
 * By the time slot i is processed both are in cache, and the locked
 * reference increment, which on x86 waits for nothing else, is short.
 * The entry needs some 50 slots' time to arrive: 64/32 left the file
 * prefetch waiting (1M random: 8.1 ns an entry; 128/64: 6.7; 128/96:
 * 7.9).  Releasing a table prefetches each file REMAP_PF_REL slots
 * ahead (1M random: 32: 6.3 ns an entry, 128: 5.0).
 */
#ifndef REMAP_PF_ENT
#define	REMAP_PF_ENT	128
#endif
#ifndef REMAP_PF_FILE
#define	REMAP_PF_FILE	64
#endif
#ifndef REMAP_PF_REL
#define	REMAP_PF_REL	128
#endif

/*
 * Below this many slots an old table and its files fit in L2 (48 + 64
 * bytes a slot, 2 MiB): the remap does not prefetch, which saves some
 * 7% of a small remap (1K slots: 6.3 -> 5.8 ns an entry).
 */
#ifndef REMAP_PF_MIN
#define	REMAP_PF_MIN	4096
#endif

/* The last reference's work: close hook and free.  kern_file.c. */
int	fdrop_last(struct file *fp, struct thread *td) FDR_SYM(fdrop_last);

/* fdrop(), inlined into the hot release loops. */
static inline int
fdrop_inl(struct file *fp, struct thread *td)
{
	unsigned int left;

	left = __atomic_sub_fetch(&fp->f_count, 1, __ATOMIC_ACQ_REL);
	assert(left != ~0u);
	if (left != 0)
		return (0);
	return (fdrop_last(fp, td));
}

/*
 * k references dropped at once (a run of slots holding one file), the
 * last one closing the file as fdrop() does.
 */
static inline int
fdrop_n(struct file *fp, unsigned int k, struct thread *td)
{
	unsigned int old;

	old = __atomic_fetch_sub(&fp->f_count, k, __ATOMIC_ACQ_REL);
	assert(old >= k);
	if (old != k)
		return (0);
	return (fdrop_last(fp, td));
}

#define	NDSLOT(x)	((x) / NDENTRIES)
#define	NDBIT(x)	((NDSLOTTYPE)1 << ((x) % NDENTRIES))

/* kern_subr.c: a warm block of size bytes for the next allocation. */
void	fdr_prepare(size_t size) FDR_SYM(fdr_prepare);
/* kern_subr.c: n zone objects (files) under one lock, or ENOMEM. */
int	fdr_zone_alloc_n(void **items, size_t n) FDR_SYM(fdr_zone_alloc_n);

/* kern_descrip.c */
struct filedesc	*fdinit(void) FDR_SYM(fdinit);
struct filedesc	*fdalloc_table(size_t nslots) FDR_SYM(fdalloc_table);
void		 fdfree_table(struct filedesc *fdp) FDR_SYM(fdfree_table);
struct filedesc	*fdcopy(struct filedesc *fdp) FDR_SYM(fdcopy);
void		 fdrelease_slots(struct filedescent *fde, size_t n,
		    struct thread *td) FDR_SYM(fdrelease_slots);
void		 fddrop(struct filedesc *fdp, struct thread *td) FDR_SYM(fddrop);
void		 fdescfree(struct thread *td) FDR_SYM(fdescfree);
void		 filecaps_free(struct filecaps *fcaps) FDR_SYM(filecaps_free);
int		 fdcaps_make(struct filecaps *fcaps, struct fdcaps **fcsp)
		    FDR_SYM(fdcaps_make);
void		 fdcaps_drop(struct fdcaps *fcs) FDR_SYM(fdcaps_drop);

/* One more slot holds fcs (NULL, all rights, is nothing to hold). */
static inline void
fdcaps_hold(struct fdcaps *fcs)
{

	if (fcs != NULL)
		__atomic_fetch_add(&fcs->fcs_refcnt, 1, __ATOMIC_RELAXED);
}

/*
 * kern_remap.c: the exec's remap, which moves references (proc_exec()
 * on a table no other process shares).  The caller holds the old
 * table's exclusive lock from fdcopy_remapped_move() until
 * fdinstall_remapped_move() (which unlocks and frees it) or
 * fdescfree_remapped_move() (after which it unlocks it); in between the
 * old table must not be used, the image activator included.  The new
 * table's slots borrow the references of the old slots whose bit is set
 * in rm_taken; only a slot named twice or more takes more.
 * fdcopy_remapped_move() has fdcopy_remapped()'s errors and order; on
 * error nothing is left borrowed, taken or allocated.
 */
struct remap_move {
	struct filedesc	*rm_fdp;	/* the new table */
	NDSLOTTYPE	*rm_taken;	/* old slots borrowed from */
};

int	fdcopy_remapped_move(struct filedesc *fdp, const int *fds,
	    size_t nfds, struct remap_move *rm) FDR_SYM(fdcopy_remapped_move);
void	fdinstall_remapped_move(struct thread *td, struct remap_move *rm)
	    FDR_SYM(fdinstall_remapped_move);
void	fdescfree_remapped_move(struct remap_move *rm, const int *fds,
	    size_t nfds) FDR_SYM(fdescfree_remapped_move);

#endif /* !_KERN_INTERNAL_H_ */
