/* grow.h — arrays that grow by doubling (prefix grow_): the caller owns
 * the pointer, the count and the capacity; grow_room makes room for one
 * more element. What must stay true: on failure nothing the caller holds
 * changes (the array, its elements and its capacity are as they were), so
 * a caller can report what it could not store and go on. */
#ifndef MOONSHIM_GROW_H
#define MOONSHIM_GROW_H

#include "err.h"

#include <stddef.h>

/* Room for element n (the count) of an array of elem-byte elements at arr
 * with capacity *cap: arr itself while n < *cap, else arr moved to twice
 * *cap elements (first when *cap is 0) and *cap updated. NULL, with
 * -ENOMEM in err, when that memory cannot be had or its size overflows. */
void *grow_room(void *arr, size_t *cap, size_t n, size_t elem, size_t first, ms_err *err);

#endif
