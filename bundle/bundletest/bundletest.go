// Package bundletest builds what bundle tests need: tarballs of a signed
// bundle's files with files of zeros added, streamed so that a test holds
// none of them, and keys of every kind a verification key must not be.
package bundletest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"slices"
)

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// WriteWithZeroFiles writes to w a gzipped tarball of files (by name, in
// name order) and, after them, a file of zeros of each size:
// /zeros/0.txt, /zeros/1.txt, ….
func WriteWithZeroFiles(w io.Writer, files map[string][]byte, sizes ...int64) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	write := func(name string, size int64, content io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, content, size)
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := write(name, int64(len(files[name])), bytes.NewReader(files[name])); err != nil {
			return err
		}
	}
	for i, size := range sizes {
		if err := write(fmt.Sprintf("/zeros/%d.txt", i), size, zeros{}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
