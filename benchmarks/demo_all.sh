#!/usr/bin/env bash
# Runs the demo preset of every method (PSS-Synth, CPU) one after another and prints each run's wall
# time and mean FIoU/MIoU; records are copied to OUT (default work_dirs/demo-records/).
#   bash benchmarks/demo_all.sh [OUT]      (about an hour on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-work_dirs/demo-records}
mkdir -p "$out"
runs="source_only:resnet50 minent:resnet50 advent:resnet50 adaptseg:resnet50
      source_only:vgg16 minent:vgg16 advent:vgg16 adaptseg:vgg16
      pss_s1:resnet50 pss_s2:resnet50 pss_none:resnet50 pss_global:resnet50"
printf '| method | backbone | wall time (s) | mean FIoU | mean MIoU |\n|---|---|---:|---:|---:|\n'
for run in $runs; do
  m=${run%%:*}; b=${run##*:}; work=work_dirs/demo-$m-$b
  rm -rf "$work"
  start=$(date +%s)
  .venv/bin/pss-bench run --method "$m" --backbone "$b" --work-dir "$work" > "$work.log" 2>&1
  secs=$(( $(date +%s) - start ))
  cp "$work/result.json" "$out/demo-$m-$b.json"
  .venv/bin/python -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"| $m | $b | $secs | {r['mean']['fiou']:.2f} | {r['mean']['miou']:.2f} |\")" "$work/result.json"
done
