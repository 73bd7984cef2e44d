package session

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/shoal-p2p/shoal/internal/bitfield"
	"github.com/shoal-p2p/shoal/internal/choker"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/peer"
	"github.com/shoal-p2p/shoal/internal/picker"
	"github.com/shoal-p2p/shoal/internal/storage"
	"github.com/shoal-p2p/shoal/internal/wire"
)

// Options for one torrent.
type Options struct {
	Root       string   // folder that holds the torrent's file or top folder (Root/<name>)
	ResumePath string   // "" = Root/.shoal/<infohash>.resume
	Peers      []string // HOST:PORT to connect to besides the trackers' peers
	NoTrackers bool     // do not announce
	// UploadRate and DownloadRate limit this torrent alone (bytes/s, 0 = unlimited).
	UploadRate, DownloadRate int64
	// FilePriorities, when set, holds one value per file: 0 skip, 1 normal,
	// 2 high. A piece is wanted when any file it touches is.
	FilePriorities []int
	// VerifyProgress is called while existing data is hashed at start (may be nil).
	VerifyProgress func(done, total int64)
	// Storage overrides the file backend (tests).
	Storage storage.Storage
}

// Stats is a snapshot of a torrent's progress.
type Stats struct {
	Name          string
	NumPieces     int
	Have          int
	Size          int64
	Left          int64
	Downloaded    int64 // payload bytes received this session
	Uploaded      int64 // payload bytes sent this session
	DownRate      float64
	UpRate        float64
	Peers         int
	PeakPeers     int   // most peers connected at once
	WebseedBytes  int64 // payload bytes from HTTP web seeds
	Seeds         int
	HashFails     int
	WastedBytes   int64 // payload of blocks that arrived twice (endgame duplicates)
	Complete      bool  // every piece verified (a seed)
	Done          bool  // every wanted piece verified (files skipped by priority excluded)
	ResumedPieces int   // pieces trusted or verified at start
	Err           error
}

// Torrent is one torrent being downloaded or seeded. Its state is owned by
// the goroutine running run(); other goroutines talk to it through channels.
type Torrent struct {
	// static after construction
	c        *Client
	log      *slog.Logger
	mi       *metainfo.MetaInfo
	info     *metainfo.Info
	infoHash [20]byte
	store    storage.Storage
	opts     Options
	resume   string

	// channels into the owner loop
	events   chan peer.Event
	conns    chan newConn
	hashed   chan hashResult
	addrs    chan []netip.AddrPort
	dialDone chan dialResult
	cmds     chan func()        // closures run on the owner loop (see do)
	cancel   context.CancelFunc // ends run (static after Add)
	up, down *rate.Limiter      // this torrent's own limits (static pointers; limits change atomically)

	done      chan struct{} // closed when every piece is verified
	doneOnce  sync.Once
	saves     sync.WaitGroup // resume saves in flight
	stopped   chan struct{}  // closed when run returns
	completed chan struct{}  // signals the announcer (cap 1)

	// counters read by the announcer (atomic)
	uploaded, downloaded, left atomic.Int64

	trackMu    sync.Mutex // guards trackStats
	trackStats TrackerStats

	snapMu sync.Mutex // guards snap
	snap   Stats

	streams  *streamState  // owned by the run loop
	webseeds *webseedState // static after Add; its fields say who owns them

	// owned by the run loop
	pick         *picker.Picker
	choke        *choker.Choker // tit-for-tat while downloading
	seedChoke    *choker.Choker // while seeding: more slots, the least complete peers first
	wasted       int64          // bytes of blocks that arrived twice (endgame)
	have         bitfield.Bitfield
	peers        map[*peer.Conn]*peerState
	byID         map[[20]byte]*peerState
	cands        map[netip.AddrPort]*candidate
	hpAsked      map[netip.AddrPort]time.Time // BEP 55 rendezvous we asked for, by target (bep55.go)
	hpDialed     map[netip.AddrPort]time.Time // BEP 55 connects we acted on, by address
	banned       map[netip.AddrPort]bool
	bannedIDs    map[[20]byte]bool
	blame        map[int][]blockBlame // failed multi-peer attempts awaiting a good copy (blame.go)
	blameMu      sync.Mutex
	blameWant    map[int]bool // pieces in blame, read by the hash workers
	dialing      int
	hashing      map[int]bool
	hashJobs     chan int // pieces for the hash workers; overflow waits in hashBacklog
	hashBacklog  []int
	hashFails    int
	rounds       []ChokeRound // the last maxRounds tit-for-tat rounds
	lastRound    time.Time    // when rechoke last ran
	pacer        seedPacer    // evens out a seed's upload between busy peers
	dirty        bool         // have changed since last resume save
	saving       bool
	diskErr      error             // last storage error; downloading is paused while set
	diskErrAt    time.Time         // when diskErr happened (retry after diskRetry)
	checked      bitfield.Bitfield // pieces hashed by this process (safe to serve)
	serveWait    map[int][]servePending
	serveWaiting int
	stamps       []fileStamp // content files as last seen, once complete (see filewatch.go)
	rng          *rand.Rand
}

