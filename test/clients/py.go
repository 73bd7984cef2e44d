package clients

import (
	"embed"
	"os"
	"path/filepath"
	"testing"
)

// pyFiles are the python3-libtorrent helper scripts (seeder, leecher,
// torrent_info dump), adapted from the shared interop harness.
//
//go:embed py/*.py
var pyFiles embed.FS

// pyDir writes the embedded scripts to a fresh directory below t.TempDir()
// and returns it.
func pyDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "py")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := pyFiles.ReadDir("py")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := pyFiles.ReadFile("py/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
