/*
 * kern_file.c: allocation, initialisation and reference counting of open
 * files (FreeBSD's falloc_noinstall, finit, fhold, fdrop).
 */
#define	_GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "kern_internal.h"

/* Not passable, no close hook, no image activator. */
const struct fileops badfileops = {
	.fo_flags = 0,
	.fo_close = NULL,
	.fo_exec = NULL,
};

/*
 * A new file with one reference and badfileops, zeroed otherwise.
 * Returns ENOMEM when the allocation fails.
 */
int
falloc_noinstall(struct thread *td __attribute__((unused)),
    struct file **fpp)
{
	struct file *fp;

	fp = fdr_aligned_alloc(FILE_ALIGN, sizeof(*fp));
	if (fp == NULL)
		return (ENOMEM);
	memset(fp, 0, sizeof(*fp));
	fp->f_ops = &badfileops;
	fp->f_count = 1;
	*fpp = fp;
	return (0);
}

/*
 * n files at once, each as falloc_noinstall() makes it, from one
 * allocation of the zone (one lock; FDR_FAIL_MALLOC counts it once).
 * Returns 0, or ENOMEM with none allocated.
 */
int
falloc_noinstall_n(struct thread *td __attribute__((unused)),
    struct file **fpp, size_t n)
{
	size_t i;
	int error;

	error = fdr_zone_alloc_n((void **)fpp, n);
	if (error != 0)
		return (error);
	for (i = 0; i < n; i++) {
		memset(fpp[i], 0, sizeof(*fpp[i]));
		fpp[i]->f_ops = &badfileops;
		fpp[i]->f_count = 1;
	}
	return (0);
}

/*
 * Give fp its flags, type, payload and ops.  f_passable caches the ops'
 * DFLAG_PASSABLE for the remap's hot loop.
 */
void
finit(struct file *fp, unsigned int flag, short type, void *data,
    const struct fileops *ops)
{

	fp->f_data = data;
	fp->f_flag = flag;
	fp->f_type = type;
	fp->f_passable = (ops->fo_flags & DFLAG_PASSABLE) != 0;
	fp->f_ops = ops;
}

/* One more reference; relaxed, as refcount_acquire(9). */
void
fhold(struct file *fp)
{
	unsigned int old __attribute__((unused));

	old = __atomic_fetch_add(&fp->f_count, 1, __ATOMIC_RELAXED);
	assert(old > 0 && old < ~0u);
}

/* n more references at once; relaxed, as fhold(). */
void
fhold_n(struct file *fp, unsigned int n)
{
	unsigned int old __attribute__((unused));

	old = __atomic_fetch_add(&fp->f_count, n, __ATOMIC_RELAXED);
	assert(old > 0 && old <= ~0u - n);
}

/* The last reference went: run the close hook and free the file. */
int
fdrop_last(struct file *fp, struct thread *td)
{
	int error = 0;

	if (fp->f_ops->fo_close != NULL)
		error = fp->f_ops->fo_close(fp, td);
	fdr_free(fp);
	return (error);
}

/*
 * One reference less.  The thread that drops the last one sees every
 * earlier thread's writes (acquire-release) and runs the close hook.
 */
int
fdrop(struct file *fp, struct thread *td)
{

	return (fdrop_inl(fp, td));
}
