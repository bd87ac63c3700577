/*
 * argdata_writer.c: writing values as messages on a stream descriptor.
 *
 * A message is the reference's: an 8-byte big-endian data length, then
 * the serialised value, whose descriptor indices refer to the list that
 * travels as SCM_RIGHTS with the message's first bytes (in one sendmsg(2)
 * with the whole message, as the reference sends it and as its reader,
 * which takes descriptors only with the header, needs).  Linux takes at
 * most SCM_MAX_FD descriptors a sendmsg(2), so a longer list (which the
 * reference could not send at all) goes in chunks, each on its own byte,
 * the last one with the rest of the message; our reader collects them in
 * order.
 */
#define	_GNU_SOURCE
#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "argdata_impl.h"

#define	HEADER_LEN	8
#define	FDS_PER_SEND	253	/* Linux's SCM_MAX_FD */

struct argdata_writer_t {
	const argdata_t	*aw_next;	/* set, not yet serialised */
	uint8_t		*aw_buf;	/* header and data */
	size_t		 aw_len;	/* their length */
	size_t		 aw_off;	/* bytes written */
	int		*aw_fds;	/* the message's descriptors */
	size_t		 aw_nfds;
	size_t		 aw_fdsent;	/* descriptors written */
};

/* See argdata.h. */
argdata_writer_t *
argdata_writer_create(void)
{
	argdata_writer_t *aw;

	aw = ad_calloc(1, sizeof(*aw));
	if (aw == NULL)
		errno = ENOMEM;
	return (aw);
}

/* Forget the current message. */
static void
writer_reset(argdata_writer_t *aw)
{

	ad_free(aw->aw_buf);
	ad_free(aw->aw_fds);
	aw->aw_buf = NULL;
	aw->aw_fds = NULL;
	aw->aw_len = aw->aw_off = aw->aw_nfds = aw->aw_fdsent = 0;
}

/* See argdata.h. */
void
argdata_writer_free(argdata_writer_t *aw)
{

	if (aw == NULL)
		return;
	writer_reset(aw);
	ad_free(aw);
}

/* See argdata.h: ignored while a message is being written. */
void
argdata_writer_set(argdata_writer_t *aw, const argdata_t *ad)
{

	if (aw->aw_off < aw->aw_len)
		return;
	aw->aw_next = ad;
}

/* Serialise aw_next into the message buffers: 0 or ENOMEM. */
static int
writer_prepare(argdata_writer_t *aw)
{
	size_t len, maxfds, n;
	uint8_t *p;
	int i;

	argdata_serialized_length(aw->aw_next, &len, &maxfds);
	writer_reset(aw);
	if (len > SIZE_MAX - HEADER_LEN || maxfds > SIZE_MAX / sizeof(int))
		return (ENOMEM);
	aw->aw_buf = ad_malloc(HEADER_LEN + len);
	aw->aw_fds = ad_malloc(maxfds * sizeof(int));
	if (aw->aw_buf == NULL || aw->aw_fds == NULL) {
		writer_reset(aw);
		return (ENOMEM);
	}
	n = argdata_serialize(aw->aw_next, aw->aw_buf + HEADER_LEN,
	    aw->aw_fds);
	p = aw->aw_buf;
	for (i = 7; i >= 0; i--)
		*p++ = (uint8_t)((uint64_t)len >> (8 * i));
	aw->aw_len = HEADER_LEN + len;
	aw->aw_nfds = n;
	aw->aw_next = NULL;
	return (0);
}

/*
 * Send the next chunk of descriptors with the next bytes (one byte, or
 * all the rest with the last chunk): bytes written, or -1 and errno.
 */
static ssize_t
send_fds(argdata_writer_t *aw, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(FDS_PER_SEND * sizeof(int))];
	} control;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	struct iovec iov;
	size_t chunk;
	ssize_t ret;

	chunk = aw->aw_nfds - aw->aw_fdsent;
	if (chunk > FDS_PER_SEND)
		chunk = FDS_PER_SEND;
	iov.iov_base = aw->aw_buf + aw->aw_off;
	iov.iov_len = aw->aw_fdsent + chunk == aw->aw_nfds ?
	    aw->aw_len - aw->aw_off : 1;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = CMSG_SPACE(chunk * sizeof(int));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(chunk * sizeof(int));
	memcpy(CMSG_DATA(cmsg), aw->aw_fds + aw->aw_fdsent,
	    chunk * sizeof(int));
	ret = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (ret >= 0)
		aw->aw_fdsent += chunk;
	return (ret);
}

/* See argdata.h. */
int
argdata_writer_push(argdata_writer_t *aw, int fd)
{
	bool nosock = false;
	ssize_t ret;
	int error;

	if (aw->aw_next != NULL && (error = writer_prepare(aw)) != 0)
		return (error);
	while (aw->aw_off < aw->aw_len) {
		if (aw->aw_fdsent < aw->aw_nfds)
			ret = send_fds(aw, fd);
		else if (!nosock) {
			ret = send(fd, aw->aw_buf + aw->aw_off,
			    aw->aw_len - aw->aw_off, MSG_NOSIGNAL);
			if (ret == -1 && errno == ENOTSOCK) {
				nosock = true;
				continue;
			}
		} else
			ret = write(fd, aw->aw_buf + aw->aw_off,
			    aw->aw_len - aw->aw_off);
		if (ret == -1) {
			error = errno;
			if (error == ENOTSOCK && aw->aw_off == 0)
				writer_reset(aw);
			return (error);
		}
		aw->aw_off += (size_t)ret;
	}
	writer_reset(aw);
	return (0);
}
