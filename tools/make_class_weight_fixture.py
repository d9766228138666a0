#!/usr/bin/env python3
"""Writes test/fixtures/class_weight.json: PyTorch's class-weighted cross-entropy on a small case.

Run by hand, never in CI, with Debian's python3-torch:
    /usr/bin/python3 tools/make_class_weight_fixture.py
`--class-weight balanced` must give what sklearn's compute_class_weight('balanced') and
torch.nn.CrossEntropyLoss(weight=w, reduction='mean') give: w_c = N / (K * n_c) over the train
labels, and a batch loss of sum_i w[y_i] * -log softmax(x_i)[y_i] / sum_i w[y_i]. The fixture
holds the train labels, the weights, two batches of logits and targets, and the loss and its
gradient with respect to the logits, all from PyTorch.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
K = 4
# Imbalanced on purpose: 24, 8, 6 and 2 rows (largest/smallest 12).
train = [0] * 24 + [1] * 8 + [2] * 6 + [3] * 2
counts = torch.bincount(torch.tensor(train), minlength=K).double()
weights = (len(train) / (K * counts)).float()

cases = []
# A batch with every class, and one without the rarest (its weight then plays no part).
for targets in ([0, 0, 1, 2, 3, 0, 1, 3], [0, 0, 0, 1, 2, 2]):
    logits = (torch.randn(len(targets), K) * 2).requires_grad_(True)
    t = torch.tensor(targets)
    loss = F.cross_entropy(logits, t, weight=weights, reduction="mean")
    loss.backward()
    unweighted = F.cross_entropy(logits.detach(), t)
    cases.append({
        "logits": logits.detach().flatten().tolist(),
        "targets": targets,
        "loss": loss.item(),
        "unweightedLoss": unweighted.item(),
        "grad": logits.grad.flatten().tolist(),
    })

out = {
    "torch": torch.__version__,
    "classes": K,
    "trainLabels": train,
    "weights": weights.tolist(),
    "cases": cases,
}
path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "class_weight.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"wrote {path}")
