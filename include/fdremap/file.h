/*
 * fdremap/file.h: open file objects of the kernel model.
 *
 * A struct file is the model's open file description: reference counted,
 * carrying an operations table, a payload and its open flags.  The names
 * and shapes follow FreeBSD's sys/file.h.
 */
#ifndef _FDREMAP_FILE_H_
#define _FDREMAP_FILE_H_


#include <fdremap/cdefs.h>
#include <stddef.h>
#include <stdint.h>

struct file;
struct thread;
struct image_args;

/* Open flags of a file (f_flag).  FreeBSD's values. */
#define	FREAD		0x0001
#define	FWRITE		0x0002
#define	FEXEC		0x00040000

/* File types (f_type).  Informational in the model. */
#define	DTYPE_NONE	0
#define	DTYPE_VNODE	1
#define	DTYPE_SOCKET	2
#define	DTYPE_PIPE	3
#define	DTYPE_KQUEUE	5

/* fileops flags (fo_flags). */
#define	DFLAG_PASSABLE	0x01	/* may be passed to a new program */

/*
 * The operations of a file.  fo_close runs once, when the last reference
 * goes (td may be NULL).  fo_exec is the image activator, NULL for files
 * that cannot be executed; it returns 0 or an errno value.  An ops table
 * must not change while a file uses it.
 */
struct fileops {
	int	fo_flags;
	int	(*fo_close)(struct file *fp, struct thread *td);
	int	(*fo_exec)(struct file *fp, struct image_args *args,
		    struct thread *td);
};

/*
 * An open file.  f_count is changed only with fhold() and fdrop() (atomic
 * builtins on a plain integer, so that Swift can import the struct).
 * f_passable caches DFLAG_PASSABLE of f_ops, set by finit(), so that the
 * remap's passable check reads the cache line it increments anyway.
 * The struct is one cache line, and falloc_noinstall() aligns it to one
 * (an aligned attribute here would keep Swift from importing it).
 */
struct file {
	void			*f_data;	/* payload */
	const struct fileops	*f_ops;		/* operations */
	unsigned int		 f_count;	/* references */
	unsigned int		 f_flag;	/* FREAD, FWRITE, FEXEC */
	short			 f_type;	/* DTYPE_* */
	uint8_t			 f_passable;	/* f_ops->fo_flags & PASSABLE */
	uint8_t			 f_spare0;
	uint32_t		 f_spare1;
	uint64_t		 f_spare2[4];
};

#define	FILE_ALIGN	64

/* The ops of a file that was allocated but not initialised. */
extern const struct fileops badfileops FDR_SYM(badfileops);

/*
 * Allocate a file with one reference, not installed in any table.  Its
 * ops are badfileops (not passable, no activator) until finit().
 * Returns 0 or ENOMEM; td is the allocating thread (may be NULL).
 */
int	falloc_noinstall(struct thread *td, struct file **fpp)
	    FDR_SYM(falloc_noinstall);

/*
 * n files at once, as n calls of falloc_noinstall() would make them, for
 * a caller that builds a large table (one lock, one allocation to fail).
 * Returns 0, or ENOMEM with none allocated.
 */
int	falloc_noinstall_n(struct thread *td, struct file **fpp, size_t n)
	    FDR_SYM(falloc_noinstall_n);

/* Initialise a file allocated by falloc_noinstall(). */
void	finit(struct file *fp, unsigned int flag, short type, void *data,
	    const struct fileops *ops) FDR_SYM(finit);

/*
 * The file's reference count, read atomically: observers (tests, the
 * Swift face) use this rather than a plain load of f_count.
 */
static inline unsigned int
file_count(const struct file *fp)
{

	return (__atomic_load_n(&fp->f_count, __ATOMIC_RELAXED));
}

/* Take a reference on a file. */
void	fhold(struct file *fp) FDR_SYM(fhold);

/*
 * Take n references on a file at once (one atomic add): for a file about
 * to fill n slots, as the host launcher's mirror does.
 */
void	fhold_n(struct file *fp, unsigned int n) FDR_SYM(fhold_n);

/*
 * Drop a reference.  The last one calls fo_close (with td, which may be
 * NULL) and frees the file; its result is returned, 0 otherwise.
 */
int	fdrop(struct file *fp, struct thread *td) FDR_SYM(fdrop);

#endif /* !_FDREMAP_FILE_H_ */
