/*
 * kern_exec.c: copying in an exec's data and descriptor list, and
 * CloudABI's proc_exec() (FreeBSD's exec_copyin_data_fds and
 * cloudabi_sys_proc_exec).
 */
#define	_GNU_SOURCE
#include <errno.h>
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
 * Copy in the descriptor list and remap the process's table with it into
 * args->fdp.  The kernel's copy is temporary.
 */
static int
exec_copyin_fds(struct thread *td, struct image_args *args, const int *fds,
    size_t fdslen)
{
	int *kfds = NULL;
	int error;

	if (fdslen > 0) {
		kfds = fdr_malloc(fdslen * sizeof(*kfds));
		if (kfds == NULL)
			return (ENOMEM);
		error = copyin(fds, kfds, fdslen * sizeof(*kfds));
		if (error != 0) {
			fdr_free(kfds);
			return (error);
		}
	}
	error = fdcopy_remapped(td->td_proc->p_fd, kfds, fdslen, &args->fdp);
	fdr_free(kfds);
	return (error);
}

/*
 * The checks and copies of imgact.h, in its order.  fd_lastfile is read
 * without the lock only to bound the allocation, as FreeBSD does;
 * fdcopy_remapped() checks again under the lock.
 */
int
exec_copyin_data_fds(struct thread *td, struct image_args *args,
    const void *data, size_t datalen, const int *fds, size_t fdslen)
{
	long last;
	int error;

	memset(args, 0, sizeof(*args));
	args->fd = -1;
	last = fd_get_lastfile_unlocked(td->td_proc->p_fd);
	if (datalen >= EXEC_ARG_MAX || fdslen > (size_t)(last + 1))
		return (E2BIG);
	error = exec_copyin_data(args, data, datalen);
	if (error == 0)
		error = exec_copyin_fds(td, args, fds, fdslen);
	if (error != 0)
		exec_free_args(args);
	return (error);
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
 * The executable's file: open in td's current table, not open for
 * writing, readable by FREAD or FEXEC.  Returns it with a reference, or
 * EBADF.
 */
static int
fget_exec(struct thread *td, int fd, struct file **fpp)
{
	struct filedesc *fdp = td->td_proc->p_fd;
	struct file *fp;
	int error = EBADF;

	FILEDESC_SLOCK(fdp);
	if (fd >= 0 && fd <= fdp->fd_lastfile &&
	    (fp = fdp->fd_ofiles[fd].fde_file) != NULL &&
	    (fp->f_flag & FWRITE) == 0 &&
	    (fp->f_flag & (FREAD | FEXEC)) != 0) {
		fhold(fp);
		*fpp = fp;
		error = 0;
	}
	FILEDESC_UNLOCK(fdp);
	return (error);
}

/*
 * CloudABI's exec in the model: copy in, find the executable in the old
 * table, run its image activator, and install the new table only when
 * the activator succeeds.  On every error the old table is untouched.
 */
int
proc_exec(struct thread *td, int fd, const void *data, size_t datalen,
    const int *fds, size_t fdslen)
{
	struct image_args args;
	struct file *fp;
	int error;

	error = exec_copyin_data_fds(td, &args, data, datalen, fds, fdslen);
	if (error != 0)
		return (error);
	args.fd = fd;
	error = fget_exec(td, fd, &fp);
	if (error == 0) {
		if (fp->f_ops->fo_exec == NULL)
			error = EACCES;
		else
			error = fp->f_ops->fo_exec(fp, &args, td);
		if (error == 0) {
			fdinstall_remapped(td, args.fdp);
			args.fdp = NULL;
		}
		(void)fdrop(fp, td);
	}
	exec_free_args(&args);
	return (error);
}
