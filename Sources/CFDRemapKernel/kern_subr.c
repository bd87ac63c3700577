/*
 * kern_subr.c: allocation, copy-in and fault injection for the core.
 */
#define	_GNU_SOURCE
#include <sys/mman.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kern_internal.h"

struct fail_point {
	uint64_t	fp_k;		/* the call that fails; 0: disarmed */
	uint64_t	fp_calls;	/* calls since armed */
	int		fp_fired;
};

static _Thread_local struct fail_point fail_points[FDR_FAIL_NPOINTS];
static _Thread_local int64_t mem_inuse_thread;

/*
 * Count a call at fail point p; true when this is the call that must
 * fail.  Disarmed points cost one thread-local load.
 */
static bool
fail_hit(int p)
{
	struct fail_point *fp = &fail_points[p];

	if (fp->fp_k == 0)
		return (false);
	if (++fp->fp_calls != fp->fp_k)
		return (false);
	fp->fp_fired = 1;
	return (true);
}

/*
 * Arm (k >= 1) or disarm (k == 0) fail point p on this thread, and reset
 * its counters.
 */
void
fdr_fail_arm(int point, uint64_t k)
{

	assert(point >= 0 && point < FDR_FAIL_NPOINTS);
	fail_points[point] = (struct fail_point){ .fp_k = k };
}

/* Calls that reached fail point p on this thread since it was armed. */
uint64_t
fdr_fail_calls(int point)
{

	assert(point >= 0 && point < FDR_FAIL_NPOINTS);
	return (fail_points[point].fp_calls);
}

/* Whether the armed failure of fail point p has fired on this thread. */
int
fdr_fail_fired(int point)
{

	assert(point >= 0 && point < FDR_FAIL_NPOINTS);
	return (fail_points[point].fp_fired);
}

/* Account for a block of usable size n appearing (+) or going (-). */
static void
mem_account(int64_t n)
{

	mem_inuse_thread += n;
}

/* Count a block just allocated (NULL is ignored) and return it. */
static void *
mem_allocated(void *p)
{

	if (p != NULL)
		mem_account((int64_t)malloc_usable_size(p));
	return (p);
}

/*
 * Blocks this large are aligned to and sized in whole superpages, and
 * advised to be backed by them: a remapped table of a million slots is
 * 32 MiB, and faulting it in 4 KiB pages costs more than filling it; a
 * table of 16 million read in random order through 4 KiB pages spends
 * most of its time walking page tables.  FreeBSD's kernel gets
 * superpages for such allocations too.
 */
#define	SUPERPAGE_SIZE		((size_t)2 << 20)
#define	SUPERPAGE_THRESHOLD	(2 * SUPERPAGE_SIZE)

/*
 * Under a sanitizer every block comes from the sanitizer's malloc, kept
 * nowhere, so that use after free and leaks are caught.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define	FDR_SANITIZED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define	FDR_SANITIZED	1
#endif
#endif

/*
 * The last few superpage blocks freed, kept for the next large
 * allocations: a hot path that remaps tables frees one (and the copied-in
 * descriptor list beside it) and soon builds another of about the same
 * size, and having the kernel zero 32 MiB of fresh superpages costs some
 * 2 ns a slot.  Their pages are MADV_FREE while they wait, so the system
 * takes them back under memory pressure.  A freed block replaces the
 * smallest kept one when all slots are taken.
 */
#define	SPCACHE_SLOTS	4

#ifndef FDR_SANITIZED
static struct {
	pthread_mutex_t	 sc_lock;
	void		*sc_block[SPCACHE_SLOTS];
	size_t		 sc_size[SPCACHE_SLOTS];	/* usable sizes */
} spcache = { .sc_lock = PTHREAD_MUTEX_INITIALIZER };
#endif

/* Whether p, of usable size n, is a block of superpages. */
static bool
superpage_block(const void *p, size_t n)
{

	return (n >= SUPERPAGE_THRESHOLD &&
	    ((uintptr_t)p & (SUPERPAGE_SIZE - 1)) == 0);
}

#ifndef FDR_SANITIZED
/*
 * The smallest kept block that holds size bytes and is not more than
 * twice as large, taken out of the cache; NULL when there is none.
 */
