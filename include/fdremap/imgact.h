/*
 * fdremap/imgact.h: the exec arguments and CloudABI's proc_exec().
 */
#ifndef _FDREMAP_IMGACT_H_
#define _FDREMAP_IMGACT_H_


#include <fdremap/cdefs.h>
#include <stddef.h>

struct filedesc;
struct thread;

/*
 * FreeBSD 11's ARG_MAX.  It has a name of its own because glibc's
 * <linux/limits.h> defines ARG_MAX as 131072.
 */
#define	EXEC_ARG_MAX	262144

/*
 * The copied-in arguments of an exec.  buf holds the data followed by a
 * NUL (begin_argv == buf, endp just past the NUL); argc counts the NULs
 * including that one; stringspace is what is left of EXEC_ARG_MAX.  fdp
 * is the new table until it is installed or freed; fd is the executable's
 * descriptor in the old table.
 */
struct image_args {
	char		*buf;
	char		*begin_argv;
	char		*endp;
	int		 argc;
	int		 stringspace;
	struct filedesc	*fdp;
	int		 fd;
};

/*
 * Copy in data and the descriptor list, and build the remapped table in
 * args->fdp.  Checks, in order, each returning at once: E2BIG when
 * datalen >= EXEC_ARG_MAX or fdslen > fd_lastfile + 1 (before anything
 * is allocated); EFAULT when data or fds cannot be read (NULL with a
 * non-zero length, unmapped or PROT_NONE memory); then the errors of
 * fdcopy_remapped().  datalen == 0 never reads data.  On error nothing
 * stays allocated or referenced and *args is zeroed.
 */
int	exec_copyin_data_fds(struct thread *td, struct image_args *args,
	    const void *data, size_t datalen, const int *fds, size_t fdslen)
	    FDR_SYM(exec_copyin_data_fds);

/* Free what exec_copyin_data_fds() left in args, the new table too. */
void	exec_free_args(struct image_args *args) FDR_SYM(exec_free_args);

/*
 * CloudABI's exec: copy in, look up fd in the current table (EBADF when
 * not open, open for writing, or readable by neither FREAD nor FEXEC),
 * EACCES when its file has no image activator, else run the activator.
 * Only when it returns 0 is the new table installed; on any error the
 * process keeps its table exactly as it was.  Returns 0 or an errno.
 *
 * A departure from FreeBSD that no caller can observe in the tables:
 * when no other process shares the table, proc_exec() moves references
 * instead of taking them.  The old table stays exclusively locked from
 * the remap to the install; each slot the list names lends its file and
 * capabilities reference to the new table (a slot named again takes one
 * more), and the install releases only the slots not named.  So a
 * successful exec touches no file's reference count for a descriptor
 * carried over once, and a failed one takes and releases nothing.  The
 * image activator must not use the old table (it is locked, and its
 * slots are lent): it is given the new one in args->fdp.  A shared
 * table takes FreeBSD's path: references taken, the old table unlocked
 * while the activator runs, the process's reference on it dropped at
 * install.  After either returns, every file's reference count is the
 * number of slots that hold it.
 */
int	proc_exec(struct thread *td, int fd, const void *data, size_t datalen,
	    const int *fds, size_t fdslen) FDR_SYM(proc_exec);

/* Where an address points (FreeBSD's enum uio_seg). */
enum uio_seg {
	UIO_USERSPACE,		/* the caller's memory: copied in, or EFAULT */
	UIO_SYSSPACE		/* the kernel's: read in place */
};

/*
 * proc_exec() for a caller inside the kernel that has the descriptor
 * list in its own memory already (fdsseg UIO_SYSSPACE), as FreeBSD's
 * kern_* functions take what their sys_* callers copied in: the list is
 * read where it is, not copied, and must stay unchanged until this
 * returns; data is copied in as ever.  UIO_USERSPACE is proc_exec().
 * Same checks, same order, same errors, apart from the list's EFAULT,
 * which a kernel address cannot give.
 */
int	kern_proc_exec(struct thread *td, int fd, const void *data,
	    size_t datalen, const int *fds, size_t fdslen,
	    enum uio_seg fdsseg) FDR_SYM(kern_proc_exec);

#endif /* !_FDREMAP_IMGACT_H_ */
