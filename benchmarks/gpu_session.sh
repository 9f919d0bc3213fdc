#!/usr/bin/env bash
# One call on a lent CUDA machine: install, build, then the named stages, logs under $OUT.
#
#   bash benchmarks/gpu_session.sh tests bench        # stages run in the order given
#
# Stages:
#   tests     every CUDA test (pytest -k cuda, or -k "$TESTS_K"), in parallel -> tests.log
#   memcheck  compute-sanitizer memcheck over each op's CUDA tests        -> memcheck.log
#   memops    compute-sanitizer memcheck over every Triton kernel at awkward sizes
#             (benchmarks/memcheck_ops.py; faster and wider than memcheck; MEMOPS_OPS picks ops)
#                                                                          -> memops.log
#   recapture GPU memory across re-captures of a graphed training step (recapture_memory.py;
#             RECAPTURE_MODEL)                                               -> recapture.log
#   abtiles   dwconv_norm_act's tile geometries timed against each other (ab_dwconv_tiles.py)
#                                                                          -> abtiles.log
#   ncu       Nsight Compute sections of one fwd+bwd per op in NCU_OPS (default dwconv_norm_act
#             instance_norm_act) at NCU_SHAPE (default 8x256x128x128); NCU_ARGS is appended, e.g.
#             '--channels-last --provider eager'                         -> ncu-<op>.log
#   bench     python -m effgan.bench --quick (ops and end-to-end)         -> bench.log, cuda-*.json
#   benchops  the same without the end-to-end rows                         -> bench.log, cuda-*.json
#   graphs    the op rows timed as CUDA-graph replays (kernel time)        -> graphs.log, cuda-*-graphs.json
#   e2e       the end-to-end training-step rows alone                      -> e2e.log, cuda-*-e2e.json
#   profile   host time of one fused fwd+bwd, by function (profile_host.py) -> profile-*.log
#   profile_step  one CycleGAN ResNet-9 training step per variant: host vs device (profile_step.py;
#                 PROFILE_VARIANTS, PROFILE_ARGS e.g. --no-gc)
#                                                                          -> profile-step.log
#   experiment  the generator comparison (effgan.experiments.generators; EXP_BUDGET, default 1000
#               steps, with --cuda-graphs unless EXP_GRAPHS=0)              -> experiment.log, exp-*
# Everything under $OUT is also packed into $OUT/all-logs.tgz at the end.
# BENCH_ARGS (env) is appended to every effgan.bench command, e.g. BENCH_ARGS='--shapes 1x256x64x64;8x256x128x128'.
# BUILD_EXT=0 skips building the C++ extension (the CUDA paths do not use it).
# Each stage runs under its own time limit (seconds, env <STAGE>_S) so one slow stage cannot
# take the others' results with it; the machine's torch stays the one in use (no build isolation).
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

stage() { echo "== $1 $(date +%T)"; }

stage env
{
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv
  python -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
  nproc
  # The C++ extension's compiler: one that links its own C++ runtime statically broke the
  # extension's error path on the first H100 run (see effgan/_cpp_build.py, LDFLAGS).
  echo "CXX=${CXX:-c++}"; "${CXX:-c++}" --version | head -1
} 2>&1 | tee "$OUT/env.txt"

stage install
python -c "import setuptools; print('setuptools', setuptools.__version__)" | tee -a "$OUT/env.txt"
python -m pip install -e . --no-deps --no-build-isolation -q >"$OUT/install.log" 2>&1 || tail -20 "$OUT/install.log"
# effgan.kernels and effgan.csrc live in kernels/ and csrc/ (setup.py's package_dir), which only
# the editable install's import hook maps. On the first H100 run that mapping was missing for the
# python that ran the tests; this copy of the tree is the machine's own, so links inside the
# package stand in for it.
if ! python -c "import effgan.kernels, effgan.csrc" 2>>"$OUT/install.log"; then
  echo "editable install does not map effgan.kernels/effgan.csrc: linking them into effgan/"
  ln -sfn ../kernels effgan/kernels && ln -sfn ../csrc effgan/csrc
  python -c "import effgan.kernels, effgan.csrc" || exit 1
fi
if [ "${BUILD_EXT:-1}" != 0 ]; then
  stage build_ext
  python -m effgan.build_ext >>"$OUT/install.log" 2>&1 || tail -20 "$OUT/install.log"
fi

