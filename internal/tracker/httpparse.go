package tracker

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// responseLimits bound the bencode of tracker responses. Trackers in the
// wild send keys out of order, hence Lenient.
var responseLimits = bencode.Limits{
	MaxDepth:     8,
	MaxStringLen: MaxBodySize,
	MaxItems:     100_000,
	Lenient:      true,
}

// maxTextLen caps the warning, failure and tracker id strings we keep.
const maxTextLen = 1024

// decodeDict decodes a tracker's bencoded dictionary body into v. Trailing
// whitespace is tolerated (some trackers end with a newline).
func decodeDict(body []byte, v any) error {
	if len(body) == 0 {
		return errors.New("empty response body")
	}
	if body[0] != 'd' {
		return fmt.Errorf("response is not a bencoded dictionary (starts %s)", snippet(body))
	}
	n, err := bencode.UnmarshalPrefix(body, v, responseLimits)
	if err != nil {
		return fmt.Errorf("response is not valid bencode: %w", err)
	}
	if len(bytes.TrimSpace(body[n:])) != 0 {
		return fmt.Errorf("response has %d bytes of trailing data", len(body)-n)
	}
	return nil
}

// snippet quotes the start of a body for an error message.
func snippet(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return strconv.Quote(string(b))
}

// rawInt returns an integer value, or ok=false if raw is absent or not an int.
func rawInt(raw bencode.RawMessage) (int64, bool) {
	var v int64
	if len(raw) == 0 || raw[0] != 'i' || bencode.UnmarshalLimits(raw, &v, responseLimits) != nil {
		return 0, false
	}
	return v, true
}

// rawBytes returns a string value, or ok=false if raw is absent or not a string.
func rawBytes(raw bencode.RawMessage) ([]byte, bool) {
	var v []byte
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' || bencode.UnmarshalLimits(raw, &v, responseLimits) != nil {
		return nil, false
	}
	return v, true
}

// rawText is rawBytes as a printable, length-capped string.
func rawText(raw bencode.RawMessage) (string, bool) {
	b, ok := rawBytes(raw)
	if !ok {
		return "", false
	}
	if len(b) > maxTextLen {
		b = b[:maxTextLen]
	}
	return string(bytes.ToValidUTF8(b, []byte(string(utf8.RuneError)))), true
}

// httpAnnounceMsg holds the fields of an announce response as raw values so
// one field of an unexpected type does not spoil the others.
type httpAnnounceMsg struct {
	Failure     bencode.RawMessage `bencode:"failure reason"`
	Warning     bencode.RawMessage `bencode:"warning message"`
	Interval    bencode.RawMessage `bencode:"interval"`
	MinInterval bencode.RawMessage `bencode:"min interval"`
	TrackerID   bencode.RawMessage `bencode:"tracker id"`
	Complete    bencode.RawMessage `bencode:"complete"`
	Incomplete  bencode.RawMessage `bencode:"incomplete"`
	Peers       bencode.RawMessage `bencode:"peers"`
	Peers6      bencode.RawMessage `bencode:"peers6"`
	ExternalIP  bencode.RawMessage `bencode:"external ip"`
}

