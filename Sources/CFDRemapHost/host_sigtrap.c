/*
 * host_sigtrap.c: keeping the caller's signal handlers off the exec
 * form's helper.
 *
 * program_exec_raw() runs its child as a thread of the caller's process
 * (CLONE_THREAD), so it shares the caller's signal handlers: it must,
 * for its execveat() to replace the process.  While it runs, the caller's
 * thread has every signal blocked, so a signal sent to the process could
 * be delivered on the helper once the helper restores the caller's mask
 * for the exec (and, when the exec fails, on its way out): the caller's
 * handler would run on a stack of 64 KiB with another thread's TLS.
 *
 * So for the length of an exec every caught signal's handler is the trap
 * below, installed with the handler's own flags and mask.  On any thread
 * of the caller's the trap calls the caller's handler, as the kernel
 * would have.  On the helper it calls nothing: it notes the signal and
 * its siginfo and returns.  When the exec fails, the caller's handlers
 * are put back and each noted signal is queued again to the calling
 * thread, which takes it, with its siginfo, when its mask is restored,
 * as after a failed execve(2).  When the exec succeeds, the kernel resets
 * every caught signal to SIG_DFL (the trap included) and the noted ones
 * go with the old program, as if handled just before the exec.  Noted
 * real-time signals of one number coalesce into one.  A handler that
 * another thread installs meanwhile is kept (only the trap is replaced
 * when restoring).  Exec-form launches are serialised by a mutex.
 *
 * Only where the raw kernel sigaction is known (x86-64, AArch64);
 * elsewhere the helper keeps the old behaviour.
 */
#define	_GNU_SOURCE
#include <sys/syscall.h>

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"

#ifdef HOST_RAW_SIGACTION

/* The exec under way: what the trap and its owner share. */
static struct {
	pid_t			 xt_helper;	/* the helper's tid, 0: none */
	uint64_t		 xt_trapped;	/* signals holding the trap */
	uint64_t		 xt_noted;	/* taken by the helper */
	struct host_ksigaction	 xt_orig[HOST_NSIG + 1];
	siginfo_t		 xt_info[HOST_NSIG + 1];
} host_xt;
static pthread_mutex_t host_xt_lock = PTHREAD_MUTEX_INITIALIZER;

/* The kernel's sigaction of sig, 0 or -errno. */
HOST_CHILD static long
host_ksigaction(int sig, const struct host_ksigaction *act,
    struct host_ksigaction *oact)
{

	return (host_sys(SYS_rt_sigaction, sig, (long)act, (long)oact,
	    HOST_NSIG / 8, 0));
}

/*
 * *dst = *src, word by word through a volatile pointer, so that the
 * compiler makes no call to memcpy (an intercepted one, under a
 * sanitizer) on the helper.
 */
HOST_CHILD static void
host_copyinfo(siginfo_t *dst, const siginfo_t *src)
{
	volatile uint64_t *d = (volatile uint64_t *)(void *)dst;
	const uint64_t *s = (const uint64_t *)(const void *)src;
	size_t i;

	for (i = 0; i < sizeof(*dst) / sizeof(*d); i++)
		d[i] = s[i];
}

/*
 * The trap: on the helper, note the signal; on any other thread, run
 * the caller's handler as the kernel would have.  Touches no errno and
 * no thread-local storage (it may run on the helper).
 */
HOST_CHILD static void
host_sigtrap(int sig, siginfo_t *info, void *uc)
{
	const struct host_ksigaction *o = &host_xt.xt_orig[sig];

	if (host_sys(SYS_gettid, 0, 0, 0, 0, 0) ==
	    __atomic_load_n(&host_xt.xt_helper, __ATOMIC_ACQUIRE)) {
		host_copyinfo(&host_xt.xt_info[sig], info);
		__atomic_or_fetch(&host_xt.xt_noted, UINT64_C(1) << (sig - 1),
		    __ATOMIC_RELEASE);
		return;
	}
	if ((o->ks_flags & SA_SIGINFO) != 0)
		((void (*)(int, siginfo_t *, void *))(void (*)(void))
		    o->ks_handler)(sig, info, uc);
	else
		o->ks_handler(sig);
}

