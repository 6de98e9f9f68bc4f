#!/usr/bin/env bash
# Run reproduction scripts one after another, in the background, on one thread each.
#
#   benchmarks/reproduce/queue.sh QUEUE_DIR NAME
#
# QUEUE_DIR/NAME.txt holds one script invocation a line (e.g. `claim09_vaegan_sharp.py`, or
# `claim06_pix2pix.py --seeds 3`); each line that is not yet in NAME.done runs, from this
# checkout, with --out QUEUE_DIR/repro --results QUEUE_DIR/results, and is appended to
# NAME.done when it exits 0. A line that fails is logged and skipped until the next start.
#
# The package is imported from this checkout's src/ (PYTHONPATH), so a copy of the repository
# can run the queue on the main checkout's virtualenv (PYTHON=...) while the main checkout
# changes. Every script resumes its runs, so killing the queue and starting it again loses at
# most one checkpoint interval. Two queues (two NAMEs) use the machine's two cores; pause them
# for quiet timings with `kill -STOP $(pgrep -f benchmarks/reproduce/claim)`, resume with -CONT.
set -u
dir=$(cd "$1" && pwd); name=$2
here=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
touch "$dir/$name.done"
while IFS= read -r line; do
  [ -z "$line" ] && continue
  grep -qxF -- "$line" "$dir/$name.done" && continue
  echo "== $(date -u +%FT%TZ) start: $line"
  # shellcheck disable=SC2086  # the line is a script and its arguments, split on purpose
  if (cd "$here" && PYTHONPATH="$here/src" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$py" benchmarks/reproduce/$line \
        --out "$dir/repro" --results "$dir/results"); then
    echo "$line" >> "$dir/$name.done"
    echo "== $(date -u +%FT%TZ) done: $line"
  else
    echo "== $(date -u +%FT%TZ) FAILED ($?): $line"
  fi
done < "$dir/$name.txt"
