/* fsutil.c — one write(2) to a kernel file, mkdir with parents. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_write_file(const char *path, const char *text, const char *what, ms_err *err) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ms_fail(err, -errno, "%s: %s: %s", what, path, strerror(errno));
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	int e = w < 0 ? errno : EIO;
	close(fd);
	if (w != (ssize_t)len)
		return ms_fail(err, -e, "%s: writing %s: %s", what, path,
		               w < 0 ? strerror(e) : "short write");
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, ms_err *err) {
	char dir[PATH_MAX];
	if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir)
		return ms_fail(err, -ENAMETOOLONG, "mkdir %s: path too long", path);
	for (char *p = dir + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(dir, mode) < 0 && errno != EEXIST) {
			int e = errno;
			return ms_fail(err, -e, "mkdir %s: %s", dir, strerror(e));
		}
		*p = c;
		if (!c)
			return 0;
	}
}
