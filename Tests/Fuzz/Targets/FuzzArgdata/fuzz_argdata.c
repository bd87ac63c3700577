/*
 * fuzz_argdata.c: a libFuzzer target for the argdata decoder.  Each input
 * is decoded as a buffer; every node is visited with an explicit stack
 * (the harness must not recurse either), every getter is called on it,
 * the tree is printed as YAML, and it is serialised twice: serialise(
 * decode(serialise(x))) must equal serialise(x), bytes and descriptor
 * list.  Memory must come back to where it was.  A violation aborts;
 * the sanitizers catch reads outside the buffer.
 *
 * Built as a fuzzer by `swift build --product fuzz-argdata
 * --sanitize=fuzzer --sanitize=address` (Tests/Fuzz/run.sh); a plain
 * `swift build` makes it a program that replays the inputs named on its
 * command line (FuzzReplay).
 */
#define	_GNU_SOURCE
#include <argdata.h>
#include <fdremap/subr.h>
#include <fdremap/testing.h>
#include <fuzz_replay.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define	CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_argdata: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/* Descriptor index i is descriptor 100 + i for the first 16, else none. */
static int
convert_fd(void *arg, size_t i)
{

	(void)arg;
	return (i < 16 ? 100 + (int)i : -1);
}

/* Call every getter; each either succeeds or gives a documented error. */
static void
get_everything(const argdata_t *ad)
{
	const void *buf;
	const char *str;
	struct timespec ts;
	uintmax_t u;
	intmax_t s;
	double d;
	size_t len;
	bool b;
	int e, fd;

	e = argdata_get_binary(ad, &buf, &len);
	CHECK(e == 0 || e == EINVAL);
	e = argdata_get_bool(ad, &b);
	CHECK(e == 0 || e == EINVAL);
	e = argdata_get_fd(ad, &fd);
	CHECK(e == 0 || e == EINVAL || e == EBADF);
	CHECK(e != 0 || (fd >= 100 && fd < 116));
	e = argdata_get_float(ad, &d);
	CHECK(e == 0 || e == EINVAL);
	e = argdata_get_int_s(ad, &s, INTMAX_MIN, INTMAX_MAX);
	CHECK(e == 0 || e == EINVAL || e == ERANGE);
	e = argdata_get_int_u(ad, &u, UINTMAX_MAX);
	CHECK(e == 0 || e == EINVAL || e == ERANGE);
	e = argdata_get_str(ad, &str, &len);
	CHECK(e == 0 || e == EINVAL || e == EILSEQ);
	CHECK(e != 0 || str[len] == '\0');
	e = argdata_get_str_c(ad, &str);
	CHECK(e == 0 || e == EINVAL || e == EILSEQ);
	e = argdata_get_timestamp(ad, &ts);
	CHECK(e == 0 || e == EINVAL || e == ERANGE);
}

/*
 * A level of the walk: a map or a sequence being iterated.  The children
 * an iterator hands out stay valid only until it moves, so it moves only
 * once their subtrees are done: phase 0 gets the next element, phase 1
 * visits a map's value after its key, phase 2 moves on.
 */
struct level {
	int			 is_map;
	int			 phase;
	const argdata_t		*value;
	union {
		argdata_map_iterator_t	map;
		argdata_seq_iterator_t	seq;
	} it;
};

/*
 * Push node's level when it is a container; false when it is not.  The
 * stack never moves: a key or value that an iterator yields may point
 * into the iterator, so the iterators stay where they are while their
 * elements are walked.
 */
static bool
push(struct level *stack, size_t *depth, size_t cap, const argdata_t *node)
{
	struct level *l;

	CHECK(*depth < cap);
	l = &stack[*depth];
	l->phase = 0;
	l->is_map = 1;
	argdata_map_iterate(node, &l->it.map);
	if (l->it.map.index == ARGDATA_ITERATOR_INVALID) {
		l->is_map = 0;
		argdata_seq_iterate(node, &l->it.seq);
		if (l->it.seq.index == ARGDATA_ITERATOR_INVALID)
			return (false);
	}
	(*depth)++;
	return (true);
}