for s in "$@"; do
  stage "$s"
  case "$s" in
    tests)
      timeout "${TESTS_S:-300}" python -m pytest -q -n "${WORKERS:-8}" -k "${TESTS_K:-cuda}" -p no:cacheprovider \
        >"$OUT/tests.log" 2>&1
      echo "tests rc=$?"; grep -E "passed|failed|error" "$OUT/tests.log" | tail -3 ;;
    memcheck)
      timeout "${MEMCHECK_S:-240}" compute-sanitizer --tool memcheck --error-exitcode 9 \
        python -m pytest -q -x -p no:cacheprovider -k "cuda and not train and not bench" ${MEMCHECK_TESTS:-tests/test_instance_norm_act.py \
        tests/test_adain.py tests/test_se_scale.py tests/test_cyclegan_loss.py tests/test_diff_augment.py \
        tests/test_dwconv_norm_act.py} \
        >"$OUT/memcheck.log" 2>&1
      echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|passed|failed" "$OUT/memcheck.log" | tail -3 ;;
    memops)
      timeout "${MEMOPS_S:-240}" compute-sanitizer --tool memcheck --error-exitcode 9 \
        python benchmarks/memcheck_ops.py --ops "${MEMOPS_OPS:-all}" >"$OUT/memops.log" 2>&1
      echo "memops rc=$?"; grep -c "^ok " "$OUT/memops.log"; grep -E "ERROR SUMMARY|Error|error" "$OUT/memops.log" | tail -5 ;;
    recapture)
      timeout "${RECAPTURE_S:-180}" python benchmarks/recapture_memory.py \
        --model "${RECAPTURE_MODEL:-cyclegan-effnet-resnet-b0-256-b1}" >"$OUT/recapture.log" 2>&1
      echo "recapture rc=$?"; cat "$OUT/recapture.log" ;;
    abtiles)
      timeout "${ABTILES_S:-240}" python benchmarks/ab_dwconv_tiles.py >"$OUT/abtiles.log" 2>&1
      echo "abtiles rc=$?"; cat "$OUT/abtiles.log" ;;
    ncu)
      # --clock-control none: the card's clocks stay as they are (ncu would lock them to base).
      for op in ${NCU_OPS:-dwconv_norm_act instance_norm_act}; do
        timeout "${NCU_S:-120}" ncu --clock-control none --profile-from-start off \
          --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
          --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats \
          python benchmarks/ncu_op.py --op "$op" --shape "${NCU_SHAPE:-8x256x128x128}" ${NCU_ARGS:-} >"$OUT/ncu-$op.log" 2>&1
        echo "ncu $op rc=$?"; grep -E "^  [a-z_]+.*\(|Duration|Memory Throughput|Compute \(SM\) Throughput" "$OUT/ncu-$op.log" | head -40
      done ;;
    bench)
      timeout "${BENCH_S:-300}" python -m effgan.bench --quick --out "$OUT/cuda-quick.json" ${BENCH_ARGS:-} >"$OUT/bench.log" 2>&1
      echo "bench rc=$?"; tail -60 "$OUT/bench.log" ;;
    benchops)
      timeout "${BENCH_S:-300}" python -m effgan.bench --quick --e2e no --out "$OUT/cuda-quick-ops.json" ${BENCH_ARGS:-} \
        >"$OUT/bench.log" 2>&1
      echo "bench rc=$?"; tail -60 "$OUT/bench.log" ;;
    graphs)
      timeout "${GRAPHS_S:-300}" python -m effgan.bench --quick --cuda-graphs --e2e no \
        --out "$OUT/cuda-quick-graphs.json" ${BENCH_ARGS:-} >"$OUT/graphs.log" 2>&1
      echo "graphs rc=$?"; tail -25 "$OUT/graphs.log" ;;
    e2e)
      timeout "${E2E_S:-300}" python -m effgan.bench --quick --ops none --out "$OUT/cuda-quick-e2e.json" ${BENCH_ARGS:-} \
        >"$OUT/e2e.log" 2>&1
      echo "e2e rc=$?"; tail -30 "$OUT/e2e.log" ;;
    profile)
      for op in instance_norm_act se_scale; do
        timeout "${PROFILE_S:-60}" python benchmarks/profile_host.py --op $op --shape 1x256x64x64 >"$OUT/profile-$op.log" 2>&1
      done
      grep -h "===" "$OUT"/profile-*.log ;;
    profile_step)
      timeout "${PROFILE_S:-150}" python benchmarks/profile_step.py --model "${PROFILE_MODEL:-cyclegan-resnet9-256-b1}" \
        --variants "${PROFILE_VARIANTS:-eager,fused,fused+graphs}" ${PROFILE_ARGS:-} >"$OUT/profile-step.log" 2>&1
      echo "profile_step rc=$?"; grep -E "^===|^--- device" "$OUT/profile-step.log" ;;
    experiment)
      # The runs (checkpoints) stay on the machine; the tables, JSON and plot come back.
      exp=/tmp/effgan-experiment
      rm -rf "$exp"
      graphs=--cuda-graphs; [ "${EXP_GRAPHS:-1}" = 0 ] && graphs=
      timeout "${EXP_S:-480}" python -m effgan.experiments.generators --budget "${EXP_BUDGET:-1000}" $graphs \
        ${EXP_ARGS:-} --out "$exp" >"$OUT/experiment.log" 2>&1
      echo "experiment rc=$?"; grep -E "^\[generators\]|^\|" "$OUT/experiment.log" | tail -30
      for f in results.json results.md results-partial.json quality_vs_step_time.png; do
        [ -f "$exp/$f" ] && cp "$exp/$f" "$OUT/exp-$f"
      done ;;
    *) echo "unknown stage $s" ;;
  esac
done
# The device returns only a few files from $OUT: one archive of everything comes back whole.
tar czf /tmp/gpu-session.tgz -C "$OUT" . && mv /tmp/gpu-session.tgz "$OUT/all-logs.tgz"
stage done
