package datasets

import (
	"bytes"
	"encoding/binary"
)

// jpegOrientation returns the EXIF orientation (1..8) of a JPEG, or 1 when
// it has none: cameras store photos unrotated and record how to turn them.
// Only the markers before the image data are read.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return 1
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xff {
			return 1
		}
		marker, n := b[i+1], int(binary.BigEndian.Uint16(b[i+2:]))
		if marker == 0xda || n < 2 || i+2+n > len(b) { // start of scan: no more metadata
			return 1
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return exifOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

// exifOrientation reads tag 0x0112 of IFD0 of a TIFF-structured block.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := int(bo.Uint32(t[4:]))
	if off < 8 || off+2 > len(t) {
		return 1
	}
	n := int(bo.Uint16(t[off:]))
	for k := range n {
		e := off + 2 + 12*k
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) == 0x0112 && bo.Uint16(t[e+2:]) == 3 { // SHORT
			if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

// orient returns im turned upright for EXIF orientation o.
func (im Image) orient(o int) Image {
	if o <= 1 || o > 8 {
		return im
	}
	w, h := im.W, im.H
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	// src maps an output pixel to the stored one.
	src := func(x, y int) (int, int) {
		switch o {
		case 2:
			return w - 1 - x, y
		case 3:
			return w - 1 - x, h - 1 - y
		case 4:
			return x, h - 1 - y
		case 5:
			return y, x
		case 6:
			return y, h - 1 - x
		case 7:
			return w - 1 - y, h - 1 - x
		default: // 8
			return w - 1 - y, x
		}
	}
	out := make([]float32, len(im.Pix))
	for c := range im.C {
		for y := range oh {
			for x := range ow {
				sx, sy := src(x, y)
				out[(c*oh+y)*ow+x] = im.Pix[(c*h+sy)*w+sx]
			}
		}
	}
	return Image{C: im.C, H: oh, W: ow, Pix: out}
}
