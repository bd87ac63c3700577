/*
 * fdremap/testing.h: hooks for tests, not part of the API.  No public
 * header includes this one; the libraries' sources and the tests do.
 *
 * Fault injection for the kernel model's allocator and copy-in (fail
 * points and the per-thread count are thread-local: arming one in a test
 * does not disturb tests running on other threads), and program_attr's
 * pa_flags, which force the launcher's fallbacks.
 */
#ifndef _FDREMAP_TESTING_H_
#define _FDREMAP_TESTING_H_

#include <stdint.h>

/* Test hook: make this thread's copyin() use the pipe path (on != 0). */
void	fdr_copyin_force_pipe(int on);

/* Fail points. */
#define	FDR_FAIL_MALLOC	0	/* fdr_*alloc return NULL (ENOMEM) */
#define	FDR_FAIL_COPYIN	1	/* copyin() returns EFAULT */
#define	FDR_FAIL_NPOINTS 2

/*
 * Arm a fail point on the calling thread: the k-th call from now fails
 * (k >= 1) and later calls succeed again; k == 0 disarms.
 */
void	fdr_fail_arm(int point, uint64_t k);

/* Calls that reached the fail point on this thread since it was armed. */
uint64_t fdr_fail_calls(int point);

/* Whether the armed failure has fired on this thread. */
int	fdr_fail_fired(int point);

/* Bytes allocated and not yet freed by this thread. */
int64_t	fdr_mem_inuse_thread(void);

/*
 * Test hooks: force each fallback of "close the rest", as if the
 * facility were missing on this kernel.  They nest: without /proc the
 * child brute-forces (closing every number up to the hard RLIMIT_NOFILE
 * and past every source), and
 * the caller finds its highest descriptor by probing with poll(2).
 * Without close_range a child started for a fresh table cannot unshare
 * it either: it exits having changed nothing and a child is started
 * again with a copy of the caller's table.
 */
#define	PROGRAM_TEST_NOCLOEXECRANGE	0x01	/* CLOSE_RANGE_CLOEXEC: EINVAL */
#define	PROGRAM_TEST_NOCLOSERANGE	0x02	/* close_range(2): ENOSYS */
#define	PROGRAM_TEST_NOPROCFS		0x04	/* /proc/self/fd: ENOENT */

/*
 * Test hook: start a spawn's child only after the model has decided, as
 * an exec, an unreadable list or a kernel without clone3 do, instead of
 * beside it.
 */
#define	PROGRAM_TEST_SERIAL		0x08

/*
 * Test hook: start such a child first even when the machine has had no
 * CPU to spare of late (which makes a launch go in turn) and when the
 * list is one a fresh table would take (which an early child never
 * has), so that the early path is tested on a busy machine too.
 */
#define	PROGRAM_TEST_EARLY		0x20

/*
 * Test hook: never a fresh table: the child shuffles a copy of the
 * caller's table with dup2, as when no socket can be had.
 */
#define	PROGRAM_TEST_NOFRESH		0x10

/*
 * Test hook: a fresh table's files do not all arrive (as when a security
 * module refuses to let the child receive one): the child, its table
 * already its own, exits, and a child with a copy of the caller's table
 * is started instead.
 */
#define	PROGRAM_TEST_FRESHRECV		0x40

/*
 * How many of the calling thread's launches so far gave their child a
 * fresh table (the caller sent the files through a socket, the child
 * kept nothing of the caller's table); the others shuffled a copy.
 */
uint64_t fdr_host_fresh_launches(void);

#endif /* !_FDREMAP_TESTING_H_ */
