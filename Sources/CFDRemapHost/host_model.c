/*
 * host_model.c: a model process that mirrors the caller's descriptors,
 * and the model's proc_exec() run over it.
 *
 * The mirror holds only what the model's checks look at: a slot for each
 * distinct descriptor of fds that is really open, at the same number; the
 * executable's descriptor; and, only when fdslen goes past all of those,
 * a placeholder at the caller's real highest descriptor, so that the
 * model's E2BIG (fdslen > fd_lastfile + 1) is the caller's.  The
 * executable's slot holds a file of its own, with its open flags and a
 * struct hostfile naming it; every other slot holds one shared file (its
 * references taken at once), since the model's checks look at nothing a
 * descriptor's file would tell apart from another's (all passable, all
 * rights, no flags).  So a mirror of k descriptors costs two files, not k.
 *
 * The model reads the list from our copy of it, the one copy-in of the
 * caller's memory, and the activator reads the new table's slot i as
 * "real descriptor list[i]" from that copy: what the model validated is
 * what the child gets, even if another thread rewrites the caller's list
 * meanwhile.
 *
 * A launch first takes every entry of the list for an open descriptor,
 * without asking: the child finds a closed one anyway (its dup2, or its
 * sendmsg, fails with EBADF before anything runs), and asking costs a
 * reference taken and dropped on each file in a threaded process.
 * Only when that launch fails is the model run again, exactly
 * (host_launch()): whether descriptors are open is then asked with
 * poll(2), up to 512 per call and POLLNVAL for the closed ones (and for
 * O_PATH ones, which poll cannot see: fcntl(2) tells those apart).  Only
 * the executable's open flags are read (one fcntl(F_GETFL)), since they
 * are the only flags the model's proc_exec() consults; the other mirror
 * files carry no access flags.
 */
#define	_GNU_SOURCE
#include <sys/resource.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"

#define	HOST_POLL_CHUNK	512	/* descriptors per poll(2) */
#define	HOST_PROBE_MAX	(1L << 20) /* the kernel's default fs.nr_open */
#define	HOST_FDS_PEEK	1024	/* lists up to this are always read first */
#define	HOST_FDS_COPYMAX (1 << 24) /* longer lists look at the table first */

/* A linux_dirent64 as getdents64(2) returns it. */
struct host_dirent64 {
	uint64_t	d_ino;
	int64_t		d_off;
	unsigned short	d_reclen;
	unsigned char	d_type;
	char		d_name[];
};

/*
 * Call fn for each descriptor listed in the open directory dirfd (a
 * /proc/<pid>/fd), reading with getdents64(2) into buf, which must be
 * 8-byte aligned: no allocation, no errno, so the child can use it.
 * Stops when fn returns non-zero.  Returns 0, or the errno of
 * getdents64.
 */
HOST_CHILD int
host_fdwalk(int dirfd, void *buf, size_t buflen, int (*fn)(int fd, void *arg),
    void *arg)
{
	struct host_dirent64 *de;
	const char *p;
	long n, off, fd;

	for (;;) {
		n = host_sys(SYS_getdents64, dirfd, (long)buf, (long)buflen, 0,
		    0);
		if (n < 0)
			return ((int)-n);
		if (n == 0)
			return (0);
		for (off = 0; off < n; off += de->d_reclen) {
			de = (struct host_dirent64 *)(void *)((char *)buf + off);
			p = de->d_name;
			if (*p < '0' || *p > '9')
				continue;	/* "." and ".." */
			for (fd = 0; *p >= '0' && *p <= '9' && fd <= INT_MAX;
			    p++)
				fd = fd * 10 + (*p - '0');
			if (*p == '\0' && fd <= INT_MAX && fn((int)fd, arg))
				return (0);
		}
	}
}

/* fdwalk callback: remember the highest descriptor but the walker's own. */
struct host_highest {
	int	hh_dirfd;
	int	hh_highest;
};

static int
host_highest_cb(int fd, void *arg)
{
	struct host_highest *hh = arg;

	if (fd != hh->hh_dirfd && fd > hh->hh_highest)
		hh->hh_highest = fd;
	return (0);
}

/*
 * The highest open descriptor of the caller from /proc/self/fd.  Returns
 * 0 with *highestp set (-1 when none), or an errno when /proc cannot be
 * read.
 */
static int
host_highest_procfs(int *highestp)
{
	uint64_t buf[512];
	struct host_highest hh;
	int error;

	hh.hh_dirfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (hh.hh_dirfd == -1)
		return (errno);
	hh.hh_highest = -1;
	error = host_fdwalk(hh.hh_dirfd, buf, sizeof(buf), host_highest_cb,
	    &hh);
	(void)close(hh.hh_dirfd);
	if (error == 0)
		*highestp = hh.hh_highest;
	return (error);
}

