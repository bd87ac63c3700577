/*
 * host_program.c: program_spawn_raw() and program_exec_raw(), and the
 * image activator of the mirror files, which starts the real program
 * once the model has accepted the exec.
 */
#define	_GNU_SOURCE
#include <sys/resource.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "host_internal.h"

static int	host_fo_exec(struct file *fp, struct image_args *args,
		    struct thread *td);

/*
 * The lists whose child starts before the model decides.  Below
 * HOST_EARLY_MIN the child's shuffle is too short to hide the model
 * behind it: moving it to another CPU and waking it there cost more
 * (measured with benchmarks/interleaved, random lists, once the mirror
 * was two files: at 3,000 descriptors 1.09x the floor in turn against
 * 1.11-1.18x early; at 4,000 1.11-1.13x in turn against 1.08-1.09x
 * early; at 10,000 1.12x against 1.04-1.07x).  Above HOST_EARLY_MAX
 * copying the list first would cost what the overlap saves.  A list a
 * fresh table takes (host_fresh_likely()) never starts early: an early
 * child shuffles a copy of the caller's table, and a fresh table in turn
 * was faster (4,000 descriptors: 0.83x the floor against 1.02x early;
 * 10,000: 0.75x against 0.93x, before the bound on files in flight;
 * with it 0.78x at 10,000).
 */
#ifndef HOST_EARLY_MIN
#define	HOST_EARLY_MIN	3072
#endif
#define	HOST_EARLY_MAX	(1 << 20)

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
 * Whether RLIMIT_NOFILE allows n descriptors: EMFILE otherwise.
 */
static int
host_nofile_check(int n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur > INT_MAX)
		rl.rlim_cur = INT_MAX;
	return ((rlim_t)n > rl.rlim_cur ? EMFILE : 0);
}

/*
 * The activator of a launch whose child started early: the model
 * accepted, so plan the arguments (E2BIG) and check the limit (EMFILE)
 * as for any launch, and let the child exec.  The model read the very
 * copy of the list the child shuffled by (hl_kfds, as hl_list), so the
 * new table is that list.  Its error, or 0 with hl_pid set.
 */
static int
host_release(struct host_launch *hl, struct image_args *args, int execfd)
{
	const struct program_attr *attr = hl->hl_attr;
	struct host_plan *hp = hl->hl_early;
	int n = args->fdp->fd_lastfile + 1, error;

	error = host_plan_args(hp, args, attr, execfd);
	if (error == 0)
		error = host_nofile_check(n);
	if (error != 0)
		return (error);
	hl->hl_released = true;
	error = host_finish_early(hp, HOST_GO_EXEC);
	if (attr != NULL && attr->pa_closedby != NULL)
		*attr->pa_closedby = hp->hp_closedby;
	if (error == 0) {
		hl->hl_pid = hp->hp_pid;
		if (hp->hp_wantpidfd)
			*attr->pa_pidfd = hp->hp_pidfd;
	}
	return (error);
}

/*
 * The image activator: the model accepted the exec and built the new
 * table in args->fdp from our copy of the list, hl_list, so its slot i
 * stands for real descriptor hl_list[i] (fp, the executable's file, names
 * its own).  Plan the child (argv, E2BIG and EMFILE before anything
 * starts, the shuffle) in memory of its own, and start it.
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
	char **listenenv = NULL;
	int n, error;

	if (hl->hl_fdsfault || (hl->hl_list == NULL &&
	    fdp->fd_lastfile >= 0))
		return (EFAULT);	/* the mirror is not the caller's */
	if (hl->hl_early != NULL)
		return (host_release(hl, args, hf->hf_fd));
	n = fdp->fd_lastfile + 1;
	hp = fdr_calloc(1, sizeof(*hp));
	if (hp == NULL)
		return (ENOMEM);
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
	error = host_nofile_check(n);
	if (error != 0)
		goto out;
	/* hl_list outlives the child's shuffle: it ends in host_start(). */
	error = host_plan_fds(hp, hl->hl_list, n, hf->hf_fd);
	if (error != 0)
		goto out;
	error = host_start(hp, &hl->hl_pid);
	if (attr != NULL && attr->pa_closedby != NULL)
		*attr->pa_closedby = hp->hp_closedby;
	if (error == 0 && hl->hl_spawn && hp->hp_wantpidfd)
		*attr->pa_pidfd = hp->hp_pidfd;
out:
	host_plan_free(hp);
	fdr_free(hp);
	fdr_free(listenenv);
	return (error);
}