static void *
spcache_take(size_t size)
{
	void *p = NULL;
	int i, best = -1;

	pthread_mutex_lock(&spcache.sc_lock);
	for (i = 0; i < SPCACHE_SLOTS; i++) {
		if (spcache.sc_block[i] == NULL ||
		    spcache.sc_size[i] < size ||
		    spcache.sc_size[i] - size >= size + SUPERPAGE_SIZE)
			continue;
		if (best < 0 || spcache.sc_size[i] < spcache.sc_size[best])
			best = i;
	}
	if (best >= 0) {
		p = spcache.sc_block[best];
		spcache.sc_block[best] = NULL;
	}
	pthread_mutex_unlock(&spcache.sc_lock);
	return (p);
}

/* free(3), keeping the block when it is of superpages. */
static void
mem_release(void *p)
{
	size_t n;
	int i, victim = 0;

	n = malloc_usable_size(p);
	if (superpage_block(p, n)) {
		(void)madvise(p, n & ~(SUPERPAGE_SIZE - 1), MADV_FREE);
		pthread_mutex_lock(&spcache.sc_lock);
		for (i = 0; i < SPCACHE_SLOTS; i++) {
			if (spcache.sc_block[i] == NULL) {
				victim = i;
				break;
			}
			if (spcache.sc_size[i] < spcache.sc_size[victim])
				victim = i;
		}
		if (spcache.sc_block[victim] == NULL ||
		    spcache.sc_size[victim] < n) {
			void *old = spcache.sc_block[victim];

			spcache.sc_block[victim] = p;
			spcache.sc_size[victim] = n;
			p = old;
		}
		pthread_mutex_unlock(&spcache.sc_lock);
	}
	free(p);
}
#else
#define	spcache_take(size)	((void)(size), (void *)NULL)
#define	mem_release(p)		free(p)
#endif

/*
 * The file zone: FILE_ALIGN-byte objects carved from superpages, as
 * FreeBSD's UMA zones live in its direct map.  A table of many open
 * files visits them in any order; from malloc(3) they would lie 128
 * bytes apart in 4 KiB pages and each visit of a large table would walk
 * the page tables.  Address space is reserved once (ZONE_RESERVE, no
 * memory), made writable a superpage at a time; freed objects go on a
 * free list and the zone never shrinks.  The first superpage is left to
 * 4 KiB pages: a process that opens a few files (a launcher's mirror of
 * a hundred descriptors) would otherwise fault in, and have zeroed, a
 * whole 2 MiB page on its first launch, some milliseconds in a virtual
 * machine; the superpages start with the 32,769th file.  When the reservation cannot be
 * made or is full, objects come from posix_memalign(3) as before.
 */
#define	ZONE_ITEM	64
#define	ZONE_RESERVE	((size_t)64 << 30)

#ifndef FDR_SANITIZED
static struct {
	pthread_mutex_t	 z_lock;
	char		*z_base;	/* reserved, superpage aligned */
	int		 z_state;	/* 0 untried, 1 reserved, -1 failed */
	size_t		 z_committed;	/* bytes made writable */
	size_t		 z_used;	/* bytes handed out, ever */
	void		**z_stack;	/* freed objects, a stack of pointers */
	size_t		 z_nstack;	/* on it */
	size_t		 z_capstack;	/* room on it */
	void		*z_free;	/* more freed, a list through them */
} zone = { .z_lock = PTHREAD_MUTEX_INITIALIZER };

/* The reservation, published for zone_owns() once it is made. */
static char *zone_base;

/* Whether p is an object of the zone. */
static bool
zone_owns(const void *p)
{
	const char *base = __atomic_load_n(&zone_base, __ATOMIC_ACQUIRE);

	return (base != NULL && (const char *)p >= base &&
	    (const char *)p < base + ZONE_RESERVE);
}

/*
 * Make one more superpage of the zone writable, reserving the address
 * space first if need be.  Returns 0 or ENOMEM.  Zone locked.
 */
