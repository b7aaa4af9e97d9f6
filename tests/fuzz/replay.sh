#!/bin/sh
# Run a fuzz harness once over every file of the given directories (its
# seed corpus and its reproducers): no fuzzing, no new files written. Any
# crash, leak or sanitizer report fails. Usage: replay.sh HARNESS DIR...
set -eu
bin=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in "$@"; do
	if [ -d "$d" ]; then
		find "$d" -type f ! -name '.*' >>"$tmp/list"
	fi
done
touch "$tmp/list"
n=$(wc -l <"$tmp/list")
if [ "$n" -eq 0 ]; then
	echo "replay: no inputs for $(basename "$bin")" >&2
	exit 1
fi
# Files, not directories, on the command line: libFuzzer runs each once.
# -timeout: an input that hangs fails instead of stalling the suite.
rc=0
xargs -d '\n' "$bin" -timeout=20 -rss_limit_mb=2048 <"$tmp/list" \
	>"$tmp/out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
	grep -v '^Running: \|^Executed .* in [0-9]* ms$' "$tmp/out" | tail -n 80
fi
echo "replay: $(basename "$bin"): $n inputs, exit $rc"
exit "$rc"
