#!/bin/bash
# run.sh BUILD SECONDS NAME... — `make fuzz`: each libFuzzer target
# BUILD/NAME_fuzz in turn (one at a time: the machine's cores are shared)
# for SECONDS, growing a working corpus in BUILD/corpus/NAME seeded from
# tests/fuzz/corpus/NAME (the repository's seeds are never written to),
# with tests/fuzz/NAME.dict when there is one. Crash, leak and timeout
# inputs go to BUILD/artifacts/NAME/. Prints a table: executions, corpus
# size and crashes per target; exit 1 if any target crashed.
# FUZZ_RUNS=N stops each target after N executions instead (SECONDS still
# bounds it): how a campaign reaches a set count per target.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$1 secs=$2; shift 2
declare -A extra=() # per-target libFuzzer flags, none needed today
rows=() bad=0
for name in "$@"; do
	bin=$build/${name}_fuzz work=$build/corpus/$name art=$build/artifacts/$name
	mkdir -p "$work" "$art"
	cp -n tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null
	dict=(); [ -f tests/fuzz/"$name".dict ] && dict=(-dict=tests/fuzz/"$name".dict)
	log=$build/$name.log
	echo "== fuzz $name (${secs}s)"
	runs=(); [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
	"$bin" -max_total_time="$secs" "${runs[@]}" -artifact_prefix="$art/" -print_final_stats=1 \
		${extra[$name]:-} "${dict[@]}" "$work" >"$log" 2>&1
	rc=$?
	execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
	crashes=$(find "$art" -type f | wc -l)
	[ $rc -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1 # died without an artifact
	[ "$crashes" -gt 0 ] && { bad=1; grep -E 'ERROR|invariant|SUMMARY' "$log" | head -5; }
	rows+=("$(printf '%-10s %14s %8s %8s' "$name" "${execs:-?}" "$(ls "$work" | wc -l)" "$crashes")")
done
printf '%-10s %14s %8s %8s\n' target executions corpus crashes
printf '%s\n' "${rows[@]}"
[ $bad -eq 0 ] || echo "crash inputs: $build/artifacts/ (logs: $build/NAME.log)"
exit $bad
