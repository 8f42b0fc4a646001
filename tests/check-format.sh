#!/bin/bash
# check-format.sh — every C file of ours as clang-format (the repository's
# .clang-format) would write it: one result per file, then
# "check-format: N passed, N failed" (exit 1 on any failure). `make format`
# rewrites them. Fixtures in other languages are not ours to format.
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
	echo "check-format: clang-format is not installed (.ci/deps.sh installs it)"
	echo "check-format: 0 passed, 1 failed"
	exit 1
fi
passed=0 failed=0
while read -r f; do
	if clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL $f: not formatted ($(clang-format "$f" | diff "$f" - | grep -c '^[<>]') lines differ; make format)"
	fi
done < <(git ls-files '*.c' '*.h')
echo "check-format: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
