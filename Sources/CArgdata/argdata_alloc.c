/*
 * argdata_alloc.c: argdata's memory.  Plain malloc(3) when argdata is
 * built alone; FDRemap's counted allocator, with its fault injection,
 * when the program links the kernel model too (the tests do), so that a
 * test can make the k-th allocation of argdata fail and see the bytes in
 * use come back.  The kernel model's functions are weak references: they
 * are used if present and never pulled in.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "argdata_impl.h"

extern void	*fdr_malloc(size_t) __attribute__((weak));
extern void	*fdr_calloc(size_t, size_t) __attribute__((weak));
extern void	*fdr_reallocarray(void *, size_t, size_t)
		    __attribute__((weak));
extern void	 fdr_free(void *) __attribute__((weak));

/* malloc(size), counted where FDRemap's allocator is linked in. */
void *
ad_malloc(size_t size)
{

	return (fdr_malloc != NULL ? fdr_malloc(size) : malloc(size));
}

/* calloc(nmemb, size), the same way. */
void *
ad_calloc(size_t nmemb, size_t size)
{

	return (fdr_calloc != NULL ? fdr_calloc(nmemb, size) :
	    calloc(nmemb, size));
}

/* realloc(ptr, nmemb * size), ENOMEM when the product overflows. */
void *
ad_reallocarray(void *ptr, size_t nmemb, size_t size)
{

	if (fdr_reallocarray != NULL)
		return (fdr_reallocarray(ptr, nmemb, size));
	if (size != 0 && nmemb > SIZE_MAX / size) {
		errno = ENOMEM;
		return (NULL);
	}
	return (realloc(ptr, nmemb * size));
}

/* free(ptr), by the allocator that made it. */
void
ad_free(void *ptr)
{

	if (fdr_free != NULL)
		fdr_free(ptr);
	else
		free(ptr);
}
