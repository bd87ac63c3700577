/*
 * argdata.h: CloudABI's argument data, a tree of scalars, sequences and
 * maps in which a file descriptor is a value of its own.
 *
 * Source-compatible with the header of CloudABI's reference library
 * (NuxiNL/argdata): the same functions, types, constants and macros with
 * the same signatures and error numbers, and byte-for-byte the same
 * encoding (see /work/shared/spec/argdata.md).  Written anew for FDRemap.
 *
 * Ownership.  Constructors do not copy their inputs: a binary or string
 * value keeps the caller's pointer, a map or sequence keeps the caller's
 * arrays of pointers, and all of it must outlive the value.  Scalars
 * (bool, fd, float, int, timestamp) are stored in the value itself.
 * argdata_free() frees one value, never its elements.
 *
 * Every behaviour that the reference's own unit tests check (NuxiNL/
 * cloudlibc, src/libc/argdata/) is ours too: Tests/CCompat/
 * argdata_reference_behaviour.c checks each.  Differences from the
 * reference, all of them where it would crash, loop or misbehave:
 *  - Every traversal (serialising, counting, printing) is iterative: a
 *    tree or buffer nested to any depth is walked without recursion, in
 *    linear time while memory for a stack of the open containers can be
 *    had, and correctly but more slowly when it cannot.
 *  - argdata_serialize() finds repeated descriptors through a hash table
 *    (a linear search only when that table cannot be allocated).
 *  - Integers and timestamps are read whatever their length as long as the
 *    value fits: redundant leading 00 or FF bytes are skipped (the
 *    reference refuses an integer of more than 8 bytes with ERANGE).
 *  - argdata_print_yaml() escapes strings with its own UTF-8 decoder, not
 *    the C library's locale (without CloudABI's, the reference prints
 *    every string as ""), and prints timestamps of any year.
 *  - A map or sequence whose serialised length would exceed SIZE_MAX
 *    (possible when values are shared) is refused with E2BIG, as is a NULL
 *    element (EINVAL).
 *  - Streams carry the reference's bytes (an 8-byte big-endian data
 *    length, then the data; the descriptors as SCM_RIGHTS with the first
 *    bytes) and each side reads the other's.  Ours also sends more than
 *    Linux's SCM_MAX_FD descriptors (in chunks, one a byte), reads
 *    descriptors with any of a message's bytes, and makes them
 *    O_CLOEXEC on arrival.
 */
#ifndef ARGDATA_H
#define ARGDATA_H

#include <limits.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct timespec;

/*
 * The first byte of an encoded value that is not null (argdata.md).  Not
 * in the reference header: an addition for encoders written elsewhere
 * (the Swift module's), so that the tags have one definition.
 */
#define	ARGDATA_TAG_BINARY	1
#define	ARGDATA_TAG_BOOL	2
#define	ARGDATA_TAG_FD		3
#define	ARGDATA_TAG_FLOAT	4
#define	ARGDATA_TAG_INT		5
#define	ARGDATA_TAG_MAP		6
#define	ARGDATA_TAG_SEQ		7
#define	ARGDATA_TAG_STR		8
#define	ARGDATA_TAG_TIMESTAMP	9

/* A value.  Only ever handled through pointers. */
#ifndef argdata_t
typedef struct argdata_t argdata_t;
#define	argdata_t argdata_t
#endif

/*
 * Iterators over a map and over a sequence, as the reference has them.
 * Callers allocate them (on the stack, typically) and may read index:
 * the position of the current element (0, 1, ...), ARGDATA_ITERATOR_END
 * once a serialised container has ended cleanly (or after one more
 * argdata_*_next() past the end of a made one, whose index is then its
 * length), ARGDATA_ITERATOR_INVALID when the value is not a container of
 * that kind or its bytes are malformed (after the elements before the
 * malformation).  data is private.
 */
#ifdef _MSC_VER
#define	ARGDATA_MAX_ALIGN	__declspec(align(8))
#else
#define	ARGDATA_MAX_ALIGN	alignas(max_align_t)
#endif

#define	ARGDATA_ITERATOR_END		SIZE_MAX
#define	ARGDATA_ITERATOR_INVALID	(SIZE_MAX - 1)

typedef struct {
	ARGDATA_MAX_ALIGN size_t index;
	char data[128];
} argdata_map_iterator_t;

typedef struct {
	ARGDATA_MAX_ALIGN size_t index;
	char data[128];
} argdata_seq_iterator_t;

