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

/* Per-descriptor capabilities, as FreeBSD's struct filecaps. */
struct filecaps {
	uint64_t	 fc_rights[2];	/* rights, by value */
	unsigned long	*fc_ioctls;	/* allowed ioctls, owned; NULL: all */
	int16_t		 fc_nioctls;	/* entries in fc_ioctls; -1: all */
	uint32_t	 fc_fcntls;	/* allowed fcntls */
};

#define	CAP_RIGHTS_ALL	UINT64_C(0xffffffffffffffff)
#define	CAP_FCNTL_ALL	UINT32_C(0xffffffff)

/* Per-descriptor flags (fde_flags). */
#define	UF_EXCLOSE	0x01		/* close-on-exec */

/* One slot of a table: 48 bytes. */
struct filedescent {
	struct file	*fde_file;	/* NULL: the slot is free */
	struct filecaps	 fde_caps;
	uint8_t		 fde_flags;	/* UF_EXCLOSE */
};

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
 * freed; NULL means all rights.  Returns 0 with *fd set, or EMFILE
 * (process limit) or ENOMEM.
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
 * Duplicate descriptor old.  FDDUP_NORMAL takes the lowest free slot;
 * FDDUP_FIXED takes slot new, closing what was there (old == new is a
 * no-op that checks old).  The new slot gets the old one's capabilities
 * and, only with FDDUP_FLAG_CLOEXEC, close-on-exec.  The new descriptor
 * is returned in td->td_retval[0].  Returns 0, EBADF, EMFILE or ENOMEM.
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
 * one reference per slot, capabilities (ioctl arrays copied) and flags
 * (close-on-exec included) unchanged.  fdp is read under its shared lock.
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
 * fd_freefile; 5 an ioctl array and its length agree; 6 every used
 * slot's file has references.  Meant for tests and assertions.
 */
int	fdcheck(struct filedesc *fdp) FDR_SYM(fdcheck);

#endif /* !_FDREMAP_FILEDESC_H_ */
