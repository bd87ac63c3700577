/*
 * launch_bench.c: descriptors to pass and the posix_spawn(3) baseline of
 * FDRemap's launch benchmarks (launch_bench.h).
 */
#define	_GNU_SOURCE
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launch_bench.h"

/* Raise RLIMIT_NOFILE's soft limit to the hard one; return it. */
long
launch_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return (-1);
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return (-1);
	return (rl.rlim_cur > 1L << 30 ? 1L << 30 : (long)rl.rlim_cur);
}

/* /dev/null at base .. base+k-1, close-on-exec. */
int
launch_open_sources(int base, int k)
{
	int fd, i, error;

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return (errno);
	for (i = 0; i < k; i++) {
		if (dup3(fd, base + i, O_CLOEXEC) < 0) {
			error = errno;
			launch_close_sources(base, i);
			close(fd);
			return (error);
		}
	}
	close(fd);
	return (0);
}

/* Close base .. base+k-1. */
void
launch_close_sources(int base, int k)
{
	int i;

	for (i = 0; i < k; i++)
		close(base + i);
}

/* posix_spawn(3) with k dup2 actions and closefrom(k). */
int
launch_posix_spawn(const char *path, const int *fds, size_t k, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { (char *)path, NULL };
	char *envp[] = { NULL };
	size_t i;
	int error;

	error = posix_spawn_file_actions_init(&fa);
	if (error != 0)
		return (error);
	for (i = 0; i < k && error == 0; i++)
		error = posix_spawn_file_actions_adddup2(&fa, fds[i], (int)i);
	if (error == 0)
		error = posix_spawn_file_actions_addclosefrom_np(&fa, (int)k);
	if (error == 0)
		error = posix_spawn(pid, path, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	return (error);
}

/* The file actions of launch_posix_spawn_prebuilt(), built once. */
static posix_spawn_file_actions_t prebuilt;

/* Build the k dup2 actions and the closefrom once: see the header. */
int
launch_actions_build(const int *fds, size_t k)
{
	size_t i;
	int error;

	error = posix_spawn_file_actions_init(&prebuilt);
	for (i = 0; i < k && error == 0; i++)
		error = posix_spawn_file_actions_adddup2(&prebuilt, fds[i],
		    (int)i);
	if (error == 0)
		error = posix_spawn_file_actions_addclosefrom_np(&prebuilt,
		    (int)k);
	return (error);
}

/* posix_spawn(3) with the prebuilt actions. */
int
launch_posix_spawn_prebuilt(const char *path, pid_t *pid)
{
	char *argv[] = { (char *)path, NULL };
	char *envp[] = { NULL };

	return (posix_spawn(pid, path, &prebuilt, NULL, argv, envp));
}

void
launch_actions_free(void)
{

	posix_spawn_file_actions_destroy(&prebuilt);
}

/* What the floor's child needs: all prepared by the parent. */
struct floor_arg {
	const char	*path;
	const int	*fds;
	size_t		 k;
	char		**argv;
	char		**envp;
};

/*
 * The floor's child, in the parent's memory: dup2 each source to its
 * target in order, close_range() the rest, execve().  System calls only.
 */
static int
floor_child(void *arg)
{
	const struct floor_arg *fa = arg;
	size_t i;

	for (i = 0; i < fa->k; i++)
		(void)syscall(SYS_dup3, fa->fds[i], (int)i, 0);
	(void)syscall(SYS_close_range, (unsigned int)fa->k, ~0U, 0);
	(void)syscall(SYS_execve, fa->path, fa->argv, fa->envp);
	syscall(SYS_exit, 127);
	return (127);
}

/* The hand-written floor: see the header. */
int
launch_floor(const char *path, const int *fds, size_t k, pid_t *pid)
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	char *argv[] = { (char *)path, NULL };
	char *envp[] = { NULL };
	struct floor_arg fa = { path, fds, k, argv, envp };
	pid_t p;

	p = clone(floor_child, stack + sizeof(stack),
	    CLONE_VM | CLONE_VFORK | SIGCHLD, &fa);
	if (p == -1)
		return (errno);
	*pid = p;
	return (0);
}

