#!/usr/bin/python3
"""sparseref: PyTorch reference for the sparse training branch of Taylor attention.

Two formulations of the branch that runs beside linear Taylor attention A·V in training
(docs/taylor.md says where each comes from and how they differ):

  vitc      S = M ⊙ (softmax(s·QKᵀ) − A),  extra = α·S·V
            M = [softmax(s·Q̃K̃ᵀ) > θ], Q̃, K̃ symmetric 4-bit, one scale per image and head;
            the mask passes no gradient (vitc's DESIGN.md)
  vitality  S = M ⊙ softmax(s·Q̃K̃ᵀ),        extra = α·s·S·V
            Q̃, K̃ asymmetric 4-bit, one range over the whole batch (min, max; 16 levels),
            round half to even, straight-through gradient; M as above
            (GATECH-EIC/ViTALiTy's training code, src/vision_transformer.py Attention with
            --vitality, and src/quantize.py QuantMeasure in training mode)

Both return extra (B, N, D), mean|S| and the mask density. `vitality_public_attention` is the
whole attention layer of ViTALiTy's public code (keys centred over features, no v̄, no
normaliser), kept to document what vitc does not copy; no fixture uses it.

Each quantiser runs in float32 with the operations vitc's Go code performs, so Q̃, K̃ match
vitc bit for bit; everything after them runs in float64.

    /usr/bin/python3 tools/torchref/sparseref.py make-fixtures taylorattn/testdata/sparse

writes, per case, the input qkv and upstream gradient, the branch's output and the layer's
(Taylor + branch), and the gradients of both with respect to qkv (.npy, float32), and
cases.json. Deterministic; a case is refused when a predicted probability lies within 1e-5
(relative) of θ, where float32 rounding could flip the mask.
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchref  # noqa: E402

MARGIN = 1e-5  # smallest |P̃ − θ|/θ a fixture accepts


# ----------------------------------------------------------------------------------------------
# quantisers (float32, as vitc computes them), then straight-through in float64

def quant_sym4_per_head(x32):
    """vitc's mask predictor: x (B, H, N, hd) float32 on a symmetric 4-bit grid, one scale
    amax/7 per (image, head); round half away from zero, clamp to [-8, 7]."""
    amax = x32.abs().amax(dim=(-2, -1), keepdim=True)
    scale = amax / 7
    safe = torch.where(amax > 0, scale, torch.ones_like(scale))
    t = (x32 / safe).double()
    r = (torch.sign(t) * torch.floor(t.abs() + 0.5)).clamp(-8, 7).float()
    return torch.where(amax > 0, r * safe, torch.zeros_like(x32))


def quant_asym4_tensor(x32):
    """ViTALiTy's QuantMeasure(4) in training mode: one range over the whole tensor (every
    image and head: flatten(1, -1), min/max per image, then the extreme over the batch),
    zero point = min, scale = max((max − min)/15, 1e-8), round half to even, clamp [0, 15]."""
    lo, hi = x32.min(), x32.max()
    scale = torch.maximum((hi - lo) / 15, torch.tensor(1e-8, dtype=torch.float32))
    r = torch.round((x32 - lo) / scale).clamp(0, 15)
    return r * scale + lo


def straight_through(x64, xq32):
    """xq in the forward pass, the identity's gradient in the backward pass."""
    return x64 + (xq32.double() - x64).detach()


# ----------------------------------------------------------------------------------------------
# the two formulations; q, k, v: (B, H, N, hd) float64 leaves of the graph, *32 their float32

def vitc_branch(q, k, v, q32, k32, alpha, theta):
    s = q.shape[-1] ** -0.5
    pt = torch.softmax(s * quant_sym4_per_head(q32).double()
                       @ quant_sym4_per_head(k32).double().transpose(-2, -1), dim=-1)
    m = (pt > theta).double()  # no gradient
    p = torch.softmax(s * q @ k.transpose(-2, -1), dim=-1)
    a = torchref.taylor_attention_matrix(q, k, s)
    sm = m * (p - a)
    return alpha * sm @ v, sm.abs().mean(), m.mean().item(), pt


