/*
 * kern_exec.c: copying in an exec's data and descriptor list, and
 * CloudABI's proc_exec() (FreeBSD's exec_copyin_data_fds and
 * cloudabi_sys_proc_exec).
 */
#define	_GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kern_internal.h"

/*
 * Copy datalen bytes of data into a new buffer followed by a NUL, and
 * count argc: the NULs of the buffer including the appended one ("abc"
 * is 1, "a\0b\0" is 3).  datalen == 0 reads nothing and gives argc 0.
 */
static int
exec_copyin_data(struct image_args *args, const void *data, size_t datalen)
{
	const char *p, *end;
	int error;

	args->buf = fdr_malloc(datalen + 1);
	if (args->buf == NULL)
		return (ENOMEM);
	args->begin_argv = args->buf;
	args->endp = args->buf;
	args->stringspace = EXEC_ARG_MAX;
	if (datalen == 0)
		return (0);
	error = copyin(data, args->begin_argv, datalen);
	if (error != 0)
		return (error);
	args->begin_argv[datalen] = '\0';
	args->endp = args->begin_argv + datalen + 1;
	args->stringspace -= (int)(datalen + 1);
	end = args->endp;
	for (p = args->begin_argv; p < end; p++) {
		p = memchr(p, '\0', (size_t)(end - p));
		args->argc++;
	}
	return (0);
}

/*
 * Copy the descriptor list into a temporary buffer of the kernel's, set
 * in *kfdsp (NULL for an empty list); a list in kernel memory already
 * (UIO_SYSSPACE) is used in place, *kfdsp being fds itself.  Returns 0,
 * ENOMEM or EFAULT, with nothing allocated on error.
 */
static int
exec_copyin_fdlist(const int *fds, size_t fdslen, enum uio_seg fdsseg,
    int **kfdsp)
{
	int *kfds;
	int error;

	*kfdsp = NULL;
	if (fdslen == 0)
		return (0);
	if (fdsseg == UIO_SYSSPACE) {
		*kfdsp = (int *)(uintptr_t)fds;
		return (0);
	}
	kfds = fdr_malloc(fdslen * sizeof(*kfds));
	if (kfds == NULL)
		return (ENOMEM);
	error = copyin(fds, kfds, fdslen * sizeof(*kfds));
	if (error != 0) {
		fdr_free(kfds);
		return (error);
	}
	*kfdsp = kfds;
	return (0);
}

/*
 * The first checks and the data's copy-in of imgact.h, in its order:
 * args initialised, E2BIG, then the data.  fd_lastfile is read without
 * the lock only to bound the allocation, as FreeBSD does; the remap
 * checks again under the lock.  On error args may hold a buffer, which
 * exec_free_args() frees.
 */
static int
exec_copyin_begin(struct thread *td, struct image_args *args,
    const void *data, size_t datalen, size_t fdslen)
{
	long last;

	memset(args, 0, sizeof(*args));
	args->fd = -1;
	last = fd_get_lastfile_unlocked(td->td_proc->p_fd);
	if (datalen >= EXEC_ARG_MAX || fdslen > (size_t)(last + 1))
		return (E2BIG);
	return (exec_copyin_data(args, data, datalen));
}

/* Free a list exec_copyin_fdlist() copied in (not one used in place). */
static void
exec_free_fdlist(int *kfds, enum uio_seg fdsseg)
{

	if (fdsseg == UIO_USERSPACE)
		fdr_free(kfds);
}

/*
 * exec_copyin_data_fds() with the list where fdsseg says: copy in data
 * and list, and build the new table with references.
 */
static int
exec_copyin_data_fdseg(struct thread *td, struct image_args *args,
    const void *data, size_t datalen, const int *fds, size_t fdslen,
    enum uio_seg fdsseg)
{
	int *kfds = NULL;
	int error;

	error = exec_copyin_begin(td, args, data, datalen, fdslen);
	if (error == 0)
		error = exec_copyin_fdlist(fds, fdslen, fdsseg, &kfds);
	if (error == 0)
		error = fdcopy_remapped(td->td_proc->p_fd, kfds, fdslen,
		    &args->fdp);
	exec_free_fdlist(kfds, fdsseg);
	if (error != 0)
		exec_free_args(args);
	return (error);
}

/* Copy in data and list, and build the new table with references. */
int
exec_copyin_data_fds(struct thread *td, struct image_args *args,
    const void *data, size_t datalen, const int *fds, size_t fdslen)
{

	return (exec_copyin_data_fdseg(td, args, data, datalen, fds, fdslen,
	    UIO_USERSPACE));
}

/* Free the buffer and, when it is still there, the new table. */
void
exec_free_args(struct image_args *args)
{

	fdr_free(args->buf);
	if (args->fdp != NULL)
		fdescfree_remapped(args->fdp);
	memset(args, 0, sizeof(*args));
	args->fd = -1;
}

