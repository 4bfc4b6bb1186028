#!/usr/bin/env bash
# The GPU check, for when a GPU is lent: at most 9.5 minutes on one GPU (each part has a time cap:
# 180 + 90 + 300 s: the throughput part grew with pix2pix, cyclegan, srgan and esrgan), one table at the end.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, on the GPU machine
#
# 1. the suite's CUDA cases (pytest -m cuda: fp16 + GradScaler with the gradient penalty,
#    bf16, channels_last on and off, exact resume with --deterministic)
# 2. a one-process torchrun with NCCL through dcgan/train.py
# 3. benchmarks/throughput.py for every model in fp32, fp16-cl and bf16-cl on the GPU
#
# The GPU machine starts bare and reaches no package registry. Its python3 holds torch
# with CUDA, torchvision, torchmetrics, tensorboard, tqdm, scikit-learn, scikit-image and
# pillow; pytest (and albumentations / torch-fidelity, which nothing here needs) must travel
# with the working tree as wheels: run `make gpu-wheels` here first, then carry .gpu_wheels.
# A part whose packages are missing is skipped with a line saying so.
# Every later folder adds its models to throughput.py's CONFIGS (and CUDA cases to tests/).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORK=${GPU_CHECK_DIR:-/tmp/gpu_check}
mkdir -p "$WORK"
export PYTHONUNBUFFERED=1

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA device visible to $PY (torch.cuda.is_available() is False): nothing to check" >&2
    exit 2
fi
"$PY" -c "import torch; print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

# what the bare machine lacks, from the carried wheels
missing=$("$PY" -c "import importlib.util as u; print(' '.join(m for m in ('pytest',) if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
    if [ -d .gpu_wheels ]; then
        "$PY" -m pip install --quiet --no-index --find-links .gpu_wheels --target "$WORK/site" $missing \
            && export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi
have() { "$PY" -c "import $1" 2>/dev/null; }
status=0
summary=()

echo; echo "== 1. the suite's CUDA cases (pytest -m cuda)"
if have pytest; then
    start=$SECONDS
    timeout 180 "$PY" -m pytest -q -m cuda -p no:cacheprovider -o addopts="" tests 2>&1 | tail -25
    rc=${PIPESTATUS[0]}
    summary+=("| CUDA test cases (pytest -m cuda) | $([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)") | $((SECONDS - start)) s |")
    [ "$rc" = 0 ] || status=1
else
    echo "skipped: pytest is not installed here and no .gpu_wheels/ came with the tree (make gpu-wheels)"
    summary+=("| CUDA test cases (pytest -m cuda) | skipped: no pytest | - |")
fi

echo; echo "== 2. torchrun, one process, NCCL: dcgan/train.py"
start=$SECONDS
timeout 90 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m dcgan.train --device cuda \
    --precision fp16 --image-size 32 --ngf 32 --ndf 32 --max-steps 50 --sample-every 25 --save-every 25 \
    --out "$WORK/torchrun" 2>&1 | grep -v "it/s\|step/s" | tail -6
rc=${PIPESTATUS[0]}
if [ "$rc" = 0 ] && [ -f "$WORK/torchrun/checkpoints/last.pt" ]; then
    summary+=("| torchrun --nproc_per_node 1 (NCCL), dcgan fp16, 50 steps | passed | $((SECONDS - start)) s |")
else
    summary+=("| torchrun --nproc_per_node 1 (NCCL), dcgan fp16, 50 steps | FAILED (exit $rc) | $((SECONDS - start)) s |")
    status=1
fi

echo; echo "== 3. throughput, every model, fp32 / fp16-cl / bf16-cl on the GPU"
start=$SECONDS
timeout 300 "$PY" benchmarks/throughput.py --devices cuda --modes fp32,fp16-cl,bf16-cl --min-time 2 --max-steps 30 \
    --timeout 40 2>&1 | tee "$WORK/throughput.txt" | grep -v "^  "
rc=${PIPESTATUS[0]}
summary+=("| throughput.py, all models x 3 modes | $([ "$rc" = 0 ] && echo done || echo "FAILED (exit $rc)") | $((SECONDS - start)) s |")
[ "$rc" = 0 ] || status=1

echo; echo "== summary"
echo "| check | result | time |"
echo "|---|---|---:|"
printf '%s\n' "${summary[@]}"
exit $status
