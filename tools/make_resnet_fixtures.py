#!/usr/bin/env python3
"""Writes the ResNet fixtures headstart's tests read (test/fixtures/resnet/).

Run by hand with Debian's python3-torch and python3-torchvision:
    /usr/bin/python3 tools/make_resnet_fixtures.py
Two narrow ResNets built from torchvision's own BasicBlock and Bottleneck classes, with torchvision's
module names, depths and forward (resnet18's [2,2,2,2] basic blocks and resnet50's [3,4,6,3]
bottlenecks) but few channels, so the zip .pth files stay small. Random init, then BatchNorm running
statistics and affine parameters set to non-trivial random values so that folding BN into the
convs is really tested. The expected features are the module's own forward in eval mode (global
average pooling + flatten, fc not applied).
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'resnet')
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(2024)
np.random.seed(2024)


class NarrowResNet(nn.Module):
    """torchvision.models.resnet.ResNet with the stem width and stage planes as parameters."""

    def __init__(self, block, layers, stem, planes, classes=10):
        super().__init__()
        self.inplanes = stem
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, planes[0], layers[0])
        self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3] * block.expansion, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    # torchvision's ResNet._make_layer, unchanged.
    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def randomise_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n) + 0.5
            m.bias.data = torch.randn(n) * 0.1
            m.running_mean = torch.randn(n) * 0.2
            m.running_var = torch.rand(n) * 1.5 + 0.5
            m.num_batches_tracked.fill_(7)


manifest = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'inputs': {}, 'models': {}}
# Images as bytes (the input is (byte - 128) / 64, exact in float32): 224 pixels as float32 would not be small.
SIZES = {32: 2, 64: 2, 224: 1}
inputs = {}
for size, n in SIZES.items():
    b = np.random.randint(0, 256, size=(n, 3, size, size), dtype=np.uint8)
    b.tofile(os.path.join(OUT, f'input{size}.u8'))
    inputs[size] = torch.from_numpy((b.astype(np.float32) - 128) / 64)
    manifest['inputs'][str(size)] = {'file': f'input{size}.u8', 'shape': [n, 3, size, size]}

MODELS = {
    'resnet18': (BasicBlock, [2, 2, 2, 2], 4, [4, 8, 16, 32]),
    'resnet50': (Bottleneck, [3, 4, 6, 3], 2, [2, 4, 8, 16]),
}
for name, (block, layers, stem, planes) in MODELS.items():
    model = NarrowResNet(block, layers, stem, planes)
    randomise_bn(model)
    model.eval()
    torch.save(model.state_dict(), os.path.join(OUT, f'{name}-narrow.pth'))
    entry = {'weights': f'{name}-narrow.pth', 'stem': stem, 'planes': planes, 'outputs': {}}
    with torch.no_grad():
        for size in SIZES:
            out = model.features(inputs[size])
            out.numpy().astype('<f4').tofile(os.path.join(OUT, f'{name}-features{size}.bin'))
            entry['outputs'][str(size)] = {'file': f'{name}-features{size}.bin', 'shape': list(out.shape)}
    manifest['models'][name] = entry

with open(os.path.join(OUT, 'resnet.json'), 'w') as f:
    json.dump(manifest, f, indent=2)
    f.write('\n')

# The names, shapes and dtypes of torchvision's full-size state dicts (no values): the layout checks
# for the real networks are tested against these.
layouts = {}
for name in ('resnet18', 'resnet34', 'resnet50'):
    sd = getattr(torchvision.models, name)().state_dict()
    layouts[name] = [[k, list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in sd.items()]
with open(os.path.join(OUT, 'layouts.json'), 'w') as f:
    json.dump(layouts, f, separators=(',', ':'))
    f.write('\n')
