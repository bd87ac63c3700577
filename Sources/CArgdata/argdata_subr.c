/*
 * argdata_subr.c: the encoding's pieces shared by the constructors, the
 * getters, the iterators and the walker: sub-field lengths, integers,
 * UTF-8, big-endian words.  Everything here is a pure function of its
 * arguments and reads only the bytes it is given.
 */
#include <errno.h>
#include <string.h>

#include "argdata_impl.h"

#define	NSEC_PER_SEC	1000000000

/* Make ad a value over len serialised bytes at buf. */
void
ad_init_buffer(argdata_t *ad, const uint8_t *buf, size_t len,
    int (*convert)(void *, size_t), void *arg)
{

	ad->ad_kind = AD_BUFFER;
	ad->ad_len = len;
	ad->ad_buffer.buf = buf;
	ad->ad_buffer.convert = convert;
	ad->ad_buffer.arg = arg;
}

/*
 * Take one sub-field (a length, then that many bytes) off the *rem bytes
 * at *pos: 0 with the field in *field and *fieldlen and *pos, *rem moved
 * past it; EINVAL, with nothing moved, when the length starts with a 00
 * byte (not the shortest form), does not fit a size_t, is cut short or
 * runs past the end.
 */
int
ad_parse_subfield(const uint8_t **pos, size_t *rem, const uint8_t **field,
    size_t *fieldlen)
{
	const uint8_t *p;
	size_t len, n;
	uint8_t c;

	p = *pos;
	n = *rem;
	if (n == 0 || p[0] == 0)
		return (EINVAL);
	len = 0;
	do {
		if (n == 0)
			return (EINVAL);
		c = *p++;
		n--;
		if (len > (SIZE_MAX >> 7))
			return (EINVAL);
		len = len << 7 | (c & 0x7f);
	} while ((c & 0x80) == 0);
	if (len > n)
		return (EINVAL);
	*field = p;
	*fieldlen = len;
	*pos = p + len;
	*rem = n - len;
	return (0);
}

/* The bytes of the shortest length prefix for len. */
size_t
ad_prefix_len(size_t len)
{
	size_t n;

	for (n = 1; (len >>= 7) != 0; n++)
		;
	return (n);
}

/* Write the shortest length prefix for len at out; returns its end. */
uint8_t *
ad_put_prefix(uint8_t *out, size_t len)
{
	size_t i, n;

	n = ad_prefix_len(len);
	for (i = n; i-- > 0; len >>= 7)
		out[i] = (uint8_t)(len & 0x7f);
	out[n - 1] |= 0x80;
	return (out + n);
}

/*
 * The payload of a serialised value of type tag: 0 with *p, *n; EINVAL
 * when ad is not serialised bytes or has another tag (null included).
 */
int
ad_payload(const argdata_t *ad, uint8_t tag, const uint8_t **p, size_t *n)
{

	if (ad->ad_kind != AD_BUFFER || ad->ad_len == 0 ||
	    ad->ad_buffer.buf[0] != tag)
		return (EINVAL);
	*p = ad->ad_buffer.buf + 1;
	*n = ad->ad_len - 1;
	return (0);
}

/*
 * Skip the leading bytes of a two's complement integer that only repeat
 * its sign (00 before a byte below 80, FF before one from 80), so that
 * non-minimal encodings read as their value.
 */
void
ad_int_trim(const uint8_t **p, size_t *n)
{
	const uint8_t *b = *p;

	while (*n >= 2 && ((b[0] == 0x00 && (b[1] & 0x80) == 0) ||
	    (b[0] == 0xff && (b[1] & 0x80) != 0))) {
		b++;
		(*n)--;
	}
	*p = b;
}

/*
 * Write the big-endian two's complement integer of n bytes at raw to out
 * in as few bytes as possible (zero bytes for 0); returns that length.
 */
size_t
ad_int_encode(uint8_t *out, const uint8_t *raw, size_t n)
{

	ad_int_trim(&raw, &n);
	if (n == 1 && raw[0] == 0)
		n = 0;
	memcpy(out, raw, n);
	return (n);
}

