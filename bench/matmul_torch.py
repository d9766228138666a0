"""PyTorch CPU reference numbers for bench/matmul.ts (run with Debian's /usr/bin/python3, which has torch).

Prints a human table on stderr and one JSON object on stdout's last line:
{"matmul": {name: gflops}, "step_ms": {"sgd": ms, "adam": ms}, "threads": n, "torch": version}
"""
import json
import os
import sys
import time

import torch

torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
torch.manual_seed(0)


def gflops(fn, flops, reps):
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    dt = (time.perf_counter() - start) / reps
    return flops / dt / 1e9


def matmuls():
    out = {}
    shapes = {
        # name: (a shape, b shape, transpose a, transpose b)
        "256x4096x4096": ((256, 4096), (4096, 4096), False, False),
        "256x4096x4096 b transposed": ((256, 4096), (4096, 4096), False, True),
        "256x4096x4096 a transposed": ((4096, 256), (4096, 4096), True, False),
        "4096x256x4096 a transposed (dW)": ((256, 4096), (256, 4096), True, False),
        "256x512x4096": ((256, 512), (512, 4096), False, False),
    }
    for name, (sa, sb, ta, tb) in shapes.items():
        a = torch.randn(*sa)
        b = torch.randn(*sb)
        aa = a.t() if ta else a
        bb = b.t() if tb else b
        m, k = aa.shape
        n = bb.shape[1]
        out[name] = gflops(lambda: torch.mm(aa, bb), 2 * m * n * k, 5)
    return out


def step_ms(optimizer_name, reps=5):
    head = torch.nn.Sequential(
        torch.nn.Linear(512, 4096), torch.nn.ReLU(),
        torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
        torch.nn.Linear(4096, 10),
    )
    if optimizer_name == "sgd":
        opt = torch.optim.SGD(head.parameters(), lr=0.01)
    else:
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    x = torch.randn(256, 512)
    y = torch.arange(256) % 10
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(head(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    step()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - start) / reps * 1000


def main():
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "matmul": matmuls(),
              "step_ms": {"sgd": step_ms("sgd"), "adam": step_ms("adam")}}
    for name, v in result["matmul"].items():
        print(f"torch matmul {name}: {v:.1f} GFLOP/s", file=sys.stderr)
    for name, v in result["step_ms"].items():
        print(f"torch folded head step ({name}): {v:.1f} ms", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
