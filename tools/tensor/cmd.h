// tensor(1)'s subcommands (tools/tensor/<name>.c) and what they share
// (tools/tensor/common.c).  Each cmd_* gets argv from the subcommand's name
// on and returns main's exit status.
#ifndef CNNPIPE_TENSOR_CMD_H
#define CNNPIPE_TENSOR_CMD_H
#include <getopt.h>
#include <stddef.h>
#include "formats/stream.h"
#include "libcommon/util/strmap.h"

int cmd_info(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_meta(int argc, char **argv);
int cmd_head(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_to_npy(int argc, char **argv);
int cmd_from_npy(int argc, char **argv);

// Parses the options of one command; `opts` is a getopt string, `on` gets
// each option.  Returns the index of the first operand in argv.
int cmd_getopt(int argc, char **argv, const char *opts, const struct option *lo,
               void (*on)(int c, const char *arg));
void no_opts(int c, const char *arg);
// The one optional input operand of a command ("-" when absent).
const char *one_input(int argc, char **argv, int i);
// Dies when a binary stream would go to a terminal.
void check_stream_out(const char *out);
// Prints s escaped as text_escape (libcommon/util/escape.h) does; at most
// `max` bytes (0 = all), then " ... (N bytes)".
void print_escaped(const char *s, size_t max);
// tensor(1)'s form of a shape: "(3,224,224)".
#define SHAPE(t, buf) tensor_shape_str((t), ",", (buf), sizeof (buf))

// The schema of a record: tensor names in order, dtypes and shapes (the
// length of a str tensor may vary).
typedef struct {
	int n;
	Tensor *t;   // copies of the descriptors, data pointers unused
} Schema;
void schema_take(Schema *s, const Record *r);
// NULL when r matches, else what differs (in buf).  any_dims: dimensions
// may vary (not their number): the images of imgprep --scale.
const char *schema_diff(const Schema *s, const Record *r, int any_dims, char *buf,
                        size_t cap);

// A copy of a stream's header metadata (taken right after opening), hashed
// so that comparing two headers of n keys costs O(n).
void kv_take_header(StrMap *kv, const Stream *s);

#endif
