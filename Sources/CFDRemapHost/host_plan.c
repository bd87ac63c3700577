/*
 * host_plan.c: what the child will do, decided and allocated by the
 * caller: the argument vector (and its E2BIG checks) and the descriptor
 * shuffle as an optimal parallel move.
 */
#define	_GNU_SOURCE
#include <sys/resource.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"

/* Linux's floor of the argument space (uapi ARG_MAX) and _STK_LIM. */
#define	HOST_ARG_FLOOR	131072L
#define	HOST_STK_LIM	(8L * 1024 * 1024)
/* The longest name the kernel copies for execveat: "/dev/fd/N". */
#define	HOST_EXECFN_MAX	(sizeof("/dev/fd/") + 10)

/* A source of the shuffle that is the temporary, not a descriptor. */
#define	HOST_TEMP	(-1)

/*
 * The kernel's total argument limit (fs/exec.c, bprm_stack_limits): a
 * quarter of the soft RLIMIT_STACK, at most 3/4 of _STK_LIM, at least
 * HOST_ARG_FLOOR.  glibc's sysconf(_SC_ARG_MAX) lacks the upper bound.
 */
static long
host_arg_limit(void)
{
	struct rlimit rl;
	long limit = HOST_STK_LIM / 4 * 3;

	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 < (rlim_t)limit)
		limit = (long)(rl.rlim_cur / 4);
	return (limit > HOST_ARG_FLOOR ? limit : HOST_ARG_FLOOR);
}

/*
 * E2BIG unless the vector fits as the kernel will count it: argv[0]
 * name, then the strings of data (split at each NUL, the last ending at
 * datalen; none when datalen is 0), then envp.  Each string with its NUL
 * within the per-string limit (MAX_ARG_STRLEN, 32 pages); all of them,
 * their pointers and the kernel's copy of "/dev/fd/N" within the total.
 */
static int
host_args_check(const char *name, const char *data, size_t datalen,
    char *const *envp)
{
	long strmax = sysconf(_SC_PAGESIZE) * 32, limit;
	long space = (long)HOST_EXECFN_MAX, nptr = 1;
	const char *p = data, *end = data + datalen, *nul;
	size_t len, i;

	len = strnlen(name, (size_t)strmax) + 1;
	if ((long)len > strmax)
		return (E2BIG);
	space += (long)len;
	for (; datalen > 0; p = nul + 1) {
		nul = memchr(p, '\0', (size_t)(end - p));
		len = (size_t)((nul != NULL ? nul : end) - p) + 1;
		if ((long)len > strmax)
			return (E2BIG);
		space += (long)len;
		nptr++;
		if (nul == NULL)
			break;
	}
	for (i = 0; envp[i] != NULL; i++, nptr++) {
		len = strnlen(envp[i], (size_t)strmax) + 1;
		if ((long)len > strmax)
			return (E2BIG);
		space += (long)len;
	}
	limit = host_arg_limit();
	nptr *= (long)sizeof(void *);
	if (limit <= nptr || space > limit - nptr)
		return (E2BIG);
	return (0);
}

/* Whether arguments fit: see program.h. */
int
program_args_fit(const void *data, size_t datalen, const char *name,
    char *const envp[])
{
	static char *const noenv[] = { NULL };
	char longest[NAME_MAX + 1];

	if (datalen >= EXEC_ARG_MAX)
		return (E2BIG);
	if (name == NULL) {
		memset(longest, 'x', NAME_MAX);
		longest[NAME_MAX] = '\0';
		name = longest;
	}
	return (host_args_check(name, data, datalen,
	    envp != NULL ? envp : noenv));
}

/*
 * A copy of the file name of the open descriptor fd, for argv[0]: the
 * last part of its /proc/self/fd link, or "program".  NULL when out of
 * memory.
 */
