#!/usr/bin/python3
"""Builds assets/digits-binary.tar.gz: scikit-learn's 1,797 8x8 digits in the CIFAR-10 binary layout.

Run with Debian's /usr/bin/python3 (python3-sklearn ships the data):
    /usr/bin/python3 tools/make_digits.py

Source: /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz (UCI optdigits, 64 values
0..16 and the label per row). Each 8x8 value counts the "on" pixels of a 4x4 block of the original
32x32 bitmap, so the upscale to 32x32 is NEAREST (each value becomes its 4x4 block again): it puts
the block statistic back where it was measured and invents no in-between strokes, where bilinear
would blur each stroke across block edges. Values are scaled 0..16 -> 0..255 (round(v * 255 / 16))
and the gray level is copied into R, G and B.

Split: stratified and seeded (numpy RandomState(0), stable across numpy versions): for each digit,
round(20%) of its images go to test (Python rounds halves to even), giving 1,438 train / 359 test. Records keep the CSV order
within each split. The tarball is deterministic (fixed mtime, owner and order, gzip mtime 0).
"""
import gzip
import io
import os
import tarfile

import numpy as np

SRC = '/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'assets', 'digits-binary.tar.gz')
TOP = 'digits-batches-bin'
TEST_FRACTION = 0.2
SEED = 0


def records(pixels, labels):
    """CIFAR layout: 1 label byte, then 1,024 R, 1,024 G, 1,024 B bytes (row-major 32x32)."""
    n = len(labels)
    gray = np.round(pixels.reshape(n, 8, 8) * 255.0 / 16.0).astype(np.uint8)
    big = np.repeat(np.repeat(gray, 4, axis=1), 4, axis=2)  # nearest 4x upscale
    out = np.empty((n, 1 + 3 * 1024), dtype=np.uint8)
    out[:, 0] = labels
    for c in range(3):
        out[:, 1 + c * 1024:1 + (c + 1) * 1024] = big.reshape(n, 1024)
    return out.tobytes()


def add(tar, name, data):
    info = tarfile.TarInfo(f'{TOP}/{name}')
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ''
    tar.addfile(info, io.BytesIO(data))


def main():
    table = np.loadtxt(SRC, delimiter=',')
    pixels, labels = table[:, :64], table[:, 64].astype(np.uint8)
    assert pixels.shape == (1797, 64) and pixels.min() >= 0 and pixels.max() <= 16
    rng = np.random.RandomState(SEED)
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        k = int(round(len(idx) * TEST_FRACTION))
        is_test[rng.permutation(idx)[:k]] = True
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.USTAR_FORMAT) as tar:
        add(tar, 'batches.meta.txt', ''.join(f'{d}\n' for d in range(10)).encode())
        add(tar, 'data_batch_1.bin', records(pixels[train], labels[train]))
        add(tar, 'test_batch.bin', records(pixels[test], labels[test]))
    with open(OUT, 'wb') as f:
        f.write(gzip.compress(raw.getvalue(), compresslevel=9, mtime=0))
    print(f'{OUT}: {len(train)} train, {len(test)} test, {os.path.getsize(OUT)} bytes')


if __name__ == '__main__':
    main()
