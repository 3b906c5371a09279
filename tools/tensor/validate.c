// tensor validate: reads whole streams, reporting each that is malformed.
#include <stdlib.h>
#include "libcommon/util/err.h"
#include "cmd.h"

int cmd_validate(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+", NULL, no_opts);
	int bad = 0;
	Record r;
	record_init(&r);
	if (i == argc)
		argv[--i] = "-";
	for (; i < argc; i++) {
		Stream *s = stream_open_read(argv[i]);
		if (!s) {
			warn("%s", stream_last_error());
			bad = 1;
			continue;
		}
		int rc;
		while ((rc = stream_read_record(s, &r)) > 0)
			;
		if (rc < 0) {
			warn("%s", stream_error(s));
			bad = 1;
		}
		stream_close(s);
	}
	record_free(&r);
	return bad ? EXIT_FAIL : 0;
}
