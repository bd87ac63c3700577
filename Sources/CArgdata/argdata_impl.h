/*
 * argdata_impl.h: what the argdata sources share and callers do not see:
 * the value, the encoding's helpers and the iterative tree walker.
 */
#ifndef _ARGDATA_IMPL_H_
#define _ARGDATA_IMPL_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <argdata.h>

/*
 * The link-level name of an internal function: fdr_ad_*, so that no
 * symbol outside the argdata_ API is one a program might also define.
 */
#define	AD_STR_(x)	#x
#define	AD_STR(x)	AD_STR_(x)
#define	AD_SYM(name)	__asm__(AD_STR(__USER_LABEL_PREFIX__) "fdr_" #name)

/*
 * Memory (argdata_subr.c): the C library's malloc(3) and friends, or,
 * when the program also links FDRemap's kernel model, its counted
 * allocator with fault injection (fdr_malloc() and friends, found
 * through weak references), which the tests use.  Argdata itself needs
 * nothing of the kernel model.
 */
void	*ad_malloc(size_t size) AD_SYM(ad_malloc);
void	*ad_calloc(size_t nmemb, size_t size) AD_SYM(ad_calloc);
void	*ad_reallocarray(void *ptr, size_t nmemb, size_t size)
	    AD_SYM(ad_reallocarray);
void	 ad_free(void *ptr) AD_SYM(ad_free);

/* The type tags of the encoding, by their short names. */
#define	ADT_BINARY	ARGDATA_TAG_BINARY
#define	ADT_BOOL	ARGDATA_TAG_BOOL
#define	ADT_FD		ARGDATA_TAG_FD
#define	ADT_FLOAT	ARGDATA_TAG_FLOAT
#define	ADT_INT		ARGDATA_TAG_INT
#define	ADT_MAP		ARGDATA_TAG_MAP
#define	ADT_SEQ		ARGDATA_TAG_SEQ
#define	ADT_STR		ARGDATA_TAG_STR
#define	ADT_TIMESTAMP	ARGDATA_TAG_TIMESTAMP

/* The descriptor index that means "no descriptor". */
#define	AD_FD_INVALID	UINT32_C(0xffffffff)

/* The bytes of a serialised fd value: tag and a 4-byte index. */
#define	AD_FD_LEN	5

/*
 * A value.  AD_BUFFER holds serialised bytes (decoded values, and the
 * scalars made by the constructors, stored right after the node); the
 * others are made by constructors and point at the caller's data.
 * ad_len is always the length of the serialised form.
 */
enum ad_kind {
	AD_BUFFER,
	AD_BINARY,
	AD_FD,
	AD_MAP,
	AD_SEQ,
	AD_STR,
};

struct argdata_t {
	enum ad_kind	ad_kind;
	size_t		ad_len;
	union {
		struct {
			const uint8_t	*buf;
			int		(*convert)(void *, size_t);
			void		*arg;
		} ad_buffer;
		const void	*ad_binary;	/* ad_len - 1 bytes */
		int		 ad_fd;
		const char	*ad_str;	/* ad_len - 2 bytes */
		struct {
			argdata_t const *const *keys;
			argdata_t const *const *values;
			size_t		 n;
		} ad_map;
		struct {
			argdata_t const *const *entries;
			size_t		 n;
		} ad_seq;
	};
};

/* argdata_subr.c: the encoding. */
void	 ad_init_buffer(argdata_t *ad, const uint8_t *buf, size_t len,
	    int (*convert)(void *, size_t), void *arg) AD_SYM(ad_init_buffer);
int	 ad_parse_subfield(const uint8_t **pos, size_t *rem,
	    const uint8_t **field, size_t *fieldlen) AD_SYM(ad_parse_subfield);
size_t	 ad_prefix_len(size_t len) AD_SYM(ad_prefix_len);
uint8_t	*ad_put_prefix(uint8_t *out, size_t len) AD_SYM(ad_put_prefix);
int	 ad_payload(const argdata_t *ad, uint8_t tag, const uint8_t **p,
	    size_t *n) AD_SYM(ad_payload);
