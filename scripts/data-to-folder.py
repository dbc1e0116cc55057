#!/usr/bin/env python3
"""Write a data set as a `folder:` layout OUT/{train,test}/<class>/NNNNN.png that both
`vitc train --data folder:OUT` and ../shared/bench/torch_train_folder.py read, so the two
train on the same images (scripts/accuracy-vs-torch.sh).

  data-to-folder.py digits digits.csv.gz OUT
      scikit-learn's digits (8x8, values 0..16 scaled to 0..255), split 80/20 exactly as
      vitc's digits: loader splits it (stratified, fixed).
  data-to-folder.py idx DIR OUT [--train N] [--test N]
      MNIST-format IDX files (train-images-idx3-ubyte[.gz] ...), e.g. Fashion-MNIST from
      Debian's dataset-fashion-mnist; the first N train and test images.
      --class-names A,B,... (or a preset: fashion-mnist) names the folder of label i by the
      i-th name instead of the digit i; the names must sort in label order, since a folder's
      classes are its sorted folder names (fashion-mnist: 0_T-shirt_top ... 9_Ankle_boot).
  data-to-folder.py png SRC OUT
      a folder: layout SRC/{train,test,val}/<class>/*.png|jpg re-encoded as lossless PNG
      with the pixels PIL decodes (RGB, or L when an image is grey), same names plus .png:
      JPEG decoders differ (libjpeg's smooth chroma upsampling vs Go's nearest), a PNG
      copy gives vitc and PyTorch the same pixels.

Needs numpy and PIL (Debian: python3-numpy python3-pil).
"""
import argparse, gzip, os, struct
import numpy as np
from PIL import Image


def stratified_split(y, classes):
    """Mirror of datasets.stratifiedSplit: ceil(N/5) test images, quotas by largest remainder,
    spread evenly (Bresenham) through each class in file order. Returns a bool test mask."""
    count = np.bincount(y, minlength=classes)
    quota = count // 5
    want, given = (len(y) + 4) // 5, int(quota.sum())
    for rem in range(4, 0, -1):
        for c in range(classes):
            if count[c] % 5 == rem and given < want:
                quota[c] += 1
                given += 1
    seen = np.zeros(classes, int)
    test = np.zeros(len(y), bool)
    for i, c in enumerate(y):
        j, n, q = seen[c], count[c], quota[c]
        seen[c] += 1
        test[i] = (j + 1) * q // n > j * q // n
    return test


# Fashion-MNIST's labels 0-9; the digit prefix keeps the sorted order the label order.
PRESETS = {
    "fashion-mnist": ["0_T-shirt_top", "1_Trouser", "2_Pullover", "3_Dress", "4_Coat",
                      "5_Sandal", "6_Shirt", "7_Sneaker", "8_Bag", "9_Ankle_boot"],
}


def write(out, split, xs, ys, names=None):
    for i, (x, c) in enumerate(zip(xs, ys)):
        d = os.path.join(out, split, names[c] if names else str(c))
        os.makedirs(d, exist_ok=True)
        Image.fromarray(x, "L").save(os.path.join(d, f"{i:05d}.png"))


def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        if magic == 0x803:
            rows, cols = struct.unpack(">II", f.read(8))
            return np.frombuffer(f.read(n * rows * cols), np.uint8).reshape(n, rows, cols)
        return np.frombuffer(f.read(n), np.uint8)


def find(d, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise SystemExit(f"no {stem}[.gz] in {d}")


ap = argparse.ArgumentParser()
ap.add_argument("kind", choices=["digits", "idx", "png"])
ap.add_argument("src")
ap.add_argument("out")
ap.add_argument("--train", type=int, default=0, help="idx: first N train images (0: all)")
ap.add_argument("--test", type=int, default=0, help="idx: first N test images (0: all)")
ap.add_argument("--class-names", default="",
                help="folder names of labels 0, 1, ...: comma-separated, or a preset (%s)" % ", ".join(PRESETS))
a = ap.parse_args()
names = PRESETS.get(a.class_names) or [n.strip() for n in a.class_names.split(",") if n.strip()]
if names:
    if len(set(names)) != len(names) or any(os.sep in n or n.startswith(".") for n in names):
        ap.error("--class-names: names must be distinct, without '/' and not hidden")
    if sorted(names) != names:
        ap.error("--class-names: the names must sort in label order (a folder's classes are its sorted "
                 "folder names); prefix them, e.g. 0_name, 1_name, ...")
if a.kind == "digits":
    op = gzip.open if a.src.endswith(".gz") else open
    with op(a.src, "rt") as f:
        rows = np.array([[int(v) for v in line.split(",")] for line in f if line.strip()])
    x = np.rint(rows[:, :64] * 255 / 16).astype(np.uint8).reshape(-1, 8, 8)
    y = rows[:, 64]
    test = stratified_split(y, 10)
    if names and len(names) != 10:
        ap.error("--class-names: digits has 10 classes, %d names given" % len(names))
    write(a.out, "train", x[~test], y[~test], names)
    write(a.out, "test", x[test], y[test], names)
elif a.kind == "png":
    for split in ("train", "test", "val"):
        sd = os.path.join(a.src, split)
        if not os.path.isdir(sd):
            continue
        for c in sorted(os.listdir(sd)):
            if c.startswith(".") or not os.path.isdir(os.path.join(sd, c)):
                continue
            os.makedirs(os.path.join(a.out, split, c), exist_ok=True)
            for f in sorted(os.listdir(os.path.join(sd, c))):
                if f.startswith(".") or not f.lower().endswith((".png", ".jpg", ".jpeg")):
                    continue
                im = Image.open(os.path.join(sd, c, f))
                im = im.convert("L") if im.mode in ("L", "1", "I;16") else im.convert("RGB")
                im.save(os.path.join(a.out, split, c, os.path.splitext(f)[0] + ".png"))
else:
    for split, stem, n in (("train", "train", a.train), ("test", "t10k", a.test)):
        x = read_idx(find(a.src, f"{stem}-images-idx3-ubyte"))
        y = read_idx(find(a.src, f"{stem}-labels-idx1-ubyte"))
        n = n or len(y)
        if names and int(y.max()) >= len(names):
            ap.error("--class-names: label %d has no name (%d given)" % (int(y.max()), len(names)))
        write(a.out, split, x[:n], y[:n], names)
