/*
 * host_swift.h: values of C macros that Swift cannot import (O_PATH is
 * hidden behind _GNU_SOURCE, the wait-status macros are expressions),
 * for the FDRemap module only: C callers use the macros themselves.
 * Static inline, so no symbol leaves the library.
 */
#ifndef _HOST_SWIFT_H_
#define _HOST_SWIFT_H_

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* O_PATH, which glibc spells __O_PATH without _GNU_SOURCE. */
static inline int
fdr_swift_o_path(void)
{

	return (__O_PATH);
}

/* A waitpid(2) status: exited (1, *value the exit status) or killed by
 * a signal (0, *value the signal, *core whether it left a core dump). */
static inline int
fdr_swift_wstatus(int status, int *value, int *core)
{

	if (WIFEXITED(status)) {
		*value = WEXITSTATUS(status);
		*core = 0;
		return (1);
	}
	*value = WTERMSIG(status);
	*core = WCOREDUMP(status) ? 1 : 0;
	return (0);
}

/* pipe2(fds, O_CLOEXEC), which glibc declares only with _GNU_SOURCE:
 * both ends close-on-exec from the start.  0, or -1 with errno. */
static inline int
fdr_swift_pipe_cloexec(int fds[2])
{

	return ((int)syscall(SYS_pipe2, fds, O_CLOEXEC));
}

#endif /* !_HOST_SWIFT_H_ */