void	 ad_int_trim(const uint8_t **p, size_t *n) AD_SYM(ad_int_trim);
size_t	 ad_int_encode(uint8_t *out, const uint8_t *raw, size_t n)
	    AD_SYM(ad_int_encode);
int	 ad_utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
	    AD_SYM(ad_utf8_next);
int	 ad_utf8_validate(const uint8_t *s, size_t n) AD_SYM(ad_utf8_validate);
uint32_t ad_get_be32(const uint8_t *p) AD_SYM(ad_get_be32);
void	 ad_put_be32(uint8_t *p, uint32_t v) AD_SYM(ad_put_be32);
int	 ad_timestamp_split(const uint8_t *p, size_t n, int64_t *sec,
	    uint32_t *nsec) AD_SYM(ad_timestamp_split);
bool	 ad_is_container(const argdata_t *ad, uint8_t *tag)
	    AD_SYM(ad_is_container);

/*
 * argdata_walk.c: a depth-first walk over a value in the order of its
 * serialised bytes, without recursion.
 *
 * The open containers are kept in a ring of frames, indexed by depth
 * modulo its capacity.  The ring starts on the walker itself and doubles
 * on the heap as the tree deepens; when that allocation fails it stops
 * growing and forgets its shallowest frames, which are rebuilt when
 * needed by walking down from the root again to the current output
 * offset (every value has a distinct range of serialised bytes).  So the
 * walk is linear while memory lasts, and correct, though slower, when
 * it does not; it never fails.
 */
struct ad_frame {
	const argdata_t	*f_node;	/* a made container, or NULL */
	size_t		 f_index;	/* elements taken so far */
	const uint8_t	*f_pos;		/* buffer: the next sub-field */
	size_t		 f_rem;		/* buffer: the bytes left */
	int		(*f_convert)(void *, size_t);
	void		*f_arg;
	uint8_t		 f_tag;		/* ADT_MAP or ADT_SEQ */
};

enum ad_event {
	AD_EV_LEAF,	/* w_node: a scalar, null or malformed value */
	AD_EV_ENTER,	/* w_node: a map or sequence, now open */
	AD_EV_LEAVE,	/* the innermost container closed */
	AD_EV_DONE,
};

#define	AD_WALK_INLINE	32

struct ad_walk {
	const argdata_t	*w_root;
	struct ad_frame	*w_ring;
	size_t		 w_cap;
	size_t		 w_lo;		/* shallowest depth held in the ring */
	size_t		 w_depth;	/* containers open */
	size_t		 w_off;		/* serialised bytes walked over */
	bool		 w_started;
	bool		 w_fixed;	/* the ring may no longer grow */
	size_t		 w_refills;	/* rebuilds of forgotten frames */
	argdata_t	 w_child;	/* the current element of a buffer */

	/* What the last event is about. */
	const argdata_t	*w_node;	/* LEAF, ENTER: the value */
	size_t		 w_vdepth;	/* LEAF, ENTER: containers around it */
	uint8_t		 w_ptag;	/* LEAF, ENTER: its container's tag, */
	size_t		 w_pindex;	/*   and its index there (0: root) */
	uint8_t		 w_tag;		/* ENTER, LEAVE: the container's tag */
	size_t		 w_count;	/* LEAVE: its elements */
	const uint8_t	*w_trailer;	/* LEAVE: malformed bytes after its */
	size_t		 w_trailerlen;	/*   last valid element */

	struct ad_frame	 w_inline[AD_WALK_INLINE];
};

void	 ad_walk_init(struct ad_walk *w, const argdata_t *root)
	    AD_SYM(ad_walk_init);
enum ad_event ad_walk_next(struct ad_walk *w) AD_SYM(ad_walk_next);
void	 ad_walk_fini(struct ad_walk *w) AD_SYM(ad_walk_fini);
const struct ad_frame *ad_walk_top(const struct ad_walk *w) AD_SYM(ad_walk_top);

#endif /* !_ARGDATA_IMPL_H_ */