/* An O_PATH descriptor of path, as our launcher takes executables. */
int
launch_open_exec(const char *path)
{

	return (open(path, O_PATH | O_CLOEXEC));
}

/* waitpid(2) for pid: its exit status, or -1. */
int
launch_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return (-1);
	return (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* A monotonic clock in nanoseconds. */
unsigned long long
launch_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((unsigned long long)ts.tv_sec * 1000000000ull +
	    (unsigned long long)ts.tv_nsec);
}

#ifndef CLOSE_RANGE_UNSHARE
#define	CLOSE_RANGE_UNSHARE	(1U << 1)
#endif

/* What the fresh floor's child needs: all prepared by the parent. */
struct floor_fresh_arg {
	const char	*path;
	size_t		 k;
	int		 sock;
	char		**argv;
	char		**envp;
};

#define	FLOOR_SCM_BATCH	253	/* SCM_MAX_FD */

/*
 * One SCM_RIGHTS message of m descriptors through sock: sent from fds,
 * or received.  The system call's result.
 */
static long
floor_scm_msg(int sock, int recv, const int *fds, size_t m)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * FLOOR_SCM_BATCH)];
	} cm;
	struct msghdr mh;
	struct iovec iov;
	char byte = 0;

	iov.iov_base = &byte;
	iov.iov_len = 1;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * m);
	cm.hdr.cmsg_level = SOL_SOCKET;
	cm.hdr.cmsg_type = SCM_RIGHTS;
	cm.hdr.cmsg_len = CMSG_LEN(sizeof(int) * m);
	if (!recv) {
		memcpy(CMSG_DATA(&cm.hdr), fds, m * sizeof(int));
		return (syscall(SYS_sendmsg, sock, &mh, 0));
	}
	return (syscall(SYS_recvmsg, sock, &mh, 0));
}

/*
 * The fresh floor's child, sharing the parent's memory and table: a
 * table of its own holding what lies below the socket and the socket
 * (close_range(CLOSE_RANGE_UNSHARE)), the socket moved to k or above
 * and everything below it closed, the files received at 0 .. k-1,
 * close_range(k, ~0), execve().  System calls only, no checks.
 */
static int
floor_fresh_child(void *arg)
{
	const struct floor_fresh_arg *fa = arg;
	int s = fa->sock;
	size_t i, m;

	(void)syscall(SYS_close_range, (unsigned int)s + 1, ~0U,
	    CLOSE_RANGE_UNSHARE);
	if ((size_t)s < fa->k)
		s = (int)syscall(SYS_fcntl, s, F_DUPFD_CLOEXEC, (int)fa->k);
	(void)syscall(SYS_close_range, 0U, (unsigned int)s - 1, 0U);
	for (i = 0; i < fa->k; i += m) {
		m = fa->k - i < FLOOR_SCM_BATCH ? fa->k - i : FLOOR_SCM_BATCH;
		(void)floor_scm_msg(s, 1, NULL, m);
	}
	(void)syscall(SYS_close_range, (unsigned int)fa->k, ~0U, 0U);
	(void)syscall(SYS_execve, fa->path, fa->argv, fa->envp);
	syscall(SYS_exit, 127);
	return (127);
}

/* The hand-written fresh floor: see the header. */
int
launch_floor_fresh(const char *path, const int *fds, size_t k, pid_t *pid)
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	char *argv[] = { (char *)path, NULL };
	char *envp[] = { NULL };
	struct floor_fresh_arg fa = { path, k, -1, argv, envp };
	int sv[2], error = 0;
	size_t i, m;
	pid_t p;

	if (k == 0)
		return (launch_floor(path, fds, k, pid));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return (errno);
	for (i = 0; i < k && error == 0; i += m) {
		m = k - i < FLOOR_SCM_BATCH ? k - i : FLOOR_SCM_BATCH;
		if (floor_scm_msg(sv[0], 0, fds + i, m) != 1)
			error = errno;
	}
	(void)close(sv[0]);
	fa.sock = sv[1];
	p = error != 0 ? -1 : clone(floor_fresh_child, stack + sizeof(stack),
	    CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &fa);
	if (p == -1 && error == 0)
		error = errno;
	(void)close(sv[1]);
	if (error == 0)
		*pid = p;
	return (error);
}
