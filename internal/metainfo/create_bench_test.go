package metainfo

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BenchmarkCreate hashes a 64 MiB file (in page cache after the first run)
// with every core; compare its MB/s with BenchmarkSHA1OneCore × cores.
func BenchmarkCreate(b *testing.B) {
	p := filepath.Join(b.TempDir(), "data.bin")
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportMetric(float64(runtime.NumCPU()), "cores")
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := Create(context.Background(), CreateOptions{Path: p, PieceLength: 256 << 10, NoDate: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSHA1OneCore is the single-core SHA-1 reference for BenchmarkCreate.
func BenchmarkSHA1OneCore(b *testing.B) {
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		sha1.Sum(buf)
	}
}

// BenchmarkHashFiles compares hashing from mappings (readAuto; ReadAt
// where the platform cannot map) with ReadAt into a buffer (readCopy) on a
// 64 MiB file, 1 MiB pieces, every core.
func BenchmarkHashFiles(b *testing.B) {
	p := filepath.Join(b.TempDir(), "data.bin")
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	files := []sourceFile{{abs: p, path: []string{"data.bin"}, size: int64(len(data))}}
	for _, m := range []struct {
		name string
		mode readMode
	}{{"mmap", readAuto}, {"readat", readCopy}} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := hashFilesMode(context.Background(), files, int64(len(data)), 1<<20, 0, nil, m.mode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
