/*
 * argdata_serialize.c: argdata_serialized_length() and argdata_serialize(),
 * and argdata_index_fds() (argdata_fds.h), which numbers the same way.
 *
 * Descriptors are renumbered in order of first appearance.  Finding
 * whether a descriptor was seen before goes through an open-addressing
 * hash table over the output list, so n distinct descriptors cost O(n)
 * rather than the reference's O(n^2).  The table is allocated with
 * ad_malloc(); argdata_serialize() cannot report ENOMEM, so when the
 * table cannot be allocated or grown the search falls back to scanning
 * the list: the same output, only slower.
 */
#include <string.h>

#include "argdata_impl.h"
#include "argdata_fds.h"

/* The descriptor list being built, and its index. */
struct fdtab {
	int		*t_fds;		/* the output list */
	size_t		 t_n;		/* its length */
	uint32_t	*t_slots;	/* 0: empty; else index + 1 */
	size_t		 t_mask;	/* slots - 1 (slots: a power of 2) */
	bool		 t_linear;	/* no table: scan t_fds */
};

#define	FDTAB_MIN_SLOTS	64

/* The home slot of fd (Fibonacci hashing). */
static size_t
fdtab_hash(const struct fdtab *t, int fd)
{

	return ((size_t)(((uint32_t)fd * UINT64_C(0x9e3779b97f4a7c15)) >>
	    32) & t->t_mask);
}

/* Record index i of t_fds in the table (which has room). */
static void
fdtab_insert(struct fdtab *t, size_t i)
{
	size_t s;

	for (s = fdtab_hash(t, t->t_fds[i]); t->t_slots[s] != 0;
	    s = (s + 1) & t->t_mask)
		;
	t->t_slots[s] = (uint32_t)(i + 1);
}

/*
 * Keep the table at most half full for one more entry: allocate or double
 * it and re-enter t_fds.  On failure drop it and scan from now on.
 */
static void
fdtab_reserve(struct fdtab *t)
{
	uint32_t *slots;
	size_t i, nslots;

	if (t->t_linear || (t->t_slots != NULL && 2 * (t->t_n + 1) <=
	    t->t_mask + 1))
		return;
	nslots = t->t_slots == NULL ? FDTAB_MIN_SLOTS : 2 * (t->t_mask + 1);
	slots = nslots > UINT32_MAX ? NULL :
	    ad_calloc(nslots, sizeof(*slots));
	ad_free(t->t_slots);
	t->t_slots = slots;
	if (slots == NULL) {
		t->t_linear = true;
		return;
	}
	t->t_mask = nslots - 1;
	for (i = 0; i < t->t_n; i++)
		fdtab_insert(t, i);
}

/* The index of fd in the list, appending it when it is new. */
static uint32_t
fdtab_index(struct fdtab *t, int fd)
{
	size_t i, s;

	fdtab_reserve(t);
	if (t->t_linear) {
		for (i = 0; i < t->t_n; i++)
			if (t->t_fds[i] == fd)
				return ((uint32_t)i);
	} else {
		for (s = fdtab_hash(t, fd); t->t_slots[s] != 0;
		    s = (s + 1) & t->t_mask)
			if (t->t_fds[t->t_slots[s] - 1] == fd)
				return (t->t_slots[s] - 1);
	}
	i = t->t_n++;
	t->t_fds[i] = fd;
	if (!t->t_linear)
		fdtab_insert(t, i);
	return ((uint32_t)i);
}

/*
 * What to write for descriptor value ad (a leaf that is an fd), as the
 * reference does: the descriptor (a made one's, or what the buffer's
 * convert_fd makes of a serialised one's index) is listed and its index
 * in the list written; t is NULL when not collecting, and then the
 * descriptor's number itself is written.  AD_FD_INVALID when there is no
 * descriptor (no convert_fd, a negative one, index FFFFFFFF).
 */
