#!/usr/bin/env python3
"""Fixtures for the layouts published ViTs come in besides timm-named safetensors
(vit/testdata/formats). None of them is written by vitc.

Each model is an nn.Module written here in plain torch with the module names (and so the
state_dict keys) and the maths of the library it imitates; transformers and timm are not
installed, so their classes are re-created from their source:

  timm_hub/    timm on a model hub: model.safetensors + timm's config.json (model_args,
               pretrained_cfg, label_names); dim 48 with 3 heads (no multiple of 64, so the
               heads must come from the config), LayerNorm eps 1e-6 (timm's own).
  hf_vit/      transformers' ViTForImageClassification: vit.embeddings.*, vit.encoder.layer.N.
               attention.attention.{query,key,value}, attention.output.dense, layernorm_before/
               after, intermediate.dense, output.dense, vit.layernorm, classifier; config.json
               and preprocessor_config.json as save_pretrained writes them (eps 1e-12, HF's).
  hf_vit_bin/  the same model as pytorch_model.bin (torch.save of the state dict, a zip),
               the older way the hub published weights, with the same two json files.
  hf_deit/     transformers' DeiTForImageClassificationWithTeacher: a distillation token
               beside the cls token (position embeddings for patches + 2), cls_classifier and
               distillation_classifier, logits = the average of both heads.
  pth_mha/     a bare torch.save state dict (.pth) of an author's ViT built on
               nn.TransformerEncoder(nn.TransformerEncoderLayer(norm_first=True,
               activation="gelu", batch_first=True)): keys encoder.layers.N.self_attn.
               in_proj_weight, out_proj, linear1/2, norm1/2, encoder.norm; weights stored F16.
  pth_custom/  an author's own names (stem, tok, pos, enc.N.{ln1,mha,ln2,ff.0,ff.2}, ln_f, fc)
               on nn.MultiheadAttention, saved as {"state_dict": DataParallel's module.* keys,
               "epoch": 7, "arch": "custom"}: vitc needs --key-map rules for it.

Every folder has input.npy (float32, already normalised) and logits.npy: PyTorch's logits of
the stored weights, computed in float64. fixtures.json records shapes and SHA-256 sums.
Deterministic; from the repository root with Debian's python3 (torch 1.13):

    /usr/bin/python3 tools/torchref/formats.py vit/testdata/formats
"""

import hashlib
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timm_fixtures import ViT as TimmViT  # noqa: E402  (timm's module names)
from torchref import save_npy, write_safetensors  # noqa: E402


# ---------------------------------------------------------------------------------------------
# transformers' ViT and DeiT (modeling_vit.py / modeling_deit.py), eval mode, eager attention


