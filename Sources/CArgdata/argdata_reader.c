/*
 * argdata_reader.c: reading messages (see argdata_writer.c) from a stream
 * descriptor.
 *
 * Every read is a recvmsg(2) with room for descriptors (MSG_CMSG_CLOEXEC),
 * since they may come with any of the message's bytes, header included;
 * on a descriptor that is not a socket, read(2).  The message's
 * descriptors are those that arrive with its bytes (the header carries
 * only the data length, as the reference's does); more than the reader
 * accepts is EMSGSIZE, as for the reference.  The reader owns what it
 * received until the next pull or its end, except the descriptors handed
 * over with argdata_reader_release_fd().  A message that breaks the rules
 * closes every descriptor received with it.
 */
#define	_GNU_SOURCE
#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "argdata_impl.h"

#define	HEADER_LEN	8
#define	FDS_PER_RECV	253	/* Linux's SCM_MAX_FD */

enum reader_state {
	AR_READING,	/* between messages or within one */
	AR_MESSAGE,	/* a message is complete */
	AR_EOF,		/* end of file between messages */
	AR_FAILED,	/* broken stream: ar_error forever */
};

struct argdata_reader_t {
	size_t		 ar_maxdata;
	size_t		 ar_maxfds;
	enum reader_state ar_state;
	int		 ar_error;
	uint8_t		 ar_hdr[HEADER_LEN];
	size_t		 ar_hdrlen;	/* header bytes read */
	uint8_t		*ar_data;	/* the data, once its length is known */
	size_t		 ar_datalen;
	size_t		 ar_datagot;
	int		*ar_fds;	/* received; -1: released */
	size_t		 ar_nfds;
	size_t		 ar_fdcap;
	bool		 ar_trunc;	/* descriptors were lost on the way */
	bool		 ar_nosock;	/* read(2), not recvmsg(2) */
	argdata_t	 ar_root;
};

/* See argdata.h. */
argdata_reader_t *
argdata_reader_create(size_t max_data_len, size_t max_fds_len)
{
	argdata_reader_t *ar;

	ar = ad_calloc(1, sizeof(*ar));
	if (ar == NULL) {
		errno = ENOMEM;
		return (NULL);
	}
	ar->ar_maxdata = max_data_len;
	ar->ar_maxfds = max_fds_len;
	return (ar);
}

/* Close the descriptors the reader still owns and drop the message. */
static void
reader_release(argdata_reader_t *ar)
{
	size_t i;

	for (i = 0; i < ar->ar_nfds; i++)
		if (ar->ar_fds[i] >= 0)
			(void)close(ar->ar_fds[i]);
	ar->ar_nfds = 0;
	ad_free(ar->ar_data);
	ar->ar_data = NULL;
	ar->ar_hdrlen = ar->ar_datalen = ar->ar_datagot = 0;
	ar->ar_trunc = false;
}

/* See argdata.h. */
void
argdata_reader_free(argdata_reader_t *ar)
{

	if (ar == NULL)
		return;
	reader_release(ar);
	ad_free(ar->ar_fds);
	ad_free(ar);
}

/* See argdata.h. */
const argdata_t *
argdata_reader_get(const argdata_reader_t *ar)
{

	return (ar->ar_state == AR_MESSAGE ? &ar->ar_root : NULL);
}

/* See argdata.h.  A descriptor the reader does not own is ignored. */
void
argdata_reader_release_fd(argdata_reader_t *ar, int fd)
{
	size_t i;

	if (fd < 0)
		return;
	for (i = 0; i < ar->ar_nfds; i++) {
		if (ar->ar_fds[i] == fd) {
			ar->ar_fds[i] = -1;
			return;
		}
	}
}

/* The conversion of the current message: index to received descriptor. */
static int
lookup_fd(void *arg, size_t index)
{
	const argdata_reader_t *ar = arg;

	return (index < ar->ar_nfds ? ar->ar_fds[index] : -1);
}

/* Break the stream with error: release everything; returns error. */
static int
reader_fail(argdata_reader_t *ar, int error)
{

	reader_release(ar);
	ar->ar_state = AR_FAILED;
	ar->ar_error = error;
	return (error);
}

/*
 * Keep the descriptors of the control messages of msg; any beyond the
 * room made for them (none can be, see reader_read()) or cut off by the
 * kernel marks the message as truncated.
 */
static void
take_fds(argdata_reader_t *ar, struct msghdr *msg)
{
	struct cmsghdr *cmsg;
	size_t i, n;
	int fd;

	if ((msg->msg_flags & MSG_CTRUNC) != 0)
		ar->ar_trunc = true;
	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(fd));
			if (ar->ar_nfds < ar->ar_fdcap)
				ar->ar_fds[ar->ar_nfds++] = fd;
			else {
				(void)close(fd);
				ar->ar_trunc = true;
			}
		}
	}
}

