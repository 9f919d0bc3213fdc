#!/usr/bin/env bash
# device call 2: adain illegal-access diagnosis, graph timings of the other ops, host profile
set -u
export PYTHONUNBUFFERED=1
python -m pip install -e . --no-deps --no-build-isolation -q >$OUT/install.log 2>&1
python -c "import effgan.kernels" 2>/dev/null || { ln -sfn ../kernels effgan/kernels; ln -sfn ../csrc effgan/csrc; }
G='--quick --cuda-graphs --e2e no'
for p in effgan eager compile; do
  echo "== adain graphs provider $p $(date +%T)"
  CUDA_LAUNCH_BLOCKING=1 timeout 80 python -m effgan.bench $G --ops adain --shapes 16x64x128x128 --providers $p \
    --out $OUT/diag-adain-$p.json >$OUT/diag-adain-$p.log 2>&1; echo "rc=$?"; grep -E "adain\[|Error|error" $OUT/diag-adain-$p.log | head -8
done
echo "== adain no graphs $(date +%T)"
timeout 60 python -m effgan.bench --quick --e2e no --ops adain --shapes 16x64x128x128 --out $OUT/diag-adain-nograph.json >$OUT/diag-adain-nograph.log 2>&1; echo "rc=$?"; grep -E "adain\[|Error" $OUT/diag-adain-nograph.log | head -8
S='1x256x64x64;8x128x64x64;16x64x128x128;8x256x128x128'
for op in se_scale cyclegan_loss diff_augment dwconv_norm_act; do
  echo "== graphs $op $(date +%T)"
  timeout 75 python -m effgan.bench $G --ops $op --shapes "$S" --out $OUT/graphs-$op.json >$OUT/graphs-$op.log 2>&1
  echo "rc=$?"; grep -E "^  $op|Error" $OUT/graphs-$op.log | grep -E "fwd\+bwd|Error" | head -14
done
echo "== adain graphs other shapes $(date +%T)"
timeout 60 python -m effgan.bench $G --ops adain --shapes '1x256x64x64;8x128x64x64;8x256x128x128' --out $OUT/graphs-adain.json >$OUT/graphs-adain.log 2>&1
echo "rc=$?"; grep -E "fwd\+bwd|Error" $OUT/graphs-adain.log | head -14
echo "== profile $(date +%T)"
timeout 60 python benchmarks/profile_host.py --op instance_norm_act --shape 1x256x64x64 --calls 200 --top 30 >$OUT/profile-in.log 2>&1; echo rc=$?
timeout 40 python benchmarks/profile_host.py --op se_scale --shape 1x256x64x64 --calls 200 --top 30 >$OUT/profile-se.log 2>&1; echo rc=$?
grep "===" $OUT/profile-*.log
echo "== unet test $(date +%T)"
timeout 60 python -m pytest -q -p no:cacheprovider tests/test_models_cyclegan.py -k fused_build_equals 2>&1 | tail -2
echo "== done $(date +%T)"
