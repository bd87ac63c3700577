/*
 * remap_bench.h: the C side of FDRemap's benchmarks.
 *
 * Builders for large descriptor tables and descriptor lists, and the
 * baselines our fdcopy_remapped() is measured against, each written
 * plainly over the core's own structures:
 *
 *   bench_memcpy()          the machine's limit for moving the entries
 *   bench_gather()          old[fds[i]] copied, no checks, no counting
 *   freebsd_fdcopy_remapped()  FreeBSD 11's per-entry loop, rule for rule
 *
 * Nothing here is part of the library.
 */
#ifndef _REMAP_BENCH_H_
#define _REMAP_BENCH_H_

#include <stddef.h>
#include <stdint.h>

#include <fdremap/kernel.h>

/* A monotonic clock in nanoseconds. */
uint64_t	bench_now_ns(void);

/* The descriptor lists of the benchmarks. */
enum bench_list {
	BENCH_LIST_IDENTITY = 0,	/* 0, 1, ..., n-1 */
	BENCH_LIST_REVERSED = 1,	/* n-1, ..., 1, 0 */
	BENCH_LIST_RANDOM = 2,		/* a random permutation of 0..n-1 */
	BENCH_LIST_HALF = 3,		/* n/2 distinct descriptors, random */
	BENCH_LIST_SAME = 4,		/* n times descriptor n/2 */
};

/*
 * Fill fds (room for n) with list kind over a table of n descriptors,
 * shuffling with a generator seeded by seed.  Returns the length of the
 * list (n, or n/2 for BENCH_LIST_HALF), 0 for an unknown kind.
 */
size_t	bench_list_fill(int kind, int *fds, size_t n, uint64_t seed);

/*
 * A process of the model whose table holds n open, passable files at
 * descriptors 0..n-1, each installed with finstall() and all rights,
 * each with an image activator that succeeds (so that proc_exec() of
 * any of them runs).  The files are allocated one after the other; when
 * scattered is non-zero they are installed in a random order (seeded),
 * so that descriptor order and memory order disagree, as in a table that
 * has lived long.  NULL when out of memory.  proc_destroy() frees it.
 */
struct thread	*bench_proc_build(size_t n, int scattered, uint64_t seed);

/*
 * The limit: memcpy of n entries, and a gather loop that copies
 * old[fds[i]] to dst[i] with no checks and no reference counting.
 */
void	bench_memcpy(struct filedescent *dst, const struct filedescent *src,
	    size_t n);
void	bench_gather(struct filedescent *dst, const struct filedescent *old,
	    const int *fds, size_t n);

/*
 * The floor of reference counting: a plain loop that takes, then drops,
 * one reference on the file of each old[fds[i]] (the atomic add and
 * subtract of fhold and fdrop), copying nothing and checking nothing.
 */
void	bench_refcount_hold(const struct filedescent *old, const int *fds,
	    size_t n);
void	bench_refcount_drop(const struct filedescent *old, const int *fds,
	    size_t n);

/* Allocators the FreeBSD baseline can be given. */
#define	FREEBSD_ALLOC_FDR	0	/* the core's fdr_calloc (superpages) */
#define	FREEBSD_ALLOC_LIBC	1	/* plain calloc(3) */

/*
 * FreeBSD 11's slot and table, for its baseline: 48-byte slots holding
 * the capabilities by value (an ioctl array of each slot's own), and
 * passability read through the file's ops.  Our core's slots are 32
 * bytes; the baseline keeps FreeBSD's shape.
 */
struct freebsd_filedescent {
	struct file	*fde_file;
	struct filecaps	 fde_caps;
	uint8_t		 fde_flags;
	uint32_t	 fde_seq;
};

struct freebsd_filedesc {
	struct freebsd_filedescent *fd_ofiles;
	NDSLOTTYPE	*fd_map;
	int		 fd_nfiles;
	int		 fd_lastfile;
	int		 fd_freefile;
	unsigned short	 fd_cmask;
	unsigned int	 fd_refcnt;
	struct fd_lock	 fd_lock;
};

/*
 * A FreeBSD-shaped table holding the files of ours, slot for slot, with
 * one more reference each and the capabilities copied.  NULL when out
 * of memory.  Free it with freebsd_fdescfree_remapped().
 */
struct freebsd_filedesc *freebsd_table_of(struct filedesc *fdp, int alloc);

/*
 * FreeBSD 11's fdcopy_remapped(), over its own table shape and with the
 * same errors as ours: for each entry in order, the bounds check, the
 * empty check, the passable check through the file's ops
 * (fp->f_ops->fo_flags), a whole-entry copy, filecaps_copy(), the atomic
 * fhold(), the bitmap bit and the fd_lastfile store.  The new table is
 * zeroed at allocation, as FreeBSD's (M_ZERO), and sized for nfds slots
 * (FreeBSD sized it for the old table's; we size it as ours does, to
 * compare loops).  alloc is one of FREEBSD_ALLOC_*; free the table with
 * freebsd_fdescfree_remapped() and the same alloc.
 */
int	freebsd_fdcopy_remapped(struct freebsd_filedesc *fdp, const int *fds,
	    size_t nfds, struct freebsd_filedesc **ret, int alloc);

/* FreeBSD 11's fdescfree_remapped(): per slot, free caps, fdrop. */
void	freebsd_fdescfree_remapped(struct freebsd_filedesc *fdp, int alloc);

/*
 * FreeBSD 11's table work of an exec that succeeds: copy in the list
 * (the core's copyin(), as ours), fdcopy_remapped(), and, at install,
 * the release of the old table (fdescfree: a reference dropped and the
 * capabilities freed per old slot).  *fdpp becomes the new table.
 * Returns 0 or the remap's error, *fdpp unchanged then.
 */
int	freebsd_exec_tables(struct freebsd_filedesc **fdpp, const int *fds,
	    size_t nfds, int alloc);

/* Bytes of a FreeBSD-shaped table: struct, slots, bitmap. */
size_t	freebsd_table_bytes(const struct freebsd_filedesc *fdp);

/*
 * The machine's calibration, printed with every result: the rate of a
 * 48 MiB memcpy (best of a few, GB/s), and the latency of a random
 * cache line (a dependent chase through 256 MiB, ns a line, TLB misses
 * included: the allocation is not advised for superpages).
 */
double	bench_calibrate_copy_gbps(void);
double	bench_calibrate_line_ns(void);

/*
 * Random cache lines read independently (a sum over shuffled line
 * indices of 256 MiB, no load waiting for another): ns a line, what a
 * remap's random accesses cost at best.
 */
double	bench_calibrate_random_line_ns(void);

/*
 * One system call (getppid(2), which no library caches), best of five
 * runs of 100,000: ns a call, what a launch pays dozens of times, and
 * more on a virtual machine.
 */
double	bench_calibrate_syscall_ns(void);

/*
 * Bytes the table occupies: its struct, its fd_nfiles slots and their
 * bitmap.  The allocator's rounding is not included: the core puts big
 * blocks on superpage boundaries, which can leave up to 2 MiB of
 * address space around a block that is never touched.
 */
size_t	bench_table_bytes(const struct filedesc *fdp);

#endif /* !_REMAP_BENCH_H_ */
