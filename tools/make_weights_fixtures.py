"""Small checkpoints that exercise the corners of the .pth readers (src/weights/pth.ts, pickle.ts).

Run with Debian's /usr/bin/python3 (torch 1.13): /usr/bin/python3 tools/make_weights_fixtures.py
Writes test/fixtures/weights/*.pth and expected.json (each tensor's shape and values, row-major).
"""
import collections
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'weights')


class OldTensor:
    """Pickles like torch 0.3 did (what vgg16-397923af.pth holds): _rebuild_tensor without requires_grad."""

    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        t = self.t
        return (torch._utils._rebuild_tensor, (t.storage(), t.storage_offset(), tuple(t.size()), t.stride()))


def tiny():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(4, 6, generator=g)
    sd = collections.OrderedDict()
    sd['dense'] = torch.randn(3, 4, generator=g)
    sd['transposed'] = torch.randn(5, 3, generator=g).t()  # stride (1, 3): not contiguous
    sd['row1'] = base[1]  # shares base's storage at offset 6
    sd['row3'] = base[3]  # same storage, offset 18
    sd['column'] = base[:, 2]  # stride (6,), offset 2
    sd['scalar'] = torch.tensor(2.5)
    sd['empty'] = torch.zeros(0, 3)
    return sd


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = tiny()
    expected = {k: {'shape': list(v.shape), 'values': [float(x) for x in v.reshape(-1).tolist()]} for k, v in sd.items()}
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)

    with_meta = collections.OrderedDict(sd)
    with_meta._metadata = collections.OrderedDict([('', {'version': 1})])  # pickled with BUILD, as state_dict() does
    torch.save(with_meta, os.path.join(OUT, 'tiny-legacy.pth'), _use_new_zipfile_serialization=False)
    torch.save(with_meta, os.path.join(OUT, 'tiny-zip.pth'))
    torch.save(sd, os.path.join(OUT, 'tiny-zip-p4.pth'), pickle_protocol=4)
    torch.save(sd, os.path.join(OUT, 'tiny-legacy-p4.pth'), _use_new_zipfile_serialization=False, pickle_protocol=4)
    old = collections.OrderedDict((k, OldTensor(v)) for k, v in sd.items() if v.numel() > 0)
    torch.save(old, os.path.join(OUT, 'tiny-old-rebuild.pth'), _use_new_zipfile_serialization=False)
    params = collections.OrderedDict((k, torch.nn.Parameter(v.clone())) for k, v in sd.items() if k == 'dense')
    torch.save(params, os.path.join(OUT, 'tiny-parameter.pth'), _use_new_zipfile_serialization=False)
    torch.save({'epoch': 3, 'state_dict': sd}, os.path.join(OUT, 'tiny-wrapped.pth'))
    torch.save(collections.OrderedDict([('half', torch.ones(2, 2, dtype=torch.float16))]), os.path.join(OUT, 'tiny-half.pth'))
    torch.save(torch.nn.Linear(2, 2), os.path.join(OUT, 'tiny-module.pth'), _use_new_zipfile_serialization=False)

    # Each checkpoint loads back in PyTorch as the same tensors.
    for name in ['tiny-legacy.pth', 'tiny-zip.pth', 'tiny-zip-p4.pth', 'tiny-legacy-p4.pth', 'tiny-old-rebuild.pth']:
        back = torch.load(os.path.join(OUT, name))
        for k, v in back.items():
            assert torch.equal(v, sd[k]), (name, k)


if __name__ == '__main__':
    main()
