#!/usr/bin/python3
"""mktorrent_lt.py --tracker URL --piece-kib N PATH OUT: v1 torrent made by libtorrent."""
import argparse
import os

import libtorrent as lt

p = argparse.ArgumentParser()
p.add_argument("--tracker", required=True)
p.add_argument("--piece-kib", type=int, default=256)
p.add_argument("path")
p.add_argument("out")
a = p.parse_args()
path = os.path.abspath(a.path)
fs = lt.file_storage()
lt.add_files(fs, path)
t = lt.create_torrent(fs, a.piece_kib * 1024, flags=lt.create_torrent.v1_only)
t.add_tracker(a.tracker)
lt.set_piece_hashes(t, os.path.dirname(path))
open(a.out, "wb").write(lt.bencode(t.generate()))
