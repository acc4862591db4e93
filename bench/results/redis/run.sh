#!/bin/bash
# "Many instances on Redis" (bench/RESULTS.md): standalone vs one and three instances on Redis.
# Run from the repository root after `npm run build --silent` (or, as here, from a copy of the
# committed tree — `git archive HEAD` plus this bench/ — built with `npx tsc`, so that builds
# of other work in progress cannot change dist/ mid-series; OUT=<dir> then says where the
# results go). Each command waits (at most 20 min) until the machine's CPU was under 15 %
# busy for 20 s before it starts: other sessions' tests share this machine. Raw JSON next
# to this script; run-log.txt has start time, load, the per-target summary lines (stderr)
# and wall time.
set -u
out=${OUT:-bench/results/redis}
log=$out/run-log.txt
targets=shardcast,shardcast-redis1,shardcast-redis3
busy() { # % of CPU time busy over the next 10 s, from /proc/stat
  local a b
  a=($(head -1 /proc/stat)); sleep 10; b=($(head -1 /proc/stat))
  local total=0 idle=$(( (${b[4]} + ${b[5]}) - (${a[4]} + ${a[5]}) ))
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + ${b[$i]} - ${a[$i]} )); done
  echo $(( 100 * (total - idle) / total ))
}
quiet() { # waits (at most 20 min) until the machine was under 15 % busy for two 10 s windows in a row
  local calm=0
  for _ in $(seq 1 120); do
    last=$(busy)
    if [ "$last" -lt 15 ]; then calm=$((calm + 1)); else calm=0; fi
    [ $calm -ge 2 ] && return
  done
}
run() { # name, args…
  local name=$1; shift
  quiet
  echo "== $name $(date -u +%H:%M:%S) $* [load $(cut -d' ' -f1 /proc/loadavg), busy $last % in the last 10 s]" >> $log
  local t0=$(date +%s.%N)
  node dist/bench/main.js "$@" --json > $out/$name.json 2>> $log
  echo "exit $? $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.2f') s" >> $log
}
echo "== start $(date -u '+%F %H:%M:%S') in $PWD, commit ${COMMIT:-$(git rev-parse --short HEAD)}" >> $log
for rep in 1 2 3; do
  run fanout-1000-e50-$rep fanout --clients 1000 --events 50 --targets $targets
done
for rep in 1 2 3; do
  run fanout-1000-e200-$rep fanout --clients 1000 --events 200 --targets $targets
done
run fanout-5000-e50 fanout --clients 5000 --events 50 --targets $targets
echo "== done $(date -u +%H:%M:%S)" >> $log
