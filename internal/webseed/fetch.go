package webseed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// httpError is a non-success HTTP status, with the Retry-After delay when
// the server gave one.
type httpError struct {
	status     int
	retryAfter time.Duration
}

func (e *httpError) Error() string {
	return fmt.Sprintf("webseed: HTTP status %d", e.status)
}

// fetchFrom fills buf with piece from mirror m and updates m's statistics:
// a success refreshes throughput and latency and clears failures; a failure
// (other than the caller's context ending) backs the mirror off.
func (c *Client) fetchFrom(ctx context.Context, m *mirror, piece int, buf []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	off := c.info.PieceOffset(piece)
	var (
		pos       int64
		latency   time.Duration
		transfer  time.Duration
		requested int
	)
	for _, s := range c.info.Spans(off, int64(len(buf))) {
		dst := buf[pos : pos+s.Length]
		pos += s.Length
		if c.info.Files[s.File].Padding {
			clear(dst) // BEP 47 padding reads as zeros; never on the server
			continue
		}
		u := FileURL(c.info, m.url, s.File)
		lat, xfer, err := c.getRange(ctx, u, s.FileOffset, c.info.Files[s.File].Length, dst)
		if err != nil {
			if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				var he *httpError
				ra := time.Duration(0)
				if errors.As(err, &he) {
					ra = he.retryAfter
				}
				c.mu.Lock()
				c.failLocked(m, ra)
				c.mu.Unlock()
			}
			return fmt.Errorf("%s: %w", u, err)
		}
		if requested == 0 {
			latency = lat
		}
		transfer += xfer
		requested++
	}
	if pos != int64(len(buf)) {
		return fmt.Errorf("webseed: piece %d maps to %d of %d bytes", piece, pos, len(buf))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &m.st
	st.Bytes += int64(len(buf))
	st.Failures = 0
	st.BackoffUntil = time.Time{}
	if requested > 0 {
		secs := max(transfer.Seconds(), 1e-4)
		tp := float64(len(buf)) / secs
		if st.Fetches == 0 {
			st.Throughput, st.Latency = tp, latency
		} else {
			st.Throughput = ewmaAlpha*tp + (1-ewmaAlpha)*st.Throughput
			st.Latency = time.Duration(ewmaAlpha*float64(latency) + (1-ewmaAlpha)*float64(st.Latency))
		}
	}
	st.Fetches++
	return nil
}

// getRange reads exactly len(dst) bytes at offset off of the file at u
// (whose length is fileLen) into dst. It returns the time to the response
// headers and the time spent reading the body.
func (c *Client) getRange(ctx context.Context, u string, off, fileLen int64, dst []byte) (latency, transfer time.Duration, err error) {
	n := int64(len(dst))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: request: %v", ErrBadResponse, err)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	start := c.cfg.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	hdr := c.cfg.Now()
	latency = hdr.Sub(start)
	body := io.Reader(resp.Body)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		first, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != off {
			return 0, 0, fmt.Errorf("%w: Content-Range %q for offset %d", ErrBadResponse, resp.Header.Get("Content-Range"), off)
		}
		if total >= 0 && total != fileLen {
			return 0, 0, fmt.Errorf("%w: file is %d bytes on the server, %d in the torrent", ErrBadResponse, total, fileLen)
		}
	case http.StatusOK:
		// The server ignored Range and sends the whole file.
		if resp.ContentLength >= 0 && resp.ContentLength != fileLen {
			return 0, 0, fmt.Errorf("%w: file is %d bytes on the server, %d in the torrent", ErrBadResponse, resp.ContentLength, fileLen)
		}
		if off > c.cfg.MaxDiscard {
			return 0, 0, fmt.Errorf("%w: server ignores Range and offset %d exceeds the %d bytes we skip", ErrBadResponse, off, c.cfg.MaxDiscard)
		}
		if _, err := io.CopyN(io.Discard, body, off); err != nil {
			return 0, 0, fmt.Errorf("%w: skipping to offset %d: %v", ErrBadResponse, off, err)
		}
	default:
		he := &httpError{status: resp.StatusCode}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			he.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), hdr)
		}
		return 0, 0, he
	}
	if _, err := io.ReadFull(body, dst); err != nil {
		return 0, 0, fmt.Errorf("%w: body: %v", ErrBadResponse, err)
	}
	return latency, c.cfg.Now().Sub(hdr), nil
}

// parseContentRange parses "bytes FIRST-LAST/TOTAL" (TOTAL may be "*",
// reported as -1).
func parseContentRange(s string) (first, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		t, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || t <= last {
			return 0, 0, false
		}
		total = t
	}
	return first, total, true
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// 0 if absent or unparsable.
func parseRetryAfter(s string, now time.Time) time.Duration {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 1<<30)) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
