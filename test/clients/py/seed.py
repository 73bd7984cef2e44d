#!/usr/bin/python3
"""libtorrent seeder: seed.py --port P --dir DATA_PARENT [--dht 127.0.0.1:A,127.0.0.1:B]
                                [--ready FILE] [--max-seconds N] [--upload-limit BYTES_PER_S]
                                [--setting NAME=VALUE]... TORRENT...
Seeds until SIGTERM/SIGINT or --max-seconds (default 3600). Prints READY (and
touches --ready FILE) when every torrent is checked and seeding."""
import argparse
import time

import libtorrent as lt
from ltcommon import TCP_ONLY, dht_kick, add, drain, install_signal_exit, log, session

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--dir", required=True)
p.add_argument("--dht", default="")
p.add_argument("--ready")
p.add_argument("--max-seconds", type=float, default=3600)
p.add_argument("--verbose", action="store_true")
p.add_argument("--upload-limit", type=int, default=0, help="bytes/s, 0 = unlimited")
p.add_argument("--no-utp", action="store_true",
               help="TCP only (benchmarks: libtorrent's uTP runs at ~10 MB/s on loopback)")
p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
               help="extra libtorrent settings_pack entry, e.g. dht_sample_infohashes_interval=0 (repeatable)")
p.add_argument("torrents", nargs="+")
a = p.parse_args()

install_signal_exit()
extra = {}
if a.upload_limit:
    extra["upload_rate_limit"] = a.upload_limit
if a.no_utp:
    extra.update(TCP_ONLY)
for kv in a.setting:
    k, v = kv.split("=", 1)
    if v.lower() in ("true", "false"):
        extra[k] = v.lower() == "true"
    else:
        try:
            extra[k] = int(v)
        except ValueError:
            extra[k] = v
ses = session(a.port, a.dht, extra or None)
hs = [add(ses, t, a.dir) for t in a.torrents]
end = time.time() + a.max_seconds
ready = False
last = 0
last_dht = 0
t_ready = 0
try:
    while time.time() < end:
        drain(ses, a.verbose)
        st = [h.status() for h in hs]
        if not ready and all(s.is_seeding for s in st):
            ready = True
            if a.dht:
                for h in hs:
                    h.force_dht_announce()
            t_ready = time.time()
            log("READY", " ".join(str(h.info_hashes().v1) for h in hs))
            if a.ready:
                open(a.ready, "w").write("ready\n")
        # keep (re)announcing to the loopback DHT while it is still bootstrapping
        if ready and a.dht and int(time.time() - t_ready) % 5 == 0 and time.time() - t_ready < 60 \
                and time.time() - last_dht >= 1:
            last_dht = time.time()
            dht_kick(ses, a.dht)
            for h in hs:
                h.force_dht_announce()
        if time.time() - last > 10:
            last = time.time()
            for s in st:
                log("seed", s.name, str(s.state), "peers=%d up=%.1fMB" % (s.num_peers, s.total_upload / 1e6),
                    ("dht_nodes=%d" % ses.status().dht_nodes) if a.dht else "")
        time.sleep(0.2)
except KeyboardInterrupt:
    pass
log("seed.py exiting")