/*
 * Plan a spawn's child before the model runs, from the list as it is, and
 * start it: it shuffles while the model decides (host_release() lets it
 * exec, host_launch() stops it otherwise).  Only where the plan cannot
 * be other than the model's: a list that can be read, short enough to
 * copy at once, of descriptor numbers (no negative entry), with options
 * that are valid, within RLIMIT_NOFILE, and data that is not already
 * E2BIG, on a kernel with clone3 and a thread that may use two CPUs;
 * not for PROGRAM_LISTEN_PID, whose environment the activator builds,
 * nor for a list a fresh table would take (but with PROGRAM_TEST_EARLY).
 * Returns 0 with hl_early and hl_kfds set (the caller frees them), or
 * with neither for the ordinary launch; ENOMEM (nothing left) when
 * memory runs out, which a launch may say at any point.
 */
static int
host_plan_early(struct host_launch *hl, int execfd, size_t datalen,
    const int *fds, size_t fdslen)
{
	struct host_plan *hp = NULL;
	struct rlimit rl;
	int *kfds = NULL, error = ENOMEM;
	size_t i;

	if ((hl->hl_flags & (PROGRAM_TEST_SERIAL | PROGRAM_LISTEN_PID)) != 0 ||
	    ((hl->hl_flags & PROGRAM_TEST_EARLY) == 0 &&
	    host_fresh_likely(fdslen, hl->hl_flags, true)) ||
	    datalen >= EXEC_ARG_MAX || fdslen < HOST_EARLY_MIN ||
	    fdslen > HOST_EARLY_MAX || getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    fdslen > rl.rlim_cur)
		return (0);
	hp = fdr_calloc(1, sizeof(*hp));
	kfds = fdr_malloc(fdslen * sizeof(*kfds));
	if (hp == NULL || kfds == NULL)
		goto fail;
	error = 0;		/* from here on: the ordinary launch */
	if (copyin(fds, kfds, fdslen * sizeof(*kfds)) != 0)
		goto fail;
	for (i = 0; i < fdslen; i++)
		if (kfds[i] < 0)
			goto fail;
	hp->hp_flags = hl->hl_flags;
	hp->hp_spawn = true;
	hp->hp_wantpidfd = hl->hl_attr != NULL && hl->hl_attr->pa_pidfd != NULL;
	if (host_plan_attr(hp, hl->hl_attr) != 0)
		goto fail;
	if (host_plan_fds(hp, kfds, (int)fdslen, execfd) != 0) {
		error = ENOMEM;
		goto fail;
	}
	if (host_start_early(hp) != 0)
		goto fail;
	hl->hl_early = hp;
	hl->hl_kfds = kfds;
	return (0);
fail:
	if (hp != NULL)
		host_plan_free(hp);
	fdr_free(hp);
	fdr_free(kfds);
	return (error);
}

/*
 * One launch: the model decides, its activator launches.  A spawn's
 * child starts first where it can (host_plan_early()), so that its
 * shuffle and the model's work overlap; when the model refuses, it is
 * stopped and reaped before the model's error is returned.
 */
static int
host_launch_once(struct host_launch *hl, int execfd, const void *data,
    size_t datalen, const int *fds, size_t fdslen)
{
	int error;

	error = hl->hl_spawn ? host_plan_early(hl, execfd, datalen, fds,
	    fdslen) : 0;
	if (error == 0)
		error = host_model_exec(hl, execfd, data, datalen, fds, fdslen);
	if (hl->hl_early != NULL) {
		if (!hl->hl_released)
			(void)host_finish_early(hl->hl_early, HOST_GO_ABORT);
		host_plan_free(hl->hl_early);
		fdr_free(hl->hl_early);
		fdr_free(hl->hl_kfds);
		hl->hl_early = NULL;
		hl->hl_kfds = NULL;
	}
	return (error);
}

/*
 * Both forms.  The first launch takes the list's entries for open
 * without asking (host_mirror_plan()); a closed one makes its child
 * fail with EBADF before anything runs, and then, as after any failure
 * that asking might have changed, the launch is made again with the
 * model asking, so that the error is the one the model gives for the
 * caller's table as it is (an E2BIG may come before that EBADF).  Not
 * after EFAULT or ENOMEM, which asking does not change.  The failed
 * child was reaped, and nothing of the caller's changed.
 */
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
	int error, cancel;

	/* poll(2), close(2) and waitid(2) must not end a launch halfway. */
	(void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
	error = host_launch_once(&hl, execfd, data, datalen, fds, fdslen);
	if (error != 0 && hl.hl_guessed && error != EFAULT &&
	    error != ENOMEM) {
		hl.hl_exact = true;
		hl.hl_released = false;
		hl.hl_pid = -1;
		error = host_launch_once(&hl, execfd, data, datalen, fds,
		    fdslen);
	}
	(void)pthread_setcancelstate(cancel, NULL);
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
