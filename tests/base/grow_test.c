/*
 * grow_test.c — grow_room (shim/base/grow.c): an array grown one element
 * at a time keeps every element it was given, doubling from its first
 * capacity; a size that cannot be had is -ENOMEM with a message, and the
 * caller's array and capacity are left as they were.
 */
#include "harness.h"

#include "../../shim/base/grow.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define APPENDS 100000 /* many doublings (16 → 131072) */
#define FIRST   16

TEST(grow_keeps_every_element_across_doublings) {
	long *a = NULL;
	size_t n = 0, cap = 0, grew = 0;
	ms_err err = {0};
	for (long i = 0; i < APPENDS; i++) {
		size_t before = cap;
		long *b = grow_room(a, &cap, n, sizeof *a, FIRST, &err);
		CHECKF(b, "append %ld: %s", i, err.msg);
		a = b;
		CHECK(n < cap);
		if (cap != before) {
			CHECKF(cap == (before ? before * 2 : FIRST), "capacity %zu after %zu", cap,
			       before);
			grew++;
		}
		a[n++] = i * 7;
	}
	CHECK(err.code == 0);
	CHECKF(grew == 14, "grew %zu times", grew); /* 16 · 2^13 = 131072 ≥ 100000 */
	for (long i = 0; i < APPENDS; i++)
		CHECKF(a[i] == i * 7, "element %ld is %ld", i, a[i]);
	free(a);
}

TEST(grow_no_move_while_there_is_room) {
	char buf[4];
	size_t cap = sizeof buf;
	ms_err err = {0};
	for (size_t n = 0; n < sizeof buf; n++)
		CHECK(grow_room(buf, &cap, n, 1, FIRST, &err) == buf);
	CHECK(cap == sizeof buf && err.code == 0);
}

TEST(grow_overflowing_size_is_enomem_and_leaves_the_array) {
	int *a = malloc(sizeof *a);
	CHECK(a);
	*a = 42;
	size_t cap = 1;
	ms_err err = {0};
	/* twice one element of SIZE_MAX/2 + 1 bytes does not fit in a size_t */
	CHECK(grow_room(a, &cap, 1, SIZE_MAX / 2 + 1, FIRST, &err) == NULL);
	CHECKF(err.code == -ENOMEM, "code %d", err.code);
	CHECKF(strstr(err.msg, "cannot grow"), "message: %s", err.msg);
	CHECK(cap == 1 && *a == 42);
	free(a);
}

#ifndef __SANITIZE_ADDRESS__ /* ASan aborts on a request this size */
TEST(grow_unallocatable_size_is_enomem_and_leaves_the_array) {
	int *a = malloc(sizeof *a);
	CHECK(a);
	*a = 42;
	size_t cap = 1;
	ms_err err = {0};
	/* 2 × 2^60 bytes: no overflow, but no machine has it */
	CHECK(grow_room(a, &cap, 1, (size_t)1 << 60, FIRST, &err) == NULL);
	CHECKF(err.code == -ENOMEM, "code %d", err.code);
	CHECKF(strstr(err.msg, "out of memory for 2 elements"), "message: %s", err.msg);
	CHECK(cap == 1 && *a == 42);
	free(a);
}
#endif
