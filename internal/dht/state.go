package dht

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
)

// maxStateSize bounds the state file read at start; maxStateNodes the nodes
// taken from it.
const (
	maxStateSize  = 1 << 20
	maxStateNodes = 2000
)

// state is what survives a restart: our id, our external IP if learned,
// and the routing table's nodes.
type state struct {
	id         ID
	externalIP netip.Addr
	nodes      []NodeInfo
}

type stateJSON struct {
	ID         string      `json:"id"`
	ExternalIP string      `json:"external_ip,omitempty"`
	Nodes      []stateNode `json:"nodes"`
}

type stateNode struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// loadState reads the state file; a missing file (or name "") is no state.
func loadState(name string) (*state, error) {
	if name == "" {
		return nil, nil
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dht: state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("dht: state %s: %w", name, err)
	}
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("dht: state %s is larger than %d bytes", name, maxStateSize)
	}
	var sj stateJSON
	if err := json.Unmarshal(b, &sj); err != nil {
		return nil, fmt.Errorf("dht: state %s: %w", name, err)
	}
	st := &state{}
	if err := parseHexID(sj.ID, &st.id); err != nil {
		return nil, fmt.Errorf("dht: state %s: id: %w", name, err)
	}
	if sj.ExternalIP != "" {
		st.externalIP, _ = netip.ParseAddr(sj.ExternalIP)
	}
	for _, n := range sj.Nodes {
		if len(st.nodes) == maxStateNodes {
			break
		}
		var ni NodeInfo
		a, err := netip.ParseAddrPort(n.Addr)
		if err != nil || parseHexID(n.ID, (*ID)(&ni.ID)) != nil {
			continue
		}
		ni.Addr = a
		st.nodes = append(st.nodes, ni)
	}
	return st, nil
}

func parseHexID(s string, id *ID) error {
	b, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	if len(b) != 20 {
		return fmt.Errorf("%d bytes, want 20", len(b))
	}
	copy(id[:], b)
	return nil
}

// saveState writes the state atomically (temporary file, then rename).
func saveState(name string, st *state) error {
	if name == "" {
		return nil
	}
	sj := stateJSON{ID: hex.EncodeToString(st.id[:]), Nodes: []stateNode{}}
	if st.externalIP.IsValid() {
		sj.ExternalIP = st.externalIP.String()
	}
	for _, n := range st.nodes {
		sj.Nodes = append(sj.Nodes, stateNode{ID: hex.EncodeToString(n.ID[:]), Addr: n.Addr.String()})
	}
	b, err := json.MarshalIndent(sj, "", " ")
	if err != nil {
		return fmt.Errorf("dht: state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".dht-state-*")
	if err != nil {
		return fmt.Errorf("dht: save state: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("dht: save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("dht: save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("dht: save state: %w", err)
	}
	return nil
}
