#!/bin/bash
# Diagnostics for "Many instances on Redis" (bench/RESULTS.md): where the time and CPU go.
# Same environment and quiet gate as run.sh; results in diag-*.json, log in run-log.txt.
set -u
out=${OUT:-bench/results/redis}
log=$out/run-log.txt
source <(sed -n '/^busy()/,/^}/p;/^quiet()/,/^}/p' "$(dirname "$0")/run.sh")
run() { # name, args…
  local name=$1; shift
  quiet
  echo "== $name $(date -u +%H:%M:%S) $* [load $(cut -d' ' -f1 /proc/loadavg), busy $last % in the last 10 s]" >> $log
  local t0=$(date +%s.%N)
  node dist/bench/main.js "$@" --json > $out/$name.json 2>> $log
  echo "exit $? $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.2f') s" >> $log
}
echo "== diagnostics $(date -u '+%F %H:%M:%S') in $PWD, commit ${COMMIT:-$(git rev-parse --short HEAD)}" >> $log
if [ "${1:-}" = more ]; then # two more runs of the 30-client hop measurement (the first two were busy)
  for rep in 3 4; do
    run diag-fanout-30-e200-$rep fanout --clients 30 --events 200 --targets shardcast,shardcast-redis1,shardcast-redis3
  done
  echo "== diagnostics done $(date -u +%H:%M:%S)" >> $log
  exit 0
fi
# Redis's own round trip from a client on this machine, for 10 s.
echo "== redis-cli --latency (10 s): $(timeout 10 redis-cli --latency --raw 2>&1 | tail -1)" >> $log
# The hop alone: 30 clients, so fan-out work and CPU contention are small.
for rep in 1 2; do
  run diag-fanout-30-e200-$rep fanout --clients 30 --events 200 --targets shardcast,shardcast-redis1,shardcast-redis3
done
# Per-instance CPU, and one shard standalone next to three one-shard instances.
for rep in 1 2; do
  run diag-fanout-1000-e200-split-$rep fanout --clients 1000 --events 200 --targets shardcast,shardcast-1,shardcast-redis1,shardcast-redis3
done
# What three processes cost idle: 1000 clients joined, 10 s of heartbeats, no events.
run diag-capacity-1000-idle capacity --clients 1000 --sessions 1 --hold 10 --targets shardcast,shardcast-redis1,shardcast-redis3
echo "== diagnostics done $(date -u +%H:%M:%S)" >> $log
