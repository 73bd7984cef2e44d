package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// This file holds what the lab runs inside its namespaces through hidden
// `shoal lab` subcommands (HTTP server and client, waiting for the seeder
// to be registered), plus the lab's data folder. shoal downloaders wait for
// the go signal themselves (shoal get --wait-go).

// HTTPServe serves file at / and /<name> on listen until ctx ends; it
// prints READY once listening.
func HTTPServe(ctx context.Context, listen, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("http-serve: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("http-serve: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("http-serve: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// an *os.File is an io.ReaderAt: each request gets its own section (sendfile).
			http.ServeContent(w, r, st.Name(), st.ModTime(), io.NewSectionReader(f, 0, st.Size()))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintln(os.Stderr, "READY")
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http-serve: %w", err)
	}
	return nil
}

// HTTPGet downloads u into out ("-" = stdout). With waitGo it first prints
// READY and waits for end-of-file on stdin. It ends with "DONE <bytes>".
func HTTPGet(ctx context.Context, u, out string, waitGo bool) error {
	if waitGo {
		fmt.Fprintln(os.Stderr, "READY")
		if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
			return fmt.Errorf("http-get: waiting for go: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("http-get: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("http-get: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("http-get %s: %s", u, resp.Status)
	}
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("http-get: %w", err)
		}
		defer f.Close()
		w = f
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("http-get %s: after %d bytes: %w", u, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("http-get %s: %d of %d bytes", u, n, resp.ContentLength)
	}
	fmt.Fprintf(os.Stderr, "DONE %d\n", n)
	return nil
}

// scrapeResponse is the part of a BEP 48 scrape reply the lab reads.
type scrapeResponse struct {
	Files map[string]struct {
		Complete int64 `bencode:"complete"`
	} `bencode:"files"`
	Failure string `bencode:"failure reason,omitempty"`
}

// WaitSeeded polls the tracker's scrape until it lists at least one seeder
// for infoHash (20 raw bytes), or timeout passes.
func WaitSeeded(ctx context.Context, announceURL string, infoHash []byte, timeout time.Duration) error {
	if len(infoHash) != 20 {
		return errors.New("wait-seeded: info-hash must be 20 bytes")
	}
	su, err := scrapeURL(announceURL, infoHash)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		last = scrapeOnce(ctx, su, infoHash)
		if last == nil {
			fmt.Fprintln(os.Stderr, "READY")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait-seeded: no seeder registered after %v: %w", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func scrapeURL(announce string, infoHash []byte) (string, error) {
	i := strings.LastIndex(announce, "/announce")
	if i < 0 {
		return "", fmt.Errorf("wait-seeded: %q has no /announce to turn into /scrape", announce)
	}
	u := announce[:i] + "/scrape" + announce[i+len("/announce"):]
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "info_hash=" + url.QueryEscape(string(infoHash)), nil
}

func scrapeOnce(ctx context.Context, su string, infoHash []byte) error {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, su, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	var sr scrapeResponse
	if err := bencode.UnmarshalLimits(body, &sr, bencode.Limits{MaxDepth: 16, MaxStringLen: 1 << 16, MaxItems: 1 << 12, Lenient: true}); err != nil {
		return fmt.Errorf("scrape reply: %w", err)
	}
	if sr.Failure != "" {
		return fmt.Errorf("scrape: %s", sr.Failure)
	}
	if sr.Files[string(infoHash)].Complete < 1 {
		return errors.New("no seeder yet")
	}
	return nil
}

// dataDirPID recognises a lab data folder /tmp/shoal-lab-<pid>.
func dataDirPID(path string) (int, bool) {
	rest, ok := strings.CutPrefix(path, "/tmp/shoal-lab-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(rest)
	return pid, err == nil && pid > 0
}

// mountData mounts a tmpfs of sizeBytes at /tmp/shoal-lab-<pid>.
func mountData(sizeBytes int64) (string, error) {
	dir := "/tmp/shoal-lab-" + strconv.Itoa(os.Getpid())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("data folder: %w", err)
	}
	opt := "size=" + strconv.FormatInt(sizeBytes, 10) + ",mode=0755"
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opt); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return dir, nil
}

func unmountData(dir string) error {
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("umount %s: %w", dir, err)
	}
	return os.Remove(dir)
}

// writeRandomFile writes n pseudo-random bytes (seeded, so reproducible)
// and returns their SHA-256.
func writeRandomFile(path string, n int64, seed uint64) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	if _, err := io.CopyN(bw, rng, n); err != nil {
		f.Close()
		return [32]byte{}, err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return [32]byte{}, err
	}
	if err := f.Close(); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// fileSHA256 hashes a file.
func fileSHA256(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

var _ = filepath.Join
