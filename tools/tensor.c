// tensor: inspect, validate, join and convert cnnpipe tensor streams.
// See tensor(1) and cnnpipe-tensor(5).  The subcommands are in tools/tensor/.
#include <stdio.h>
#include <string.h>
#include "libcommon/util/err.h"
#include "tools/tensor/cmd.h"

#define USAGE \
	"tensor info [FILE|-]\n" \
	"       tensor validate [FILE|-] ...\n" \
	"       tensor meta [-k KEY] [FILE|-]\n" \
	"       tensor head [-n N] [-o OUT] [FILE|-]\n" \
	"       tensor cat [-o OUT] FILE|- ...\n" \
	"       tensor dump [-t TENSOR] [-r INDEX] [FILE|-]\n" \
	"       tensor to-npy [-t TENSOR] [-o OUT] [FILE|-]\n" \
	"       tensor from-npy [-n NAME] [-m KEY=VALUE] ... [-o OUT] FILE.npy|- [NAME=FILE.npy] ..."

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	static const struct { const char *name; int (*fn)(int, char **); } CMDS[] = {
		{ "info", cmd_info }, { "validate", cmd_validate }, { "meta", cmd_meta },
		{ "head", cmd_head }, { "cat", cmd_cat }, { "dump", cmd_dump },
		{ "to-npy", cmd_to_npy }, { "from-npy", cmd_from_npy },
	};
	if (argc < 2)
		die_usage(NULL);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		printf("usage: %s\n", USAGE);
		return 0;
	}
	for (size_t k = 0; k < sizeof CMDS / sizeof CMDS[0]; k++)
		if (strcmp(argv[1], CMDS[k].name) == 0)
			return CMDS[k].fn(argc - 1, argv + 1);
	die_usage("unknown command '%s'", argv[1]);
}
