/*
 * show-descriptors: print what fdrun handed this program.
 *
 * The program reads its argdata with program_getargdata() and expects a
 * map.  To the descriptor under "out" it writes the argdata as YAML,
 * every descriptor it has and what that is, the text of the file under
 * "greeting" and the names in the directory under "examples".  It opens
 * nothing by name (but /proc/self/fd, to list its own table): all it can
 * touch it was handed.
 *
 *	fdrun .build/debug/show-descriptors Examples/show-descriptors/show.yaml
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <argdata.h>
#include <fdremap/program.h>

/*
 * The value of the map's pair whose key is the string name, or NULL.  It
 * lives in the caller's iterator *it (and only as long as that does).
 */
static const argdata_t *
lookup(const argdata_t *map, const char *name, argdata_map_iterator_t *it)
{
	const argdata_t *key, *value;
	const char *s;

	argdata_map_iterate(map, it);
	while (argdata_map_get(it, &key, &value)) {
		if (argdata_get_str_c(key, &s) == 0 && strcmp(s, name) == 0)
			return (value);
		argdata_map_next(it);
	}
	return (NULL);
}

/* The descriptor under name, or -1. */
static int
lookup_fd(const argdata_t *map, const char *name)
{
	argdata_map_iterator_t it;
	const argdata_t *v;
	int fd;

	v = lookup(map, name, &it);
	if (v == NULL || argdata_get_fd(v, &fd) != 0)
		return (-1);
	return (fd);
}

/* A socket's family, type, state and address. */
static void
describe_socket(FILE *out, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len, optlen;
	char host[INET6_ADDRSTRLEN];
	int domain, type, listening;

	optlen = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen);
	optlen = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen);
	optlen = sizeof(int);
	listening = 0;
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen);
	fprintf(out, "socket %s %s", domain == AF_INET ? "inet" :
	    domain == AF_INET6 ? "inet6" : domain == AF_UNIX ? "unix" : "?",
	    type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram" :
	    type == SOCK_SEQPACKET ? "seqpacket" : "?");
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	fputs(listening ? ", listening on " : ", bound to ", out);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		fprintf(out, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		fprintf(out, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else
		fputs("a Unix address", out);
}

/* What descriptor fd is, in a few words. */
static void
describe(FILE *out, int fd)
{
	static const char *const access[] = { "read-only", "write-only",
	    "read-write", "?" };
	char link[64], target[512];
	struct stat st;
	ssize_t n;
	int flags;

	if (fstat(fd, &st) != 0)
		return;
	flags = fcntl(fd, F_GETFL);
	fprintf(out, "  %d: ", fd);
	switch (st.st_mode & S_IFMT) {
	case S_IFREG: fputs("regular file", out); break;
	case S_IFDIR: fputs("directory", out); break;
	case S_IFIFO: fputs("pipe", out); break;
	case S_IFCHR: fputs("character device", out); break;
	case S_IFSOCK: describe_socket(out, fd); break;
	default: fputs("other", out); break;
	}
	if ((st.st_mode & S_IFMT) != S_IFSOCK)
		fprintf(out, ", %s", access[flags & O_ACCMODE]);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n > 0 && (st.st_mode & S_IFMT) != S_IFSOCK) {
		target[n] = '\0';
		fprintf(out, ": %s", target);
	}
	fputc('\n', out);
}

/*
 * Every descriptor this process has, lowest first.  scandir() reads
 * /proc/self/fd through a descriptor of its own, closed when it returns:
 * the one number listed that is no longer open.
 */
static void
list_descriptors(FILE *out)
{
	struct dirent **names;
	int i, n, fd;

	n = scandir("/proc/self/fd", &names, NULL, versionsort);
	for (i = 0; i < n; i++) {
		fd = atoi(names[i]->d_name);
		if (names[i]->d_name[0] != '.' && fcntl(fd, F_GETFD) != -1)
			describe(out, fd);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}

/* The text of the file at fd (from its start, at most 4 KiB). */
static void
show_file(FILE *out, int fd)
{
	char buf[4096];
	ssize_t n;

	n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		fputs("  (cannot read it)\n", out);
		return;
	}
	fwrite(buf, 1, (size_t)n, out);
	if (n > 0 && buf[n - 1] != '\n')
		fputc('\n', out);
}

/* The names in the directory at fd, sorted, on one line. */
static void
show_directory(FILE *out, int fd)
{
	struct dirent **names;
	int i, n, copy;

	/* scandirat() reads through a descriptor: no path needed. */
	copy = dup(fd);
	if (copy < 0)
		return;
	n = scandirat(copy, ".", &names, NULL, alphasort);
	close(copy);
	fputs(" ", out);
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.')
			fprintf(out, " %s", names[i]->d_name);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	fputc('\n', out);
}

int
main(int argc, char **argv)
{
	const argdata_t *ad;
	FILE *out;
	int fd, error;

	error = program_getargdata(argc, argv, &ad);
	if (error != 0)
		return (2);
	/* Where to write: only a descriptor it was given. */
	fd = lookup_fd(ad, "out");
	if (fd < 0)
		return (3);
	out = fdopen(fd, "w");
	if (out == NULL)
		return (4);

	fputs("My argdata, as fdrun built it from the configuration:\n", out);
	argdata_print_yaml(ad, out);
	fputs("\nMy descriptors, all of them:\n", out);
	list_descriptors(out);
	if ((fd = lookup_fd(ad, "greeting")) >= 0) {
		fprintf(out, "\nThe file I was handed as descriptor %d says:\n",
		    fd);
		show_file(out, fd);
	}
	if ((fd = lookup_fd(ad, "examples")) >= 0) {
		fprintf(out, "\nThe directory I was handed as descriptor %d "
		    "holds:\n", fd);
		show_directory(out, fd);
	}
	return (fclose(out) == 0 ? 0 : 5);
}
