/*
 * remap_bench.c: table builders, descriptor lists and the baselines of
 * FDRemap's benchmarks (remap_bench.h).
 */
#define	_GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "remap_bench.h"

_Static_assert(sizeof(pthread_rwlock_t) <= sizeof(struct fd_lock),
    "struct fd_lock cannot hold a pthread_rwlock_t");

#define	BENCH_CMASK	022

/* Slot and bit of descriptor x in the bitmap (kern_internal.h's). */
#define	NDSLOT(x)	((x) / NDENTRIES)
#define	NDBIT(x)	((NDSLOTTYPE)1 << ((x) % NDENTRIES))

/* A monotonic clock in nanoseconds. */
uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

/* splitmix64: a small, good, seedable generator. */
static uint64_t
bench_rand(uint64_t *state)
{
	uint64_t z;

	z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return (z ^ (z >> 31));
}

/* A random number below bound (bound > 0), by multiply-shift. */
static size_t
bench_rand_below(uint64_t *state, size_t bound)
{

	return ((size_t)(((unsigned __int128)bench_rand(state) * bound) >> 64));
}

/* Fisher-Yates shuffle of n ints. */
static void
bench_shuffle_ints(int *a, size_t n, uint64_t seed)
{
	uint64_t state = seed;
	size_t i, j;
	int t;

	for (i = n; i > 1; i--) {
		j = bench_rand_below(&state, i);
		t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* Fisher-Yates shuffle of n pointers. */
static void
bench_shuffle_ptrs(void **a, size_t n, uint64_t seed)
{
	uint64_t state = seed;
	size_t i, j;
	void *t;

	for (i = n; i > 1; i--) {
		j = bench_rand_below(&state, i);
		t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* The lists of remap_bench.h; HALF is the first half of a permutation. */
size_t
bench_list_fill(int kind, int *fds, size_t n, uint64_t seed)
{
	size_t i;

	switch (kind) {
	case BENCH_LIST_IDENTITY:
		for (i = 0; i < n; i++)
			fds[i] = (int)i;
		return (n);
	case BENCH_LIST_REVERSED:
		for (i = 0; i < n; i++)
			fds[i] = (int)(n - 1 - i);
		return (n);
	case BENCH_LIST_RANDOM:
	case BENCH_LIST_HALF:
		for (i = 0; i < n; i++)
			fds[i] = (int)i;
		bench_shuffle_ints(fds, n, seed);
		return (kind == BENCH_LIST_HALF ? n / 2 : n);
	case BENCH_LIST_SAME:
		for (i = 0; i < n; i++)
			fds[i] = (int)(n / 2);
		return (n);
	}
	return (0);
}

/* The image activator of the benchmark files: every exec succeeds. */
static int
bench_exec(struct file *fp, struct image_args *args, struct thread *td)
{

	(void)fp;
	(void)args;
	(void)td;
	return (0);
}

/* The files of the benchmark tables: passable, nothing to close. */
static const struct fileops bench_fileops = {
	.fo_flags = DFLAG_PASSABLE,
	.fo_close = NULL,
	.fo_exec = bench_exec,
};

/*
 * A process with n passable files at descriptors 0..n-1 (remap_bench.h).
 * All files are allocated first, then installed, in a shuffled order
 * when scattered; the table's slot holds the only reference.
 */
struct thread *
bench_proc_build(size_t n, int scattered, uint64_t seed)
{
	struct thread *td;
	struct file **fps;
	size_t i, made = 0, done = 0;
	int fd;

	if (n > INT_MAX)
		return (NULL);
	td = proc_create();
	fps = malloc((n > 0 ? n : 1) * sizeof(*fps));
	if (td == NULL || fps == NULL)
		goto fail;
	for (made = 0; made < n; made++) {
		if (falloc_noinstall(td, &fps[made]) != 0)
			goto fail;
		finit(fps[made], FREAD, DTYPE_VNODE, NULL, &bench_fileops);
	}
	if (scattered)
		bench_shuffle_ptrs((void **)fps, n, seed);
	for (done = 0; done < n; done++) {
		if (finstall(td, fps[done], &fd, 0, NULL) != 0)
			goto fail;
		(void)fdrop(fps[done], td);
	}
	free(fps);
	return (td);
fail:
	for (i = done; i < made; i++)
		(void)fdrop(fps[i], td);
	free(fps);
	proc_destroy(td);
	return (NULL);
}

/* The limit for moving n entries. */
void
bench_memcpy(struct filedescent *dst, const struct filedescent *src,
    size_t n)
{

	memcpy(dst, src, n * sizeof(*dst));
}

/* The limit for gathering n entries: no checks, no counting. */
void
bench_gather(struct filedescent *dst, const struct filedescent *old,
    const int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = old[fds[i]];
}

/* One atomic increment per entry's file: the floor of fhold. */
void
bench_refcount_hold(const struct filedescent *old, const int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		__atomic_fetch_add(&old[fds[i]].fde_file->f_count, 1,
		    __ATOMIC_RELAXED);
}

/* One atomic decrement per entry's file: the floor of fdrop. */
void
bench_refcount_drop(const struct filedescent *old, const int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		__atomic_fetch_sub(&old[fds[i]].fde_file->f_count, 1,
		    __ATOMIC_ACQ_REL);
}

/* The FreeBSD table's lock. */
#define	FREEBSD_RWLOCK(fdp) \
	((pthread_rwlock_t *)(void *)(fdp)->fd_lock.fdl_storage)
#define	FREEBSD_SLOCK(fdp)	(void)pthread_rwlock_rdlock(FREEBSD_RWLOCK(fdp))
#define	FREEBSD_UNLOCK(fdp)	(void)pthread_rwlock_unlock(FREEBSD_RWLOCK(fdp))

static inline void	freebsd_fhold(struct file *fp);

/* calloc(3) from the allocator the baseline was given. */
static void *
freebsd_calloc(int alloc, size_t nmemb, size_t size)
{

	if (alloc == FREEBSD_ALLOC_LIBC)
		return (calloc(nmemb, size));
	return (fdr_calloc(nmemb, size));
}

/* free(3) to the allocator the baseline was given. */
static void
freebsd_free(int alloc, void *p)
{

	if (alloc == FREEBSD_ALLOC_LIBC)
		free(p);
	else
		fdr_free(p);
}

/*
 * FreeBSD's fdinit() for a remap: an empty, zeroed table with room for
 * nslots slots, one reference, the default umask.  NULL when out of
 * memory.
 */
static struct freebsd_filedesc *
freebsd_fdinit(size_t nslots, int alloc)
{
	struct freebsd_filedesc *fdp;
	size_t nfiles;

	nfiles = NDSLOTS(nslots > 0 ? nslots : 1) * NDENTRIES;
	if (nfiles > INT_MAX)
		return (NULL);
	fdp = freebsd_calloc(alloc, 1, sizeof(*fdp));
	if (fdp == NULL)
		return (NULL);
	fdp->fd_ofiles = freebsd_calloc(alloc, nfiles,
	    sizeof(*fdp->fd_ofiles));
	fdp->fd_map = freebsd_calloc(alloc, NDSLOTS(nfiles), NDSLOTSIZE);
	if (fdp->fd_ofiles == NULL || fdp->fd_map == NULL ||
	    pthread_rwlock_init((pthread_rwlock_t *)(void *)
	    fdp->fd_lock.fdl_storage, NULL) != 0) {
		freebsd_free(alloc, fdp->fd_ofiles);
		freebsd_free(alloc, fdp->fd_map);
		freebsd_free(alloc, fdp);
		return (NULL);
	}
	fdp->fd_nfiles = (int)nfiles;
	fdp->fd_lastfile = -1;
	fdp->fd_cmask = BENCH_CMASK;
	fdp->fd_refcnt = 1;
	return (fdp);
}

/*
 * FreeBSD's filecaps_copy(): the whole capabilities by value, then an
 * ioctl array of dst's own when src has one.  FreeBSD's M_WAITOK cannot
 * fail; ours returns ENOMEM with dst's array forgotten.
 */
static int
freebsd_filecaps_copy(const struct filecaps *src, struct filecaps *dst,
    int alloc)
{
	size_t size;

	*dst = *src;
	if (src->fc_ioctls == NULL)
		return (0);
	size = sizeof(src->fc_ioctls[0]) *
	    (size_t)(src->fc_nioctls > 0 ? src->fc_nioctls : 0);
	dst->fc_ioctls = freebsd_calloc(alloc, 1, size > 0 ? size : 1);
	if (dst->fc_ioctls == NULL)
		return (ENOMEM);
	memcpy(dst->fc_ioctls, src->fc_ioctls, size);
	return (0);
}

/* FreeBSD's filecaps_free(). */
static void
freebsd_filecaps_free(struct filecaps *fcaps, int alloc)
{

	freebsd_free(alloc, fcaps->fc_ioctls);
	fcaps->fc_ioctls = NULL;
	fcaps->fc_nioctls = -1;
}

/* FreeBSD's fhold(): refcount_acquire(9), an atomic increment. */
static inline void
freebsd_fhold(struct file *fp)
{

	__atomic_fetch_add(&fp->f_count, 1, __ATOMIC_RELAXED);
}

/*
 * FreeBSD's fdrop(): refcount_release(9) inline, and on the last
 * reference the slow path, which is the core's fdrop() (given the
 * reference back first).  The benchmarks never take that path: the old
 * table holds a reference to every file.
 */
static inline void
freebsd_fdrop(struct file *fp)
{

	if (__atomic_sub_fetch(&fp->f_count, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	__atomic_store_n(&fp->f_count, 1, __ATOMIC_RELAXED);
	(void)fdrop(fp, NULL);
}

/* FreeBSD's table of ours: the same files, slot for slot. */
struct freebsd_filedesc *
freebsd_table_of(struct filedesc *fdp, int alloc)
{
	struct freebsd_filedesc *nfdp;
	struct freebsd_filedescent *nfde;
	int i;

	filedesc_slock(fdp);
	nfdp = freebsd_fdinit((size_t)fdp->fd_nfiles, alloc);
	if (nfdp == NULL)
		goto out;
	for (i = 0; i <= fdp->fd_lastfile; i++) {
		if (fdp->fd_ofiles[i].fde_file == NULL)
			continue;
		nfde = &nfdp->fd_ofiles[i];
		if (freebsd_filecaps_copy(fdecaps(&fdp->fd_ofiles[i]),
		    &nfde->fde_caps, alloc) != 0) {
			filedesc_unlock(fdp);
			freebsd_fdescfree_remapped(nfdp, alloc);
			return (NULL);
		}
		nfde->fde_file = fdp->fd_ofiles[i].fde_file;
		nfde->fde_flags = fdp->fd_ofiles[i].fde_flags & UF_EXCLOSE;
		freebsd_fhold(nfde->fde_file);
		nfdp->fd_map[NDSLOT(i)] |= NDBIT(i);
		nfdp->fd_lastfile = i;
	}
	nfdp->fd_freefile = fdp->fd_freefile;
	nfdp->fd_cmask = fdp->fd_cmask;
out:
	filedesc_unlock(fdp);
	return (nfdp);
}

/* FreeBSD 11's loop (remap_bench.h says what it does per entry). */
int
freebsd_fdcopy_remapped(struct freebsd_filedesc *fdp, const int *fds,
    size_t nfds, struct freebsd_filedesc **ret, int alloc)
{
	struct freebsd_filedesc *newfdp;
	struct freebsd_filedescent *nfde, *ofde;
	size_t i;
	int error;

	FREEBSD_SLOCK(fdp);
	if (nfds > (size_t)((long)fdp->fd_lastfile + 1)) {
		FREEBSD_UNLOCK(fdp);
		return (E2BIG);
	}
	newfdp = freebsd_fdinit(nfds, alloc);
	if (newfdp == NULL) {
		FREEBSD_UNLOCK(fdp);
		return (ENOMEM);
	}
	newfdp->fd_freefile = (int)nfds;
	for (i = 0; i < nfds; ++i) {
		if (fds[i] < 0 || fds[i] > fdp->fd_lastfile) {
			error = EBADF;
			goto bad;
		}
		ofde = &fdp->fd_ofiles[fds[i]];
		if (ofde->fde_file == NULL) {
			error = EBADF;
			goto bad;
		}
		if ((ofde->fde_file->f_ops->fo_flags & DFLAG_PASSABLE) == 0) {
			error = EINVAL;
			goto bad;
		}
		nfde = &newfdp->fd_ofiles[i];
		*nfde = *ofde;
		if (freebsd_filecaps_copy(&ofde->fde_caps, &nfde->fde_caps,
		    alloc) != 0) {
			memset(nfde, 0, sizeof(*nfde));
			error = ENOMEM;
			goto bad;
		}
		freebsd_fhold(nfde->fde_file);
		newfdp->fd_map[NDSLOT(i)] |= NDBIT(i);
		newfdp->fd_lastfile = (int)i;
	}
	newfdp->fd_cmask = fdp->fd_cmask;
	FREEBSD_UNLOCK(fdp);
	*ret = newfdp;
	return (0);
bad:
	FREEBSD_UNLOCK(fdp);
	freebsd_fdescfree_remapped(newfdp, alloc);
	return (error);
}

/* FreeBSD 11's fdescfree_remapped() (fdescfree_fds without close). */
void
freebsd_fdescfree_remapped(struct freebsd_filedesc *fdp, int alloc)
{
	struct freebsd_filedescent *fde;
	struct file *fp;
	int i;

	for (i = 0; i <= fdp->fd_lastfile; i++) {
		fde = &fdp->fd_ofiles[i];
		fp = fde->fde_file;
		if (fp != NULL) {
			freebsd_filecaps_free(&fde->fde_caps, alloc);
			freebsd_fdrop(fp);
		}
	}
	pthread_rwlock_destroy((pthread_rwlock_t *)(void *)
	    fdp->fd_lock.fdl_storage);
	freebsd_free(alloc, fdp->fd_map);
	freebsd_free(alloc, fdp->fd_ofiles);
	freebsd_free(alloc, fdp);
}

/* FreeBSD's exec table work: copy-in, remap, release of the old table. */
int
freebsd_exec_tables(struct freebsd_filedesc **fdpp, const int *fds,
    size_t nfds, int alloc)
{
	struct freebsd_filedesc *newfdp;
	int *kfds;
	int error;

	kfds = freebsd_calloc(alloc, nfds > 0 ? nfds : 1, sizeof(*kfds));
	if (kfds == NULL)
		return (ENOMEM);
	error = copyin(fds, kfds, nfds * sizeof(*kfds));
	if (error == 0)
		error = freebsd_fdcopy_remapped(*fdpp, kfds, nfds, &newfdp,
		    alloc);
	freebsd_free(alloc, kfds);
	if (error != 0)
		return (error);
	freebsd_fdescfree_remapped(*fdpp, alloc);
	*fdpp = newfdp;
	return (0);
}

/* The table's struct, slots and bitmap. */
size_t
bench_table_bytes(const struct filedesc *fdp)
{
	size_t nfiles = (size_t)fdp->fd_nfiles;

	return (sizeof(*fdp) + nfiles * sizeof(*fdp->fd_ofiles) +
	    NDSLOTS(nfiles) * NDSLOTSIZE);
}

/* A FreeBSD-shaped table's struct, slots and bitmap. */
size_t
freebsd_table_bytes(const struct freebsd_filedesc *fdp)
{
	size_t nfiles = (size_t)fdp->fd_nfiles;

	return (sizeof(*fdp) + nfiles * sizeof(*fdp->fd_ofiles) +
	    NDSLOTS(nfiles) * NDSLOTSIZE);
}

#define	CAL_COPY_BYTES	((size_t)48 << 20)
#define	CAL_CHASE_BYTES	((size_t)256 << 20)
#define	CAL_LINE	64

/* The best of five 48 MiB memcpys, in GB/s (both buffers warm). */
double
bench_calibrate_copy_gbps(void)
{
	char *a, *b;
	uint64_t t, best = UINT64_MAX;
	int i;

	a = malloc(CAL_COPY_BYTES);
	b = malloc(CAL_COPY_BYTES);
	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return (0);
	}
	memset(a, 1, CAL_COPY_BYTES);
	memset(b, 2, CAL_COPY_BYTES);
	for (i = 0; i < 5; i++) {
		/* a and b escape, so the copy stays between the clocks. */
		__asm__ volatile("" : : "r"(a), "r"(b) : "memory");
		t = bench_now_ns();
		memcpy(b, a, CAL_COPY_BYTES);
		__asm__ volatile("" : : "r"(a), "r"(b) : "memory");
		t = bench_now_ns() - t;
		if (t < best)
			best = t;
	}
	free(a);
	free(b);
	return ((double)CAL_COPY_BYTES / (double)best);
}

/*
 * A dependent chase through the lines of 256 MiB in a random cyclic
 * order: every load waits for the one before, so this is the latency of
 * a random line (TLB misses included), in ns.
 */
double
bench_calibrate_line_ns(void)
{
	size_t n = CAL_CHASE_BYTES / CAL_LINE, i, steps = 4u << 20;
	size_t *order;
	char *mem;
	void **p;
	uint64_t t;

	mem = malloc(CAL_CHASE_BYTES);
	order = malloc(n * sizeof(*order));
	if (mem == NULL || order == NULL) {
		free(mem);
		free(order);
		return (0);
	}
	for (i = 0; i < n; i++)
		order[i] = i;
	bench_shuffle_ptrs((void **)order, n, 42);
	for (i = 0; i < n; i++)
		*(void **)(mem + order[i] * CAL_LINE) =
		    mem + order[(i + 1) % n] * CAL_LINE;
	p = (void **)(mem + order[0] * CAL_LINE);
	for (i = 0; i < steps / 4; i++)		/* warm the TLB and caches */
		p = *p;
	t = bench_now_ns();
	for (i = 0; i < steps; i++)
		p = *p;
	t = bench_now_ns() - t;
	__asm__ volatile("" : : "r"(p));
	free(mem);
	free(order);
	return ((double)t / (double)steps);
}

/* Independent random line reads over 256 MiB: ns a line. */
double
bench_calibrate_random_line_ns(void)
{
	size_t n = CAL_CHASE_BYTES / CAL_LINE, i, steps = 4u << 20;
	uint32_t *idx;
	uint64_t state = 7, sum = 0, t;
	char *mem;

	mem = malloc(CAL_CHASE_BYTES);
	idx = malloc(steps * sizeof(*idx));
	if (mem == NULL || idx == NULL) {
		free(mem);
		free(idx);
		return (0);
	}
	memset(mem, 1, CAL_CHASE_BYTES);
	for (i = 0; i < steps; i++)
		idx[i] = (uint32_t)bench_rand_below(&state, n);
	t = bench_now_ns();
	for (i = 0; i < steps; i++)
		sum += (unsigned char)mem[(size_t)idx[i] * CAL_LINE];
	t = bench_now_ns() - t;
	__asm__ volatile("" : : "r"(sum));
	free(mem);
	free(idx);
	return ((double)t / (double)steps);
}

/* getppid(2) through syscall(2), best of five runs: ns a call. */
double
bench_calibrate_syscall_ns(void)
{
	double best = 1e12, ns;
	uint64_t t;
	int r, i;

	for (r = 0; r < 5; r++) {
		t = bench_now_ns();
		for (i = 0; i < 100000; i++)
			(void)syscall(SYS_getppid);
		ns = (double)(bench_now_ns() - t) / 100000;
		if (ns < best)
			best = ns;
	}
	return (best);
}
