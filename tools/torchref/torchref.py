#!/usr/bin/python3
"""torchref: an independent PyTorch reference for vitc's Vision Transformer.

A timm/DeiT ViT written from scratch as plain functions over a state dict whose keys and
layouts are exactly timm's, with softmax or linear Taylor (ViTALiTy) attention, plus a minimal
safetensors reader/writer (F32/F16, no third-party package) and .npy helpers.

Run with Debian's python3 (/usr/bin/python3; torch 1.13, numpy 1.24).

    torchref.py make-fixtures OUTDIR
    torchref.py check --checkpoint F.safetensors --input X.npy --logits Y.npy [--preset P] [--attention K]
    torchref.py logits --checkpoint F.safetensors --input X.npy --out Y.npy [--preset P] [--attention K]
    torchref.py selftest
"""
import argparse
import collections
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

LN_EPS = 1e-6
CHECK_TOL = 1e-4

# ----------------------------------------------------------------------------------------------
# configuration

CONFIG_KEYS = ("image", "channels", "patch", "dim", "depth", "heads", "mlp_ratio", "classes",
               "attention")

PRESETS = {
    "micro": dict(image=28, channels=1, patch=4, dim=64, depth=4, heads=4, mlp_ratio=2.0,
                  classes=10, attention="softmax"),
    "deit-tiny": dict(image=224, channels=3, patch=16, dim=192, depth=12, heads=3, mlp_ratio=4.0,
                      classes=1000, attention="softmax"),
    "deit-small": dict(image=224, channels=3, patch=16, dim=384, depth=12, heads=6, mlp_ratio=4.0,
                       classes=1000, attention="softmax"),
}

ATTENTION_KINDS = ("softmax", "taylor")


def make_config(preset="micro", **overrides):
    """Preset plus overrides (None values are ignored). Validates the result."""
    if preset not in PRESETS:
        raise ValueError("unknown preset %r (have %s)" % (preset, ", ".join(PRESETS)))
    cfg = dict(PRESETS[preset])
    for k, v in overrides.items():
        if k not in CONFIG_KEYS:
            raise ValueError("unknown config key %r" % k)
        if v is not None:
            cfg[k] = v
    return validate_config(cfg)


def validate_config(cfg):
    cfg = dict(cfg)
    for k in ("image", "channels", "patch", "dim", "depth", "heads", "classes"):
        cfg[k] = int(cfg[k])
        if cfg[k] <= 0:
            raise ValueError("config %s must be positive, got %d" % (k, cfg[k]))
    cfg["mlp_ratio"] = float(cfg["mlp_ratio"])
    if cfg["attention"] not in ATTENTION_KINDS:
        raise ValueError("attention must be one of %s, got %r" % (ATTENTION_KINDS, cfg["attention"]))
    if cfg["image"] % cfg["patch"]:
        raise ValueError("image %d not divisible by patch %d" % (cfg["image"], cfg["patch"]))
    if cfg["dim"] % cfg["heads"]:
        raise ValueError("dim %d not divisible by heads %d" % (cfg["dim"], cfg["heads"]))
    return cfg


def hidden_dim(cfg):
    return int(cfg["dim"] * cfg["mlp_ratio"])  # timm: int(dim * mlp_ratio)