class HFSelfAttention(nn.Module):
    def __init__(self, d, heads, qkv_bias):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d, d, bias=qkv_bias)
        self.key = nn.Linear(d, d, bias=qkv_bias)
        self.value = nn.Linear(d, d, bias=qkv_bias)

    def forward(self, x):
        b, n, d = x.shape
        hd = d // self.heads

        def split(t):
            return t.view(b, n, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        a = torch.matmul(q, k.transpose(-1, -2)) * hd ** -0.5
        a = F.softmax(a, dim=-1)
        return torch.matmul(a, v).transpose(1, 2).reshape(b, n, d)


class HFDense(nn.Module):
    def __init__(self, din, dout):
        super().__init__()
        self.dense = nn.Linear(din, dout)


class HFAttention(nn.Module):
    def __init__(self, d, heads, qkv_bias):
        super().__init__()
        self.attention = HFSelfAttention(d, heads, qkv_bias)
        self.output = HFDense(d, d)  # ViTSelfOutput: dense (+ dropout)

    def forward(self, x):
        return self.output.dense(self.attention(x))


class HFLayer(nn.Module):
    def __init__(self, d, heads, inter, eps, qkv_bias):
        super().__init__()
        self.attention = HFAttention(d, heads, qkv_bias)
        self.intermediate = HFDense(d, inter)  # ViTIntermediate: dense + ACT2FN["gelu"] (exact erf)
        self.output = HFDense(inter, d)  # ViTOutput: dense (+ dropout) + residual
        self.layernorm_before = nn.LayerNorm(d, eps=eps)
        self.layernorm_after = nn.LayerNorm(d, eps=eps)

    def forward(self, x):
        x = self.attention(self.layernorm_before(x)) + x
        h = F.gelu(self.intermediate.dense(self.layernorm_after(x)))
        return self.output.dense(h) + x


class HFEncoder(nn.Module):
    def __init__(self, depth, *args):
        super().__init__()
        self.layer = nn.ModuleList([HFLayer(*args) for _ in range(depth)])

    def forward(self, x):
        for layer in self.layer:
            x = layer(x)
        return x


class HFPatchEmbeddings(nn.Module):
    def __init__(self, chans, d, patch):
        super().__init__()
        self.projection = nn.Conv2d(chans, d, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.projection(x).flatten(2).transpose(1, 2)


class HFEmbeddings(nn.Module):
    def __init__(self, img, patch, chans, d, distillation):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        if distillation:
            self.distillation_token = nn.Parameter(torch.zeros(1, 1, d))
        self.patch_embeddings = HFPatchEmbeddings(chans, d, patch)
        n = (img // patch) ** 2
        self.position_embeddings = nn.Parameter(torch.zeros(1, n + (2 if distillation else 1), d))
        self.distillation = distillation

    def forward(self, x):
        e = self.patch_embeddings(x)
        toks = [self.cls_token.expand(e.shape[0], -1, -1)]
        if self.distillation:
            toks.append(self.distillation_token.expand(e.shape[0], -1, -1))
        return torch.cat(toks + [e], dim=1) + self.position_embeddings


class HFModel(nn.Module):
    """ViTModel / DeiTModel with add_pooling_layer=False, as the classifiers build it."""

    def __init__(self, cfg, distillation):
        super().__init__()
        d = cfg["hidden_size"]
        self.embeddings = HFEmbeddings(cfg["image_size"], cfg["patch_size"], cfg["num_channels"], d, distillation)
        self.encoder = HFEncoder(cfg["num_hidden_layers"], d, cfg["num_attention_heads"], cfg["intermediate_size"],
                                 cfg["layer_norm_eps"], cfg["qkv_bias"])
        self.layernorm = nn.LayerNorm(d, eps=cfg["layer_norm_eps"])

    def forward(self, x):
        return self.layernorm(self.encoder(self.embeddings(x)))


class ViTForImageClassification(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.vit = HFModel(cfg, distillation=False)
        self.classifier = nn.Linear(cfg["hidden_size"], len(cfg["id2label"]))

    def forward(self, x):
        return self.classifier(self.vit(x)[:, 0, :])


class DeiTForImageClassificationWithTeacher(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.deit = HFModel(cfg, distillation=True)
        self.cls_classifier = nn.Linear(cfg["hidden_size"], len(cfg["id2label"]))
        self.distillation_classifier = nn.Linear(cfg["hidden_size"], len(cfg["id2label"]))

    def forward(self, x):
        h = self.deit(x)
        # at inference, the average of both heads
        return (self.cls_classifier(h[:, 0, :]) + self.distillation_classifier(h[:, 1, :])) / 2


def hf_config(model_type, arch, img, patch, chans, d, depth, heads, inter, labels, eps=1e-12, qkv_bias=True):
    """config.json as PretrainedConfig.save_pretrained writes it (use_diff: every ViTConfig key)."""
    return {
        "architectures": [arch],
        "attention_probs_dropout_prob": 0.0,
        "encoder_stride": patch,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": d,
        "id2label": {str(i): n for i, n in enumerate(labels)},
        "image_size": img,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "label2id": {n: i for i, n in enumerate(labels)},
        "layer_norm_eps": eps,
        "model_type": model_type,
        "num_attention_heads": heads,
        "num_channels": chans,
        "num_hidden_layers": depth,
        "patch_size": patch,
        "problem_type": "single_label_classification",
        "qkv_bias": qkv_bias,
        "torch_dtype": "float32",
        "transformers_version": "4.46.3",
    }


def preprocessor(kind, img, mean, std):
    return {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": mean,
        "image_processor_type": kind,
        "image_std": std,
        "resample": 2,
        "rescale_factor": 0.00392156862745098,
        "size": {"height": img, "width": img},
    }


# ---------------------------------------------------------------------------------------------
# authors' own ViTs saved with torch.save


class TorchEncoderViT(nn.Module):
    """A ViT on nn.TransformerEncoder (pre-norm, GELU), as many authors write one."""

    def __init__(self, img, patch, chans, d, depth, heads, hidden, classes, eps):
        super().__init__()
        self.patch_embed = nn.Conv2d(chans, d, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img // patch) ** 2 + 1, d))
        layer = nn.TransformerEncoderLayer(d, heads, hidden, dropout=0.0, activation="gelu", layer_norm_eps=eps,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(d, eps=eps), enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.encoder(x)[:, 0])


class CustomBlock(nn.Module):
    def __init__(self, d, heads, hidden, eps):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.mha = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.ff = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.mha(h, h, h, need_weights=False)[0]
        return x + self.ff(self.ln2(x))


class CustomViT(nn.Module):
    def __init__(self, img, patch, chans, d, depth, heads, hidden, classes, eps):
        super().__init__()
        self.stem = nn.Conv2d(chans, d, patch, stride=patch)
        self.tok = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, (img // patch) ** 2 + 1, d))
        self.enc = nn.ModuleList([CustomBlock(d, heads, hidden, eps) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(d, eps=eps)
        self.fc = nn.Linear(d, classes)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.tok.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for b in self.enc:
            x = b(x)
        return self.fc(self.ln_f(x)[:, 0])


# ---------------------------------------------------------------------------------------------


def randomise(m):
    """Weights large enough that every part moves the logits (norm gains near 1, tokens and
    position embeddings of unit scale, linear layers ~ 1/sqrt(fan-in))."""
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() == 1 and ("norm" in name or "ln" in name):
                p.copy_((1 if name.endswith("weight") else 0) + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            elif p.dim() == 3:  # cls / distillation tokens, position embeddings
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p[0].numel()))


def reference(m, sd, x):
    """float64 logits of the stored weights sd."""
    m = m.double().eval()
    m.load_state_dict({k: v.double() for k, v in sd.items()})
    with torch.no_grad():
        return m(x.double())


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def io_pair(d, x, logits):
    save_npy(os.path.join(d, "input.npy"), x.numpy())
    save_npy(os.path.join(d, "logits.npy"), logits.numpy())


def main(out):
    manifest = {"generator": "tools/torchref/formats.py", "torch": torch.__version__, "fixtures": {}}
    torch.manual_seed(29)

    # timm on a hub: model.safetensors + timm's config.json.
    d = os.path.join(out, "timm_hub")
    os.makedirs(d, exist_ok=True)
    shape = dict(img=24, patch=4, chans=3, dim=48, depth=2, heads=3, hidden=96, classes=5, eps=1e-6)
    m = TimmViT(**shape)
    randomise(m)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    write_safetensors(os.path.join(d, "model.safetensors"), sd, metadata=None, dtype="F32")
    labels = ["ant", "bee", "cicada", "dragonfly", "earwig"]
    mean, std = [0.45, 0.5, 0.55], [0.22, 0.25, 0.28]
    write_json(os.path.join(d, "config.json"), {
        "architecture": "vit_custom",
        "num_classes": 5,
        "num_features": 48,
        "global_pool": "token",
        "label_names": labels,
        "model_args": {"embed_dim": 48, "depth": 2, "num_heads": 3, "mlp_ratio": 2.0, "patch_size": 4,
                       "img_size": 24, "in_chans": 3},
        "pretrained_cfg": {"input_size": [3, 24, 24], "fixed_input_size": True, "interpolation": "bicubic",
                           "crop_pct": 1.0, "crop_mode": "center", "mean": mean, "std": std, "num_classes": 5,
                           "pool_size": None, "first_conv": "patch_embed.proj", "classifier": "head"},
    })
    x = torch.randn(3, 3, 24, 24)
    io_pair(d, x, reference(m, sd, x))
    manifest["fixtures"]["timm_hub"] = shape

    # transformers' ViTForImageClassification, safetensors and pytorch_model.bin.
    labels = ["cat", "dog", "fox", "owl", "yak"]
    cfg = hf_config("vit", "ViTForImageClassification", 24, 4, 3, 48, 2, 3, 96, labels)
    m = ViTForImageClassification(cfg)
    randomise(m)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    x = torch.randn(3, 3, 24, 24)
    logits = reference(m, sd, x)
    for sub in ("hf_vit", "hf_vit_bin"):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        if sub == "hf_vit":
            write_safetensors(os.path.join(d, "model.safetensors"), sd, metadata=None, dtype="F32")
        else:
            torch.save({k: v.float() for k, v in sd.items()}, os.path.join(d, "pytorch_model.bin"))
        write_json(os.path.join(d, "config.json"), cfg)
        write_json(os.path.join(d, "preprocessor_config.json"),
                   preprocessor("ViTImageProcessor", 24, [0.45, 0.5, 0.55], [0.22, 0.25, 0.28]))
        io_pair(d, x, logits)
    manifest["fixtures"]["hf_vit"] = {k: cfg[k] for k in ("image_size", "patch_size", "hidden_size",
                                                          "num_hidden_layers", "num_attention_heads",
                                                          "intermediate_size", "layer_norm_eps")}

    # transformers' DeiTForImageClassificationWithTeacher.
    d = os.path.join(out, "hf_deit")
    os.makedirs(d, exist_ok=True)
    cfg = hf_config("deit", "DeiTForImageClassificationWithTeacher", 16, 4, 3, 32, 1, 2, 64, labels[:3])
    m = DeiTForImageClassificationWithTeacher(cfg)
    randomise(m)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    write_safetensors(os.path.join(d, "model.safetensors"), sd, metadata=None, dtype="F32")
    write_json(os.path.join(d, "config.json"), cfg)
    write_json(os.path.join(d, "preprocessor_config.json"),
               preprocessor("DeiTImageProcessor", 16, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
    x = torch.randn(2, 3, 16, 16)
    io_pair(d, x, reference(m, sd, x))
    manifest["fixtures"]["hf_deit"] = {"hidden_size": 32, "num_hidden_layers": 1, "tokens": "cls + distillation + 16"}

    # An author's nn.TransformerEncoder ViT, a bare .pth of F16 tensors. dim 128, 2 heads:
    # timm's dim/64, since nothing in the file says the heads.
    d = os.path.join(out, "pth_mha")
    os.makedirs(d, exist_ok=True)
    shape = dict(img=16, patch=4, chans=3, d=128, depth=2, heads=2, hidden=256, classes=6, eps=1e-6)
    m = TorchEncoderViT(**shape)
    randomise(m)
    sd = {k: v.detach().half() for k, v in m.state_dict().items()}
    torch.save(sd, os.path.join(d, "vit_mha.pth"))
    x = torch.randn(3, 3, 16, 16)
    io_pair(d, x, reference(m, sd, x))
    manifest["fixtures"]["pth_mha"] = shape

    # An author's own names on nn.MultiheadAttention, in a training checkpoint's dict.
    d = os.path.join(out, "pth_custom")
    os.makedirs(d, exist_ok=True)
    shape = dict(img=8, patch=2, chans=1, d=64, depth=2, heads=4, hidden=128, classes=4, eps=1e-5)
    m = CustomViT(**shape)
    randomise(m)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 7, "arch": "custom"},
               os.path.join(d, "vit_custom.pth"))
    x = torch.randn(2, 1, 8, 8)
    io_pair(d, x, reference(m, sd, x))
    manifest["fixtures"]["pth_custom"] = shape

    sums = {}
    for root, _, files in os.walk(out):
        for f in sorted(files):
            if f == "fixtures.json" or f == "README.md":
                continue
            p = os.path.join(root, f)
            sums[os.path.relpath(p, out)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    manifest["sha256"] = dict(sorted(sums.items()))
    write_json(os.path.join(out, "fixtures.json"), manifest)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "vit/testdata/formats")
