package lab

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const mib64 = 64 << 20

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// The reference configuration's bounds, as listed in the lab's results.md.
func TestComputeBoundsReference(t *testing.T) {
	for _, tc := range []struct {
		n        int
		dp2p, cs float64
	}{
		{4, 16.78, 33.55}, {8, 22.37, 67.11}, {16, 26.84, 134.22}, {24, 28.76, 201.33},
	} {
		c := Config{N: tc.n}
		if err := c.Normalize(); err != nil {
			t.Fatal(err)
		}
		b, err := c.Bounds()
		if err != nil {
			t.Fatal(err)
		}
		if !near(b.DP2P, tc.dp2p, 0.01) || !near(b.DCS, tc.cs, 0.01) {
			t.Errorf("N=%d: got d_P2P %.3f d_cs %.3f, want %.2f %.2f", tc.n, b.DP2P, b.DCS, tc.dp2p, tc.cs)
		}
	}
}

func TestComputeBoundsTerms(t *testing.T) {
	f := int64(1e6 / 8 * 100) // 100 Mbit
	for _, tc := range []struct {
		name      string
		us        float64
		up, down  []float64
		dp2p, dcs float64
	}{
		// N=1: server term F/u_s dominates both.
		{"one peer", 10, []float64{1}, []float64{100}, 10, 10},
		// slow download dominates: F/d_min = 100/2 = 50.
		{"slow download", 100, []float64{10, 10}, []float64{1000, 2}, 50, 50},
		// aggregate term: N F/(u_s + Σu) = 4*100/(10+30) = 10, F/u_s = 10, d_cs = 40.
		{"aggregate", 10, []float64{5, 10, 5, 10}, nil, 10, 40},
		// unshaped (0) downloads drop the download term.
		{"unshaped", 50, []float64{25, 25}, []float64{0, 0}, 2, 4},
		// heterogeneous: 3*100/(20+1+2+3) = 11.538...
		{"hetero", 20, []float64{1, 2, 3}, nil, 300.0 / 26, 15},
	} {
		b, err := ComputeBounds(f, tc.us, tc.up, tc.down)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !near(b.DP2P, tc.dp2p, 1e-9) || !near(b.DCS, tc.dcs, 1e-9) {
			t.Errorf("%s: got %+v, want d_P2P %v d_cs %v", tc.name, b, tc.dp2p, tc.dcs)
		}
		sum := tc.us
		for _, u := range tc.up {
			sum += u
		}
		if want := 100 * float64(len(tc.up)) / sum; !near(b.Upload, want, 1e-9) || b.Upload > b.DP2P+1e-9 {
			t.Errorf("%s: upload term %v, want %v (at most d_P2P %v)", tc.name, b.Upload, want, b.DP2P)
		}
	}
}

func TestComputeBoundsErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		f        int64
		us       float64
		up, down []float64
	}{
		{"no file", 0, 1, []float64{1}, nil},
		{"no peers", 1, 1, nil, nil},
		{"no server", 1, 0, []float64{1}, nil},
		{"nan server", 1, math.NaN(), []float64{1}, nil},
		{"negative up", 1, 1, []float64{-1}, nil},
		{"down count", 1, 1, []float64{1, 1}, []float64{1}},
		{"inf down", 1, 1, []float64{1}, []float64{math.Inf(1)}},
	} {
		if _, err := ComputeBounds(tc.f, tc.us, tc.up, tc.down); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestFramingFloor(t *testing.T) {
	if got := FramingFloor(1500); !near(got, 1514.0/1448, 1e-12) {
		t.Errorf("1500: %v", got)
	}
	if got := FramingFloor(9000); !near(got, 9014.0/8948, 1e-12) {
		t.Errorf("9000: %v", got)
	}
}

func TestNormalizeDefaults(t *testing.T) {
	c := Config{N: 3, Clients: ClientsHTTP}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.FileBytes != mib64 || c.PieceBytes != 256<<10 || c.UpMbit != 16 || c.ServerMbit != 64 ||
		c.DownMbit != 160 || c.MTU != 1500 || c.Seeder != ClientsShoal || c.LeaveAt != 0.5 || c.Python != "/usr/bin/python3" {
		t.Errorf("defaults: %+v", c)
	}
	c = Config{N: 3, Clients: ClientsLibtorrent, UpMbit: 8, NoDown: true, PeerUpMbit: []float64{1, 2}}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.Seeder != ClientsLibtorrent || c.ServerMbit != 32 || c.PeerDown(0) != 0 {
		t.Errorf("libtorrent: %+v", c)
	}
	if got := []float64{c.PeerUp(0), c.PeerUp(1), c.PeerUp(2)}; !reflect.DeepEqual(got, []float64{1, 2, 1}) {
		t.Errorf("PeerUp cycles: %v", got)
	}
}

func TestNormalizeErrors(t *testing.T) {
	for _, c := range []Config{
		{N: 0}, {N: MaxPeers + 1}, {N: 2, Clients: "aria2"}, {N: 2, Seeder: "http"},
		{N: 2, PieceBytes: 1000}, {N: 2, PieceBytes: 8 << 10}, {N: 2, FileBytes: -1},
		{N: 2, UpMbit: -3}, {N: 2, PeerUpMbit: []float64{0}}, {N: 2, MTU: 100}, {N: 2, MTU: 65000},
		{N: 2, Leave: 2}, {N: 2, Leave: -1}, {N: 2, LeaveAt: -1}, {N: 2, DownMbit: math.NaN()},
	} {
		cc := c
		if err := cc.Normalize(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestParseLists(t *testing.T) {
	ints, err := ParseInts(" 2,4, 8,,16 ")
	if err != nil || !reflect.DeepEqual(ints, []int{2, 4, 8, 16}) {
		t.Errorf("ParseInts: %v %v", ints, err)
	}
	for _, bad := range []string{"", ",", "0", "2,x", "-1", "1.5", "201"} {
		if _, err := ParseInts(bad); err == nil {
			t.Errorf("ParseInts(%q): no error", bad)
		}
	}
	rates, err := ParseRates("8,16.5,32")
	if err != nil || !reflect.DeepEqual(rates, []float64{8, 16.5, 32}) {
		t.Errorf("ParseRates: %v %v", rates, err)
	}
	for _, bad := range []string{"", "0", "NaN", "x", "1e9", "-4"} {
		if _, err := ParseRates(bad); err == nil {
			t.Errorf("ParseRates(%q): no error", bad)
		}
	}
	cl, err := ParseClients("libtorrent,shoal,libtorrent, http")
	if err != nil || !reflect.DeepEqual(cl, []string{"libtorrent", "shoal", "http"}) {
		t.Errorf("ParseClients: %v %v", cl, err)
	}
	for _, bad := range []string{"", "aria2", "shoal,,x"} {
		if _, err := ParseClients(bad); err == nil {
			t.Errorf("ParseClients(%q): no error", bad)
		}
	}
}

func sampleResults() []Result {
	return []Result{
		{Tag: "a", Clients: ClientsShoal, N: 4, FileBytes: mib64, Seconds: 20, DP2P: 16.78, DCS: 33.55, Ratio: 20 / 16.78,
			Uplinks: &Uplinks{NF: 1.09, SmallNF: 0.025, BusySeconds: 18.3, IdleBeforeFirst: 1.2, IdleAfterFirst: 0.5, DroppedShare: 0.08},
			CPU:     CPUSplit{User: 27, System: 34, IRQ: 33.5}, ProcUserSecs: 7.5, ProcSysSecs: 16.25},
		{Tag: "a", Clients: ClientsShoal, N: 4, FileBytes: mib64, Seconds: 22, DP2P: 16.78, DCS: 33.55, Ratio: 22 / 16.78},
		{Tag: "a", Clients: ClientsLibtorrent, N: 8, FileBytes: mib64, Seconds: 26, DP2P: 22.37, DCS: 67.11},
		{Tag: "a", Clients: ClientsHTTP, N: 2, FileBytes: mib64, Seconds: 17.5, DP2P: 11.18, DCS: 16.78},
	}
}

func TestCSVRoundTrip(t *testing.T) {
	rs := sampleResults()
	var buf bytes.Buffer
	if err := WriteCSV(&buf, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(rs)+1 || lines[0] != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv:\n%s", buf.String())
	}
	if !strings.HasPrefix(lines[1], "a,shoal,4,67108864,") || !strings.Contains(lines[1], ",20.0000,16.7800,33.5500,") {
		t.Errorf("row 1: %s", lines[1])
	}
	if !strings.HasSuffix(lines[1], ",1.0900,0.0250,18.3000,1.2000,0.5000,0.0800,27.0000,34.0000,33.5000,7.5000,16.2500") ||
		!strings.HasSuffix(lines[2], ",,,,,,,0.0000,0.0000,0.0000,0.0000,0.0000") {
		t.Errorf("uplink account and CPU columns:\n%s\n%s", lines[1], lines[2])
	}
	back, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(rs) {
		t.Fatalf("read %d rows", len(back))
	}
	for i := range rs {
		if back[i].Clients != rs[i].Clients || back[i].N != rs[i].N || back[i].Seconds != rs[i].Seconds ||
			back[i].DP2P != rs[i].DP2P || back[i].DCS != rs[i].DCS || back[i].FileBytes != rs[i].FileBytes {
			t.Errorf("row %d: %+v != %+v", i, back[i], rs[i])
		}
	}
	if _, err := ReadCSV(strings.NewReader("n,seconds\n1,2\n")); err == nil {
		t.Error("missing columns accepted")
	}
	if _, err := ReadCSV(strings.NewReader("clients,n,seconds,d_p2p,d_cs\nshoal,x,1,1,1\n")); err == nil {
		t.Error("bad number accepted")
	}
}

func TestResultLine(t *testing.T) {
	r := Result{N: 8, Seconds: 26.2049, DP2P: 22.3696, Ratio: 1.17145}
	if got, want := r.Line(), "n=8 seconds=26.205 d_p2p=22.370 ratio=1.1715"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
}

func TestSeriesMeans(t *testing.T) {
	got := Series(sampleResults(), ClientsShoal)
	if len(got) != 1 || got[0].X != 4 || got[0].Y != 21 {
		t.Errorf("shoal series %v", got)
	}
	p2p, cs := boundSeries(sampleResults())
	if len(p2p) != 3 || p2p[0].X != 2 || p2p[2].X != 8 || cs[1].Y != 33.55 {
		t.Errorf("bounds %v %v", p2p, cs)
	}
}

func TestPlotWritesPNGAndSVG(t *testing.T) {
	dir := t.TempDir()
	png, svg := filepath.Join(dir, "d.png"), filepath.Join(dir, "d.svg")
	if err := Plot(sampleResults(), PlotTitle, png, svg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("png: %v %q", err, b[:min(8, len(b))])
	}
	b, err = os.ReadFile(svg)
	if err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("Client-Server vs. P2P")) {
		t.Errorf("svg: %v", err)
	}
	if err := Plot(nil, PlotTitle, png); err == nil {
		t.Error("empty plot accepted")
	}
}

func TestParseCPU(t *testing.T) {
	ct, err := parseCPU("cpu  100 5 50 800 45 0 10 0 7 0\ncpu0 1 2 3 4 5\n")
	if err != nil {
		t.Fatal(err)
	}
	// user 100+5, system 50, irq 0+10, steal 0; guest (7) is inside user already.
	if ct.total != 1010 || ct.busy != 165 || ct.user != 105 || ct.system != 50 || ct.irq != 10 {
		t.Errorf("%+v", ct)
	}
	later, err := parseCPU("cpu  300 5 150 910 45 10 90 0 7 0\n")
	if err != nil {
		t.Fatal(err)
	}
	// 500 jiffies passed: 200 user, 100 system, 90 irq+softirq, 110 idle.
	if got, want := split(ct, later), (CPUSplit{User: 40, System: 20, IRQ: 18}); got != want {
		t.Errorf("split: %+v, want %+v", got, want)
	}
	if got := split(later, ct); got != (CPUSplit{}) {
		t.Errorf("split backwards: %+v", got)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4", "cpu 1 2 x 4 5"} {
		if _, err := parseCPU(bad); err == nil {
			t.Errorf("parseCPU(%q): no error", bad)
		}
	}
	mean, p90 := meanP90([]float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100})
	if mean != 55 || p90 != 90 {
		t.Errorf("meanP90: %v %v", mean, p90)
	}
	if v, ok := busyPct(cpuTimes{busy: 10, total: 100}, cpuTimes{busy: 60, total: 200}); !ok || v != 50 {
		t.Errorf("busyPct: %v %v", v, ok)
	}
}

func TestNetHelpers(t *testing.T) {
	if got := PeerAddr(1).String(); got != "198.18.1.11" {
		t.Errorf("PeerAddr(1) = %s", got)
	}
	if got := PeerAddr(MaxPeers).String(); got != "198.18.1.210" {
		t.Errorf("PeerAddr(max) = %s", got)
	}
	if got := mac(ServerAddr); got != "02:c6:c6:12:01:01" {
		t.Errorf("mac = %s", got)
	}
	// 16 Mbit/s: 4 ms of tokens = 8000 B; limit = 50 ms (100000 B) + burst.
	if got := tbf(16, 1500); got != "tbf rate 16000000bit burst 8000 limit 108000" {
		t.Errorf("tbf = %q", got)
	}
	// slow link: the 2-frame floor wins at MTU 9000.
	if got := tbf(1, 9000); got != "tbf rate 1000000bit burst 18028 limit 24278" {
		t.Errorf("tbf slow = %q", got)
	}
	for name, want := range map[string]bool{"shl123-br": true, "shl123-p17": true, "shl1-s": true,
		"shl-br": false, "shlx-s": false, "shl12-q": false, "other": false, "shl12-p": false} {
		if nsName.MatchString(name) != want {
			t.Errorf("nsName(%q) != %v", name, want)
		}
	}
	if pid, ok := dataDirPID("/tmp/shoal-lab-42"); !ok || pid != 42 {
		t.Errorf("dataDirPID: %v %v", pid, ok)
	}
	if _, ok := dataDirPID("/tmp/shoal-lab-logs"); ok {
		t.Error("logs folder taken for a data mount")
	}
	u, err := scrapeURL("http://198.18.1.1:6969/announce", []byte{0, 1, 0xff, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	if err != nil || u != "http://198.18.1.1:6969/scrape?info_hash=%00%01%FFa%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00" {
		t.Errorf("scrapeURL: %q %v", u, err)
	}
	if _, err := scrapeURL("http://x/ann", make([]byte, 20)); err == nil {
		t.Error("scrapeURL without /announce accepted")
	}
}

func FuzzReadCSV(f *testing.F) {
	var buf bytes.Buffer
	WriteCSV(&buf, sampleResults())
	f.Add(buf.String())
	f.Add("clients,n,seconds,d_p2p,d_cs\n")
	f.Fuzz(func(t *testing.T, s string) {
		ReadCSV(strings.NewReader(s)) // must not panic
	})
}

func FuzzParseLists(f *testing.F) {
	f.Add("2,4,8")
	f.Add("1.5,,x")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseInts(s); err == nil && len(v) == 0 {
			t.Error("empty list without error")
		}
		if v, err := ParseRates(s); err == nil {
			for _, r := range v {
				if !validRate(r) {
					t.Errorf("invalid rate %v accepted", r)
				}
			}
		}
		ParseClients(s)
	})
}

func TestParseQdiscSent(t *testing.T) {
	out := `qdisc noqueue 0: dev br0 root refcnt 2
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0)
qdisc tbf 1: dev vp1 root refcnt 3 rate 500Mbit burst 250000b lat 50ms
 Sent 180 bytes 2 pkt (dropped 0, overlimits 0 requeues 0)
 backlog 0b 0p requeues 0
qdisc tbf 1: dev vp2 root refcnt 3 rate 500Mbit burst 250000b lat 50ms
 Sent 4242 bytes 1 pkt (dropped 0, overlimits 0 requeues 0)
qdisc pfifo 10: dev vp3 parent 1:1 limit 1000p
 Sent 99 bytes 1 pkt
`
	got := parseQdiscSent(out)
	want := map[string]int64{"br0": 0, "vp1": 180, "vp2": 4242}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDeliveredAt(t *testing.T) {
	ts := []tick{
		{at: 0, down: []int64{100, 100}}, // baseline
		{at: 1, down: []int64{150, 150}}, // 100 delivered
		{at: 2, down: []int64{300, 300}}, // 400
		{at: 3, down: []int64{600, 600}}, // 1000
	}
	got := deliveredAt(ts, 1000, []float64{0.1, 0.5, 1, 2})
	want := []float64{1, 2 + 100.0/600, 3, -1}
	for i := range want {
		if !near(got[i], want[i], 1e-9) {
			t.Errorf("fraction %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if got := deliveredAt(nil, 1, []float64{0.5}); got[0] != -1 {
		t.Errorf("empty: %v", got)
	}
}

func TestParseLinkRx(t *testing.T) {
	out := `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\    RX:    bytes  packets errors dropped  missed   mcast           \    1083495 36408073      0       0       0       0 \    TX:    bytes  packets errors dropped carrier collsns           \    999 3      0       0       0       0 
5: vp1@if4: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc tbf master br0 state UP mode DEFAULT group default qlen 1000\    link/ether 02:c6:c6:12:00:01 brd ff:ff:ff:ff:ff:ff link-netns shl1-p1\    RX:  bytes packets errors dropped  missed   mcast           \    4242 7      0       0       0       0 \    TX:  bytes packets errors dropped carrier collsns           \    17 1      0       0       0       0 
`
	m := parseLinkRx(out)
	if m["lo"] != 1083495 || m["vp1"] != 4242 || len(m) != 2 {
		t.Errorf("parseLinkRx = %v", m)
	}
}

func TestParseSentLine(t *testing.T) {
	got, ok := parseSentLine(strings.Fields("qdisc tbf 1: root refcnt 2 rate 16Mbit\n Sent 12345 bytes 67 pkt (dropped 0, overlimits 3 requeues 0)"))
	if !ok || got != (Sent{12345, 67, 0}) {
		t.Errorf("got %v %v", got, ok)
	}
	got, ok = parseSentLine(strings.Fields(" Sent 9 bytes 2 pkt (dropped 31, overlimits 0 requeues 0)"))
	if !ok || got != (Sent{9, 2, 31}) {
		t.Errorf("with drops: got %v %v", got, ok)
	}
	if _, ok := parseSentLine(strings.Fields("Sent x bytes 1 pkt")); ok {
		t.Error("a non-number parsed")
	}
}

func TestSmallFrames(t *testing.T) {
	// 100 full frames and 50 pure ACKs at MTU 1500.
	if got := smallFrames(100*1514+50*ackFrame, 150, 1500); !near(got, 50, 1e-9) {
		t.Errorf("mixture: got %v, want 50", got)
	}
	if got := smallFrames(10*9014, 10, 9000); got != 0 {
		t.Errorf("only full frames: got %v", got)
	}
	if got := smallFrames(5*60, 5, 1500); got != 5 {
		t.Errorf("only tiny frames: got %v, want the frame count", got)
	}
}

func TestAccountUplinks(t *testing.T) {
	// Capacity 100 B/s, T = 10 s, first finish at 4 s. The uplinks carried
	// 300 B by 4 s (100 B unused: 1 s) and 900 B in all (none unused after).
	ts := []tick{
		{at: 0, serverUp: 50, up: []int64{50}},
		{at: 2, serverUp: 100, up: []int64{100}}, // 100 sent
		{at: 6, serverUp: 300, up: []int64{300}}, // 500 sent: 300 at t=4
		{at: 10, serverUp: 500, up: []int64{450}},
	}
	before := []Sent{{0, 0, 0}, {0, 0, 1}}
	after := []Sent{{600, 1, 0}, {300, 3, 2}}
	u := accountUplinks(ts, before, after, 100, 1500, 2, 450, 4, 10)
	if u == nil {
		t.Fatal("nil account")
	}
	if !near(u.NF, 1, 1e-9) || !near(u.BusySeconds, 9, 1e-9) {
		t.Errorf("NF %v busy %v, want 1 and 9", u.NF, u.BusySeconds)
	}
	if !near(u.IdleBeforeFirst, 1, 1e-9) || !near(u.IdleAfterFirst, 0, 1e-9) {
		t.Errorf("idle %v / %v, want 1 / 0", u.IdleBeforeFirst, u.IdleAfterFirst)
	}
	if !near(u.DroppedShare, 1.0/5, 1e-9) {
		t.Errorf("one frame dropped of 5 offered: DroppedShare %v", u.DroppedShare)
	}
	if u.SmallNF <= 0 {
		t.Errorf("300 B in 3 frames are small frames, got %v", u.SmallNF)
	}
	if accountUplinks(ts, before, after, 0, 1500, 2, 450, 4, 10) != nil {
		t.Error("zero capacity gave an account")
	}
}
