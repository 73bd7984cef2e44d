package lab

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
)

// Result is what one measurement reports. Built once by Run; read-only after.
type Result struct {
	Tag        string    `json:"tag,omitempty"`
	Clients    string    `json:"clients"`
	Seeder     string    `json:"seeder,omitempty"`
	N          int       `json:"n"`
	FileBytes  int64     `json:"file_bytes"`
	PieceBytes int64     `json:"piece_bytes"`
	UpMbit     float64   `json:"u_mbit"`
	PeerUpMbit []float64 `json:"peer_up_mbit,omitempty"` // heterogeneous uploads, cycled over the peers
	ServerMbit float64   `json:"us_mbit"`
	DownMbit   float64   `json:"d_mbit"` // 0 = unshaped
	MTU        int       `json:"mtu"`
	Left       int       `json:"peers_left,omitempty"` // peers killed mid-run (excluded from T)

	Seconds float64 `json:"seconds"` // T: go signal -> last staying peer verified
	DP2P    float64 `json:"d_p2p"`
	DCS     float64 `json:"d_cs"`
	Ratio   float64 `json:"ratio"`    // T / d_P2P
	RatioCS float64 `json:"ratio_cs"` // T / d_cs
	Floor   float64 `json:"framing_floor"`

	PeerSeconds  []float64 `json:"peer_seconds"` // per peer, -1 = did not finish (left)
	FirstFinish  float64   `json:"first_finish"`
	Spread       float64   `json:"spread"`        // last - first finish
	ServerUpF    float64   `json:"server_up_f"`   // L2 bytes through the server's upload tbf in [go, T], in units of F
	ServerUtil   float64   `json:"server_util"`   // those bytes / (u_s T)
	PeerUtil     float64   `json:"peer_util"`     // mean over peers of upload bytes / (u_i T)
	CPUBusyMean  float64   `json:"cpu_busy_mean"` // whole machine, percent, sampled every 0.5 s in [go, T]
	CPUBusyP90   float64   `json:"cpu_busy_p90"`
	CPU          CPUSplit  `json:"cpu"`                    // whole machine in [go, T]: where the busy time went
	ProcCPUSecs  float64   `json:"proc_cpu_seconds"`       // user+sys of the lab's client and seeder processes
	ProcUserSecs float64   `json:"proc_user_seconds"`      // of which in their own code (user)
	ProcSysSecs  float64   `json:"proc_sys_seconds"`       // and in the kernel on their behalf (system)
	DeliveredAt  []float64 `json:"delivered_at,omitempty"` // seconds until ≈10/50/90 % of (N-left)·F reached the peers (download tbf bytes / framing floor)
	Uplinks      *Uplinks  `json:"uplinks,omitempty"`      // where T went, when the aggregate upload is the bound
	Verified     int       `json:"verified"`               // peers whose copy is byte-identical
	LogDir       string    `json:"log_dir,omitempty"`
	StartedUnixS int64     `json:"started_unix"`
}

// Line is the machine-readable last line of `shoal lab`.
func (r *Result) Line() string {
	return fmt.Sprintf("n=%d seconds=%.3f d_p2p=%.3f ratio=%.4f", r.N, r.Seconds, r.DP2P, r.Ratio)
}

