#!/usr/bin/env bash
# Engine bench A/B: two builds alternating, each run on its own private
# durable cluster (`bench -only engine -durable`, the parts in
# BENCH_ENGINE_PARTS, default delivery,drain). Each build is compiled from its
# git revision in a scratch worktree. REV_B may equal REV_A with B_SETUP_SQL
# set: then B's runs apply it through BENCH_SETUP_SQL (a schema or setting
# measured before it becomes a migration). The lines go to stdout with the
# load average before each run (the files bench/results/engine-*-ab.txt).
#
#   bench/engine-ab.sh REV_A REV_B [ROUNDS, default 3]
#   B_SETUP_SQL='ALTER FUNCTION ...' bench/engine-ab.sh REV REV
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,11p "$0"; exit 2; }
a=$1 b=$2 rounds=${3:-3}
parts=${BENCH_ENGINE_PARTS:-delivery,drain}
work=$(mktemp -d)
trap 'rm -rf "$work"; git worktree prune' EXIT # a failed build leaves no worktree registered
for rev in "$a" "$b"; do
	[ -x "$work/bench-$rev" ] && continue
	git worktree add -q --detach "$work/src" "$rev"
	(cd "$work/src" && go build -o "$work/bench-$rev" ./bench)
	git worktree remove --force "$work/src"
done
for r in $(seq "$rounds"); do
	for v in A B; do
		rev=$a setup=
		if [ $v = B ]; then rev=$b setup=${B_SETUP_SQL:-}; fi
		echo "== $v ($rev) round $r load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%H:%M:%S)"
		BENCH_SETUP_SQL="$setup" BENCH_ENGINE_PARTS="$parts" "$work/bench-$rev" -only engine -durable \
			-results "$work/results" 2>&1 | grep -E '^(delivery|drain|latency)'
	done
done