/*
 * The highest open descriptor below the hard RLIMIT_NOFILE (at most
 * HOST_PROBE_MAX), probed with poll(2) a chunk at a time (one fcntl(2)
 * each above the soft limit, where poll refuses): the fallback without
 * /proc.  Not the soft limit: the caller may have lowered it below
 * descriptors it holds.
 */
static void
host_highest_probe(int *highestp)
{
	struct pollfd pfd[HOST_POLL_CHUNK];
	struct rlimit rl;
	long end, base, i, chunk;
	int highest = -1;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max > HOST_PROBE_MAX)
		end = HOST_PROBE_MAX;
	else
		end = (long)rl.rlim_max;
	chunk = end < HOST_POLL_CHUNK ? end : HOST_POLL_CHUNK;
	for (base = 0; base < end; base += chunk) {
		if (chunk > end - base)
			chunk = end - base;
		for (i = 0; i < chunk; i++)
			pfd[i] = (struct pollfd){ .fd = (int)(base + i) };
		if (poll(pfd, (nfds_t)chunk, 0) == -1) {
			for (i = 0; i < chunk; i++)
				if (fcntl((int)(base + i), F_GETFD) != -1)
					highest = (int)(base + i);
			continue;
		}
		for (i = 0; i < chunk; i++)
			if ((pfd[i].revents & POLLNVAL) == 0)
				highest = (int)(base + i);
	}
	*highestp = highest;
}

/* The caller's highest open descriptor, -1 when none. */
static int
host_highest_fd(unsigned int flags)
{
	int highest;

	if ((flags & PROGRAM_TEST_NOPROCFS) != 0 ||
	    host_highest_procfs(&highest) != 0)
		host_highest_probe(&highest);
	return (highest);
}

/*
 * Mark the entries of fds[0 .. n-1] that are not open descriptors by
 * setting them to -1, and return the highest that is (-1 when none).
 * Asks poll(2) for a chunk at a time, one fcntl(2) each where poll
 * refuses (a chunk above the soft RLIMIT_NOFILE, ENOMEM) and for each
 * entry it calls POLLNVAL: poll cannot see an O_PATH descriptor, which
 * is open all the same.
 */
static int
host_fds_validate(int *fds, size_t n)
{
	struct pollfd pfd[HOST_POLL_CHUNK];
	size_t base, i, chunk;
	int highest = -1, r;

	for (base = 0; base < n; base += chunk) {
		chunk = n - base < HOST_POLL_CHUNK ? n - base : HOST_POLL_CHUNK;
		for (i = 0; i < chunk; i++)
			pfd[i] = (struct pollfd){ .fd = fds[base + i] };
		do
			r = poll(pfd, (nfds_t)chunk, 0);
		while (r == -1 && errno == EINTR);
		for (i = 0; i < chunk; i++) {
			if (fds[base + i] < 0 ||
			    ((r == -1 || (pfd[i].revents & POLLNVAL) != 0) &&
			    fcntl(fds[base + i], F_GETFD) == -1))
				fds[base + i] = -1;
			else if (fds[base + i] > highest)
				highest = fds[base + i];
		}
	}
	return (highest);
}

/*
 * Where a guess stops: no descriptor is at or above the hard
 * RLIMIT_NOFILE (never above fs.nr_open), but one the caller kept when
 * it lowered that limit, which the exact launch then finds.  Without
 * the bound one bogus entry (INT_MAX) would size the mirror's map and
 * table by itself: 256 MB before its EBADF.
 */
static int
host_fds_bound(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max > INT_MAX)
		return (INT_MAX);
	return ((int)rl.rlim_max);
}

/*
 * The highest of fds[0 .. n-1] below bound, taken for open descriptors;
 * -1: none.
 */
static int
host_fds_top(const int *fds, size_t n, int bound)
{
	int top = -1;
	size_t i;

	for (i = 0; i < n; i++)
		if (fds[i] > top && fds[i] < bound)
			top = fds[i];
	return (top);
}

/* Model open flags for host open flags (F_GETFL). */
static unsigned int
host_fflags(int oflags)
{

	if ((oflags & O_PATH) != 0)
		return (FEXEC);
	switch (oflags & O_ACCMODE) {
	case O_RDONLY:
		return (FREAD);
	case O_WRONLY:
		return (FWRITE);
	default:
		return (FREAD | FWRITE);
	}
}

