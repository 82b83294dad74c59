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
	return write(w, nil, nil, files, sizes)
}

// WriteWithFirstEntry writes to w a gzipped tarball of hdr (its mode and
// size filled in, of any type) with content, then files by name, in name
// order.
func WriteWithFirstEntry(w io.Writer, hdr *tar.Header, content []byte, files map[string][]byte) error {
	return write(w, hdr, content, files, nil)
}

// Edited returns files with edit applied to each: the file's new content,
// or nil to drop it.
func Edited(files map[string][]byte, edit func(name string, b []byte) []byte) map[string][]byte {
	out := make(map[string][]byte, len(files))
	for name, b := range files {
		if b = edit(name, b); b != nil {
			out[name] = b
		}
	}
	return out
}

func write(w io.Writer, first *tar.Header, firstContent []byte, files map[string][]byte, sizes []int64) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	if first != nil {
		first.Mode, first.Size = 0o644, int64(len(firstContent))
		if err := tw.WriteHeader(first); err != nil {
			return err
		}
		if _, err := tw.Write(firstContent); err != nil {
			return err
		}
	}
	entry := func(name string, size int64, content io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, content, size)
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := entry(name, int64(len(files[name])), bytes.NewReader(files[name])); err != nil {
			return err
		}
	}
	for i, size := range sizes {
		if err := entry(fmt.Sprintf("/zeros/%d.txt", i), size, zeros{}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