/*
 * Before an exec (the calling thread has every signal blocked): take
 * the lock and install the trap in place of every caught signal's
 * handler, keeping the handler's flags and mask.
 */
void
host_sigtrap_arm(void)
{
	struct host_ksigaction trap;
	int sig;

	(void)pthread_mutex_lock(&host_xt_lock);
	host_xt.xt_trapped = 0;
	host_xt.xt_noted = 0;
	for (sig = 1; sig <= HOST_NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP ||
		    host_ksigaction(sig, NULL, &host_xt.xt_orig[sig]) != 0 ||
		    host_xt.xt_orig[sig].ks_handler == SIG_DFL ||
		    host_xt.xt_orig[sig].ks_handler == SIG_IGN)
			continue;
		trap = host_xt.xt_orig[sig];
		trap.ks_handler = (void (*)(int))(void (*)(void))host_sigtrap;
		trap.ks_flags |= SA_SIGINFO;
		if (host_ksigaction(sig, &trap, NULL) == 0)
			host_xt.xt_trapped |= UINT64_C(1) << (sig - 1);
	}
}

/*
 * The helper, first thing, with every signal still blocked: be known to
 * the trap, and have no alternate signal stack (CLONE_VFORK handed it
 * the caller's, which the caller may be running on).
 */
HOST_CHILD void
host_sigtrap_helper(void)
{
	stack_t ss = { .ss_flags = SS_DISABLE };

	(void)host_sys(SYS_sigaltstack, (long)&ss, 0, 0, 0, 0);
	__atomic_store_n(&host_xt.xt_helper,
	    (pid_t)host_sys(SYS_gettid, 0, 0, 0, 0, 0), __ATOMIC_RELEASE);
}

/*
 * After a failed exec (the helper has exited; the calling thread still
 * has every signal blocked): put the caller's handlers back where the
 * trap still is (or where SA_RESETHAND reset a signal only the helper
 * took), queue each noted signal to the calling thread, and unlock.
 */
void
host_sigtrap_disarm(void)
{
	struct host_ksigaction cur;
	uint64_t bit, noted;
	int sig;

	__atomic_store_n(&host_xt.xt_helper, 0, __ATOMIC_RELEASE);
	noted = __atomic_load_n(&host_xt.xt_noted, __ATOMIC_ACQUIRE);
	for (sig = 1; sig <= HOST_NSIG; sig++) {
		bit = UINT64_C(1) << (sig - 1);
		if ((host_xt.xt_trapped & bit) == 0 ||
		    host_ksigaction(sig, NULL, &cur) != 0)
			continue;
		if (cur.ks_handler ==
		    (void (*)(int))(void (*)(void))host_sigtrap ||
		    ((noted & bit) != 0 && cur.ks_handler == SIG_DFL &&
		    (host_xt.xt_orig[sig].ks_flags & SA_RESETHAND) != 0))
			(void)host_ksigaction(sig, &host_xt.xt_orig[sig], NULL);
	}
	for (sig = 1; sig <= HOST_NSIG; sig++)
		if ((noted & (UINT64_C(1) << (sig - 1))) != 0)
			(void)host_sys(SYS_rt_tgsigqueueinfo, getpid(),
			    host_sys(SYS_gettid, 0, 0, 0, 0, 0), sig,
			    (long)&host_xt.xt_info[sig], 0);
	(void)pthread_mutex_unlock(&host_xt_lock);
}

#else /* !HOST_RAW_SIGACTION */

void
host_sigtrap_arm(void)
{
}

HOST_CHILD void
host_sigtrap_helper(void)
{
}

void
host_sigtrap_disarm(void)
{
}

#endif /* HOST_RAW_SIGACTION */