// parseHTTPResponse parses an HTTP tracker's announce response body. A
// "failure reason" yields *FailureError.
func parseHTTPResponse(body []byte) (*AnnounceResponse, error) {
	var m httpAnnounceMsg
	if err := decodeDict(body, &m); err != nil {
		return nil, err
	}
	if m.Failure != nil {
		reason, ok := rawText(m.Failure)
		if !ok {
			reason = "(failure reason of unexpected type)"
		}
		return nil, &FailureError{Reason: reason}
	}
	r := &AnnounceResponse{Seeders: -1, Leechers: -1}
	iv, _ := rawInt(m.Interval)
	mi, _ := rawInt(m.MinInterval)
	r.Interval, r.MinInterval = clampIntervals(iv, mi)
	r.Warning, _ = rawText(m.Warning)
	r.TrackerID, _ = rawText(m.TrackerID)
	if n, ok := rawInt(m.Complete); ok && n >= 0 && n <= 1<<31-1 {
		r.Seeders = int(n)
	}
	if n, ok := rawInt(m.Incomplete); ok && n >= 0 && n <= 1<<31-1 {
		r.Leechers = int(n)
	}
	if b, ok := rawBytes(m.ExternalIP); ok {
		switch len(b) {
		case 4:
			r.ExternalIP = netip.AddrFrom4([4]byte(b))
		case 16:
			r.ExternalIP = netip.AddrFrom16([16]byte(b)).Unmap()
		}
	}
	ps := newPeerSet(MaxPeers)
	if m.Peers != nil {
		if err := addPeersField(ps, m.Peers); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
	}
	if m.Peers6 != nil {
		b, ok := rawBytes(m.Peers6)
		if !ok {
			return nil, errors.New("peers6: not a string")
		}
		if err := ps.addCompact(b, true); err != nil {
			return nil, fmt.Errorf("peers6: %w", err)
		}
	}
	r.Peers = ps.peers
	return r, nil
}

// addPeersField decodes "peers": a compact string (BEP 23) or a list of
// dictionaries with "ip" and "port" (BEP 3). Dictionary entries that are
// malformed or name a host instead of an address are skipped.
func addPeersField(ps *peerSet, raw bencode.RawMessage) error {
	if b, ok := rawBytes(raw); ok {
		return ps.addCompact(b, false)
	}
	if raw[0] != 'l' {
		return errors.New("neither a compact string nor a list")
	}
	var list []bencode.RawMessage
	if err := bencode.UnmarshalLimits(raw, &list, responseLimits); err != nil {
		return err
	}
	for _, e := range list {
		if ps.full() {
			break
		}
		var d struct {
			IP   bencode.RawMessage `bencode:"ip"`
			Port bencode.RawMessage `bencode:"port"`
		}
		if len(e) == 0 || e[0] != 'd' || bencode.UnmarshalLimits(e, &d, responseLimits) != nil {
			continue
		}
		ipb, ok1 := rawBytes(d.IP)
		port, ok2 := rawInt(d.Port)
		if !ok1 || !ok2 || port <= 0 || port > 65535 {
			continue
		}
		a, err := netip.ParseAddr(string(ipb))
		if err != nil || a.Zone() != "" {
			continue
		}
		ps.add(netip.AddrPortFrom(a, uint16(port)))
	}
	return nil
}

// parseHTTPScrape parses a scrape response, adding entries for the wanted
// hashes to out. Entries for hashes we did not ask for are ignored.
func parseHTTPScrape(body []byte, wanted [][20]byte, out map[[20]byte]ScrapeResult) error {
	var m struct {
		Failure bencode.RawMessage            `bencode:"failure reason"`
		Files   map[string]bencode.RawMessage `bencode:"files"`
	}
	if err := decodeDict(body, &m); err != nil {
		return err
	}
	if m.Failure != nil {
		reason, ok := rawText(m.Failure)
		if !ok {
			reason = "(failure reason of unexpected type)"
		}
		return &FailureError{Reason: reason}
	}
	for _, h := range wanted {
		raw, ok := m.Files[string(h[:])]
		if !ok {
			continue
		}
		var f struct {
			Complete   bencode.RawMessage `bencode:"complete"`
			Incomplete bencode.RawMessage `bencode:"incomplete"`
			Downloaded bencode.RawMessage `bencode:"downloaded"`
		}
		if len(raw) == 0 || raw[0] != 'd' || bencode.UnmarshalLimits(raw, &f, responseLimits) != nil {
			continue
		}
		out[h] = ScrapeResult{
			Seeders:   countOrUnknown(f.Complete),
			Leechers:  countOrUnknown(f.Incomplete),
			Completed: countOrUnknown(f.Downloaded),
		}
	}
	return nil
}

func countOrUnknown(raw bencode.RawMessage) int {
	if n, ok := rawInt(raw); ok && n >= 0 && n <= 1<<31-1 {
		return int(n)
	}
	return -1
}
