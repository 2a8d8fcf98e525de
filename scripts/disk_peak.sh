#!/usr/bin/env bash
# `disk_peak.sh COMMAND...`: runs COMMAND and prints how much more of the filesystem under
# the working directory it used at its peak and at its end (df, sampled every second;
# whatever else writes to that filesystem meanwhile counts too: run it on a quiet machine).
set -euo pipefail
used_kib() { df -Pk . | awk 'NR==2 {print $3}'; }
start=$(used_kib)
peak=$start
"$@" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  now=$(used_kib)
  ((now > peak)) && peak=$now
  sleep 1
done
rc=0
wait "$pid" || rc=$?
end=$(used_kib)
awk -v s="$start" -v p="$peak" -v e="$end" -v what="$*" 'BEGIN {
  printf "disk: %s used %.1f GB more at its peak, %.1f GB more at its end\n", what, (p - s) / 1048576, (e - s) / 1048576 }'
exit "$rc"