// Summary is a human-readable multi-line report.
func (r *Result) Summary() string {
	s := fmt.Sprintf("%s: N=%d F=%s u=%g u_s=%g d=%s Mbit/s MTU %d\n", r.Clients, r.N, mib(r.FileBytes), r.UpMbit, r.ServerMbit, downStr(r.DownMbit), r.MTU)
	s += fmt.Sprintf("  T = %.2f s   d_P2P = %.2f s   T/d_P2P = %.3f (framing floor %.3f)   d_cs = %.2f s   T/d_cs = %.3f\n",
		r.Seconds, r.DP2P, r.Ratio, r.Floor, r.DCS, r.RatioCS)
	s += fmt.Sprintf("  peers finished %.2f .. %.2f s (spread %.2f s), %d/%d byte-identical", r.FirstFinish, r.Seconds, r.Spread, r.Verified, r.N-r.Left)
	if len(r.PeerUpMbit) > 0 {
		s += fmt.Sprintf(", peer uploads %v Mbit/s (cycled)", r.PeerUpMbit)
	}
	if r.Left > 0 {
		s += fmt.Sprintf(", %d left mid-run", r.Left)
	}
	s += fmt.Sprintf("\n  server uploaded %.2f F (L2), uplink util server %.2f peers %.2f\n", r.ServerUpF, r.ServerUtil, r.PeerUtil)
	if len(r.DeliveredAt) == 3 {
		f := r.DP2P * r.Floor
		s += fmt.Sprintf("  delivered 10/50/90%% of N·F by %.1f/%.1f/%.1f s (at the bound's pace: %.1f/%.1f/%.1f s)\n",
			r.DeliveredAt[0], r.DeliveredAt[1], r.DeliveredAt[2], 0.1*f, 0.5*f, 0.9*f)
	}
	if u := r.Uplinks; u != nil {
		s += fmt.Sprintf("  uplinks carried %.3f N·F (framing floor %.3f; frames below full size — pure ACKs, lone messages, partial segments — as ACK-sized equivalents: %.3f): %.2f s at the full aggregate rate\n",
			u.NF, r.Floor, u.SmallNF, u.BusySeconds)
		s += fmt.Sprintf("  uplink capacity left unused: %.2f s before the first peer finished, %.2f s after; full upload queues dropped %.1f%% of frames\n",
			u.IdleBeforeFirst, u.IdleAfterFirst, 100*u.DroppedShare)
	}
	s += fmt.Sprintf("  CPU busy mean %.0f%% p90 %.0f%% (user %.0f%%, system %.0f%%, irq+softirq %.0f%%), lab processes %.1f CPU s (user %.1f, system %.1f)",
		r.CPUBusyMean, r.CPUBusyP90, r.CPU.User, r.CPU.System, r.CPU.IRQ, r.ProcCPUSecs, r.ProcUserSecs, r.ProcSysSecs)
	return s
}

func mib(b int64) string {
	if b%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d B", b)
}

func downStr(d float64) string {
	if d == 0 {
		return "unshaped"
	}
	return strconv.FormatFloat(d, 'g', -1, 64)
}

// CSVHeader is the header row WriteCSVRow's rows follow.
var CSVHeader = []string{"tag", "clients", "n", "file_bytes", "piece_bytes", "u_mbit", "us_mbit", "d_mbit", "mtu",
	"peers_left", "seconds", "d_p2p", "d_cs", "ratio", "ratio_cs", "first_finish", "spread",
	"server_up_f", "server_util", "peer_util", "cpu_busy_mean", "cpu_busy_p90", "proc_cpu_seconds", "verified",
	"uplink_nf", "small_frames_nf", "busy_seconds", "idle_before_first", "idle_after_first", "dropped_share",
	"cpu_user", "cpu_system", "cpu_irq", "proc_user_seconds", "proc_sys_seconds"}

