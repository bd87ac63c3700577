/*
 * fdremap-probe: a program for the launcher's tests.  It reports what it
 * was started with, in lines of text, to one of its descriptors.  Its
 * command is argv[1..], or the words of $FDREMAP_PROBE when that is set
 * (so that argv can be any data under test):
 *
 *	report R		write the report to descriptor R
 *	reportpath P		write the report to a new file P (for a
 *				probe started with no descriptors at all)
 *	countfds		exit with the number of open descriptors
 *	hold R MODE		write "ready" to R and wait for signals
 *				forever: with SIGTERM ignored (MODE
 *				"ignore"), or caught, writing "term" to R
 *				and exiting with status 3 (MODE "exit")
 *	sleep MS R		sleep MS milliseconds, then write "slept" to R
 *	datahash R		write "datahash ARGC LEN FNV": argv[1..]
 *				joined with NULs, its length and FNV-1a hash
 *	spawn R K FLAGS S...	program_spawn_raw() itself (/proc/self/exe)
 *				with data "report\0K", fds S... and the
 *				PROGRAM_TEST_* FLAGS, wait, and append
 *				"spawned ERROR CLOSEDBY STATUS" to R; an S
 *				ending in 'c' gets FD_CLOEXEC first; one
 *				ending in 'x' is closed first and left out
 *				(so the executable can take its number);
 *				first SIGTERM gets a handler, SIGUSR2 is
 *				ignored, and the mask is SIGUSR1 alone
 *	exec R K FLAGS S...	the same with program_exec_raw(); on failure
 *				append "error ERROR" to R
 *	execfail R BAD...	try program_exec_raw() with each descriptor
 *				BAD as the executable and with bad requests,
 *				reporting "execfail LABEL ERROR SAME": the
 *				error and whether the descriptor table and
 *				the thread count stayed as they were
 *	sigexec R BAD N MODE	with a SIGUSR1 handler that uses 96 KiB of
 *				stack, try program_exec_raw() of BAD (not
 *				executable) N times or for 2 s, but until
 *				200 signals are sent (20 s at most), while
 *				another thread
 *				sends SIGUSR1 to the process: a flood
 *				(MODE "flood") or one at a time, each sent
 *				once the last was handled ("each"); report
 *				"sigexec EXECS WRONG SENT ONMAIN ELSEWHERE
 *				LOST": handler calls on the calling thread
 *				and on any other, WRONG execs not ENOEXEC,
 *				LOST sends never handled within 10 s
 *	execattr R DIR		program_exec_raw() itself with descriptor R
 *				alone (at 0), pa_argv {"execattr-name",
 *				"report", "0"}, pa_cwd DIR and pa_sigmask
 *				{SIGUSR2}, so that the new image reports
 *				them; on failure append "error ERROR SAME" to
 *				R, SAME telling whether the working
 *				directory, the mask, the table and the thread
 *				count stayed as they were
 *	fill R MODE		in this one-threaded process, where nothing
 *				else opens or closes a descriptor meanwhile:
 *				lower RLIMIT_NOFILE to the highest open
 *				descriptor + 16 and fill the table, then
 *				spawn itself, data "report K".  MODE "swap":
 *				fds {1, 0} (0 is R, 1 /dev/null), which needs
 *				a temporary and finds no number for it.
 *				MODE "cycle": T = copy of R at the limit's
 *				top, A and B copies of descriptors 1 and 2,
 *				fds T... with A and B swapped, one number
 *				above them left free.  MODE "target": fds
 *				T... as long as the executable's number + 1
 *				(it must move), one number free.  MODE
 *				"fail": fds {0}, the executable a file that
 *				is not executable (/etc/passwd: EACCES in the
 *				child), no number free for the pidfd of the
 *				failed child's reap.  Reports
 *				"fill ERROR SAME NOCHILD STATUS N K A B",
 *				SAME and NOCHILD telling that the table is
 *				as before and no child is left (for "swap"
 *				and "fail")
 *	execrace R N ROUNDS	as a child subreaper, ROUNDS times: fork a
 *				process whose second thread spawns /bin/true
 *				with N descriptors over and over while its
 *				first execs "sleep 5" 0-3 ms into that;
 *				500 ms later report "execrace CHILDREN
 *				STUCK": the children it has then, and those
 *				of them still running (killed then)
 *
 * Started without a command (no $FDREMAP_PROBE, argv[1] not a command
 * word), it reads its argdata with program_getargdata(): a map whose
 * "report" is the descriptor to report to.  The report then ends with
 *	argdata HEX		the tree serialised again
 *	argfds N...		its descriptors, as this process's numbers
 * and when the map has "exec" or "spawn" (an executable's descriptor)
 * and "args" (a tree), the probe first runs program_exec() or
 * program_spawn() of it with that tree, reporting "error E" or
 * "spawned E STATUS".
 *
 * The report:
 *	pid P
 *	arg I HEX		argv[I] in hex (argv[0] included)
 *	env I HEX
 *	fd N CLOEXEC DEV INO ACCMODE PATH	each open descriptor
 *	sigblocked HEX		the blocked signals, bit s-1 for signal s
 *	sigignored HEX		the ignored signals
 *	cwd PATH		the working directory
 *	pgid G SID S		the process group and session
 *	end
 */