/*
 * Decode the UTF-8 sequence at the start of the n > 0 bytes at s: its
 * length (1 to 4) with the code point in *cp, or 0 when it is not valid
 * (a stray or missing continuation byte, an overlong form, a surrogate,
 * beyond U+10FFFF, cut short).
 */
int
ad_utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint32_t c, min;
	int i, len;

	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return (1);
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
		c &= 0x07;
	} else
		return (0);
	if (n < (size_t)len)
		return (0);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return (0);
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return (0);
	*cp = c;
	return (len);
}

/* 0 when the n bytes at s are valid UTF-8, EILSEQ otherwise. */
int
ad_utf8_validate(const uint8_t *s, size_t n)
{
	uint32_t cp;
	int len;

	while (n > 0) {
		if (s[0] < 0x80) {
			s++;
			n--;
			continue;
		}
		len = ad_utf8_next(s, n, &cp);
		if (len == 0)
			return (EILSEQ);
		s += len;
		n -= (size_t)len;
	}
	return (0);
}

/* The big-endian 32-bit word at p. */
uint32_t
ad_get_be32(const uint8_t *p)
{

	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3]);
}

/* Store v at p, big-endian. */
void
ad_put_be32(uint8_t *p, uint32_t v)
{

	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * Split the timestamp payload of n bytes at p (nanoseconds since the
 * epoch, two's complement of any length) into whole seconds, rounded
 * down, and nanoseconds: 0, or ERANGE when the seconds do not fit an
 * int64_t.  The value is taken as 96 bits: high 64 bits and low 32 bits.
 */
int
ad_timestamp_split(const uint8_t *p, size_t n, int64_t *sec, uint32_t *nsec)
{
	uint8_t raw[12];
	uint64_t u, t, q2;
	int64_t high, q1, r1, hi;
	size_t i;

	ad_int_trim(&p, &n);
	if (n > sizeof(raw))
		return (ERANGE);
	memset(raw, n > 0 && (p[0] & 0x80) != 0 ? 0xff : 0x00, sizeof(raw));
	memcpy(raw + sizeof(raw) - n, p, n);
	u = 0;
	for (i = 0; i < 8; i++)
		u = u << 8 | raw[i];
	high = u >= (UINT64_C(1) << 63) ? -(int64_t)~u - 1 : (int64_t)u;

	/* high = q1 * 1e9 + r1, with 0 <= r1 < 1e9. */
	q1 = high / NSEC_PER_SEC;
	r1 = high % NSEC_PER_SEC;
	if (r1 < 0) {
		r1 += NSEC_PER_SEC;
		q1--;
	}
	/* value = q1 * 1e9 * 2^32 + t, t = r1 * 2^32 + low < 1e9 * 2^32. */
	t = (uint64_t)r1 << 32 | ad_get_be32(raw + 8);
	q2 = t / NSEC_PER_SEC;
	if (q1 > INT32_MAX || q1 < INT32_MIN)
		return (ERANGE);
	hi = q1 * ((int64_t)1 << 32);
	if (hi > INT64_MAX - (int64_t)q2)
		return (ERANGE);
	*sec = hi + (int64_t)q2;
	*nsec = (uint32_t)(t % NSEC_PER_SEC);
	return (0);
}

/*
 * Whether ad is a map or a sequence (made, or serialised with a tag of
 * one), with the tag in *tag.
 */
bool
ad_is_container(const argdata_t *ad, uint8_t *tag)
{

	switch (ad->ad_kind) {
	case AD_MAP:
		*tag = ADT_MAP;
		return (true);
	case AD_SEQ:
		*tag = ADT_SEQ;
		return (true);
	case AD_BUFFER:
		if (ad->ad_len == 0 || (ad->ad_buffer.buf[0] != ADT_MAP &&
		    ad->ad_buffer.buf[0] != ADT_SEQ))
			return (false);
		*tag = ad->ad_buffer.buf[0];
		return (true);
	default:
		return (false);
	}
}
