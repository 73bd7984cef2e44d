// Command fileserver serves a directory over HTTP on a loopback address with
// Go's http.FileServer (Range requests included): the web seed of the
// streaming tests and of scripts/bench-stream.sh.
//
//	go run ./test/stream/fileserver -listen 127.0.0.1:24100 -dir DATA [-rate 250000]
//
// -rate caps each response at that many bytes a second (a slow mirror). It
// prints "listening on ADDR" once it accepts connections and runs until
// it is interrupted. Only loopback addresses are accepted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fileserver:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	dir := flag.String("dir", ".", "directory to serve")
	rate := flag.Int64("rate", 0, "bytes/s per response (0: unlimited)")
	flag.Parse()
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("-listen %s: only loopback addresses are allowed", ap)
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		return fmt.Errorf("-dir %s: not a directory", *dir)
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return err
	}
	fmt.Println("listening on", ln.Addr())
	var h http.Handler = http.FileServer(http.Dir(*dir))
	if *rate > 0 {
		h = throttle(h, *rate)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// throttle paces every response body of h to rate bytes a second.
func throttle(h http.Handler, rate int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&slowWriter{ResponseWriter: w, rate: rate, start: time.Now()}, r)
	})
}

type slowWriter struct {
	http.ResponseWriter
	rate  int64
	start time.Time
	sent  int64
}

func (w *slowWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), 8<<10)]
		due := w.start.Add(time.Duration(float64(w.sent+int64(len(chunk))) / float64(w.rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(min(d, 2*time.Second))
		}
		n, err := w.ResponseWriter.Write(chunk)
		written += n
		w.sent += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
