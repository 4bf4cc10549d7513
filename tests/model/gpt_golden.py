#!/usr/bin/python3
"""Independent GPT-2 forward in plain torch (float64), for tests/model/gpt_test.cpp.

  /usr/bin/python3 tests/model/gpt_golden.py IN.pt OUT.pt

IN.pt: a dict (torch::pickle_save) with the model's named parameters (our names, torch Linear
layout (out, in)), "idx" (B, T) int64 and "cfg" = [n_layer, n_head]. OUT.pt: logits (B, T, V)
float64 and the loss of predicting idx[:, 1:] from idx[:, :-1] (as a 1-element tensor).
Written from the GPT-2 paper / HF GPT2LMHeadModel conventions, not from the C++ code.
"""
import math
import sys

import torch

sd = torch.load(sys.argv[1])
idx = sd["idx"]
n_layer, n_head = [int(x) for x in sd["cfg"].tolist()]
W = {k: v.double() for k, v in sd.items() if k not in ("idx", "cfg")}


def ln(x, p):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * W[p + ".weight"] + W[p + ".bias"]


def lin(x, p):
    return x @ W[p + ".weight"].t() + W[p + ".bias"]


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


B, T = idx.shape
C = W["wte.weight"].shape[1]
hd = C // n_head
x = W["wte.weight"][idx] + W["wpe.weight"][:T]
mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
for i in range(n_layer):
    p = "h.%d." % i
    a = lin(ln(x, p + "ln_1"), p + "attn.c_attn")
    q, k, v = a.split(C, dim=2)
    q, k, v = [t.view(B, T, n_head, hd).transpose(1, 2) for t in (q, k, v)]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    s = s.masked_fill(~mask, float("-inf")).softmax(-1)
    y = (s @ v).transpose(1, 2).reshape(B, T, C)
    x = x + lin(y, p + "attn.c_proj")
    x = x + lin(gelu_tanh(lin(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
x = ln(x, "ln_f")
logits = x @ W["wte.weight"].t()
loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1))
torch.save({"logits": logits, "loss": loss.view(1)}, sys.argv[2])
