package relay

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(1<<20, t0) // 1 MiB/s; burst max(rate/10, 2*spliceBuf) = 104857.6
	if b.burst != float64(1<<20)/10 {
		t.Fatalf("burst %v", b.burst)
	}
	if d := b.reserve(t0, 100000); d != 0 {
		t.Fatalf("within burst: wait %v", d)
	}
	// 4857.6 tokens left: taking 1 MiB more leaves a debt of ~1043718 bytes ≈ 995 ms
	d := b.reserve(t0, 1<<20)
	debt := float64(1<<20) - 4857.6
	if want := time.Duration(debt / float64(1<<20) * float64(time.Second)); d < want-time.Millisecond || d > want+time.Millisecond {
		t.Fatalf("wait %v, want %v", d, want)
	}
	// one second later the debt is paid: ~4857 tokens again, not a full burst
	if d := b.reserve(t0.Add(time.Second), 4000); d != 0 {
		t.Fatalf("after refill: wait %v", d)
	}
	if d := b.reserve(t0.Add(time.Second), 4000); d == 0 {
		t.Fatal("over-spent bucket did not ask to wait")
	}
	// a long idle period refills to the burst only
	late := t0.Add(time.Hour)
	if d := b.reserve(late, int(b.burst)); d != 0 {
		t.Fatalf("full burst after idle: wait %v", d)
	}
	if d := b.reserve(late, 1024); d < 975*time.Microsecond || d > 977*time.Microsecond { // 1024 B at 1 MiB/s, less the 0.6 token int(burst) left
		t.Fatalf("past burst: wait %v", d)
	}
	// time going backwards adds nothing
	if d := b.reserve(t0, 0); d == 0 {
		t.Fatal("clock going backwards refilled the bucket")
	}
}

// TestBucketRate: over a long run of reservations, the waits add up to
// bytes/rate (the rate holds on average).
func TestBucketRate(t *testing.T) {
	now := time.Unix(0, 0)
	const rate = 5 << 20
	b := newBucket(rate, now)
	total := 0
	for i := 0; i < 10000; i++ {
		d := b.reserve(now, spliceBuf)
		now = now.Add(d) // the caller sleeps d
		total += spliceBuf
	}
	got := float64(total) / now.Sub(time.Unix(0, 0)).Seconds()
	if got < rate*0.99 || got > rate*1.01 {
		t.Fatalf("average rate %.0f B/s, want %d", got, rate)
	}
}

func TestNilBucket(t *testing.T) {
	var b *bucket
	if newBucket(0, time.Now()) != nil || newBucket(-1, time.Now()) != nil {
		t.Fatal("rate <= 0 should be unlimited (nil)")
	}
	if d := b.reserve(time.Now(), 1<<30); d != 0 {
		t.Fatalf("nil bucket wait %v", d)
	}
}
