/*
 * fdremap_testhooks.h: what the tests need from C: the libraries' test
 * hooks, and what Swift cannot reach (a variadic system call).
 */
#ifndef _FDREMAP_TESTHOOKS_H_
#define _FDREMAP_TESTHOOKS_H_

#include <sys/types.h>

/* The libraries' own hooks: fault injection, pa_flags. */
#include <fdremap/testing.h>

/*
 * A child of the caller with exactly process ID pid (clone3(2)'s
 * set_tid: needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), which sleeps
 * ms milliseconds and exits with status.  Makes a pid that someone else
 * reaped belong to a new child, as pid reuse would.  Returns the child's
 * pid, or -errno (EEXIST: pid is taken; EPERM: no privilege).
 */
pid_t	fdr_test_child_at(pid_t pid, unsigned int ms, int status);

/*
 * mkostemp(template, O_CLOEXEC), which Swift's Glibc module lacks: a new
 * file whose descriptor no program started meanwhile inherits.
 */
int	fdr_test_mkstemp_cloexec(char *template);

/*
 * A new io_uring instance's descriptor (io_uring_setup(2), one entry,
 * close-on-exec: a file the kernel will not pass in SCM_RIGHTS), or
 * -errno where io_uring is missing or disabled.
 */
int	fdr_test_io_uring(void);

/*
 * Another thread of the caller that forks, every 20 microseconds until
 * fdr_test_forker_stop(), a process that closes its copy of fd and then
 * lives until fdr_test_forker_reap(): a fork by another thread at any
 * moment of a launch, whose process keeps whatever else it inherited.
 * _start returns 0 or an errno; _stop stops the forking, waits (up to
 * 5 s) until every process has closed fd, and returns how many it
 * forked; _reap ends them all and waits for them.
 */
int	fdr_test_forker_start(int fd);
int	fdr_test_forker_stop(void);
void	fdr_test_forker_reap(void);

#endif /* !_FDREMAP_TESTHOOKS_H_ */