static int
zone_grow(void)
{
	char *p;

	if (zone.z_state == 0) {
		p = mmap(NULL, ZONE_RESERVE + SUPERPAGE_SIZE, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		zone.z_state = -1;
		if (p == MAP_FAILED)
			return (ENOMEM);
		zone.z_base = (char *)(((uintptr_t)p + SUPERPAGE_SIZE - 1) &
		    ~(uintptr_t)(SUPERPAGE_SIZE - 1));
		zone.z_state = 1;
		__atomic_store_n(&zone_base, zone.z_base, __ATOMIC_RELEASE);
	}
	if (zone.z_state < 0 || zone.z_committed == ZONE_RESERVE)
		return (ENOMEM);
	p = zone.z_base + zone.z_committed;
	if (mprotect(p, SUPERPAGE_SIZE, PROT_READ | PROT_WRITE) != 0)
		return (ENOMEM);
	if (zone.z_committed > 0)
		(void)madvise(p, SUPERPAGE_SIZE, MADV_HUGEPAGE);
	zone.z_committed += SUPERPAGE_SIZE;
	return (0);
}

/*
 * A freed object, or NULL.  Zone locked.  Freed objects wait on a stack
 * of pointers: taking many (a launcher's mirror of 10,000 descriptors)
 * reads the stack in order, where a list through the objects would wait
 * for each one's cache line before finding the next, one miss after the
 * other when they were freed in random order.  The list takes what the
 * stack had no room for.
 */
static void *
zone_pop(void)
{
	void *p;

	if (zone.z_nstack > 0)
		return (zone.z_stack[--zone.z_nstack]);
	if ((p = zone.z_free) != NULL)
		zone.z_free = *(void **)p;
	return (p);
}

/* An object of the zone, or NULL when it has none to give. */
static void *
zone_alloc(void)
{
	void *p;

	pthread_mutex_lock(&zone.z_lock);
	if ((p = zone_pop()) == NULL &&
	    (zone.z_used < zone.z_committed || zone_grow() == 0)) {
		p = zone.z_base + zone.z_used;
		zone.z_used += ZONE_ITEM;
	}
	pthread_mutex_unlock(&zone.z_lock);
	return (p);
}

/*
 * Up to n objects of the zone into items under one lock; returns how
 * many it gave.
 */
static size_t
zone_alloc_n(void **items, size_t n)
{
	size_t i;

	pthread_mutex_lock(&zone.z_lock);
	for (i = 0; i < n; i++) {
		if ((items[i] = zone_pop()) != NULL)
			continue;
		if (zone.z_used < zone.z_committed || zone_grow() == 0) {
			items[i] = zone.z_base + zone.z_used;
			zone.z_used += ZONE_ITEM;
		} else
			break;
	}
	pthread_mutex_unlock(&zone.z_lock);
	return (i);
}

/*
 * Give an object back to the zone: on the stack, grown by doubling with
 * realloc(3) (counted nowhere: the zone's own bookkeeping), or on the
 * list when the stack cannot grow.
 */
static void
zone_free(void *p)
{
	size_t cap;
	void **stack;

	pthread_mutex_lock(&zone.z_lock);
	if (zone.z_nstack == zone.z_capstack) {
		cap = zone.z_capstack > 0 ? zone.z_capstack * 2 : 1024;
		stack = realloc(zone.z_stack, cap * sizeof(*stack));
		if (stack != NULL) {
			zone.z_stack = stack;
			zone.z_capstack = cap;
		}
	}
	if (zone.z_nstack < zone.z_capstack)
		zone.z_stack[zone.z_nstack++] = p;
	else {
		*(void **)p = zone.z_free;
		zone.z_free = p;
	}
	pthread_mutex_unlock(&zone.z_lock);
}
#else
#define	zone_owns(p)	((void)(p), false)
#define	zone_alloc()	((void *)NULL)
#define	zone_alloc_n(items, n)	((void)(items), (void)(n), (size_t)0)
#define	zone_free(p)	((void)(p))
#endif

/* A block of at least size bytes, in superpages when it is large. */
static void *
mem_alloc(size_t size)
{
	void *p;

	if (size < SUPERPAGE_THRESHOLD)
		return (malloc(size == 0 ? 1 : size));
	if (size > SIZE_MAX - SUPERPAGE_SIZE)
		return (NULL);
	size = (size + SUPERPAGE_SIZE - 1) & ~(SUPERPAGE_SIZE - 1);
	if ((p = spcache_take(size)) != NULL)
		return (p);
	if (posix_memalign(&p, SUPERPAGE_SIZE, size) != 0)
		return (NULL);
	(void)madvise(p, size, MADV_HUGEPAGE);
	return (p);
}

/*
 * Have a warm block of size bytes wait in the superpage cache, for the
 * next large allocation of about that size: a table that has grown
 * this large will be remapped into a table as large, and the first call
 * of a process would otherwise wait for the kernel (and, in a virtual
 * machine, the host) to fault in and zero fresh memory: some 100 ns a
 * slot, twenty times the remap itself.  The block's pages are touched
 * here, on the growth path, which copies a table half as large anyway.
 * Nothing is done when such a block already waits, for small sizes,
 * under a sanitizer, or when memory is short (an optimisation only).
 */
void
fdr_prepare(size_t size)
{
#ifndef FDR_SANITIZED
	void *p;

	if (size < SUPERPAGE_THRESHOLD || size > SIZE_MAX - SUPERPAGE_SIZE)
		return;
	size = (size + SUPERPAGE_SIZE - 1) & ~(SUPERPAGE_SIZE - 1);
	if ((p = spcache_take(size)) == NULL) {
		if (posix_memalign(&p, SUPERPAGE_SIZE, size) != 0)
			return;
		(void)madvise(p, size, MADV_HUGEPAGE);
		memset(p, 0, size);
	}
	mem_release(p);
#else
	(void)size;
#endif
}

/* malloc(3), counted and subject to FDR_FAIL_MALLOC. */
void *
fdr_malloc(size_t size)
{

	if (fail_hit(FDR_FAIL_MALLOC))
		return (NULL);
	return (mem_allocated(mem_alloc(size)));
}

/* calloc(3), counted and subject to FDR_FAIL_MALLOC. */
void *
fdr_calloc(size_t nmemb, size_t size)
{

	void *p;

	if (fail_hit(FDR_FAIL_MALLOC))
		return (NULL);
	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if (nmemb > SIZE_MAX / size)
		return (NULL);
	if (nmemb * size < SUPERPAGE_THRESHOLD)
		return (mem_allocated(calloc(nmemb, size)));
	p = mem_alloc(nmemb * size);
	if (p != NULL)
		memset(p, 0, nmemb * size);
	return (mem_allocated(p));
}

/*
 * reallocarray(3), counted and subject to FDR_FAIL_MALLOC.  On failure
 * ptr is left allocated, as with reallocarray(3).  A block that grows
 * large moves to superpages (descriptor tables grow this way).
 */
void *
fdr_reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t old;
	void *p;

	if (fail_hit(FDR_FAIL_MALLOC))
		return (NULL);
	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if (nmemb > SIZE_MAX / size)
		return (NULL);
	if (ptr != NULL && zone_owns(ptr)) {
		p = mem_alloc(nmemb * size);
		if (p == NULL)
			return (NULL);
		memcpy(p, ptr, nmemb * size < ZONE_ITEM ? nmemb * size :
		    ZONE_ITEM);
		zone_free(ptr);
		mem_account(-(int64_t)ZONE_ITEM);
		return (mem_allocated(p));
	}
	old = ptr != NULL ? malloc_usable_size(ptr) : 0;
	if (nmemb * size < SUPERPAGE_THRESHOLD) {
		p = realloc(ptr, nmemb * size);
		if (p == NULL)
			return (NULL);
	} else if (old >= nmemb * size && superpage_block(ptr, old)) {
		return (ptr);
	} else {
		p = mem_alloc(nmemb * size);
		if (p == NULL)
			return (NULL);
		if (ptr != NULL) {
			memcpy(p, ptr, old < nmemb * size ? old : nmemb * size);
			mem_release(ptr);
		}
	}
	mem_account(-(int64_t)old);
	return (mem_allocated(p));
}