/*
 * Visit every node below root (keys too), depth first, with a heap stack
 * of iterators.  root is over size bytes, and each level of nesting takes
 * at least one of them (its tag), so size + 1 levels are enough.
 */
static void
walk(const argdata_t *root, size_t size)
{
	struct level *stack, *l;
	size_t depth = 0, cap = size + 1;
	const argdata_t *key, *value;

	stack = calloc(cap, sizeof(*stack));
	CHECK(stack != NULL);
	get_everything(root);
	push(stack, &depth, cap, root);
	while (depth > 0) {
		l = &stack[depth - 1];
		if (l->phase == 1) {		/* the value after the key */
			l->phase = 2;
			get_everything(l->value);
			push(stack, &depth, cap, l->value);
			continue;
		}
		if (l->phase == 2) {
			l->phase = 0;
			if (l->is_map)
				argdata_map_next(&l->it.map);
			else
				argdata_seq_next(&l->it.seq);
			continue;
		}
		if (l->is_map && argdata_map_get(&l->it.map, &key, &value)) {
			l->phase = 1;
			l->value = value;
			get_everything(key);
			push(stack, &depth, cap, key);
			continue;
		}
		if (!l->is_map && argdata_seq_get(&l->it.seq, &value)) {
			l->phase = 2;
			get_everything(value);
			push(stack, &depth, cap, value);
			continue;
		}
		/* Exhausted: valid to the end, or invalid after its elements. */
		CHECK((l->is_map ? l->it.map.index : l->it.seq.index) ==
		    ARGDATA_ITERATOR_END ||
		    (l->is_map ? l->it.map.index : l->it.seq.index) ==
		    ARGDATA_ITERATOR_INVALID);
		depth--;
	}
	free(stack);
}

/* Serialise ad into fresh memory: bytes, their length and the fd list. */
static void
serialise(const argdata_t *ad, uint8_t **buf, size_t *len, int **fds,
    size_t *nfds)
{
	size_t maxfds;

	argdata_serialized_length(ad, len, &maxfds);
	*buf = malloc(*len + 1);
	*fds = malloc((maxfds + 1) * sizeof(int));
	CHECK(*buf != NULL && *fds != NULL);
	*nfds = argdata_serialize(ad, *buf, *fds);
	CHECK(*nfds <= maxfds);
}

/* The descriptor list of the first serialisation, as a converter. */
struct fdlist {
	const int	*fds;
	size_t		 n;
};

static int
convert_list(void *arg, size_t i)
{
	const struct fdlist *l = arg;

	return (i < l->n ? l->fds[i] : -1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	int64_t mem = fdr_mem_inuse_thread();
	uint8_t *buf1, *buf2;
	size_t len1, len2, n1, n2;
	int *fds1, *fds2;
	argdata_t *ad, *again;

	if (devnull == NULL)
		CHECK((devnull = fopen("/dev/null", "w")) != NULL);
	ad = argdata_from_buffer(data, size, convert_fd, NULL);
	CHECK(ad != NULL);
	walk(ad, size);
	argdata_print_yaml(ad, devnull);
	serialise(ad, &buf1, &len1, &fds1, &n1);
	struct fdlist list = { fds1, n1 };
	again = argdata_from_buffer(buf1, len1, convert_list, &list);
	CHECK(again != NULL);
	serialise(again, &buf2, &len2, &fds2, &n2);
	CHECK(len1 == len2 && memcmp(buf1, buf2, len1) == 0);
	CHECK(n1 == n2 && memcmp(fds1, fds2, n1 * sizeof(int)) == 0);
	argdata_free(again);
	argdata_free(ad);
	free(buf1);
	free(buf2);
	free(fds1);
	free(fds2);
	CHECK(fdr_mem_inuse_thread() == mem);
	return (0);
}
