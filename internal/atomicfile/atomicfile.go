// Package atomicfile replaces files so that readers, and a later run after a
// crash, see either the old complete file or the new complete file, never a
// prefix of the new one. Checkpoints, bundles and datasets written by vitc go
// through it because a half-written checkpoint looks valid until it is loaded.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// bufSize is large enough that checkpoint-sized writes are not dominated by
// syscalls, small enough not to matter next to the data being written.
const bufSize = 1 << 20

// WriteFile writes the file at path with the content produced by write.
//
// The content goes to a temporary file in the same directory (a rename is
// only atomic within one filesystem), which is flushed, fsynced, made 0644
// and renamed over path; the directory is then fsynced so the rename itself
// survives a crash. If write or any step fails, or write panics, the
// temporary file is removed and path is left as it was. All errors, including
// one returned by write, are wrapped with the target path.
//
// write must not keep w after it returns. If path is a symbolic link, the link
// itself is replaced, not its target.
func WriteFile(path string, write func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if base == "" {
		return fmt.Errorf("write %s: path names a directory", path)
	}
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	// Deferred so that a panic in write also removes the temporary file.
	defer func() {
		if !renamed {
			f.Close() // may already be closed; the error is irrelevant here
			os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriterSize(f, bufSize)
	if err := write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; checkpoints and bundles are meant to be
	// shared like any other output file.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		// The new file is in place and complete; only its durability across
		// a power loss is in doubt, which the caller should still hear about.
		return fmt.Errorf("write %s: file replaced but directory not synced: %w", path, err)
	}
	return nil
}

// WriteBytes atomically replaces the file at path with b; see WriteFile.
func WriteBytes(path string, b []byte) error {
	return WriteFile(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

func syncDir(dir string) error {
	// Windows cannot open or flush a directory handle this way, and NTFS
	// journals the rename itself.
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		// Some filesystems (several FUSE and network ones) do not support
		// fsync on a directory; there is nothing more we can do there.
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
			return nil
		}
		return err
	}
	return nil
}
