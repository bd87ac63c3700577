/*
 * fuzz_kernel.c: a libFuzzer target for exec_copyin_data_fds() and
 * proc_exec() (on tables shared with another process, and on tables of
 * their own, whose exec lends its references) on tables built from the
 * input (finstall, finstall_fixed, finstall_refed_fixed, dup, close),
 * checked against the core's invariants after every call: the old table intact on failure (same
 * slots, flags and reference counts), the new table exactly the list on
 * success, every reference count equal to the slots holding it, every
 * file closed and every byte freed at the end.  A violation aborts.
 *
 * Built as a fuzzer by `swift build --product fuzz-kernel
 * --sanitize=fuzzer --sanitize=address` (Tests/Fuzz/run.sh); a plain
 * `swift build` makes it a program that replays the inputs named on its
 * command line (FuzzReplay).
 */
#define	_GNU_SOURCE
#include <fdremap.h>
#include <fdremap/testing.h>
#include <fuzz_replay.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define	MAXFILES	96
#define	MAXSLOTS	160

#define	CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_kernel: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/* The bytes of the input, consumed from the front; 0 when exhausted. */
struct input {
	const uint8_t	*p;
	size_t		 left;
};

static uint8_t
take(struct input *in)
{

	if (in->left == 0)
		return (0);
	in->left--;
	return (*in->p++);
}

static int	closes;		/* close hooks run */

static int
count_close(struct file *fp, struct thread *td)
{

	(void)fp;
	(void)td;
	closes++;
	return (0);
}

static int
exec_ok(struct file *fp, struct image_args *args, struct thread *td)
{

	(void)fp;
	(void)td;
	CHECK(args->fdp != NULL && fdcheck(args->fdp) == 0);
	return (0);
}

static int
exec_fails(struct file *fp, struct image_args *args, struct thread *td)
{

	(void)fp;
	(void)args;
	(void)td;
	return (ENOEXEC);
}

/* Passable or not, times no activator, one that succeeds, one that fails. */
static const struct fileops fuzzops[6] = {
	{ 0, count_close, NULL },
	{ DFLAG_PASSABLE, count_close, NULL },
	{ 0, count_close, exec_ok },
	{ DFLAG_PASSABLE, count_close, exec_ok },
	{ 0, count_close, exec_fails },
	{ DFLAG_PASSABLE, count_close, exec_fails },
};

static const unsigned int accesses[8] = {
	FREAD, FREAD, FEXEC, FREAD | FEXEC, FWRITE, FREAD | FWRITE, 0, FREAD,
};

/* What a table held: per slot, the file and flags; per file, its count. */
struct snapshot {
	int		 last;
	struct file	*files[MAXSLOTS];
	uint8_t		 flags[MAXSLOTS];
	unsigned int	 counts[MAXSLOTS];
};

static void
snap(struct filedesc *fdp, struct snapshot *s)
{

	CHECK(fdp->fd_lastfile < MAXSLOTS);
	s->last = fdp->fd_lastfile;
	for (int i = 0; i <= s->last; i++) {
		s->files[i] = fdp->fd_ofiles[i].fde_file;
		s->flags[i] = fdp->fd_ofiles[i].fde_flags;
		s->counts[i] = s->files[i] ? file_count(s->files[i]) : 0;
	}
}

static int
snap_equal(const struct snapshot *a, const struct snapshot *b)
{

	if (a->last != b->last)
		return (0);
	for (int i = 0; i <= a->last; i++)
		if (a->files[i] != b->files[i] || a->flags[i] != b->flags[i] ||
		    a->counts[i] != b->counts[i])
			return (0);
	return (1);
}

/* Every file's count equals the slots of fdp holding it. */
static void
check_balanced(struct filedesc *fdp)
{

	for (int i = 0; i <= fdp->fd_lastfile; i++) {
		struct file *fp = fdp->fd_ofiles[i].fde_file;
		unsigned int holders = 0;

		if (fp == NULL)
			continue;
		for (int j = 0; j <= fdp->fd_lastfile; j++)
			holders += fdp->fd_ofiles[j].fde_file == fp;
		CHECK(file_count(fp) == holders);
	}
}

/* A new file installed at slot fd (finstall_fixed), whatever is there. */
static void
install_fixed(struct thread *td, uint8_t b, int fd, int *opened)
{
	struct file *fp;

	if (falloc_noinstall(td, &fp) != 0)
		return;
	(*opened)++;
	finit(fp, accesses[b & 7], DTYPE_VNODE, NULL, &fuzzops[(b >> 3) % 6]);
	(void)finstall_fixed(td, fp, fd, (b & 0x40) ? O_CLOEXEC : 0, NULL);
	(void)fdrop(fp, td);
}

/*
 * n new files installed together at slots fd, fd + step, ...
 * (falloc_noinstall_n, finstall_refed_fixed), whatever is there: on
 * refusal the references are still ours and are dropped.
 */
static void
install_batch(struct thread *td, uint8_t b, int fd, int *opened)
{
	struct file *fps[4];
	int nums[4], n = 1 + (b & 3), step = (b >> 2) & 3;

	if (falloc_noinstall_n(td, fps, (size_t)n) != 0)
		return;
	*opened += n;
	for (int i = 0; i < n; i++) {
		finit(fps[i], accesses[(b + i) & 7], DTYPE_VNODE, NULL,
		    &fuzzops[(b + i) % 6]);
		nums[i] = fd + i * step;	/* step 0: refused, not increasing */
	}
	if (finstall_refed_fixed(td, fps, nums, (size_t)n) != 0)
		for (int i = 0; i < n; i++)
			(void)fdrop(fps[i], td);
}

