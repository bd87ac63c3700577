/*
 * argdata_reference_behaviour.c: every behaviour that the unit tests of
 * CloudABI's reference argdata (NuxiNL/cloudlibc, src/libc/argdata/
 * *_test.cc) check, checked here against our library with our own code:
 * the YAML printer, serialisation with and without a descriptor list,
 * iterator indices, constructors' errors, and streams (our writer to a
 * reader that works as the reference's does, and the reference's framing
 * to our reader).  Built with argdata's sources alone (run.sh).
 */
#define	_GNU_SOURCE
#include <sys/socket.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <argdata.h>

#include "check.h"

/* Bytes from hex text ("06 80 ff"); returns the length. */
static size_t
unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;
	unsigned int b;
	int k;

	while (sscanf(hex, " %2x%n", &b, &k) == 1) {
		out[n++] = (uint8_t)b;
		hex += k;
	}
	return (n);
}

/* The reference tests' conversion: the index itself, -1 past INT_MAX. */
static int
passthrough(void *arg, size_t index)
{

	(void)arg;
	return (index > INT_MAX ? -1 : (int)index);
}

/* What argdata_print_yaml() prints for ad, without the header. */
static char *
yaml(const argdata_t *ad)
{
	static const char head[] = "%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n";
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	argdata_print_yaml(ad, fp);
	fclose(fp);
	if (strncmp(buf, head, sizeof(head) - 1) != 0 || len < sizeof(head) ||
	    buf[len - 1] != '\n') {
		fprintf(stderr, "bad document: %s\n", buf);
		buf[0] = '\0';
		return (buf);
	}
	buf[len - 1] = '\0';
	memmove(buf, buf + sizeof(head) - 1, len - sizeof(head) + 1);
	return (buf);
}

/* yaml() of the buffer given in hex equals want. */
static int
yaml_hex_is(const char *hex, const char *want)
{
	uint8_t bytes[256];
	size_t n = unhex(hex, bytes);
	argdata_t *ad = argdata_from_buffer(bytes, n, passthrough, NULL);
	char *got = yaml(ad);
	int ok = strcmp(got, want) == 0;

	if (!ok)
		fprintf(stderr, "yaml of %s: got [%s], want [%s]\n", hex, got,
		    want);
	free(got);
	argdata_free(ad);
	return (ok);
}

/* yaml() of a made value equals want (ad is freed). */
static int
yaml_is(argdata_t *ad, const char *want)
{
	char *got = yaml(ad);
	int ok = strcmp(got, want) == 0;

	if (!ok)
		fprintf(stderr, "yaml: got [%s], want [%s]\n", got, want);
	free(got);
	argdata_free(ad);
	return (ok);
}

