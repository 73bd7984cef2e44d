package webui

import (
	"errors"
	"path/filepath"
	"slices"

	"github.com/shoal-p2p/shoal/internal/daemon"
)

// Transmission torrent status codes.
const (
	trStopped      = 0
	trCheckWait    = 1
	trChecking     = 2
	trDownloadWait = 3
	trDownloading  = 4
	trSeedWait     = 5
	trSeeding      = 6
)

// kB is the RPC's speed unit (session-get reports "speed-bytes": 1000, as
// transmission-daemon does): speed-limit-down 100 means 100,000 bytes/s.
const kB = 1000

func trStatus(state string) int {
	switch state {
	case daemon.StateQueued:
		return trDownloadWait
	case daemon.StateChecking:
		return trChecking
	case daemon.StateDownloading, daemon.StateMetadata:
		return trDownloading
	case daemon.StateSeeding:
		return trSeeding
	}
	return trStopped
}

func (s *Server) sessionGet() map[string]any {
	st := s.cfg.Backend.Settings()
	return map[string]any{
		"version": "3.00 (shoal " + s.cfg.Version + ")", "rpc-version": 15, "rpc-version-minimum": 1,
		"download-dir": st.DownloadDir, "config-dir": s.cfg.Backend.DataDir(), "peer-port": s.cfg.PeerPort,
		"speed-limit-down": st.DownloadRate / kB, "speed-limit-down-enabled": st.DownloadRate > 0,
		"speed-limit-up": st.UploadRate / kB, "speed-limit-up-enabled": st.UploadRate > 0,
		"seedRatioLimit": st.SeedRatio, "seedRatioLimited": st.SeedRatio > 0,
		"idle-seeding-limit": st.SeedLimit / 60, "idle-seeding-limit-enabled": st.SeedLimit > 0,
		"download-queue-size": st.MaxActive, "download-queue-enabled": st.MaxActive > 0,
		"start-added-torrents": st.StartAdded, "trash-original-torrent-files": st.RemoveWatchFile,
		"dht-enabled": false, "pex-enabled": true, "lpd-enabled": false, "utp-enabled": false,
		"encryption": "tolerated", "alt-speed-enabled": false, "peer-limit-per-torrent": 60,
		"units": map[string]any{
			"speed-units": []string{"kB/s", "MB/s", "GB/s", "TB/s"}, "speed-bytes": 1000,
			"size-units": []string{"kB", "MB", "GB", "TB"}, "size-bytes": 1000,
			"memory-units": []string{"KiB", "MiB", "GiB", "TiB"}, "memory-bytes": 1024,
		},
	}
}

func (s *Server) sessionSet(a map[string]any) error {
	var bad error
	err := s.cfg.Backend.UpdateSettings(func(st *daemon.Settings) {
		if d, ok := a["download-dir"].(string); ok {
			st.DownloadDir = d
		}
		rate := func(valKey, onKey string, cur *int64) {
			v, hasV := asInt(a[valKey])
			on, hasOn := a[onKey]
			switch {
			case hasOn && !asBool(on):
				*cur = 0
			case hasV:
				*cur = v * kB
			}
		}
		rate("speed-limit-down", "speed-limit-down-enabled", &st.DownloadRate)
		rate("speed-limit-up", "speed-limit-up-enabled", &st.UploadRate)
		if v, ok := asFloat(a["seedRatioLimit"]); ok {
			st.SeedRatio = v
		}
		if on, ok := a["seedRatioLimited"]; ok && !asBool(on) {
			st.SeedRatio = 0
		}
		if v, ok := asInt(a["idle-seeding-limit"]); ok {
			st.SeedLimit = v * 60
		}
		if on, ok := a["idle-seeding-limit-enabled"]; ok && !asBool(on) {
			st.SeedLimit = 0
		}
		if v, ok := asInt(a["download-queue-size"]); ok {
			st.MaxActive = int(v)
		}
		if on, ok := a["download-queue-enabled"]; ok && !asBool(on) {
			st.MaxActive = 0
		}
		if v, ok := a["start-added-torrents"]; ok {
			st.StartAdded = asBool(v)
		}
		if st.MaxActive < 0 {
			bad = errors.New("download-queue-size must not be negative")
		}
	})
	return errors.Join(bad, err)
}

func (s *Server) torrentGet(a map[string]any) (any, error) {
	var fields []string
	if fs, ok := a["fields"].([]any); ok {
		for _, f := range fs {
			if s, ok := f.(string); ok {
				fields = append(fields, s)
			}
		}
	}
	if len(fields) > 200 {
		return nil, errors.New("too many fields")
	}
	var hashes []string
	if _, ok := a["ids"]; ok {
		var err error
		if hashes, err = s.resolveIDs(a["ids"]); err != nil {
			return nil, err
		}
	}
	needDetail := false
	for _, f := range fields {
		switch f {
		case "files", "fileStats", "wanted", "priorities", "trackers", "trackerStats", "peers", "comment", "pieces":
			needDetail = true
		}
	}
	list := s.cfg.Backend.List()
	out := []map[string]any{}
	for _, v := range list {
		if hashes != nil && !slices.Contains(hashes, v.Hash) {
			continue
		}
		var d *daemon.Detail
		if needDetail {
			if dd, err := s.cfg.Backend.Get(v.Hash); err == nil {
				d = &dd
			}
		}
		all := torrentFields(v, d)
		m := map[string]any{}
		for _, f := range fields {
			if val, ok := all[f]; ok {
				m[f] = val
			}
		}
		if len(fields) == 0 {
			m = all
		}
		out = append(out, m)
	}
	return map[string]any{"torrents": out}, nil
}

