#!/usr/bin/python3
"""Fixtures for src/data/augment.ts (test/fixtures/data/augment.json), with torchvision as the reference.

Run with Debian's /usr/bin/python3:  /usr/bin/python3 tools/make_augment_fixtures.py

- crops: F.resized_crop(img, top, left, h, w, [S, S], BILINEAR, antialias=True) and F.hflip of the
  result, on one small float image (bytes / 255, as ToTensor gives), for boxes that shrink, enlarge,
  keep the size and change the aspect ratio.
- params: RandomResizedCrop.get_params on images of several shapes with its random draws replaced
  by fixed uniform numbers u in [0, 1): torch.empty(1).uniform_(a, b) gives float32(a + (b - a) * u)
  and torch.randint(lo, hi, (1,)) gives lo + floor(u * (hi - lo)). torchvision's own code runs; only
  the generator is swapped, so the TypeScript port can be fed the same numbers.
"""
import json
import math
import os
from unittest import mock

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode, RandomResizedCrop

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test', 'fixtures', 'data', 'augment.json')
rng = np.random.RandomState(11)


def crops():
    h, w = 13, 17
    pixels = rng.randint(0, 256, (3, h, w), dtype=np.uint8)
    img = torch.from_numpy(pixels).float() / 255
    cases = []
    for (top, left, bh, bw, size) in [(0, 0, 13, 17, 8), (2, 3, 9, 11, 8), (4, 5, 5, 4, 12), (0, 1, 13, 13, 13), (7, 0, 6, 17, 5), (1, 9, 12, 8, 20)]:
        out = F.resized_crop(img, top, left, bh, bw, [size, size], InterpolationMode.BILINEAR, antialias=True)
        cases.append({'box': [top, left, bh, bw], 'size': size,
                      'out': out.reshape(-1).tolist(), 'flipped': F.hflip(out).reshape(-1).tolist()})
    return {'height': h, 'width': w, 'pixels': pixels.reshape(-1).tolist(), 'cases': cases}


class Draws:
    def __init__(self, values):
        self.values = list(values)
        self.used = 0

    def take(self):
        u = self.values[self.used]
        self.used += 1
        return u

    def empty(self, *shape, **kw):
        draws = self

        class Uniform:
            def uniform_(self, a, b):
                a, b = float(a), float(b)
                return torch.tensor([a + (b - a) * draws.take()], dtype=torch.float32)

        return Uniform()

    def randint(self, lo, hi, size):
        return torch.tensor([lo + math.floor(self.take() * (hi - lo))])


def params():
    out = []
    shapes = [(32, 32), (8, 8), (13, 17), (224, 160), (3, 50), (50, 3), (2, 2)]
    for (h, w) in shapes:
        for k in range(4):
            values = rng.random_sample(42).tolist()
            if k == 3:
                # every attempt at full area with the widest ratio: the box fits only a tall enough image
                values = [0.999999] * 40 + values[:2]
            draws = Draws(values)
            img = torch.zeros(3, h, w)
            with mock.patch('torch.empty', draws.empty), mock.patch('torch.randint', draws.randint):
                i, j, bh, bw = RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
            out.append({'height': h, 'width': w, 'draws': values, 'used': draws.used, 'box': [i, j, bh, bw]})
    return out


def main():
    data = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'crops': crops(), 'params': params()}
    with open(OUT, 'w') as f:
        json.dump(data, f)
    fallbacks = sum(1 for p in data['params'] if p['used'] == 20)
    print(f'wrote {OUT}: {len(data["crops"]["cases"])} crops, {len(data["params"])} boxes ({fallbacks} by the fallback)')


if __name__ == '__main__':
    main()
