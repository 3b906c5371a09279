// A folder of images as a dataset, in fast.ai's layout: DIR/<class>/<image>
// (labelled: each folder is a class) or DIR/<image> (flat, unlabelled).
// Names starting with '.' are left out.  Any other entry of a class folder
// (or of a flat folder) that is no regular file, a symbolic link that leads
// nowhere or round a loop included, is an entry of the dataset that is no
// image: it has its place in the order and the reason it is none.
#ifndef CNNPIPE_DATASET_H
#define CNNPIPE_DATASET_H
#include <stddef.h>
#include <stdint.h>
#include "libcommon/util/classes.h"

typedef struct {
	char *dir;        // as given
	char **rel;       // image paths relative to dir, in record order
	int32_t *label;   // each image's class index; -1 when unlabelled
	char **why;       // NULL for a regular file, else why rel[i] is no image
	size_t n;
	int labelled;
} Dataset;

// Finds the images under dir.  classes: when not empty, the fixed label order
// (every class folder must be in it); when empty, filled with the class
// folders' names sorted bytewise.  Images come class by class in label
// order, file names sorted bytewise within a class (or within dir, flat).
// Dies on a folder holding both files and folders, a folder with no regular
// files, a class folder not in the list, a class folder name that is no
// class name (libcommon/util/classes.h), and an entry of a folder of class
// folders that is neither (names escaped in the messages, as text_escape).
void dataset_scan(Dataset *ds, const char *dir, ClassList *classes);
// The path of image i: dir/rel[i] (malloc'd).
char *dataset_path(const Dataset *ds, size_t i);
void dataset_free(Dataset *ds);

#endif
