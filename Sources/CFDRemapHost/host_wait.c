/*
 * host_wait.c: waiting for and signalling a child by its pidfd, never by
 * a number that can be reused: program_wait() and program_kill(), which
 * the reaper and the failed-launch path use too.
 *
 * A pid names a child only until it is reaped.  If anyone else in the
 * process reaps it (a waitpid(-1) in a library) and the kernel hands the
 * number to a new child, waitpid(pid) waits for that one and takes its
 * status, and kill(pid) signals it.  A pidfd always names its own
 * process: waitid(P_PIDFD) and pidfd_send_signal(2) on it fail cleanly
 * (ECHILD, ESRCH) once that process is gone.
 */
#define	_GNU_SOURCE
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"

#ifndef P_PIDFD
#define	P_PIDFD		3	/* Linux 5.4 */
#endif

/*
 * The waitpid(2) status of what waitid(2) reported: the exit status in
 * bits 8-15, or the signal in bits 0-6 and WCOREFLAG for a core dump.
 */
static int
host_wstatus(const siginfo_t *si)
{

	switch (si->si_code) {
	case CLD_EXITED:
		return ((si->si_status & 0xff) << 8);
	case CLD_DUMPED:
		return ((si->si_status & 0x7f) | WCOREFLAG);
	default:
		return (si->si_status & 0x7f);
	}
}

/*
 * Reap the child of pidfd, blocking until it exits, retrying on EINTR.
 * Returns 0 with *statusp (may be NULL) set, ECHILD when it is no longer
 * this process's child to wait for (someone reaped it), or EINVAL where
 * the kernel has no P_PIDFD (before 5.4).
 */
static int
host_waitpidfd(int pidfd, int *statusp)
{
	siginfo_t si;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si,
		    WEXITED) == 0)
			break;
		if (errno != EINTR)
			return (errno);
	}
	if (statusp != NULL)
		*statusp = host_wstatus(&si);
	return (0);
}

/* Wait for a child: see program.h. */
int
program_wait(pid_t pid, int pidfd, int *statusp)
{
	int error, status;

	if (pidfd >= 0) {
		error = host_waitpidfd(pidfd, statusp);
		if (error != EINVAL)
			return (error);
	}
	if (pid <= 0)
		return (EINVAL);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return (errno);
	if (statusp != NULL)
		*statusp = status;
	return (0);
}

/* Signal a child: see program.h. */
int
program_kill(pid_t pid, int pidfd, int sig)
{

	if (pidfd >= 0) {
		if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0)
			return (0);
		if (errno != ENOSYS)
			return (errno);
	}
	if (pid <= 0)
		return (EINVAL);
	return (kill(pid, sig) == 0 ? 0 : errno);
}
