package session

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/choker"
	"github.com/shoal-p2p/shoal/internal/peer"
	"github.com/shoal-p2p/shoal/internal/storage"
)

const (
	blockSize     = 16 << 10
	chokeInterval = 10 * time.Second
	// seedChokeInterval is the round length while seeding: the slots go to
	// the least complete peers, which change as the served ones catch up.
	seedChokeInterval = 3 * time.Second
	resumeInterval    = 20 * time.Second
	snubTimeout       = 60 * time.Second
	requestTimeout    = 30 * time.Second
	maxDialFailures   = 5
)

// run is the owner loop: the only goroutine that touches the torrent's state.
func (t *Torrent) run(ctx context.Context) {
	defer close(t.stopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := max(1, runtime.NumCPU())
	for i := 0; i < workers; i++ {
		go t.hashWorker(ctx)
	}
	if t.webseeds != nil {
		go t.runWebseeds(ctx)
	}
	if !t.opts.NoTrackers && len(t.mi.Trackers()) > 0 {
		go t.announceLoop(ctx)
	}
	if t.c.cfg.DHT != nil && !t.info.Private {
		go t.dhtLoop(ctx)
	}
	if t.pick.Complete() {
		t.markDone()
	}
	if t.isComplete() {
		t.stampFiles()
	}

	second := time.NewTicker(time.Second)
	defer second.Stop()
	chokeTick := time.NewTicker(chokeInterval)
	defer chokeTick.Stop()
	lastSave := time.Now()
	ticks := 0
	t.dialMore()

	for {
		select {
		case <-ctx.Done():
			t.shutdown()
			return
		case ev := <-t.events:
			t.onPeerEvent(ev)
		case f := <-t.cmds:
			f()
		case nc := <-t.conns:
			t.addConn(ctx, nc)
		case r := <-t.hashed:
			t.onHashed(r)
		case addrs := <-t.addrs:
			for _, a := range addrs {
				if _, ok := t.cands[a]; !ok && !t.banned[a] {
					t.cands[a] = &candidate{}
				}
			}
			t.dialMore()
		case d := <-t.dialDone:
			t.dialing--
			if c := t.cands[d.addr]; c != nil && d.err != nil {
				t.log.Debug("dial failed", "peer", d.addr, "err", d.err)
				c.failures++
				c.inUse = false
				if d.err == peer.ErrSelf {
					t.banned[d.addr] = true
				} else {
					t.requestRendezvous(d.addr, c) // at most once per holepunchCooldown
				}
			}
			t.dialMore()
		case now := <-second.C:
			t.retryStorage(now)
			t.tick(now)
			if t.isComplete() && now.Sub(t.lastRound) >= seedChokeInterval-time.Second/10 && t.anyInterested() {
				t.rechoke(now) // a seed nobody wants data from keeps the 10 s rounds
			} else {
				t.recheckChoke(now)
			}
			if ticks%fileWatchEvery == 0 {
				t.watchFiles()
			}
			if ticks++; ticks%pexEvery == 5 {
				t.sendPex()
			}
			if t.dirty && !t.saving && now.Sub(lastSave) > resumeInterval {
				lastSave = now
				t.saveResume(false)
			}
		case now := <-chokeTick.C:
			t.rechoke(now)
		}
	}
}

// tick runs once a second: rates, snubbing, stalled requests, dialing, stats.
func (t *Torrent) tick(now time.Time) {
	var down, up float64
	for _, ps := range t.peers {
		ps.sentLastSec = ps.updateRates()
		t.uploaded.Add(ps.sentLastSec)
		t.pick.SetPeerRate(ps.pid, ps.downRate)
		down += ps.downRate
		up += ps.upRate
		if ps.amInterested && !ps.peerChoking && t.pick.Inflight(ps.pid) > 0 && now.Sub(ps.lastPiece) > requestTimeout {
			// the peer holds our requests but sends nothing: take them back
			for _, b := range t.pick.PeerChoked(ps.pid) {
				ps.conn.Send(cancelMsg(b))
			}
			ps.lastPiece = now
			ps.stalls++
		}
		ps.snubbed = ps.amInterested && now.Sub(ps.lastPiece) > snubTimeout
		t.requestMore(ps)
	}
	t.dialMore()
	t.paceSeedUploads(now)
	t.publishRates(down, up)
	if t.log.Enabled(context.Background(), slog.LevelDebug) {
		t.logTick(up, down)
	}
}

// Seed pacing (paceSeedUploads).
const (
	seedPaceHeadroom    = 1.1              // a paced connection may send this much above an equal share
	seedPaceWindow      = 5                // seconds of totals that must agree before pacing starts
	seedPaceSteady      = 0.9              // ...within this ratio of their maximum
	seedPaceLoss        = 0.85             // pacing that lets the total fall below this share of the peak...
	seedPaceLossSeconds = 3                // ...for this many seconds in a row stops
	seedPaceBackoff     = 60 * time.Second // and stays off this long, twice as long after each such stop
	seedPaceMaxBackoff  = 16 * time.Minute
)

// seedPacer remembers a seed's recent upload totals (bytes per second).
type seedPacer struct {
	totals   []float64 // last seconds, oldest first, at most 2*seedPaceWindow
	pacing   bool
	low      int     // seconds in a row under seedPaceLoss of peak while pacing
	peak     float64 // the total the caps were computed from
	offUntil time.Time
	backoff  time.Duration // the last stop's backoff; 0 before the first stop
}

// paceSeedUploads evens out a seed's upload between the peers it serves.
// Left alone, connections share a full uplink the way TCP shares a full
// queue: unevenly, by whichever window grew larger, and the peer that
// happens to get least falls behind the swarm. While seedPacer.step finds
// the uplink full, a busy connection that sent more than an equal share in
// the last second is paced to seedPaceHeadroom times that share; the
// others are left free, so the total can still grow and a slow peer never
// holds a fast one down for long.
func (t *Torrent) paceSeedUploads(now time.Time) {
	busy := func(ps *peerState) bool {
		return t.isComplete() && !ps.amChoking && ps.conn.PendingUploads() > 0
	}
	n, total := 0, 0.0
	for _, ps := range t.peers {
		total += float64(ps.sentLastSec)
		if busy(ps) {
			n++
		}
	}
	equal := t.pacer.step(now, total, n)
	for _, ps := range t.peers {
		if equal > 0 && float64(ps.sentLastSec) > equal && busy(ps) {
			ps.sendq.Pace(seedPaceHeadroom * equal)
		} else {
			ps.sendq.Pace(0)
		}
	}
}

// step takes the bytes uploaded in the last second and the number of busy
// connections (unchoked, with requests queued; 0 while not seeding) and
// returns an equal share of the uplink in bytes/s, or 0 when nothing should
// be paced. Pacing starts once the total has been steady for
// seedPaceWindow seconds (the uplink is the limit); the share is the recent
// peak over the busy connections. If the total then stays under
// seedPaceLoss of that peak for seedPaceLossSeconds, the peers were not
// sharing one bottleneck, and pacing stops for a backoff that doubles each
// time, up to seedPaceMaxBackoff.
func (p *seedPacer) step(now time.Time, uploaded float64, busy int) float64 {
	p.totals = append(p.totals, uploaded)
	if len(p.totals) > 2*seedPaceWindow {
		p.totals = p.totals[1:]
	}
	if busy < 2 || now.Before(p.offUntil) {
		p.pacing = false
		return 0
	}
	if p.pacing && uploaded < seedPaceLoss*p.peak {
		if p.low++; p.low < seedPaceLossSeconds {
			return p.peak / float64(busy)
		}
		p.pacing = false
		p.backoff = min(max(2*p.backoff, seedPaceBackoff), seedPaceMaxBackoff)
		p.offUntil = now.Add(p.backoff)
		return 0
	}
	if !p.pacing {
		if len(p.totals) < seedPaceWindow {
			return 0
		}
		last := p.totals[len(p.totals)-seedPaceWindow:]
		if slices.Max(last) <= 0 || slices.Min(last) < seedPaceSteady*slices.Max(last) {
			return 0
		}
		p.pacing = true
	}
	p.low = 0
	p.peak = slices.Max(p.totals)
	return p.peak / float64(busy)
}

// logTick writes the per-second debug line (shoal -vv, shoal lab --debug):
// for each peer its address, flags (I/- it is interested, U/O/c we unchoke it (O: as the
// optimistic unchoke) or choke it, i/- we are interested, u/c it unchokes or chokes us), upload
// and download rate in kB/s, requests we owe it (q) and blocks we asked of
// it (f).
func (t *Torrent) logTick(up, down float64) {
	flag := func(b bool, yes, no byte) byte {
		if b {
			return yes
		}
		return no
	}
	var b strings.Builder
	for _, ps := range t.peers {
		fmt.Fprintf(&b, " %s:%c%c%c%c:%.0f/%.0f:q%d:f%d", ps.conn.Addr.Addr(),
			flag(ps.peerInterested, 'I', '-'), flag(ps.amChoking, 'c', flag(ps.optimistic, 'O', 'U')),
			flag(ps.amInterested, 'i', '-'), flag(ps.peerChoking, 'c', 'u'),
			ps.upRate/1e3, ps.downRate/1e3, ps.conn.PendingUploads(), t.pick.Inflight(ps.pid))
	}
	t.log.Debug("tick", "have", t.have.Count(), "wasted", t.wasted, "up_kBps", int(up/1e3), "down_kBps", int(down/1e3), "peers", b.String())
}

func (t *Torrent) publishRates(down, up float64) {
	t.snapMu.Lock()
	t.snap.DownRate, t.snap.UpRate = down, up
	t.snapMu.Unlock()
	t.publish()
}

// publish refreshes the stats snapshot from loop-owned state.
func (t *Torrent) publish() {
	seeds := 0
	for _, ps := range t.peers {
		if ps.seed {
			seeds++
		}
	}
	t.snapMu.Lock()
	defer t.snapMu.Unlock()
	t.snap.Have = t.have.Count()
	t.snap.Left = t.left.Load()
	t.snap.Downloaded = t.downloaded.Load()
	t.snap.Uploaded = t.uploaded.Load()
	t.snap.Peers = len(t.peers)
	t.snap.PeakPeers = max(t.snap.PeakPeers, len(t.peers))
	if t.webseeds != nil {
		t.snap.WebseedBytes = t.webseeds.bytes.Load()
	}
	t.snap.Seeds = seeds
	t.snap.HashFails = t.hashFails
	t.snap.WastedBytes = t.wasted
	t.snap.Complete = t.isComplete()
	t.snap.Done = t.pick.Complete()
	t.snap.Err = t.diskErr
}

// chokeView is the choker's view of every connected peer.
func (t *Torrent) chokeView() ([]choker.Peer, map[choker.PeerID]*peerState) {
	list := make([]choker.Peer, 0, len(t.peers))
	byPID := make(map[choker.PeerID]*peerState, len(t.peers))
	for _, ps := range t.peers {
		id := choker.PeerID(ps.pid)
		byPID[id] = ps
		list = append(list, choker.Peer{
			ID: id, Interested: ps.peerInterested, DownloadRate: ps.downRate, UploadRate: ps.upRate,
			Snubbed: ps.snubbed, ConnectedAt: ps.connectedAt, Have: ps.haveShare(t.info.NumPieces()),
			ChokingUs: ps.peerChoking,
		})
	}
	return list, byPID
}

// rechoke runs a tit-for-tat round.
func (t *Torrent) rechoke(now time.Time) {
	list, byPID := t.chokeView()
	ch := t.choke
	if t.isComplete() {
		ch = t.seedChoke
	}
	t.lastRound = now
	ch.SetProgress(float64(t.have.Count()) / float64(t.info.NumPieces()))
	t.applyChoke(now, ch.Round(now, t.isComplete(), list), byPID)
}

// recheckChoke runs the leecher's between-rounds check (choker.Recheck):
// slots whose peers stopped reciprocating, an optimistic slot whose lagger
// caught up.
func (t *Torrent) recheckChoke(now time.Time) {
	if t.isComplete() || len(t.peers) == 0 {
		return
	}
	list, byPID := t.chokeView()
	t.choke.SetProgress(float64(t.have.Count()) / float64(t.info.NumPieces()))
	if d, changed := t.choke.Recheck(now, false, list); changed {
		t.applyChoke(now, d, byPID)
	}
}

func (t *Torrent) applyChoke(now time.Time, d choker.Decision, byPID map[choker.PeerID]*peerState) {
	unchoke := make(map[choker.PeerID]bool, len(d.Unchoked))
	for _, id := range d.Unchoked {
		unchoke[id] = true
	}
	round := ChokeRound{At: now, Seeding: t.isComplete()}
	for id, ps := range byPID {
		ps.optimistic = d.HasOptimistic && d.Optimistic == id
		t.setChoking(ps, !unchoke[id])
		round.Peers = append(round.Peers, ps.info())
	}
	t.rounds = append(t.rounds, round)
	if len(t.rounds) > maxRounds {
		t.rounds = t.rounds[len(t.rounds)-maxRounds:]
	}
}

// anyInterested reports whether some peer wants our data.
func (t *Torrent) anyInterested() bool {
	for _, ps := range t.peers {
		if ps.peerInterested {
			return true
		}
	}
	return false
}

// busySlots is the number of unchoked peers that want our data (an
// unchoked peer that is not interested holds a slot that does nothing).
func (t *Torrent) busySlots() int {
	n := 0
	for _, ps := range t.peers {
		if !ps.amChoking && ps.peerInterested {
			n++
		}
	}
	return n
}

// dialMore starts outgoing connections to candidates while there is room.
func (t *Torrent) dialMore() {
	if t.diskErr != nil {
		return
	}
	now := time.Now()
	for addr, c := range t.cands {
		if len(t.peers)+t.dialing >= t.c.cfg.MaxPeers || t.dialing >= t.c.cfg.MaxHalfOpen {
			return
		}
		if c.inUse || t.banned[addr] || (c.seed && t.isComplete()) || c.failures >= maxDialFailures || now.Sub(c.lastTry) < redialWait(c.failures) {
			continue
		}
		if t.connectedTo(addr) {
			c.inUse = true
			continue
		}
		c.inUse = true
		c.lastTry = now
		t.dialing++
		go t.dial(addr)
	}
}

func (t *Torrent) connectedTo(addr netip.AddrPort) bool {
	for pc, ps := range t.peers {
		if pc.Addr == addr || ps.listenAddr == addr {
			return true
		}
	}
	return false
}

// untilStopped is a context that ends after d or when the torrent stops,
// whichever comes first; the caller must call cancel.
func (t *Torrent) untilStopped(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-t.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (t *Torrent) dial(addr netip.AddrPort) {
	ctx, cancel := t.untilStopped(30 * time.Second)
	defer cancel()
	nc, hs, err := peer.Dial(ctx, "tcp", addr.String(), t.handshake())
	if err == nil {
		select {
		case t.conns <- newConn{nc: nc, hs: hs, outbound: true}:
		case <-t.stopped:
			nc.Close()
		}
	}
	select {
	case t.dialDone <- dialResult{addr: addr, err: err}:
	case <-t.stopped:
	}
}

// saveResume writes the resume record in the background (after syncing data).
func (t *Torrent) saveResume(wait bool) { t.saveResumeAs(wait, false) }

// saveResumeAs writes the record; final marks a clean shutdown, after which
// any change to a file (size or mtime) makes its pieces be checked again.
func (t *Torrent) saveResumeAs(wait, final bool) {
	have := t.have.Clone()
	t.dirty = false
	t.saving = true
	fin := make(chan struct{})
	t.saves.Add(1)
	go func() {
		defer t.saves.Done()
		defer close(fin)
		if err := t.store.Sync(); err != nil {
			t.log.Warn("sync data", "err", err)
			return
		}
		if err := os.MkdirAll(filepath.Dir(t.resume), 0o755); err != nil {
			t.log.Warn("resume dir", "err", err)
			return
		}
		save := storage.SaveResume
		if final {
			save = storage.SaveResumeFinal
		}
		if err := save(t.resume, t.info, t.opts.Root, have); err != nil {
			t.log.Warn("save resume", "err", err)
		}
	}()
	if wait {
		<-fin
		t.saving = false
		return
	}
	go func() {
		<-fin
		select {
		case t.hashed <- hashResult{piece: -1}: // tells the loop the save finished
		case <-t.stopped:
		}
	}()
}

func (t *Torrent) shutdown() {
	for pc := range t.peers {
		pc.Close()
	}
	t.saves.Wait() // a background save must not race the final one
	t.saveResumeAs(true, true)
	t.c.unregister(t)
	t.store.Close()
	t.publish()
}

func (t *Torrent) markDone() {
	t.doneOnce.Do(func() {
		close(t.done)
		select {
		case t.completed <- struct{}{}:
		default:
		}
	})
}

// redialWait is how long to wait before dialling a candidate again after
// failures: 2 s, 4 s, 8 s ... up to a minute.
func redialWait(failures int) time.Duration {
	if failures == 0 {
		return 0
	}
	return min(time.Minute, 2*time.Second<<min(failures-1, 5))
}

// slots is the number of regular unchoke slots in the current mode.
func (t *Torrent) slots() int {
	if t.isComplete() {
		return t.c.cfg.SeedSlots
	}
	return t.c.cfg.UploadSlots
}