static char *
host_fd_name(int fd, unsigned int flags)
{
	char path[32], target[PATH_MAX], *name, *slash;
	ssize_t len = -1;

	if ((flags & PROGRAM_TEST_NOPROCFS) == 0) {
		(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, target, sizeof(target) - 1);
	}
	if (len <= 0 || target[0] != '/')
		len = (ssize_t)strlen(strcpy(target, "program"));
	target[len] = '\0';
	slash = strrchr(target, '/');
	if (slash != NULL && slash[1] != '\0')
		memmove(target, slash + 1, strlen(slash));
	name = fdr_malloc(strlen(target) + 1);
	if (name != NULL)
		strcpy(name, target);
	return (name);
}

/*
 * The options of program.h that the child carries out before the
 * shuffle (working directory, session, process group) and the mask it
 * starts the program with, checked: EINVAL for pa_cwd with
 * PROGRAM_CWDFD, for PROGRAM_SETSID with PROGRAM_SETPGROUP, a negative
 * pa_pgroup, and for either of those two in an exec (they would outlive
 * its failure).
 */
int
host_plan_attr(struct host_plan *hp, const struct program_attr *attr)
{
	unsigned int flags = attr != NULL ? attr->pa_flags : 0;

	hp->hp_cwd = NULL;
	hp->hp_cwdfd = -1;
	hp->hp_setsid = false;
	hp->hp_pgroup = -1;
	hp->hp_setmask = false;
	if (attr == NULL)
		return (0);
	if ((flags & PROGRAM_CWDFD) != 0 && attr->pa_cwd != NULL)
		return (EINVAL);
	if ((flags & PROGRAM_SETSID) != 0 && (flags & PROGRAM_SETPGROUP) != 0)
		return (EINVAL);
	if ((flags & PROGRAM_SETPGROUP) != 0 && attr->pa_pgroup < 0)
		return (EINVAL);
	if (!hp->hp_spawn && (flags & (PROGRAM_SETSID | PROGRAM_SETPGROUP)) != 0)
		return (EINVAL);
	hp->hp_cwd = attr->pa_cwd;
	if ((flags & PROGRAM_CWDFD) != 0)
		hp->hp_cwdfd = attr->pa_cwdfd < 0 ? INT_MAX : attr->pa_cwdfd;
	hp->hp_setsid = (flags & PROGRAM_SETSID) != 0;
	if ((flags & PROGRAM_SETPGROUP) != 0)
		hp->hp_pgroup = attr->pa_pgroup;
	if (attr->pa_sigmask != NULL) {
		hp->hp_setmask = true;
		hp->hp_execmask = *(const sigset_t *)attr->pa_sigmask;
	}
	return (0);
}

/*
 * The total of a NULL-terminated vector of strings for the kernel's
 * count, into *spacep (bytes with NULs) and *nptrp (pointers), or
 * E2BIG when one string passes the per-string limit strmax.
 */
static int
host_vector_space(char *const *v, long strmax, long *spacep, long *nptrp)
{
	size_t len, i;

	for (i = 0; v[i] != NULL; i++) {
		len = strnlen(v[i], (size_t)strmax) + 1;
		if ((long)len > strmax)
			return (E2BIG);
		*spacep += (long)len;
		(*nptrp)++;
	}
	return (0);
}

/*
 * A plain argument vector (pa_argv), taken as it is: EINVAL with data
 * besides it or for an empty vector, E2BIG unless it and the
 * environment fit as the kernel will count them (as host_args_check()).
 */
static int
host_plan_argv(struct host_plan *hp, const struct image_args *args,
    char *const *argv)
{
	long strmax = sysconf(_SC_PAGESIZE) * 32, limit;
	long space = (long)HOST_EXECFN_MAX, nptr = 0;

	if (args->argc > 0 || argv[0] == NULL)
		return (EINVAL);
	if (host_vector_space(argv, strmax, &space, &nptr) != 0 ||
	    host_vector_space(hp->hp_envp, strmax, &space, &nptr) != 0)
		return (E2BIG);
	limit = host_arg_limit();
	nptr *= (long)sizeof(void *);
	if (limit <= nptr || space > limit - nptr)
		return (E2BIG);
	hp->hp_argv = (char **)argv;
	hp->hp_ownargv = false;
	return (0);
}