// WriteCSV writes a header and one row per result.
func WriteCSV(w io.Writer, rs []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for i := range rs {
		if err := cw.Write(rs[i].csvRow()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (r *Result) csvRow() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	row := []string{r.Tag, r.Clients, strconv.Itoa(r.N), strconv.FormatInt(r.FileBytes, 10), strconv.FormatInt(r.PieceBytes, 10),
		f(r.UpMbit), f(r.ServerMbit), f(r.DownMbit), strconv.Itoa(r.MTU), strconv.Itoa(r.Left),
		f(r.Seconds), f(r.DP2P), f(r.DCS), f(r.Ratio), f(r.RatioCS), f(r.FirstFinish), f(r.Spread),
		f(r.ServerUpF), f(r.ServerUtil), f(r.PeerUtil), f(r.CPUBusyMean), f(r.CPUBusyP90), f(r.ProcCPUSecs), strconv.Itoa(r.Verified)}
	if u := r.Uplinks; u != nil {
		row = append(row, f(u.NF), f(u.SmallNF), f(u.BusySeconds), f(u.IdleBeforeFirst), f(u.IdleAfterFirst), f(u.DroppedShare))
	} else {
		row = append(row, "", "", "", "", "", "") // not accounted (another bound, or peers left)
	}
	return append(row, f(r.CPU.User), f(r.CPU.System), f(r.CPU.IRQ), f(r.ProcUserSecs), f(r.ProcSysSecs))
}

// ReadCSV reads rows written by WriteCSV (used to re-plot a sweep).
func ReadCSV(rd io.Reader) ([]Result, error) {
	recs, err := csv.NewReader(rd).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("lab csv: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("lab csv: empty")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, need := range []string{"clients", "n", "seconds", "d_p2p", "d_cs"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("lab csv: no column %q", need)
		}
	}
	var out []Result
	for li, rec := range recs[1:] {
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		num := func(name string) (float64, error) {
			s := get(name)
			if s == "" {
				return 0, nil
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, fmt.Errorf("lab csv line %d: %s: %w", li+2, name, err)
			}
			return v, nil
		}
		var r Result
		r.Tag, r.Clients = get("tag"), get("clients")
		var vals [6]float64
		for i, name := range []string{"n", "seconds", "d_p2p", "d_cs", "ratio", "file_bytes"} {
			if vals[i], err = num(name); err != nil {
				return nil, err
			}
		}
		r.N, r.Seconds, r.DP2P, r.DCS, r.Ratio, r.FileBytes = int(vals[0]), vals[1], vals[2], vals[3], vals[4], int64(vals[5])
		out = append(out, r)
	}
	return out, nil
}

// Uplinks accounts for T when d_P2P is N F/(u_s + Σ u_i): T is the time the
// uplinks' bytes take at the full aggregate rate plus the capacity they left
// unused. All times are in seconds of the full aggregate upload rate.
type Uplinks struct {
	NF              float64 `json:"nf"`                // L2 bytes through every upload tbf in [go, T], in units of N·F
	SmallNF         float64 `json:"small_frames_nf"`   // of which frames below full size (pure ACKs, lone control messages, partial segments), counted as ACK-sized frames, estimated from frame counts
	DroppedShare    float64 `json:"dropped_share"`     // frames the full upload queues dropped, as a share of the frames offered (they cost no uplink time, but TCP sends them again later)
	BusySeconds     float64 `json:"busy_seconds"`      // those bytes at u_s + Σ u_i
	IdleBeforeFirst float64 `json:"idle_before_first"` // capacity unused before the first peer finished (the ramp)
	IdleAfterFirst  float64 `json:"idle_after_first"`  // and after it (the tail)
}

// ackFrame is the L2 size of a pure TCP ACK with the timestamp option:
// Ethernet 14 + IPv4 20 + TCP 20 + 12.
const ackFrame = 66

// smallFrames estimates how many of p frames carrying b bytes were pure
// ACKs, taking every other frame as full size (MTU + 14): the two-size
// mixture that explains both counts. A partial data frame counts as part of
// an ACK, so this is an upper bound on the ACKs (a loose one at MTU 9000,
// where a write that ends mid-frame leaves a large part of a frame empty);
// it is clamped to [0, p].
func smallFrames(b, p int64, mtu int) float64 {
	full := float64(mtu + 14)
	s := (float64(p)*full - float64(b)) / (full - ackFrame)
	return min(max(s, 0), float64(p))
}

// accountUplinks builds the Uplinks account from the upload counters taken
// at go (before) and at T (after), the timeline (for the split at the first
// finish) and the aggregate upload rate capBps in bytes/s.
func accountUplinks(ts []tick, before, after []Sent, capBps float64, mtu, n int, fileBytes int64, first, total float64) *Uplinks {
	if capBps <= 0 || n <= 0 || fileBytes <= 0 || total <= 0 {
		return nil
	}
	var bytes, small float64
	var frames, dropped int64
	for h := range min(len(before), len(after)) {
		b, p := after[h].Bytes-before[h].Bytes, after[h].Packets-before[h].Packets
		bytes += float64(b)
		small += smallFrames(b, p, mtu)
		frames += p
		dropped += after[h].Dropped - before[h].Dropped
	}
	nf := float64(n) * float64(fileBytes)
	u := &Uplinks{NF: bytes / nf, SmallNF: small * ackFrame / nf, BusySeconds: bytes / capBps}
	if frames+dropped > 0 {
		u.DroppedShare = float64(dropped) / float64(frames+dropped)
	}
	idle := total - u.BusySeconds
	u.IdleBeforeFirst, u.IdleAfterFirst = idle, 0
	if at, ok := upSentAt(ts, first); ok && first > 0 && first < total {
		u.IdleBeforeFirst = max(first-at/capBps, 0)
		u.IdleAfterFirst = idle - u.IdleBeforeFirst
	}
	return u
}

// upSentAt returns the bytes all uplinks (server and peers) had sent by
// time t since the first sample, interpolated linearly between samples;
// false if the timeline does not reach t.
func upSentAt(ts []tick, t float64) (float64, bool) {
	sent := func(k tick) float64 {
		s := float64(k.serverUp)
		for _, v := range k.up {
			s += float64(v)
		}
		return s
	}
	for i := 1; i < len(ts); i++ {
		if ts[i].at < t {
			continue
		}
		a, b := ts[i-1], ts[i]
		v0, v1 := sent(a)-sent(ts[0]), sent(b)-sent(ts[0])
		frac := 1.0
		if b.at > a.at {
			frac = (t - a.at) / (b.at - a.at)
		}
		return v0 + frac*(v1-v0), true
	}
	return 0, false
}
