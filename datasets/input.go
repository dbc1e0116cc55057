package datasets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

// input is a data file opened for reading, decompressed on the fly when it
// starts with the gzip magic. Detection is by content rather than by name
// so that a renamed or mislabelled file still reads.
type input struct {
	io.Reader
	// size is the byte length of the (decompressed) stream when it is known
	// in advance, -1 when it is not; readers use it to reject a header that
	// disagrees with the file before allocating for it.
	size int64
	f    *os.File
	gz   *gzip.Reader
}

func openInput(path string) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	br := bufio.NewReader(f)
	in := &input{Reader: br, size: st.Size(), f: f}
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		in.Reader, in.gz, in.size = gz, gz, -1
	}
	return in, nil
}

func (in *input) Close() error {
	if in.gz != nil {
		in.gz.Close()
	}
	return in.f.Close()
}

// readFileLimited reads a whole file, refusing one larger than limit bytes
// before reading it: a stray multi-gigabyte file in a data directory should
// be an error, not an out-of-memory kill.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d expected at most", path, st.Size(), limit)
	}
	// The stat size is only a hint (the file may be growing, or special), so
	// the read itself is limited too.
	buf := bytes.NewBuffer(make([]byte, 0, st.Size()+bytes.MinRead))
	if _, err := io.Copy(buf, io.LimitReader(f, limit+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", path, limit)
	}
	return buf.Bytes(), nil
}