/* Reading and writing values as messages on a stream descriptor. */
#ifndef argdata_reader_t
typedef struct argdata_reader_t argdata_reader_t;
#define	argdata_reader_t argdata_reader_t
#endif

#ifndef argdata_writer_t
typedef struct argdata_writer_t argdata_writer_t;
#define	argdata_writer_t argdata_writer_t
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The values false, true and null.  Never freed. */
extern const argdata_t argdata_false;
extern const argdata_t argdata_true;
extern const argdata_t argdata_null;

/*
 * A value read from serialised bytes, which are not copied and must
 * outlive it.  Nothing is decoded now: the getters and iterators read the
 * bytes when asked, and every malformation is an error then.  convert_fd
 * maps a descriptor index of the bytes to a descriptor of this process
 * (negative: not available); NULL makes every descriptor unavailable.
 * NULL and ENOMEM when out of memory.
 */
argdata_t	*argdata_from_buffer(const void *buf, size_t len,
		    int (*convert_fd)(void *, size_t), void *convert_fd_arg);

/* Binary data: len bytes at buf, not copied.  NULL and ENOMEM. */
argdata_t	*argdata_create_binary(const void *buf, size_t len);

/* Descriptor fd of this process: NULL and EBADF when fd < 0, or ENOMEM. */
argdata_t	*argdata_create_fd(int fd);

/* A double, bit for bit (negative zero, NaN payloads).  NULL and ENOMEM. */
argdata_t	*argdata_create_float(double value);

/*
 * An integer, in as few bytes as two's complement allows.  NULL and ENOMEM.
 * argdata_create_int(x) picks the signed or unsigned one by x's type.
 */
argdata_t	*argdata_create_int_s(intmax_t value);
argdata_t	*argdata_create_int_u(uintmax_t value);

/*
 * A map of n pairs keys[i]: values[i], kept in that order, and a sequence
 * of n entries.  The arrays are not copied.  NULL and EINVAL when an
 * element is NULL, E2BIG when the serialised length would not fit a
 * size_t, ENOMEM.
 */
argdata_t	*argdata_create_map(argdata_t const *const *keys,
		    argdata_t const *const *values, size_t n);
argdata_t	*argdata_create_seq(argdata_t const *const *entries, size_t n);

/*
 * A string: len bytes of UTF-8 at buf (which may contain NULs), not copied;
 * the _c variant takes a NUL-terminated string.  NULL and EILSEQ when the
 * bytes are not valid UTF-8, or ENOMEM.  argdata_get_str_c() on a value of
 * argdata_create_str() is valid only when buf[len] is NUL.
 */
argdata_t	*argdata_create_str(const char *buf, size_t len);
argdata_t	*argdata_create_str_c(const char *str);

/*
 * A point in time, copied.  NULL and EINVAL when tv_nsec is outside
 * [0, 999999999], or ENOMEM.
 */
argdata_t	*argdata_create_timestamp(const struct timespec *ts);

/* Free one value made by argdata_create_* or argdata_from_buffer. */
void	 argdata_free(argdata_t *ad);

/*
 * The serialised length of ad in *size and, when n_fds is not NULL, the
 * number of descriptor values in it (an upper bound on the length of the
 * descriptor list of argdata_serialize()) in *n_fds.
 */
void	 argdata_serialized_length(const argdata_t *ad, size_t *size,
	    size_t *n_fds);

/*
 * Write ad to buf (argdata_serialized_length() bytes).  When fds is not
 * NULL, descriptors are renumbered 0..n-1 in order of first appearance
 * (depth first, a key before its value), each listed once in fds, and n is
 * returned; an unavailable descriptor is written as FFFFFFFF and not
 * listed.  When fds is NULL, each descriptor is written as its number (a
 * created one's, or what a decoded one's convert_fd gives; FFFFFFFF when
 * that fails or there is none) and 0 is returned: argdata_create_fd(12)
 * is 03 0000000c.
 */
size_t	 argdata_serialize(const argdata_t *ad, void *buf, int *fds);

/*
 * Getters: 0, or EINVAL when ad is not of that type or is malformed.
 *  binary: a pointer into the value and its length.
 *  fd: EBADF when the descriptor is unavailable to this process.
 *  int: ERANGE when the value is outside [min, max] (or [0, max]).
 *  str: EILSEQ for invalid UTF-8; _c also for an inner NUL.  The length
 *   excludes the terminating NUL.
 *  timestamp: ERANGE when it does not fit a struct timespec.
 */
int	 argdata_get_binary(const argdata_t *ad, const void **buf,
	    size_t *len);