/*
 * Make room for the descriptors one recvmsg(2) may bring (at most
 * FDS_PER_RECV, and no more than the reader accepts): the room, or -1
 * and ENOMEM.
 */
static ssize_t
reserve_fds(argdata_reader_t *ar)
{
	size_t room, want;
	int *fds;

	room = ar->ar_maxfds - ar->ar_nfds;
	if (room > FDS_PER_RECV)
		room = FDS_PER_RECV;
	want = ar->ar_nfds + room;
	if (want > ar->ar_fdcap) {
		if (want < 2 * ar->ar_fdcap && 2 * ar->ar_fdcap <= ar->ar_maxfds)
			want = 2 * ar->ar_fdcap;
		fds = ad_reallocarray(ar->ar_fds, want, sizeof(*fds));
		if (fds == NULL) {
			errno = ENOMEM;
			return (-1);
		}
		ar->ar_fds = fds;
		ar->ar_fdcap = want;
	}
	return ((ssize_t)room);
}

/*
 * Read up to n bytes into buf, keeping any descriptors that come along:
 * the bytes read (0 at end of file), or -1 and errno.
 */
static ssize_t
reader_read(argdata_reader_t *ar, int fd, void *buf, size_t n)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(FDS_PER_RECV * sizeof(int))];
	} control;
	struct msghdr msg;
	struct iovec iov;
	ssize_t ret, room;

	if (ar->ar_nosock)
		return (read(fd, buf, n));
	room = reserve_fds(ar);
	if (room < 0)
		return (-1);
	iov.iov_base = buf;
	iov.iov_len = n;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (room > 0) {
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)room * sizeof(int));
	}
	ret = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (ret == -1 && errno == ENOTSOCK) {
		ar->ar_nosock = true;
		return (read(fd, buf, n));
	}
	if (ret >= 0)
		take_fds(ar, &msg);
	return (ret);
}

/*
 * Read the header: 0 when complete, or an error (or, at a clean end of
 * file, AR_EOF set and 0).
 */
static int
read_header(argdata_reader_t *ar, int fd)
{
	ssize_t ret;

	while (ar->ar_hdrlen < HEADER_LEN) {
		ret = reader_read(ar, fd, ar->ar_hdr + ar->ar_hdrlen,
		    HEADER_LEN - ar->ar_hdrlen);
		if (ret == -1)
			return (errno);
		if (ret == 0) {
			if (ar->ar_hdrlen > 0 || ar->ar_nfds > 0)
				return (reader_fail(ar, EBADMSG));
			ar->ar_state = AR_EOF;
			return (0);
		}
		ar->ar_hdrlen += (size_t)ret;
	}
	return (0);
}

/* Check the header against the limit and allocate for the data. */
static int
begin_data(argdata_reader_t *ar)
{
	uint64_t len;
	size_t i;

	len = 0;
	for (i = 0; i < HEADER_LEN; i++)
		len = len << 8 | ar->ar_hdr[i];
	if (len > ar->ar_maxdata)
		return (reader_fail(ar, EMSGSIZE));
	ar->ar_datalen = (size_t)len;
	ar->ar_data = ad_malloc(ar->ar_datalen);
	return (ar->ar_data == NULL ? ENOMEM : 0);
}

/* See argdata.h. */
int
argdata_reader_pull(argdata_reader_t *ar, int fd)
{
	ssize_t ret;
	int error;

	switch (ar->ar_state) {
	case AR_FAILED:
		return (ar->ar_error);
	case AR_MESSAGE:
	case AR_EOF:
		reader_release(ar);
		ar->ar_state = AR_READING;
		break;
	default:
		break;
	}
	error = read_header(ar, fd);
	if (error != 0 || ar->ar_state == AR_EOF)
		return (error);
	if (ar->ar_data == NULL && (error = begin_data(ar)) != 0)
		return (error);
	while (!ar->ar_trunc && ar->ar_datagot < ar->ar_datalen) {
		ret = reader_read(ar, fd, ar->ar_data + ar->ar_datagot,
		    ar->ar_datalen - ar->ar_datagot);
		if (ret == -1)
			return (errno);
		if (ret == 0)
			return (reader_fail(ar, EBADMSG));
		ar->ar_datagot += (size_t)ret;
	}
	if (ar->ar_trunc)
		return (reader_fail(ar, EMSGSIZE));
	ad_init_buffer(&ar->ar_root, ar->ar_data, ar->ar_datalen, lookup_fd,
	    ar);
	ar->ar_state = AR_MESSAGE;
	return (0);
}
