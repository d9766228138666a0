#!/usr/bin/env python3
"""Writes the ONNX backbone fixture headstart's tests read (test/fixtures/onnx/).

Run by hand with Debian's python3-torch:
    /usr/bin/python3 tools/make_onnx_fixture.py
A tiny network (conv, BatchNorm with non-trivial statistics, ReLU, max pool, a residual block,
global average pooling) exported by torch.onnx.export as a user would export a feature extractor:
input `pixels` with a dynamic batch and dynamic height and width, outputs `embedding` [batch, 16]
(the features) and `logits` [batch, 5] (a second output, for choosing one). The expected features
are the module's own forward in eval mode on fixed inputs at 32 and 48 pixels.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'onnx')
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(12)
np.random.seed(12)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.expand = nn.Conv2d(8, 16, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        embedding = torch.flatten(self.pool(torch.relu(self.expand(x))), 1)
        return embedding, self.fc(embedding)


model = Tiny()
for m in model.modules():
    if isinstance(m, nn.BatchNorm2d):
        n = m.num_features
        m.weight.data = torch.rand(n) + 0.5
        m.bias.data = torch.randn(n) * 0.1
        m.running_mean = torch.randn(n) * 0.2
        m.running_var = torch.rand(n) * 1.5 + 0.5
model.eval()

path = os.path.join(OUT, 'tiny.onnx')
torch.onnx.export(
    model,
    torch.zeros(1, 3, 32, 32),
    path,
    input_names=['pixels'],
    output_names=['embedding', 'logits'],
    dynamic_axes={'pixels': {0: 'batch', 2: 'height', 3: 'width'}, 'embedding': {0: 'batch'}, 'logits': {0: 'batch'}},
    opset_version=13,
)

manifest = {'torch': torch.__version__, 'model': 'tiny.onnx', 'inputs': {}}
for size, n in ((32, 3), (48, 2)):
    x = torch.randn(n, 3, size, size)
    x.numpy().astype('<f4').tofile(os.path.join(OUT, f'input{size}.bin'))
    with torch.no_grad():
        embedding, logits = model(x)
    embedding.numpy().astype('<f4').tofile(os.path.join(OUT, f'embedding{size}.bin'))
    logits.numpy().astype('<f4').tofile(os.path.join(OUT, f'logits{size}.bin'))
    manifest['inputs'][str(size)] = {'input': f'input{size}.bin', 'shape': [n, 3, size, size], 'embedding': f'embedding{size}.bin', 'logits': f'logits{size}.bin'}

with open(os.path.join(OUT, 'tiny.json'), 'w') as f:
    json.dump(manifest, f, indent=2)
    f.write('\n')
