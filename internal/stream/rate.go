package stream

import "time"

// Rate measurement constants.
const (
	rateInterval = time.Second // shortest interval one sample covers
	rateAlpha    = 0.4         // weight of the newest sample
	minRate      = 16 << 10    // bytes/s floor, so windows and deadlines stay finite
)

// rateMeter estimates how fast a reader consumes bytes: an EWMA of samples
// over intervals of at least rateInterval, not counting the time the reader
// was blocked on missing pieces (that is the swarm's slowness, not the
// player's appetite). Owned by the Reader's goroutine.
type rateMeter struct {
	val      float64
	measured bool
	start    time.Time // interval start; zero = no interval open
	bytes    int64
	paused   time.Duration
}

func (m *rateMeter) init(initial float64) { m.val = max(initial, minRate) }

func (m *rateMeter) value() float64 { return m.val }

// add records n bytes read at now.
func (m *rateMeter) add(now time.Time, n int) {
	if m.start.IsZero() {
		m.start = now
		m.bytes, m.paused = 0, 0
	}
	m.bytes += int64(n)
	active := now.Sub(m.start) - m.paused
	if active < rateInterval {
		return
	}
	sample := max(float64(m.bytes)/active.Seconds(), minRate)
	if m.measured {
		m.val = rateAlpha*sample + (1-rateAlpha)*m.val
	} else {
		m.val, m.measured = sample, true
	}
	m.start, m.bytes, m.paused = now, 0, 0
}

// pause excludes d (time blocked waiting) from the current interval.
func (m *rateMeter) pause(d time.Duration) {
	if !m.start.IsZero() {
		m.paused += d
	}
}

// reset drops the open interval (after a seek the reader restarts), keeping
// the estimate.
func (m *rateMeter) reset() { m.start = time.Time{} }