int	 argdata_get_bool(const argdata_t *ad, bool *value);
int	 argdata_get_fd(const argdata_t *ad, int *fd);
int	 argdata_get_float(const argdata_t *ad, double *value);
int	 argdata_get_int_s(const argdata_t *ad, intmax_t *value, intmax_t min,
	    intmax_t max);
int	 argdata_get_int_u(const argdata_t *ad, uintmax_t *value,
	    uintmax_t max);
int	 argdata_get_str(const argdata_t *ad, const char **buf, size_t *len);
int	 argdata_get_str_c(const argdata_t *ad, const char **str);
int	 argdata_get_timestamp(const argdata_t *ad, struct timespec *ts);

/*
 * Iterate over a map:
 *	argdata_map_iterate(ad, &it);
 *	while (argdata_map_get(&it, &key, &value)) {
 *		...
 *		argdata_map_next(&it);
 *	}
 *	if (it.error != 0) ...
 * it.error is EINVAL when ad is not a map (nothing is iterated), or once
 * the valid pairs of a malformed map are exhausted (a bad sub-field, a key
 * without value).  *key and *value stay valid until the iterator advances
 * or is moved in memory (they may point into it).
 */
void	 argdata_map_iterate(const argdata_t *ad, argdata_map_iterator_t *it);
bool	 argdata_map_get(const argdata_map_iterator_t *it,
	    const argdata_t **key, const argdata_t **value);
void	 argdata_map_next(argdata_map_iterator_t *it);

/* The same for a sequence. */
void	 argdata_seq_iterate(const argdata_t *ad, argdata_seq_iterator_t *it);
bool	 argdata_seq_get(const argdata_seq_iterator_t *it,
	    const argdata_t **entry);
void	 argdata_seq_next(argdata_seq_iterator_t *it);

/*
 * Print ad as a YAML 1.2 document with CloudABI's tag directive, every
 * scalar tagged, strings double-quoted and escaped so that a YAML parser
 * reads them back unchanged, descriptors as !fd "N".  Any depth prints:
 * the indentation stops growing at 64 columns.  A malformed value prints
 * as null, and a malformed tail of a container is left out.
 */
void	 argdata_print_yaml(const argdata_t *ad, FILE *fp);

/*
 * A reader of messages from a stream descriptor (a socket, with the
 * descriptors of the message received through SCM_RIGHTS and made
 * O_CLOEXEC, or a pipe or file, without descriptors), accepting at most
 * max_data_len bytes and max_fds_len descriptors a message.  NULL and
 * ENOMEM.
 */
argdata_reader_t *argdata_reader_create(size_t max_data_len,
		    size_t max_fds_len);

/* Free the reader, closing the descriptors it still owns. */
void	 argdata_reader_free(argdata_reader_t *ar);

/*
 * The message of the last argdata_reader_pull() that returned 0, or NULL
 * at end of file (or when no message is complete).  Its descriptors are
 * the reader's and stay open until the next pull or the reader's end.
 */
const argdata_t *argdata_reader_get(const argdata_reader_t *ar);

/*
 * Keep descriptor fd of the current message open past the next pull: the
 * caller owns it now, and argdata_get_fd() on it fails with EBADF.
 */
void	 argdata_reader_release_fd(argdata_reader_t *ar, int fd);

/*
 * Read (the rest of) the next message from fd.  0 when a message is
 * complete or at end of file between messages; the errno of read(2) or
 * recvmsg(2) otherwise (EAGAIN: call again when fd is readable; the
 * partial message is kept); EMSGSIZE when the message's data or its
 * descriptors are more than the reader accepts; EBADMSG when it is cut
 * short; ENOMEM.  A message is an 8-byte big-endian data length and the
 * data, as the reference writes it; its descriptors are those that come
 * with its bytes.  The previous message and its descriptors
 * are released first; after EMSGSIZE or EBADMSG the stream cannot be
 * resynchronised and every later pull fails the same way.  Every
 * descriptor received with a failed message is closed.
 */
int	 argdata_reader_pull(argdata_reader_t *ar, int fd);

/* A writer of messages to a stream descriptor.  NULL and ENOMEM. */
argdata_writer_t *argdata_writer_create(void);

/* Free the writer (and any message not completely written). */
void	 argdata_writer_free(argdata_writer_t *aw);

/*
 * Write (the rest of) the current message to fd.  0 when it is completely
 * written or there is none; the errno of write(2) or sendmsg(2) otherwise
 * (EAGAIN: call again when fd is writable); ENOTSOCK when the message has
 * descriptors and fd is not a socket (the message is then dropped, nothing
 * having been written); ENOMEM.
 */
