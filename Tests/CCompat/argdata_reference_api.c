/*
 * argdata_reference_api.c: a C program written against CloudABI's
 * reference argdata.h, the way its users write them (a program reading
 * its configuration tree, a launcher building one, two processes passing
 * messages), compiled against FDRemap's header and library.  It uses every
 * public function, type, constant and macro of the reference at least
 * once, checks what they give, and prints "N passed, N failed".
 *
 * Build and run: Tests/CCompat/run.sh (from the package root).
 */
#define	_GNU_SOURCE
#include <sys/socket.h>
#include <sys/stat.h>

#include <argdata.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The opaque types are usable as in the reference. */
#ifndef argdata_t
#error argdata_t is not defined as a macro, as the reference defines it
#endif
#ifndef argdata_reader_t
#error argdata_reader_t is not defined as a macro
#endif
#ifndef argdata_writer_t
#error argdata_writer_t is not defined as a macro
#endif

#include "check.h"

/* A program's start: walk its configuration map as the reference's
 * examples do (key strings, then typed values). */
static void
read_config(const argdata_t *ad, int expect_fd)
{
	argdata_map_iterator_t it;
	const argdata_t *key, *value;
	const char *keystr;
	int port = 0, logfd = -1;
	unsigned short ushort_port = 0;
	long long ll = 0;
	unsigned long ul = 0;
	char ch = 0;
	signed char sc = 0;
	unsigned char uc = 0;
	short sh = 0;
	unsigned int ui = 0;
	long l = 0;
	unsigned long long ull = 0;
	bool verbose = false;
	double ratio = 0;
	const char *name = NULL;
	size_t namelen = 0;
	const void *blob = NULL;
	size_t bloblen = 0;
	struct timespec ts;
	int nelems = 0;
	size_t npairs = 0;

	argdata_map_iterate(ad, &it);
	while (argdata_map_get(&it, &key, &value)) {
		CHECK(it.index == npairs);
		npairs++;
		if (argdata_get_str_c(key, &keystr) != 0) {
			argdata_map_next(&it);
			continue;
		}
		if (strcmp(keystr, "port") == 0) {
			CHECK(argdata_get_int(value, &port) == 0);
			CHECK(argdata_get_int(value, &ushort_port) == 0);
			CHECK(argdata_get_int(value, &ll) == 0);
			CHECK(argdata_get_int(value, &ul) == 0);
			CHECK(argdata_get_int(value, &ch) == ERANGE);
			CHECK(argdata_get_int(value, &sc) == ERANGE);
			CHECK(argdata_get_int(value, &uc) == ERANGE);
			CHECK(argdata_get_int(value, &sh) == 0);
			CHECK(argdata_get_int(value, &ui) == 0);
			CHECK(argdata_get_int(value, &l) == 0);
			CHECK(argdata_get_int(value, &ull) == 0);
		} else if (strcmp(keystr, "log") == 0) {
			CHECK(argdata_get_fd(value, &logfd) == 0);
		} else if (strcmp(keystr, "verbose") == 0) {
			CHECK(argdata_get_bool(value, &verbose) == 0);
		} else if (strcmp(keystr, "ratio") == 0) {
			CHECK(argdata_get_float(value, &ratio) == 0);
		} else if (strcmp(keystr, "name") == 0) {
			CHECK(argdata_get_str(value, &name, &namelen) == 0);
		} else if (strcmp(keystr, "blob") == 0) {
			CHECK(argdata_get_binary(value, &blob, &bloblen) == 0);
		} else if (strcmp(keystr, "started") == 0) {
			CHECK(argdata_get_timestamp(value, &ts) == 0);
			CHECK(ts.tv_sec == 1500000000 && ts.tv_nsec == 42);
		} else if (strcmp(keystr, "list") == 0) {
			argdata_seq_iterator_t sit;
			const argdata_t *elem;
			intmax_t s;
			uintmax_t u;

			argdata_seq_iterate(value, &sit);
			while (argdata_seq_get(&sit, &elem)) {
				if (nelems == 0)
					CHECK(argdata_get_int_s(elem, &s, INTMAX_MIN,
					    INTMAX_MAX) == 0 && s == -7);
				else
					CHECK(argdata_get_int_u(elem, &u,
					    UINTMAX_MAX) == 0 && u == UINTMAX_MAX);
				nelems++;
				argdata_seq_next(&sit);
			}
			/* A made sequence ends at its length, a read one at END. */
			CHECK(sit.index == ARGDATA_ITERATOR_END ||
			    sit.index == (size_t)nelems);
		}
		argdata_map_next(&it);
	}
	CHECK(it.index == ARGDATA_ITERATOR_END || it.index == npairs);
	CHECK(port == 8080 && ushort_port == 8080 && ll == 8080);
	CHECK(logfd == expect_fd);
	CHECK(verbose);
	CHECK(ratio == 0.5);
	CHECK(name != NULL && namelen == 3 && memcmp(name, "web", 3) == 0);
	CHECK(blob != NULL && bloblen == 2);
	CHECK(nelems == 2);
}

/* convert_fd of a received tree: index i is fds[i]. */
static int
convert(void *arg, size_t i)
{
	const int *fds = arg;

	return (i < 1 ? fds[i] : -1);
}

