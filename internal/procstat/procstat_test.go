package procstat

import (
	"os"
	"runtime"
	"testing"
)

func TestReadSelf(t *testing.T) {
	ballast := make([]byte, 32<<20)
	for i := range ballast {
		ballast[i] = 1 // touch every page so it is resident
	}
	m, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS < 32<<10 {
		t.Errorf("RSS %d KiB with 32 MiB touched", m.RSS)
	}
	if m.HWM < m.RSS {
		t.Errorf("peak %d KiB below current %d KiB", m.HWM, m.RSS)
	}
	if m.Anon <= 0 || m.Anon > m.RSS {
		t.Errorf("RssAnon %d KiB, RSS %d KiB", m.Anon, m.RSS)
	}
	runtime.KeepAlive(ballast)
}

func TestReadGone(t *testing.T) {
	if _, err := Read(-1); err == nil {
		t.Error("no error for a process that cannot exist")
	}
}
