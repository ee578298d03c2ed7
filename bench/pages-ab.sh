#!/usr/bin/env bash
# Pages bench A/B: two builds of the app, alternating, on one database filled
# by `unifi gen` (the machine's speed drifts by a third between hours, so only
# alternating runs compare). Each build is compiled from its git revision in
# a scratch worktree; results go to a scratch folder, the lines to stdout with
# the load average before each run (the files bench/results/pages-*-ab.txt).
#
#   bench/pages-ab.sh REV_A REV_B 'postgres://user@host:port/db?sslmode=disable' [ROUNDS, default 3]
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,8p "$0"; exit 2; }
a=$1 b=$2 db=$3 rounds=${4:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"; git worktree prune' EXIT # a failed build leaves no worktree registered
for rev in "$a" "$b"; do
	git worktree add -q --detach "$work/src" "$rev"
	(cd "$work/src" && go build -o "$work/bench-$rev" ./bench)
	git worktree remove --force "$work/src"
done
mkdir -p "$work/data"
for r in $(seq "$rounds"); do
	for rev in "$a" "$b"; do
		echo "== $rev round $r load $(cut -d' ' -f1 /proc/loadavg) $(date -u +%H:%M:%S)"
		DATA_DIR="$work/data" "$work/bench-$rev" -only pages -pages-db "$db" -results "$work/results" 2>&1 |
			grep '^page ' | sort -u
	done
done
