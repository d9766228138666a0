#!/usr/bin/env python3
"""Writes the reference fixtures that headstart's tests read (test/fixtures/).

Run by hand, never in CI, with Debian's python3-torch and python3-torchvision:
    /usr/bin/python3 tools/make_fixtures.py
Every number here comes from PyTorch/torchvision itself, so the tests compare headstart to PyTorch.
Arrays are raw little-endian float32 (or uint8) files described by test/fixtures/reference.json.
"""
import collections
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')
torch.manual_seed(1234)
np.random.seed(1234)
os.makedirs(os.path.join(OUT, 'images'), exist_ok=True)
manifest = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'arrays': {}}

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# VGG16's layout (configuration "D"), narrowed so the fixtures stay small.
NARROW_CFG = [8, 8, 'M', 16, 16, 'M', 16, 16, 16, 'M', 32, 32, 32, 'M', 32, 32, 32, 'M']
HIDDEN = 64


def save_array(name, tensor):
    arr = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    dtype = {np.dtype('float32'): 'float32', np.dtype('uint8'): 'uint8', np.dtype('int64'): 'int64'}[arr.dtype]
    file = f'{name}.bin'
    with open(os.path.join(OUT, file), 'wb') as f:
        f.write(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder('<')).tobytes())
    manifest['arrays'][name] = {'file': file, 'shape': list(arr.shape), 'dtype': dtype}


def narrow_vgg():
    features = torchvision.models.vgg.make_layers(NARROW_CFG, batch_norm=False)
    model = torchvision.models.VGG(features, num_classes=1000, init_weights=True)
    c = NARROW_CFG[-2]
    model.classifier = nn.Sequential(
        nn.Linear(c * 7 * 7, HIDDEN), nn.ReLU(True), nn.Dropout(),
        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(True), nn.Dropout(),
        nn.Linear(HIDDEN, 1000))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                # Non-zero biases, so that a reader that drops them fails the comparison.
                m.bias.uniform_(-0.1, 0.1)
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0, 0.05)
    return model.eval()


