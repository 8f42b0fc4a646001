/* fsutil.c — one write(2) to a kernel file, a bounded whole-file read, mkdir with parents. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
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

char *fs_read_file(const char *path, size_t max, size_t *len, ms_err *err) {
	FILE *f = fopen(path, "re");
	if (!f) {
		ms_fail(err, -errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = NULL, chunk[8192];
	size_t n, cap = 0;
	*len = 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (*len + n > max) {
			ms_fail(err, -EFBIG, "%s: larger than %zu bytes", path, max);
			goto fail;
		}
		if (*len + n + 1 > cap) {
			cap = (*len + n + 1) * 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				ms_fail(err, -ENOMEM, "%s: out of memory", path);
				goto fail;
			}
			buf = nb;
		}
		memcpy(buf + *len, chunk, n);
		*len += n;
	}
	if (ferror(f)) {
		ms_fail(err, -EIO, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	if (!buf && !(buf = malloc(1))) {
		ms_fail(err, -ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	buf[*len] = 0;
	return buf;
fail:
	free(buf);
	fclose(f);
	return NULL;
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

bool fs_proc_stat(pid_t pid, char *state, unsigned long long *start) {
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command may hold spaces and parens */
	if (!p || !p[1] || !p[2])
		return false;
	*state = p[2];
	char *q = p + 2;
	for (int f = 3; f < 22 && q; f++) {
		q = strchr(q, ' ');
		if (q)
			q++;
	}
	*start = q ? strtoull(q, NULL, 10) : 0;
	return true;
}
