package nat

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// Port forwarding on start, renewal, removal on exit.
const (
	DefaultLease   = 2 * time.Hour // lifetime asked for; renewed at half of what is granted
	minRenew       = 30 * time.Second
	removeTimeout  = 3 * time.Second
	discoverBudget = 4 * time.Second
)

// ForwardConfig configures Forward.
type ForwardConfig struct {
	Protocol string // "tcp" or "udp"
	Port     uint16 // our listen port; the same external port is asked for
	// Gateway for NAT-PMP; zero = the default route's gateway from /proc/net/route.
	Gateway netip.Addr
	// SSDP is where UPnP M-SEARCHes go; "" = SSDPAddr (the LAN's multicast group).
	SSDP        string
	Lease       time.Duration // 0 = DefaultLease
	Description string        // shown in the router's UPnP table
	NoNATPMP    bool          // skip NAT-PMP
	NoUPnP      bool          // skip UPnP
	Logger      *slog.Logger
}

// Forwarder holds one port mapping and renews it.
type Forwarder struct {
	cfg  ForwardConfig // static after construction
	log  *slog.Logger
	pmp  *NATPMP // nil unless NAT-PMP granted the mapping
	upnp *UPnP   // nil unless UPnP granted it

	mu      sync.Mutex // guards mapping
	mapping Mapping
}

// Forward asks the gateway for a mapping (NAT-PMP first, then UPnP-IGD)
// and returns a Forwarder whose Run renews it until ctx ends and then
// removes it. An error means no method worked; the peer carries on without.
func Forward(ctx context.Context, cfg ForwardConfig) (*Forwarder, error) {
	if cfg.Protocol != "tcp" && cfg.Protocol != "udp" {
		return nil, fmt.Errorf("nat: protocol %q, want tcp or udp", cfg.Protocol)
	}
	if cfg.Port == 0 {
		return nil, errors.New("nat: port 0")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Description == "" {
		cfg.Description = "shoal"
	}
	f := &Forwarder{cfg: cfg, log: cfg.Logger}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if !cfg.NoNATPMP {
		gw := cfg.Gateway
		if !gw.IsValid() {
			var err error
			if gw, err = DefaultGateway(); err != nil {
				errs = append(errs, err)
			}
		}
		if gw.IsValid() {
			c := &NATPMP{Gateway: netip.AddrPortFrom(gw, NATPMPPort)}
			m, err := c.AddPortMapping(ctx, cfg.Protocol, cfg.Port, cfg.Port, cfg.Lease)
			if err == nil {
				if ext, err := c.ExternalAddress(ctx); err == nil {
					m.External = netip.AddrPortFrom(ext, m.External.Port())
				}
				f.pmp, f.mapping = c, m
				return f, nil
			}
			errs = append(errs, err)
		}
	}
	if !cfg.NoUPnP {
		ssdp := cfg.SSDP
		if ssdp == "" {
			ssdp = SSDPAddr
		}
		dctx, cancel := context.WithTimeout(ctx, discoverBudget)
		g, err := DiscoverUPnP(dctx, ssdp, netip.Addr{})
		cancel()
		if err == nil {
			var m Mapping
			m, err = g.AddPortMapping(ctx, cfg.Protocol, cfg.Port, cfg.Port, cfg.Lease, cfg.Description)
			var ue *UPnPError
			if errors.As(err, &ue) && ue.Code == 725 { // OnlyPermanentLeasesSupported
				m, err = g.AddPortMapping(ctx, cfg.Protocol, cfg.Port, cfg.Port, 0, cfg.Description)
			}
			if err == nil {
				if ext, err := g.ExternalAddress(ctx); err == nil {
					m.External = netip.AddrPortFrom(ext, m.External.Port())
				}
				f.upnp, f.mapping = g, m
				return f, nil
			}
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("nat: no port mapping: %w", errors.Join(errs...))
}

// Mapping returns the current mapping.
func (f *Forwarder) Mapping() Mapping {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mapping
}

// Run renews the mapping at half its lifetime until ctx ends, then
// deletes it (bounded by a few seconds).
func (f *Forwarder) Run(ctx context.Context) {
	defer f.remove()
	for {
		m := f.Mapping()
		wait := m.Lifetime / 2
		if m.Lifetime == 0 {
			wait = f.cfg.Lease / 2 // permanent UPnP lease: re-add now and then in case the router rebooted
		}
		wait = max(wait, minRenew)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		var nm Mapping
		var err error
		if f.pmp != nil {
			nm, err = f.pmp.AddPortMapping(ctx, f.cfg.Protocol, f.cfg.Port, m.External.Port(), f.cfg.Lease)
		} else {
			nm, err = f.upnp.AddPortMapping(ctx, f.cfg.Protocol, f.cfg.Port, m.External.Port(), m.Lifetime, f.cfg.Description)
		}
		if err != nil {
			f.log.Warn("port mapping renewal failed", "method", m.Method, "err", err)
			continue
		}
		nm.External = netip.AddrPortFrom(m.External.Addr(), nm.External.Port())
		f.mu.Lock()
		f.mapping = nm
		f.mu.Unlock()
	}
}

func (f *Forwarder) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	m := f.Mapping()
	var err error
	if f.pmp != nil {
		err = f.pmp.DeletePortMapping(ctx, f.cfg.Protocol, f.cfg.Port)
	} else {
		err = f.upnp.DeletePortMapping(ctx, f.cfg.Protocol, m.External.Port())
	}
	if err != nil {
		f.log.Warn("port mapping removal failed", "method", m.Method, "err", err)
		return
	}
	f.log.Info("port mapping removed", "method", m.Method, "external", m.External)
}

// DefaultGateway reads the IPv4 default route's gateway from /proc/net/route.
func DefaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("nat: default gateway: %w", err)
	}
	defer f.Close()
	return parseRoutes(bufio.NewScanner(f))
}

func parseRoutes(sc *bufio.Scanner) (netip.Addr, error) {
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || fs[1] != "00000000" {
			continue
		}
		b, err := hex.DecodeString(fs[2])
		if err != nil || len(b) != 4 {
			continue
		}
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], binary.BigEndian.Uint32(b))
		if gw := netip.AddrFrom4(a); !gw.IsUnspecified() {
			return gw, nil
		}
	}
	return netip.Addr{}, errors.New("nat: no IPv4 default gateway")
}
