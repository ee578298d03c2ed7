#!/usr/bin/env bash
# Bound on the bond's row lock (bench/results/engine-bond-lock-bound.txt):
# pgbench, one client, alternating, each transaction updates a row (as a
# recording does, so it has an xid either way) and then, for 10 bonds:
#   base: reads them; row: reads and locks them FOR UPDATE (queue.LockBonds);
#   adv: pg_advisory_xact_lock on each id instead (no read, no lock written).
# It prints pgbench's latency and the WAL written per transaction. Run it on a
# database filled by `unifi gen` (bonds 1..1,000 exist), with
# synchronous_commit off so that CPU, not the disk, sets the rate.
#
#   bench/bond-lock-bound.sh 'postgres://user@host:port/db?sslmode=disable' [ROUNDS, default 3] [SECONDS, default 8]
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,11p "$0"; exit 2; }
db=$1 rounds=${2:-3} secs=${3:-8}
pgbench=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -1)
q() { PGOPTIONS="-c client_min_messages=warning" psql "$db" -Atqc "$1"; }
work=$(mktemp -d)
trap 'rm -rf "$work"; q "DROP TABLE IF EXISTS bond_lock_bound"' EXIT
q "DROP TABLE IF EXISTS bond_lock_bound; CREATE TABLE bond_lock_bound (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
	INSERT INTO bond_lock_bound SELECT g FROM generate_series(1, 1000) g"
script() { # name, the statement on bonds :b .. :b + 9
	printf '%s\n' '\set b random(1, 990)' 'BEGIN;' 'UPDATE bond_lock_bound SET n = n + 1 WHERE id = :b;' "$2" 'COMMIT;' >"$work/$1.sql"
}
script base 'SELECT id FROM bonds WHERE id BETWEEN :b AND :b + 9 ORDER BY id;'
script row 'SELECT id FROM bonds WHERE id BETWEEN :b AND :b + 9 ORDER BY id FOR UPDATE;'
script adv 'SELECT count(pg_advisory_xact_lock(g)) FROM generate_series(:b, :b + 9) g;'
for r in $(seq "$rounds"); do
	for v in base row adv; do
		l0=$(q "SELECT pg_current_wal_lsn()")
		out=$("$pgbench" -n -M prepared -T "$secs" -c 1 -f "$work/$v.sql" "$db" 2>&1)
		l1=$(q "SELECT pg_current_wal_lsn()")
		n=$(sed -n 's/number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
		lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
		echo "round $r $v: $n tx, latency $lat ms, wal $(q "SELECT round(pg_wal_lsn_diff('$l1', '$l0') / $n)") B/tx"
	done
done