static void
printing_buffers(void)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "", "!!null \"null\"" },
		{ "01", "!!binary \"\"" },
		{ "01 48", "!!binary \"SA==\"" },
		{ "01 48 65", "!!binary \"SGU=\"" },
		{ "01 48 65 6c", "!!binary \"SGVs\"" },
		{ "01 48 65 6c 6c", "!!binary \"SGVsbA==\"" },
		{ "01 48 65 6c 6c 6f", "!!binary \"SGVsbG8=\"" },
		{ "02", "!!bool \"false\"" },
		{ "02 01", "!!bool \"true\"" },
		{ "02 00", "!!null \"null\"" },
		{ "02 02", "!!null \"null\"" },
		{ "02 48 65", "!!null \"null\"" },
		{ "03", "!!null \"null\"" },
		{ "03 00 00 00", "!!null \"null\"" },
		{ "03 00 00 00 00 00", "!!null \"null\"" },
		{ "03 00 00 00 00", "!fd \"0\"" },
		{ "03 12 34 56 78", "!fd \"305419896\"" },
		{ "03 ca fe ba be", "!fd \"invalid\"" },
		{ "04", "!!null \"null\"" },
		{ "04 00 00 00 00 00 00 00", "!!null \"null\"" },
		{ "04 00 00 00 00 00 00 00 00 00", "!!null \"null\"" },
		{ "04 ff f8 00 00 00 00 00 00", "!!float \".nan\"" },
		{ "04 ff f0 00 00 00 00 00 00", "!!float \"-.inf\"" },
		{ "04 f4 d6 3b d6 d8 2c 9f bc",
		    "!!float \"-6.520321480035106e+254\"" },
		{ "04 c9 58 49 5b c1 67 27 02",
		    "!!float \"-2.1664332176389768e+45\"" },
		{ "04 8d 7b 0a 8a ba 77 be 3e",
		    "!!float \"-9.900774043221159e-244\"" },
		{ "04 e7 a7 02 9f 9e 47 68 c8",
		    "!!float \"-2.05044707947561e+191\"" },
		{ "04 b6 f8 3a fc 88 42 44 57",
		    "!!float \"-6.790808900329073e-44\"" },
		{ "04 15 d4 a2 9d 7e 09 28 d1",
		    "!!float \"1.645401737310015e-203\"" },
		{ "04 70 cd e9 27 a4 0f 39 f0",
		    "!!float \"2.3775742871338425e+235\"" },
		{ "04 74 8e 1a e1 a2 3f f6 fc",
		    "!!float \"2.75895794262241e+253\"" },
		{ "04 80 00 00 00 00 00 00 00", "!!float \"0\"" },
		{ "04 00 00 00 00 00 00 00 00", "!!float \"0\"" },
		{ "04 11 b6 10 cf c6 59 40 9e",
		    "!!float \"2.384516613265578e-223\"" },
		{ "04 3f f0 00 00 00 00 00 00", "!!float \"1\"" },
		{ "04 3f f8 00 00 00 00 00 00", "!!float \"1.5\"" },
		{ "04 75 aa e8 5c 1c 37 89 00",
		    "!!float \"6.464309645384425e+258\"" },
		{ "04 7f f0 00 00 00 00 00 00", "!!float \".inf\"" },
		{ "04 7f f8 00 00 00 00 00 00", "!!float \".nan\"" },
		{ "05", "!!int \"0\"" },
		{ "05 01", "!!int \"1\"" },
		{ "05 7f", "!!int \"127\"" },
		{ "05 ff", "!!int \"-1\"" },
		{ "05 80", "!!int \"-128\"" },
		{ "05 fe ff", "!!int \"-257\"" },
		{ "05 ff 7f", "!!int \"-129\"" },
		{ "05 00 80", "!!int \"128\"" },
		{ "05 80 00 00 00 00 00 00 00",
		    "!!int \"-9223372036854775808\"" },
		{ "05 7f ff ff ff ff ff ff ff",
		    "!!int \"9223372036854775807\"" },
		{ "05 00 80 00 00 00 00 00 00 00",
		    "!!int \"9223372036854775808\"" },
		{ "05 00 ff ff ff ff ff ff ff ff",
		    "!!int \"18446744073709551615\"" },
		{ "05 ff 7f ff ff ff ff ff ff ff", "!!null \"null\"" },
		{ "05 01 00 00 00 00 00 00 00 00", "!!null \"null\"" },
		{ "08", "!!null \"null\"" },
		{ "08 48 65 6c 6c 6f", "!!null \"null\"" },
		{ "08 48 65 6c 6c 6f 00", "!!str \"Hello\"" },
		{ "08 49 6e ff 55 00", "!!null \"null\"" },
		{ "08 07 08 0a 0d 1b 00 03 e2 98 83 00",
		    "!!str \"\\a\\b\\n\\r\\e\\0\\x03\xe2\x98\x83\"" },
		{ "06", "!!map {}" },
		/* Malformed at the first pair: no map at all, so null. */
		{ "06 00", "!!null \"null\"" },
		{ "07 85 05", "!!null \"null\"" },
		/* Malformed after the first: the pairs before, then closed. */
		{ "06 81 02 81 02 81", "!!map {\n  ? !!bool \"false\"\n"
		    "  : !!bool \"false\",\n}" },
		{ "07", "!!seq []" },
		{ "09 13 f0 bc eb 1a 26 3c 69",
		    "!!timestamp \"2015-07-14T06:39:59.073238121Z\"" },
		{ "06 87 08 48 65 6c 6c 6f 00 87 08 57 6f 72 6c 64 00 81 02 82"
		    " 02 01 85 05 01 80 29 15 84 05 58 e5 d9 80 83 06 80 80",
		    "!!map {\n"
		    "  ? !!str \"Hello\"\n  : !!str \"World\",\n"
		    "  ? !!bool \"false\"\n  : !!bool \"true\",\n"
		    "  ? !!int \"25176341\"\n  : !!int \"5826009\",\n"
		    "  ? !!null \"null\"\n  : !!map {\n"
		    "    ? !!null \"null\"\n    : !!null \"null\",\n  },\n}" },
		{ "07 81 02 82 02 01 80 87 08 48 65 6c 6c 6f 00 81 06 81 07",
		    "!!seq [\n  !!bool \"false\",\n  !!bool \"true\",\n"
		    "  !!null \"null\",\n  !!str \"Hello\",\n  !!map {},\n"
		    "  !!seq [],\n]" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(yaml_hex_is(cases[i].in, cases[i].out));
}

/*
 * The integer boundaries of every payload length from 2 to 8 bytes, as
 * the reference's tests walk them: each pattern printed in decimal, and
 * made by argdata_create_int() to the same bytes.
 */