/*
 * Build hp_argv: the name, then args' data split at each NUL (argc
 * strings, already NUL-terminated in the copied-in buffer), and take the
 * environment; or take the plain vector of pa_argv.  E2BIG when any string passes the per-string limit or
 * everything (strings, pointers, the kernel's copy of "/dev/fd/N") passes
 * the total; checked as the kernel will, so the child does not start.
 */
int
host_plan_args(struct host_plan *hp, const struct image_args *args,
    const struct program_attr *attr, int execfd)
{
	static char *const noenv[] = { NULL };
	const char *name = attr != NULL ? attr->pa_name : NULL;
	char *p;
	size_t datalen, i;
	int error;

	hp->hp_envp = attr != NULL && attr->pa_envp != NULL ? attr->pa_envp :
	    noenv;
	if (attr != NULL && attr->pa_argv != NULL)
		return (host_plan_argv(hp, args, attr->pa_argv));
	if (name == NULL) {
		hp->hp_name = host_fd_name(execfd, hp->hp_flags);
		if (hp->hp_name == NULL)
			return (ENOMEM);
		name = hp->hp_name;
	}
	/* The data without the NUL the copy-in appended (none when empty). */
	datalen = args->argc > 0 ? (size_t)(args->endp - args->begin_argv) - 1 :
	    0;
	error = host_args_check(name, args->begin_argv, datalen, hp->hp_envp);
	if (error != 0)
		return (error);
	hp->hp_argv = fdr_malloc(((size_t)args->argc + 2) * sizeof(char *));
	if (hp->hp_argv == NULL)
		return (ENOMEM);
	hp->hp_ownargv = true;
	hp->hp_argv[0] = (char *)name;
	for (p = args->begin_argv, i = 1; i <= (size_t)args->argc; i++) {
		hp->hp_argv[i] = p;
		p += strlen(p) + 1;
	}
	hp->hp_argv[i] = NULL;
	return (0);
}

/* Append a step. */
HOST_CHILD static void
host_emit(struct host_plan *hp, int op, int from, int to)
{

	hp->hp_steps[hp->hp_nsteps++] = (struct host_step){ op, from, to };
}

/*
 * Whether the shuffle can run straight down the list: every entry is an
 * identity (i from i) or reads a source at or above n, which no target
 * writes, so the order of the writes cannot matter.  Sets hp_bruteend
 * past every source either way.
 */
static bool
host_plan_isdirect(struct host_plan *hp, const int *list, int n)
{
	int i, maxsrc = -1;
	bool direct = true;

	for (i = 0; i < n; i++) {
		if (list[i] > maxsrc)
			maxsrc = list[i];
		if (list[i] != i && list[i] < n)
			direct = false;
	}
	hp->hp_bruteend = maxsrc >= n ? maxsrc + 1 : n;
	return (direct);
}

/*
 * The general shuffle, as an optimal parallel move, over src (consumed),
 * with readers (zeroed) and stack of n + 1 each: an identity entry only
 * loses close-on-exec; a target that no pending entry still reads is
 * written at once (dup2), which may free its own source's target, and so
 * on; what remains are cycles, each broken with one temporary: its first
 * target is saved at the lowest free number at or above n
 * (F_DUPFD_CLOEXEC from n, never a guessed number), which is neither a
 * source (sources are open) nor a target (they are below n), and its
 * reader takes the copy.  A cycle of k costs k + 1 steps.  Memory only,
 * no call: the child runs it when its fresh table could not be had.
 */
HOST_CHILD static void
host_plan_moves(struct host_plan *hp, int *src, int *readers, int *stack,
    int n)
{
	int top = 0, i, j, s, cursor;

	for (i = 0; i < n; i++) {
		if (src[i] == i)
			host_emit(hp, HOP_SETFD0, i, i);
		else if (src[i] < n && src[src[i]] != src[i])
			readers[src[i]]++;
	}
	for (i = 0; i < n; i++)
		if (src[i] != i && readers[i] == 0)
			stack[top++] = i;
	for (cursor = 0;;) {
		while (top > 0) {
			i = stack[--top];
			s = src[i];
			if (s == HOST_TEMP)
				host_emit(hp, HOP_DUP2TEMP, s, i);
			else
				host_emit(hp, HOP_DUP2, s, i);
			src[i] = i;	/* done: final from now on */
			if (s >= 0 && s < n && src[s] != s && --readers[s] == 0)
				stack[top++] = s;
		}
		while (cursor < n && src[cursor] == cursor)
			cursor++;
		if (cursor == n)
			break;
		/* Only cycles are left: save cursor, its reader takes it. */
		for (j = cursor; src[j] != cursor; j = src[j])
			;
		host_emit(hp, HOP_SAVE, cursor, cursor);
		src[j] = HOST_TEMP;
		readers[cursor] = 0;
		stack[top++] = cursor;
	}
}

