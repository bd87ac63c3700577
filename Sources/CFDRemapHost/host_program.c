/*
 * host_program.c: program_spawn_raw() and program_exec_raw(), and the
 * image activator of the mirror files, which starts the real program
 * once the model has accepted the exec.
 */
#define	_GNU_SOURCE
#include <sys/resource.h>

#include <errno.h>
#include <limits.h>

#include "host_internal.h"

static int	host_fo_exec(struct file *fp, struct image_args *args,
		    struct thread *td);

/*
 * Every mirror file stands for a real descriptor: passable, closed by
 * the caller and never by the model, executable by host_fo_exec.
 */
const struct fileops host_fileops = {
	.fo_flags = DFLAG_PASSABLE,
	.fo_close = NULL,
	.fo_exec = host_fo_exec,
};

/*
 * The image activator: the model accepted the exec and built the new
 * table in args->fdp, slot i a mirror file of real descriptor fds[i].
 * Plan the child (argv, E2BIG and EMFILE before anything starts, the
 * shuffle) in memory of its own, and start it.
 */
static int
host_fo_exec(struct file *fp, struct image_args *args,
    struct thread *td __attribute__((unused)))
{
	const struct hostfile *hf = fp->f_data;
	struct host_launch *hl = hf->hf_launch;
	const struct program_attr *attr = hl->hl_attr;
	struct filedesc *fdp = args->fdp;
	struct program_attr listen;
	struct host_plan *hp;
	struct rlimit rl;
	char **listenenv = NULL;
	int *src, n, i, error;

	if (hl->hl_fdsfault)
		return (EFAULT);	/* the mirror is not the caller's */
	n = fdp->fd_lastfile + 1;
	hp = fdr_calloc(1, sizeof(*hp));
	src = fdr_malloc(((size_t)n + 1) * sizeof(*src));
	if (hp == NULL || src == NULL) {
		error = ENOMEM;
		goto out;
	}
	hp->hp_flags = hl->hl_flags;
	hp->hp_spawn = hl->hl_spawn;
	hp->hp_wantpidfd = attr != NULL && attr->pa_pidfd != NULL;
	if (attr != NULL && (attr->pa_flags & PROGRAM_LISTEN_PID) != 0) {
		/* The plan takes this environment instead of pa_envp. */
		error = host_listen_env(attr->pa_envp, &listenenv,
		    &hp->hp_listenpid);
		if (error != 0)
			goto out;
		listen = *attr;
		listen.pa_envp = listenenv;
		attr = &listen;
	}
	error = host_plan_attr(hp, attr);
	if (error != 0)
		goto out;
	error = host_plan_args(hp, args, attr, hf->hf_fd);
	if (error != 0)
		goto out;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur > INT_MAX)
		rl.rlim_cur = INT_MAX;
	if ((rlim_t)n > rl.rlim_cur) {
		error = EMFILE;
		goto out;
	}
	for (i = 0; i < n; i++)
		src[i] = ((const struct hostfile *)
		    fdp->fd_ofiles[i].fde_file->f_data)->hf_fd;
	error = host_plan_fds(hp, src, n, hf->hf_fd);
	if (error != 0)
		goto out;
	error = host_start(hp, &hl->hl_pid);
	if (attr != NULL && attr->pa_closedby != NULL)
		*attr->pa_closedby = hp->hp_closedby;
	if (error == 0 && hl->hl_spawn && hp->hp_wantpidfd)
		*attr->pa_pidfd = hp->hp_pidfd;
out:
	if (hp != NULL)
		host_plan_free(hp);
	fdr_free(hp);
	fdr_free(src);
	fdr_free(listenenv);
	return (error);
}

/* Both forms: the model decides, its activator launches. */
int
host_launch(int execfd, const void *data, size_t datalen, const int *fds,
    size_t fdslen, const struct program_attr *attr, bool spawn, pid_t *pid)
{
	struct host_launch hl = {
		.hl_attr = attr,
		.hl_flags = attr != NULL ? attr->pa_flags : 0,
		.hl_spawn = spawn,
		.hl_pid = -1,
	};
	int error;

	error = host_model_exec(&hl, execfd, data, datalen, fds, fdslen);
	if (error == 0 && pid != NULL)
		*pid = hl.hl_pid;
	return (error);
}

/* Start a child: see program.h. */
int
program_spawn_raw(int execfd, const void *data, size_t datalen,
    const int *fds, size_t fdslen, const struct program_attr *attr,
    pid_t *pid)
{

	return (host_launch(execfd, data, datalen, fds, fdslen, attr, true,
	    pid));
}

/* Replace the calling process: see program.h.  Returns only on error. */
int
program_exec_raw(int execfd, const void *data, size_t datalen,
    const int *fds, size_t fdslen, const struct program_attr *attr)
{

	return (host_launch(execfd, data, datalen, fds, fdslen, attr, false,
	    NULL));
}
