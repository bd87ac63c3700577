/*
 * argdata_create.c: the constants, the constructors and argdata_free().
 *
 * Scalars are serialised once, here, into bytes stored right after their
 * node, so that the getters, the walker and the serialiser treat them as
 * decoded values.  Binary data, strings, maps and sequences point at the
 * caller's memory, as the reference's do.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "argdata_impl.h"

#define	NSEC_PER_SEC	1000000000

static const uint8_t bytes_false[] = { ADT_BOOL };
static const uint8_t bytes_true[] = { ADT_BOOL, 1 };
static const uint8_t bytes_null[] = { 0 };

const argdata_t argdata_false = {
	.ad_kind = AD_BUFFER,
	.ad_len = sizeof(bytes_false),
	.ad_buffer = { .buf = bytes_false },
};

const argdata_t argdata_true = {
	.ad_kind = AD_BUFFER,
	.ad_len = sizeof(bytes_true),
	.ad_buffer = { .buf = bytes_true },
};

const argdata_t argdata_null = {
	.ad_kind = AD_BUFFER,
	.ad_len = 0,
	.ad_buffer = { .buf = bytes_null },
};

/* A fresh node of the given kind and length; NULL and ENOMEM. */
static argdata_t *
node_alloc(enum ad_kind kind, size_t len, size_t extra)
{
	argdata_t *ad;

	ad = ad_malloc(sizeof(*ad) + extra);
	if (ad == NULL) {
		errno = ENOMEM;
		return (NULL);
	}
	memset(ad, 0, sizeof(*ad));
	ad->ad_kind = kind;
	ad->ad_len = len;
	return (ad);
}

/*
 * A node holding the serialised value tag + the n bytes at payload, stored
 * after the node.  NULL and ENOMEM.
 */
static argdata_t *
scalar_create(uint8_t tag, const uint8_t *payload, size_t n)
{
	argdata_t *ad;
	uint8_t *bytes;

	ad = node_alloc(AD_BUFFER, n + 1, n + 1);
	if (ad == NULL)
		return (NULL);
	bytes = (uint8_t *)(ad + 1);
	bytes[0] = tag;
	memcpy(bytes + 1, payload, n);
	ad->ad_buffer.buf = bytes;
	return (ad);
}

