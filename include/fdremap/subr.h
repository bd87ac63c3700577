/*
 * fdremap/subr.h: the kernel model's support routines: memory allocation,
 * copy-in from caller memory, and test-only fault injection for both.
 *
 * Every allocation of the core (and of argdata and the launcher's
 * planning) goes through fdr_malloc() and friends, so that a test can
 * make the k-th one fail and can check that the bytes in use return to
 * what they were.  Fail points and the per-thread count are thread-local:
 * arming one in a test does not disturb tests running on other threads.
 */
#ifndef _FDREMAP_SUBR_H_
#define _FDREMAP_SUBR_H_


#include <fdremap/cdefs.h>
#include <stddef.h>
#include <stdint.h>

/* malloc(3)-alikes, counted and subject to FDR_FAIL_MALLOC. */
void	*fdr_malloc(size_t size);
void	*fdr_calloc(size_t nmemb, size_t size);
void	*fdr_reallocarray(void *ptr, size_t nmemb, size_t size);
void	*fdr_aligned_alloc(size_t alignment, size_t size);
void	 fdr_free(void *ptr);

/*
 * Copy len bytes from the caller's address uaddr to kaddr, as copyin(9):
 * returns 0, or EFAULT when any of the source is unreadable (NULL with a
 * non-zero length, unmapped, PROT_NONE), without faulting.  len == 0
 * never reads uaddr.  Subject to FDR_FAIL_COPYIN.  It reads through
 * process_vm_readv(2) on the calling process, and where that is refused
 * (ENOSYS, EPERM under seccomp) through a pipe, which can also fail with
 * EMFILE or ENFILE.
 */
int	copyin(const void *uaddr, void *kaddr, size_t len) FDR_SYM(copyin);

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

/* Bytes allocated and not yet freed, by this thread and by everyone. */
int64_t	fdr_mem_inuse_thread(void);
int64_t	fdr_mem_inuse(void);

#endif /* !_FDREMAP_SUBR_H_ */
