package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether f is an interactive terminal (progress bars
// and \r line rewriting are used only then).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// humanBytes formats n with binary units: "512 B", "1.5 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	i := -1
	for _, suffix := range []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"} {
		v /= unit
		i++
		if v < unit && v > -unit {
			return fmt.Sprintf("%.1f %s", v, suffix)
		}
	}
	return fmt.Sprintf("%.1f EiB", v)
}

// humanRate formats a transfer rate: "2.0 MiB/s".
func humanRate(bytesPerSec float64) string {
	if bytesPerSec < 0 {
		bytesPerSec = 0
	}
	return humanBytes(int64(bytesPerSec)) + "/s"
}

// humanDuration formats d compactly for ETAs: "45s", "3m07s", "2h05m";
// negative or unknown durations print "--".
func humanDuration(d time.Duration) string {
	if d < 0 {
		return "--"
	}
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 100*3600:
		return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, (s%86400)/3600)
}

// bar draws a progress bar of width cells: "[#####.....]".
func bar(done, total int64, width int) string {
	if width < 1 {
		width = 1
	}
	filled := 0
	if total > 0 {
		filled = int(min(max(done, 0), total) * int64(width) / total)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

// statusLine writes a status line that is rewritten in place with \r on a
// terminal; elsewhere Update does nothing and Done prints the final line
// only. Not safe for concurrent use.
type statusLine struct {
	w       io.Writer
	tty     bool
	lastLen int
}

// newStatusLine returns a statusLine writing to f (usually os.Stderr).
func newStatusLine(f *os.File) *statusLine {
	return &statusLine{w: f, tty: isTerminal(f)}
}

// Update replaces the current line with s (terminal only).
func (p *statusLine) Update(s string) {
	if !p.tty {
		return
	}
	pad := ""
	if n := p.lastLen - len(s); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprint(p.w, "\r"+s+pad)
	p.lastLen = len(s)
}

// Done ends the line: on a terminal it replaces it with s (or clears it if
// s is empty); elsewhere it prints s if not empty.
func (p *statusLine) Done(s string) {
	if p.tty {
		p.Update(s)
		if s != "" {
			fmt.Fprintln(p.w)
		} else {
			fmt.Fprint(p.w, "\r")
		}
		p.lastLen = 0
		return
	}
	if s != "" {
		fmt.Fprintln(p.w, s)
	}
}