/* Store the n low bytes of v at p, big-endian. */
static void
put_be(uint8_t *p, uint64_t v, size_t n)
{

	while (n-- > 0) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

/* A value over len serialised bytes at buf, not copied.  See argdata.h. */
argdata_t *
argdata_from_buffer(const void *buf, size_t len,
    int (*convert_fd)(void *, size_t), void *convert_fd_arg)
{
	argdata_t *ad;

	ad = node_alloc(AD_BUFFER, len, 0);
	if (ad == NULL)
		return (NULL);
	ad_init_buffer(ad, buf, len, convert_fd, convert_fd_arg);
	return (ad);
}

/* Binary data, not copied: NULL and E2BIG or ENOMEM. */
argdata_t *
argdata_create_binary(const void *buf, size_t len)
{
	argdata_t *ad;

	if (len > SIZE_MAX - 1) {
		errno = E2BIG;
		return (NULL);
	}
	ad = node_alloc(AD_BINARY, len + 1, 0);
	if (ad != NULL)
		ad->ad_binary = buf;
	return (ad);
}

/* Descriptor fd (>= 0, else EBADF); renumbered when serialised. */
argdata_t *
argdata_create_fd(int fd)
{
	argdata_t *ad;

	if (fd < 0) {
		errno = EBADF;
		return (NULL);
	}
	ad = node_alloc(AD_FD, AD_FD_LEN, 0);
	if (ad != NULL)
		ad->ad_fd = fd;
	return (ad);
}

/* A double, stored as its 8 bytes, big-endian. */
argdata_t *
argdata_create_float(double value)
{
	uint8_t payload[8];
	uint64_t bits;

	memcpy(&bits, &value, sizeof(bits));
	put_be(payload, bits, sizeof(payload));
	return (scalar_create(ADT_FLOAT, payload, sizeof(payload)));
}

/* A signed integer in its shortest two's complement. */
argdata_t *
argdata_create_int_s(intmax_t value)
{
	uint8_t raw[8], payload[8];

	put_be(raw, (uint64_t)value, sizeof(raw));
	return (scalar_create(ADT_INT, payload,
	    ad_int_encode(payload, raw, sizeof(raw))));
}

/* An unsigned integer: a leading 00 byte when its top bit is set. */
argdata_t *
argdata_create_int_u(uintmax_t value)
{
	uint8_t raw[9], payload[9];

	raw[0] = 0;
	put_be(raw + 1, value, sizeof(raw) - 1);
	return (scalar_create(ADT_INT, payload,
	    ad_int_encode(payload, raw, sizeof(raw))));
}

/*
 * A container of n elements taken from the arrays a (and b, for maps:
 * keys and values alternate), not copied: NULL and EINVAL for a NULL
 * element, E2BIG when its serialised length does not fit a size_t, ENOMEM.
 */
static argdata_t *
container_create(enum ad_kind kind, argdata_t const *const *a,
    argdata_t const *const *b, size_t n)
{
	const argdata_t *e;
	argdata_t *ad;
	size_t i, j, total, field;

	total = 1;
	for (i = 0; i < n; i++) {
		for (j = 0; j < (kind == AD_MAP ? 2 : 1); j++) {
			e = j == 0 ? a[i] : b[i];
			if (e == NULL) {
				errno = EINVAL;
				return (NULL);
			}
			field = ad_prefix_len(e->ad_len);
			if (e->ad_len > SIZE_MAX - field ||
			    total > SIZE_MAX - field - e->ad_len) {
				errno = E2BIG;
				return (NULL);
			}
			total += field + e->ad_len;
		}
	}
	ad = node_alloc(kind, total, 0);
	if (ad == NULL)
		return (NULL);
	if (kind == AD_MAP) {
		ad->ad_map.keys = a;
		ad->ad_map.values = b;
		ad->ad_map.n = n;
	} else {
		ad->ad_seq.entries = a;
		ad->ad_seq.n = n;
	}
	return (ad);
}

/* A map over the caller's arrays: EINVAL, E2BIG or ENOMEM. */
argdata_t *
argdata_create_map(argdata_t const *const *keys,
    argdata_t const *const *values, size_t n)
{

	return (container_create(AD_MAP, keys, values, n));
}

/* A sequence over the caller's array: EINVAL, E2BIG or ENOMEM. */
argdata_t *
argdata_create_seq(argdata_t const *const *entries, size_t n)
{

	return (container_create(AD_SEQ, entries, NULL, n));
}

/* A string over the caller's bytes: EILSEQ unless valid UTF-8. */
argdata_t *
argdata_create_str(const char *buf, size_t len)
{
	argdata_t *ad;

	if (len > SIZE_MAX - 2) {
		errno = E2BIG;
		return (NULL);
	}
	if (ad_utf8_validate((const uint8_t *)buf, len) != 0) {
		errno = EILSEQ;
		return (NULL);
	}
	ad = node_alloc(AD_STR, len + 2, 0);
	if (ad != NULL)
		ad->ad_str = buf;
	return (ad);
}

/* A string over a C string. */
argdata_t *
argdata_create_str_c(const char *str)
{

	return (argdata_create_str(str, strlen(str)));
}

/*
 * The timestamp is sec * 1e9 + nsec nanoseconds, computed in 96 bits:
 * sec = hi32 * 2^32 + lo32 (hi32 signed), so the value is
 * (hi32 * 1e9) * 2^32 + (lo32 * 1e9 + nsec), the last term below 2^62.
 */
argdata_t *
argdata_create_timestamp(const struct timespec *ts)
{
	uint8_t raw[12], payload[12];
	uint64_t low, lo32;
	int64_t sec, hi32, high;

	if (ts->tv_nsec < 0 || ts->tv_nsec >= NSEC_PER_SEC) {
		errno = EINVAL;
		return (NULL);
	}
	_Static_assert(sizeof(time_t) <= sizeof(int64_t), "time_t too wide");
	sec = ts->tv_sec;
	lo32 = (uint64_t)sec & UINT32_MAX;
	hi32 = (sec - (int64_t)lo32) / ((int64_t)1 << 32);
	low = lo32 * NSEC_PER_SEC + (uint64_t)ts->tv_nsec;
	high = hi32 * NSEC_PER_SEC + (int64_t)(low >> 32);
	put_be(raw, (uint64_t)high, 8);
	put_be(raw + 8, low, 4);
	return (scalar_create(ADT_TIMESTAMP, payload,
	    ad_int_encode(payload, raw, sizeof(raw))));
}

/* Free one value; NULL and the constants are ignored. */
void
argdata_free(argdata_t *ad)
{

	if (ad == NULL || ad == &argdata_false || ad == &argdata_true ||
	    ad == &argdata_null)
		return;
	ad_free(ad);
}