static void
integer_boundaries(void)
{
	static const struct { int lead0, lead1, fill; int shift, off, neg; }
	    pat[] = {
		{ 0x80, -1, 0x00, 1, 0, 1 },	/* -2^(8n-1) */
		{ 0xfe, -1, 0xff, 8, 1, 1 },	/* -2^(8(n-1)) - 1 */
		{ 0xff, -1, 0x00, 8, 0, 1 },	/* -2^(8(n-1)) */
		{ 0xff, 0x7f, 0xff, 9, 1, 1 },	/* -2^(8n-9) - 1 */
		{ 0x00, 0x80, 0x00, 9, 0, 0 },	/* 2^(8n-9) */
		{ 0x00, -1, 0xff, 8, -1, 0 },	/* 2^(8(n-1)) - 1 */
		{ 0x01, -1, 0x00, 8, 0, 0 },	/* 2^(8(n-1)) */
		{ 0x7f, -1, 0xff, 1, -1, 0 },	/* 2^(8n-1) - 1 */
	};
	char hex[64], want[64];
	uint8_t bytes[16], out[16];
	size_t i, k, n, len, maxfds;
	intmax_t v;
	argdata_t *ad;
	int p;

	for (n = 2; n <= 8; n++) {
		for (i = 0; i < sizeof(pat) / sizeof(pat[0]); i++) {
			bytes[0] = 0x05;
			bytes[1] = (uint8_t)pat[i].lead0;
			k = 2;
			if (pat[i].lead1 >= 0)
				bytes[k++] = (uint8_t)pat[i].lead1;
			while (k < n + 1)
				bytes[k++] = (uint8_t)pat[i].fill;
			/* The value: +-2^e + off, e from the pattern. */
			p = pat[i].shift == 1 ? (int)(8 * n - 1) :
			    pat[i].shift == 8 ? (int)(8 * (n - 1)) :
			    (int)(8 * n - 9);
			if (p == 63)		/* -2^63, or 2^63 - 1 */
				v = pat[i].neg ? INTMAX_MIN : INTMAX_MAX;
			else if (pat[i].neg)
				v = -((intmax_t)1 << p) - pat[i].off;
			else
				v = ((intmax_t)1 << p) + pat[i].off;
			for (k = 0, hex[0] = '\0'; k < n + 1; k++)
				sprintf(hex + 3 * k, "%02x ", bytes[k]);
			snprintf(want, sizeof(want), "!!int \"%jd\"", v);
			CHECK(yaml_hex_is(hex, want));
			ad = argdata_create_int(v);
			argdata_serialized_length(ad, &len, &maxfds);
			argdata_serialize(ad, out, NULL);
			CHECK(len == n + 1 && memcmp(out, bytes, len) == 0);
			argdata_free(ad);
		}
	}
}

/* Random values through the constructors and back, bit for bit. */
static void
random_round_trips(void)
{
	struct timespec ts, back;
	uint64_t bits;
	argdata_t *ad;
	intmax_t s;
	uintmax_t u;
	double d, e;
	int i, fd;

	srand(20261202);
	for (i = 0; i < 1000; i++) {
		bits = (uint64_t)rand() << 42 ^ (uint64_t)rand() << 21 ^
		    (uint64_t)rand();
		memcpy(&e, &bits, sizeof(e));
		ad = argdata_create_float(e);
		CHECK(argdata_get_float(ad, &d) == 0 &&
		    memcmp(&d, &e, sizeof(d)) == 0);
		argdata_free(ad);
		ad = argdata_create_int((uintmax_t)bits);
		CHECK(argdata_get_int(ad, &u) == 0 && u == bits);
		CHECK(bits > INTMAX_MAX ?
		    argdata_get_int(ad, (intmax_t *)NULL) == ERANGE :
		    argdata_get_int(ad, &s) == 0 && (uintmax_t)s == bits);
		argdata_free(ad);
		ad = argdata_create_int((intmax_t)bits);
		CHECK(argdata_get_int(ad, &s) == 0 && s == (intmax_t)bits);
		CHECK((intmax_t)bits < 0 ?
		    argdata_get_int(ad, (uintmax_t *)NULL) == ERANGE :
		    argdata_get_int(ad, &u) == 0 && u == bits);
		argdata_free(ad);
		ad = argdata_create_fd((int)(bits & INT_MAX));
		CHECK(argdata_get_fd(ad, &fd) == 0 && fd == (int)(bits & INT_MAX));
		argdata_free(ad);
		ts.tv_sec = (time_t)bits;
		ts.tv_nsec = (long)(bits % 1000000000);
		ad = argdata_create_timestamp(&ts);
		CHECK(ad != NULL && argdata_get_timestamp(ad, &back) == 0 &&
		    back.tv_sec == ts.tv_sec && back.tv_nsec == ts.tv_nsec);
		argdata_free(ad);
	}
}

static void
printing_made(void)
{
	const argdata_t *tfn[] = { &argdata_true, &argdata_false,
	    &argdata_null };
	const argdata_t *ntf[] = { &argdata_null, &argdata_true,
	    &argdata_false };
	const argdata_t *fnt[] = { &argdata_false, &argdata_null,
	    &argdata_true };
	char *s;

	CHECK(yaml_is(argdata_create_binary(NULL, 0), "!!binary \"\""));
	CHECK(yaml_is(argdata_create_binary("This is an example string", 25),
	    "!!binary \"VGhpcyBpcyBhbiBleGFtcGxlIHN0cmluZw==\""));
	s = yaml(&argdata_false);
	CHECK(strcmp(s, "!!bool \"false\"") == 0);
	free(s);
	s = yaml(&argdata_true);
	CHECK(strcmp(s, "!!bool \"true\"") == 0);
	free(s);
	s = yaml(&argdata_null);
	CHECK(strcmp(s, "!!null \"null\"") == 0);
	free(s);
	errno = 0;
	CHECK(argdata_create_fd(-1) == NULL && errno == EBADF);
	CHECK(yaml_is(argdata_create_fd(12345678), "!fd \"12345678\""));
	CHECK(yaml_is(argdata_create_int(0), "!!int \"0\""));
	CHECK(yaml_is(argdata_create_int(0xdeadc0de), "!!int \"3735929054\""));
	CHECK(yaml_is(argdata_create_int(INT64_MIN),
	    "!!int \"-9223372036854775808\""));
	CHECK(yaml_is(argdata_create_int(INT64_MAX),
	    "!!int \"9223372036854775807\""));
	CHECK(yaml_is(argdata_create_int(UINT64_MAX),
	    "!!int \"18446744073709551615\""));
	CHECK(yaml_is(argdata_create_map(NULL, NULL, 0), "!!map {}"));
	CHECK(yaml_is(argdata_create_map(tfn, ntf, 3),
	    "!!map {\n  ? !!bool \"true\"\n  : !!null \"null\",\n"
	    "  ? !!bool \"false\"\n  : !!bool \"true\",\n"
	    "  ? !!null \"null\"\n  : !!bool \"false\",\n}"));
	CHECK(yaml_is(argdata_create_seq(NULL, 0), "!!seq []"));
	CHECK(yaml_is(argdata_create_seq(fnt, 3),
	    "!!seq [\n  !!bool \"false\",\n  !!null \"null\",\n"
	    "  !!bool \"true\",\n]"));
	CHECK(yaml_is(argdata_create_str_c("Hello, world"),
	    "!!str \"Hello, world\""));
}

