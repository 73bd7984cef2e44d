package clients

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// WriteTransmissionSettings writes cfgDir/settings.json for a
// transmission-daemon that stays off the public network: peers on bindIPv4
// only (a loopback or lab address) over TCP, no DHT, LPD, PEX, UPnP/NAT-PMP
// or uTP, RPC on 127.0.0.1:rpcPort without authentication, no limits or
// queues. extra adds or overrides keys.
func WriteTransmissionSettings(t testing.TB, cfgDir, bindIPv4, downloadDir string, peerPort, rpcPort int, extra map[string]any) {
	t.Helper()
	s := map[string]any{
		"bind-address-ipv4":           bindIPv4,
		"bind-address-ipv6":           "::1",
		"blocklist-enabled":           false,
		"blocklist-url":               "",
		"cache-size-mb":               16,
		"dht-enabled":                 false,
		"download-dir":                downloadDir,
		"download-queue-enabled":      false,
		"encryption":                  1, // preferred (its default): MSE first, then plaintext
		"idle-seeding-limit-enabled":  false,
		"incomplete-dir-enabled":      false,
		"lpd-enabled":                 false,
		"message-level":               2,
		"peer-limit-global":           200,
		"peer-limit-per-torrent":      60,
		"peer-port":                   peerPort,
		"peer-port-random-on-start":   false,
		"pex-enabled":                 false,
		"port-forwarding-enabled":     false,
		"queue-stalled-enabled":       false,
		"ratio-limit-enabled":         false,
		"rename-partial-files":        false,
		"rpc-authentication-required": false,
		"rpc-bind-address":            "127.0.0.1",
		"rpc-enabled":                 true,
		"rpc-host-whitelist-enabled":  false,
		"rpc-port":                    rpcPort,
		"rpc-whitelist":               "127.0.0.1",
		"rpc-whitelist-enabled":       true,
		"script-torrent-done-enabled": false,
		"seed-queue-enabled":          false,
		"speed-limit-down-enabled":    false,
		"speed-limit-up-enabled":      false,
		"start-added-torrents":        true,
		"umask":                       18,
		"utp-enabled":                 false,
		"watch-dir-enabled":           false,
	}
	maps.Copy(s, extra)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "settings.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