int	 argdata_writer_push(argdata_writer_t *aw, int fd);

/*
 * Make ad the message to write next.  Only when the writer is idle (new,
 * or its last push returned 0); ad must stay valid until the message is
 * written.
 */
void	 argdata_writer_set(argdata_writer_t *aw, const argdata_t *ad);

#ifdef __cplusplus
}
#endif

/*
 * argdata_create_int(x) and argdata_get_int(ad, &x) for any integer type:
 * _Generic in C, overloads in C++.
 */
#ifdef __cplusplus

#define	ARGDATA_INT_OVERLOADS_(type, name, sign)			\
	inline argdata_t *						\
	argdata_create_int(type value)					\
	{								\
		return (argdata_create_int_##sign(value));		\
	}								\
	inline int							\
	argdata_get_int(const argdata_t *ad, type *value)		\
	{								\
		return (argdata_get_int_##name(ad, value));		\
	}

#else

#define	argdata_create_int(value)					\
	_Generic((value),						\
	    char: argdata_create_int_s,					\
	    signed char: argdata_create_int_s,				\
	    unsigned char: argdata_create_int_u,			\
	    short: argdata_create_int_s,				\
	    unsigned short: argdata_create_int_u,			\
	    int: argdata_create_int_s,					\
	    unsigned int: argdata_create_int_u,				\
	    long: argdata_create_int_s,					\
	    unsigned long: argdata_create_int_u,			\
	    long long: argdata_create_int_s,				\
	    unsigned long long: argdata_create_int_u)(value)
#define	argdata_get_int(ad, value)					\
	_Generic(*(value),						\
	    char: argdata_get_int_char,					\
	    signed char: argdata_get_int_schar,				\
	    unsigned char: argdata_get_int_uchar,			\
	    short: argdata_get_int_short,				\
	    unsigned short: argdata_get_int_ushort,			\
	    int: argdata_get_int_int,					\
	    unsigned int: argdata_get_int_uint,				\
	    long: argdata_get_int_long,					\
	    unsigned long: argdata_get_int_ulong,			\
	    long long: argdata_get_int_llong,				\
	    unsigned long long: argdata_get_int_ullong)((ad), (value))

#define	ARGDATA_INT_OVERLOADS_(type, name, sign)

#endif

/* argdata_get_int_<name>(ad, &x) for a signed type within [min, max]. */
#define	ARGDATA_GET_INT_S_(type, name, min, max)			\
	static inline int						\
	argdata_get_int_##name(const argdata_t *ad, type *value)	\
	{								\
		intmax_t v;						\
		int error;						\
									\
		error = argdata_get_int_s(ad, &v, (min), (max));	\
		if (error == 0)						\
			*value = (type)v;				\
		return (error);						\
	}								\
	ARGDATA_INT_OVERLOADS_(type, name, s)

/* argdata_get_int_<name>(ad, &x) for an unsigned type up to max. */
#define	ARGDATA_GET_INT_U_(type, name, max)				\
	static inline int						\
	argdata_get_int_##name(const argdata_t *ad, type *value)	\
	{								\
		uintmax_t v;						\
		int error;						\
									\
		error = argdata_get_int_u(ad, &v, (max));		\
		if (error == 0)						\
			*value = (type)v;				\
		return (error);						\
	}								\
	ARGDATA_INT_OVERLOADS_(type, name, u)

ARGDATA_GET_INT_S_(char, char, CHAR_MIN, CHAR_MAX)
ARGDATA_GET_INT_S_(signed char, schar, SCHAR_MIN, SCHAR_MAX)
ARGDATA_GET_INT_U_(unsigned char, uchar, UCHAR_MAX)
ARGDATA_GET_INT_S_(short, short, SHRT_MIN, SHRT_MAX)
ARGDATA_GET_INT_U_(unsigned short, ushort, USHRT_MAX)
ARGDATA_GET_INT_S_(int, int, INT_MIN, INT_MAX)
ARGDATA_GET_INT_U_(unsigned int, uint, UINT_MAX)
ARGDATA_GET_INT_S_(long, long, LONG_MIN, LONG_MAX)
ARGDATA_GET_INT_U_(unsigned long, ulong, ULONG_MAX)
ARGDATA_GET_INT_S_(long long, llong, LLONG_MIN, LLONG_MAX)
ARGDATA_GET_INT_U_(unsigned long long, ullong, ULLONG_MAX)

#undef ARGDATA_INT_OVERLOADS_
#undef ARGDATA_GET_INT_S_
#undef ARGDATA_GET_INT_U_

#endif /* !ARGDATA_H */