/*
 * argdata_serialize() of ad gives want (hex) and the descriptors wantfds;
 * without a list, it gives nolist (hex, NULL: want) and returns 0.
 */
static int
serializes_to(const argdata_t *ad, const char *want, const int *wantfds,
    size_t nwantfds, const char *nolist)
{
	uint8_t expect[512], buf[512];
	int fds[16];
	size_t len, maxfds, n, nexpect;
	int ok;

	nexpect = unhex(want, expect);
	argdata_serialized_length(ad, &len, &maxfds);
	ok = len == nexpect && maxfds >= nwantfds;
	n = argdata_serialize(ad, buf, fds);
	ok = ok && n == nwantfds && memcmp(buf, expect, nexpect) == 0 &&
	    memcmp(fds, wantfds, n * sizeof(int)) == 0;
	if (nolist != NULL)
		nexpect = unhex(nolist, expect);
	ok = ok && argdata_serialize(ad, buf, NULL) == 0 &&
	    memcmp(buf, expect, nexpect) == 0;
	if (!ok)
		fprintf(stderr, "serialising to %s failed\n", want);
	return (ok);
}

/* serializes_to() of the buffer given in hex, read with convert. */
static int
buffer_serializes_to(const char *in, int (*convert)(void *, size_t),
    const char *want, const int *wantfds, size_t nwantfds, const char *nolist)
{
	uint8_t bytes[256];
	size_t n = unhex(in, bytes);
	argdata_t *ad = argdata_from_buffer(bytes, n, convert, NULL);
	int ok = serializes_to(ad, want, wantfds, nwantfds, nolist);

	argdata_free(ad);
	return (ok);
}

