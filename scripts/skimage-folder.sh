#!/bin/sh
# Arranges scikit-image's sample photos (Debian's python3-skimage, unpacked,
# not installed) into a folder: dataset of mixed sizes and modes -- 8/16-bit,
# grey, RGB, RGBA, paletted, 1-bit PNG and JPEG, plus a truncated JPEG -- to
# try `vitc train/eval/predict` on real files:
#
#   scripts/skimage-folder.sh            # -> .cache/skimage-folder/<class>/*
#   bin/vitc train --data folder:.cache/skimage-folder --val-split 0.3 \
#       --image-size 32 --patch 8 --skip-bad-images --epochs 5
set -eu
cache=.cache
out=$cache/skimage-folder
if [ ! -d "$cache/skimage-deb" ]; then
	mkdir -p "$cache"
	(cd "$cache" && apt-get download python3-skimage && dpkg -x python3-skimage_*.deb skimage-deb)
fi
src=$(find "$cache/skimage-deb" -type d -path '*skimage/data' | head -1)
rm -rf "$out"
put() { mkdir -p "$out/$1"; shift_class=$1; shift; for f in "$@"; do cp "$src/$f" "$out/$shift_class/"; done; }
put photo astronaut.png chelsea.png coffee.png motorcycle_left.png motorcycle_right.png rocket.jpg camera.png moon.png coins.png horse.png truncated.jpg
put microscopy hubble_deep_field.jpg retina.jpg ihc.png cell.png microaneurysms.png
put texture brick.png grass.png gravel.png
put synthetic chessboard_RGB.png chessboard_GRAY.png checker_bilevel.png logo.png color.png palette_color.png green_palette.png palette_gray.png block.png phantom.png foo3x5x4indexed.png
put text page.png text.png bw_text.png clock_motion.png
echo "wrote $out: $(find "$out" -type f | wc -l) files"
