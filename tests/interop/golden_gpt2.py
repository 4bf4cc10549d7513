#!/usr/bin/python3
"""Golden reference for `import hf`: a tiny GPT-2 in Hugging Face's layout, and its logits.

Written from the GPT-2 architecture (Radford et al. 2019; HF's GPT2LMHeadModel conventions) in
plain torch, independently of the C++ code, and without the `transformers` or `safetensors`
packages (neither is installed): the safetensors file is assembled by hand with struct + json.

  /usr/bin/python3 tests/interop/golden_gpt2.py [OUT_DIR]   (default: tests/interop/golden)

writes OUT_DIR/config.json, OUT_DIR/model.safetensors (HF names, Conv1D weights stored (in, out),
plus the attn.bias / attn.masked_bias buffers older HF files carry) and OUT_DIR/logits.safetensors
(input_ids I64 (B, T), logits F64 (B, T, V) computed in float64 from the float32 weights).
Deterministic: same torch version -> same bytes.
"""
import json
import math
import os
import struct
import sys

import torch

CFG = dict(vocab_size=320, n_positions=32, n_embd=48, n_layer=2, n_head=4)
SEED = 1234
B, T = 2, 32  # a full-length context exercises every position embedding


def make_weights():
    """HF GPT-2 state dict (float32). Scales are larger than GPT-2's init (0.02) so that every
    part of the network visibly moves the logits."""
    g = torch.Generator().manual_seed(SEED)
    C, V, P = CFG["n_embd"], CFG["vocab_size"], CFG["n_positions"]

    def randn(*shape, std):
        return (torch.randn(*shape, generator=g) * std).float()

    sd = {"transformer.wte.weight": randn(V, C, std=0.3), "transformer.wpe.weight": randn(P, C, std=0.3)}
    for i in range(CFG["n_layer"]):
        p = "transformer.h.%d." % i
        for ln in ("ln_1", "ln_2"):
            sd[p + ln + ".weight"] = 1.0 + randn(C, std=0.1)
            sd[p + ln + ".bias"] = randn(C, std=0.1)
        # Conv1D: weight (in, out), y = x @ W + b
        sd[p + "attn.c_attn.weight"] = randn(C, 3 * C, std=0.15)
        sd[p + "attn.c_attn.bias"] = randn(3 * C, std=0.1)
        sd[p + "attn.c_proj.weight"] = randn(C, C, std=0.15)
        sd[p + "attn.c_proj.bias"] = randn(C, std=0.1)
        sd[p + "mlp.c_fc.weight"] = randn(C, 4 * C, std=0.15)
        sd[p + "mlp.c_fc.bias"] = randn(4 * C, std=0.1)
        sd[p + "mlp.c_proj.weight"] = randn(4 * C, C, std=0.1)
        sd[p + "mlp.c_proj.bias"] = randn(C, std=0.1)
        # Buffers that transformers < 4.31 saved with the weights; importers must ignore them.
        sd[p + "attn.bias"] = torch.tril(torch.ones(P, P, dtype=torch.bool)).view(1, 1, P, P)
        sd[p + "attn.masked_bias"] = torch.tensor(-1e4)
    sd["transformer.ln_f.weight"] = 1.0 + randn(C, std=0.1)
    sd["transformer.ln_f.bias"] = randn(C, std=0.1)
    return sd


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance, as nn.LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_new(x):
    # GPT-2's tanh approximation ("gelu_new" in HF configs)
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gpt2_logits(sd, idx):
    """idx (B, T) int64 -> logits (B, T, V) in float64."""
    w = {k: v.double() for k, v in sd.items() if v.is_floating_point()}
    Bn, Tn = idx.shape
    C, H = CFG["n_embd"], CFG["n_head"]
    hd = C // H
    x = w["transformer.wte.weight"][idx] + w["transformer.wpe.weight"][torch.arange(Tn)]  # (B, T, C)
    causal = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for i in range(CFG["n_layer"]):
        p = "transformer.h.%d." % i
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # (B, T, 3C)
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (t.view(Bn, Tn, H, hd).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)  # (B, H, T, T)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(Bn, Tn, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        m = gelu_new(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])  # (B, T, 4C)
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"])
    return x @ w["transformer.wte.weight"].t()  # tied LM head


DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int64: ("I64", "<i8"),
          torch.bool: ("BOOL", "|b1")}


def write_safetensors(path, tensors, metadata):
    """safetensors by hand: u64 LE header length, JSON header, raw little-endian bytes."""
    header, chunks, pos = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.numpy().tobytes()  # numpy on x86 is little-endian
        header[name] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def main(out):
    torch.manual_seed(SEED)
    os.makedirs(out, exist_ok=True)
    sd = make_weights()
    idx = torch.randint(0, CFG["vocab_size"], (B, T), generator=torch.Generator().manual_seed(SEED + 1))
    logits = gpt2_logits(sd, idx)
    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": CFG["vocab_size"], "n_positions": CFG["n_positions"], "n_ctx": CFG["n_positions"],
        "n_embd": CFG["n_embd"], "n_layer": CFG["n_layer"], "n_head": CFG["n_head"], "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": 0.02,
        "tie_word_embeddings": True, "torch_dtype": "float32",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), sd, {"format": "pt"})
    write_safetensors(os.path.join(out, "logits.safetensors"), {"input_ids": idx, "logits": logits},
                      {"seed": str(SEED)})
    print("wrote %s: logits %s, |logits| max %.3f std %.3f" % (out, tuple(logits.shape), logits.abs().max(), logits.std()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