static void
serialising(void)
{
	argdata_t *ad;
	struct timespec ts;
	static const int none[1] = { 0 }, twelve[] = { 12 }, nineteen[] = {
	    19 }, map[] = { 305419896, 19088743, 18 };
	const argdata_t *tfn[] = { &argdata_true, &argdata_false,
	    &argdata_null };
	const argdata_t *ntf[] = { &argdata_null, &argdata_true,
	    &argdata_false };
	const argdata_t *fnt[] = { &argdata_false, &argdata_null,
	    &argdata_true };

	/* Buffers: copied as they are (malformed ones too). */
	{
		static const char *same[] = { "", "01", "01 48 65 6c 6c 6f",
		    "02", "02 48 65", "02 00", "02 01", "02 02", "03",
		    "03 00 00 00", "08 49 6e 80 55 00", "08 49 6d 70 72",
		    "53 6f 6d 65 20 72 61 6e 64 6f 6d" };
		size_t j;

		for (j = 0; j < sizeof(same) / sizeof(same[0]); j++)
			CHECK(buffer_serializes_to(same[j], passthrough,
			    same[j], none, 0, NULL));
	}
	/* Descriptors renumbered. */
	CHECK(buffer_serializes_to("03 00 00 00 00", passthrough,
	    "03 00 00 00 00", none, 1, NULL));
	CHECK(buffer_serializes_to("03 00 00 00 13", passthrough,
	    "03 00 00 00 00", nineteen, 1, "03 00 00 00 13"));
	CHECK(buffer_serializes_to("03 ca fe ba be", passthrough,
	    "03 ff ff ff ff", none, 0, NULL));
	CHECK(buffer_serializes_to("03 00 00 00 05", NULL,
	    "03 ff ff ff ff", none, 0, NULL));
	CHECK(buffer_serializes_to("05 49 6e 74 65 67 65 72 73", passthrough,
	    "05 49 6e 74 65 67 65 72 73", none, 0, NULL));
	CHECK(buffer_serializes_to("06 85 03 12 34 56 78 85 03 01 23 45 67 85"
	    " 03 01 23 45 67 85 03 00 00 00 12 54 72 61 69 6c 85 03 00 00 00 42",
	    passthrough,
	    "06 85 03 00 00 00 00 85 03 00 00 00 01 85 03"
	    " 00 00 00 01 85 03 00 00 00 02 54 72 61 69 6c 85 03 00 00 00 42",
	    map, 3, "06 85 03 12 34 56 78 85 03 01 23 45 67 85 03 01 23 45 67"
	    " 85 03 00 00 00 12 54 72 61 69 6c 85 03 00 00 00 42"));

	/* Made values. */
	ad = argdata_create_binary("Hello", 5);
	CHECK(serializes_to(ad, "01 48 65 6c 6c 6f", none, 0, NULL));
	argdata_free(ad);
	CHECK(serializes_to(&argdata_false, "02", none, 0, NULL));
	CHECK(serializes_to(&argdata_true, "02 01", none, 0, NULL));
	ad = argdata_create_float(-2);
	CHECK(serializes_to(ad, "04 c0 00 00 00 00 00 00 00", none, 0, NULL));
	argdata_free(ad);
	ad = argdata_create_float(0x1.0000000000001p+0);
	CHECK(serializes_to(ad, "04 3f f0 00 00 00 00 00 01", none, 0, NULL));
	argdata_free(ad);
	ad = argdata_create_float(-INFINITY);
	CHECK(serializes_to(ad, "04 ff f0 00 00 00 00 00 00", none, 0, NULL));
	argdata_free(ad);
	{
		/* A sub-field of 127 bytes has a 1-byte length, of 128 two. */
		static char s125[126], s126[127];
		static uint8_t want[200];
		argdata_t *st, *seq;
		const argdata_t *el[3];
		uint8_t got[200];
		size_t len, maxfds;

		memset(s125, 'x', 125);
		memset(s126, 'x', 126);
		st = argdata_create_str(s125, 125);
		el[0] = &argdata_null;
		el[1] = st;
		el[2] = &argdata_null;
		seq = argdata_create_seq(el, 3);
		memcpy(want, "\x07\x80\xff\x08", 4);
		memset(want + 4, 'x', 125);
		memcpy(want + 129, "\x00\x80", 2);
		argdata_serialized_length(seq, &len, &maxfds);
		argdata_serialize(seq, got, NULL);
		CHECK(len == 131 && memcmp(got, want, len) == 0);
		argdata_free(seq);
		argdata_free(st);
		st = argdata_create_str(s126, 126);
		el[1] = st;
		seq = argdata_create_seq(el, 3);
		memcpy(want, "\x07\x80\x01\x80\x08", 5);
		memset(want + 5, 'x', 126);
		memcpy(want + 131, "\x00\x80", 2);
		argdata_serialized_length(seq, &len, &maxfds);
		argdata_serialize(seq, got, NULL);
		CHECK(len == 133 && memcmp(got, want, len) == 0);
		argdata_free(seq);
		argdata_free(st);
	}
	ad = argdata_create_fd(12);
	CHECK(serializes_to(ad, "03 00 00 00 00", twelve, 1,
	    "03 00 00 00 0c"));
	argdata_free(ad);
	ad = argdata_create_float(-0.0);
	CHECK(serializes_to(ad, "04 80 00 00 00 00 00 00 00", none, 0, NULL));
	argdata_free(ad);
	ad = argdata_create_float(NAN);
	CHECK(serializes_to(ad, "04 7f f8 00 00 00 00 00 00", none, 0, NULL));
	argdata_free(ad);
	ad = argdata_create_int(0);
	CHECK(serializes_to(ad, "05", none, 0, NULL));
	argdata_free(ad);
	ad = argdata_create_int(128);
	CHECK(serializes_to(ad, "05 00 80", none, 0, NULL));
	argdata_free(ad);
	ad = argdata_create_int(UINT64_MAX);
	CHECK(serializes_to(ad, "05 00 ff ff ff ff ff ff ff ff", none, 0,
	    NULL));
	argdata_free(ad);
	ad = argdata_create_int(INT64_MIN);
	CHECK(serializes_to(ad, "05 80 00 00 00 00 00 00 00", none, 0, NULL));
	argdata_free(ad);
	ad = argdata_create_map(tfn, ntf, 3);
	CHECK(serializes_to(ad, "06 82 02 01 80 81 02 82 02 01 80 81 02",
	    none, 0, NULL));
	argdata_free(ad);
	ad = argdata_create_seq(fnt, 3);
	CHECK(serializes_to(ad, "07 81 02 80 82 02 01", none, 0, NULL));
	argdata_free(ad);
	CHECK(serializes_to(&argdata_null, "", none, 0, NULL));
	ad = argdata_create_str("Hello\0world", 11);
	CHECK(serializes_to(ad, "08 48 65 6c 6c 6f 00 77 6f 72 6c 64 00",
	    none, 0, NULL));
	argdata_free(ad);
	ts.tv_sec = -1;
	ts.tv_nsec = 999999999;
	ad = argdata_create_timestamp(&ts);
	CHECK(serializes_to(ad, "09 ff", none, 0, NULL));
	argdata_free(ad);
	ts.tv_sec = INT64_MIN;
	ts.tv_nsec = 0;
	ad = argdata_create_timestamp(&ts);
	CHECK(serializes_to(ad, "09 e2 32 9b 00 00 00 00 00 00 00 00 00",
	    none, 0, NULL));
	argdata_free(ad);
	ts.tv_sec = INT64_MAX;
	ts.tv_nsec = 999999999;
	ad = argdata_create_timestamp(&ts);
	CHECK(serializes_to(ad, "09 1d cd 64 ff ff ff ff ff ff ff ff ff",
	    none, 0, NULL));
	argdata_free(ad);
}

