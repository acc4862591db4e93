#!/bin/bash
# A/B of server CPU per frame: daemon 5ad1837 (before the stream-continuity work, built in a
# worktree at /tmp/base) vs 9a62a4a (built in the repository), alternating, one session.
for rep in 1 2 3; do
  for side in base head; do
    dir=/tmp/base; [ $side = head ] && dir=/work/main
    (cd $dir && node dist/bench/main.js fanout --clients 1000 --events 200 --targets shardcast,uws-raw --json > /tmp/ab/$side-1000-$rep.json 2>>/tmp/ab/err.log)
    (cd $dir && node dist/bench/main.js fanout --clients 10000 --events 50 --targets shardcast,uws-raw --json > /tmp/ab/$side-10000-$rep.json 2>>/tmp/ab/err.log)
  done
done
echo ALLDONE >> /tmp/ab/err.log
