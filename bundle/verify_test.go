package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/opa-pat/opa-pat/bundle/bundletest"
)

// withZeroFiles rewrites a tarball with its files and, after them, a file
// of zeros of each size, /zeros/0.txt, /zeros/1.txt, …, streamed so that
// the test itself holds none of them.
func withZeroFiles(t *testing.T, tarball []byte, sizes ...int64) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := bundletest.WriteWithZeroFiles(&out, untar(t, tarball), sizes...); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// emptyTarball is a gzipped tarball with no file.
func emptyTarball(t *testing.T) []byte {
	t.Helper()
	var out bytes.Buffer
	gz := gzip.NewWriter(&out)
	if err := tar.NewWriter(gz).Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestCheckTarballSize(t *testing.T) {
	const mib = 1 << 20
	empty := emptyTarball(t)
	for _, tc := range []struct {
		note  string
		sizes []int64
		err   string
	}{
		{note: "small files", sizes: []int64{10, 20}},
		{note: "each limit exactly", sizes: []int64{MaxFileBytes, MaxBundleBytes - MaxFileBytes}},
		{
			note:  "a file over the limit a file",
			sizes: []int64{10, MaxFileBytes + 1},
			err:   "file /zeros/1.txt is 33554433 bytes unpacked, over the limit of 33554432 bytes (32 MiB) a file",
		},
		{
			// Each file under the limit a file.
			note:  "files of 31 MiB",
			sizes: slices.Repeat([]int64{31 * mib}, 3),
			err:   "the files up to /zeros/2.txt sum to 97517568 bytes unpacked, over the limit of 67108864 bytes (64 MiB) a bundle",
		},
		{
			note:  "one byte over the limit a bundle",
			sizes: []int64{MaxFileBytes, MaxFileBytes, 1},
			err:   "the files up to /zeros/2.txt sum to 67108865 bytes unpacked, over the limit of 67108864 bytes (64 MiB) a bundle",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			err := CheckTarballSize(bytes.NewReader(withZeroFiles(t, empty, tc.sizes...)))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.err)
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%v does not wrap ErrTooLarge", err)
			}
		})
	}

	t.Run("not a gzipped tarball", func(t *testing.T) {
		err := CheckTarballSize(strings.NewReader("package pat\n"))
		if err == nil || errors.Is(err, ErrTooLarge) {
			t.Fatalf("error %v; want a reading error", err)
		}
	})

	// Directories, links and the like are not read by OPA's loader; their
	// header's size says nothing about memory.
	t.Run("entries that are not regular files", func(t *testing.T) {
		var out bytes.Buffer
		gz := gzip.NewWriter(&out)
		tw := tar.NewWriter(gz)
		for _, h := range []*tar.Header{
			{Name: "/d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "/l", Typeflag: tar.TypeSymlink, Linkname: "/d"},
		} {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := gz.Close(); err != nil {
			t.Fatal(err)
		}
		if err := CheckTarballSize(&out); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckDirSize(t *testing.T) {
	for _, tc := range []struct {
		note  string
		sizes map[string]int64
		err   string
	}{
		{note: "small files", sizes: map[string]int64{".manifest": 10, "pat/pat.rego": 100}},
		{
			note:  "a file over the limit a file",
			sizes: map[string]int64{"pat/big.json": MaxFileBytes + 1},
			err:   "file DIR/pat/big.json is 33554433 bytes unpacked, over the limit of 33554432 bytes (32 MiB) a file",
		},
		{
			note:  "files over the limit a bundle",
			sizes: map[string]int64{"a/1.json": 30 << 20, "a/2.json": 30 << 20, "b/3.json": 30 << 20},
			err:   "the files up to DIR/b/3.json sum to 94371840 bytes unpacked, over the limit of 67108864 bytes (64 MiB) a bundle",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			dir := t.TempDir()
			for name, size := range tc.sizes {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				// Sparse: the size without the disk space.
				if err := os.Truncate(p, size); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckDirSize(dir)
			want := strings.ReplaceAll(tc.err, "DIR", dir)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != want || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

// Verify refuses a bundle whose files sum to more than MaxBundleBytes from
// its tar headers, before it reads a file: OPA's limit a file let 25 files
// of 31 MiB of zeros, a tarball under a megabyte, take 847 MB.
func TestVerifyRefusesALargeBundleBeforeReadingIt(t *testing.T) {
	keyA, _ := testKeys(t)
	good := build(t, BuildOptions{Key: keyA})
	bomb := withZeroFiles(t, good.Tarball, slices.Repeat([]int64{31 << 20}, 25)...)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Verify(bomb, good.Sigstore, keyA.Public)
	runtime.ReadMemStats(&after)

	want := fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s; "+
		"size: the files up to /zeros/2.txt sum to %d bytes unpacked, over the limit of 67108864 bytes (64 MiB) a bundle",
		sha(bomb), sha(good.Tarball), 3*(31<<20)+sumSizes(t, good.Tarball))
	if err == nil || err.Error() != want || !errors.Is(err, ErrRefused) {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 16<<20 {
		t.Fatalf("Verify allocated %d bytes for a bundle it refuses from its headers", allocated)
	}
}

// sumSizes is the size of a tarball's files, unpacked.
func sumSizes(t *testing.T, tarball []byte) int64 {
	t.Helper()
	var n int64
	for _, b := range untar(t, tarball) {
		n += int64(len(b))
	}
	return n
}