def num_tokens(cfg):
    return (cfg["image"] // cfg["patch"]) ** 2 + 1


def param_shapes(cfg):
    """Ordered dict name -> shape, exactly timm's VisionTransformer state-dict keys/layouts."""
    D, C, p = cfg["dim"], cfg["channels"], cfg["patch"]
    Hd = hidden_dim(cfg)
    s = collections.OrderedDict()
    s["cls_token"] = (1, 1, D)
    s["pos_embed"] = (1, num_tokens(cfg), D)
    s["patch_embed.proj.weight"] = (D, C, p, p)
    s["patch_embed.proj.bias"] = (D,)
    for i in range(cfg["depth"]):
        b = "blocks.%d." % i
        s[b + "norm1.weight"] = (D,)
        s[b + "norm1.bias"] = (D,)
        s[b + "attn.qkv.weight"] = (3 * D, D)
        s[b + "attn.qkv.bias"] = (3 * D,)
        s[b + "attn.proj.weight"] = (D, D)
        s[b + "attn.proj.bias"] = (D,)
        s[b + "norm2.weight"] = (D,)
        s[b + "norm2.bias"] = (D,)
        s[b + "mlp.fc1.weight"] = (Hd, D)
        s[b + "mlp.fc1.bias"] = (Hd,)
        s[b + "mlp.fc2.weight"] = (D, Hd)
        s[b + "mlp.fc2.bias"] = (D,)
    s["norm.weight"] = (D,)
    s["norm.bias"] = (D,)
    s["head.weight"] = (cfg["classes"], D)
    s["head.bias"] = (cfg["classes"],)
    return s


def check_state_dict(sd, cfg, allow_extra=False):
    """Raises ValueError on missing keys, wrong shapes, or (unless allow_extra) unexpected keys."""
    want = param_shapes(cfg)
    errs = []
    for k, shp in want.items():
        if k not in sd:
            errs.append("missing %s" % k)
        elif tuple(sd[k].shape) != tuple(shp):
            errs.append("%s: shape %s, want %s" % (k, tuple(sd[k].shape), tuple(shp)))
    extra = sorted(set(sd) - set(want))
    if extra and not allow_extra:
        errs.append("unexpected keys: %s" % ", ".join(extra))
    if errs:
        more = len(errs) - 8
        errs = errs[:8] + (["... and %d more" % more] if more > 0 else [])
        raise ValueError("state dict does not match config %s:\n  %s"
                         % (json.dumps(cfg, sort_keys=True), "\n  ".join(errs)))
    return extra


# ----------------------------------------------------------------------------------------------
# attention

def softmax_attention(q, k, v, scale):
    """q, k, v: (B, H, N, hd). Plain softmax(s q kᵀ) v."""
    a = torch.matmul(q, k.transpose(-2, -1)) * scale
    a = a.softmax(dim=-1)
    return torch.matmul(a, v)


def taylor_attention(q, k, v, scale):
    """Linear Taylor attention, O(N·hd²), per head (q, k, v: (B, H, N, hd)).

    K̂ = K − mean_j K;  G = K̂ᵀV;  v̄ = Σ_j v_j;  k̄ = Σ_j k̂_j;
    out_i = (v̄ + s·q_i G) / (N + s·q_i·k̄).
    """
    n = k.shape[-2]
    kc = k - k.mean(dim=-2, keepdim=True)
    g = torch.matmul(kc.transpose(-2, -1), v)          # (B, H, hd, hd)
    vbar = v.sum(dim=-2, keepdim=True)                 # (B, H, 1, hd)
    kbar = kc.sum(dim=-2, keepdim=True)                # (B, H, 1, hd), ~0
    num = vbar + scale * torch.matmul(q, g)            # (B, H, N, hd)
    den = n + scale * (q * kbar).sum(dim=-1, keepdim=True)  # (B, H, N, 1)
    return num / den


def taylor_attention_matrix(q, k, scale):
    """Explicit N×N Taylor attention a_ij = (1 + s q_i·k̂_j) / Σ_j (1 + s q_i·k̂_j)."""
    kc = k - k.mean(dim=-2, keepdim=True)
    e = 1.0 + scale * torch.matmul(q, kc.transpose(-2, -1))
    return e / e.sum(dim=-1, keepdim=True)


def taylor_attention_explicit(q, k, v, scale):
    return torch.matmul(taylor_attention_matrix(q, k, scale), v)


ATTENTION_FNS = {"softmax": softmax_attention, "taylor": taylor_attention}


# ----------------------------------------------------------------------------------------------
# model (functional, over a timm state dict)

def _ln(x, sd, prefix):
    return F.layer_norm(x, (x.shape[-1],), sd[prefix + ".weight"], sd[prefix + ".bias"], LN_EPS)


def attention_block(x, sd, prefix, heads, kind):
    B, N, D = x.shape
    hd = D // heads
    scale = hd ** -0.5
    qkv = F.linear(x, sd[prefix + ".qkv.weight"], sd[prefix + ".qkv.bias"])
    qkv = qkv.reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)   # (3, B, H, N, hd)
    q, k, v = qkv[0], qkv[1], qkv[2]
    o = ATTENTION_FNS[kind](q, k, v, scale)                         # (B, H, N, hd)
    o = o.transpose(1, 2).reshape(B, N, D)
    return F.linear(o, sd[prefix + ".proj.weight"], sd[prefix + ".proj.bias"])


