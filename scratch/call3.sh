#!/usr/bin/env bash
set -u
export PYTHONUNBUFFERED=1
R=$OUT/r; mkdir -p $R
python -m pip install -e . --no-deps --no-build-isolation -q >$R/install.log 2>&1
python -c "import effgan.kernels" 2>/dev/null || { ln -sfn ../kernels effgan/kernels; ln -sfn ../csrc effgan/csrc; }
echo "== tests $(date +%T)"
timeout 170 python -m pytest -q -n 14 -k cuda -p no:cacheprovider tests >$R/tests.log 2>&1; echo "rc=$?"
grep -E "passed|failed" $R/tests.log | tail -2; grep -E "^FAILED|^ERROR" $R/tests.log | head -20
S='1x256x64x64;8x128x64x64;16x64x128x128;8x256x128x128;1x64x256x256'
echo "== graphs IN/adain $(date +%T)"
timeout 150 python -m effgan.bench --quick --cuda-graphs --e2e no --ops instance_norm_act,adain --shapes "$S" \
  --out $R/graphs-in-adain.json >$R/graphs-in-adain.log 2>&1; echo "rc=$?"
grep -E "fwd\+bwd|Error" $R/graphs-in-adain.log | head -40
echo "== calls IN/adain/se $(date +%T)"
timeout 100 python -m effgan.bench --quick --e2e no --ops instance_norm_act,adain,se_scale --shapes '1x256x64x64;16x64x128x128' \
  --out $R/calls.json >$R/calls.log 2>&1; echo "rc=$?"
grep -E "fwd\+bwd|Error" $R/calls.log | head -20
echo "== profile $(date +%T)"
timeout 45 python benchmarks/profile_host.py --op instance_norm_act --shape 1x256x64x64 --calls 200 --top 30 >$R/profile-in.log 2>&1
timeout 45 python benchmarks/profile_host.py --op se_scale --shape 1x256x64x64 --calls 200 --top 30 >$R/profile-se.log 2>&1
grep "===" $R/profile-*.log
cd $OUT && tar czf results.tgz r && rm -rf r
echo "== done $(date +%T)"
