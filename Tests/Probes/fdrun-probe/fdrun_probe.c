/*
 * fdrun-probe: the program fdrun's tests start.  It reads its argdata
 * (program_getargdata) and, when it is a map whose "report" is a
 * descriptor, writes to it one line a descriptor it has,
 *	fd N TYPE ACCMODE DEV INO [FAMILY SOCKTYPE LISTENING LOCAL PEER]
 * (TYPE reg, dir, fifo, chr, sock or other; a socket's addresses as
 * a.b.c.d:port, [v6]:port, the Unix path, or -), one line an
 * environment variable ("env NAME=VALUE"), then "argdata" and the tree as
 * argdata_print_yaml() prints it.  Then, with "exit: N", it exits with N;
 * with "signal: N", it kills itself with signal N (unblocked, its default
 * action restored); else it exits with 0.
 * Exit status 2: not argdata; with no report descriptor, 100 + the
 * number of descriptors it has (below 1024).
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <argdata.h>
#include <fdremap/program.h>

extern char **environ;

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

/* A socket address as text, "-" when there is none. */
static void
print_address(FILE *out, const struct sockaddr_storage *ss, socklen_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (len == 0 || ss->ss_family == AF_UNSPEC) {
		fputs(" -", out);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		fprintf(out, " %s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		fprintf(out, " [%s]:%u", host, ntohs(sin6->sin6_port));
	} else if (ss->ss_family == AF_UNIX &&
	    len > offsetof(struct sockaddr_un, sun_path) + 1) {
		fprintf(out, " %s", ((const struct sockaddr_un *)ss)->sun_path);
	} else
		fputs(" -", out);
}

/* The line of descriptor fd. */
static void
report_fd(FILE *out, int fd)
{
	struct sockaddr_storage ss;
	struct stat st;
	socklen_t len, optlen;
	int domain, type, listening;
	const char *kind;

	if (fstat(fd, &st) != 0)
		return;
	switch (st.st_mode & S_IFMT) {
	case S_IFREG: kind = "reg"; break;
	case S_IFDIR: kind = "dir"; break;
	case S_IFIFO: kind = "fifo"; break;
	case S_IFCHR: kind = "chr"; break;
	case S_IFSOCK: kind = "sock"; break;
	default: kind = "other"; break;
	}
	fprintf(out, "fd %d %s %d %ju %ju", fd, kind,
	    fcntl(fd, F_GETFL) & O_ACCMODE, (uintmax_t)st.st_dev,
	    (uintmax_t)st.st_ino);
	if ((st.st_mode & S_IFMT) == S_IFSOCK) {
		optlen = sizeof(int);
		getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen);
		optlen = sizeof(int);
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen);
		optlen = sizeof(int);
		listening = 0;
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen);
		fprintf(out, " %s %s %d", domain == AF_INET ? "inet" :
		    domain == AF_INET6 ? "inet6" : domain == AF_UNIX ? "unix" :
		    "?", type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ?
		    "dgram" : type == SOCK_SEQPACKET ? "seqpacket" : "?",
		    listening);
		memset(&ss, 0, sizeof(ss));
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
			len = 0;
		print_address(out, &ss, len);
		memset(&ss, 0, sizeof(ss));
		len = sizeof(ss);
		if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
			len = 0;
		print_address(out, &ss, len);
	}
	fputc('\n', out);
}

/* How many descriptors this process has (at most 27 are counted). */
static int
count_descriptors(void)
{
	int fd, n;

	for (fd = 0, n = 0; fd < 1024 && n < 27; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return (n);
}

int
main(int argc, char **argv)
{
	argdata_map_iterator_t it;
	const argdata_t *ad, *v;
	struct dirent **names;
	sigset_t set;
	char **e;
	FILE *out;
	int fd, i, n, code;

	if (program_getargdata(argc, argv, &ad) != 0)
		return (2);
	v = lookup(ad, "report", &it);
	if (v == NULL || argdata_get_fd(v, &fd) != 0 ||
	    (out = fdopen(fd, "w")) == NULL)
		return (100 + count_descriptors());
	/* scandir()'s own descriptor is closed again when it returns. */
	n = scandir("/proc/self/fd", &names, NULL, versionsort);
	for (i = 0; i < n; i++) {
		fd = atoi(names[i]->d_name);
		if (names[i]->d_name[0] != '.' && fcntl(fd, F_GETFD) != -1)
			report_fd(out, fd);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	for (e = environ; *e != NULL; e++)
		fprintf(out, "env %s\n", *e);
	fputs("argdata\n", out);
	argdata_print_yaml(ad, out);
	fflush(out);
	if ((v = lookup(ad, "signal", &it)) != NULL &&
	    argdata_get_int(v, &code) == 0) {
		/* The mask is inherited through exec: make sure it lands. */
		sigemptyset(&set);
		sigaddset(&set, code);
		signal(code, SIG_DFL);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		kill(getpid(), code);
	}
	if ((v = lookup(ad, "exit", &it)) != NULL &&
	    argdata_get_int(v, &code) == 0)
		return (code);
	return (0);
}