def mlp_block(x, sd, prefix):
    h = F.linear(x, sd[prefix + ".fc1.weight"], sd[prefix + ".fc1.bias"])
    h = F.gelu(h)  # exact erf GELU (torch default approximate='none')
    return F.linear(h, sd[prefix + ".fc2.weight"], sd[prefix + ".fc2.bias"])


def forward_features(sd, x, cfg, attention=None):
    """Token features after the final norm, (B, N+1, D)."""
    kind = attention or cfg["attention"]
    if kind not in ATTENTION_FNS:
        raise ValueError("unknown attention %r" % kind)
    p = cfg["patch"]
    x = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=p)
    x = x.flatten(2).transpose(1, 2)                                # (B, N, D)
    cls = sd["cls_token"].expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1) + sd["pos_embed"]
    for i in range(cfg["depth"]):
        b = "blocks.%d." % i
        x = x + attention_block(_ln(x, sd, b + "norm1"), sd, b + "attn", cfg["heads"], kind)
        x = x + mlp_block(_ln(x, sd, b + "norm2"), sd, b + "mlp")
    return _ln(x, sd, "norm")


def forward(sd, x, cfg, attention=None):
    """Logits (B, classes); head on the cls token."""
    f = forward_features(sd, x, cfg, attention)
    return F.linear(f[:, 0], sd["head.weight"], sd["head.bias"])


def run_model(sd, x, cfg, dtype=torch.float64, attention=None):
    """Converts weights and input to dtype, returns logits as a numpy array of that dtype."""
    sdt = {k: torch.as_tensor(np.asarray(v)).to(dtype) for k, v in sd.items()}
    xt = torch.as_tensor(np.asarray(x)).to(dtype)
    want = (cfg["channels"], cfg["image"], cfg["image"])
    if xt.dim() != 4 or tuple(xt.shape[1:]) != want:
        raise ValueError("input shape %s, want (B, %d, %d, %d)" % ((tuple(xt.shape),) + want))
    with torch.no_grad():
        return forward(sdt, xt, cfg, attention).numpy()


# ----------------------------------------------------------------------------------------------
# safetensors (minimal: F32 / F16, little-endian)

_ST_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8")}
_NP_TO_ST = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("float64"): "F64"}


def write_safetensors(path, tensors, metadata=None, dtype=None):
    """tensors: mapping name -> array-like (numpy or torch). dtype: None (keep), 'F32' or 'F16'.

    metadata: optional dict str -> str stored as __metadata__. Tensors are written in the
    mapping's order, contiguous, little-endian; the header is padded with spaces to a multiple
    of 8 bytes.
    """
    header = collections.OrderedDict()
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("__metadata__ must map str to str")
        header["__metadata__"] = dict(metadata)
    blobs = []
    off = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("tensor name __metadata__ is reserved")
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.asarray(t)
        st = dtype or _NP_TO_ST.get(a.dtype)
        if st not in _ST_DTYPES:
            raise TypeError("%s: unsupported dtype %s" % (name, a.dtype))
        b = np.ascontiguousarray(a.astype(_ST_DTYPES[st], copy=False)).tobytes()
        header[name] = {"dtype": st, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Returns (OrderedDict name -> numpy array in its stored dtype, metadata dict or None)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError("%s: header length %d beyond end of file" % (path, n))
    header = json.loads(buf[8:8 + n].decode("utf-8"), object_pairs_hook=collections.OrderedDict)
    data = memoryview(buf)[8 + n:]
    meta = header.pop("__metadata__", None)
    out = collections.OrderedDict()
    for name, info in header.items():
        st = info["dtype"]
        if st not in _ST_DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, st))
        dt = _ST_DTYPES[st]
        shape = tuple(int(d) for d in info["shape"])
        a, b = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= a <= b <= len(data)) or b - a != count * dt.itemsize:
            raise ValueError("%s: tensor %s has bad data_offsets %s" % (path, name, [a, b]))
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(shape).copy()
    return out, meta


