package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// TestHostileTorrents feeds every generated hostile .torrent to `shoal info`
// and `shoal get`: each must exit non-zero with a message that names the
// problem, never panic, and write nothing (neither in the output folder nor
// outside it).
func TestHostileTorrents(t *testing.T) {
	bin := clients.ShoalBinary(t)
	corpus := hostileTorrents()
	escaped := "/tmp/shoal-hostile-escaped"
	_ = os.Remove(escaped)

	var mu sync.Mutex
	refused := 0
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, tc := range corpus {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ok := checkRefused(t, bin, tc)
			mu.Lock()
			if ok {
				refused++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if _, err := os.Lstat(escaped); err == nil {
		t.Errorf("%s was created: a torrent escaped the output folder", escaped)
		_ = os.RemoveAll(escaped)
	}
	record(t, "hostile .torrent files (info+get)", len(corpus),
		fmt.Sprintf("%d/%d refused by info and get, message names the problem, nothing written", refused, len(corpus)))
}

// checkRefused runs info and get on one hostile torrent and reports whether
// both refused it properly (it also marks t failed when not).
func checkRefused(t *testing.T, bin string, tc badTorrent) bool {
	sandbox, err := os.MkdirTemp("", "shoal-hostile-torrent-")
	if err != nil {
		t.Error(err)
		return false
	}
	defer os.RemoveAll(sandbox)
	torrent := filepath.Join(sandbox, "bad.torrent")
	out := filepath.Join(sandbox, "out")
	if err := os.WriteFile(torrent, tc.Data, 0o644); err != nil {
		t.Error(err)
		return false
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Error(err)
		return false
	}
	good := true
	for _, argv := range [][]string{
		{bin, "info", torrent},
		{bin, "get", "-o", out, "--listen", "127.0.0.1:0", "--no-dht", torrent},
	} {
		_, stderr, err := runBounded(20*time.Second, argv...)
		msg := strings.ToLower(stderr)
		switch {
		case err == nil:
			t.Errorf("%s: `shoal %s` accepted it (exit 0)", tc.Name, argv[1])
			good = false
		case strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine "):
			t.Errorf("%s: `shoal %s` panicked:\n%s", tc.Name, argv[1], stderr)
			good = false
		case strings.Contains(err.Error(), "killed after"):
			t.Errorf("%s: `shoal %s` hung: %v", tc.Name, argv[1], err)
			good = false
		case !containsAny(msg, tc.Want):
			t.Errorf("%s: `shoal %s` message does not name the problem (want one of %q):\n%s", tc.Name, argv[1], tc.Want, stderr)
			good = false
		}
	}
	// nothing written: the sandbox holds only the torrent and an empty out
	ents, _ := os.ReadDir(sandbox)
	outEnts, _ := os.ReadDir(out)
	if len(ents) != 2 || len(outEnts) != 0 {
		var names []string
		for _, e := range append(ents, outEnts...) {
			names = append(names, e.Name())
		}
		t.Errorf("%s: files written although the torrent was refused: %v", tc.Name, names)
		good = false
	}
	return good
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, strings.ToLower(w)) {
			return true
		}
	}
	return false
}