static void
constructors(void)
{
	struct timespec ts = { 0, -1 }, back;
	argdata_t *ad;
	intmax_t s;
	uintmax_t u;
	double d, e = -0x1.e56b76eacd009p+54;
	int fd;

	errno = 0;
	CHECK(argdata_create_fd(INT_MIN) == NULL && errno == EBADF);
	ad = argdata_create_fd(INT_MAX - 1);
	CHECK(argdata_get_fd(ad, &fd) == 0 && fd == INT_MAX - 1);
	argdata_free(ad);
	errno = 0;
	CHECK(argdata_create_timestamp(&ts) == NULL && errno == EINVAL);
	ts.tv_nsec = 1000000000;
	errno = 0;
	CHECK(argdata_create_timestamp(&ts) == NULL && errno == EINVAL);
	ts.tv_sec = -123456789;
	ts.tv_nsec = 42;
	ad = argdata_create_timestamp(&ts);
	CHECK(argdata_get_timestamp(ad, &back) == 0 &&
	    back.tv_sec == ts.tv_sec && back.tv_nsec == 42);
	argdata_free(ad);
	ad = argdata_create_float(e);
	CHECK(argdata_get_float(ad, &d) == 0 && memcmp(&d, &e, sizeof(d)) ==
	    0);
	argdata_free(ad);
	/* Out of range: ERANGE without touching the (NULL) destination. */
	ad = argdata_create_int(UINTMAX_MAX);
	CHECK(argdata_get_int(ad, (intmax_t *)NULL) == ERANGE);
	CHECK(argdata_get_int(ad, &u) == 0 && u == UINTMAX_MAX);
	argdata_free(ad);
	ad = argdata_create_int(INTMAX_MIN);
	CHECK(argdata_get_int(ad, (uintmax_t *)NULL) == ERANGE);
	CHECK(argdata_get_int(ad, &s) == 0 && s == INTMAX_MIN);
	argdata_free(ad);
}

static void
iterators(void)
{
	const argdata_t *two[] = { &argdata_true, &argdata_false };
	argdata_map_iterator_t mi;
	argdata_seq_iterator_t si;
	const argdata_t *k, *v, *e;
	uint8_t in[64];
	argdata_t *ad;
	size_t n;

	/* Serialised: 0, 1, ..., then END. */
	n = unhex("07 81 02 80 82 02 01", in);
	ad = argdata_from_buffer(in, n, NULL, NULL);
	argdata_seq_iterate(ad, &si);
	CHECK(si.index == 0 && argdata_seq_get(&si, &e));
	argdata_seq_next(&si);
	argdata_seq_next(&si);
	CHECK(si.index == 2 && argdata_seq_get(&si, &e));
	argdata_seq_next(&si);
	CHECK(si.index == ARGDATA_ITERATOR_END && !argdata_seq_get(&si, &e));
	argdata_free(ad);
	/* Malformed after one element: INVALID, and next makes it END. */
	n = unhex("06 81 02 81 02 81", in);
	ad = argdata_from_buffer(in, n, NULL, NULL);
	argdata_map_iterate(ad, &mi);
	CHECK(mi.index == 0 && argdata_map_get(&mi, &k, &v));
	argdata_map_next(&mi);
	CHECK(mi.index == ARGDATA_ITERATOR_INVALID &&
	    !argdata_map_get(&mi, &k, &v));
	argdata_map_next(&mi);
	CHECK(mi.index == ARGDATA_ITERATOR_END);
	argdata_free(ad);
	/* Not a container, null included: INVALID. */
	argdata_map_iterate(&argdata_null, &mi);
	CHECK(mi.index == ARGDATA_ITERATOR_INVALID);
	argdata_seq_iterate(&argdata_true, &si);
	CHECK(si.index == ARGDATA_ITERATOR_INVALID);
	/* Made: counts on to the length, END one step later. */
	ad = argdata_create_map(two, two, 2);
	argdata_map_iterate(ad, &mi);
	CHECK(mi.index == 0);
	argdata_map_next(&mi);
	argdata_map_next(&mi);
	CHECK(mi.index == 2 && !argdata_map_get(&mi, &k, &v));
	argdata_map_next(&mi);
	CHECK(mi.index == ARGDATA_ITERATOR_END);
	argdata_seq_iterate(ad, &si);
	CHECK(si.index == ARGDATA_ITERATOR_INVALID);
	argdata_free(ad);
	ad = argdata_create_map(NULL, NULL, 0);
	argdata_map_iterate(ad, &mi);
	CHECK(mi.index == ARGDATA_ITERATOR_END);
	argdata_free(ad);
	ad = argdata_create_seq(NULL, 0);
	argdata_seq_iterate(ad, &si);
	CHECK(si.index == 0 && !argdata_seq_get(&si, &e));
	argdata_seq_next(&si);
	CHECK(si.index == ARGDATA_ITERATOR_END);
	argdata_free(ad);
}