type newConn struct {
	nc       net.Conn
	hs       wire.Handshake
	outbound bool
}

type hashResult struct {
	piece  int
	ok     bool
	err    error
	blocks [][sha1.Size]byte // per-block digests, when the piece failed or wantBlockDigests
}

type dialResult struct {
	addr netip.AddrPort
	err  error
}

type candidate struct {
	lastTry  time.Time
	failures int
	inUse    bool
	seed     bool     // it had every piece: no use dialling it once we do too
	via      [20]byte // peer id of the peer that told us about it (PEX), for a BEP 55 rendezvous
}

// Add opens (or creates) a torrent's storage, checks what data is already
// there (from the resume record, or by hashing), and starts it.
func (c *Client) Add(ctx context.Context, mi *metainfo.MetaInfo, opts Options) (*Torrent, error) {
	info := mi.Info
	t := &Torrent{
		c: c, mi: mi, info: info, infoHash: mi.InfoHash, opts: opts,
		log:      c.log.With("torrent", info.Name),
		events:   make(chan peer.Event, 256),
		conns:    make(chan newConn, 16),
		hashed:   make(chan hashResult, 64),
		addrs:    make(chan []netip.AddrPort, 8),
		dialDone: make(chan dialResult, 64),
		cmds:     make(chan func()),
		done:     make(chan struct{}), stopped: make(chan struct{}), completed: make(chan struct{}, 1),
		peers: map[*peer.Conn]*peerState{}, byID: map[[20]byte]*peerState{},
		hpAsked: map[netip.AddrPort]time.Time{}, hpDialed: map[netip.AddrPort]time.Time{},
		cands: map[netip.AddrPort]*candidate{}, banned: map[netip.AddrPort]bool{}, bannedIDs: map[[20]byte]bool{},
		blame: map[int][]blockBlame{}, blameWant: map[int]bool{},
		hashing: map[int]bool{}, hashJobs: make(chan int, hashQueue), serveWait: map[int][]servePending{},
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))),
	}
	t.resume = opts.ResumePath
	t.up, t.down = newLimiter(opts.UploadRate), newLimiter(opts.DownloadRate)
	if t.resume == "" {
		t.resume = filepath.Join(opts.Root, ".shoal", fmt.Sprintf("%x.resume", t.infoHash))
	}
	if opts.Storage != nil {
		t.store = opts.Storage
	} else {
		fs, err := storage.OpenFiles(opts.Root, info)
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		t.store = fs
	}
	have, trusted, err := t.checkExisting(ctx)
	if err != nil {
		t.store.Close()
		return nil, err
	}
	t.have = have
	t.checked = bitfield.New(info.NumPieces())
	if !trusted {
		t.checked = have.Clone() // hashed just now
	}
	t.pick = picker.New(picker.Config{
		NumPieces: info.NumPieces(), PieceLength: info.PieceLength, TotalLength: info.TotalLength(), BlockSize: blockSize,
	}, rand.New(rand.NewPCG(t.rng.Uint64(), t.rng.Uint64())))
	for i := 0; i < info.NumPieces(); i++ {
		if have.Has(i) {
			t.pick.MarkHave(i)
		}
	}
	if opts.FilePriorities != nil {
		if err := t.applyFilePriorities(opts.FilePriorities); err != nil {
			t.store.Close()
			return nil, err
		}
	}
	t.choke = choker.New(choker.Config{Slots: c.cfg.UploadSlots}, rand.New(rand.NewPCG(t.rng.Uint64(), t.rng.Uint64())))
	t.seedChoke = choker.New(choker.Config{Slots: c.cfg.SeedSlots}, rand.New(rand.NewPCG(t.rng.Uint64(), t.rng.Uint64())))
	t.left.Store(t.leftBytes())
	t.snap = Stats{Name: info.Name, NumPieces: info.NumPieces(), Size: info.TotalLength(), ResumedPieces: have.Count()}
	t.publish()
	if err := c.register(t); err != nil {
		t.store.Close()
		return nil, err
	}
	for _, p := range opts.Peers {
		ap, err := resolveAddrPort(p)
		if err != nil {
			c.unregister(t)
			t.store.Close()
			return nil, fmt.Errorf("peer %q: %w", p, err)
		}
		t.cands[ap] = &candidate{}
	}
	ctx, t.cancel = context.WithCancel(ctx)
	t.webseeds = newWebseedState(t.log, t.info, mi.URLList)
	go t.run(ctx)
	return t, nil
}

