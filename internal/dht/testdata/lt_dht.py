#!/usr/bin/python3
"""libtorrent DHT sessions on loopback for shoal's DHT interop test.

lt_dht.py --ports P1,P2 --dht 127.0.0.1:A,... [--max-seconds N]

Starts one libtorrent session per port, with the DHT bootstrapped ONLY from
the given loopback nodes and the other sessions (added with add_dht_node, as
libtorrent never routes through "router" nodes). Reads commands on stdin:
  announce I HEX        session I announces info-hash HEX (its listen port)
  get_peers I HEX       session I looks HEX up; replies print as
                        "peers HEX ip:port ..."
  kick                  re-add all DHT nodes to every session
"""
import argparse
import select
import shutil
import sys
import tempfile
import time

import libtorrent as lt


def session(port):
    s = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "listen_system_port_fallback": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False,
        "dht_prefer_verified_node_ids": False,
        "alert_mask": lt.alert_category.error | lt.alert_category.dht
        | lt.alert_category.dht_operation,
    }
    return lt.session(s)


def out(*a):
    print(*a, flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ports", required=True)
    p.add_argument("--dht", required=True)
    p.add_argument("--max-seconds", type=float, default=120)
    a = p.parse_args()
    ports = [int(x) for x in a.ports.split(",")]
    nodes = [("127.0.0.1", port) for port in ports]
    for hp in a.dht.split(","):
        host, port = hp.rsplit(":", 1)
        nodes.append((host, int(port)))
    sessions = [session(port) for port in ports]

    def kick():
        for i, s in enumerate(sessions):
            for n in nodes:
                if n != ("127.0.0.1", ports[i]):
                    s.add_dht_node(n)

    handles = {}
    dirs = []

    def announce(s, ih):
        # python bindings do not expose dht_announce's flags: add a magnet
        # for the hash instead, which announces the session's listen port
        if (id(s), ih) not in handles:
            atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + ih)
            atp.save_path = tempfile.mkdtemp(prefix="lt_dht_")
            dirs.append(atp.save_path)
            atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
            handles[(id(s), ih)] = s.add_torrent(atp)
        handles[(id(s), ih)].force_dht_announce()

    kick()
    out("ready")
    end = time.time() + a.max_seconds
    while time.time() < end:
        r, _, _ = select.select([sys.stdin], [], [], 0.1)
        if r:
            line = sys.stdin.readline()
            if not line:
                break
            f = line.split()
            if f and f[0] == "announce":
                announce(sessions[int(f[1])], f[2])
            elif f and f[0] == "get_peers":
                sessions[int(f[1])].dht_get_peers(lt.sha1_hash(bytes.fromhex(f[2])))
            elif f and f[0] == "kick":
                kick()
        for s in sessions:
            for al in s.pop_alerts():
                if isinstance(al, lt.dht_get_peers_reply_alert):
                    peers = ["%s:%d" % (ip, port) for ip, port in al.peers()]
                    out("peers", str(al.info_hash), *peers)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
