#!/usr/bin/env bash
# The GPU checks of the open issue as ONE prepared script for a device session: it ends by itself
# within GPU_BENCH_BUDGET seconds (default 480), each step time-boxed, and goes on after a failed step.
#
# Here, once, from the project root after `npm ci` (tsx is a devDependency, so it is added by hand;
# tsx needs only esbuild and esbuild's linux-x64 binary):
#   PACK_EXTRA='node_modules/tsx node_modules/esbuild node_modules/@esbuild/linux-x64' bash ../shared/device/pack.sh
# Device tool `run`: carry [".device"], timeout_s 540, command:
#   source .device/enter.sh && bash bench/gpu.sh
# The log goes to $OUT/gpu.log and to stdout; a summary of the result lines ends it.
#
# Trying it without a GPU (Dawn finds Mesa's lavapipe; PyTorch says it has no CUDA and is skipped):
#   OUT=/tmp/gpu-out GPU_BENCH_QUICK=1 bash bench/gpu.sh
# Counts (GPU_BENCH_QUICK=1 makes them tiny; each can be set on its own): GPU_BENCH_HEAD_STEPS,
# GPU_BENCH_UNFOLDED_STEPS, GPU_BENCH_TORCH_STEPS, GPU_BENCH_TRUNK_BATCHES, GPU_BENCH_TRUNK_REPEATS,
# GPU_BENCH_EXTRACT_IMAGES, GPU_BENCH_EXTRACT_BATCH. TORCH_PYTHON: the python with torch (found if unset).
set -u -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=${OUT:-/tmp/gpu-bench-out}
mkdir -p "$out"
log="$out/gpu.log"
: > "$log"

if [[ ${GPU_BENCH_QUICK:-0} == 1 ]]; then
  q_head=2 q_unfolded=1 q_torch=2 q_batches=4 q_repeats=1 q_images=32 q_batch=8
else
  q_head=30 q_unfolded=12 q_torch=20 q_batches=64,128,256 q_repeats=5 q_images=2560 q_batch=256
fi
head_steps=${GPU_BENCH_HEAD_STEPS:-$q_head}
unfolded_steps=${GPU_BENCH_UNFOLDED_STEPS:-$q_unfolded}
torch_steps=${GPU_BENCH_TORCH_STEPS:-$q_torch}
trunk_batches=${GPU_BENCH_TRUNK_BATCHES:-$q_batches}
trunk_repeats=${GPU_BENCH_TRUNK_REPEATS:-$q_repeats}
extract_images=${GPU_BENCH_EXTRACT_IMAGES:-$q_images}
extract_batch=${GPU_BENCH_EXTRACT_BATCH:-$q_batch}
budget=${GPU_BENCH_BUDGET:-480}

# Dawn wants a runtime dir; the device machine's python3 has torch 2.11, Debian's here has 1.13.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if [[ -z ${TORCH_PYTHON:-} ]]; then
  for p in "$(command -v python3 || true)" /usr/bin/python3; do
    if [[ -n $p ]] && "$p" -c 'import torch' 2>/dev/null; then TORCH_PYTHON=$p; break; fi
  done
fi
export TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}

summary=()

# step NAME SECONDS COMMAND...: runs COMMAND under timeout (its whole process group, PyTorch children
# included), never longer than what is left of the budget; logs the exit status and the time taken.
step() {
  local name=$1 box=$2; shift 2
  local left=$((budget - SECONDS - 5))
  (( box > left )) && box=$left
  echo
  echo "=== $name (time box ${box}s; ${SECONDS}s into the run)"
  if (( box < 15 )); then
    echo "skipped: the ${budget}s budget is spent"
    summary+=("$name: skipped (budget)")
    return
  fi
  local t0=$SECONDS rc
  timeout -k 5 "$box" "$@"
  rc=$?
  local took=$((SECONDS - t0))
  if (( rc == 124 || rc == 137 )); then
    echo "=== $name: TIMED OUT after ${took}s"
    summary+=("$name: timed out after ${took}s")
  else
    echo "=== $name: exit $rc after ${took}s"
    summary+=("$name: exit $rc, ${took}s")
  fi
}