def vitality_branch(q, k, v, q32, k32, alpha, theta):
    s = q.shape[-1] ** -0.5
    qq = straight_through(q, quant_asym4_tensor(q32))
    kq = straight_through(k, quant_asym4_tensor(k32))
    pt = torch.softmax(s * qq @ kq.transpose(-2, -1), dim=-1)
    m = (pt > theta).double()
    sm = m * pt
    return alpha * s * sm @ v, sm.abs().mean(), m.mean().item(), pt.detach()


BRANCHES = {"vitc": vitc_branch, "vitality": vitality_branch}


def vitality_public_attention(q, k, v, theta=0.002):
    """ViTALiTy's public attention layer with --vitality (the layer, not just the branch):
    s·(S·V + Q·(K − mean over features)ᵀV), S = M ⊙ softmax(s·Q̃K̃ᵀ). It keeps S at
    inference too (with the quantiser's running range). vitc does not use this."""
    s = q.shape[-1] ** -0.5
    qq = straight_through(q, quant_asym4_tensor(q.float()))
    kq = straight_through(k, quant_asym4_tensor(k.float()))
    pt = torch.softmax(s * qq @ kq.transpose(-2, -1), dim=-1)
    sm = (pt > theta) * pt
    kc = k - k.mean(dim=-1, keepdim=True)
    return (sm @ v + q @ (kc.transpose(-2, -1) @ v)) * s


# ----------------------------------------------------------------------------------------------
# one case: qkv (B, N, 3D) float32 in timm's packing (B, N, 3, H, hd)

def run_case(qkv32, gout32, heads, formulation, alpha, theta, reg):
    b, n, d3 = qkv32.shape
    d = d3 // 3
    hd = d // heads

    def split(t):
        t = t.reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
        return t[0], t[1], t[2]

    q32, k32, _ = split(torch.from_numpy(qkv32))
    gout = torch.from_numpy(gout32).double()
    res = {}
    for which in ("extra", "out"):
        x = torch.from_numpy(qkv32).double().requires_grad_(True)
        q, k, v = split(x)
        extra, abs_mean, density, pt = BRANCHES[formulation](q, k, v, q32, k32, alpha, theta)
        y = extra
        if which == "out":
            y = y + torchref.taylor_attention(q, k, v, hd ** -0.5)
        y = y.transpose(1, 2).reshape(b, n, d)
        loss = (gout * y).sum() + reg * abs_mean
        loss.backward()
        res[which] = y.detach().numpy()
        res["d" + which] = x.grad.numpy()
        res["abs_mean"], res["density"] = abs_mean.item(), density
        res["margin"] = ((pt - theta).abs() / theta).min().item()
    return res


# Input sets: qkv (B, N, 3·heads·hd) with standard deviation std, keys shifted off centre, and
# an upstream gradient (B, N, heads·hd). Each is used by both formulations.
INPUTS = [
    dict(name="micro", b=2, n=50, heads=2, hd=8, std=1.6, seed=11),
    dict(name="t197", b=1, n=197, heads=1, hd=8, std=1.4, seed=12),
    dict(name="t197peaked", b=1, n=197, heads=1, hd=8, std=2.5, seed=13),
]
# name, input set, formulation, θ: a partial mask each; t197peaked keeps few entries, so the
# sparse-row kernels run by default there
CASES = [
    dict(name="micro_vitc", input="micro", formulation="vitc", theta=0.01),
    dict(name="micro_vitality", input="micro", formulation="vitality", theta=0.01),
    dict(name="t197_vitc", input="t197", formulation="vitc", theta=0.002),
    dict(name="t197_vitality", input="t197", formulation="vitality", theta=0.002),
    dict(name="t197peaked_vitc", input="t197peaked", formulation="vitc", theta=0.02),
    dict(name="t197peaked_vitality", input="t197peaked", formulation="vitality", theta=0.02),
]
ALPHA, REG = 0.7, 3.0


