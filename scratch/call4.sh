#!/usr/bin/env bash
set -u
export PYTHONUNBUFFERED=1
R=$OUT/r; mkdir -p $R
pack() { (cd $OUT && tar czf results.tgz r); }
python -m pip install -e . --no-deps --no-build-isolation -q >$R/install.log 2>&1
python -c "import effgan.kernels" 2>/dev/null || { ln -sfn ../kernels effgan/kernels; ln -sfn ../csrc effgan/csrc; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/env.txt; git log --oneline -1 >> $R/env.txt
echo "== tests $(date +%T)"
timeout 140 python -m pytest -q -n 14 -k cuda -p no:cacheprovider tests >$R/tests.log 2>&1; echo "rc=$?"
grep -E "passed|failed" $R/tests.log | tail -1; grep -E "^FAILED|^ERROR" $R/tests.log | head -20; pack
echo "== graphs all ops $(date +%T)"
timeout 130 python -m effgan.bench --quick --cuda-graphs --e2e no --shapes '1x256x64x64;8x256x128x128' \
  --out $R/graphs.json >$R/graphs.log 2>&1; echo "rc=$?"; pack
echo "== calls all ops $(date +%T)"
timeout 60 python -m effgan.bench --quick --e2e no --shapes '1x256x64x64' --out $R/calls.json >$R/calls.log 2>&1; echo "rc=$?"; pack
echo "== e2e $(date +%T)"
timeout 140 python -m effgan.bench --quick --ops none --e2e-models cyclegan-resnet9-256-b1,stylegan-64-b16,dcgan-classic-64-b64 \
  --e2e-variants eager,fused,fused+graphs,fused+graphs+bf16 --out $R/e2e.json >$R/e2e.log 2>&1; echo "rc=$?"; pack
timeout 25 python benchmarks/profile_host.py --op se_scale --shape 1x256x64x64 --calls 200 --top 30 >$R/profile-se.log 2>&1
grep "===" $R/profile-*.log; pack
echo "--- graphs"; grep -A40 "^| op" $R/graphs.log | head -16
echo "--- calls"; grep -A12 "^| op" $R/calls.log | head -10
echo "--- e2e"; grep -E "img/s" $R/e2e.log | head -20
echo "== done $(date +%T)"