# What Dawn (the `webgpu` package, which tfjs-backend-webgpu runs on) finds. ONNX Runtime's WebGPU
# provider carries its own Dawn; bench/trunk.ts shows whether it starts.
dawn_probe="
  import { create } from 'webgpu';
  const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
  const i = adapter?.info ?? {};
  const fallback = adapter?.isFallbackAdapter || i.isFallbackAdapter ? ' (software fallback)' : '';
  console.log(adapter ? 'Dawn adapter: ' + [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ') + fallback : 'Dawn adapter: none');
  // The unfolded head binds its 25088×4096 weight (411 MB) whole: tfjs fails past this limit.
  if (adapter) console.log('Dawn adapter limits: maxStorageBufferBindingSize ' + adapter.limits.maxStorageBufferBindingSize + ', maxBufferSize ' + adapter.limits.maxBufferSize);
  process.exit(0);
"
torch_probe="
import torch
cuda = torch.cuda.is_available()
print(f'PyTorch ($TORCH_PYTHON): torch {torch.__version__}, cuda available: {cuda}' + (f', {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}' if cuda else ''))
"

machine() {
  echo
  echo "=== 1 machine, GPU, Dawn adapter, PyTorch"
  echo "node $(node -v), $(uname -srm), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  if command -v nvidia-smi >/dev/null; then
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu --format=csv
  else
    echo "nvidia-smi: not present"
  fi
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
  timeout 30 node --input-type=module -e "$dawn_probe" 2>&1 | grep -v '^Warning: maxDynamic'
  local rc=${PIPESTATUS[0]}
  (( rc == 0 )) || echo "Dawn adapter probe failed (exit $rc)"
  timeout 60 "$TORCH_PYTHON" -c "$torch_probe" 2>&1 | tail -1
  summary+=("1 machine: ${SECONDS}s")
}

main() {
  echo "bench/gpu.sh $(date -u +%FT%TZ): budget ${budget}s; head ${head_steps} steps (unfolded ${unfolded_steps}), PyTorch ${torch_steps} steps; trunk batches ${trunk_batches} x${trunk_repeats}; extract ${extract_images} images, batch ${extract_batch}"
  machine
  step "2a head folded on WebGPU vs PyTorch cuda" 150 \
    node --import tsx bench/head.ts --backend webgpu --steps "$head_steps" --torch-device cuda --torch-steps "$torch_steps"
  step "3a trunk on ORT WebGPU vs PyTorch cuda" 150 \
    node --import tsx bench/trunk.ts --device webgpu --torch-device cuda --batches "$trunk_batches" --repeats "$trunk_repeats"
  step "3b trunk on ORT CUDA (expected to fail: provider not installed)" 45 \
    node --import tsx bench/trunk.ts --device cuda --no-torch --batches "${trunk_batches%%,*}" --repeats 1
  step "4 extract end to end vs bare trunk on WebGPU" 120 \
    node --import tsx bench/extract.ts "$extract_images" "$extract_batch" --device webgpu
  step "2b head unfolded on WebGPU vs PyTorch cuda" 150 \
    node --import tsx bench/head.ts --backend webgpu --no-fold --steps "$unfolded_steps" --torch-device cuda --torch-steps "$torch_steps"

  echo
  echo "=== summary (${SECONDS}s in all)"
  printf '%s\n' "${summary[@]}"
  echo "--- result lines"
  local lines  # read before printing: the log is the file being written
  lines=$(grep -aE '^(Dawn adapter|node v|torch |backend: webgpu.*load|folded|unfolded|run total|ratio|PyTorch|  openTrunk|openTrunk|VGG16|bare|extractSplit|[A-Za-z]*Error)' "$log")
  echo "$lines"
}

main 2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