/* Whether descriptors a and b are the same open file's inode. */
static int
same_file(int a, int b)
{
	struct stat sa, sb;

	return (fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

/*
 * A message as the reference's reader takes it: one recvmsg(2) of at
 * most the 8 header bytes with room for maxfds descriptors, then read(2)
 * for the rest.  Returns the data length (data in buf) or -1.
 */
static ssize_t
reference_read(int s, uint8_t *buf, size_t cap, int *fds, size_t maxfds,
    size_t *nfds)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(16 * sizeof(int))];
	} control;
	uint8_t header[8];
	struct msghdr msg;
	struct iovec iov = { header, sizeof(header) };
	struct cmsghdr *c;
	size_t got, len, i;
	ssize_t r;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = CMSG_SPACE(maxfds * sizeof(int));
	r = recvmsg(s, &msg, 0);
	if (r <= 0 || (msg.msg_flags & MSG_CTRUNC) != 0)
		return (-1);
	*nfds = 0;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		for (i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
	for (got = (size_t)r; got < 8; got += (size_t)r)
		if ((r = read(s, header + got, 8 - got)) <= 0)
			return (-1);
	for (len = 0, i = 0; i < 8; i++)
		len = len << 8 | header[i];
	if (len > cap)
		return (-1);
	for (got = 0; got < len; got += (size_t)r)
		if ((r = read(s, buf + got, len - got)) <= 0)
			return (-1);
	return ((ssize_t)len);
}

/* A message as the reference's writer sends it: one sendmsg(2). */
static int
reference_write(int s, const uint8_t *data, size_t len, const int *fds,
    size_t nfds)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(16 * sizeof(int))];
	} control;
	uint8_t msgbuf[256];
	struct msghdr msg;
	struct iovec iov = { msgbuf, 8 + len };
	struct cmsghdr *c;
	int i;

	for (i = 0; i < 8; i++)
		msgbuf[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	memcpy(msgbuf + 8, data, len);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	return (sendmsg(s, &msg, 0) == (ssize_t)(8 + len) ? 0 : -1);
}

static void
streams(void)
{
	int sv[2], fds[16], dir, got;
	size_t nfds;
	uint8_t buf[256], want[64];
	ssize_t len;
	argdata_writer_t *w = argdata_writer_create();
	argdata_reader_t *r;
	argdata_seq_iterator_t it;
	const argdata_t *e, *msg;
	const argdata_t *elems[3];
	argdata_t *seq;
	int p[2];

	/* The bytes on a pipe: null, true, false: 27 bytes in all. */
	CHECK(pipe(p) == 0);
	argdata_writer_set(w, &argdata_null);
	CHECK(argdata_writer_push(w, p[1]) == 0);
	argdata_writer_set(w, &argdata_true);
	CHECK(argdata_writer_push(w, p[1]) == 0);
	argdata_writer_set(w, &argdata_false);
	CHECK(argdata_writer_push(w, p[1]) == 0);
	CHECK(argdata_writer_push(w, -123) == 0);	/* idle */
	close(p[1]);
	CHECK(read(p[0], buf, sizeof(buf)) == 27 &&
	    memcmp(buf, want, unhex("00 00 00 00 00 00 00 00 00 00 00 00 00 00"
	    " 00 02 02 01 00 00 00 00 00 00 00 01 02", want)) == 0);
	close(p[0]);

	/* Ours to the reference's reader, descriptors included. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	elems[0] = argdata_create_fd(dir);
	elems[1] = argdata_create_fd(sv[0]);
	elems[2] = elems[0];
	seq = argdata_create_seq(elems, 3);
	argdata_writer_set(w, seq);
	CHECK(argdata_writer_push(w, sv[0]) == 0);
	len = reference_read(sv[1], buf, sizeof(buf), fds, 16, &nfds);
	CHECK(len == (ssize_t)unhex("07 85 03 00 00 00 00 85 03 00 00 00 01 85"
	    " 03 00 00 00 00", want) && memcmp(buf, want, (size_t)len) == 0);
	CHECK(nfds == 2 && same_file(fds[0], dir) && same_file(fds[1], sv[0]));
	if (nfds == 2) {
		close(fds[0]);
		close(fds[1]);
	}

	/* The reference's writer to ours, descriptors included. */
	fds[0] = sv[0];
	fds[1] = dir;
	CHECK(reference_write(sv[1], want, (size_t)len, fds, 2) == 0);
	r = argdata_reader_create(100, 2);
	CHECK(argdata_reader_pull(r, sv[0]) == 0);
	msg = argdata_reader_get(r);
	argdata_seq_iterate(msg, &it);
	CHECK(argdata_seq_get(&it, &e) && argdata_get_fd(e, &got) == 0 &&
	    same_file(got, sv[0]));
	argdata_seq_next(&it);
	CHECK(argdata_seq_get(&it, &e) && argdata_get_fd(e, &got) == 0 &&
	    same_file(got, dir));
	argdata_seq_next(&it);
	argdata_seq_next(&it);
	CHECK(it.index == ARGDATA_ITERATOR_END);
	/* Too long for the reader: EMSGSIZE. */
	argdata_reader_free(r);
	r = argdata_reader_create(4, 2);
	CHECK(reference_write(sv[1], want, (size_t)len, NULL, 0) == 0);
	CHECK(argdata_reader_pull(r, sv[0]) == EMSGSIZE);
	argdata_reader_free(r);
	r = argdata_reader_create(16, 16);
	CHECK(argdata_reader_pull(r, -123) == EBADF);
	argdata_reader_free(r);
	argdata_free(seq);
	argdata_free((argdata_t *)elems[0]);
	argdata_free((argdata_t *)elems[1]);
	argdata_writer_free(w);
	close(dir);
	close(sv[0]);
	close(sv[1]);
}

