package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"unicode/utf8"

	"vitc/internal/atomicfile"
	"vitc/internal/rawio"
)

// WriteTensor is a float32 tensor to be written; Data is row-major and
// len(Data) must equal the product of Shape.
type WriteTensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Encode writes tensors as F32 in the given order, with metadata (which may be
// nil) as "__metadata__". Everything is validated before the first byte is
// written, so a bad tensor never produces a truncated stream.
func Encode(w io.Writer, tensors []WriteTensor, metadata map[string]string) error {
	header, err := encodeHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err := writeAll(w, header, tensors); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// WriteFile writes a safetensors file atomically: on any error the previous
// file at path, if any, is left as it was.
func WriteFile(path string, tensors []WriteTensor, metadata map[string]string) error {
	header, err := encodeHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	// atomicfile's errors already name path.
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		return writeAll(w, header, tensors)
	})
}

// encodeHeader builds the 8-byte length prefix and the JSON header. The JSON
// is written by hand to keep tensors in the caller's order (a map would sort
// them) and padded with spaces to a multiple of 8 bytes so the data buffer is
// 8-byte aligned, as the reference writer does.
func encodeHeader(tensors []WriteTensor, metadata map[string]string) ([]byte, error) {
	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	comma := func() {
		if !first {
			h.WriteByte(',')
		}
		first = false
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata %q: key or value is not valid UTF-8", k)
		}
	}
	if len(metadata) > 0 {
		md, err := marshal(metadata) // sorted keys: deterministic output
		if err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		comma()
		h.WriteString(`"` + metadataKey + `":`)
		h.Write(md)
	}
	seen := make(map[string]bool, len(tensors))
	var offset int64
	for _, t := range tensors {
		switch {
		case t.Name == "":
			return nil, fmt.Errorf("tensor with empty name")
		case t.Name == metadataKey:
			return nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		case !utf8.ValidString(t.Name):
			// JSON would silently replace the bad bytes, so the name read
			// back would differ from the one written.
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		case seen[t.Name]:
			return nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		seen[t.Name] = true
		shape := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			shape[i] = int64(d)
		}
		count, ok := elementCount(shape)
		if !ok || count > math.MaxInt64/4 {
			return nil, fmt.Errorf("tensor %q: element count of shape %v overflows", t.Name, t.Shape)
		}
		if count != int64(len(t.Data)) {
			return nil, fmt.Errorf("tensor %q: shape %v has %d elements, data has %d", t.Name, t.Shape, count, len(t.Data))
		}
		name, err := marshal(t.Name)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		comma()
		h.Write(name)
		h.WriteString(`:{"dtype":"F32","shape":[`)
		for i, d := range shape {
			if i > 0 {
				h.WriteByte(',')
			}
			fmt.Fprint(&h, d)
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, offset, offset+4*count)
		offset += 4 * count
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	out := make([]byte, prefixLen, prefixLen+h.Len())
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	return append(out, h.Bytes()...), nil
}

// marshal is json.Marshal without HTML escaping, so the vitc config JSON
// stored in the metadata stays readable in a hex dump or `head -c`.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func writeAll(w io.Writer, header []byte, tensors []WriteTensor) error {
	data := make([][]float32, len(tensors))
	for i, t := range tensors {
		data[i] = t.Data
	}
	return rawio.WriteFloat32s(w, header, data...)
}
