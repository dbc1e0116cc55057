// Package rawio writes the raw little-endian float32 payload that both of
// vitc's tensor file formats (safetensors, .npy) put after their headers.
package rawio

import (
	"encoding/binary"
	"io"
	"math"
)

// chunk is how many bytes are encoded before each write: large enough that
// writes are few, small enough that no copy of a whole tensor is made.
const chunk = 64 << 10

// WriteFloat32s writes header, then every value of each slice in turn as
// little-endian float32.
func WriteFloat32s(w io.Writer, header []byte, data ...[]float32) error {
	if _, err := w.Write(header); err != nil {
		return err
	}
	buf := make([]byte, 0, chunk)
	for _, d := range data {
		for _, v := range d {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
