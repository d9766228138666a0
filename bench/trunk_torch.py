"""PyTorch's speed on the VGG16 trunk, the reference for bench/trunk.ts.

Run by /usr/bin/python3 (torch 1.13, torchvision 0.14): torchvision vgg16().features in eval mode
under no_grad, random weights, CPU, the given threads and batch. Prints one JSON line:
{"images_per_s": best, "median": ..., "torch": version}.
"""
import argparse
import json
import sys
import time

try:
    import torch
    import torchvision
except ImportError as err:  # the TS bench prints this line and carries on
    print(f"no torch: {err}", file=sys.stderr)
    sys.exit(2)

parser = argparse.ArgumentParser()
parser.add_argument("--batch", type=int, default=256)
parser.add_argument("--size", type=int, default=32)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
trunk = torchvision.models.vgg16().features.eval()
x = torch.randn(args.batch, 3, args.size, args.size)

rates = []
with torch.no_grad():
    trunk(x)  # warm-up
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        trunk(x)
        rates.append(args.batch / (time.perf_counter() - t0))
rates.sort()
print(json.dumps({"images_per_s": rates[-1], "median": rates[len(rates) // 2], "torch": torch.__version__}))