/*
 * aligned_alloc(3), counted and subject to FDR_FAIL_MALLOC.  Objects of
 * up to ZONE_ITEM bytes and alignment (open files) come from the zone;
 * large blocks are superpages, as fdr_malloc()'s (descriptor tables).
 */
void *
fdr_aligned_alloc(size_t alignment, size_t size)
{
	void *p;

	if (fail_hit(FDR_FAIL_MALLOC))
		return (NULL);
	if (size <= ZONE_ITEM && alignment <= ZONE_ITEM &&
	    ZONE_ITEM % alignment == 0 && (p = zone_alloc()) != NULL) {
		mem_account(ZONE_ITEM);
		return (p);
	}
	if (size >= SUPERPAGE_THRESHOLD && alignment <= SUPERPAGE_SIZE)
		return (mem_allocated(mem_alloc(size)));
	if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0)
		return (NULL);
	return (mem_allocated(p));
}

/*
 * n objects of ZONE_ITEM bytes, aligned to it (open files), into items:
 * what n calls of fdr_aligned_alloc(FILE_ALIGN, sizeof(struct file))
 * give, under one lock of the zone.  Counted as one allocation by
 * FDR_FAIL_MALLOC.  Returns 0, or ENOMEM with none allocated.  Each is
 * freed with fdr_free().
 */