/* The reader and writer errors and edges the reference's tests check. */
static void
stream_edges(void)
{
	argdata_reader_t *r;
	argdata_writer_t *w = argdata_writer_create();
	argdata_seq_iterator_t it;
	const argdata_t *msg, *e, *el[4];
	argdata_t *dirad, *sockad, *seq, *one;
	uint8_t hdr[8] = { 0, 0, 0, 0, 0, 0x01, 0xe2, 0xb5 };	/* 123573 */
	char path[] = "/tmp/argdata-ref-XXXXXX";
	int p[2], sv[2], file, dir, fd, kept = -1;
	bool b;

	/* EAGAIN on an empty non-blocking pipe; EMSGSIZE past the limit. */
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	r = argdata_reader_create(16, 16);
	CHECK(argdata_reader_pull(r, p[0]) == EAGAIN);
	argdata_reader_free(r);
	CHECK(write(p[1], hdr, 8) == 8);
	r = argdata_reader_create(123572, 16);
	CHECK(argdata_reader_pull(r, p[0]) == EMSGSIZE);
	argdata_reader_free(r);
	close(p[0]);
	close(p[1]);

	/* true, false, then end of file: get is NULL. */
	CHECK(pipe(p) == 0);
	argdata_writer_set(w, &argdata_true);
	CHECK(argdata_writer_push(w, p[1]) == 0);
	argdata_writer_set(w, &argdata_false);
	CHECK(argdata_writer_push(w, p[1]) == 0);
	close(p[1]);
	r = argdata_reader_create(2, 0);
	CHECK(argdata_reader_pull(r, p[0]) == 0 &&
	    argdata_get_bool(argdata_reader_get(r), &b) == 0 && b);
	CHECK(argdata_reader_pull(r, p[0]) == 0 &&
	    argdata_get_bool(argdata_reader_get(r), &b) == 0 && !b);
	CHECK(argdata_reader_pull(r, p[0]) == 0 &&
	    argdata_reader_get(r) == NULL);
	argdata_reader_free(r);
	close(p[0]);

	/* Writer errors: EBADF, ENOTSOCK (descriptors to a file), EPIPE. */
	argdata_writer_set(w, &argdata_null);
	CHECK(argdata_writer_push(w, -123) == EBADF);
	argdata_writer_free(w);
	w = argdata_writer_create();
	dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dirad = argdata_create_fd(dir);
	file = mkstemp(path);
	unlink(path);
	argdata_writer_set(w, dirad);
	CHECK(argdata_writer_push(w, file) == ENOTSOCK);
	close(file);
	argdata_writer_free(w);
	w = argdata_writer_create();
	CHECK(pipe(p) == 0);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	argdata_writer_set(w, &argdata_true);
	CHECK(argdata_writer_push(w, p[1]) == EPIPE);
	close(p[1]);
	argdata_writer_free(w);

	/*
	 * Descriptors over a socket pair: a released one stays the caller's
	 * (and reads EBADF in the message), the rest close at the next pull.
	 */
	w = argdata_writer_create();
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	sockad = argdata_create_fd(sv[0]);
	el[0] = dirad;
	el[1] = sockad;
	el[2] = dirad;
	el[3] = sockad;
	seq = argdata_create_seq(el, 4);
	one = argdata_create_fd(sv[0]);
	argdata_writer_set(w, seq);
	CHECK(argdata_writer_push(w, sv[0]) == 0);
	argdata_writer_set(w, one);
	CHECK(argdata_writer_push(w, sv[0]) == 0);
	shutdown(sv[0], SHUT_WR);
	r = argdata_reader_create(100, 2);
	CHECK(argdata_reader_pull(r, sv[1]) == 0);
	msg = argdata_reader_get(r);
	argdata_seq_iterate(msg, &it);
	CHECK(argdata_seq_get(&it, &e) && argdata_get_fd(e, &kept) == 0 &&
	    same_file(kept, dir));
	argdata_reader_release_fd(r, kept);
	argdata_seq_next(&it);
	CHECK(argdata_seq_get(&it, &e) && argdata_get_fd(e, &fd) == 0 &&
	    same_file(fd, sv[0]));
	argdata_seq_next(&it);
	CHECK(argdata_seq_get(&it, &e) && argdata_get_fd(e, &fd) == EBADF);
	argdata_seq_next(&it);
	CHECK(argdata_seq_get(&it, &e) && argdata_get_fd(e, &fd) == 0);
	argdata_seq_next(&it);
	CHECK(!argdata_seq_get(&it, &e) && it.index == ARGDATA_ITERATOR_END);
	CHECK(argdata_reader_pull(r, sv[1]) == 0 &&
	    argdata_get_fd(argdata_reader_get(r), &fd) == 0 &&
	    same_file(fd, sv[0]));
	CHECK(argdata_reader_pull(r, sv[1]) == 0 &&
	    argdata_reader_get(r) == NULL);
	argdata_reader_free(r);
	CHECK(fcntl(kept, F_GETFD) != -1 && same_file(kept, dir));
	close(kept);
	argdata_free(seq);
	argdata_free(one);
	argdata_free(sockad);
	argdata_free(dirad);
	argdata_writer_free(w);
	close(sv[0]);
	close(sv[1]);
	close(dir);
}

int
main(void)
{

	printing_buffers();
	integer_boundaries();
	random_round_trips();
	printing_made();
	serialising();
	constructors();
	iterators();
	streams();
	stream_edges();
	printf("%d passed, %d failed\n", passed, failed);
	return (failed == 0 ? 0 : 1);
}
