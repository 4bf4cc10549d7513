#!/usr/bin/python3
"""Independent Llama / Qwen2 decoder forward in plain torch (float64), for tests/model/llama_test.cpp.

  /usr/bin/python3 tests/model/llama_golden.py IN.pt OUT.pt

IN.pt: a dict (torch::pickle_save) with the model's named parameters (our names: wte, h.<i>.ln_1,
h.<i>.attn.{q,k,v,o}_proj, h.<i>.ln_2, h.<i>.mlp.{gate,up,down}_proj, ln_f, lm_head when untied;
torch Linear layout (out, in)), "idx" (B, T) int64, "mask" (B, T) bool (False = left padding) and
"cfg" = [n_layer, n_head, n_kv_head, rope_theta, rms_eps] (float64). OUT: the logits (B, T, V) as
raw little-endian float64 bytes.
Written from the published formulas (RMSNorm: Zhang & Sennrich 2019; RoPE: Su et al. 2021 in
the rotate-half form of HF's Llama; SwiGLU: Shazeer 2020; grouped-query attention: Ainslie et al.
2023), not from the C++ code. Positions count real tokens only (left padding keeps a row's
positions 0, 1, ...); a query row that sees no key averages every value row.
"""
import sys

import torch

sd = torch.load(sys.argv[1])
idx, mask = sd["idx"], sd["mask"].bool()
n_layer, n_head, n_kv, theta, eps = sd["cfg"].tolist()
n_layer, n_head, n_kv = int(n_layer), int(n_head), int(n_kv)
W = {k: v.double() for k, v in sd.items() if k not in ("idx", "mask", "cfg")}


def rms(x, p):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * W[p + ".weight"]


def lin(x, p):
    y = x @ W[p + ".weight"].t()
    return y + W[p + ".bias"] if p + ".bias" in W else y


B, T = idx.shape
C = W["wte.weight"].shape[1]
hd = C // n_head
pos = (mask.long().cumsum(1) - 1).clamp(min=0).double()            # (B, T)
inv_freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
ang = pos[..., None] * inv_freq                                    # (B, T, hd/2)
cos, sin = torch.cos(ang), torch.sin(ang)


def rope(x):  # x (B, H, T, hd): pairs (i, i + hd/2) rotate by the angle of frequency i
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    c, s = cos[:, None], sin[:, None]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


keep = torch.tril(torch.ones(T, T, dtype=torch.bool))[None] & mask[:, None, :]   # (B, Tq, Tk)
keep = keep | ~keep.any(-1, keepdim=True)                                       # no key: all keys
x = W["wte.weight"][idx]
for i in range(n_layer):
    p = f"h.{i}"
    a = rms(x, p + ".ln_1")
    q = rope(lin(a, p + ".attn.q_proj").view(B, T, n_head, hd).transpose(1, 2))
    k = rope(lin(a, p + ".attn.k_proj").view(B, T, n_kv, hd).transpose(1, 2))
    v = lin(a, p + ".attn.v_proj").view(B, T, n_kv, hd).transpose(1, 2)
    group = n_head // n_kv  # query head j reads key/value head j // group
    k = torch.stack([k[:, j // group] for j in range(n_head)], 1)
    v = torch.stack([v[:, j // group] for j in range(n_head)], 1)
    s = (q @ k.transpose(-1, -2)) / hd ** 0.5
    s = s.masked_fill(~keep[:, None], float("-inf"))
    y = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, C)
    x = x + lin(y, p + ".attn.o_proj")
    m = rms(x, p + ".ln_2")
    g = lin(m, p + ".mlp.gate_proj")
    x = x + lin(g * torch.sigmoid(g) * lin(m, p + ".mlp.up_proj"), p + ".mlp.down_proj")
x = rms(x, "ln_f")
head = W["lm_head.weight"] if "lm_head.weight" in W else W["wte.weight"]
logits = (x @ head.t()).contiguous()
with open(sys.argv[2], "wb") as f:  # raw float64, row-major (B, T, V)
    f.write(logits.numpy().tobytes())