#define	_GNU_SOURCE
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <argdata.h>
#include <fdremap/program.h>
#include <fdremap/testing.h>

extern char **environ;

/* A growing text buffer; the probe exits on allocation failure. */
struct out {
	char	*o_buf;
	size_t	 o_len;
	size_t	 o_cap;
};

static void
out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->o_buf + o->o_len, o->o_cap - o->o_len, fmt,
		    ap);
		va_end(ap);
		if (n < 0)
			exit(3);
		if ((size_t)n < o->o_cap - o->o_len)
			break;
		o->o_cap = (o->o_cap + (size_t)n + 1) * 2;
		o->o_buf = realloc(o->o_buf, o->o_cap);
		if (o->o_buf == NULL)
			exit(3);
	}
	o->o_len += (size_t)n;
}

static void
out_hex(struct out *o, const char *label, int i, const char *s)
{

	out_printf(o, "%s %d ", label, i);
	for (; *s != '\0'; s++)
		out_printf(o, "%02x", (unsigned char)*s);
	out_printf(o, "\n");
}

/* Write all of o to fd and release it. */
static void
out_flush(struct out *o, int fd)
{
	size_t off = 0;
	ssize_t n;

	while (off < o->o_len) {
		n = write(fd, o->o_buf + off, o->o_len - off);
		if (n <= 0)
			exit(4);
		off += (size_t)n;
	}
	free(o->o_buf);
	*o = (struct out){ 0 };
}

/* One line per open descriptor, in ascending order, but the walker's. */
static void
report_fds(struct out *o)
{
	char path[64], target[PATH_MAX];
	struct dirent **names;
	struct stat st;
	ssize_t len;
	int i, n, fd, self, fdflags, flflags;

	self = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (self == -1)
		exit(5);
	n = scandirat(self, ".", &names, NULL, versionsort);
	if (n < 0)
		exit(5);
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] == '.') {
			free(names[i]);
			continue;
		}
		fd = atoi(names[i]->d_name);
		free(names[i]);
		if (fd == self)
			continue;
		fdflags = fcntl(fd, F_GETFD);
		flflags = fcntl(fd, F_GETFL);
		if (fdflags == -1 || flflags == -1 || fstat(fd, &st) != 0)
			continue;	/* closed meanwhile: scandir's own */
		(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, target, sizeof(target) - 1);
		target[len < 0 ? 0 : len] = '\0';
		out_printf(o, "fd %d %d %ju %ju %d %s\n", fd,
		    (fdflags & FD_CLOEXEC) != 0, (uintmax_t)st.st_dev,
		    (uintmax_t)st.st_ino,
		    (flflags & O_PATH) != 0 ? -1 : flflags & O_ACCMODE,
		    target);
	}
	free(names);
	close(self);
}

/* The signal state: blocked, ignored and caught signals as bit masks. */
static void
report_signals(struct out *o)
{
	struct sigaction sa;
	sigset_t mask;
	uint64_t blocked = 0, ignored = 0, caught = 0;
	int sig;

	(void)sigprocmask(SIG_BLOCK, NULL, &mask);
	for (sig = 1; sig < 65 && sig < NSIG; sig++) {
		if (sigismember(&mask, sig) == 1)
			blocked |= UINT64_C(1) << (sig - 1);
		if (sigaction(sig, NULL, &sa) != 0)
			continue;
		if (sa.sa_handler == SIG_IGN)
			ignored |= UINT64_C(1) << (sig - 1);
		else if (sa.sa_handler != SIG_DFL)
			caught |= UINT64_C(1) << (sig - 1);
	}
	out_printf(o, "sigblocked %jx\nsigignored %jx\nsigcaught %jx\n",
	    (uintmax_t)blocked, (uintmax_t)ignored, (uintmax_t)caught);
}

