package hostile

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-p2p/shoal/test/clients"
)

// TestWriteFuzzSeeds writes the hostile torrents and KRPC packets as seed
// corpora of the parsers' fuzz targets when SHOAL_WRITE_CORPUS=1:
//
//	SHOAL_WRITE_CORPUS=1 go test ./test/hostile -run TestWriteFuzzSeeds
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("SHOAL_WRITE_CORPUS") != "1" {
		t.Skip("set SHOAL_WRITE_CORPUS=1 to (re)write the fuzz seed corpora")
	}
	root, err := clients.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	write := func(dir string, data []byte) {
		if len(data) > 1<<16 { // keep the checked-in corpus small
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("hostile-%x", sha256.Sum256(data))[:24]
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, tc := range hostileTorrents() {
		write(filepath.Join(root, "internal/metainfo/testdata/fuzz/FuzzParse"), tc.Data)
		write(filepath.Join(root, "internal/bencode/testdata/fuzz/FuzzDecode"), tc.Data)
		n++
	}
	for _, c := range hostileDHT() {
		write(filepath.Join(root, "internal/dht/krpc/testdata/fuzz/FuzzDecode"), c.Pkt)
		n++
	}
	t.Logf("wrote %d seeds", n)
}
