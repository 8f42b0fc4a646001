/* grow.c — arrays that grow by doubling (grow.h). */
#include "grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

void *grow_room(void *arr, size_t *cap, size_t n, size_t elem, size_t first, ms_err *err) {
	if (n < *cap)
		return arr;
	size_t mul = *cap ? 2 : 1, want = *cap ? *cap : first;
	if (!want || !elem || want > SIZE_MAX / mul / elem) {
		ms_fail(err, -ENOMEM, "an array of %zu elements of %zu bytes cannot grow", *cap,
		        elem);
		return NULL;
	}
	want *= mul;
	void *a = realloc(arr, want * elem);
	if (!a) {
		ms_fail(err, -ENOMEM, "out of memory for %zu elements of %zu bytes", want, elem);
		return NULL;
	}
	*cap = want;
	return a;
}