/*
 * Plan the shuffle that makes descriptor i a copy of list[i] for i < n
 * (descriptor numbers, none negative); list must stay valid until the
 * child has exec'd or exited.  A list a fresh table may take
 * (host_fresh_likely()) needs no shuffle when it does.  Else, or when it
 * cannot: when no source is another entry's target, the child runs down
 * the list itself (hp_direct): no memory, one pass; otherwise the steps
 * of host_plan_moves(), in memory of the plan's own, planned here, or by
 * the child only when its fresh table could not be had
 * (hp_latesteps, host_plan_late()), so that a fresh table pays for the
 * memory alone.
 * Either way, when the executable's
 * descriptor is a target that will be written, the child first moves it
 * out of the way (hp_moveexec) to the lowest free number at or above n,
 * so a launch needs one free number there only for a cycle or that
 * move, wherever its sources are.  hp_bruteend is set past every
 * source.  Returns 0 or ENOMEM.
 */
int
host_plan_fds(struct host_plan *hp, const int *list, int n, int execfd)
{
	int *src, *readers;
	size_t cap = (size_t)n + (size_t)n / 2 + 2;

	hp->hp_n = n;
	hp->hp_execfd = execfd;
	hp->hp_execpassed = execfd < n && list[execfd] == execfd;
	hp->hp_moveexec = execfd < n && !hp->hp_execpassed;
	hp->hp_list = list;
	hp->hp_latesteps = host_fresh_likely((size_t)n, hp->hp_flags,
	    hp->hp_spawn);
	hp->hp_freshdone = false;
	hp->hp_nsteps = 0;
	hp->hp_direct = host_plan_isdirect(hp, list, n);
	if (hp->hp_direct)
		return (0);
	hp->hp_steps = fdr_malloc(cap * sizeof(*hp->hp_steps));
	src = fdr_malloc(((size_t)n + 1) * 2 * sizeof(*src));
	readers = fdr_calloc((size_t)n + 1, sizeof(*readers));
	if (hp->hp_steps == NULL || src == NULL || readers == NULL) {
		fdr_free(src);
		fdr_free(readers);
		return (ENOMEM);
	}
	memcpy(src, list, (size_t)n * sizeof(*src));
	hp->hp_src = src;
	hp->hp_readers = readers;
	if (!hp->hp_latesteps)
		host_plan_late(hp);
	return (0);
}

/*
 * The general plan's steps, from the memory host_plan_fds() prepared
 * (the list's copy, the zeroed reader counts), once: by the caller, or
 * by the child when its fresh table could not be had.
 */
HOST_CHILD void
host_plan_late(struct host_plan *hp)
{

	if (hp->hp_nsteps == 0)
		host_plan_moves(hp, hp->hp_src, hp->hp_readers,
		    hp->hp_src + hp->hp_n + 1, hp->hp_n);
}

/* Free what the plan allocated (nothing for NULL). */
void
host_plan_free(struct host_plan *hp)
{

	if (hp == NULL)
		return;
	fdr_free(hp->hp_steps);
	fdr_free(hp->hp_src);
	fdr_free(hp->hp_readers);
	if (hp->hp_ownargv)
		fdr_free(hp->hp_argv);
	fdr_free(hp->hp_name);
	hp->hp_steps = NULL;
	hp->hp_src = NULL;
	hp->hp_readers = NULL;
	hp->hp_argv = NULL;
	hp->hp_name = NULL;
}
