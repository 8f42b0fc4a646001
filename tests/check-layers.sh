#!/bin/bash
# check-layers.sh — `make check-layers`: every #include "..." in shim/
# against the layering (README, "Source layout"). One check per file; it
# passes when each quoted include is
#   - a header of the file's own folder,
#   - the public header of a folder the file's folder may use (the USES_<dir>
#     lines of the Makefile, the same table the per-folder include paths
#     come from; shim/main.c is "main"),
#   - cgroup.h, or rt.h except from oci/ (its calls are made single-threaded;
#     spawn/ runs them from goroutines),
#   - protobuf-c's generated headers (*.pb-c.h), from containerd/ only.
# Prints one line per forbidden include and "check-layers: N passed, N failed".
#   bash tests/check-layers.sh [ROOT]      (default: the repository)
cd "${1:-$(dirname "$0")/..}" || exit 2

# the one header each folder offers the others
declare -A PUBLIC=([base]=base.h [oci]=oci.h [io]=io.h [spawn]=forkhelper.h [go]=gowatch.h
	[lua]=luaengine.h [supervise]=supervise.h [cli]=commands.h [containerd]=containerd.h)
NO_RUNTIME=" oci "

# USES_<dir> from the Makefile, $(USES_x) references expanded
declare -A USES
while read -r name rest; do
	USES[$name]=$rest
done < <(sed -nE 's/^USES_([a-z]+)[[:space:]]*:=[[:space:]]*(.*)$/\1 \2/p' Makefile)
expand() { # dir -> the folders it may use, one line
	local w out=""
	for w in ${USES[$1]}; do
		if [[ $w =~ ^\$\(USES_([a-z]+)\)$ ]]; then out+=" $(expand "${BASH_REMATCH[1]}")"; else out+=" $w"; fi
	done
	echo "$out"
}
[ ${#USES[@]} -gt 0 ] || { echo "check-layers: no USES_ table in the Makefile"; echo "check-layers: 0 passed, 1 failed"; exit 1; }

# which folder holds each shim header
declare -A HOME_OF
for h in shim/*/*.h; do
	b=${h##*/}
	[ -n "${HOME_OF[$b]}" ] && echo "note: $b is in shim/${HOME_OF[$b]} and ${h%/*}"
	HOME_OF[$b]=$(basename "$(dirname "$h")")
done

passed=0 failed=0
for f in shim/main.c shim/*/*.[ch]; do
	if [ "$f" = shim/main.c ]; then dir=main; else dir=$(basename "$(dirname "$f")"); fi
	allowed=" $(echo $(expand "$dir")) "
	bad=0
	while IFS=: read -r line inc; do
		why=""
		home=${HOME_OF[$inc]}
		if [ "$home" = "$dir" ] && [ -e "shim/$dir/$inc" ]; then
			:
		elif [ "$inc" = cgroup.h ]; then
			:
		elif [ "$inc" = rt.h ]; then
			[[ $NO_RUNTIME == *" $dir "* ]] && why="$dir/ does not use the runtime"
		elif [[ $inc == *.pb-c.h ]]; then
			[ "$dir" = containerd ] || why="the generated protobuf code is containerd's"
		elif [ -n "$home" ]; then
			if [[ $allowed != *" $home "* ]]; then
				why="$dir/ may not use $home/ (it may use:${allowed% })"
			elif [ "$inc" != "${PUBLIC[$home]}" ]; then
				why="$home/'s public header is ${PUBLIC[$home]}"
			fi
		else
			why="no such header in shim/, cgroup/ or runtime/"
		fi
		if [ -n "$why" ]; then
			echo "$f:$line: #include \"$inc\": $why"
			bad=1
		fi
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
		sed -E 's/^([0-9]+):.*"([^"]+)".*/\1:\2/')
	if [ $bad = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "check-layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
