"""Shared libtorrent (python3-libtorrent 2.0) session setup for the interop harness.

Everything is pinned to loopback: listen on 127.0.0.1 only, no LSD/UPnP/NAT-PMP,
and DHT either off or bootstrapped ONLY from the loopback nodes given by the caller.
The settings dict is passed to the session constructor, so nothing (e.g. the
default DHT bootstrap to dht.libtorrent.org) starts before it is applied.
Run with /usr/bin/python3 (the Debian python that has the libtorrent module).
"""
import os
import signal
import sys
import time

import libtorrent as lt


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# Benchmarks pass these: libtorrent 2.0 dials outgoing connections over uTP
# first, and uTP between two libtorrents on loopback runs at about 10 MB/s
# (128 MiB took 13 s) against 100-300 MB/s over TCP.
TCP_ONLY = {"enable_outgoing_utp": False, "enable_incoming_utp": False}


def session(port, dht_nodes="", extra=None):
    s = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "listen_system_port_fallback": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_dht": bool(dht_nodes),
        # default is dht.libtorrent.org:25401.  Do NOT list the loopback nodes here:
        # libtorrent never puts "router" (bootstrap) nodes into its routing table, so
        # a DHT made only of routers stays empty.  They are added with add_dht_node().
        "dht_bootstrap_nodes": "",
        # loopback swarms: every peer has IP 127.0.0.1
        "allow_multiple_connections_per_ip": True,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False,
        "dht_prefer_verified_node_ids": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "user_agent": "interop-libtorrent/" + lt.__version__,
        "alert_mask": lt.alert_category.error | lt.alert_category.status
        | lt.alert_category.tracker | lt.alert_category.storage
        | (lt.alert_category.dht if dht_nodes else 0),
    }
    if extra:
        s.update(extra)
    ses = lt.session(s)
    if extra and (extra.get("upload_rate_limit") or extra.get("download_rate_limit")):
        # loopback peers are in libtorrent's unlimited "local" peer class by
        # default: put every address in the global class so the limits apply
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)
    if dht_nodes:
        dht_kick(ses, dht_nodes)
    return ses


def dht_kick(ses, dht_nodes):
    """(Re)add the loopback DHT nodes as ordinary nodes (pinged, then routed)."""
    for hp in dht_nodes.split(","):
        host, port = hp.strip().rsplit(":", 1)
        ses.add_dht_node((host, int(port)))


def install_signal_exit():
    def _h(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _h)
    signal.signal(signal.SIGINT, _h)


def add(ses, src, save_path, flags=None):
    """src: path to .torrent or a magnet URI."""
    if src.startswith("magnet:"):
        atp = lt.parse_magnet_uri(src)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(src)
    atp.save_path = save_path
    # not auto-managed: never queued, always active
    atp.flags = (atp.flags | (flags or 0)) & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    return ses.add_torrent(atp)


def drain(ses, verbose=False):
    for a in ses.pop_alerts():
        if verbose or isinstance(a, (lt.torrent_error_alert, lt.file_error_alert,
                                     lt.tracker_error_alert, lt.listen_failed_alert)):
            log("alert:", type(a).__name__, a.message())
