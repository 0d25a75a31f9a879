#!/usr/bin/env bash
# run.sh runs every native Go fuzz target of berth (each func FuzzXxx(f
# *testing.F) in a _test.go file), one after the other, for the duration
# given (default 10s) each, and prints how many inputs each one tried. It
# fails if any target fails; a failing input is kept by go test under the
# package's testdata/fuzz/FuzzXxx/, to commit with the fix.
#
#   test/fuzz/run.sh [duration]
#
# FUZZ_MINIMIZE_TIME (default 1s) bounds the minimisation of each new
# input: go test's default of 60s would take most of a short run, and the
# executions a worker spends minimising are not counted.
set -euo pipefail

duration=${1:-10s}
minimize=${FUZZ_MINIMIZE_TIME:-1s}
go=${GO:-go}
cd "$(dirname "$0")/../.."

# package directory and target name, one pair a line
targets=$(grep -rE --include='*_test.go' --exclude-dir=.git --exclude-dir=bin \
	'^func Fuzz[[:alnum:]_]*\([[:alnum:]_]+ \*testing\.F\)' . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[[:alnum:]_]*)\(.*|\1 \2|' | sort)
if [ -z "$targets" ]; then
	echo "no fuzz targets found" >&2
	exit 1
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=0
printf '%-32s %-20s %12s\n' target package executions
while read -r dir name; do
	log="$logs/${dir//\//_}.$name"
	# -timeout 0: the test binary's 10-minute default would cut a longer
	# run; fuzzing stops at -fuzztime by itself.
	status=ok
	if ! "$go" test -run '^$' -fuzz "^$name\$" -fuzztime "$duration" -fuzzminimizetime "$minimize" \
		-parallel 2 -timeout 0 "./$dir" >"$log" 2>&1 </dev/null; then
		status=FAILED
		# Go before 1.27 can fail a run that merely reached -fuzztime
		# (go.dev/issue/75804): "context deadline exceeded" right under
		# the target's FAIL line, and no failing input written.
		if grep -A1 "^--- FAIL: $name (" "$log" | tail -n 1 | grep -qx '[[:space:]]*context deadline exceeded' &&
			! grep -q 'Failing input written' "$log"; then
			status="ok (go.dev/issue/75804 at the deadline)"
		else
			failed=$((failed + 1))
		fi
	fi
	# the last progress line counts them all: "fuzz: elapsed: 10s, execs: 1234 (123/sec), ..."
	execs=$(grep -E '^fuzz: elapsed: .*, execs: [0-9]+' "$log" | tail -n 1 | sed -E 's/.*, execs: ([0-9]+).*/\1/' || true)
	printf '%-32s %-20s %12s %s\n' "$name" "$dir" "${execs:-?}" "$status"
	if [ "$status" = FAILED ]; then
		tail -n 40 "$log" | sed 's/^/    /'
	fi
done <<<"$targets"

if [ "$failed" -gt 0 ]; then
	echo "$failed fuzz target(s) failed" >&2
	exit 1
fi
