/*
 * fdremap/filedesc.h: descriptor tables of the kernel model.
 *
 * A table is one flat array of entries with a bitmap of used slots, as in
 * FreeBSD's sys/filedesc.h.  All fields are public so that tests (in C and
 * in Swift) can observe them; change them only through the functions here.
 */
#ifndef _FDREMAP_FILEDESC_H_
#define _FDREMAP_FILEDESC_H_


#include <fdremap/cdefs.h>
#include <stddef.h>
#include <stdint.h>

#include <fdremap/file.h>

struct thread;

/*
 * Per-descriptor capabilities, as FreeBSD's struct filecaps: the form in
 * which finstall() is given them and fdecaps() shows them.
 */
struct filecaps {
	uint64_t	 fc_rights[2];	/* rights, by value */
	unsigned long	*fc_ioctls;	/* allowed ioctls, owned; NULL: all */
	int16_t		 fc_nioctls;	/* entries in fc_ioctls; -1: all */
	uint32_t	 fc_fcntls;	/* allowed fcntls */
};

#define	CAP_RIGHTS_ALL	UINT64_C(0xffffffffffffffff)
#define	CAP_FCNTL_ALL	UINT32_C(0xffffffff)

/*
 * Capabilities as slots hold them: made once by finstall(), immutable
 * from then on, and shared by every slot copied from that one (dup, fork,
 * the remap), each holding one reference (fcs_refcnt, atomic).  A slot
 * with all rights holds none (fde_caps NULL) and costs no allocation.
 * FreeBSD copies the capabilities, and their ioctl array, into each new
 * slot; sharing them keeps a slot at 32 bytes and makes a copy one
 * pointer, and no caller can tell, since they never change.
 */
struct fdcaps {
	struct filecaps	 fcs_caps;	/* the capabilities */
	unsigned int	 fcs_refcnt;	/* slots holding them */
};

/* Per-descriptor flags (fde_flags). */
#define	UF_EXCLOSE	0x01		/* close-on-exec */
#define	UF_PASSABLE	0x02		/* the file is passable, cached */

/*
 * One slot of a table: 32 bytes, and tables are 32-byte aligned, so a
 * slot is one cache line (FreeBSD's is 48 and straddles two lines half
 * the time).  UF_PASSABLE caches the file's DFLAG_PASSABLE when the slot
 * is filled (a file's operations never change), so that the remap checks
 * a slot without reading its file.
 */
struct filedescent {
	struct file	*fde_file;	/* NULL: the slot is free */
	struct fdcaps	*fde_caps;	/* NULL: all rights; see fdecaps() */
	uint8_t		 fde_flags;	/* UF_EXCLOSE, UF_PASSABLE */
	uint8_t		 fde_spare[15];
};

#define	FDE_ALIGN	32

/* The slots holding fcs, read atomically (for observers). */
static inline unsigned int
fdcaps_count(const struct fdcaps *fcs)
{

	return (__atomic_load_n(&fcs->fcs_refcnt, __ATOMIC_RELAXED));
}

/* All rights: what fdecaps() gives for a slot with fde_caps NULL. */
extern const struct filecaps filecaps_all FDR_SYM(filecaps_all);

/*
 * The capabilities of a used slot.  Valid while the slot holds them: as
 * long as the caller holds the table's lock, or the slot is otherwise
 * known not to change.  The ioctl array is shared and must not be
 * written or freed.
 */
static inline const struct filecaps *
fdecaps(const struct filedescent *fde)
{

	return (fde->fde_caps != NULL ? &fde->fde_caps->fcs_caps :
	    &filecaps_all);
}

/* Bitmap words. */
typedef	uint64_t	NDSLOTTYPE;
#define	NDSLOTSIZE	sizeof(NDSLOTTYPE)
#define	NDENTRIES	(NDSLOTSIZE * 8)	/* tables grow by this many */
#define	NDSLOTS(x)	(((x) + NDENTRIES - 1) / NDENTRIES)

/*
 * Storage of the table's reader/writer lock.  It is a pthread_rwlock_t in
 * the implementation, kept opaque here so that this header builds under
 * a strict "cc -std=c11" and imports into Swift.
 */
struct fd_lock {
	_Alignas(8) unsigned char fdl_storage[64];
};

/*
 * A descriptor table.  Slots 0 .. fd_nfiles-1 exist; a slot is used iff
 * its fde_file is non-NULL iff its bit in fd_map is set.  fd_lastfile is
 * the highest used slot (-1 when empty); no slot below fd_freefile is
 * free.  fd_refcnt counts the processes sharing the table (atomic).
 */
struct filedesc {
	struct filedescent	*fd_ofiles;	/* the slots */
	NDSLOTTYPE		*fd_map;	/* bitmap of used slots */
	int			 fd_nfiles;	/* number of slots */
	int			 fd_lastfile;	/* highest used slot */
	int			 fd_freefile;	/* no free slot below */
	unsigned short		 fd_cmask;	/* umask */
	unsigned int		 fd_refcnt;	/* processes sharing it */
	struct fd_lock		 fd_lock;	/* reader/writer lock */
};

/* Modes of kern_dup(). */
#define	FDDUP_NORMAL	0x01	/* dup(): lowest free slot */
#define	FDDUP_FIXED	0x02	/* dup2(): exactly new */

