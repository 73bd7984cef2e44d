package stream

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// gapReader serves data, blocking once for gap when it reaches at.
type gapReader struct {
	r      io.Reader
	pos    int64
	at     int64
	gap    time.Duration
	waited bool
}

func (g *gapReader) Read(p []byte) (int, error) {
	if !g.waited && g.pos >= g.at {
		g.waited = true
		time.Sleep(g.gap)
	}
	if !g.waited && g.pos+int64(len(p)) > g.at {
		p = p[:g.at-g.pos]
	}
	n, err := g.r.Read(p)
	g.pos += int64(n)
	return n, err
}

func TestPlay(t *testing.T) {
	data := make([]byte, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := PlayConfig{Bitrate: 80e6, Prebuf: 10 * time.Millisecond, Tick: 5 * time.Millisecond}

	res, err := Play(ctx, bytes.NewReader(data), int64(len(data)), cfg)
	if err != nil || res.Stalls != 0 || res.Incomplete || res.Bytes != int64(len(data)) {
		t.Fatalf("instant source: %+v, %v; want no stall and every byte", res, err)
	}

	g := &gapReader{r: bytes.NewReader(data), at: 500 << 10, gap: 400 * time.Millisecond}
	res, err = Play(ctx, g, int64(len(data)), cfg)
	if err != nil || res.Stalls < 1 || res.StallTime <= 0 || res.Bytes != int64(len(data)) {
		t.Fatalf("source pausing 400 ms mid-file at 10 MB/s: %+v, %v; want a stall", res, err)
	}

	res, err = Play(ctx, bytes.NewReader(data[:1000]), int64(len(data)), cfg)
	if err == nil || !res.Incomplete {
		t.Fatalf("short source: %+v, %v; want an error", res, err)
	}
}

func TestParseBitrate(t *testing.T) {
	good := map[string]float64{"8Mbit": 8e6, "8M": 8e6, "500kbit/s": 5e5, "1.5Mbps": 1.5e6, "64000": 64000, "2gbit": 2e9}
	for in, want := range good {
		if got, err := ParseBitrate(in); err != nil || got != want {
			t.Errorf("ParseBitrate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1M", "0", "Mbit", "1e20"} {
		if _, err := ParseBitrate(in); err == nil {
			t.Errorf("ParseBitrate(%q) accepted", in)
		}
	}
}

// slowStart delays its first Read.
type slowStart struct {
	r     io.Reader
	delay time.Duration
	done  bool
}

func (s *slowStart) Read(p []byte) (int, error) {
	if !s.done {
		s.done = true
		time.Sleep(s.delay)
	}
	return s.r.Read(p)
}

func TestPlayFirstByteFromStart(t *testing.T) {
	data := make([]byte, 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Start lies 300 ms in the past and the first byte takes 100 ms more:
	// FirstByte and Startup count from Start, so both exceed 400 ms.
	cfg := PlayConfig{Bitrate: 80e6, Prebuf: 10 * time.Millisecond, Tick: 5 * time.Millisecond,
		Start: time.Now().Add(-300 * time.Millisecond)}
	res, err := Play(ctx, &slowStart{r: bytes.NewReader(data), delay: 100 * time.Millisecond}, int64(len(data)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstByte < 400*time.Millisecond || res.Startup < res.FirstByte {
		t.Fatalf("FirstByte %v, Startup %v; want FirstByte >= 400ms and Startup >= FirstByte", res.FirstByte, res.Startup)
	}
	res, err = Play(ctx, bytes.NewReader(data), int64(len(data)), PlayConfig{Bitrate: 80e6, Tick: 5 * time.Millisecond})
	if err != nil || res.FirstByte <= 0 || res.FirstByte > res.Startup {
		t.Fatalf("default start: %+v, %v; want 0 < FirstByte <= Startup", res, err)
	}
}
