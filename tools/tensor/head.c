// tensor head: the first N records of a stream.
#include <limits.h>
#include "libcommon/util/err.h"
#include "cmd.h"

static const char *opt_out = "-";
static long opt_n = 10;

static void head_opts(int c, const char *arg)
{
	if (c == 'n')
		opt_n = parse_long("-n", arg, 0, LONG_MAX);
	else if (c == 'o')
		opt_out = arg;
}

int cmd_head(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+n:o:", NULL, head_opts);
	const char *in = one_input(argc, argv, i);
	check_stream_out(opt_out);
	Stream *s = xstream_open_read(in);
	Stream *w = xstream_open_write(opt_out);
	stream_meta_copy(w, s);
	xstream_write_header(w);
	Record r;
	record_init(&r);
	for (long k = 0; k < opt_n && xstream_read_record(s, &r); k++)
		xstream_write_record(w, &r);
	xstream_finish(w);
	record_free(&r);
	stream_close(s);
	return 0;
}
