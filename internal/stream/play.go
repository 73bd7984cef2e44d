package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PlayConfig describes the simulated player of Play.
type PlayConfig struct {
	Bitrate  float64       // bits per second the media plays at (required)
	Prebuf   time.Duration // data buffered before playback starts and after a stall (2 s)
	MaxAhead time.Duration // the player stops reading this far ahead of playback (30 s)
	Tick     time.Duration // playback clock step (20 ms)
	// Start is when the measured run began: FirstByte and Startup count
	// from it (default: when Play is called). Set it to the process start
	// to measure a cold start.
	Start time.Time
}

// PlayResult is what a playback run measured.
type PlayResult struct {
	FirstByte  time.Duration // from the start until the first byte was read
	Startup    time.Duration // from the start until playback began
	Stalls     int           // times playback ran dry before the end
	StallTime  time.Duration // total time spent stalled
	Bytes      int64         // bytes read
	PlayTime   time.Duration // wall time from the start to the end of playback
	Incomplete bool          // ctx ended or the reader failed before the end
}

// Play reads r (size bytes) the way a player at cfg.Bitrate would: it
// buffers cfg.Prebuf of media before starting, consumes bitrate/8 bytes a
// second while playing, reads ahead at most cfg.MaxAhead, and counts a stall
// whenever the buffer runs dry before the end (playback resumes once
// cfg.Prebuf is buffered again). It returns when playback reaches size, ctx
// ends, or reading fails (the error is returned with the partial result).
func Play(ctx context.Context, r io.Reader, size int64, cfg PlayConfig) (PlayResult, error) {
	if cfg.Bitrate <= 0 {
		return PlayResult{}, errors.New("stream: play: bitrate must be positive")
	}
	if cfg.Prebuf <= 0 {
		cfg.Prebuf = 2 * time.Second
	}
	if cfg.MaxAhead <= 0 {
		cfg.MaxAhead = 30 * time.Second
	}
	cfg.MaxAhead = max(cfg.MaxAhead, 2*cfg.Prebuf)
	if cfg.Tick <= 0 {
		cfg.Tick = 20 * time.Millisecond
	}
	bps := cfg.Bitrate / 8
	prebuf := min(int64(bps*cfg.Prebuf.Seconds()), size)
	ahead := int64(bps * cfg.MaxAhead.Seconds())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		read    int64 // guarded by mu
		played  int64 // guarded by mu: bytes played, read by the reader goroutine
		readErr error // guarded by mu
		room    = make(chan struct{}, 1)
		first   time.Time // guarded by mu: when the first byte arrived
	)
	go func() { // the player's network reader
		buf := make([]byte, 64<<10)
		for {
			mu.Lock()
			full := read-played >= ahead
			mu.Unlock()
			if full {
				select {
				case <-room:
					continue
				case <-ctx.Done():
					return
				}
			}
			n, err := r.Read(buf)
			mu.Lock()
			if n > 0 && first.IsZero() {
				first = time.Now()
			}
			read += int64(n)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				readErr = err
				if read < size && err == nil {
					readErr = io.ErrUnexpectedEOF
				}
				mu.Unlock()
				return
			}
			mu.Unlock()
		}
	}()

	start := cfg.Start
	if start.IsZero() {
		start = time.Now()
	}
	var res PlayResult
	firstByte := func() {
		mu.Lock()
		if !first.IsZero() {
			res.FirstByte = first.Sub(start)
		}
		mu.Unlock()
	}
	playing, started := false, false
	var stallStart, last time.Time
	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			mu.Lock()
			res.Bytes = read
			mu.Unlock()
			res.Incomplete = true
			res.PlayTime = time.Since(start)
			firstByte()
			return res, ctx.Err()
		case now := <-tick.C:
			mu.Lock()
			if playing {
				played = min(played+int64(bps*now.Sub(last).Seconds()), read)
				select {
				case room <- struct{}{}:
				default:
				}
			}
			last = now
			buffered, rd, p, rerr, fb := read-played, read, played, readErr, first
			mu.Unlock()
			if p >= size {
				res.Bytes, res.PlayTime = rd, now.Sub(start)
				firstByte()
				return res, nil
			}
			if rerr != nil && buffered == 0 {
				res.Bytes, res.PlayTime, res.Incomplete = rd, now.Sub(start), true
				firstByte()
				return res, fmt.Errorf("stream: play: %w", rerr)
			}
			switch {
			case playing && buffered <= 0 && rd < size:
				playing = false
				res.Stalls++
				stallStart = now
			case !playing && (buffered >= prebuf || rd >= size || rerr != nil):
				playing = true
				if !started {
					started = true
					res.Startup = now.Sub(start)
					if !fb.IsZero() { // the tick may predate the read it saw
						res.Startup = max(res.Startup, fb.Sub(start))
					}
				} else {
					res.StallTime += now.Sub(stallStart)
				}
			}
		}
	}
}

// ParseBitrate reads a bitrate such as "8Mbit", "8M", "500kbit/s",
// "1.5Mbps" or "64000" (bits per second; k, M, G are powers of 1000).
func ParseBitrate(s string) (float64, error) {
	orig := s
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, "/s")
	lower := strings.ToLower(s)
	for _, suf := range []string{"bit", "bps", "b"} {
		if strings.HasSuffix(lower, suf) {
			s, lower = s[:len(s)-len(suf)], lower[:len(lower)-len(suf)]
			break
		}
	}
	mult := 1.0
	if n := len(lower); n > 0 {
		switch lower[n-1] {
		case 'k':
			mult = 1e3
		case 'm':
			mult = 1e6
		case 'g':
			mult = 1e9
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v <= 0 || v*mult > 1e12 {
		return 0, fmt.Errorf("bad bitrate %q (want e.g. 8Mbit, 500kbit, 64000)", orig)
	}
	return v * mult, nil
}