int
main(void)
{
	const argdata_t *keys[8], *values[8], *list[2];
	argdata_t *owned[32];
	size_t n = 0, len, nfds, used;
	struct timespec ts = { .tv_sec = 1500000000, .tv_nsec = 42 };
	static const unsigned char blob[2] = { 0xde, 0xad };
	unsigned char *buf;
	int fds[8], sv[2], logfd;
	argdata_t *root, *decoded;
	argdata_writer_t *aw;
	argdata_reader_t *ar;
	const argdata_t *msg;
	bool b;
	FILE *out;

	logfd = dup(STDERR_FILENO);
	CHECK(logfd >= 0);

	/* A launcher builds the tree: constructors, the int macro. */
	owned[n++] = argdata_create_int(-7);
	list[0] = owned[n - 1];
	owned[n++] = argdata_create_int(UINTMAX_MAX);
	list[1] = owned[n - 1];
	owned[n++] = argdata_create_str_c("port");
	keys[0] = owned[n - 1];
	owned[n++] = argdata_create_int((unsigned short)8080);
	values[0] = owned[n - 1];
	owned[n++] = argdata_create_str_c("log");
	keys[1] = owned[n - 1];
	owned[n++] = argdata_create_fd(logfd);
	values[1] = owned[n - 1];
	owned[n++] = argdata_create_str_c("verbose");
	keys[2] = owned[n - 1];
	values[2] = &argdata_true;
	owned[n++] = argdata_create_str_c("ratio");
	keys[3] = owned[n - 1];
	owned[n++] = argdata_create_float(0.5);
	values[3] = owned[n - 1];
	owned[n++] = argdata_create_str("name", 4);
	keys[4] = owned[n - 1];
	owned[n++] = argdata_create_str("webserver", 3);
	values[4] = owned[n - 1];
	owned[n++] = argdata_create_str_c("blob");
	keys[5] = owned[n - 1];
	owned[n++] = argdata_create_binary(blob, sizeof(blob));
	values[5] = owned[n - 1];
	owned[n++] = argdata_create_str_c("started");
	keys[6] = owned[n - 1];
	owned[n++] = argdata_create_timestamp(&ts);
	values[6] = owned[n - 1];
	owned[n++] = argdata_create_str_c("list");
	keys[7] = owned[n - 1];
	owned[n++] = argdata_create_seq(list, 2);
	values[7] = owned[n - 1];
	root = argdata_create_map(keys, values, 8);
	CHECK(root != NULL);
	for (size_t i = 0; i < n; i++)
		CHECK(owned[i] != NULL);

	/* The constants. */
	CHECK(argdata_get_bool(&argdata_true, &b) == 0 && b);
	CHECK(argdata_get_bool(&argdata_false, &b) == 0 && !b);
	CHECK(argdata_get_bool(&argdata_null, &b) == EINVAL);
	CHECK(argdata_create_str("\xff", 1) == NULL && errno == EILSEQ);
	CHECK(argdata_create_fd(-1) == NULL && errno == EBADF);

	/* Serialise: bytes and the descriptor list for proc_exec. */
	argdata_serialized_length(root, &len, &nfds);
	CHECK(nfds == 1);
	buf = malloc(len);
	used = argdata_serialize(root, buf, fds);
	CHECK(used == 1 && fds[0] == logfd);

	/* The child side: decode and read. */
	decoded = argdata_from_buffer(buf, len, convert, fds);
	read_config(decoded, logfd);
	read_config(root, logfd);

	/* YAML, as the reference prints it. */
	out = tmpfile();
	argdata_print_yaml(decoded, out);
	CHECK(ftell(out) > 0);
	fclose(out);

	/* Two processes passing the tree over a socket. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	aw = argdata_writer_create();
	ar = argdata_reader_create(4096, 4);
	CHECK(aw != NULL && ar != NULL);
	argdata_writer_set(aw, root);
	CHECK(argdata_writer_push(aw, sv[0]) == 0);
	CHECK(argdata_reader_pull(ar, sv[1]) == 0);
	msg = argdata_reader_get(ar);
	CHECK(msg != NULL);
	if (msg != NULL) {
		argdata_map_iterator_t it;
		const argdata_t *k, *v;
		const char *ks;
		int fd = -1;
		struct stat a, c;

		argdata_map_iterate(msg, &it);
		while (argdata_map_get(&it, &k, &v)) {
			if (argdata_get_str_c(k, &ks) == 0 &&
			    strcmp(ks, "log") == 0)
				CHECK(argdata_get_fd(v, &fd) == 0);
			argdata_map_next(&it);
		}
		CHECK(fd >= 0 && fd != logfd);
		CHECK(fstat(fd, &a) == 0 && fstat(logfd, &c) == 0 &&
		    a.st_dev == c.st_dev && a.st_ino == c.st_ino);
		argdata_reader_release_fd(ar, fd);
		close(fd);
	}
	close(sv[0]);
	CHECK(argdata_reader_pull(ar, sv[1]) == 0);
	CHECK(argdata_reader_get(ar) == NULL);
	argdata_reader_free(ar);
	argdata_writer_free(aw);
	close(sv[1]);

	argdata_free(decoded);
	argdata_free(root);
	for (size_t i = 0; i < n; i++)
		argdata_free(owned[i]);
	free(buf);
	close(logfd);

	printf("%d passed, %d failed\n", passed, failed);
	return (failed == 0 ? 0 : 1);
}
