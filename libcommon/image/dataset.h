// A folder of images as a dataset, in fast.ai's layout: DIR/<class>/<image>
// (labelled: each folder is a class) or DIR/<image> (flat, unlabelled).
// Names starting with '.' are skipped; other entries that are neither
// regular files nor (at the top) folders are skipped with a warning.
#ifndef CNNPIPE_DATASET_H
#define CNNPIPE_DATASET_H
#include <stddef.h>
#include <stdint.h>
#include "libcommon/util/classes.h"

typedef struct {
	char *dir;        // as given
	char **rel;       // image paths relative to dir, in record order
	int32_t *label;   // each image's class index; -1 when unlabelled
	size_t n;
	int labelled;
} Dataset;

// Finds the images under dir.  classes: when not empty, the fixed label order
// (every class folder must be in it); when empty, filled with the class
// folders' names sorted bytewise.  Images come class by class in label
// order, file names sorted bytewise within a class (or within dir, flat).
// Dies on a folder holding both files and folders, a folder with no images,
// a class folder not in the list or a class folder name that is no class
// name (libcommon/util/classes.h).
void dataset_scan(Dataset *ds, const char *dir, ClassList *classes);
// The path of image i: dir/rel[i] (malloc'd).
char *dataset_path(const Dataset *ds, size_t i);
void dataset_free(Dataset *ds);

#endif
