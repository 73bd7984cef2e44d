"""shoal lab: one python3-libtorrent host of the lab swarm.

lt_peer.py --listen IP:PORT --torrent X.torrent --save DIR [--seed]

Seeder (--seed): checks the data in DIR, prints READY once it seeds, then
serves until SIGTERM/SIGINT. Leecher: starts the session, prints READY, waits
for end-of-file on stdin (the lab's common go signal), adds the torrent,
polls is_seeding every 20 ms, prints DONE when every piece is downloaded and
hash-verified, and keeps seeding until terminated.
Discovery is the torrent's tracker only: DHT, LSD, UPnP and NAT-PMP are off,
TCP only (uTP off), no rate limits, listening on the host's lab address.
Run with /usr/bin/python3 (Debian python3-libtorrent).
"""
import argparse
import signal
import sys
import time

import libtorrent as lt


def out(*a):
    print(*a, flush=True)


class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--torrent", required=True)
    p.add_argument("--save", required=True)
    p.add_argument("--seed", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ses = lt.session({
        "listen_interfaces": a.listen,
        "listen_system_port_fallback": False,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "upload_rate_limit": 0,
        "download_rate_limit": 0,
        "aio_threads": 2,
        "user_agent": "shoal-lab-libtorrent/" + lt.__version__,
        "alert_mask": lt.alert_category.error | lt.alert_category.status | lt.alert_category.tracker,
    })
    ti = lt.torrent_info(a.torrent)

    def add():
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = a.save
        atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
        return ses.add_torrent(atp)

    def drain():
        for al in ses.pop_alerts():
            if isinstance(al, (lt.torrent_error_alert, lt.file_error_alert,
                               lt.tracker_error_alert, lt.listen_failed_alert)):
                out("alert:", type(al).__name__, al.message())

    t0 = time.time()
    try:
        if a.seed:
            h = add()
            while not h.status().is_seeding:
                if time.time() - t0 > a.timeout:
                    out("TIMEOUT checking")
                    return 1
                drain()
                time.sleep(0.05)
            out("READY")
        else:
            out("READY")
            sys.stdin.read()  # the go signal: the lab closes the pipe
            h = add()
            while not h.status().is_seeding:
                if time.time() - t0 > a.timeout:
                    out("TIMEOUT")
                    return 1
                time.sleep(0.02)
            out("DONE %.6f" % time.time())
        last = 0.0
        while True:
            drain()
            if time.time() - last > 5:
                last = time.time()
                s = h.status()
                out("up %d peers %d" % (s.total_payload_upload, s.num_peers))
            time.sleep(0.5)
    except Stop:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
