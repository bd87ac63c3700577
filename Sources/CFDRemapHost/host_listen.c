/*
 * host_listen.c: the environment of PROGRAM_LISTEN_PID, systemd's
 * LISTEN_PID entry, which the caller reserves and only the child, which
 * knows its pid, fills in.
 */
#define	_GNU_SOURCE
#include <string.h>

#include "host_internal.h"

#define	HOST_LISTENPID	"LISTEN_PID="
#define	HOST_PIDDIGITS	10	/* the digits of the largest pid_t */

/* Whether s is an entry of the variable LISTEN_PID. */
static bool
host_listen_is_pid(const char *s)
{

	return (strncmp(s, HOST_LISTENPID, sizeof(HOST_LISTENPID) - 1) == 0);
}

/*
 * A copy of the vector envp (NULL: empty) without its LISTEN_PID entries
 * and with a "LISTEN_PID=" entry at its end that has room for
 * HOST_PIDDIGITS digits and is filled with as many '0's, so that the
 * argument checks count its longest form.  *envpp gets the vector,
 * *digitsp where the child writes its pid (digits and a NUL); both are
 * one allocation, freed with fdr_free(*envpp).  The strings of envp are
 * shared, not copied.  Returns 0 or ENOMEM.
 */
int
host_listen_env(char *const *envp, char ***envpp, char **digitsp)
{
	size_t n = 0, i, k;
	char **v, *entry;

	while (envp != NULL && envp[n] != NULL)
		n++;
	v = fdr_malloc((n + 2) * sizeof(*v) + sizeof(HOST_LISTENPID) +
	    HOST_PIDDIGITS);
	if (v == NULL)
		return (ENOMEM);
	entry = (char *)(v + n + 2);
	for (i = k = 0; i < n; i++)
		if (!host_listen_is_pid(envp[i]))
			v[k++] = envp[i];
	memcpy(entry, HOST_LISTENPID, sizeof(HOST_LISTENPID) - 1);
	memset(entry + sizeof(HOST_LISTENPID) - 1, '0', HOST_PIDDIGITS);
	entry[sizeof(HOST_LISTENPID) - 1 + HOST_PIDDIGITS] = '\0';
	v[k++] = entry;
	v[k] = NULL;
	*envpp = v;
	*digitsp = entry + sizeof(HOST_LISTENPID) - 1;
	return (0);
}