func torrentFields(v daemon.View, d *daemon.Detail) map[string]any {
	errCode, errStr := 0, ""
	if v.Error != "" {
		errCode, errStr = 3, v.Error // TR_STAT_LOCAL_ERROR
	}
	ratioMode, ratio := 0, v.SeedRatio
	if v.SeedRatio > 0 {
		ratioMode = 1
	} else if v.SeedRatio < 0 {
		ratioMode, ratio = 2, 0
	}
	idleMode, idle := 0, v.SeedLimit/60
	if v.SeedLimit > 0 {
		idleMode = 1
	} else if v.SeedLimit < 0 {
		idleMode, idle = 2, 0
	}
	meta := 0.0
	if v.HasMeta {
		meta = 1
	}
	f := map[string]any{
		"id": v.ID, "hashString": v.Hash, "name": v.Name, "status": trStatus(v.State),
		"error": errCode, "errorString": errStr, "eta": v.ETA, "isFinished": v.Finished, "isStalled": false,
		"leftUntilDone": v.Left, "sizeWhenDone": v.SizeWhenDone, "totalSize": v.Size, "percentDone": v.Progress,
		"haveValid": v.Have, "haveUnchecked": 0, "desiredAvailable": 0, "corruptEver": int64(v.HashFails) * v.PieceLength,
		"rateDownload": int64(v.DownRate), "rateUpload": int64(v.UpRate),
		"peersConnected": v.Peers, "peersGettingFromUs": v.Peers, "peersSendingToUs": v.Seeds, "webseedsSendingToUs": 0,
		"uploadRatio": v.Ratio, "uploadedEver": v.Uploaded, "downloadedEver": v.Downloaded,
		"downloadDir": v.Dir, "addedDate": v.Added.Unix(), "doneDate": unixOrZero(v.Completed),
		"activityDate": 0, "startDate": 0, "dateCreated": 0, "creator": "", "isPrivate": v.Private,
		"seedRatioLimit": ratio, "seedRatioMode": ratioMode, "seedIdleLimit": idle, "seedIdleMode": idleMode,
		"downloadLimit": v.DownLimit / kB, "downloadLimited": v.DownLimit > 0,
		"uploadLimit": v.UpLimit / kB, "uploadLimited": v.UpLimit > 0, "honorsSessionLimits": true,
		"bandwidthPriority": 0, "queuePosition": v.ID, "recheckProgress": v.Verify,
		"metadataPercentComplete": meta, "magnetLink": v.Magnet, "pieceCount": v.NumPieces, "pieceSize": v.PieceLength,
		"secondsSeeding": v.SeedTime, "secondsDownloading": 0, "peer-limit": 60, "manualAnnounceTime": -1,
		"comment": "",
	}
	if d != nil {
		files, stats := []map[string]any{}, []map[string]any{}
		wanted, prio := []int{}, []int{}
		for _, fv := range d.Files {
			files = append(files, map[string]any{"name": filepath.ToSlash(filepath.Join(d.Name, fv.Path)), "length": fv.Length, "bytesCompleted": fv.Have})
			stats = append(stats, map[string]any{"bytesCompleted": fv.Have, "wanted": fv.Wanted, "priority": fv.Priority})
			w := 0
			if fv.Wanted {
				w = 1
			}
			wanted = append(wanted, w)
			prio = append(prio, fv.Priority)
		}
		trackers := []map[string]any{}
		for i, t := range d.Trackers {
			trackers = append(trackers, map[string]any{"announce": t, "id": i, "tier": i, "scrape": ""})
		}
		f["trackerStats"] = trackerStats(d.Trackers, v.Tracker)
		peers := []map[string]any{}
		for _, p := range d.PeerList {
			flags := ""
			if !p.PeerChoking && p.AmInterested {
				flags += "D"
			}
			if !p.AmChoking && p.PeerInterested {
				flags += "U"
			}
			if p.Optimistic {
				flags += "O"
			}
			if !p.Outbound {
				flags += "I"
			}
			peers = append(peers, map[string]any{
				"address": p.Addr.Addr().String(), "port": p.Addr.Port(), "clientName": p.Client,
				"flagStr": flags, "rateToClient": int64(p.DownRate), "rateToPeer": int64(p.UpRate),
				"progress": progressOf(p.Pieces, v.NumPieces), "isDownloadingFrom": !p.PeerChoking && p.AmInterested,
				"isUploadingTo": !p.AmChoking && p.PeerInterested, "clientIsChoked": p.AmChoking, "peerIsChoked": p.PeerChoking,
				"clientIsInterested": p.AmInterested, "peerIsInterested": p.PeerInterested, "isIncoming": !p.Outbound,
				"isEncrypted": false, "isUTP": false,
			})
		}
		f["files"], f["fileStats"], f["wanted"], f["priorities"] = files, stats, wanted, prio
		f["trackers"], f["peers"], f["comment"] = trackers, peers, d.Comment
	}
	return f
}

func progressOf(have, total int) float64 {
	if total == 0 {
		return 0
	}
	return float64(have) / float64(total)
}

func unixOrZero(t interface{ Unix() int64 }) int64 {
	if u := t.Unix(); u > 0 {
		return u
	}
	return 0
}
