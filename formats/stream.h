// The cnnpipe tensor stream: reader and writer.  The bytes are specified in
// man/man5/cnnpipe-tensor.5; this is the one implementation every tool uses.
//
// A stream is: a preamble (magic, version), a header chunk (key/value
// metadata), any number of record chunks (each a set of named tensors), and
// an end chunk (the record count and trailing metadata).  Every chunk is
// 64-byte aligned and carries its length and a CRC-32.
#ifndef CNNPIPE_STREAM_H
#define CNNPIPE_STREAM_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "libcommon/util/tensor.h"

// Caps the reader enforces before allocating anything (see cnnpipe-tensor(5)).
#define STREAM_MAX_DESC_BYTES   (16u << 20)   // the descriptor of any chunk
#define STREAM_META_ENTRY_MIN   9             // bytes of the smallest metadata entry
// Entries in one header or end chunk: as many as the descriptor can hold.
#define STREAM_MAX_META_ENTRIES (STREAM_MAX_DESC_BYTES / STREAM_META_ENTRY_MIN)
#define STREAM_MAX_TENSORS      65536         // tensors in one record
#define STREAM_MAX_RECORD_BYTES RECORD_MAX_BYTES   // one record chunk

typedef struct Stream Stream;

// Reading.  Functions return NULL / -1 on failure and leave a message that
// names the file and byte offset in stream_error(s) (stream_open_* failures:
// stream_last_error()).
Stream *stream_open_read(const char *path);       // "-" = stdin
Stream *stream_open_mem(const void *buf, size_t len, const char *name);
const char *stream_last_error(void);
const char *stream_error(const Stream *s);
const char *stream_path(const Stream *s);
// 1: a record was read into r; 0: clean end of stream; -1: error.
int stream_read_record(Stream *s, Record *r);
uint64_t stream_count(const Stream *s);  // records read / written so far
// Reading a file by index: stream_tell is the byte offset of the next chunk
// (after stream_open_read, the first record's; before each
// stream_read_record, that record's).  stream_seek_record positions a read
// stream at the record chunk at `offset` that is record `index` (both as
// stream_tell and stream_count gave them), so that stream_read_record reads
// it next, with every check; a failed or ended stream can be repositioned.
// -1 (with stream_error) on a stream that cannot seek (a pipe, a stream
// being written) or an offset not a multiple of 64 or past a memory
// stream's end.
uint64_t stream_tell(const Stream *s);
int stream_seek_record(Stream *s, uint64_t offset, uint64_t index);
// Moves past the next record of a file or memory stream reading only its
// chunk header (tag, length, sequence number; its data and CRC are not
// read, so not checked): 1, or 0 at the end chunk (read and checked, as
// stream_read_record does), or -1.  Counting a file's records costs a
// header per record, not the file.
int stream_skip_record(Stream *s);
// A read stream ends (stream_read_record returns 0, a clean end) before
// record `index`, as if its records stopped there: how a shard is read.
void stream_stop_at(Stream *s, uint64_t index);

// Metadata: the header's, then the end chunk's once it has been read (the
// two share no key: a stream whose end chunk repeats a header key is
// refused, so a value read at open holds for the whole stream).
const char *stream_meta_get(const Stream *s, const char *key);
int stream_meta_len(const Stream *s);
const char *stream_meta_key(const Stream *s, int i);
const char *stream_meta_val(const Stream *s, int i);
// The end chunk's metadata alone: for a read stream once the end chunk has
// been read (empty before), for a write stream the keys set after the header
// went out.
int stream_trailer_len(const Stream *s);
const char *stream_trailer_key(const Stream *s, int i);
const char *stream_trailer_val(const Stream *s, int i);

// Writing.  A file is written under a temporary name and renamed into place
// by stream_finish; "-" writes stdout.
Stream *stream_open_write(const char *path);
// Before the first record the key goes into the header, afterwards into the
// end chunk.  Setting a key again in the same chunk replaces its value; a
// key in both chunks, an invalid key, a value that is not UTF-8, or
// metadata over the descriptor cap dies naming the file.
void stream_meta_set(Stream *s, const char *key, const char *val);
void stream_meta_setf(Stream *s, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
// Always into the end chunk, even when no record has been written yet (for
// totals known only at the end, such as imgprep's `skipped`).
void stream_meta_set_end(Stream *s, const char *key, const char *val);
// Copies all metadata of src (as read so far) into s.
void stream_meta_copy(Stream *s, const Stream *src);
// Writes the preamble and header now (stream_write_record does it before
// the first record): keys set afterwards go into the end chunk, even when no
// record follows.
int stream_write_header(Stream *s);
int stream_write_record(Stream *s, const Record *r);
// Writes the end chunk, flushes, renames into place; frees s.  -1 on error.
int stream_finish(Stream *s);
// Closes a read stream, or abandons a write stream (its temporary file is
// removed); frees s.
void stream_close(Stream *s);

// Die-on-error forms for tools: "prog: <file>: byte N: <what is wrong>".
Stream *xstream_open_read(const char *path);
Stream *xstream_open_write(const char *path);
int xstream_read_record(Stream *s, Record *r);   // 1 or 0
void xstream_write_record(Stream *s, const Record *r);
void xstream_write_header(Stream *s);
void xstream_finish(Stream *s);

#endif
