/*
 * host_argdata.c: the launcher with argdata: program_spawn() and
 * program_exec() serialise a tree and launch with its descriptors, and
 * program_getargdata() gives the child its tree back.
 */
#define	_GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <argdata.h>

#include "host_internal.h"

/*
 * Serialise ad (its descriptors renumbered in order of first appearance,
 * each listed once) and launch it as the raw forms do with a NULL attr.
 * Returns EINVAL for a NULL tree, ENOMEM, or the launch's error.
 */
static int
host_launch_argdata(int fd, const argdata_t *ad, bool spawn, pid_t *pid)
{
	size_t len, nfds;
	void *buf;
	int *fds, error;

	if (ad == NULL)
		return (EINVAL);
	argdata_serialized_length(ad, &len, &nfds);
	buf = fdr_malloc(len > 0 ? len : 1);
	fds = fdr_reallocarray(NULL, nfds > 0 ? nfds : 1, sizeof(int));
	if (buf == NULL || fds == NULL)
		error = ENOMEM;
	else {
		nfds = argdata_serialize(ad, buf, fds);
		error = host_launch(fd, buf, len, fds, nfds, NULL, spawn, pid);
	}
	fdr_free(buf);
	fdr_free(fds);
	return (error);
}

/* Start the program at fd with ad: see program.h. */
int
program_spawn(int fd, const argdata_t *ad, pid_t *pid)
{

	return (host_launch_argdata(fd, ad, true, pid));
}

/* Replace this process with the program at fd and ad: see program.h. */
int
program_exec(int fd, const argdata_t *ad)
{

	return (host_launch_argdata(fd, ad, false, NULL));
}

/* convert_fd of the child: index i is descriptor i. */
static int
host_identity_fd(void *arg __attribute__((unused)), size_t i)
{

	return (i <= INT_MAX ? (int)i : -1);
}

/* A tree given out by program_getargdata(), kept for the process. */
struct host_args {
	char		**ha_argv;
	int		  ha_argc;
	argdata_t	 *ha_ad;
	struct host_args *ha_next;
};

static pthread_mutex_t	 host_args_lock = PTHREAD_MUTEX_INITIALIZER;
static struct host_args	*host_args_list;

/*
 * The tree of argv[1 .. argc-1] joined with NULs, its descriptor index i
 * read as descriptor i.  The bytes are copied: the tree does not depend
 * on argv afterwards.  Returns 0 or ENOMEM.
 */
static int
host_args_build(int argc, char **argv, struct host_args *ha)
{
	size_t len = 0, off = 0, n;
	char *buf;
	int i;

	for (i = 1; i < argc; i++)
		len += strlen(argv[i]) + (i > 1);
	buf = fdr_malloc(len > 0 ? len : 1);
	if (buf == NULL)
		return (ENOMEM);
	for (i = 1; i < argc; i++) {
		if (i > 1)
			buf[off++] = '\0';
		n = strlen(argv[i]);
		memcpy(buf + off, argv[i], n);
		off += n;
	}
	ha->ha_ad = argdata_from_buffer(buf, len, host_identity_fd, NULL);
	if (ha->ha_ad == NULL) {
		fdr_free(buf);
		return (ENOMEM);
	}
	return (0);
}

/* The child's argdata: see program.h. */
int
program_getargdata(int argc, char **argv, const argdata_t **ad)
{
	struct host_args *ha;
	int error = 0;

	if (argc < 0 || (argc > 1 && argv == NULL) || ad == NULL)
		return (EINVAL);
	(void)pthread_mutex_lock(&host_args_lock);
	for (ha = host_args_list; ha != NULL; ha = ha->ha_next)
		if (ha->ha_argv == argv && ha->ha_argc == argc)
			break;
	if (ha == NULL) {
		ha = fdr_calloc(1, sizeof(*ha));
		if (ha == NULL)
			error = ENOMEM;
		else if ((error = host_args_build(argc, argv, ha)) != 0)
			fdr_free(ha);
		else {
			ha->ha_argv = argv;
			ha->ha_argc = argc;
			ha->ha_next = host_args_list;
			host_args_list = ha;
		}
	}
	if (error == 0)
		*ad = ha->ha_ad;
	(void)pthread_mutex_unlock(&host_args_lock);
	return (error);
}