/* A handler the launched program must not inherit. */
static void
noop_handler(int sig __attribute__((unused)))
{
}

/* The working directory, process group and session. */
static void
report_place(struct out *o)
{
	char cwd[PATH_MAX];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		(void)strcpy(cwd, "?");
	out_printf(o, "cwd %s\npgid %d sid %d\n", cwd, (int)getpgrp(),
	    (int)getsid(0));
}

/* The whole report of this process. */
static void
report(struct out *o, int argc, char **argv)
{
	int i;

	out_printf(o, "pid %d\n", (int)getpid());
	for (i = 0; i < argc; i++)
		out_hex(o, "arg", i, argv[i]);
	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		out_hex(o, "env", i, environ[i]);
	report_fds(o);
	report_signals(o);
	report_place(o);
	out_printf(o, "end\n");
}

static int
cmd_report(int argc, char **argv, char **param)
{
	struct out o = { 0 };

	report(&o, argc, argv);
	out_flush(&o, atoi(param[1]));
	return (0);
}

static int
cmd_reportpath(int argc, char **argv, char **param)
{
	struct out o = { 0 };
	int fd;

	report(&o, argc, argv);
	fd = open(param[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		return (5);
	out_flush(&o, fd);
	return (0);
}

static int
cmd_countfds(void)
{
	struct out o = { 0 };
	size_t i;
	int n = 0;

	report_fds(&o);
	for (i = 0; i < o.o_len; i++)
		n += o.o_buf[i] == '\n';
	free(o.o_buf);
	return (n);
}

static int
cmd_sleep(char **param)
{
	struct timespec ts;
	long ms = atol(param[1]);

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = ms % 1000 * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	return (write(atoi(param[2]), "slept\n", 6) == 6 ? 0 : 4);
}

static int	hold_fd = -1;

/* hold's SIGTERM handler in MODE "exit". */
static void
hold_term(int sig __attribute__((unused)))
{

	(void)write(hold_fd, "term\n", 5);
	_exit(3);
}

static int
cmd_hold(char **param)
{
	struct sigaction sa;

	hold_fd = atoi(param[1]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = strcmp(param[2], "ignore") == 0 ? SIG_IGN : hold_term;
	(void)sigaction(SIGTERM, &sa, NULL);
	if (write(hold_fd, "ready\n", 6) != 6)
		return (4);
	for (;;)
		(void)pause();
}

static int
cmd_datahash(int argc, char **argv, char **param)
{
	struct out o = { 0 };
	uint64_t h = UINT64_C(14695981039346656037);
	size_t len = 0;
	const char *p;
	int i;

	for (i = 1; i < argc; i++) {
		for (p = argv[i]; ; p++) {
			if (*p == '\0' && i == argc - 1)
				break;
			h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
			len++;
			if (*p == '\0')
				break;
		}
	}
	out_printf(&o, "datahash %d %zu %016jx\n", argc, len, (uintmax_t)h);
	out_flush(&o, atoi(param[1]));
	return (0);
}

/*
 * The descriptor list S... of a spawn or exec command; entries ending
 * in 'c' are made close-on-exec first, those ending in 'x' are closed
 * and left out.  Returns the count or -1.
 */
static int
parse_fds(char **param, int *fds, int max)
{
	char *end;
	int n = 0, fd;

	for (; *param != NULL; param++) {
		fd = (int)strtol(*param, &end, 10);
		if (*end == 'x') {
			(void)close(fd);
			continue;
		}
		if (*end == 'c')
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (n == max)
			return (-1);
		fds[n++] = fd;
	}
	return (n);
}

static int
cmd_launch(char **param, int spawn)
{
	static int fds[4096];
	struct program_attr attr = { 0 };
	struct out o = { 0 };
	char data[32];
	int execfd, len, n, error, closedby = 0, status = -1;
	int report = atoi(param[1]);
	sigset_t set;
	pid_t pid;

	len = snprintf(data, sizeof(data), "report%c%s", '\0', param[2]);
	attr.pa_flags = (unsigned int)strtoul(param[3], NULL, 0);
	attr.pa_closedby = &closedby;
	n = parse_fds(param + 4, fds, 4096);
	execfd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (execfd == -1 || n < 0)
		return (2);
	/* Signal state for the child to report: one of each kind. */
	(void)signal(SIGTERM, noop_handler);
	(void)signal(SIGUSR2, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	(void)sigprocmask(SIG_SETMASK, &set, NULL);
	if (spawn) {
		error = program_spawn_raw(execfd, data, (size_t)len, fds,
		    (size_t)n, &attr, &pid);
		if (error == 0)
			while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
				;
		out_printf(&o, "spawned %d %d %d\n", error, closedby, status);
	} else {
		error = program_exec_raw(execfd, data, (size_t)len, fds,
		    (size_t)n, &attr);
		out_printf(&o, "error %d\n", error);
	}
	out_flush(&o, report);
	return (error == 0 ? 0 : 1);
}

/* The descriptor table and the thread count, as text. */
static char *
snapshot(void)
{
	struct out o = { 0 };
	DIR *d;
	int tasks = 0;

	report_fds(&o);
	/* An exec thread that failed may still be finishing its exit. */
	for (int tries = 0; tries < 1000; tries++) {
		d = opendir("/proc/self/task");
		if (d == NULL)
			exit(5);
		tasks = 0;
		while (readdir(d) != NULL)
			tasks++;
		closedir(d);
		if (tasks == 3)
			break;
		usleep(1000);
	}
	out_printf(&o, "tasks %d\n", tasks - 2);
	return (o.o_buf);
}

/* Try one failing exec; report its error and whether all stayed. */
static void
try_exec(struct out *o, const char *label, int execfd, const void *data,
    size_t datalen, const int *fds, size_t fdslen)
{
	char *before, *after;
	int error;

	before = snapshot();
	error = program_exec_raw(execfd, data, datalen, fds, fdslen, NULL);
	after = snapshot();
	out_printf(o, "execfail %s %d %d\n", label, error,
	    strcmp(before, after) == 0);
	if (strcmp(before, after) != 0)
		out_printf(o, "before:\n%safter:\n%s", before, after);
	free(before);
	free(after);
}

static int
cmd_execfail(char **param)
{
	static char big[300000];
	struct out o = { 0 };
	char label[32];
	int report = atoi(param[1]), bad, fds[] = { 0, 1, 2, report };
	int closed[] = { 0, 1, 1000 };
	int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	for (int i = 2; param[i] != NULL; i++) {
		bad = atoi(param[i]);
		(void)snprintf(label, sizeof(label), "fd%d", bad);
		try_exec(&o, label, bad, "x", 1, fds, 4);
	}
	try_exec(&o, "badexecfd", -1, "x", 1, fds, 4);
	try_exec(&o, "badfds", self, "x", 1, closed, 3);
	memset(big, 'a', sizeof(big));
	try_exec(&o, "bigdata", self, big, sizeof(big), fds, 4);
	try_exec(&o, "bigstring", self, big, 200000, fds, 4);
	out_printf(&o, "end\n");
	out_flush(&o, report);
	return (0);
}

/* sigexec: what the handler and the sender share. */
#define	SIG_MINSENT	200
static pid_t	sig_main;
static int	sig_stop, sig_each;	/* atomics: shared by two threads */
static unsigned long sig_onmain, sig_elsewhere, sig_sent, sig_lost;

/* A handler that needs 96 KiB of stack, and counts where it ran. */
static void
sig_handler(int sig __attribute__((unused)))
{
	volatile char buf[96 * 1024];
	size_t i;

	for (i = 0; i < sizeof(buf); i += 512)
		buf[i] = (char)i;
	if (gettid() == sig_main)
		__atomic_add_fetch(&sig_onmain, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_add_fetch(&sig_elsewhere, 1, __ATOMIC_SEQ_CST);
}

/* The sender, with SIGUSR1 blocked so that it never takes one. */
static void *
sig_sender(void *arg __attribute__((unused)))
{
	unsigned long want;
	sigset_t set;
	int i;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!__atomic_load_n(&sig_stop, __ATOMIC_SEQ_CST)) {
		want = __atomic_load_n(&sig_onmain, __ATOMIC_SEQ_CST) +
		    __atomic_load_n(&sig_elsewhere, __ATOMIC_SEQ_CST) + 1;
		(void)kill(getpid(), SIGUSR1);
		__atomic_add_fetch(&sig_sent, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&sig_each, __ATOMIC_SEQ_CST)) {
			sched_yield();
			continue;
		}
		for (i = 0; i < 10000 &&
		    !__atomic_load_n(&sig_stop, __ATOMIC_SEQ_CST) &&
		    __atomic_load_n(&sig_onmain, __ATOMIC_SEQ_CST) +
		    __atomic_load_n(&sig_elsewhere, __ATOMIC_SEQ_CST) < want;
		    i++)
			usleep(1000);
		if (i == 10000)
			sig_lost++;
	}
	return (NULL);
}

static int
cmd_sigexec(char **param)
{
	struct sigaction sa = { .sa_handler = sig_handler };
	struct out o = { 0 };
	int report = atoi(param[1]), bad = atoi(param[2]);
	int fds[] = { 0, 1, 2 }, n = atoi(param[3]), i, wrong = 0;
	struct timespec t0, t1;
	sigset_t set;
	pthread_t t;

	sig_main = gettid();
	__atomic_store_n(&sig_each, strcmp(param[4], "each") == 0,
	    __ATOMIC_SEQ_CST);
	sa.sa_flags = SA_RESTART;
	(void)sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);	/* the launcher's may not */
	if (pthread_create(&t, NULL, sig_sender, NULL) != 0)
		return (3);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	/*
	 * N execs or 2 s, whichever comes first, but not before the sender
	 * has sent SIG_MINSENT (on a loaded machine it may get the CPU
	 * rarely: CI once saw 68 sent during 1,000 execs); 20 s at most.
	 */
	for (i = 0;; i++) {
		if (program_exec_raw(bad, "x", 1, fds, 3, NULL) != ENOEXEC)
			wrong++;
		(void)clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= 20)
			break;
		if (__atomic_load_n(&sig_sent, __ATOMIC_SEQ_CST) >=
		    SIG_MINSENT && (i + 1 >= n || t1.tv_sec - t0.tv_sec >= 2))
			break;
	}
	i++;
	n = i;
	__atomic_store_n(&sig_stop, 1, __ATOMIC_SEQ_CST);
	(void)pthread_join(t, NULL);
	/* The last one sent may still be pending: let it in. */
	usleep(10000);
	out_printf(&o, "sigexec %d %d %lu %lu %lu %lu\nend\n", n, wrong,
	    sig_sent, sig_onmain, sig_elsewhere, sig_lost);
	out_flush(&o, report);
	return (0);
}

/*
 * The value of key in map ad, or NULL.  It lives in *it (the caller's),
 * valid as long as that iterator is.
 */
static const argdata_t *
map_get(const argdata_t *ad, const char *key, argdata_map_iterator_t *it)
{
	const argdata_t *k, *v;
	const char *s;

	argdata_map_iterate(ad, it);
	while (argdata_map_get(it, &k, &v)) {
		if (argdata_get_str_c(k, &s) == 0 && strcmp(s, key) == 0)
			return (v);
		argdata_map_next(it);
	}
	return (NULL);
}

/* The descriptor of key in map ad, or -1. */
static int
map_fd(const argdata_t *ad, const char *key)
{
	argdata_map_iterator_t it;
	const argdata_t *v = map_get(ad, key, &it);
	int fd;

	return (v != NULL && argdata_get_fd(v, &fd) == 0 ? fd : -1);
}

/* Run the "exec" or "spawn" of the tree, reporting how it went. */
static void
argdata_launch(struct out *o, const argdata_t *ad)
{
	argdata_map_iterator_t it;
	const argdata_t *args = map_get(ad, "args", &it);
	int fd, error, status = -1;
	pid_t pid;

	if (args == NULL)
		return;
	if ((fd = map_fd(ad, "exec")) >= 0) {
		error = program_exec(fd, args);
		out_printf(o, "error %d\n", error);
	}
	if ((fd = map_fd(ad, "spawn")) >= 0) {
		error = program_spawn(fd, args, &pid);
		if (error == 0)
			while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
				;
		out_printf(o, "spawned %d %d\n", error, status);
	}
}

/* The argdata mode: see the top of the file. */
static int
cmd_argdata(int argc, char **argv)
{
	struct out o = { 0 };
	const argdata_t *ad;
	unsigned char *buf;
	size_t len, nfds, i, n;
	int *fds, rfd;

	if (program_getargdata(argc, argv, &ad) != 0)
		return (6);
	rfd = map_fd(ad, "report");
	if (rfd < 0)
		return (7);
	argdata_launch(&o, ad);
	report(&o, argc, argv);
	argdata_serialized_length(ad, &len, &nfds);
	buf = malloc(len + 1);
	fds = calloc(nfds + 1, sizeof(*fds));
	if (buf == NULL || fds == NULL)
		return (3);
	n = argdata_serialize(ad, buf, fds);
	out_printf(&o, "argdata ");
	for (i = 0; i < len; i++)
		out_printf(&o, "%02x", buf[i]);
	out_printf(&o, "\nargfds");
	for (i = 0; i < n; i++)
		out_printf(&o, " %d", fds[i]);
	out_printf(&o, "\n");
	out_flush(&o, rfd);
	free(buf);
	free(fds);
	return (0);
}

static int
cmd_execattr(char **param)
{
	static char *const argv[] = { "execattr-name", "report", "0", NULL };
	struct program_attr attr = { 0 };
	struct out o = { 0 };
	char before[PATH_MAX], after[PATH_MAX], *tb, *ta;
	sigset_t want, mask0, mask1;
	int report = atoi(param[1]), execfd, error, same;

	execfd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (execfd == -1 || getcwd(before, sizeof(before)) == NULL)
		return (2);
	sigemptyset(&want);
	sigaddset(&want, SIGUSR2);
	(void)sigprocmask(SIG_BLOCK, NULL, &mask0);
	attr.pa_argv = argv;
	attr.pa_cwd = param[2];
	attr.pa_sigmask = &want;
	tb = snapshot();
	error = program_exec_raw(execfd, NULL, 0, &report, 1, &attr);
	ta = snapshot();
	(void)sigprocmask(SIG_BLOCK, NULL, &mask1);
	same = getcwd(after, sizeof(after)) != NULL &&
	    strcmp(before, after) == 0 &&
	    memcmp(&mask0, &mask1, sizeof(mask0)) == 0 &&
	    tb != NULL && ta != NULL && strcmp(tb, ta) == 0;
	free(tb);
	free(ta);
	out_printf(&o, "error %d %d\n", error, same);
	out_flush(&o, report);
	return (0);
}

/* fill: the highest open descriptor below 4096. */
static int
fill_highest(void)
{
	int fd, highest = -1;

	for (fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			highest = fd;
	return (highest);
}

/*
 * fill: the table below limit as (descriptor flags, device, inode)
 * triples, read without opening anything (the table may be full).
 */
static uint64_t *
fill_snapshot(int limit)
{
	uint64_t *t = calloc((size_t)limit * 3, sizeof(*t));
	struct stat st;
	int fd, fl;

	for (fd = 0; t != NULL && fd < limit; fd++) {
		fl = fcntl(fd, F_GETFD);
		t[3 * fd] = (uint64_t)(int64_t)fl;
		if (fl != -1 && fstat(fd, &st) == 0) {
			t[3 * fd + 1] = (uint64_t)st.st_dev;
			t[3 * fd + 2] = (uint64_t)st.st_ino;
		}
	}
	return (t);
}

static int
cmd_fill(char **param)
{
	static int fds[4096], fillers[4096];
	struct out o = { 0 };
	struct rlimit rl;
	const char *mode = param[2];
	char data[32];
	uint64_t *tb, *ta;
	int report = atoi(param[1]), execfd, top, a = -1, b = -1, n, k, i;
	int nfill = 0, len, error, same = 1, nochild = 1, status = -1, limit;
	pid_t pid;

	if (strcmp(mode, "swap") == 0) {
		while (fcntl(1, F_GETFD) == -1)
			if (open("/dev/null", O_RDONLY) == -1)
				return (2);
	} else if (strcmp(mode, "cycle") == 0) {
		a = fcntl(1, F_DUPFD_CLOEXEC, 3);
		b = fcntl(2, F_DUPFD_CLOEXEC, 3);
	}
	/* After A and B: in "cycle" the executable is no target. */
	execfd = open(strcmp(mode, "fail") == 0 ? "/etc/passwd" :
	    "/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (execfd == -1)
		return (2);
	limit = fill_highest() + 16;
	rl.rlim_cur = (rlim_t)limit;
	rl.rlim_max = RLIM_INFINITY;
	(void)getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = (rlim_t)limit;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return (2);
	top = fcntl(report, F_DUPFD_CLOEXEC, limit - 1);
	if (strcmp(mode, "swap") == 0) {
		fds[0] = 1;
		fds[1] = 0;
		n = 2;
		k = 1;
	} else if (strcmp(mode, "fail") == 0) {
		fds[0] = 0;
		n = 1;
		k = 0;
	} else {
		n = strcmp(mode, "cycle") == 0 ? (a > b ? a : b) + 1 :
		    execfd + 1;
		for (i = 0; i < n; i++)
			fds[i] = top;
		if (strcmp(mode, "cycle") == 0) {
			fds[a] = b;
			fds[b] = a;
		}
		k = n - 1;
		while (fds[k] != top)
			k--;
	}
	while (nfill < 4096 &&
	    (fillers[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) != -1)
		nfill++;
	if (strcmp(mode, "swap") != 0 && strcmp(mode, "fail") != 0) {
		for (i = 0; i < nfill && fillers[i] < n; i++)
			;
		if (i == nfill)
			return (3);	/* no filler at or above n */
		(void)close(fillers[i]);
	}
	len = snprintf(data, sizeof(data), "report%c%d", '\0', k);
	tb = fill_snapshot(limit);
	error = program_spawn_raw(execfd, data, (size_t)len, fds, (size_t)n,
	    NULL, &pid);
	if (error == 0)
		(void)waitpid(pid, &status, 0);
	ta = fill_snapshot(limit);
	same = tb != NULL && ta != NULL &&
	    memcmp(tb, ta, (size_t)limit * 3 * sizeof(*tb)) == 0;
	free(tb);
	free(ta);
	nochild = waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
	for (i = 0; i < nfill; i++)
		(void)close(fillers[i]);
	out_printf(&o, "fill %d %d %d %d %d %d %d %d\n", error, same, nochild,
	    status, n, k, a, b);
	out_flush(&o, report);
	return (0);
}

/* execrace: the launching thread, until the process execs. */
static int race_n, race_started;

static void *
race_launcher(void *arg __attribute__((unused)))
{
	static int fds[65536];
	int exe = open("/bin/true", O_RDONLY | O_CLOEXEC), i, base, status;
	struct program_attr attr;
	pid_t pid;

	memset(&attr, 0, sizeof(attr));

	base = fcntl(0, F_DUPFD_CLOEXEC, race_n + 16);
	for (i = 0; i < race_n; i++) {
		fds[i] = fcntl(base, F_DUPFD_CLOEXEC, race_n + 16);
		if (fds[i] == -1)
			_exit(3);
	}
	/* Early even on a busy machine: that is the child under test. */
	attr.pa_flags = PROGRAM_TEST_EARLY;
	for (;;) {
		__atomic_store_n(&race_started, 1, __ATOMIC_RELEASE);
		if (program_spawn_raw(exe, NULL, 0, fds, (size_t)race_n, &attr,
		    &pid) == 0)
			(void)waitpid(pid, &status, 0);
	}
	return (NULL);
}

/*
 * The children of process pid (one-threaded) into pids (at most max):
 * how many.
 */
static int
race_children(pid_t pid, pid_t *pids, int max)
{
	char path[64], buf[8192], *p, *end;
	ssize_t len;
	int fd, n = 0;
	long c;

	(void)snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
	    (int)pid, (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (0);
	len = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	buf[len > 0 ? len : 0] = '\0';
	for (p = buf; n < max && (c = strtol(p, &end, 10)) > 0; p = end)
		pids[n++] = (pid_t)c;
	return (n);
}

/* Whether process pid is a zombie (or gone). */
static int
race_dead(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t len;
	int fd;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (1);
	len = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	buf[len > 0 ? len : 0] = '\0';
	p = strrchr(buf, ')');
	return (p == NULL || p[1] == '\0' || p[2] == 'Z');
}

/*
 * One round: a process whose second thread launches while its first
 * execs a program that lives on (sleep 5) 0-3 ms into that; 500 ms
 * later its children should all have ended (the launches exec'd
 * /bin/true, which has exited; an early child told nothing gives up).
 * Counts them and those still running, then kills it and reaps them.
 */
static void
race_round(int delay_us, int *orphans, int *stuck)
{
	pid_t racer, pids[256];
	pthread_t t;
	int status, n, i;

	racer = fork();
	if (racer == 0) {
		if (pthread_create(&t, NULL, race_launcher, NULL) != 0)
			_exit(3);
		while (!__atomic_load_n(&race_started, __ATOMIC_ACQUIRE))
			(void)usleep(100);
		(void)usleep((useconds_t)delay_us);
		execl("/bin/sleep", "sleep", "5", (char *)NULL);
		_exit(4);
	}
	(void)usleep(500000);
	n = race_children(racer, pids, 256);
	*orphans += n;
	for (i = 0; i < n; i++)
		if (!race_dead(pids[i])) {
			(*stuck)++;
			(void)kill(pids[i], SIGKILL);
		}
	(void)kill(racer, SIGKILL);
	while (waitpid(-1, &status, 0) > 0)
		;
}

static int
cmd_execrace(char **param)
{
	struct out o = { 0 };
	struct rlimit rl;
	int report = atoi(param[1]), rounds = atoi(param[3]);
	int orphans = 0, stuck = 0, r;

	race_n = atoi(param[2]);
	if (race_n < 1 || race_n > 65536)
		return (2);
	(void)getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return (2);
	for (r = 0; r < rounds; r++)
		race_round((r * 7919) % 3000, &orphans, &stuck);
	out_printf(&o, "execrace %d %d\n", orphans, stuck);
	out_flush(&o, report);
	return (stuck == 0 ? 0 : 1);
}

/* The command: $FDREMAP_PROBE split at spaces, or argv[1..]. */
static char **
command(int argc, char **argv)
{
	static char *words[4100];
	char *env = getenv("FDREMAP_PROBE"), *w;
	int n = 0;

	if (env == NULL)
		return (argc > 1 ? argv + 1 : NULL);
	env = strdup(env);
	for (w = strtok(env, " "); w != NULL && n < 4099; w = strtok(NULL, " "))
		words[n++] = w;
	words[n] = NULL;
	return (n > 0 ? words : NULL);
}

int
main(int argc, char **argv)
{
	char **param = command(argc, argv);
	int n;

	for (n = 0; param != NULL && param[n] != NULL; n++)
		;
	if (n >= 2 && strcmp(param[0], "report") == 0)
		return (cmd_report(argc, argv, param));
	if (n >= 2 && strcmp(param[0], "reportpath") == 0)
		return (cmd_reportpath(argc, argv, param));
	if (n >= 1 && strcmp(param[0], "countfds") == 0)
		return (cmd_countfds());
	if (n >= 3 && strcmp(param[0], "sleep") == 0)
		return (cmd_sleep(param));
	if (n >= 3 && strcmp(param[0], "hold") == 0)
		return (cmd_hold(param));
	if (n >= 2 && strcmp(param[0], "datahash") == 0)
		return (cmd_datahash(argc, argv, param));
	if (n >= 4 && strcmp(param[0], "spawn") == 0)
		return (cmd_launch(param, 1));
	if (n >= 4 && strcmp(param[0], "exec") == 0)
		return (cmd_launch(param, 0));
	if (n >= 2 && strcmp(param[0], "execfail") == 0)
		return (cmd_execfail(param));
	if (n >= 5 && strcmp(param[0], "sigexec") == 0)
		return (cmd_sigexec(param));
	if (n >= 3 && strcmp(param[0], "fill") == 0)
		return (cmd_fill(param));
	if (n >= 3 && strcmp(param[0], "execattr") == 0)
		return (cmd_execattr(param));
	if (n >= 4 && strcmp(param[0], "execrace") == 0)
		return (cmd_execrace(param));
	if (getenv("FDREMAP_PROBE") == NULL)
		return (cmd_argdata(argc, argv));
	fprintf(stderr, "fdremap-probe: unknown command\n");
	return (2);
}
