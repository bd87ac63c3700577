/*
 * argdata_iter.c: iterating over maps and sequences.
 *
 * An iterator over serialised bytes takes the next element (a map: a key
 * and a value sub-field) when it moves, so argdata_*_get() only hands out
 * what was taken.  When the bytes that follow are not a valid element the
 * iterator ends there with error EINVAL: the valid elements come first.
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>

#include "argdata_impl.h"

enum iter_state {
	IT_END,		/* nothing (more) to hand out */
	IT_BUFFER,	/* serialised: the current element is taken */
	IT_MADE,	/* made by argdata_create_map()/_seq() */
};

struct map_iter {
	alignas(long) int error;
	enum iter_state	state;
	const uint8_t	*pos;
	size_t		 rem;
	size_t		 index;		/* IT_MADE: the current pair */
	const argdata_t	*made;
	argdata_t	 key;
	argdata_t	 value;
};

struct seq_iter {
	alignas(long) int error;
	enum iter_state	state;
	const uint8_t	*pos;
	size_t		 rem;
	size_t		 index;		/* IT_MADE: the current entry */
	const argdata_t	*made;
	argdata_t	 entry;
};

_Static_assert(sizeof(struct map_iter) <= sizeof(argdata_map_iterator_t),
    "argdata_map_iterator_t is too small");
_Static_assert(alignof(struct map_iter) <= alignof(argdata_map_iterator_t),
    "argdata_map_iterator_t is not aligned enough");
_Static_assert(offsetof(struct map_iter, error) ==
    offsetof(argdata_map_iterator_t, error), "error moved");
_Static_assert(sizeof(struct seq_iter) <= sizeof(argdata_seq_iterator_t),
    "argdata_seq_iterator_t is too small");
_Static_assert(alignof(struct seq_iter) <= alignof(argdata_seq_iterator_t),
    "argdata_seq_iterator_t is not aligned enough");
_Static_assert(offsetof(struct seq_iter, error) ==
    offsetof(argdata_seq_iterator_t, error), "error moved");

/*
 * Take the next sub-field of a serialised container into *ad, carrying
 * the descriptor conversion of proto: true, or false at the end (error 0)
 * or at malformed bytes (*error = EINVAL).
 */
static bool
take_field(const uint8_t **pos, size_t *rem, const argdata_t *proto,
    argdata_t *ad, int *error)
{
	const uint8_t *field;
	size_t len;

	if (*rem == 0)
		return (false);
	if (ad_parse_subfield(pos, rem, &field, &len) != 0) {
		*error = EINVAL;
		return (false);
	}
	ad_init_buffer(ad, field, len, proto->ad_buffer.convert,
	    proto->ad_buffer.arg);
	return (true);
}

/* Start iterating over the map ad (EINVAL and nothing when it is not). */
void
argdata_map_iterate(const argdata_t *ad, argdata_map_iterator_t *it_)
{
	struct map_iter *it = (struct map_iter *)(void *)it_;

	it->error = 0;
	it->state = IT_END;
	if (ad->ad_kind == AD_MAP) {
		it->state = ad->ad_map.n > 0 ? IT_MADE : IT_END;
		it->made = ad;
		it->index = 0;
	} else if (ad_payload(ad, ADT_MAP, &it->pos, &it->rem) == 0) {
		/* The conversion rides along in key and value. */
		ad_init_buffer(&it->key, NULL, 0, ad->ad_buffer.convert,
		    ad->ad_buffer.arg);
		it->state = IT_BUFFER;
		argdata_map_next(it_);
	} else
		it->error = EINVAL;
}

/* The current pair: true, or false when the iteration is over. */
bool
argdata_map_get(const argdata_map_iterator_t *it_, const argdata_t **key,
    const argdata_t **value)
{
	const struct map_iter *it = (const struct map_iter *)(const void *)it_;

	switch (it->state) {
	case IT_BUFFER:
		*key = &it->key;
		*value = &it->value;
		return (true);
	case IT_MADE:
		*key = it->made->ad_map.keys[it->index];
		*value = it->made->ad_map.values[it->index];
		return (true);
	default:
		return (false);
	}
}

/* Move to the next pair; a key without a value is EINVAL. */
void
argdata_map_next(argdata_map_iterator_t *it_)
{
	struct map_iter *it = (struct map_iter *)(void *)it_;
	argdata_t proto;

	switch (it->state) {
	case IT_BUFFER:
		proto = it->key;
		if (!take_field(&it->pos, &it->rem, &proto, &it->key,
		    &it->error)) {
			it->state = IT_END;
			break;
		}
		if (!take_field(&it->pos, &it->rem, &proto, &it->value,
		    &it->error)) {
			it->error = EINVAL;
			it->state = IT_END;
		}
		break;
	case IT_MADE:
		if (++it->index == it->made->ad_map.n)
			it->state = IT_END;
		break;
	default:
		break;
	}
}

/* Start iterating over the sequence ad (EINVAL and nothing if not one). */
void
argdata_seq_iterate(const argdata_t *ad, argdata_seq_iterator_t *it_)
{
	struct seq_iter *it = (struct seq_iter *)(void *)it_;

	it->error = 0;
	it->state = IT_END;
	if (ad->ad_kind == AD_SEQ) {
		it->state = ad->ad_seq.n > 0 ? IT_MADE : IT_END;
		it->made = ad;
		it->index = 0;
	} else if (ad_payload(ad, ADT_SEQ, &it->pos, &it->rem) == 0) {
		ad_init_buffer(&it->entry, NULL, 0, ad->ad_buffer.convert,
		    ad->ad_buffer.arg);
		it->state = IT_BUFFER;
		argdata_seq_next(it_);
	} else
		it->error = EINVAL;
}

/* The current entry: true, or false when the iteration is over. */
bool
argdata_seq_get(const argdata_seq_iterator_t *it_, const argdata_t **entry)
{
	const struct seq_iter *it = (const struct seq_iter *)(const void *)it_;

	switch (it->state) {
	case IT_BUFFER:
		*entry = &it->entry;
		return (true);
	case IT_MADE:
		*entry = it->made->ad_seq.entries[it->index];
		return (true);
	default:
		return (false);
	}
}

/* Move to the next entry. */
void
argdata_seq_next(argdata_seq_iterator_t *it_)
{
	struct seq_iter *it = (struct seq_iter *)(void *)it_;
	argdata_t proto;

	switch (it->state) {
	case IT_BUFFER:
		proto = it->entry;
		if (!take_field(&it->pos, &it->rem, &proto, &it->entry,
		    &it->error))
			it->state = IT_END;
		break;
	case IT_MADE:
		if (++it->index == it->made->ad_seq.n)
			it->state = IT_END;
		break;
	default:
		break;
	}
}
