"""PyTorch's speed on the VGG16 trunk, the reference for bench/trunk.ts.

Run by /usr/bin/python3 (torch 1.13, torchvision 0.14): torchvision vgg16().features in eval mode
under no_grad, random weights, CPU, the given threads and batch. Prints one JSON line:
{"images_per_s": best, "median": ..., "torch": version}, and on the CPU bf16_images_per_s / bf16_median
for the same trunk under torch.autocast('cpu', dtype=torch.bfloat16).

--device cuda: model and batch on the GPU, each pass timed between torch.cuda.synchronize() calls.
Strict float32 convolutions (cudnn.allow_tf32 off: like for like with ONNX Runtime's float32 WebGPU
kernels) give images_per_s; PyTorch's default TF32 convolutions add tf32_images_per_s, tf32_median,
and "device" names the GPU. With no CUDA: one line on stderr, exit status 2.
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
parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 autocast run on the CPU")
args = parser.parse_args()
if args.device == "cuda" and not torch.cuda.is_available():
    print(f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)", file=sys.stderr)
    sys.exit(2)

torch.set_num_threads(args.threads)
torch.manual_seed(0)
device = torch.device(args.device)
trunk = torchvision.models.vgg16().features.eval().to(device)
x = torch.randn(args.batch, 3, args.size, args.size).to(device)


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure():
    rates = []
    with torch.no_grad():
        trunk(x)  # warm-up
        sync()
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            trunk(x)
            sync()
            rates.append(args.batch / (time.perf_counter() - t0))
    rates.sort()
    return rates[-1], rates[len(rates) // 2]


def conv_tf32(on):
    # PyTorch 2.9 replaced allow_tf32 with fp32_precision and warns when the old one is set.
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        conv.fp32_precision = "tf32" if on else "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = on


if device.type == "cuda":
    conv_tf32(False)
    best, median = measure()
    conv_tf32(True)
    tf32_best, tf32_median = measure()
    name = torch.cuda.get_device_name(0)
    print(json.dumps({"images_per_s": best, "median": median, "tf32_images_per_s": tf32_best, "tf32_median": tf32_median, "torch": torch.__version__, "device": f"cuda ({name})"}))
else:
    best, median = measure()
    result = {"images_per_s": best, "median": median, "torch": torch.__version__}
    # bfloat16 autocast: what a PyTorch user gets from AMX / AVX-512 BF16 (slow where the CPU has neither).
    if not args.no_bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            result["bf16_images_per_s"], result["bf16_median"] = measure()
    print(json.dumps(result))
