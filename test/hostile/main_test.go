package hostile

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/procstat"
	"github.com/shoal-p2p/shoal/test/clients"
)

func TestMain(m *testing.M) {
	code := clients.Main(m)
	printSummary()
	os.Exit(code)
}

// row is one line of the closing summary table: how many hostile inputs of
// one kind a test tried and what shoal did with them.
type row struct {
	Kind    string
	Inputs  int
	Outcome string
}

var (
	summaryMu sync.Mutex
	summary   []row // guarded by summaryMu
)

// record adds a row to the summary table and logs it on t.
func record(t *testing.T, kind string, inputs int, outcome string) {
	t.Helper()
	t.Logf("SUMMARY | %-34s | %4d | %s", kind, inputs, outcome)
	summaryMu.Lock()
	summary = append(summary, row{kind, inputs, outcome})
	summaryMu.Unlock()
}

func printSummary() {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if len(summary) == 0 {
		return
	}
	sort.SliceStable(summary, func(i, j int) bool { return summary[i].Kind < summary[j].Kind })
	fmt.Println("hostile input summary:")
	fmt.Printf("  %-34s | %6s | %s\n", "kind", "inputs", "what shoal did")
	for _, r := range summary {
		fmt.Printf("  %-34s | %6d | %s\n", r.Kind, r.Inputs, r.Outcome)
	}
}

// ---------------------------------------------------------------- bencode

// b is a tiny bencode writer for building hostile torrents byte by byte
// (independent of internal/bencode, which would refuse to write many of them).
type b []byte

func (x b) str(s string) b { return append(append(x, strconv.Itoa(len(s))+":"...), s...) }
func (x b) num(n int64) b  { return append(append(append(x, 'i'), strconv.FormatInt(n, 10)...), 'e') }
func (x b) raw(s string) b { return append(x, s...) }

// dict writes a dictionary from alternating keys and pre-encoded values,
// in the given order (callers may break the canonical order on purpose).
func dict(kv ...any) []byte {
	out := b{'d'}
	for i := 0; i < len(kv); i += 2 {
		out = out.str(kv[i].(string))
		out = append(out, enc(kv[i+1])...)
	}
	return append(out, 'e')
}

// enc encodes a Go value: string, int/int64, []byte (pre-encoded raw), []any, []string.
func enc(v any) []byte {
	switch v := v.(type) {
	case string:
		return b(nil).str(v)
	case int:
		return b(nil).num(int64(v))
	case int64:
		return b(nil).num(v)
	case []byte:
		return v
	case []string:
		out := b{'l'}
		for _, s := range v {
			out = out.str(s)
		}
		return append(out, 'e')
	case []any:
		out := b{'l'}
		for _, e := range v {
			out = append(out, enc(e)...)
		}
		return append(out, 'e')
	}
	panic(fmt.Sprintf("enc: %T", v))
}

// pieceHashes returns the concatenated SHA-1 of data in pieces of pl bytes.
func pieceHashes(data []byte, pl int) string {
	var sb strings.Builder
	for off := 0; off < len(data); off += pl {
		h := sha1.Sum(data[off:min(off+pl, len(data))])
		sb.Write(h[:])
	}
	return sb.String()
}

// detData returns n deterministic pseudo-random bytes (seeded by seed).
func detData(n int, seed uint64) []byte {
	out := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[i] = byte(x)
	}
	return out
}

// fixture is one valid single-file torrent with its data on disk.
type fixture struct {
	Torrent  string // path of the .torrent
	DataDir  string // parent of Name (for shoal seed -d)
	Name     string
	Data     []byte
	PieceLen int
	InfoHash [20]byte
	Info     []byte // raw info dictionary
}

// makeFixture writes size bytes of content named name and a .torrent for it
// (announce is optional).
func makeFixture(t *testing.T, name string, size, pieceLen int, announce string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{DataDir: filepath.Join(dir, "data"), Name: name, Data: detData(size, uint64(size)), PieceLen: pieceLen}
	if err := os.MkdirAll(f.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.DataDir, name), f.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	f.Info = dict("length", size, "name", name, "piece length", pieceLen, "pieces", pieceHashes(f.Data, pieceLen))
	f.InfoHash = sha1.Sum(f.Info)
	var top []byte
	if announce != "" {
		top = dict("announce", announce, "info", f.Info)
	} else {
		top = dict("info", f.Info)
	}
	f.Torrent = filepath.Join(dir, name+".torrent")
	if err := os.WriteFile(f.Torrent, top, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// NumPieces is the fixture's piece count.
func (f *fixture) NumPieces() int { return (len(f.Data) + f.PieceLen - 1) / f.PieceLen }

// ---------------------------------------------------------------- processes

// rssKiB reads VmRSS of a process in KiB (0 if unreadable).
func rssKiB(pid int) int64 {
	m, err := procstat.Read(pid)
	if err != nil {
		return 0
	}
	return m.RSS
}

// waitFor polls f every 50 ms until it returns true or timeout passes.
func waitFor(timeout time.Duration, f func() bool) bool {
	end := time.Now().Add(timeout)
	for {
		if f() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sameFile reports whether path holds exactly want.
func sameFile(path string, want []byte) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d bytes, want %d", path, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("%s: first difference at byte %d", path, i)
		}
	}
	return nil
}

// runBounded runs a command to completion, killed after timeout; it
// returns stdout, stderr and the exit error.
func runBounded(timeout time.Duration, argv ...string) (string, string, error) {
	var so, se bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return so.String(), se.String(), err
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return so.String(), se.String(), fmt.Errorf("killed after %v", timeout)
	}
}