int
fdr_zone_alloc_n(void **items, size_t n)
{
	size_t got, i;

	if (fail_hit(FDR_FAIL_MALLOC))
		return (ENOMEM);
	got = zone_alloc_n(items, n);
	mem_account((int64_t)(got * ZONE_ITEM));
	for (i = got; i < n; i++) {
		if (posix_memalign(&items[i], ZONE_ITEM, ZONE_ITEM) != 0) {
			while (i-- > 0)
				fdr_free(items[i]);
			return (ENOMEM);
		}
		(void)mem_allocated(items[i]);
	}
	return (0);
}

/* free(3) of a block from one of the fdr_*alloc functions. */
void
fdr_free(void *ptr)
{

	if (ptr == NULL)
		return;
	if (zone_owns(ptr)) {
		mem_account(-(int64_t)ZONE_ITEM);
		zone_free(ptr);
		return;
	}
	mem_account(-(int64_t)malloc_usable_size(ptr));
	mem_release(ptr);
}

/*
 * Copy through a pipe: write(2) reads the source in the kernel and fails
 * with EFAULT instead of faulting.  The fallback where
 * process_vm_readv(2) is refused (seccomp, ENOSYS).
 */
static int
copyin_pipe(const void *uaddr, void *kaddr, size_t len)
{
	const char *src = uaddr;
	char *dst = kaddr;
	int p[2], error = 0;

	if (pipe2(p, O_CLOEXEC) != 0)
		return (errno == EMFILE || errno == ENFILE ? errno : EFAULT);
	while (len > 0 && error == 0) {
		size_t chunk = len < 65536 ? len : 65536;
		ssize_t w = write(p[1], src, chunk);
		if (w <= 0) {
			error = EFAULT;
			break;
		}
		for (ssize_t got = 0; got < w; ) {
			ssize_t r = read(p[0], dst + got, (size_t)(w - got));
			if (r <= 0) {
				error = EFAULT;
				break;
			}
			got += r;
		}
		src += w;
		dst += w;
		len -= (size_t)w;
	}
	close(p[0]);
	close(p[1]);
	return (error);
}

static _Thread_local int copyin_force_pipe;

/* Test hook: make this thread's copyin() use its pipe fallback. */
void
fdr_copyin_force_pipe(int on)
{

	copyin_force_pipe = on;
}

/*
 * copyin(9) for a user-space kernel: process_vm_readv(2) on ourselves
 * reads the source in the kernel, so an unreadable address is EFAULT and
 * not SIGSEGV.  A single iovec is never partly copied.
 */
int
copyin(const void *uaddr, void *kaddr, size_t len)
{
	struct iovec local, remote;
	ssize_t n;

	if (len == 0)
		return (0);
	if (fail_hit(FDR_FAIL_COPYIN))
		return (EFAULT);
	if (uaddr == NULL || (uintptr_t)uaddr + len < (uintptr_t)uaddr)
		return (EFAULT);
	if (copyin_force_pipe)
		return (copyin_pipe(uaddr, kaddr, len));
	local = (struct iovec){ .iov_base = kaddr, .iov_len = len };
	remote = (struct iovec){ .iov_base = (void *)uaddr, .iov_len = len };
	n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return (0);
	if (n < 0 && (errno == ENOSYS || errno == EPERM))
		return (copyin_pipe(uaddr, kaddr, len));
	return (EFAULT);
}

/* Bytes allocated through fdr_*alloc and not freed, by this thread. */
int64_t
fdr_mem_inuse_thread(void)
{

	return (mem_inuse_thread);
}

