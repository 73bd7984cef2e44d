package session

import (
	"testing"
	"time"
)

func TestSeedPacerEvensOutASteadyUplink(t *testing.T) {
	var p seedPacer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func(total float64, busy int) float64 {
		now = now.Add(time.Second)
		return p.step(now, total, busy)
	}
	// A ramp is not a steady uplink: no pacing while the total grows.
	for _, total := range []float64{1e6, 2e6, 4e6, 6e6, 7.5e6} {
		if share := tick(total, 8); share != 0 {
			t.Fatalf("paced at %.0f B/s while the total still grew to %.0f", share, total)
		}
	}
	// Steady for seedPaceWindow seconds: the equal share of the peak.
	var share float64
	for range seedPaceWindow {
		share = tick(8e6, 8)
	}
	if want := 8e6 / 8; share != want {
		t.Fatalf("share %.0f, want %.0f", share, want)
	}
	// A second peer's worth of busy connections: the share follows.
	if got, want := tick(8e6, 4), 8e6/4; got != want {
		t.Fatalf("with 4 busy: share %.0f, want %.0f", got, want)
	}
	// One busy connection needs no evening out.
	if got := tick(8e6, 1); got != 0 {
		t.Fatalf("one busy peer paced at %.0f", got)
	}
	// The totals stayed steady meanwhile, so pacing resumes at once.
	if got := tick(8e6, 8); got == 0 {
		t.Fatal("no pacing after a steady window")
	}
	// A dip of a second or two (a choke round moved the slots) does not
	// stop pacing...
	for range seedPaceLossSeconds - 1 {
		if got := tick(5e6, 8); got == 0 {
			t.Fatal("pacing stopped at a short dip")
		}
	}
	if got := tick(8e6, 8); got == 0 {
		t.Fatal("pacing stopped after a short dip")
	}
	// ...but a total that stays low does: the peers did not share our
	// uplink. Pacing stops and stays off for the backoff, however steady.
	for range seedPaceLossSeconds - 1 {
		tick(5e6, 8)
	}
	if got := tick(5e6, 8); got != 0 {
		t.Fatalf("still paced (%.0f) after the total stayed low", got)
	}
	off := now
	for now.Sub(off) < seedPaceBackoff-time.Second {
		if got := tick(5e6, 8); got != 0 {
			t.Fatalf("paced %v into the backoff", now.Sub(off))
		}
	}
	for range seedPaceWindow + 1 {
		share = tick(5e6, 8)
	}
	if want := 5e6 / 8; share != want {
		t.Fatalf("after the backoff: share %.0f, want %.0f", share, want)
	}
	// It fails again: the next backoff is twice as long.
	for range seedPaceLossSeconds {
		tick(2e6, 8)
	}
	off = now
	for now.Sub(off) < 2*seedPaceBackoff-time.Second {
		if got := tick(2e6, 8); got != 0 {
			t.Fatalf("paced %v into the second, doubled backoff", now.Sub(off))
		}
	}
	for range seedPaceWindow + 1 {
		share = tick(2e6, 8)
	}
	if share == 0 {
		t.Fatal("no pacing after the doubled backoff")
	}
}
