#!/usr/bin/python3
"""The same GPT-2 training step as `codex-train bench train`, in PyTorch eager (the baseline).

  /usr/bin/python3 scripts/bench/train_gpt_pytorch.py --threads 1 --n-layer 2 --n-head 2 \
      --n-embd 64 --block-size 128 --batch-size 8 --vocab-size 8000 --steps 20

Prints ONE JSON line like the C++ bench. Same work per step: forward, cross-entropy, backward,
grad-norm clipping at 1.0, AdamW (betas 0.9/0.95, decay on 2-D tensors), tied LM head.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.attn_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = [t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.h))
        att = att.masked_fill(~mask[:T, :T], float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, T, L, H, C):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList([Block(C, H) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))
        for n, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L) if n.endswith("proj.weight") else 0.02)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x, self.mask)
        return self.ln_f(x) @ self.wte.weight.t()


def main():
    a = argparse.ArgumentParser()
    for k, d in [("threads", 1), ("n-layer", 2), ("n-head", 2), ("n-embd", 64), ("block-size", 128),
                 ("batch-size", 8), ("vocab-size", 8000), ("steps", 20), ("warmup", 3)]:
        a.add_argument("--" + k, type=int, default=d)
    a = a.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    m = GPT(a.vocab_size, a.block_size, a.n_layer, a.n_head, a.n_embd)
    decay = [p for p in m.parameters() if p.dim() >= 2]
    no_decay = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    data = torch.randint(0, a.vocab_size, (a.batch_size, a.block_size + 1))
    x, y = data[:, :-1], data[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        logits = m(x)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    s = time.perf_counter() - t0
    print(json.dumps({"bench": "train-pytorch", "tokens_per_s": a.steps * a.batch_size * a.block_size / s,
                      "ms_per_step": 1000 * s / a.steps,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "params": sum(p.numel() for p in m.parameters()), "threads": a.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
