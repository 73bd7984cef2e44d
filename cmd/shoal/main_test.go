package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// run executes the CLI in-process with args and returns its error.
func run(t *testing.T, args ...string) error {
	_, err := runOut(t, args...)
	return err
}

// runOut is run that also returns what the command wrote to its output.
func runOut(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	root := newRootCmd()
	root.SetArgs(args)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.Bytes(), err
}

// TestEveryCommandHasHelpWithExample: each user-facing command documents
// itself with at least one example.
func TestEveryCommandHasHelpWithExample(t *testing.T) {
	root := newRootCmd()
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Short == "" || c.Example == "" {
			t.Errorf("shoal %s: missing Short or Example in --help", c.Name())
		}
	}
	for _, name := range []string{"create", "info", "get", "seed", "tracker", "dht"} {
		if c, _, err := root.Find([]string{name}); err != nil || c.Name() != name {
			t.Errorf("command %q not registered", name)
		}
	}
}

func TestCreateThenInfoJSON(t *testing.T) {
	dir := t.TempDir()
	content := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(content, "sub"), 0o755)
	os.WriteFile(filepath.Join(content, "a.txt"), bytes.Repeat([]byte("a"), 70000), 0o644)
	os.WriteFile(filepath.Join(content, "sub", "b.txt"), []byte("bee"), 0o644)
	out := filepath.Join(dir, "x.torrent")
	if err := run(t, "create", "-o", out, "-t", "http://127.0.0.1:1/announce", "-t", "udp://127.0.0.1:2", "--piece-length", "16384", content); err != nil {
		t.Fatal(err)
	}
	js, err := runOut(t, "info", "--json", out)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.NewBuffer(js)
	var info struct {
		Name        string     `json:"name"`
		InfoHash    string     `json:"info_hash"`
		Size        int64      `json:"size"`
		PieceLength int64      `json:"piece_length"`
		Pieces      int        `json:"pieces"`
		Trackers    [][]string `json:"trackers"`
		Files       []struct {
			Path   string `json:"path"`
			Length int64  `json:"length"`
		} `json:"files"`
	}
	if err := json.Unmarshal(buf.Bytes(), &info); err != nil {
		t.Fatalf("info --json is not JSON: %v\n%s", err, buf.String())
	}
	if info.Name != "data" || len(info.InfoHash) != 40 || info.Size != 70003 || info.PieceLength != 16384 ||
		info.Pieces != 5 || len(info.Files) != 2 || len(info.Trackers) != 2 {
		t.Fatalf("unexpected info: %+v", info)
	}
	if err := run(t, "create", "-o", out, content); err == nil || !strings.Contains(err.Error(), "exist") {
		t.Fatalf("overwriting without --force should be refused, got %v", err)
	}
}

func TestHumanFormats(t *testing.T) {
	cases := map[string]string{
		humanBytes(512):                  "512 B",
		humanBytes(1536):                 "1.5 KiB",
		humanBytes(3 << 30):              "3.0 GiB",
		humanRate(2 << 20):               "2.0 MiB/s",
		humanDuration(45 * time.Second):  "45s",
		humanDuration(187 * time.Second): "3m07s",
		humanDuration(-1):                "--",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestGetRefusesBadTorrent(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.torrent")
	os.WriteFile(bad, []byte("d4:infod4:name2:..ee"), 0o644)
	err := run(t, "get", "--no-dht", "--listen", "127.0.0.1:0", "-o", t.TempDir(), bad)
	if err == nil {
		t.Fatal("a malformed torrent was accepted")
	}
}

func TestParseByteSize(t *testing.T) {
	good := map[string]int64{"0": 0, "512": 512, "64K": 64 << 10, "4M": 4 << 20, "1.5m": 3 << 19, "2GiB": 2 << 30, "10KB": 10 << 10}
	for in, want := range good {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("%q: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "abc", "5X", "9999999G"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestCPUProfileFlag: --cpuprofile leaves a complete profile (a whole gzip
// stream, which is how pprof stores one) when the command succeeds and when
// it fails, and a profile path that cannot be created is an error.
func TestCPUProfileFlag(t *testing.T) {
	dir := t.TempDir()
	content := filepath.Join(dir, "data")
	os.WriteFile(content, bytes.Repeat([]byte("x"), 1<<20), 0o644)
	ok := filepath.Join(dir, "ok.pprof")
	if err := run(t, "--cpuprofile", ok, "create", "-o", filepath.Join(dir, "x.torrent"), content); err != nil {
		t.Fatal(err)
	}
	failed := filepath.Join(dir, "failed.pprof")
	if err := run(t, "info", "--cpuprofile", failed, filepath.Join(dir, "missing.torrent")); err == nil {
		t.Fatal("info of a missing file succeeded")
	}
	for _, p := range []string{ok, failed} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err == nil {
			_, err = io.Copy(io.Discard, zr)
		}
		f.Close()
		if err != nil {
			t.Errorf("%s: not a complete profile: %v", filepath.Base(p), err)
		}
	}
	if err := run(t, "--cpuprofile", filepath.Join(dir, "no", "such", "dir", "p.pprof"), "info", filepath.Join(dir, "x.torrent")); err == nil || !strings.Contains(err.Error(), "--cpuprofile") {
		t.Errorf("unwritable profile path: %v", err)
	}
}