/* What the mirror is built from. */
struct host_mirror {
	uint64_t	*hm_map;	/* bit fd: mirror descriptor fd */
	int		*hm_list;	/* our copy of fds, or NULL */
	bool		 hm_listowned;	/* hm_list is ours to free */
	bool		 hm_fdsfault;	/* fds could not be read */
	bool		 hm_guessed;	/* entries taken for open, unasked */
	int		 hm_top;	/* highest marked, -1 when none */
	int		 hm_execfd;	/* open executable or -1 */
	unsigned int	 hm_execflag;	/* its model open flags */
	struct hostfile	 hm_files[2];	/* the executable's, the shared one */
};

/*
 * Build td's table from the marked descriptors, in ascending order, each
 * at its real number: the executable's file at its slot, the shared file
 * at every other, both allocated together and installed together
 * (falloc_noinstall_n(), finstall_refed_fixed()) with the shared file's
 * references taken at once (fhold_n()): the mirror costs no lock and no
 * allocation per descriptor.
 */
static int
host_mirror_build(struct thread *td, struct host_mirror *hm,
    struct host_launch *hl)
{
	size_t nslots = 0, nexec, w, k = 0, i;
	struct file **fps, *files[2], *execfp = NULL, *shared = NULL;
	uint64_t bits;
	int *nums, fd, error;

	for (w = 0; hm->hm_top >= 0 && w <= (size_t)hm->hm_top / 64; w++)
		nslots += (size_t)__builtin_popcountll(hm->hm_map[w]);
	nexec = hm->hm_execfd >= 0 ? 1 : 0;	/* marked when open */
	fps = fdr_malloc((nslots > 0 ? nslots : 1) * sizeof(*fps));
	nums = fdr_malloc((nslots > 0 ? nslots : 1) * sizeof(*nums));
	error = ENOMEM;
	if (fps == NULL || nums == NULL || falloc_noinstall_n(td, files,
	    nexec + (nslots > nexec ? 1 : 0)) != 0)
		goto out;
	if (nexec > 0) {
		execfp = files[0];
		hm->hm_files[0] = (struct hostfile){ hm->hm_execfd, hl };
		finit(execfp, hm->hm_execflag, DTYPE_NONE, &hm->hm_files[0],
		    &host_fileops);
	}
	if (nslots > nexec) {
		shared = files[nexec];
		hm->hm_files[1] = (struct hostfile){ -1, hl };
		finit(shared, 0, DTYPE_NONE, &hm->hm_files[1], &host_fileops);
		if (nslots - nexec > 1)
			fhold_n(shared, (unsigned int)(nslots - nexec - 1));
	}
	for (w = 0; hm->hm_top >= 0 && w <= (size_t)hm->hm_top / 64; w++) {
		for (bits = hm->hm_map[w]; bits != 0; bits &= bits - 1) {
			fd = (int)(w * 64) + __builtin_ctzll(bits);
			fps[k] = fd == hm->hm_execfd ? execfp : shared;
			nums[k++] = fd;
		}
	}
	error = finstall_refed_fixed(td, fps, nums, nslots);
	if (error != 0)
		for (i = 0; i < nslots; i++)
			(void)fdrop(fps[i], td);
out:
	fdr_free(fps);
	fdr_free(nums);
	return (error);
}

/*
 * The longest descriptor list read before the table is looked at: one
 * no longer than the caller may have descriptors (the hard
 * RLIMIT_NOFILE, at most HOST_FDS_COPYMAX) costs no more to read than
 * the table it is checked against, and usually proves by itself that it
 * is not E2BIG (an entry at or above fdslen - 1), sparing the walk of
 * /proc/self/fd, which costs about 0.4 us a descriptor.
 */
static size_t
host_fds_readfirst(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max < HOST_FDS_PEEK)
		return (HOST_FDS_PEEK);
	return (rl.rlim_max < HOST_FDS_COPYMAX ? (size_t)rl.rlim_max :
	    HOST_FDS_COPYMAX);
}

/*
 * Decide which descriptors the mirror needs, following the model's
 * checks: none when the data alone is E2BIG; the real highest first when
 * fds is longer than host_fds_readfirst() (so that a huge fdslen is
 * E2BIG without copying it); the open entries of fds when they can be
 * read (hm_fdsfault when they cannot); the executable; and the real
 * highest when fdslen goes past everything else.  The list is copied in
 * once, into hm_list, unless the caller has a copy already (given, the
 * early child's); the model then reads that copy.  Only when exact are
 * the entries asked whether they are open; else every entry that is a
 * descriptor number below host_fds_bound() is taken for open
 * (hm_guessed), which the child checks anyway: see host_launch().  Fills hm (hm_map and hm_list
 * allocated).
 */
