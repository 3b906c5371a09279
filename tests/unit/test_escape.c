// text_escape: what a name may hold never reaches a terminal raw.
#include "check.h"
#include "libcommon/util/escape.h"

static int esc_is(const char *s, size_t max, const char *want)
{
	char *e = text_escape(s, max);
	int ok = strcmp(e, want) == 0;
	if (!ok)
		fprintf(stderr, "text_escape: got '%s', want '%s'\n", e, want);
	free(e);
	return ok;
}

int main(void)
{
	CHECK(esc_is("", 0, ""));
	CHECK(esc_is("cats/cat.1.jpg", 0, "cats/cat.1.jpg"));
	CHECK(esc_is("a\nb\tc\rd\\e", 0, "a\\nb\\tc\\rd\\\\e"));
	// a forged summary line and a terminal escape stay on one line, inert
	CHECK(esc_is("x\nimgprep: d: 9 images, 0 skipped", 0, "x\\nimgprep: d: 9 images, 0 skipped"));
	CHECK(esc_is("\x1b[2J\x7f\x01", 0, "\\x1b[2J\\x7f\\x01"));
	// well-formed UTF-8 as it is; C1 controls, stray, overlong, surrogate
	// and cut sequences byte by byte
	CHECK(esc_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb1", 0, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb1"));
	CHECK(esc_is("\xc2\x9b" "1m", 0, "\\xc2\\x9b1m"));
	CHECK(esc_is("\x9b\xff", 0, "\\x9b\\xff"));
	CHECK(esc_is("\xc0\xaf", 0, "\\xc0\\xaf"));
	CHECK(esc_is("\xed\xa0\x80", 0, "\\xed\\xa0\\x80"));
	CHECK(esc_is("\xe2\x82", 0, "\\xe2\\x82"));
	CHECK(esc_is("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80"));
	// max: the first max bytes, then the whole length; a sequence cut there
	// is escaped as the bytes it has
	CHECK(esc_is("abcdef", 3, "abc ... (6 bytes)"));
	CHECK(esc_is("abc", 3, "abc"));
	CHECK(esc_is("\xc3\xa9\xc3\xa9", 3, "\xc3\xa9\\xc3 ... (4 bytes)"));
	// the worst case fits: every byte 4 wide
	char all[256];
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = 0;
	char *e = text_escape(all, 0);
	CHECK(strlen(e) > 255 && !strchr(e, '\n') && !strchr(e, '\x1b'));
	free(e);
	return check_done("test_escape");
}
