#!/usr/bin/python3
"""Independent reference for the training step (tests/train/engine_test.cpp), float64.

  /usr/bin/python3 tests/train/step_golden.py OUT.pt

Builds a tiny GPT-2 (own init, seeded), draws token batches, and runs 10 optimizer steps exactly as
the paper-level recipe says, written from the formulas (not from the C++ code):
  - loss: next-token cross-entropy, the mean over every target token of the step's micro-batches
    (grad_accum = 2 micro-batches of 2 sequences x 8 tokens);
  - lr: linear warmup over `warmup` steps (step s gets lr * s / warmup), then cosine from lr to
    lr * min_lr_ratio at max_steps;
  - gradient clipping to a global L2 norm of `clip` (scale by clip / (norm + 1e-6) when above);
  - AdamW (Loshchilov & Hutter): p <- p * (1 - lr * wd) for 2-D tensors only (matrices and
    embeddings; no decay on biases and LayerNorm), then Adam with bias correction.
OUT.pt holds the initial weights ("init.<name>"), the batches ("batch.<step>.<micro>", (2, 9) int64),
per-step losses, lrs and grad norms, the final weights ("final.<name>") and the hyper-parameters.
"""
import math
import sys

import torch

torch.manual_seed(1234)
V, L, H, C, T = 37, 2, 2, 16, 8
STEPS, ACCUM, B = 10, 2, 2
LR, MIN_RATIO, WARMUP, WD, B1, B2, EPS, CLIP = 1e-2, 0.1, 3, 0.1, 0.9, 0.95, 1e-8, 0.5

names = ["wte.weight", "wpe.weight"]
for i in range(L):
    p = "h.%d." % i
    names += [p + "ln_1.weight", p + "ln_1.bias", p + "attn.c_attn.weight", p + "attn.c_attn.bias",
              p + "attn.c_proj.weight", p + "attn.c_proj.bias", p + "ln_2.weight", p + "ln_2.bias",
              p + "mlp.c_fc.weight", p + "mlp.c_fc.bias", p + "mlp.c_proj.weight", p + "mlp.c_proj.bias"]
names += ["ln_f.weight", "ln_f.bias"]
shapes = {"wte.weight": (V, C), "wpe.weight": (T, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
for i in range(L):
    p = "h.%d." % i
    shapes.update({p + "ln_1.weight": (C,), p + "ln_1.bias": (C,), p + "attn.c_attn.weight": (3 * C, C),
                   p + "attn.c_attn.bias": (3 * C,), p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
                   p + "ln_2.weight": (C,), p + "ln_2.bias": (C,), p + "mlp.c_fc.weight": (4 * C, C),
                   p + "mlp.c_fc.bias": (4 * C,), p + "mlp.c_proj.weight": (C, 4 * C), p + "mlp.c_proj.bias": (C,)})
W = {}
for n in names:
    # random everywhere (LayerNorm around 1) so every parameter matters
    t = torch.randn(shapes[n], dtype=torch.float64) * 0.1
    if n.endswith("ln_1.weight") or n.endswith("ln_2.weight") or n == "ln_f.weight":
        t = 1.0 + t
    W[n] = t.requires_grad_(True)


def ln(x, p):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * W[p + ".weight"] + W[p + ".bias"]


def lin(x, p):
    return x @ W[p + ".weight"].t() + W[p + ".bias"]


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(idx):
    Bn, Tn = idx.shape
    hd = C // H
    x = W["wte.weight"][idx] + W["wpe.weight"][:Tn]
    mask = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for i in range(L):
        p = "h.%d." % i
        a = lin(ln(x, p + "ln_1"), p + "attn.c_attn")
        q, k, v = a.split(C, dim=2)
        q, k, v = [t.view(Bn, Tn, H, hd).transpose(1, 2) for t in (q, k, v)]
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (s @ v).transpose(1, 2).reshape(Bn, Tn, C)
        x = x + lin(y, p + "attn.c_proj")
        x = x + lin(gelu_tanh(lin(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
    return ln(x, "ln_f") @ W["wte.weight"].t()


def lr_at(step):
    if step <= WARMUP:
        return LR * step / WARMUP
    t = min(1.0, (step - WARMUP) / (STEPS - WARMUP))
    return LR * MIN_RATIO + 0.5 * (LR - LR * MIN_RATIO) * (1 + math.cos(math.pi * t))


out = {"init." + n: W[n].detach().clone() for n in names}
m = {n: torch.zeros_like(W[n]) for n in names}
v = {n: torch.zeros_like(W[n]) for n in names}
losses, lrs, norms = [], [], []
for step in range(1, STEPS + 1):
    batches = [torch.randint(0, V, (B, T + 1)) for _ in range(ACCUM)]
    for j, b in enumerate(batches):
        out["batch.%d.%d" % (step, j)] = b
    total, count = 0.0, 0
    for n in names:
        W[n].grad = None
    loss_sum = 0
    for b in batches:
        logits = forward(b[:, :-1])
        loss_sum = loss_sum + torch.nn.functional.cross_entropy(
            logits.reshape(-1, V), b[:, 1:].reshape(-1), reduction="sum")
        count += b[:, 1:].numel()
    loss = loss_sum / count
    loss.backward()
    norm = math.sqrt(sum(float((W[n].grad ** 2).sum()) for n in names))
    if norm > CLIP:
        for n in names:
            W[n].grad.mul_(CLIP / (norm + 1e-6))
    lr = lr_at(step)
    with torch.no_grad():
        for n in names:
            g = W[n].grad
            if W[n].dim() >= 2:
                W[n].mul_(1 - lr * WD)
            m[n] = B1 * m[n] + (1 - B1) * g
            v[n] = B2 * v[n] + (1 - B2) * g * g
            mhat = m[n] / (1 - B1 ** step)
            vhat = v[n] / (1 - B2 ** step)
            W[n].sub_(lr * mhat / (vhat.sqrt() + EPS))
    losses.append(float(loss))
    lrs.append(lr)
    norms.append(norm)
for n in names:
    out["final." + n] = W[n].detach().clone()
out["losses"] = torch.tensor(losses, dtype=torch.float64)
out["lrs"] = torch.tensor(lrs, dtype=torch.float64)
out["grad_norms"] = torch.tensor(norms, dtype=torch.float64)
out["hparams"] = torch.tensor([V, L, H, C, T, STEPS, ACCUM, B, LR, MIN_RATIO, WARMUP, WD, B1, B2, EPS, CLIP],
                              dtype=torch.float64)
torch.save(out, sys.argv[1])