def make_inputs(spec, seed):
    g = torch.Generator().manual_seed(seed)
    d = spec["heads"] * spec["hd"]
    qkv = (torch.randn((spec["b"], spec["n"], 3 * d), generator=g) * spec["std"]).float()
    qkv[:, :, d:2 * d] += 0.5  # keys off centre: centring has work to do
    gout = torch.randn((spec["b"], spec["n"], d), generator=g).float()
    return qkv.numpy(), gout.numpy()


def make_fixtures(outdir):
    os.makedirs(outdir, exist_ok=True)
    manifest = {"generator": "tools/torchref/sparseref.py make-fixtures", "torch": torch.__version__,
                "numpy": np.__version__, "alpha": ALPHA, "reg": REG, "margin": MARGIN,
                "inputs": [], "cases": []}
    for spec in INPUTS:
        # the first seed from spec's on whose data no case puts P̃ within MARGIN of θ
        seed = spec["seed"]
        while True:
            qkv, gout = make_inputs(spec, seed)
            cases = [c for c in CASES if c["input"] == spec["name"]]
            results = [run_case(qkv, gout, spec["heads"], c["formulation"], ALPHA, c["theta"], REG)
                       for c in cases]
            worst = min(r["margin"] for r in results)
            if worst > MARGIN:
                break
            print("%s: seed %d puts P̃ within %.2g of θ; next seed" % (spec["name"], seed, worst))
            seed += 1000
        torchref.save_npy(os.path.join(outdir, spec["name"] + "_qkv.npy"), qkv)
        torchref.save_npy(os.path.join(outdir, spec["name"] + "_gout.npy"), gout)
        manifest["inputs"].append(dict(spec, seed=seed))
        for c, res in zip(cases, results):
            for k in ("extra", "dextra", "out", "dout"):
                name = {"dextra": "dqkv_extra", "dout": "dqkv_out"}.get(k, k)
                torchref.save_npy(os.path.join(outdir, "%s_%s.npy" % (c["name"], name)), res[k])
            manifest["cases"].append(dict(c, heads=spec["heads"], alpha=ALPHA, reg=REG,
                                          abs_mean=res["abs_mean"], density=res["density"],
                                          margin=res["margin"]))
            print("%-22s density %.3f  mean|S| %.4g  margin %.2g" % (
                c["name"], res["density"], res["abs_mean"], res["margin"]))
    files = sorted(f for f in os.listdir(outdir) if f.endswith(".npy"))
    manifest["sha256"] = {f: hashlib.sha256(open(os.path.join(outdir, f), "rb").read()).hexdigest()
                          for f in files}
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(outdir, f)) for f in files)
    print("%d files, %d bytes" % (len(files), total))


def selftest():
    """vitc's branch restores softmax with every entry kept and α = 1; the vitality branch's
    term is the public layer minus its low-rank part; the quantisers sit on their grids."""
    g = torch.Generator().manual_seed(0)
    q32, k32, v32 = (torch.randn((2, 3, 9, 4), generator=g) for _ in range(3))
    q, k, v = q32.double(), k32.double(), v32.double()
    s = 0.5
    extra, _, density, _ = vitc_branch(q, k, v, q32, k32, 1.0, 0.0)
    want = torch.softmax(s * q @ k.transpose(-2, -1), -1) @ v
    err = (torchref.taylor_attention(q, k, v, s) + extra - want).abs().max().item()
    assert density == 1 and err < 1e-12, (density, err)
    extra, _, _, _ = vitality_branch(q, k, v, q32, k32, 1.0, 0.002)
    kc = k - k.mean(dim=-1, keepdim=True)
    low = q @ (kc.transpose(-2, -1) @ v) * s
    err = (vitality_public_attention(q, k, v) - low - extra).abs().max().item()
    assert err < 1e-12, err
    for quant, levels in ((quant_sym4_per_head, 16), (quant_asym4_tensor, 16)):
        xq = quant(q32)
        assert len(torch.unique(xq)) <= levels * (2 * 3 if quant is quant_sym4_per_head else 1)
    print("sparseref selftest ok")


def main(argv):
    if len(argv) == 2 and argv[0] == "make-fixtures":
        selftest()
        make_fixtures(argv[1])
    elif argv == ["selftest"]:
        selftest()
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
