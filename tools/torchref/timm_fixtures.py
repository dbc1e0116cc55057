#!/usr/bin/env python3
"""Fixtures for loading and adapting published timm ViTs (vit/testdata/timm).

An independent ViT written as an nn.Module (timm's module names, so its
state_dict has timm's keys) of a shape that matches no vitc preset, saved
without vitc metadata; plus PyTorch's bicubic pos_embed resampling and timm's
adapt_input_conv on random tensors. Deterministic; from the repository root:

    /usr/bin/python3 tools/torchref/timm_fixtures.py vit/testdata/timm
"""

import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchref import save_npy, write_safetensors  # noqa: E402


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, N, hd)
        a = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        x = a.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, chans, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, P, D)


class ViT(nn.Module):
    def __init__(self, img, patch, chans, dim, depth, heads, hidden, classes, eps):
        super().__init__()
        self.patch_embed = PatchEmbed(chans, dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, hidden, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


# The acceptance shape of issue 14: matches no preset, eps PyTorch's default.
MODEL = dict(img=40, patch=8, chans=3, dim=96, depth=5, heads=3, hidden=192, classes=7, eps=1e-5)


def resample_abs_pos_embed(posemb, new_size, num_prefix_tokens=1, antialias=False):
    """timm.layers.resample_abs_pos_embed (its default is antialias=True)."""
    prefix, grid = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    old = int(math.sqrt(grid.shape[1]))
    d = grid.shape[2]
    grid = grid.reshape(1, old, old, d).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_size, mode="bicubic", align_corners=False, antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, d)
    return torch.cat([prefix, grid], dim=1)


def adapt_input_conv(in_chans, conv_weight):
    """timm.models._manipulate.adapt_input_conv, verbatim in substance."""
    conv_weight = conv_weight.float()
    O, I, J, K = conv_weight.shape
    if in_chans == 1:
        if I > 3:
            conv_weight = conv_weight.reshape(O, I // 3, 3, J, K).sum(dim=2, keepdim=False)
        else:
            conv_weight = conv_weight.sum(dim=1, keepdim=True)
    elif in_chans != 3:
        if I != 3:
            raise NotImplementedError("Weight format not supported by conversion.")
        repeat = int(math.ceil(in_chans / 3))
        conv_weight = conv_weight.repeat(1, repeat, 1, 1)[:, :in_chans, :, :]
        conv_weight *= 3 / float(in_chans)
    return conv_weight


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(14)
    m = ViT(**MODEL)
    with torch.no_grad():
        for name, p in m.named_parameters():
            # Larger than timm's init so that every part moves the logits.
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            elif name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p[0].numel()))
    # Stored as F16 to keep the file small; the reference runs in float64 on
    # the stored values.
    sd = {k: v.detach().half() for k, v in m.state_dict().items()}
    ck = os.path.join(outdir, "vit_d96.safetensors")
    write_safetensors(ck, sd, metadata=None)
    m = m.double()
    m.load_state_dict({k: v.double() for k, v in sd.items()})
    x = torch.randn(3, MODEL["chans"], MODEL["img"], MODEL["img"], dtype=torch.float32)
    with torch.no_grad():
        logits = m(x.double())
    save_npy(os.path.join(outdir, "vit_d96_input.npy"), x.numpy())
    save_npy(os.path.join(outdir, "vit_d96_logits.npy"), logits.numpy())

    # pos_embed of a 14x14 grid (deit-tiny at 224 px) with 8 channels,
    # resampled to the grids of 32 px (2x2), 64 px (4x4) and up to 20x20.
    pe = torch.randn(1, 1 + 14 * 14, 8, dtype=torch.float64)
    save_npy(os.path.join(outdir, "pos_embed_14.npy"), pe.numpy())
    resampled = {}
    for n in (2, 4, 20):
        out = resample_abs_pos_embed(pe.float().double(), (n, n))
        save_npy(os.path.join(outdir, "pos_embed_14_to_%d.npy" % n), out.numpy())
        resampled[n] = list(out.shape)
        aa = resample_abs_pos_embed(pe.float().double(), (n, n), antialias=True)
        save_npy(os.path.join(outdir, "pos_embed_14_to_%d_aa.npy" % n), aa.numpy())

    w = torch.randn(5, 3, 4, 4, dtype=torch.float32)
    save_npy(os.path.join(outdir, "conv_rgb.npy"), w.numpy())
    save_npy(os.path.join(outdir, "conv_rgb_to_grey.npy"), adapt_input_conv(1, w.clone()).numpy())

    files = sorted(f for f in os.listdir(outdir) if f.endswith((".npy", ".safetensors")))
    manifest = {
        "generator": "tools/torchref/timm_fixtures.py",
        "torch": torch.__version__,
        "model": MODEL,
        "logits_argmax": logits.argmax(-1).tolist(),
        "pos_embed_resampled_shapes": resampled,
        "sha256": {f: hashlib.sha256(open(os.path.join(outdir, f), "rb").read()).hexdigest() for f in files},
    }
    with open(os.path.join(outdir, "fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "vit/testdata/timm")
