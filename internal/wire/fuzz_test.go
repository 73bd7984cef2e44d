package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzReader: any input either fails cleanly or yields messages that
// re-encode to bytes the Reader decodes to the same messages.
func FuzzReader(f *testing.F) {
	for _, tc := range messageCases {
		f.Add(tc.wire)
	}
	f.Add(append(be32(0xffffffff), 1, 2, 3))
	f.Add(hexb(be32(5), []byte{4}, be32(1), be32(0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 4096)
		for i := 0; i < 1000; i++ {
			m, err := r.Read()
			if err != nil {
				return
			}
			enc := AppendMessage(nil, m)
			m2, err := NewReader(bytes.NewReader(enc), 4096).Read()
			if err != nil {
				t.Fatalf("re-read of %+v: %v", m, err)
			}
			if !equalMessage(m, m2) {
				t.Fatalf("round trip %+v != %+v", m, m2)
			}
		}
	})
}

// FuzzExtHandshake: parsing never panics, and a parsed handshake survives
// Marshal and a second parse unchanged.
func FuzzExtHandshake(f *testing.F) {
	f.Add([]byte(libtorrentLike))
	f.Add([]byte("d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei100e1:pi51413e4:reqqi250e1:v9:shoal/0.1e"))
	f.Add([]byte("d1:md1:ai-1eee"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseExtHandshake(data)
		if err != nil {
			return
		}
		h2, err := ParseExtHandshake(h.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip %+v != %+v", h, h2)
		}
	})
}

// FuzzMetadataMsg: valid messages round-trip byte for byte through Append.
func FuzzMetadataMsg(f *testing.F) {
	f.Add([]byte("d8:msg_typei0e5:piecei0ee"))
	f.Add([]byte("d8:msg_typei2e5:piecei3ee"))
	f.Add([]byte("d8:msg_typei1e5:piecei1e10:total_sizei16389eehello"))
	f.Add([]byte("d5:piecei2e8:msg_typei1e10:total_sizei3eeabc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadataMsg(data)
		if err != nil {
			return
		}
		enc := AppendMetadataMsg(nil, m)
		m2, err := ParseMetadataMsg(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip %+v != %+v", m, m2)
		}
	})
}

// FuzzPex: after one normalisation (family split, truncation, unmapping),
// Marshal and ParsePex are inverse.
func FuzzPex(f *testing.F) {
	f.Add([]byte("d5:added6:\x01\x02\x03\x04\x00\x057:added.f1:\x027:dropped0:e"))
	f.Add([]byte("d6:added618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04\x00\x058:added6.f0:e"))
	f.Add((PexMsg{}).Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParsePex(data)
		if err != nil {
			return
		}
		if len(m.Added) > MaxPexPeers || len(m.Dropped) > MaxPexPeers || len(m.AddedFlags) != len(m.Added) {
			t.Fatalf("caps violated: %d added, %d flags, %d dropped", len(m.Added), len(m.AddedFlags), len(m.Dropped))
		}
		b1 := m.Marshal()
		m2, err := ParsePex(b1)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(m2.Added) != len(m.Added) || len(m2.Dropped) != len(m.Dropped) {
			t.Fatalf("peer count changed: %+v -> %+v", m, m2)
		}
		if b2 := m2.Marshal(); !bytes.Equal(b1, b2) {
			t.Fatalf("not a fixed point:\n%q\n%q", b1, b2)
		}
	})
}

// FuzzCompactPeers: parse never panics, respects the cap, and entries
// re-encode to the input (IPv4-mapped entries of a v6 list re-encode as 6
// bytes, so those are compared by address).
func FuzzCompactPeers(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 0x1a, 0xe1}, false, 0)
	f.Add(append(make([]byte, 10), 0xff, 0xff, 1, 2, 3, 4, 0, 1), true, 3)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool, max int) {
		max %= 1000
		peers, err := ParseCompactPeers(data, v6, max)
		if err != nil {
			return
		}
		size := CompactPeerLen4
		if v6 {
			size = CompactPeerLen6
		}
		if max > 0 && len(peers) > max || len(peers) > len(data)/size {
			t.Fatalf("%d peers from %d bytes, max %d", len(peers), len(data), max)
		}
		for i, ap := range peers {
			enc := AppendCompactPeer(nil, ap)
			back, err := ParseCompactPeers(enc, len(enc) == CompactPeerLen6, 1)
			if err != nil || len(back) != 1 || back[0] != ap {
				t.Fatalf("peer %d %v: re-parse %v %v", i, ap, back, err)
			}
			if len(enc) == size && !bytes.Equal(enc, data[i*size:(i+1)*size]) {
				t.Fatalf("peer %d: % x != % x", i, enc, data[i*size:(i+1)*size])
			}
		}
	})
}