static int
host_mirror_plan(struct host_mirror *hm, unsigned int flags, int execfd,
    size_t datalen, const int *fds, size_t fdslen, int *given, bool exact)
{
	int *kfds = NULL, highest = -2, top = -1, bound = INT_MAX, oflags, fd;
	size_t i, nwords, nref = fdslen;
	int error = 0;

	hm->hm_execfd = -1;
	hm->hm_top = -1;
	if (datalen >= EXEC_ARG_MAX)
		return (0);
	if (given == NULL && fdslen > HOST_FDS_PEEK &&
	    fdslen > host_fds_readfirst()) {
		highest = host_highest_fd(flags);
		if (fdslen > (size_t)highest + 1)
			nref = 0;	/* E2BIG: mirror only the highest */
	}
	if (nref > 0) {
		if (given != NULL)
			hm->hm_list = given;
		else if ((hm->hm_list = fdr_malloc(nref * sizeof(int))) ==
		    NULL)
			return (ENOMEM);
		else
			hm->hm_listowned = true;
		if (given == NULL &&
		    copyin(fds, hm->hm_list, nref * sizeof(int)) != 0) {
			nref = 0;
			hm->hm_fdsfault = true;
		} else if (exact) {
			/* The validation marks closed entries -1: a copy. */
			kfds = fdr_malloc(nref * sizeof(*kfds));
			if (kfds == NULL)
				return (ENOMEM);
			memcpy(kfds, hm->hm_list, nref * sizeof(*kfds));
			top = host_fds_validate(kfds, nref);
		} else {
			bound = host_fds_bound();
			top = host_fds_top(hm->hm_list, nref, bound);
			hm->hm_guessed = true;
		}
	}
	if (execfd >= 0 && (oflags = fcntl(execfd, F_GETFL)) != -1) {
		hm->hm_execfd = execfd;
		hm->hm_execflag = host_fflags(oflags);
		if (execfd > top)
			top = execfd;
	}
	if (highest == -2 && fdslen > (size_t)top + 1)
		highest = host_highest_fd(flags);
	if (highest > top)
		top = highest;
	nwords = top >= 0 ? (size_t)top / 64 + 1 : 1;
	hm->hm_map = fdr_calloc(nwords, sizeof(*hm->hm_map));
	if (hm->hm_map == NULL) {
		error = ENOMEM;
		goto out;
	}
	hm->hm_top = top;
	for (i = 0; i < nref; i++) {
		fd = kfds != NULL ? kfds[i] : hm->hm_list[i];
		if (fd >= 0 && fd < bound)
			hm->hm_map[fd / 64] |= UINT64_C(1) << (fd % 64);
	}
	if (hm->hm_execfd >= 0)
		hm->hm_map[execfd / 64] |= UINT64_C(1) << (execfd % 64);
	if (highest >= 0)
		hm->hm_map[highest / 64] |= UINT64_C(1) << (highest % 64);
out:
	fdr_free(kfds);
	return (error);
}

/*
 * Run the model's proc_exec() over a mirror of the caller's table; its
 * activator (host_fileops) starts the real program.  Returns the model's
 * error, the activator's, or ENOMEM; frees everything it made.  When fds
 * could not be read for the mirror, the model still decides what comes
 * before looking at them (E2BIG, EFAULT for data, its own EFAULT for
 * fds); anything after that is EFAULT, and nothing is launched.
 */
int
host_model_exec(struct host_launch *hl, int execfd, const void *data,
    size_t datalen, const int *fds, size_t fdslen)
{
	struct host_mirror hm = { 0 };
	struct thread *td;
	int error;

	error = host_mirror_plan(&hm, hl->hl_flags, execfd, datalen, fds,
	    fdslen, hl->hl_kfds, hl->hl_exact);
	hl->hl_guessed = hm.hm_guessed;
	if (error != 0)
		goto out;
	td = proc_create();
	if (td == NULL) {
		error = ENOMEM;
		goto out;
	}
	hl->hl_fdsfault = hm.hm_fdsfault;
	hl->hl_list = hm.hm_fdsfault ? NULL : hm.hm_list;
	error = host_mirror_build(td, &hm, hl);
	/*
	 * Our copy, read in place, when we have one; an unreadable list the
	 * model copies in, for its own EFAULT.
	 */
	if (error == 0 && hl->hl_list != NULL)
		error = kern_proc_exec(td, execfd, data, datalen, hl->hl_list,
		    fdslen, UIO_SYSSPACE);
	else if (error == 0)
		error = proc_exec(td, execfd, data, datalen, fds, fdslen);
	if (hm.hm_fdsfault && error != E2BIG && error != ENOMEM)
		error = EFAULT;
	proc_destroy(td);
	hl->hl_list = NULL;
out:
	if (hm.hm_listowned)
		fdr_free(hm.hm_list);
	fdr_free(hm.hm_map);
	return (error);
}