def write_safetensors(path, state_dict):
    header, offset, blobs = {}, 0, []
    for k, v in state_dict.items():
        b = v.detach().contiguous().numpy().astype('<f4').tobytes()
        header[k] = {'dtype': 'F32', 'shape': list(v.shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make_images():
    """Small PNGs of several kinds, and their torchvision tensors."""
    rng = np.random.RandomState(7)
    paths = []
    for i in range(6):
        if i % 2 == 0:
            arr = rng.randint(0, 256, size=(32, 32, 3), dtype=np.uint8)
        else:
            y, x = np.mgrid[0:32, 0:32]
            arr = np.stack([(x * 8 + i * 10) % 256, (y * 8) % 256, ((x + y) * 4 + i * 30) % 256], -1).astype(np.uint8)
        p = f'images/rgb32-{i}.png'
        Image.fromarray(arr, 'RGB').save(os.path.join(OUT, p))
        paths.append(p)
    y, x = np.mgrid[0:36, 0:48]
    small = np.stack([x * 5, y * 7, (x * y) % 256], -1).astype(np.uint8)
    Image.fromarray(small, 'RGB').save(os.path.join(OUT, 'images/rgb48x36.png'))
    big = rng.randint(0, 256, size=(150, 200, 3), dtype=np.uint8)
    big[40:110, 50:150] = [200, 30, 90]
    Image.fromarray(big, 'RGB').save(os.path.join(OUT, 'images/rgb200x150.png'))
    gray = (np.add.outer(np.arange(32) * 8, np.arange(32) * 3) % 256).astype(np.uint8)
    Image.fromarray(gray, 'L').save(os.path.join(OUT, 'images/gray32.png'))
    return paths


def main():
    model = narrow_vgg()
    sd = collections.OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    torch.save(sd, os.path.join(OUT, 'narrow-legacy.pth'), _use_new_zipfile_serialization=False)
    torch.save(sd, os.path.join(OUT, 'narrow-zip.pth'))
    write_safetensors(os.path.join(OUT, 'narrow.safetensors'), sd)
    # A checkpoint of another network (ResNet-style keys), for the "wrong network" error.
    other = collections.OrderedDict([
        ('conv1.weight', torch.randn(8, 3, 7, 7)), ('bn1.weight', torch.ones(8)), ('bn1.bias', torch.zeros(8)),
        ('layer1.0.conv1.weight', torch.randn(8, 8, 3, 3)), ('fc.weight', torch.randn(10, 8)), ('fc.bias', torch.zeros(10))])
    torch.save(other, os.path.join(OUT, 'resnet-keys.pth'), _use_new_zipfile_serialization=False)
    bad = collections.OrderedDict(sd)
    bad['features.7.weight'] = torch.randn(16, 12, 3, 3)
    torch.save(bad, os.path.join(OUT, 'wrong-shape.pth'), _use_new_zipfile_serialization=False)

    paths = make_images()
    norm = T.Normalize(MEAN, STD)
    to_tensor = T.ToTensor()
    x32 = torch.stack([norm(to_tensor(Image.open(os.path.join(OUT, p)).convert('RGB'))) for p in paths])
    save_array('input32', x32)
    save_array('gray32_input', norm(to_tensor(Image.open(os.path.join(OUT, 'images/gray32.png')).convert('RGB'))))
    with torch.no_grad():
        f32 = model.features(x32)
        save_array('features32', f32)
        save_array('avgpool32', torch.flatten(model.avgpool(f32), 1))
        save_array('logits32', model(x32))

    # Resize as torchvision does: tensor path (bilinear, antialias) and PIL path, to (80, 80).
    resized_t, resized_pil = [], []
    for name in ['rgb48x36', 'rgb200x150']:
        img = Image.open(os.path.join(OUT, f'images/{name}.png')).convert('RGB')
        t = TF.resize(to_tensor(img), [80, 80], interpolation=T.InterpolationMode.BILINEAR, antialias=True)
        resized_t.append(t)
        resized_pil.append(to_tensor(T.Resize((80, 80))(img)))
        save_array(f'{name}_resize80_tensor', t)
        save_array(f'{name}_resize80_pil', resized_pil[-1])
    x80 = torch.stack([norm(t) for t in resized_t])
    save_array('input80', x80)
    with torch.no_grad():
        f80 = model.features(x80)
        save_array('features80', f80)
        save_array('avgpool80', torch.flatten(model.avgpool(f80), 1))

    # torchvision's AdaptiveAvgPool2d((7, 7)) for several input sizes, square and not.
    for h, w in [(1, 1), (2, 2), (3, 3), (5, 5), (7, 7), (9, 9), (14, 14), (5, 9)]:
        x = torch.randn(2, 3, h, w)
        save_array(f'adaptive_in_{h}x{w}', x)
        save_array(f'adaptive_out_{h}x{w}', F.adaptive_avg_pool2d(x, (7, 7)))

    # The head: a tiny classifier of VGG's shape trained a few steps with PyTorch's optimizers, from a
    # 1x1 map (so the 49-fold replication applies). Dropout 0 so every step is deterministic.
    c, hid, k, n = 4, 8, 3, 6
    fmap = torch.randn(n, c, 1, 1).abs()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    save_array('head_fmap', fmap)
    save_array('head_labels', labels.to(torch.int64))
    init = nn.Sequential(nn.Linear(c * 49, hid), nn.ReLU(), nn.Dropout(0.0), nn.Linear(hid, hid), nn.ReLU(), nn.Dropout(0.0), nn.Linear(hid, k))
    for i in (0, 3, 6):
        save_array(f'head_init_{i}_weight', init[i].weight)
        save_array(f'head_init_{i}_bias', init[i].bias)
    x = torch.flatten(F.adaptive_avg_pool2d(fmap, (7, 7)), 1)
    runs = {
        'sgd': lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
        'adam': lambda p: torch.optim.Adam(p, lr=1e-2),
        'adamw': lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    }
    settings = {}
    for name, make in runs.items():
        head = nn.Sequential(*[m for m in __import__('copy').deepcopy(init)])
        opt = make(head.parameters())
        losses = []
        for _ in range(4):
            opt.zero_grad()
            loss = F.cross_entropy(head(x), labels)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        save_array(f'head_{name}_losses', torch.tensor(losses))
        for i in (0, 3, 6):
            save_array(f'head_{name}_{i}_weight', head[i].weight)
            save_array(f'head_{name}_{i}_bias', head[i].bias)
        settings[name] = {k2: v for k2, v in opt.defaults.items() if isinstance(v, (int, float, bool))}
    manifest['head'] = {'in_channels': c, 'hidden': hid, 'classes': k, 'steps': 4, 'optimizers': settings}
    manifest['narrow'] = {'cfg': NARROW_CFG, 'hidden': HIDDEN, 'images32': paths, 'images80': ['images/rgb48x36.png', 'images/rgb200x150.png']}
    with open(os.path.join(OUT, 'reference.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
