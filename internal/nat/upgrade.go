package nat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// UpgradeConfig configures Upgrade.
type UpgradeConfig struct {
	Rendezvous string     // HOST:PORT of the rendezvous
	LocalIP    netip.Addr // address to bind (zero = any)
	Self       [20]byte   // our peer id
	Peer       [20]byte   // the peer we want a direct connection to
	// Initiator sends the CONNECT; the other side only waits for PUNCH.
	// Exactly one of the two peers must be the initiator.
	Initiator bool
	Rounds    int           // punch rounds, each from a fresh port with re-learned endpoints (0 = 3)
	Window    time.Duration // connect attempts per round (0 = PunchWindow)
	Pause     time.Duration // between rounds (0 = 2 s)
	Counters  *Counters     // may be nil
	Logger    *slog.Logger
}

// Upgrade tries to get a direct TCP connection to cfg.Peer by hole
// punching, with retries; every round registers anew from a fresh local
// port, so both endpoints are re-learned through the rendezvous. Both ends
// then exchange their peer ids over the new connection to be sure it is the
// right peer. On failure the caller keeps using the relay; the error wraps
// ErrPunchFailed.
func Upgrade(ctx context.Context, cfg UpgradeConfig) (net.Conn, error) {
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Window <= 0 {
		cfg.Window = PunchWindow
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 2 * time.Second
	}
	if cfg.Counters == nil {
		cfg.Counters = &Counters{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		if round > 1 {
			select {
			case <-ctx.Done():
			case <-time.After(cfg.Pause):
			}
		}
		cfg.Counters.Attempts.Add(1)
		c, err := upgradeRound(ctx, cfg, log, round)
		if err == nil {
			cfg.Counters.Successes.Add(1)
			log.Info("punch succeeded", "round", round, "local", c.LocalAddr(), "remote", c.RemoteAddr())
			return c, nil
		}
		log.Info("punch round failed", "round", round, "err", err)
		errs = append(errs, err)
	}
	cfg.Counters.Fallbacks.Add(1)
	return nil, fmt.Errorf("nat: upgrade: %w", errors.Join(append(errs, ErrPunchFailed)...))
}

func upgradeRound(ctx context.Context, cfg UpgradeConfig, log *slog.Logger, round int) (net.Conn, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel() // closes the registration
	reg, err := Register(rctx, cfg.Rendezvous, cfg.LocalIP, cfg.Self)
	if err != nil {
		return nil, err
	}
	log.Info("punch round", "round", round, "local", reg.Local, "observed", reg.Observed)
	wait := time.NewTimer(2*cfg.Window + 2*time.Second) // for the PUNCH
	defer wait.Stop()
	var connect <-chan time.Time
	if cfg.Initiator {
		t := time.NewTicker(500 * time.Millisecond) // until the peer is registered too
		defer t.Stop()
		connect = t.C
		if err := reg.Connect(cfg.Peer); err != nil {
			return nil, err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
			return nil, errors.New("no PUNCH from the rendezvous")
		case <-reg.Errors:
			// "unknown peer": it has not registered (again) yet; CONNECT is resent
		case <-connect:
			if err := reg.Connect(cfg.Peer); err != nil {
				return nil, err
			}
			connect = nil
		case o, ok := <-reg.Punches:
			if !ok {
				return nil, errors.New("rendezvous connection lost")
			}
			if o.PeerID != cfg.Peer {
				continue
			}
			c, err := punch(ctx, reg.Local, o.Remote, cfg.Window, true) // a fresh port: nothing else listens on it
			if err != nil {
				return nil, err
			}
			if err := confirmPeer(c, cfg.Self, cfg.Peer); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
	}
}

// confirmPeer exchanges peer ids on a fresh direct connection.
func confirmPeer(c net.Conn, self, peer [20]byte) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(self[:]); err != nil {
		return fmt.Errorf("punch: send id: %w", err)
	}
	var got [20]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return fmt.Errorf("punch: read id: %w", err)
	}
	if !bytes.Equal(got[:], peer[:]) {
		return errors.New("punch: connected to the wrong peer")
	}
	return nil
}
