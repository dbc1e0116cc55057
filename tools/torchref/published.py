#!/usr/bin/env python3
"""A "published" ViT that vitc did not write: trained in plain PyTorch, saved as bare safetensors.

The model is an independent nn.Module with timm's module names (the classes of
timm_fixtures.py: patch_embed.proj conv, cls_token, pos_embed,
blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}, norm, head; exact-erf
GELU; nn.LayerNorm(eps=--eps)), trained on a `folder:` layout
DIR/{train,test}/<class>/*.png|jpg with the recipe of ../shared/bench/torch_train_folder.py:
AdamW lr 1e-3 wd 0.05, batch 64, cosine with 5 % warm-up, label smoothing 0.1, torch's default
initialisation (pos_embed N(0, 0.02), cls_token 0), no augmentation unless --hflip.

Images go to [0, 1] and are normalised by --mean/--std (one value per channel, or one for
all). A folder whose images are all grey (pixel equality, as vitc's folder reader decides)
trains with one channel, any other with RGB. Classes are the sorted training folder names,
as vitc reads them.

Outputs: OUT.safetensors, the float32 state dict with no __metadata__ (what a bare published
file looks like), and OUT.json beside it: architecture, eps, mean/std, class names in label
order, torch's test accuracy, epochs, seconds, torch version, the command.

    /usr/bin/python3 tools/torchref/published.py --data DIR --dim 64 --depth 3 --heads 4 \\
        --mlp-hidden 128 --patch 2 --eps 1e-5 --mean 0.3 --std 0.4 --epochs 40 --seed 0 \\
        --out model.safetensors
    # per-channel mean/std of DIR/train (what to pass as --mean/--std), then exit
    /usr/bin/python3 tools/torchref/published.py --data DIR --stats
    # evaluate a saved model (reads OUT.json) on DIR/test; optional logits of the test split
    /usr/bin/python3 tools/torchref/published.py --data DIR --eval model.safetensors [--test-logits L.npy]
    # logits of model inputs (N,C,H,W float32, already normalised)
    /usr/bin/python3 tools/torchref/published.py --eval model.safetensors --write-logits X.npy Y.npy
    # a timm-hub-style folder: DIR/model.safetensors (same bytes) + DIR/config.json
    /usr/bin/python3 tools/torchref/published.py --eval model.safetensors --export-hf DIR

Deterministic for a seed and thread count (torch.manual_seed, a seeded generator for the
shuffle, torch.use_deterministic_algorithms). Run with Debian's python3 (torch 1.13).
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timm_fixtures import ViT  # noqa: E402  (timm's module names, nn.LayerNorm(eps))
from torchref import load_npy, read_safetensors, save_npy, write_safetensors  # noqa: E402

IMAGE_EXT = (".png", ".jpg", ".jpeg")


def list_split(d, split, classes):
    """[(path, label)] of d/split/<class>/*, classes in the given (label) order, files sorted
    by name (vitc reads os.ReadDir order, which is sorted)."""
    out = []
    for ci, c in enumerate(classes):
        p = os.path.join(d, split, c)
        if not os.path.isdir(p):
            continue
        for f in sorted(os.listdir(p)):
            if f.startswith(".") or not f.lower().endswith(IMAGE_EXT):
                continue
            out.append((os.path.join(p, f), ci))
    return out


def decode(path):
    """HxWx3 uint8 RGB and whether the image is grey (every pixel R == G == B)."""
    im = Image.open(path)
    im.load()
    if im.mode in ("L", "I;16", "1"):
        a = np.asarray(im.convert("L"))
        return np.repeat(a[:, :, None], 3, axis=2), True
    a = np.asarray(im.convert("RGB"))
    return a, bool((a[:, :, 0] == a[:, :, 1]).all() and (a[:, :, 1] == a[:, :, 2]).all())


def load_folder(d, classes=None):
    """Returns ({split: (X float32 N,C,H,W in [0,1], y int64)}, classes, channels)."""
    if classes is None:
        tr = os.path.join(d, "train")
        classes = sorted(c for c in os.listdir(tr) if not c.startswith(".") and os.path.isdir(os.path.join(tr, c)))
    raw, grey = {}, True
    for split in ("train", "test"):
        items = list_split(d, split, classes)
        xs, ys = [], []
        for path, y in items:
            a, g = decode(path)
            grey = grey and g
            xs.append(a)
            ys.append(y)
        if xs and any(x.shape != xs[0].shape for x in xs):
            raise SystemExit("%s/%s: images of several sizes" % (d, split))
        raw[split] = (xs, ys)
    chans = 1 if grey else 3
    out = {}
    for split, (xs, ys) in raw.items():
        if not xs:
            out[split] = (torch.zeros(0, chans, 1, 1), torch.zeros(0, dtype=torch.int64))
            continue
        x = np.stack(xs).astype(np.float32) / np.float32(255)  # N,H,W,3
        x = x[..., :1] if chans == 1 else x
        out[split] = (torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.tensor(ys, dtype=torch.int64))
    return out, classes, chans


def per_channel(vals, chans, name):
    if len(vals) == 1:
        return vals * chans
    if len(vals) != chans:
        raise SystemExit("--%s: %d values for %d-channel images" % (name, len(vals), chans))
    return vals


def floats(s):
    return [float(v) for v in s.split(",") if v.strip()]


def normalise(x, mean, std):
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def build(cfg):
    m = ViT(img=cfg["img_size"], patch=cfg["patch_size"], chans=cfg["in_chans"], dim=cfg["embed_dim"],
            depth=cfg["depth"], heads=cfg["num_heads"], hidden=cfg["mlp_hidden"],
            classes=cfg["num_classes"], eps=cfg["eps"])
    with torch.no_grad():
        m.pos_embed.normal_(0, 0.02)  # as ../shared/bench/torch_vit.py; cls_token stays 0
    return m


@torch.no_grad()
def logits_of(m, x, batch=500):
    m.eval()
    return torch.cat([m(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else torch.zeros(0)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_model(ck):
    meta_path = os.path.splitext(ck)[0] + ".json"
    with open(meta_path) as f:
        meta = json.load(f)
    m = build(meta["architecture"])
    sd, _ = read_safetensors(ck)
    m.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in sd.items()}, strict=True)
    return m, meta


def export_hf(ck, meta, outdir):
    """DIR/model.safetensors (a copy of ck) and DIR/config.json in the shape timm's
    save_config_for_hf (push_to_hub) writes. timm's config has no LayerNorm eps: a reader
    that builds timm's VisionTransformer gets its default, 1e-6."""
    cfg = meta["architecture"]
    os.makedirs(outdir, exist_ok=True)
    with open(ck, "rb") as f, open(os.path.join(outdir, "model.safetensors"), "wb") as g:
        g.write(f.read())
    c = cfg["in_chans"]
    hf = {
        "architecture": "vit_custom",
        "num_classes": cfg["num_classes"],
        "num_features": cfg["embed_dim"],
        "global_pool": "token",
        "label_names": meta["classes"],
        "model_args": {
            "embed_dim": cfg["embed_dim"], "depth": cfg["depth"], "num_heads": cfg["num_heads"],
            "mlp_ratio": cfg["mlp_ratio"], "patch_size": cfg["patch_size"], "img_size": cfg["img_size"],
            "in_chans": c,
        },
        "pretrained_cfg": {
            "custom_load": False,
            "input_size": [c, cfg["img_size"], cfg["img_size"]],
            "fixed_input_size": True,
            "interpolation": "bicubic",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": meta["mean"],
            "std": meta["std"],
            "num_classes": cfg["num_classes"],
            "pool_size": None,
            "first_conv": "patch_embed.proj",
            "classifier": "head",
        },
    }
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(hf, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="folder: DIR/{train,test}/<class>/*")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp-hidden", type=int, default=128)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--eps", type=float, default=1e-5, help="LayerNorm eps (torch's default 1e-5)")
    ap.add_argument("--mean", type=floats, default=[0.5], help="per channel, comma-separated (one value: all)")
    ap.add_argument("--std", type=floats, default=[0.5], help="per channel, comma-separated (one value: all)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--hflip", action="store_true", help="augment with random horizontal flips (off by default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=["F32", "F16"], default="F32", help="stored dtype (default F32)")
    ap.add_argument("--out", help="OUT.safetensors (OUT.json is written beside it)")
    ap.add_argument("--stats", action="store_true", help="print DIR/train's per-channel mean/std and exit")
    ap.add_argument("--eval", metavar="CK", help="evaluate a saved model (CK.safetensors + CK.json) instead of training")
    ap.add_argument("--test-logits", metavar="OUT.npy", help="with --eval or training: write the test split's logits")
    ap.add_argument("--write-logits", nargs=2, metavar=("INPUT.npy", "OUT.npy"),
                    help="with --eval: logits of INPUT (N,C,H,W float32 model inputs, already normalised)")
    ap.add_argument("--export-hf", metavar="DIR", help="with --eval: write DIR/model.safetensors + a timm-style DIR/config.json")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    try:
        torch.use_deterministic_algorithms(True)
        deterministic = True
    except Exception:  # pragma: no cover
        deterministic = False

    if a.eval:
        m, meta = load_model(a.eval)
        if a.export_hf:
            export_hf(a.eval, meta, a.export_hf)
        if a.write_logits:
            x = torch.from_numpy(np.asarray(load_npy(a.write_logits[0]), dtype=np.float32))
            save_npy(a.write_logits[1], logits_of(m, x).numpy())
        if a.data:
            data, classes, chans = load_folder(a.data, meta["classes"])
            xte, yte = data["test"]
            lg = logits_of(m, normalise(xte, meta["mean"], meta["std"]))
            pred = lg.argmax(1)
            correct = int((pred == yte).sum())
            if a.test_logits:
                save_npy(a.test_logits, lg.numpy())
            print(json.dumps({"checkpoint": a.eval, "data": a.data, "test_correct": correct, "n_test": len(yte),
                              "test_accuracy": correct / max(1, len(yte))}))
        return

    if not a.data:
        ap.error("--data is required")
    data, classes, chans = load_folder(a.data)
    xtr, ytr = data["train"]
    xte, yte = data["test"]
    if a.stats:
        mean = xtr.double().mean(dim=(0, 2, 3))
        std = xtr.double().std(dim=(0, 2, 3))
        print(json.dumps({"channels": chans, "mean": mean.tolist(), "std": std.tolist(),
                          "mean_3dp": [round(v, 3) for v in mean.tolist()],
                          "std_3dp": [round(v, 3) for v in std.tolist()]}))
        return
    if not a.out or not a.out.endswith(".safetensors"):
        ap.error("--out FILE.safetensors is required")
    if a.dim % a.heads:
        ap.error("--dim %d is not a multiple of --heads %d" % (a.dim, a.heads))
    H, W = xtr.shape[-2:]
    if H != W or H % a.patch:
        ap.error("images are %dx%d: need square images that --patch %d divides" % (W, H, a.patch))
    mean, std = per_channel(a.mean, chans, "mean"), per_channel(a.std, chans, "std")
    cfg = dict(img_size=int(H), patch_size=a.patch, in_chans=chans, embed_dim=a.dim, depth=a.depth,
               num_heads=a.heads, mlp_hidden=a.mlp_hidden, mlp_ratio=a.mlp_hidden / a.dim,
               num_classes=len(classes), eps=a.eps)

    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    m = build(cfg)
    xtr_n, xte_n = normalise(xtr, mean, std), normalise(xte, mean, std)
    opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    per_epoch = len(xtr_n) // a.batch
    steps = a.epochs * per_epoch
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    t0 = time.time()
    for ep in range(a.epochs):
        m.train()
        perm = torch.randperm(len(xtr_n), generator=gen)
        tot = 0.0
        for i in range(per_epoch):
            b = perm[i * a.batch:(i + 1) * a.batch]
            xb = xtr_n[b]
            if a.hflip:
                flip = torch.rand(len(b), generator=gen) < 0.5
                xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
            loss = F.cross_entropy(m(xb), ytr[b], label_smoothing=a.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        print("epoch %d/%d loss %.4f %.0fs" % (ep + 1, a.epochs, tot / max(1, per_epoch), time.time() - t0),
              file=sys.stderr, flush=True)
    train_s = time.time() - t0

    # What is saved is what is evaluated: F16 storage is rounded before the test.
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    if a.dtype == "F16":
        sd = {k: v.half().float() for k, v in sd.items()}
        m.load_state_dict(sd)
    lg = logits_of(m, xte_n)
    correct = int((lg.argmax(1) == yte).sum())
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_safetensors(a.out, sd, metadata=None, dtype=a.dtype)
    if a.test_logits:
        save_npy(a.test_logits, lg.numpy())
    meta = {
        "generator": "tools/torchref/published.py",
        "command": " ".join(["tools/torchref/published.py"] + sys.argv[1:]),
        "architecture": cfg,
        "attention": "softmax",
        "gelu": "erf",
        "pool": "token",
        "eps": a.eps,
        "mean": mean,
        "std": std,
        "classes": classes,
        "data": a.data,
        "n_train": len(ytr),
        "n_test": len(yte),
        "test_correct": correct,
        "test_accuracy": correct / max(1, len(yte)),
        "epochs": a.epochs,
        "batch": a.batch,
        "lr": a.lr,
        "weight_decay": a.weight_decay,
        "label_smoothing": a.label_smoothing,
        "warmup_steps": warm,
        "hflip": a.hflip,
        "seed": a.seed,
        "threads": a.threads,
        "deterministic": deterministic,
        "dtype": a.dtype,
        "train_seconds": round(train_s, 1),
        "torch": torch.__version__,
        "sha256": sha256(a.out),
    }
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(json.dumps({k: meta[k] for k in ("test_accuracy", "test_correct", "n_test", "train_seconds")}))


if __name__ == "__main__":
    main()
