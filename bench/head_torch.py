"""PyTorch reference for bench/head.ts: the UNFOLDED head 25088→4096→4096→10 (what torchvision trains
at 32×32: the 1×1 map pooled to 7×7), SGD momentum 0.9, dropout 0.5, batch 256, 2 threads.
Times a few steps and extrapolates to the 196-step epoch. Run: /usr/bin/python3 bench/head_torch.py [steps]"""
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
batch, c, k, epoch_steps = 256, 512, 10, 196
head = nn.Sequential(nn.Linear(c * 49, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, k))
opt = torch.optim.SGD(head.parameters(), lr=1e-3, momentum=0.9)
fmap = torch.rand(batch, c, 1, 1)
labels = torch.randint(0, k, (batch,))
print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}')
times = []
for _ in range(steps + 1):
    t = time.perf_counter()
    x = torch.flatten(F.adaptive_avg_pool2d(fmap, (7, 7)), 1)
    loss = F.cross_entropy(head(x), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t)
steady = sum(times[1:]) / steps
print(f'unfolded SGD: first step {times[0] * 1000:.0f} ms, mean of {steps} more {steady * 1000:.0f} ms; epoch of {epoch_steps} steps ≈ {steady * epoch_steps:.0f} s')
print(f'EPOCH_SECONDS {steady * epoch_steps:.3f}')
