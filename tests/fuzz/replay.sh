#!/bin/bash
# replay.sh BUILD — `make test`'s fuzz-replay suite: every libFuzzer target
# BUILD/NAME_fuzz runs once over each input of tests/fuzz/corpus/NAME (the
# seeds and every crash input a fix was made for; -runs=0 executes the
# given inputs and stops). A target passes when no input crashes, leaks or
# breaks an invariant. Prints "fuzz-replay: N passed, N failed".
cd "$(dirname "$0")/../.."
build=${1:-build/fuzz}
passed=0 failed=0
for dir in tests/fuzz/corpus/*/; do
	name=$(basename "$dir")
	bin=$build/${name}_fuzz
	n=$(ls "$dir" | wc -l)
	if [ ! -x "$bin" ]; then
		echo "FAIL $name: $bin not built"; failed=$((failed + 1)); continue
	fi
	log=$(mktemp)
	if "$bin" -runs=0 "$dir" >"$log" 2>&1; then
		echo "ok   $name ($n inputs)"; passed=$((passed + 1))
	else
		echo "FAIL $name:"; grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$log" | sed 's/^/    | /'
		failed=$((failed + 1))
	fi
	rm -f "$log"
done
echo "fuzz-replay: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
