#!/usr/bin/python3
"""ltinfo.py TORRENT: load it with libtorrent (lt.torrent_info) and print JSON:
{"info_hash": v1 hex, "name", "total_size", "num_files", "num_pieces", "private"}.
Exits non-zero (with libtorrent's error) if libtorrent rejects the file."""
import json
import sys

import libtorrent as lt

ti = lt.torrent_info(sys.argv[1])
print(json.dumps({
    "info_hash": str(ti.info_hashes().v1),
    "name": ti.name(),
    "total_size": ti.total_size(),
    "num_files": ti.num_files(),
    "num_pieces": ti.num_pieces(),
    "private": bool(ti.priv()),
}))
