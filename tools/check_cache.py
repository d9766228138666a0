#!/usr/bin/env python3
"""Reads a headstart feature cache with h5py and prints its shapes, attributes and checksums.

Run with an interpreter that has h5py and numpy (Debian's /usr/bin/python3 here):

    /usr/bin/python3 tools/check_cache.py cache/digits-vgg16-32.h5

The checksums (SHA-256 of the little-endian bytes, plus float64 sums) let a person compare what
h5py reads with what headstart wrote, e.g. against `headstart inspect` or a test's own numbers.
Exit code 1 when the file breaks the format (missing attributes or arrays, wrong dtype or shape).
"""
import hashlib
import sys

import h5py
import numpy as np

ROOT_ATTRS = [
    "format_version", "tool_version", "weights_id", "image_size", "layout", "mean", "std",
    "classes", "num_classes", "data_name", "data_source", "split_rule", "feature_shape",
    "classifier_input",
]


def show(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [show(v) for v in value.tolist()] if value.dtype == object else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(path):
    problems = []
    with h5py.File(path, "r") as f:
        print(f"file: {path}")
        for name in ROOT_ATTRS:
            if name not in f.attrs:
                problems.append(f"missing root attribute {name}")
                continue
            print(f"  {name}: {show(f.attrs[name])}")
        extra = sorted(set(f.attrs) - set(ROOT_ATTRS))
        for name in extra:
            print(f"  {name}: {show(f.attrs[name])}")
        row_shape = tuple(int(v) for v in f.attrs.get("feature_shape", []))
        for split in ("train", "test"):
            if split not in f:
                print(f"{split}: absent")
                continue
            g = f[split]
            feats, labels = g["features"], g["labels"]
            print(f"{split}: features {feats.shape} {feats.dtype} chunks={feats.chunks} compression={feats.compression}")
            print(f"{split}: labels {labels.shape} {labels.dtype}; count attr {show(g.attrs.get('count'))}")
            if feats.dtype != np.float32:
                problems.append(f"{split}/features is {feats.dtype}, expected float32")
            if labels.dtype != np.uint8:
                problems.append(f"{split}/labels is {labels.dtype}, expected uint8")
            if tuple(feats.shape[1:]) != row_shape:
                problems.append(f"{split}/features rows are {feats.shape[1:]}, feature_shape says {row_shape}")
            if labels.shape != (feats.shape[0],):
                problems.append(f"{split}/labels has shape {labels.shape} for {feats.shape[0]} rows")
            if f.attrs.get(f"{split}_count") != feats.shape[0]:
                problems.append(f"{split}_count attribute is {show(f.attrs.get(f'{split}_count'))}, rows are {feats.shape[0]}")
            digest = hashlib.sha256()
            total = 0.0
            for start in range(0, feats.shape[0], 4096):
                block = np.ascontiguousarray(feats[start:start + 4096], dtype="<f4")
                digest.update(block.tobytes())
                total += float(block.astype(np.float64).sum())
            lab = labels[:]
            print(f"{split}: features sha256 {digest.hexdigest()} sum {total:.6f}")
            print(f"{split}: labels sha256 {hashlib.sha256(lab.astype('u1').tobytes()).hexdigest()} "
                  f"counts {np.bincount(lab, minlength=int(f.attrs.get('num_classes', 0))).tolist()}")
    for p in problems:
        print(f"problem: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: check_cache.py FILE.h5", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
