/*
 * fdremap/subr.h: the kernel model's support routines: memory allocation
 * and copy-in from caller memory.
 *
 * Every allocation of the core (and of argdata and the launcher's
 * planning) goes through fdr_malloc() and friends, so that a test can
 * make the k-th one fail and can check that the bytes in use return to
 * what they were (the hooks are in fdremap/testing.h, for tests only).
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

#endif /* !_FDREMAP_SUBR_H_ */
