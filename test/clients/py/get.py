#!/usr/bin/python3
"""libtorrent leecher: get.py --port P --out DIR [--dht NODES] [--timeout S] [--peer HOST:PORT]... TORRENT_OR_MAGNET
Exits 0 as soon as the download is complete (data verified by libtorrent), 1 on timeout."""
import argparse
import time

import libtorrent as lt
from ltcommon import TCP_ONLY, dht_kick, add, drain, install_signal_exit, log, session

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--out", required=True)
p.add_argument("--dht", default="")
p.add_argument("--timeout", type=float, default=600)
p.add_argument("--verbose", action="store_true")
p.add_argument("--download-limit", type=int, default=0, help="bytes/s, 0 = unlimited")
p.add_argument("--peer", action="append", default=[], help="HOST:PORT to connect to (repeatable)")
p.add_argument("--no-utp", action="store_true",
               help="TCP only (benchmarks: libtorrent prefers uTP for outgoing connections, ~10 MB/s on loopback)")
p.add_argument("--poll", type=float, default=0.1, help="seconds between status polls (benchmarks use 0.02)")
p.add_argument("src")
a = p.parse_args()

install_signal_exit()
t0 = time.time()
extra = {}
if a.download_limit:
    extra["download_rate_limit"] = a.download_limit
if a.no_utp:
    extra.update(TCP_ONLY)
ses = session(a.port, a.dht, extra or None)
h = add(ses, a.src, a.out)
for hp in a.peer:
    host, port = hp.rsplit(":", 1)
    h.connect_peer((host, int(port)))
rc = 1
meta_logged = False
last = 0
try:
    while time.time() - t0 < a.timeout:
        drain(ses, a.verbose)
        s = h.status()
        if not meta_logged and s.has_metadata:
            meta_logged = True
            log("metadata %.2fs" % (time.time() - t0), s.name)
        if s.has_metadata and s.is_seeding:
            log("DONE %.2fs %s" % (time.time() - t0, s.name))
            rc = 0
            break
        if time.time() - last > 5:
            last = time.time()
            if a.dht and ses.status().dht_nodes < 2:
                dht_kick(ses, a.dht)
            log("get", str(s.state), "%.1f%% peers=%d %.1fMB/s" % (s.progress * 100, s.num_peers, s.download_rate / 1e6),
                ("dht_nodes=%d" % ses.status().dht_nodes) if a.dht else "")
        time.sleep(a.poll)
except KeyboardInterrupt:
    pass
if rc:
    log("TIMEOUT/ABORT after %.1fs" % (time.time() - t0))
ses.remove_torrent(h)   # closes files; session destructor sends tracker 'stopped'
del ses
raise SystemExit(rc)
