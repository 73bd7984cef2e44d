#!/usr/bin/python3
"""Unmodified libtorrent downloader for the NAT lab:
lt_get.py --ip IP --port P --out DIR --timeout S TORRENT
Listens on IP:P only, TCP only, no DHT/LSD/UPnP/NAT-PMP: peers come from the
torrent's tracker. Exits 0 once the download is complete and verified."""
import argparse
import sys
import time

import libtorrent as lt

p = argparse.ArgumentParser()
p.add_argument("--ip", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--out", required=True)
p.add_argument("--timeout", type=float, default=120)
p.add_argument("torrent")
a = p.parse_args()

ses = lt.session({
    "listen_interfaces": "%s:%d" % (a.ip, a.port),
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
    | lt.alert.category_t.tracker_notification | lt.alert.category_t.peer_notification,
})
h = ses.add_torrent({"ti": lt.torrent_info(a.torrent), "save_path": a.out})
t0 = time.time()
last = 0
while time.time() - t0 < a.timeout:
    for al in ses.pop_alerts():
        print("alert:", al.message(), flush=True)
    s = h.status()
    if s.is_seeding:
        print("DONE %.2fs" % (time.time() - t0), flush=True)
        sys.exit(0)
    if time.time() - last > 2:
        last = time.time()
        print("progress %.1f%% peers=%d %.2f MB/s" % (s.progress * 100, s.num_peers, s.download_rate / 1e6), flush=True)
        for pi in h.get_peer_info():
            print("  peer", pi.ip, flush=True)
    time.sleep(0.1)
print("TIMEOUT", flush=True)
sys.exit(1)