// checkExisting finds which pieces are already on disk: the resume record when
// it is trusted, otherwise a full parallel hash check of whatever files exist.
func (t *Torrent) checkExisting(ctx context.Context) (have bitfield.Bitfield, trusted bool, err error) {
	n := t.info.NumPieces()
	if fs, ok := t.store.(*storage.Files); ok && !fs.Exists() {
		return bitfield.New(n), false, nil
	}
	have, trusted, err = storage.LoadResume(t.resume, t.info, t.opts.Root)
	if err == nil && trusted {
		return have, true, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.log.Info("resume record not usable, verifying data", "err", err)
	}
	have, err = storage.Verify(ctx, t.store, t.info, runtime.NumCPU(), t.opts.VerifyProgress)
	return have, false, err
}

func resolveAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	ta, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// InfoHash of the torrent.
func (t *Torrent) InfoHash() [20]byte { return t.infoHash }

// Done is closed when every piece has been downloaded and verified.
func (t *Torrent) Done() <-chan struct{} { return t.done }

// Stopped is closed when the torrent has shut down (its context ended or a fatal storage error).
func (t *Torrent) Stopped() <-chan struct{} { return t.stopped }

// Stats returns the latest snapshot (refreshed every second by the owner loop).
func (t *Torrent) Stats() Stats {
	t.snapMu.Lock()
	defer t.snapMu.Unlock()
	return t.snap
}

func (t *Torrent) handshake() wire.Handshake { return t.c.ourHandshake(t.infoHash) }

// offerConn hands an established connection to the owner loop.
func (t *Torrent) offerConn(ctx context.Context, nc net.Conn, hs wire.Handshake, outbound bool) {
	select {
	case t.conns <- newConn{nc: nc, hs: hs, outbound: outbound}:
	case <-t.stopped:
		nc.Close()
	case <-ctx.Done():
		nc.Close()
	}
}

func (t *Torrent) leftBytes() int64 {
	var left int64
	for i := 0; i < t.info.NumPieces(); i++ {
		if !t.have.Has(i) {
			left += t.info.PieceSize(i)
		}
	}
	return left
}

func (t *Torrent) isComplete() bool { return t.have.Count() == t.info.NumPieces() }

// do runs f on the owner loop and waits for it to finish. It returns false,
// without running f, if the torrent has stopped.
func (t *Torrent) do(f func()) bool {
	fin := make(chan struct{})
	select {
	case t.cmds <- func() { f(); close(fin) }:
	case <-t.stopped:
		return false
	}
	select {
	case <-fin:
		return true
	case <-t.stopped:
		return false
	}
}

// MetaInfo returns the torrent's metainfo.
func (t *Torrent) MetaInfo() *metainfo.MetaInfo { return t.mi }

func (t *Torrent) isDone() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}
