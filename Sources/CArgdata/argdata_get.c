/*
 * argdata_get.c: the getters.  Each checks the tag and the exact shape of
 * the payload before reading it, so that any bytes give a value or an
 * error number and nothing outside them is read.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "argdata_impl.h"

/* Binary data: 0, or EINVAL.  See argdata.h. */
int
argdata_get_binary(const argdata_t *ad, const void **buf, size_t *len)
{
	const uint8_t *p;
	size_t n;
	int error;

	if (ad->ad_kind == AD_BINARY) {
		*buf = ad->ad_binary;
		*len = ad->ad_len - 1;
		return (0);
	}
	error = ad_payload(ad, ADT_BINARY, &p, &n);
	if (error != 0)
		return (error);
	*buf = p;
	*len = n;
	return (0);
}

/* A bool: no payload is false, one byte 01 is true; else EINVAL. */
int
argdata_get_bool(const argdata_t *ad, bool *value)
{
	const uint8_t *p;
	size_t n;
	int error;

	error = ad_payload(ad, ADT_BOOL, &p, &n);
	if (error != 0)
		return (error);
	if (n == 0)
		*value = false;
	else if (n == 1 && p[0] == 1)
		*value = true;
	else
		return (EINVAL);
	return (0);
}

/*
 * A descriptor: 0, EINVAL when ad is not a 4-byte fd value, EBADF when
 * its index is FFFFFFFF or does not convert to a descriptor.
 */
int
argdata_get_fd(const argdata_t *ad, int *fd)
{
	const uint8_t *p;
	size_t n;
	uint32_t index;
	int error, v;

	if (ad->ad_kind == AD_FD) {
		*fd = ad->ad_fd;
		return (0);
	}
	error = ad_payload(ad, ADT_FD, &p, &n);
	if (error != 0)
		return (error);
	if (n != 4)
		return (EINVAL);
	index = ad_get_be32(p);
	if (index == AD_FD_INVALID || ad->ad_buffer.convert == NULL)
		return (EBADF);
	v = ad->ad_buffer.convert(ad->ad_buffer.arg, index);
	if (v < 0)
		return (EBADF);
	*fd = v;
	return (0);
}

/* A double from exactly 8 big-endian bytes; else EINVAL. */
int
argdata_get_float(const argdata_t *ad, double *value)
{
	const uint8_t *p;
	uint64_t bits;
	size_t i, n;
	int error;

	error = ad_payload(ad, ADT_FLOAT, &p, &n);
	if (error != 0)
		return (error);
	if (n != sizeof(bits))
		return (EINVAL);
	bits = 0;
	for (i = 0; i < n; i++)
		bits = bits << 8 | p[i];
	memcpy(value, &bits, sizeof(*value));
	return (0);
}

/*
 * The integer payload of ad, trimmed of redundant sign bytes, in *p, *n:
 * 0 or EINVAL.
 */
static int
int_payload(const argdata_t *ad, const uint8_t **p, size_t *n)
{
	int error;

	error = ad_payload(ad, ADT_INT, p, n);
	if (error == 0)
		ad_int_trim(p, n);
	return (error);
}

/* A signed integer within [min, max]: 0, EINVAL or ERANGE. */
int
argdata_get_int_s(const argdata_t *ad, intmax_t *value, intmax_t min,
    intmax_t max)
{
	const uint8_t *p;
	uint64_t u;
	intmax_t v;
	size_t i, n;
	int error;

	error = int_payload(ad, &p, &n);
	if (error != 0)
		return (error);
	if (n > sizeof(u))
		return (ERANGE);
	u = n > 0 && (p[0] & 0x80) != 0 ? UINT64_MAX : 0;
	for (i = 0; i < n; i++)
		u = u << 8 | p[i];
	v = u >= (UINT64_C(1) << 63) ? -(intmax_t)~u - 1 : (intmax_t)u;
	if (v < min || v > max)
		return (ERANGE);
	*value = v;
	return (0);
}

/* An unsigned integer up to max: 0, EINVAL or ERANGE (negative too). */
int
argdata_get_int_u(const argdata_t *ad, uintmax_t *value, uintmax_t max)
{
	const uint8_t *p;
	uintmax_t u;
	size_t i, n;
	int error;

	error = int_payload(ad, &p, &n);
	if (error != 0)
		return (error);
	if (n > 0 && (p[0] & 0x80) != 0)
		return (ERANGE);
	if (n > 0 && p[0] == 0) {
		p++;
		n--;
	}
	if (n > sizeof(u))
		return (ERANGE);
	u = 0;
	for (i = 0; i < n; i++)
		u = u << 8 | p[i];
	if (u > max)
		return (ERANGE);
	*value = u;
	return (0);
}

/*
 * A string: 0; EINVAL when ad is not a string or lacks its final NUL;
 * EILSEQ when it is not valid UTF-8.
 */
int
argdata_get_str(const argdata_t *ad, const char **buf, size_t *len)
{
	const uint8_t *p;
	size_t n;
	int error;

	if (ad->ad_kind == AD_STR) {
		*buf = ad->ad_str;
		*len = ad->ad_len - 2;
		return (0);
	}
	error = ad_payload(ad, ADT_STR, &p, &n);
	if (error != 0)
		return (error);
	if (n == 0 || p[n - 1] != 0)
		return (EINVAL);
	if (ad_utf8_validate(p, n - 1) != 0)
		return (EILSEQ);
	*buf = (const char *)p;
	*len = n - 1;
	return (0);
}

/* A string as a C string: as argdata_get_str(), and EILSEQ for a NUL. */
int
argdata_get_str_c(const argdata_t *ad, const char **str)
{
	const char *buf;
	size_t len;
	int error;

	error = argdata_get_str(ad, &buf, &len);
	if (error != 0)
		return (error);
	if (len > 0 && memchr(buf, '\0', len) != NULL)
		return (EILSEQ);
	*str = buf;
	return (0);
}

/* A timestamp: 0, EINVAL, or ERANGE when it does not fit a timespec. */
int
argdata_get_timestamp(const argdata_t *ad, struct timespec *ts)
{
	const uint8_t *p;
	int64_t sec;
	uint32_t nsec;
	size_t n;
	int error;

	error = ad_payload(ad, ADT_TIMESTAMP, &p, &n);
	if (error != 0)
		return (error);
	error = ad_timestamp_split(p, n, &sec, &nsec);
	if (error != 0)
		return (error);
	if ((int64_t)(time_t)sec != sec)
		return (ERANGE);
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = (long)nsec;
	return (0);
}