/*
 * The executable's file: open in table fdp, which the caller has locked,
 * not open for writing, readable by FREAD or FEXEC.  Returns it with a
 * reference, or EBADF.
 */
static int
fget_exec_locked(struct filedesc *fdp, int fd, struct file **fpp)
{
	struct file *fp;

	if (fd < 0 || fd > fdp->fd_lastfile ||
	    (fp = fdp->fd_ofiles[fd].fde_file) == NULL ||
	    (fp->f_flag & FWRITE) != 0 ||
	    (fp->f_flag & (FREAD | FEXEC)) == 0)
		return (EBADF);
	fhold(fp);
	*fpp = fp;
	return (0);
}

/* Run fp's image activator: EACCES when it has none. */
static int
exec_activate(struct thread *td, struct file *fp, struct image_args *args)
{

	if (fp->f_ops->fo_exec == NULL)
		return (EACCES);
	return (fp->f_ops->fo_exec(fp, args, td));
}

/*
 * proc_exec() on a table other processes share: the new table takes
 * references of its own, the old one is unlocked while the activator
 * runs, and installing drops the process's reference on the old one.
 */
static int
proc_exec_shared(struct thread *td, int fd, const void *data,
    size_t datalen, const int *fds, size_t fdslen, enum uio_seg fdsseg)
{
	struct filedesc *fdp;
	struct image_args args;
	struct file *fp;
	int error;

	error = exec_copyin_data_fdseg(td, &args, data, datalen, fds, fdslen,
	    fdsseg);
	if (error != 0)
		return (error);
	args.fd = fd;
	fdp = td->td_proc->p_fd;
	FILEDESC_SLOCK(fdp);
	error = fget_exec_locked(fdp, fd, &fp);
	FILEDESC_UNLOCK(fdp);
	if (error == 0) {
		error = exec_activate(td, fp, &args);
		if (error == 0) {
			fdinstall_remapped(td, args.fdp);
			args.fdp = NULL;
		}
		(void)fdrop(fp, td);
	}
	exec_free_args(&args);
	return (error);
}

/*
 * proc_exec() on a table no other process shares: the old table stays
 * locked from the remap to the install, the new table borrows its
 * references (fdcopy_remapped_move()), and installing releases only the
 * slots the list did not name.  Same errors, same order, and on error
 * the old table is as it was.
 */
static int
proc_exec_move(struct thread *td, int fd, const void *data,
    size_t datalen, const int *fds, size_t fdslen, enum uio_seg fdsseg)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct image_args args;
	struct remap_move rm;
	struct file *fp = NULL;
	int *kfds = NULL;
	int error;

	error = exec_copyin_begin(td, &args, data, datalen, fdslen);
	if (error == 0)
		error = exec_copyin_fdlist(fds, fdslen, fdsseg, &kfds);
	if (error != 0)
		goto out;
	args.fd = fd;
	FILEDESC_XLOCK(fdp);
	error = fdcopy_remapped_move(fdp, kfds, fdslen, &rm);
	if (error != 0) {
		FILEDESC_UNLOCK(fdp);
		goto out;
	}
	args.fdp = rm.rm_fdp;
	error = fget_exec_locked(fdp, fd, &fp);
	if (error == 0)
		error = exec_activate(td, fp, &args);
	args.fdp = NULL;
	if (error == 0)
		fdinstall_remapped_move(td, &rm);
	else {
		fdescfree_remapped_move(&rm, kfds, fdslen);
		FILEDESC_UNLOCK(fdp);
	}
	if (fp != NULL)
		(void)fdrop(fp, td);
out:
	exec_free_fdlist(kfds, fdsseg);
	exec_free_args(&args);
	return (error);
}

/*
 * CloudABI's exec in the model: copy in, find the executable in the old
 * table, run its image activator, and install the new table only when
 * the activator succeeds.  On every error the old table is untouched.
 * The table's sharing is read once: only this process's thread can
 * share it further, and it is here.
 */
int
kern_proc_exec(struct thread *td, int fd, const void *data, size_t datalen,
    const int *fds, size_t fdslen, enum uio_seg fdsseg)
{
	struct filedesc *fdp = td->td_proc->p_fd;

	if (__atomic_load_n(&fdp->fd_refcnt, __ATOMIC_ACQUIRE) == 1)
		return (proc_exec_move(td, fd, data, datalen, fds, fdslen,
		    fdsseg));
	return (proc_exec_shared(td, fd, data, datalen, fds, fdslen, fdsseg));
}

/* CloudABI's exec, its list in the caller's memory: see imgact.h. */
int
proc_exec(struct thread *td, int fd, const void *data, size_t datalen,
    const int *fds, size_t fdslen)
{

	return (kern_proc_exec(td, fd, data, datalen, fds, fdslen,
	    UIO_USERSPACE));
}
