package lab

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cpuTimes is the first ("cpu") line of /proc/stat: busy and total jiffies,
// and the busy ones split by where they went: user code (user, nice), the
// kernel on behalf of processes (system), and interrupt work (irq, softirq:
// most of the lab's veth, bridge and tbf cost lands there).
type cpuTimes struct{ busy, total, user, system, irq uint64 }

func readCPU() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseCPU(string(b))
}

// parseCPU reads the aggregate cpu line; idle and iowait count as not busy.
func parseCPU(stat string) (cpuTimes, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTimes
	for i, s := range f[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %q: %w", s, err)
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
		switch i {
		case 0, 1:
			t.user += v
		case 2:
			t.system += v
		case 5, 6:
			t.irq += v
		}
	}
	return t, nil
}

// cpuUsage is what sampleCPU measured: whole-machine busy percent over the
// whole interval and per sample, and the whole interval's split.
type cpuUsage struct {
	overall float64
	split   CPUSplit
	samples []float64
}

// CPUSplit is where the whole machine's CPU time went, in percent of it.
type CPUSplit struct {
	User   float64 `json:"user"`   // user and nice
	System float64 `json:"system"` // kernel work in process context (system calls: TCP send and receive, page cache)
	IRQ    float64 `json:"irq"`    // irq and softirq: packet processing (veth, bridge, tbf, TCP input)
}

// split is the share of each kind of busy time between two readings.
func split(a, b cpuTimes) CPUSplit {
	if b.total <= a.total {
		return CPUSplit{}
	}
	pct := func(x, y uint64) float64 { return 100 * float64(y-x) / float64(b.total-a.total) }
	return CPUSplit{User: pct(a.user, b.user), System: pct(a.system, b.system), IRQ: pct(a.irq, b.irq)}
}

// busyPct is the busy share between two readings, in percent.
func busyPct(a, b cpuTimes) (float64, bool) {
	if b.total <= a.total {
		return 0, false
	}
	return 100 * float64(b.busy-a.busy) / float64(b.total-a.total), true
}

// sampleCPU records whole-machine busy percentages every interval until
// ctx ends, then sends them (and the busy share over the whole time).
func sampleCPU(ctx context.Context, interval time.Duration) <-chan cpuUsage {
	out := make(chan cpuUsage, 1)
	go func() {
		var u cpuUsage
		first, err := readCPU()
		prev := first
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				if last, e := readCPU(); err == nil && e == nil {
					u.overall, _ = busyPct(first, last)
					u.split = split(first, last)
				}
				out <- u
				return
			case <-t.C:
			}
			if err != nil {
				continue
			}
			if cur, e := readCPU(); e == nil {
				if v, ok := busyPct(prev, cur); ok {
					u.samples = append(u.samples, v)
				}
				prev = cur
			}
		}
	}()
	return out
}

// meanP90 returns the mean and the 90th percentile of xs (0, 0 if empty).
func meanP90(xs []float64) (mean, p90 float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	for _, x := range s {
		mean += x
	}
	mean /= float64(len(s))
	i := int(0.9*float64(len(s)-1) + 0.5)
	return mean, s[i]
}
