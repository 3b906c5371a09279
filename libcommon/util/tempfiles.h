// Temporary files that must not outlive the program: each registered name
// is removed at exit and on a fatal signal (signals.h), unless it has been
// forgotten first (renamed into place, or removed).  Only SIGKILL, or a
// crash of the machine, can leave one behind.
#ifndef CNNPIPE_TEMPFILES_H
#define CNNPIPE_TEMPFILES_H

// Creates a new file from `templ` (ending in "XXXXXX", replaced as by
// mkostemp) and registers it, with fatal signals blocked in between, so no
// signal can slip in between creating and registering.  Returns the
// descriptor (O_CLOEXEC, mode 0600), or -1 with errno set (ENAMETOOLONG
// for a name longer than PATH_MAX).
int tempfile_create(char *templ, int *slot);
// Forgets slot (-1 is ignored): the file is kept from now on.
void tempfile_forget(int slot);

#endif