/* Flags of kern_dup(). */
#define	FDDUP_FLAG_CLOEXEC	0x1	/* the new slot is close-on-exec */

/*
 * The table lock, for observers that read a table's fields: the shared
 * lock keeps every slot, capability array and the bitmap as they are;
 * reference counts still move (read them with file_count()).  The
 * functions of this header take the lock themselves.
 */
void	filedesc_slock(struct filedesc *fdp) FDR_SYM(filedesc_slock);
void	filedesc_unlock(struct filedesc *fdp) FDR_SYM(filedesc_unlock);

/*
 * Install fp in the lowest free slot of td's table and take a reference.
 * O_CLOEXEC (the host's <fcntl.h> value) in flags sets UF_EXCLOSE.  A
 * non-NULL fcaps is moved into the slot (its ioctl array is owned from
 * then on, and *fcaps is cleared), also on error, where the array is
 * freed; NULL means all rights.  Capabilities other than all rights are
 * made into a struct fdcaps, one allocation.  Returns 0 with *fd set, or
 * EMFILE (process limit) or ENOMEM.
 */
int	finstall(struct thread *td, struct file *fp, int *fd, int flags,
	    struct filecaps *fcaps) FDR_SYM(finstall);

/*
 * Install fp at exactly slot fd of td's table, which must be free, and
 * take a reference; flags and fcaps as finstall().  For tables whose
 * numbers are given (the host launcher's mirror of a real table).
 * Returns 0, EBADF (fd negative or at or above the process limit),
 * EBUSY (the slot is in use) or ENOMEM, the table unchanged on error.
 */
int	finstall_fixed(struct thread *td, struct file *fp, int fd, int flags,
	    struct filecaps *fcaps) FDR_SYM(finstall_fixed);

/*
 * Install n files at slots fds[0 .. n-1] of td's table, which must be
 * increasing and free, under one lock and growing the table at most
 * once.  Each file's reference (the one falloc_noinstall() gave) moves
 * into its slot, as with FreeBSD's finstall_refed(); the slots get all
 * rights and no close-on-exec.  For tables whose numbers are given, the
 * host launcher's mirror of a real table.  Returns 0, or, with nothing
 * installed and every reference still the caller's: EBADF (a slot
 * negative, at or above the process limit, or not above the one before
 * it), EBUSY (a slot in use), ENOMEM.
 */
int	finstall_refed_fixed(struct thread *td, struct file **fps,
	    const int *fds, size_t n) FDR_SYM(finstall_refed_fixed);

/*
 * Duplicate descriptor old.  FDDUP_NORMAL takes the lowest free slot;
 * FDDUP_FIXED takes slot new, closing what was there (old == new is a
 * no-op that checks old).  The new slot shares the old one's
 * capabilities and, only with FDDUP_FLAG_CLOEXEC, is close-on-exec.  The
 * new descriptor is returned in td->td_retval[0].  Returns 0, EBADF,
 * EMFILE or ENOMEM (growing the table).
 */
int	kern_dup(struct thread *td, unsigned int mode, int flags, int old,
	    int new) FDR_SYM(kern_dup);

/*
 * Close descriptor fd of td's table: free the slot and drop the slot's
 * reference (closing the file on its last one).  Returns 0, EBADF, or
 * the error of the file's close hook.
 */
int	kern_close(struct thread *td, int fd) FDR_SYM(kern_close);

/*
 * Build a new table whose slot i is a copy of slot fds[i] of fdp, with
 * one reference per slot, capabilities (shared, one reference more) and
 * flags (close-on-exec included) unchanged.  fdp is read under its shared lock.
 * Errors, the first bad index deciding: E2BIG if nfds > fd_lastfile + 1;
 * EBADF for a negative descriptor, one above fd_lastfile or an empty
 * slot; EINVAL for a file that is not passable; ENOMEM.  On error no
 * reference or memory is left taken and *ret is not written.
 */
int	fdcopy_remapped(struct filedesc *fdp, const int *fds, size_t nfds,
	    struct filedesc **ret) FDR_SYM(fdcopy_remapped);

/*
 * Make fdp, built by fdcopy_remapped(), td's table and release the old
 * one (only td's reference when it is shared).  Cannot fail.
 */
void	fdinstall_remapped(struct thread *td, struct filedesc *fdp)
	    FDR_SYM(fdinstall_remapped);

/*
 * Free a table built by fdcopy_remapped() that was never installed:
 * drop each slot's reference and free capabilities and table.
 */
void	fdescfree_remapped(struct filedesc *fdp) FDR_SYM(fdescfree_remapped);

/*
 * Check the table's invariants under its shared lock.  Returns 0 or the
 * first broken rule: 1 a slot is used iff its bitmap bit is set; 2
 * fd_nfiles is a multiple of NDENTRIES and the reference count is not 0;
 * 3 fd_lastfile is the highest used slot; 4 no free slot lies below
 * fd_freefile; 5 an ioctl array and its length agree, and shared
 * capabilities have references; 6 every used slot's file has
 * references; 7 a slot's UF_PASSABLE is its file's; 8 the slots are
 * FDE_ALIGN-aligned.  Meant for tests and assertions.
 */
int	fdcheck(struct filedesc *fdp) FDR_SYM(fdcheck);

#endif /* !_FDREMAP_FILEDESC_H_ */