static uint32_t
fd_index(const argdata_t *ad, struct fdtab *t)
{
	uint32_t index;
	int fd;

	if (ad->ad_kind == AD_FD)
		fd = ad->ad_fd;
	else {
		index = ad_get_be32(ad->ad_buffer.buf + 1);
		if (index == AD_FD_INVALID || ad->ad_buffer.convert == NULL)
			return (AD_FD_INVALID);
		fd = ad->ad_buffer.convert(ad->ad_buffer.arg, index);
		if (fd < 0)
			return (AD_FD_INVALID);
	}
	return (t == NULL ? (uint32_t)fd : fdtab_index(t, fd));
}

/* Whether ad is a well-formed descriptor value. */
static bool
is_fd(const argdata_t *ad)
{

	return (ad->ad_kind == AD_FD || (ad->ad_kind == AD_BUFFER &&
	    ad->ad_len == AD_FD_LEN && ad->ad_buffer.buf[0] == ADT_FD));
}

/* Write the leaf ad (not a container) at out; returns the end. */
static uint8_t *
put_leaf(uint8_t *out, const argdata_t *ad, struct fdtab *t)
{
	size_t len = ad->ad_len;

	if (is_fd(ad)) {
		*out = ADT_FD;
		ad_put_be32(out + 1, fd_index(ad, t));
		return (out + AD_FD_LEN);
	}
	switch (ad->ad_kind) {
	case AD_BINARY:
		/* The caller's pointer may be NULL when there are no bytes. */
		*out = ADT_BINARY;
		if (len > 1)
			memcpy(out + 1, ad->ad_binary, len - 1);
		break;
	case AD_STR:
		*out = ADT_STR;
		if (len > 2)
			memcpy(out + 1, ad->ad_str, len - 2);
		out[len - 1] = '\0';
		break;
	default:
		/* Serialised bytes, malformed ones too, go as they are. */
		if (len > 0)
			memcpy(out, ad->ad_buffer.buf, len);
		break;
	}
	return (out + len);
}

/* See argdata.h. */
void
argdata_serialized_length(const argdata_t *ad, size_t *size, size_t *n_fds)
{
	struct ad_walk w;
	enum ad_event ev;
	size_t n;

	*size = ad->ad_len;
	if (n_fds == NULL)
		return;
	n = 0;
	ad_walk_init(&w, ad);
	while ((ev = ad_walk_next(&w)) != AD_EV_DONE)
		if (ev == AD_EV_LEAF && is_fd(w.w_node))
			n++;
	ad_walk_fini(&w);
	*n_fds = n;
}

/* See argdata.h. */
size_t
argdata_serialize(const argdata_t *ad, void *buf, int *fds)
{
	struct fdtab t = { .t_fds = fds };
	struct ad_walk w;
	enum ad_event ev;
	uint8_t *out = buf;

	ad_walk_init(&w, ad);
	while ((ev = ad_walk_next(&w)) != AD_EV_DONE) {
		if (ev != AD_EV_LEAVE && w.w_vdepth > 0)
			out = ad_put_prefix(out, w.w_node->ad_len);
		switch (ev) {
		case AD_EV_LEAF:
			out = put_leaf(out, w.w_node, fds != NULL ? &t : NULL);
			break;
		case AD_EV_ENTER:
			*out++ = w.w_tag;
			break;
		default:
			if (w.w_trailerlen > 0)
				memcpy(out, w.w_trailer, w.w_trailerlen);
			out += w.w_trailerlen;
			break;
		}
	}
	ad_walk_fini(&w);
	ad_free(t.t_slots);
	return (t.t_n);
}

/* See argdata_fds.h. */
size_t
argdata_index_fds(uint8_t *buf, const size_t *offsets, size_t n, int *fds)
{
	struct fdtab t = { .t_fds = fds };
	uint8_t *p;
	uint32_t v;
	size_t i;

	for (i = 0; i < n; i++) {
		p = buf + offsets[i];
		v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
		/* Not a descriptor number: invalid, FFFFFFFF, unlisted. */
		ad_put_be32(p, v > INT32_MAX ? UINT32_MAX :
		    fdtab_index(&t, (int)v));
	}
	ad_free(t.t_slots);
	return (t.t_n);
}
