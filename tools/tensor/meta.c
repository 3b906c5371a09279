// tensor meta: a stream's metadata, or one value (-k KEY).
#include <stdio.h>
#include "libcommon/util/err.h"
#include "cmd.h"

static const char *opt_key;

static void meta_opts(int c, const char *arg)
{
	if (c == 'k')
		opt_key = arg;
}

int cmd_meta(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+k:", NULL, meta_opts);
	const char *in = one_input(argc, argv, i);
	Stream *s = xstream_open_read(in);
	Record r;
	record_init(&r);
	while (xstream_read_record(s, &r))
		;
	record_free(&r);
	if (opt_key) {
		const char *v = stream_meta_get(s, opt_key);
		if (!v)
			die("%s: no metadata key %s", stream_path(s), opt_key);
		printf("%s\n", v);
	} else {
		for (int k = 0; k < stream_meta_len(s); k++) {
			printf("%s=", stream_meta_key(s, k));
			print_escaped(stream_meta_val(s, k), 0);
			putchar('\n');
		}
	}
	stream_close(s);
	return 0;
}
