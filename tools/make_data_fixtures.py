#!/usr/bin/python3
"""Fixtures for src/data (test/fixtures/data/), made with PIL and torchvision as the reference.

Run with Debian's /usr/bin/python3:  /usr/bin/python3 tools/make_data_fixtures.py

- folder/: a tiny ImageFolder tree (nested subfolder, upper-case extension, a non-image file) and
  folder.json with torchvision's ImageFolder classes and sample order.
- modes/: PNGs in modes PIL converts specially (16-bit RGB and gray, RGBA, LA, palette) and
  modes.json with what `Image.open(p).convert('RGB')` gives (HWC bytes), the reference for decoding.
- oriented.jpg: a 4x2 (w x h) JPEG with EXIF orientation 6, and its PIL exif_transpose size.
"""
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps
from torchvision.datasets import ImageFolder

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test', 'fixtures', 'data')
rng = np.random.RandomState(7)


def png16(path, arr, color_type):
    """A 16-bit PNG written by hand (PIL cannot write 16-bit RGB)."""
    h, w = arr.shape[:2]
    raw = b''.join(b'\x00' + arr[y].astype('>u2').tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)

    ihdr = struct.pack('>IIBBBBB', w, h, 16, color_type, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def small_png(path, size=(6, 5)):
    Image.fromarray(rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8), 'RGB').save(path)


def folder():
    root = os.path.join(OUT, 'folder')
    files = ['cat/b.png', 'cat/a.PNG', 'cat/sub/c.png', 'cat/sub-x/d.png', 'cat/notes.txt',
             'dog/z.png', 'dog/y.png', 'Zebra/m.png']
    for rel in files:
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if rel.endswith('.txt'):
            with open(p, 'w') as f:
                f.write('not an image\n')
        else:
            small_png(p)
    ds = ImageFolder(root)
    return {'classes': ds.classes,
            'samples': [[os.path.relpath(p, root), c] for p, c in ds.samples]}


def modes():
    d = os.path.join(OUT, 'modes')
    os.makedirs(d, exist_ok=True)
    h, w = 3, 4
    png16(os.path.join(d, 'rgb16.png'), rng.randint(0, 65536, (h, w, 3)), 2)
    # values around 255, so both the clipped and the kept ones are checked
    png16(os.path.join(d, 'gray16.png'), rng.randint(0, 600, (h, w)), 0)
    Image.fromarray(rng.randint(0, 256, (h, w, 4), dtype=np.uint8), 'RGBA').save(os.path.join(d, 'rgba.png'))
    Image.fromarray(rng.randint(0, 256, (h, w, 2), dtype=np.uint8), 'LA').save(os.path.join(d, 'la.png'))
    pal = Image.fromarray(rng.randint(0, 256, (h, w, 3), dtype=np.uint8), 'RGB').quantize(5)
    pal.save(os.path.join(d, 'palette.png'))
    out = {}
    for name in sorted(os.listdir(d)):
        img = Image.open(os.path.join(d, name))
        rgb = np.asarray(img.convert('RGB'))
        out[name] = {'mode': img.mode, 'width': img.width, 'height': img.height, 'rgb': rgb.reshape(-1).tolist()}
    return out


def oriented():
    img = Image.new('RGB', (4, 2), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    p = os.path.join(OUT, 'oriented.jpg')
    img.save(p, quality=95, exif=exif.tobytes())
    t = ImageOps.exif_transpose(Image.open(p))
    return {'width': t.width, 'height': t.height}


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {'folder': folder(), 'modes': modes(), 'oriented': oriented()}
    with open(os.path.join(OUT, 'data.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest['folder']), {k: v['mode'] for k, v in manifest['modes'].items()}, manifest['oriented'])


if __name__ == '__main__':
    main()