def vitc_config_from_metadata(meta):
    """The parsed __metadata__['vitc'] JSON object, or None."""
    if not meta or "vitc" not in meta:
        return None
    v = json.loads(meta["vitc"])
    if not isinstance(v, dict):
        raise ValueError("__metadata__['vitc'] is not a JSON object")
    return v


# ----------------------------------------------------------------------------------------------
# .npy

def save_npy(path, a):
    np.save(path, np.ascontiguousarray(np.asarray(a, dtype=np.float32)), allow_pickle=False)


def load_npy(path):
    return np.load(path, allow_pickle=False)


# ----------------------------------------------------------------------------------------------
# deterministic random weights for fixtures

def random_state_dict(cfg, seed):
    """Random timm-layout weights chosen so the logits depend visibly on every part of the model.

    Linear weights ~ N(0, std) with std around 0.05-0.1 (qkv larger so attention is far from
    uniform), biases N(0, 0.02-0.05), LayerNorm weight 1+N(0, 0.1), bias N(0, 0.05),
    cls_token/pos_embed N(0, 0.03), patch weights N(0, 0.1/sqrt(C·p²)).
    Returns an OrderedDict of float32 torch tensors.
    """
    g = torch.Generator().manual_seed(seed)
    D, Hd = cfg["dim"], hidden_dim(cfg)
    hd = D // cfg["heads"]
    fan_patch = cfg["channels"] * cfg["patch"] ** 2
    # qkv std so that s·q·k has a spread of ~1.5 for unit-variance LayerNorm inputs:
    # q_i ~ std·√D, q·k ~ std²·D·√hd, times s = 1/√hd  ->  std²·D ≈ 1.5.
    qkv_std = math.sqrt(1.5 / D)
    stds = {
        # Token embeddings are kept small (std ~0.1 for standard-normal pixels, cls/pos 0.03) so
        # that block 0's LayerNorms see a variance of ~0.01 and the eps (1e-6, not torch's
        # default 1e-5) changes the logits by ~1e-3 relative, well above check's 1e-4.
        "cls_token": 0.03,
        "pos_embed": 0.03,
        "patch_embed.proj.weight": 0.1 / math.sqrt(fan_patch),
        "patch_embed.proj.bias": 0.02,
        "attn.qkv.weight": qkv_std,
        "attn.qkv.bias": 0.05,
        "attn.proj.weight": 1.0 / math.sqrt(D),
        "attn.proj.bias": 0.03,
        "mlp.fc1.weight": 1.0 / math.sqrt(D),
        "mlp.fc1.bias": 0.05,
        "mlp.fc2.weight": 1.0 / math.sqrt(Hd),
        "mlp.fc2.bias": 0.03,
        "head.weight": 0.1,
        "head.bias": 0.05,
    }
    sd = collections.OrderedDict()
    for name, shape in param_shapes(cfg).items():
        short = name.split(".", 2)[2] if name.startswith("blocks.") else name
        if short in ("norm1.weight", "norm2.weight", "norm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
        elif short in ("norm1.bias", "norm2.bias", "norm.bias"):
            t = 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)
        else:
            t = stds[short] * torch.randn(shape, generator=g, dtype=torch.float64)
        sd[name] = t.to(torch.float32)
    return sd


