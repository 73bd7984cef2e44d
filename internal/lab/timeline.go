package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// parseQdiscSent maps device -> bytes sent from `tc -s qdisc show` output
// (only root qdiscs; "qdisc tbf 1: dev vp1 root ... \n Sent 123 bytes ...").
func parseQdiscSent(out string) map[string]int64 {
	m := map[string]int64{}
	dev := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "qdisc" {
			dev = ""
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "dev" {
					dev = f[i+1]
				}
			}
			if !strings.Contains(line, " root ") {
				dev = ""
			}
			continue
		}
		if dev != "" && len(f) >= 3 && f[0] == "Sent" {
			if v, ok := parseSentLine(f); ok {
				m[dev] = v.Bytes
			}
			dev = ""
		}
	}
	return m
}

// tick is one timeline sample: seconds since go, the server's upload bytes
// and the bytes delivered to each peer (its download tbf), all L2.
type tick struct {
	at       float64
	serverUp int64
	down     []int64
	up       []int64 // each peer's upload: its bridge port's received bytes
}

// parseLinkRx maps device -> received bytes from `ip -s -o link show`
// output ("3: vp1@if2: <...> ...\    RX: bytes packets ...\    123 ...").
func parseLinkRx(out string) map[string]int64 {
	m := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		dev, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "RX:" && f[i+1] == "bytes" {
				// The header names the columns; the numbers follow the
				// first backslash separator after it.
				for j := i + 1; j+1 < len(f); j++ {
					if f[j] == "\\" {
						if v, err := strconv.ParseInt(f[j+1], 10, 64); err == nil {
							m[dev] = v
						}
						break
					}
				}
				break
			}
		}
	}
	return m
}

// timeline samples the counters every interval until ctx ends. It needs
// shaped downloads (the bridge ports' tbfs count what each peer received).
func (r *run) timeline(ctx context.Context, t0 time.Time, interval time.Duration) <-chan []tick {
	out := make(chan []tick, 1)
	go func() {
		var ts []tick
		t := time.NewTicker(interval)
		defer t.Stop()
		sample := func() {
			tctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			b, err := exec.CommandContext(tctx, "tc", "-n", r.net.Bridge, "-s", "qdisc", "show").Output()
			if err != nil {
				return
			}
			at := time.Since(t0).Seconds()
			m := parseQdiscSent(string(b))
			s, _ := QdiscSent(tctx, r.net.Server, "eth0")
			var rx map[string]int64
			if lb, err := exec.CommandContext(tctx, "ip", "-n", r.net.Bridge, "-s", "-o", "link", "show").Output(); err == nil {
				rx = parseLinkRx(string(lb))
			}
			k := tick{at: at, serverUp: s.Bytes, down: make([]int64, r.cfg.N), up: make([]int64, r.cfg.N)}
			for i := range r.cfg.N {
				k.down[i] = m["vp"+strconv.Itoa(i+1)]
				k.up[i] = rx["vp"+strconv.Itoa(i+1)]
			}
			ts = append(ts, k)
		}
		sample()
		for {
			select {
			case <-ctx.Done():
				sample()
				out <- ts
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return out
}

// deliveredAt returns, for each fraction, the first time (linearly
// interpolated) at which the peers together had received that fraction of
// total bytes (counted from the first sample), or -1 if never.
func deliveredAt(ts []tick, total float64, fracs []float64) []float64 {
	res := make([]float64, len(fracs))
	for i := range res {
		res[i] = -1
	}
	if len(ts) == 0 || total <= 0 {
		return res
	}
	sum := func(k tick) float64 {
		s := 0.0
		for _, d := range k.down {
			s += float64(d)
		}
		return s
	}
	base := sum(ts[0])
	prevT, prevV := ts[0].at, 0.0
	for _, k := range ts[1:] {
		v := sum(k) - base
		for i, f := range fracs {
			want := f * total
			if res[i] < 0 && v >= want {
				if v > prevV {
					res[i] = prevT + (k.at-prevT)*(want-prevV)/(v-prevV)
				} else {
					res[i] = k.at
				}
			}
		}
		prevT, prevV = k.at, v
	}
	return res
}

// writeTimeline writes the samples as CSV (t, server_up, p1..pN down,
// p1..pN up) for plots.
func writeTimeline(path string, ts []tick, n int) error {
	var b strings.Builder
	b.WriteString("t,server_up_bytes")
	for i := range n {
		fmt.Fprintf(&b, ",p%d_down_bytes", i+1)
	}
	for i := range n {
		fmt.Fprintf(&b, ",p%d_up_bytes", i+1)
	}
	b.WriteByte('\n')
	for _, k := range ts {
		fmt.Fprintf(&b, "%.3f,%d", k.at, k.serverUp)
		for _, d := range k.down {
			fmt.Fprintf(&b, ",%d", d)
		}
		for i := range n {
			var u int64
			if i < len(k.up) {
				u = k.up[i]
			}
			fmt.Fprintf(&b, ",%d", u)
		}
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
