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


def write(out, split, xs, ys):
    for i, (x, c) in enumerate(zip(xs, ys)):
        d = os.path.join(out, split, str(c))
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
ap.add_argument("kind", choices=["digits", "idx"])
ap.add_argument("src")
ap.add_argument("out")
ap.add_argument("--train", type=int, default=0, help="idx: first N train images (0: all)")
ap.add_argument("--test", type=int, default=0, help="idx: first N test images (0: all)")
a = ap.parse_args()
if a.kind == "digits":
    op = gzip.open if a.src.endswith(".gz") else open
    with op(a.src, "rt") as f:
        rows = np.array([[int(v) for v in line.split(",")] for line in f if line.strip()])
    x = np.rint(rows[:, :64] * 255 / 16).astype(np.uint8).reshape(-1, 8, 8)
    y = rows[:, 64]
    test = stratified_split(y, 10)
    write(a.out, "train", x[~test], y[~test])
    write(a.out, "test", x[test], y[test])
else:
    for split, stem, n in (("train", "train", a.train), ("test", "t10k", a.test)):
        x = read_idx(find(a.src, f"{stem}-images-idx3-ubyte"))
        y = read_idx(find(a.src, f"{stem}-labels-idx1-ubyte"))
        n = n or len(y)
        write(a.out, split, x[:n], y[:n])
