#!/bin/bash
# idle_path.sh BIN — the link laid out the idle path as shim/idle_path_ld.sh
# means it to (BIN: build/moonshim): a .text.idle_path section first in the
# code, and every function of BIN named in shim/idle_path.syms inside it
# (GCC's clones of it too; its .cold parts belong elsewhere). A listed
# function found outside means the generated script no longer matches how
# the code is compiled or archived, and the settled shim's memory grows
# back by 64 kB windows; a listed name absent from BIN (inlined, renamed)
# is only counted.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/moonshim}
LIST=shim/idle_path.syms
passed=0 failed=0
ok() { echo "  ok   $1"; passed=$((passed + 1)); }
bad() { echo "  FAIL $1"; failed=$((failed + 1)); }

# section NAME: "START END" of BIN's section NAME (hex), empty if absent
section() {
	local addr size
	read -r addr size < <(readelf -SW "$BIN" | sed 's/\[ */[/' | awk -v n="$1" '$2 == n {print $4, $6}')
	[ -n "${addr:-}" ] && echo "$((16#$addr)) $((16#$addr + 16#$size))"
}
idle=$(section .text.idle_path)
text=$(section .text)
if [ -n "$idle" ] && [ -n "$text" ] && [ "${idle#* }" -le "${text% *}" ]; then
	ok "idle_path_section_precedes_text ($(((${idle#* } - ${idle% *}) / 1024)) kB)"
else
	bad "idle_path_section_precedes_text: .text.idle_path '$idle', .text '$text'"
fi

report=$(nm -t d --defined-only "$BIN" | awk -v lo="${idle% *}" -v hi="${idle#* }" '
	NR == FNR { sub(/#.*/, ""); if ($1 != "") want[$1] = 1; next }
	$2 ~ /^[TtWw]$/ {
		name = $3
		if (name ~ /\.cold(\.[0-9]+)?$/) next
		gsub(/\.(lto_priv|constprop|isra|part)(\.[0-9]+)?/, "", name)
		if (!(name in want)) next
		seen[name] = 1
		a = $1 + 0
		if (a < lo || a >= hi) out[name] = 1
	}
	END {
		for (n in want) if (!(n in seen)) absent++
		for (n in out) outside = outside " " n
		printf "%d %d%s\n", length(seen), absent, outside
	}' "$LIST" -)
read -r placed absent outside <<<"$report"
if [ -z "$outside" ] && [ "$placed" -gt 0 ]; then
	ok "listed_functions_placed ($placed in the section, $absent listed names not in $BIN)"
else
	bad "listed_functions_placed: outside .text.idle_path:${outside:- none placed}"
fi
echo "idle-path: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
