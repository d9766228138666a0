"""PyTorch's speed on a torchvision backbone's trunk, the reference for bench/backbones.ts.

Run by /usr/bin/python3 (torch 1.13, torchvision 0.14): torchvision's resnet18/34/50 or vgg16, random
init, eval mode under no_grad, CPU, the given threads and batch; the trunk is what headstart runs
(ResNet: up to global average pooling and flatten; VGG16: features). Prints one JSON line:
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
parser.add_argument("--model", default="resnet50", choices=["resnet18", "resnet34", "resnet50", "vgg16"])
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--size", type=int, default=224)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = getattr(torchvision.models, args.model)()
if args.model == "vgg16":
    trunk = model.features
else:
    trunk = torch.nn.Sequential(*list(model.children())[:-1], torch.nn.Flatten(1))
trunk = trunk.eval()
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