/* Every file's count equals the slots of a and b holding it. */
static void
check_balanced2(struct filedesc *a, struct filedesc *b)
{
	struct filedesc *t[2] = { a, b };

	for (int k = 0; k < 2; k++)
		for (int i = 0; i <= t[k]->fd_lastfile; i++) {
			struct file *fp = t[k]->fd_ofiles[i].fde_file;
			unsigned int holders = 0;

			if (fp == NULL)
				continue;
			for (int m = 0; m < 2; m++)
				for (int j = 0; j <= t[m]->fd_lastfile; j++)
					holders += t[m]->fd_ofiles[j].fde_file == fp;
			CHECK(file_count(fp) == holders);
		}
}

/* Build a table from the input: files, then closes, dups and installs. */
static void
build(struct thread *td, struct input *in, int *opened)
{
	int nfiles = take(in) % MAXFILES, nops = take(in);

	for (int i = 0; i < nfiles; i++) {
		uint8_t b = take(in);
		struct filecaps caps, *capsp = NULL;
		struct file *fp;
		int fd;

		if (falloc_noinstall(td, &fp) != 0)
			continue;
		(*opened)++;
		finit(fp, accesses[b & 7], DTYPE_VNODE, NULL,
		    &fuzzops[(b >> 3) % 6]);
		if (b & 0x80) {
			memset(&caps, 0, sizeof(caps));
			caps.fc_nioctls = 2;
			caps.fc_ioctls = fdr_malloc(2 * sizeof(unsigned long));
			if (caps.fc_ioctls == NULL)
				caps.fc_nioctls = -1;
			else
				caps.fc_ioctls[0] = caps.fc_ioctls[1] = b;
			capsp = &caps;
		}
		(void)finstall(td, fp, &fd, (b & 0x40) ? O_CLOEXEC : 0,
		    capsp);
		(void)fdrop(fp, td);
	}
	for (int i = 0; i < nops; i++) {
		uint8_t op = take(in), a = take(in) % MAXSLOTS;
		uint8_t b = take(in) % MAXSLOTS;

		switch (op % 4) {
		case 0:
			(void)kern_close(td, a);
			break;
		case 1:
			(void)kern_dup(td, FDDUP_NORMAL, op & 4, a, 0);
			break;
		case 3:
			if (op & 0x80)
				install_batch(td, op, b, opened);
			else
				install_fixed(td, op, b, opened);
			break;
		default:
			(void)kern_dup(td, FDDUP_FIXED, op & 4, a, b);
			break;
		}
	}
}

/* One input: build, exec or copy in, check, tear down, check. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct snapshot before, after;
	struct image_args args;
	struct thread *td;
	int64_t mem = fdr_mem_inuse_thread();
	int opened = 0, fds[MAXSLOTS], nfds, execfd, error, mode;
	uint8_t fail;

	closes = 0;
	td = proc_create();
	CHECK(td != NULL);
	lim_set_nofile(td->td_proc, (int)(1 + take(&in) % MAXSLOTS));
	build(td, &in, &opened);
	CHECK(fdcheck(td->td_proc->p_fd) == 0);
	check_balanced(td->td_proc->p_fd);

	mode = take(&in);
	execfd = (int8_t)take(&in);
	nfds = take(&in) % MAXSLOTS;
	for (int i = 0; i < nfds; i++)
		fds[i] = (int8_t)take(&in);
	fail = take(&in);
	snap(td->td_proc->p_fd, &before);
	if (fail != 0)
		fdr_fail_arm(FDR_FAIL_MALLOC + (fail & 1), fail >> 1);
	if (mode & 1) {
		/* mode & 2: a sibling shares the table (references taken);
		 * otherwise the exec lends the table's own. */
		struct thread *sib = (mode & 2) ? proc_fork(td, 1) : NULL;
		struct snapshot old;

		error = proc_exec(td, execfd, in.p, in.left, fds, nfds);
		fdr_fail_arm(FDR_FAIL_MALLOC + (fail & 1), 0);
		snap(td->td_proc->p_fd, &after);
		if (sib != NULL) {
			snap(sib->td_proc->p_fd, &old);
			CHECK(old.last == before.last);
			for (int i = 0; i <= old.last; i++)
				CHECK(old.files[i] == before.files[i] &&
				    old.flags[i] == before.flags[i]);
			CHECK(fdcheck(sib->td_proc->p_fd) == 0);
			if (error == 0)
				check_balanced2(td->td_proc->p_fd,
				    sib->td_proc->p_fd);
			proc_destroy(sib);
			snap(td->td_proc->p_fd, &after);
		}
		if (error != 0) {
			CHECK(snap_equal(&before, &after));
		} else {
			CHECK(after.last == nfds - 1);
			for (int i = 0; i < nfds; i++)
				CHECK(after.files[i] == before.files[fds[i]] &&
				    after.flags[i] == before.flags[fds[i]]);
		}
	} else {
		error = exec_copyin_data_fds(td, &args, in.p, in.left, fds,
		    nfds);
		fdr_fail_arm(FDR_FAIL_MALLOC + (fail & 1), 0);
		if (error == 0) {
			CHECK(fdcheck(args.fdp) == 0);
			CHECK(args.fdp->fd_lastfile == nfds - 1);
			CHECK(args.argc >= (in.left > 0));
		}
		exec_free_args(&args);
		snap(td->td_proc->p_fd, &after);
		CHECK(snap_equal(&before, &after));
	}
	CHECK(fdcheck(td->td_proc->p_fd) == 0);
	check_balanced(td->td_proc->p_fd);
	proc_destroy(td);
	CHECK(closes == opened);
	CHECK(fdr_mem_inuse_thread() == mem);
	return (0);
}