# ----------------------------------------------------------------------------------------------
# fixtures

FIXTURES = [
    # (name, preset, attention, storage dtype, input name, batch, seed for weights)
    dict(name="micro_softmax", preset="micro", attention="softmax", dtype="F32",
         input="micro_input", batch=4, seed=1),
    dict(name="micro_taylor", preset="micro", attention="taylor", dtype="F32",
         input="micro_input", batch=4, seed=2),
    dict(name="deit_tiny", preset="deit-tiny", attention="softmax", dtype="F16",
         input="deit_tiny_input", batch=2, seed=3),
]
INPUT_SEEDS = {"micro_input": 100, "deit_tiny_input": 101}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_fixtures(outdir):
    os.makedirs(outdir, exist_ok=True)
    inputs = {}
    manifest = {"generator": "tools/torchref/torchref.py make-fixtures", "torch": torch.__version__,
                "numpy": np.__version__, "ln_eps": LN_EPS, "fixtures": []}
    for fx in FIXTURES:
        cfg = make_config(fx["preset"], attention=fx["attention"])
        if fx["input"] not in inputs:
            g = torch.Generator().manual_seed(INPUT_SEEDS[fx["input"]])
            x = torch.randn((fx["batch"], cfg["channels"], cfg["image"], cfg["image"]),
                            generator=g, dtype=torch.float32).numpy()
            save_npy(os.path.join(outdir, fx["input"] + ".npy"), x)
            inputs[fx["input"]] = x
        x = inputs[fx["input"]]
        sd = random_state_dict(cfg, fx["seed"])
        ck = os.path.join(outdir, fx["name"] + ".safetensors")
        write_safetensors(ck, sd, metadata=None, dtype=fx["dtype"])
        # reference logits from the weights exactly as stored (f16-rounded where F16)
        stored, meta = read_safetensors(ck)
        assert meta is None
        check_state_dict(stored, cfg)
        logits = run_model(stored, x, cfg, torch.float64)
        lpath = os.path.join(outdir, fx["name"] + "_logits.npy")
        save_npy(lpath, logits)
        entry = dict(name=fx["name"], preset=fx["preset"], attention=fx["attention"],
                     config=cfg, weights_dtype=fx["dtype"], weights_seed=fx["seed"],
                     checkpoint=fx["name"] + ".safetensors", input=fx["input"] + ".npy",
                     input_seed=INPUT_SEEDS[fx["input"]],
                     logits=fx["name"] + "_logits.npy", logits_shape=list(logits.shape),
                     max_abs_logit=float(np.abs(logits).max()),
                     argmax=[int(i) for i in logits.argmax(axis=1)])
        manifest["fixtures"].append(entry)
        print("%-14s max|logit| %.6f  argmax %s" % (fx["name"], entry["max_abs_logit"],
                                                   entry["argmax"]))
    files = sorted(f for f in os.listdir(outdir) if f.endswith((".npy", ".safetensors")))
    manifest["sha256"] = {f: _sha256(os.path.join(outdir, f)) for f in files}
    with open(os.path.join(outdir, "fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    for f in files + ["fixtures.json"]:
        print("  %-28s %10d bytes" % (f, os.path.getsize(os.path.join(outdir, f))))


# ----------------------------------------------------------------------------------------------
# self tests

def selftest(verbose=True):
    torch.manual_seed(0)
    # linear vs explicit Taylor, float64, several shapes
    worst = 0.0
    for (B, H, N, hd) in [(2, 3, 17, 8), (1, 4, 50, 16), (2, 3, 197, 64)]:
        q = torch.randn(B, H, N, hd, dtype=torch.float64)
        k = torch.randn(B, H, N, hd, dtype=torch.float64) + 0.5  # offset: centring matters
        v = torch.randn(B, H, N, hd, dtype=torch.float64)
        s = hd ** -0.5
        a = taylor_attention(q, k, v, s)
        b = taylor_attention_explicit(q, k, v, s)
        err = ((a - b).abs().max() / b.abs().max()).item()
        worst = max(worst, err)
        assert err < 1e-10, "taylor linear vs explicit rel err %g" % err
        # rows of the explicit matrix sum to one
        m = taylor_attention_matrix(q, k, s)
        assert (m.sum(-1) - 1).abs().max().item() < 1e-12
    if verbose:
        print("taylor linear vs explicit: max rel err %.3e" % worst)
    # full models: Taylor in linear and explicit form give the same logits
    cfg = make_config("micro", attention="taylor")
    sd = {k: v.double() for k, v in random_state_dict(cfg, 7).items()}
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        l1 = forward(sd, x, cfg)
        saved = ATTENTION_FNS["taylor"]
        ATTENTION_FNS["taylor"] = taylor_attention_explicit
        try:
            l2 = forward(sd, x, cfg)
        finally:
            ATTENTION_FNS["taylor"] = saved
    err = ((l1 - l2).abs().max() / l2.abs().max()).item()
    assert err < 1e-10, "taylor model linear vs explicit rel err %g" % err
    if verbose:
        print("taylor model logits linear vs explicit: max rel err %.3e" % err)
    # functional pieces against hand-written formulas
    xx = torch.randn(4, 5, 64, dtype=torch.float64)
    w, b = 1 + 0.1 * torch.randn(64, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    mu = xx.mean(-1, keepdim=True)
    var = ((xx - mu) ** 2).mean(-1, keepdim=True)
    ln_ref = (xx - mu) / torch.sqrt(var + LN_EPS) * w + b
    assert (F.layer_norm(xx, (64,), w, b, LN_EPS) - ln_ref).abs().max().item() < 1e-12
    gelu_ref = torch.tensor([0.5 * t * (1 + math.erf(t / math.sqrt(2))) for t in xx.flatten().tolist()],
                            dtype=torch.float64).reshape(xx.shape)
    assert (F.gelu(xx) - gelu_ref).abs().max().item() < 1e-12
    # conv patch embedding == unfold + matmul
    img = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    pw, pb = torch.randn(8, 3, 4, 4, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    conv = F.conv2d(img, pw, pb, stride=4).flatten(2).transpose(1, 2)
    patches = img.reshape(2, 3, 8, 4, 8, 4).permute(0, 2, 4, 1, 3, 5).reshape(2, 64, 48)
    assert (conv - (patches @ pw.reshape(8, 48).T + pb)).abs().max().item() < 1e-12
    # safetensors round trip incl. metadata and F16
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "t.safetensors")
        t = collections.OrderedDict(a=np.arange(6, dtype=np.float32).reshape(2, 3),
                                    b=np.array([1.5, -2.25], dtype=np.float16),
                                    c=np.zeros((0, 3), dtype=np.float32))
        write_safetensors(p, t, metadata={"vitc": json.dumps({"heads": 2})})
        with open(p, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        assert n % 8 == 0
        r, meta = read_safetensors(p)
        assert list(r) == ["a", "b", "c"] and meta == {"vitc": '{"heads": 2}'}
        for k in t:
            assert r[k].dtype == t[k].dtype and np.array_equal(r[k], t[k])
        write_safetensors(p, t, dtype="F16")
        r, meta = read_safetensors(p)
        assert meta is None and r["a"].dtype == np.float16
    # state-dict keys/shapes are timm's (spot check against hand-written counts)
    n = sum(int(np.prod(s)) for s in param_shapes(make_config("deit-tiny")).values())
    assert n == 5717416, n   # timm deit_tiny_patch16_224 parameter count
    n = sum(int(np.prod(s)) for s in param_shapes(make_config("deit-small")).values())
    assert n == 22050664, n  # timm deit_small_patch16_224 parameter count
    if verbose:
        print("selftest ok")
    return worst


# ----------------------------------------------------------------------------------------------
# CLI

def _add_model_flags(ap):
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--preset", default="micro", choices=sorted(PRESETS))
    ap.add_argument("--attention", choices=ATTENTION_KINDS)
    ap.add_argument("--image", type=int)
    ap.add_argument("--channels", type=int)
    ap.add_argument("--patch", type=int)
    ap.add_argument("--dim", type=int)
    ap.add_argument("--depth", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--mlp-ratio", dest="mlp_ratio", type=float)
    ap.add_argument("--classes", type=int)
    ap.add_argument("--allow-extra", action="store_true",
                    help="ignore tensors that are not timm ViT parameters")


def _load_for_run(a):
    sd, meta = read_safetensors(a.checkpoint)
    flags = {k: getattr(a, k) for k in CONFIG_KEYS}
    cfg = make_config(a.preset, **flags)
    vc = vitc_config_from_metadata(meta)
    source = "preset %s + flags" % a.preset
    if vc is not None:
        source = "checkpoint __metadata__['vitc']"
        for k in CONFIG_KEYS:
            if k in vc and vc[k] is not None:
                if flags.get(k) is not None and flags[k] != vc[k]:
                    print("warning: --%s %s ignored; checkpoint metadata says %s"
                          % (k.replace("_", "-"), flags[k], vc[k]), file=sys.stderr)
                cfg[k] = vc[k]
        cfg = validate_config(cfg)
    extra = check_state_dict(sd, cfg, allow_extra=a.allow_extra)
    if extra:
        print("warning: ignoring %d extra tensors: %s" % (len(extra), ", ".join(extra)),
              file=sys.stderr)
    x = load_npy(a.input)
    dts = sorted({str(v.dtype) for v in sd.values()})
    print("config (%s): %s" % (source, json.dumps(cfg, sort_keys=True)))
    print("checkpoint: %d tensors, dtypes %s; input %s %s" % (len(sd), ",".join(dts),
                                                              x.dtype, tuple(x.shape)))
    return sd, cfg, x


def cmd_check(a):
    sd, cfg, x = _load_for_run(a)
    want = load_npy(a.logits).astype(np.float64)
    got = run_model(sd, x, cfg, torch.float64)
    if got.shape != want.shape:
        print("FAIL: logits shape %s, reference computes %s" % (want.shape, got.shape))
        return 1
    diff = np.abs(got - want).max()
    rel = diff / max(np.abs(want).max(), np.finfo(np.float64).tiny)
    agree = int((got.argmax(1) == want.argmax(1)).sum())
    print("max|ref| %.6g  max|diff| %.3e  max rel err %.3e  argmax agree %d/%d"
          % (np.abs(got).max(), diff, rel, agree, got.shape[0]))
    if not np.isfinite(rel) or rel >= a.tol:
        print("FAIL: max relative error %.3e >= %.1e" % (rel, a.tol))
        return 1
    print("PASS (tol %.1e)" % a.tol)
    return 0


def cmd_logits(a):
    sd, cfg, x = _load_for_run(a)
    got = run_model(sd, x, cfg, torch.float64)
    save_npy(a.out, got)
    print("wrote %s %s max|logit| %.6g" % (a.out, got.shape, np.abs(got).max()))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="torchref.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make-fixtures", help="write the committed test fixtures to OUTDIR")
    p.add_argument("outdir")
    p = sub.add_parser("check", help="compare logits (e.g. from vitc) with the float64 reference")
    _add_model_flags(p)
    p.add_argument("--logits", required=True)
    p.add_argument("--tol", type=float, default=CHECK_TOL)
    p = sub.add_parser("logits", help="write float64-reference logits (as float32 .npy)")
    _add_model_flags(p)
    p.add_argument("--out", required=True)
    sub.add_parser("selftest", help="internal consistency checks")
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    if a.cmd == "make-fixtures":
        selftest(verbose=False)
        make_fixtures(a.outdir)
        return 0
    try:
        if a.cmd == "check":
            return cmd_check(a)
        if a.cmd == "logits":
            return cmd_logits(a)
    except (ValueError, OSError, KeyError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if a.cmd == "selftest":
        selftest()
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
