package tracker

import (
	"encoding/binary"
	"errors"
	"testing"
)

func FuzzParseHTTPResponse(f *testing.F) {
	f.Add([]byte("d8:intervali1800e5:peers6:\x01\x02\x03\x04\x1a\xe1e"))
	f.Add([]byte("d8:completei1e10:incompletei2e8:intervali60e12:min intervali30e5:peersld2:ip7:1.2.3.44:porti80eee"))
	f.Add([]byte("d6:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x50e"))
	f.Add([]byte("d14:failure reason4:nopee"))
	f.Add([]byte("d15:warning message2:hi5:peers0:e"))
	f.Add([]byte("d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1eeee"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseHTTPResponse(body)
		if err == nil {
			if len(r.Peers) > MaxPeers {
				t.Fatalf("%d peers exceeds cap", len(r.Peers))
			}
			if r.Interval < MinAnnounceInterval || r.Interval > MaxAnnounceInterval || r.Interval < r.MinInterval {
				t.Fatalf("interval %v / min %v out of policy", r.Interval, r.MinInterval)
			}
			seen := map[string]bool{}
			for _, p := range r.Peers {
				if p.Port() == 0 || !p.Addr().IsValid() || p.Addr().Is4In6() || seen[p.String()] {
					t.Fatalf("bad or duplicate peer %v", p)
				}
				seen[p.String()] = true
			}
		}
		var wanted = [][20]byte{[20]byte([]byte("aaaaaaaaaaaaaaaaaaaa"))}
		out := map[[20]byte]ScrapeResult{}
		if err := parseHTTPScrape(body, wanted, out); err == nil && len(out) > len(wanted) {
			t.Fatalf("scrape returned %d results for %d hashes", len(out), len(wanted))
		}
	})
}

func FuzzParseUDPResponse(f *testing.F) {
	be := binary.BigEndian
	ann := be.AppendUint32(be.AppendUint32(be.AppendUint32(hdr(1, 7), 1800), 4), 5)
	f.Add(append(ann, 1, 2, 3, 4, 0, 80), false)
	f.Add(append(ann, make([]byte, 18)...), true)
	f.Add(be.AppendUint64(hdr(0, 7), 42), false)
	f.Add(append(hdr(2, 7), make([]byte, 24)...), false)
	f.Add(append(hdr(3, 7), "error"...), false)
	f.Fuzz(func(t *testing.T, pkt []byte, v6 bool) {
		for _, action := range []uint32{udpActionConnect, udpActionAnnounce, udpActionScrape} {
			p, err := parseUDPResponse(pkt, 7, action)
			if err != nil {
				var fe *FailureError
				if errors.As(err, &fe) && len(fe.Reason) > 3*maxTextLen {
					t.Fatalf("failure reason of %d bytes", len(fe.Reason))
				}
				continue
			}
			switch action {
			case udpActionConnect:
				parseUDPConnect(p)
			case udpActionAnnounce:
				if r, err := parseUDPAnnounce(p, v6); err == nil && len(r.Peers) > MaxPeers {
					t.Fatalf("%d peers exceeds cap", len(r.Peers))
				}
			case udpActionScrape:
				hashes := [][20]byte{{1}, {2}}
				out := map[[20]byte]ScrapeResult{}
				if parseUDPScrape(p, hashes, out) == nil && len(out) > len(hashes) {
					t.Fatal("more results than hashes")
				}
			}
		}
	})
}
