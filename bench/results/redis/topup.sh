#!/bin/bash
# Repeats of run.sh's commands until each has enough clean runs: a run is clean when every
# row's other_cpu_pct (CPU other processes used while that target was measured, % of one
# core) is at most 10. Busy runs are kept (run-log.txt marks them) and listed in
# RESULTS.md, but the medians are over clean runs. Same environment as run.sh.
set -u
out=${OUT:-bench/results/redis}
log=$out/run-log.txt
targets=shardcast,shardcast-redis1,shardcast-redis3
source <(sed -n '/^busy()/,/^}/p;/^quiet()/,/^}/p' "$(dirname "$0")/run.sh")
clean() { node -e 'const r=require(process.argv[1]); process.exit(r.length===3 && r.every(x=>x.other_cpu_pct!==null && x.other_cpu_pct<=10) ? 0 : 1)' "$(realpath "$1")"; }
slot() { # base name, wanted clean runs, args…
  local base=$1 want=$2; shift 2
  local have=0 n=0 busyn=0
  for f in $out/$base-[0-9]*.json; do [ -e "$f" ] || continue; n=$((n+1)); clean "$f" && have=$((have+1)); done
  for attempt in $(seq 1 8); do
    [ $have -ge $want ] && return
    quiet
    n=$((n+1)); local name=$base-$n
    echo "== $name $(date -u +%H:%M:%S) $* [load $(cut -d' ' -f1 /proc/loadavg), busy $last % in the last 10 s]" >> $log
    local t0=$(date +%s.%N)
    node dist/bench/main.js "$@" --json > $out/$name.json 2>> $log
    echo "exit $? $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.2f') s" >> $log
    if clean $out/$name.json; then have=$((have+1)); else echo "(busy: another process used > 10 % of a core during a target's run)" >> $log; fi
  done
}
echo "== top-up $(date -u '+%F %H:%M:%S') in $PWD, commit ${COMMIT:-$(git rev-parse --short HEAD)}" >> $log
slot fanout-1000-e50 3 fanout --clients 1000 --events 50 --targets $targets
slot fanout-1000-e200 3 fanout --clients 1000 --events 200 --targets $targets
slot fanout-5000-e50 1 fanout --clients 5000 --events 50 --targets $targets
echo "== top-up done $(date -u +%H:%M:%S)" >> $log
