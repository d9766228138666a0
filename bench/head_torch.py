"""PyTorch reference for bench/head.ts: the UNFOLDED head 25088→4096→4096→10 (what torchvision trains
at 32×32: the 1×1 map pooled to 7×7), SGD momentum 0.9, dropout 0.5, batch 256, 2 threads.
Times a few steps and extrapolates to the 196-step epoch.
Run: /usr/bin/python3 bench/head_torch.py [steps] [--device cpu|cuda]

On cuda, model and data live on the GPU and each step is timed between torch.cuda.synchronize()
calls (kernels are asynchronous: without them the host would time only the launches). Two runs:
strict float32 matmuls (EPOCH_SECONDS, the like-for-like reference: WebGPU computes in float32),
then TF32 matmuls (EPOCH_SECONDS_TF32, what PyTorch users get with set_float32_matmul_precision('high')).
With no CUDA, one line on stderr and exit status 2: bench/head.ts prints it and carries on."""
import argparse
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as err:
    print(f'no torch: {err}', file=sys.stderr)
    sys.exit(2)

parser = argparse.ArgumentParser()
parser.add_argument('steps', nargs='?', type=int, default=5)
parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
args = parser.parse_args()
if args.device == 'cuda' and not torch.cuda.is_available():
    print(f'torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)', file=sys.stderr)
    sys.exit(2)

torch.set_num_threads(2)
steps = args.steps
device = torch.device(args.device)
batch, c, k, epoch_steps = 256, 512, 10, 196


def sync():
    if device.type == 'cuda':
        torch.cuda.synchronize()


def matmul_tf32(on):
    # PyTorch 2.9 replaced the older switches with fp32_precision and warns when they are mixed.
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, 'fp32_precision'):
        matmul.fp32_precision = 'tf32' if on else 'ieee'
    else:
        torch.set_float32_matmul_precision('high' if on else 'highest')


def run(label):
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(c * 49, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, k)).to(device)
    opt = torch.optim.SGD(head.parameters(), lr=1e-3, momentum=0.9)
    fmap = torch.rand(batch, c, 1, 1, device=device)
    labels = torch.randint(0, k, (batch,), device=device)
    times = []
    sync()
    for _ in range(steps + 1):
        t = time.perf_counter()
        x = torch.flatten(F.adaptive_avg_pool2d(fmap, (7, 7)), 1)
        loss = F.cross_entropy(head(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t)
    steady = sum(times[1:]) / steps
    digits = 0 if device.type == 'cpu' else 2  # a GPU epoch takes seconds, not minutes
    print(f'unfolded SGD{label}: first step {times[0] * 1000:.0f} ms, mean of {steps} more {steady * 1000:.{digits}f} ms; epoch of {epoch_steps} steps ≈ {steady * epoch_steps:.{digits}f} s')
    return steady * epoch_steps


if device.type == 'cuda':
    print(f'torch {torch.__version__}, cuda {torch.version.cuda}, {torch.cuda.get_device_name(0)}')
    matmul_tf32(False)
    strict = run(' on cuda, float32 matmuls')
    matmul_tf32(True)
    tf32 = run(' on cuda, TF32 matmuls')
    print(f'EPOCH_SECONDS {strict:.3f}')
    print(f'EPOCH_SECONDS_TF32 {tf32:.3f}')
else:
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}')
    print(f'EPOCH_SECONDS {run(""):.3f}')
