"""Sequential put throughput of 1 MiB objects, for LocalDiskStorage and S3Storage.

Run from the repository root:

    .venv/bin/python bench/storage_put.py     # local disk in a temp dir + an in-process moto server
    .venv/bin/python bench/storage_put.py --count 200 --root /var/lib/hazard/objects-bench
    .venv/bin/python bench/storage_put.py --s3-endpoint 127.0.0.1:9000 --access-key minio \\
        --secret-key minio123 --bucket bench          # a real MinIO instead of moto

Local puts include the full durability path (fsync of the file and of its directory), so the figure mostly
measures the disk's fsync latency. The moto figure measures the client stack (minio + urllib3 + thread hop)
against an in-process Python server sharing the GIL, not what a real MinIO or S3 would sustain.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.storage import LocalDiskStorage, ObjectStorage, S3Storage, UrlSigner

MIB = 1024 * 1024


async def measure(name: str, storage: ObjectStorage, count: int) -> None:
    data = os.urandom(MIB)
    await storage.put("bench/warmup", data, "image/jpeg")  # first connection, directory creation
    started = time.perf_counter()
    for i in range(count):
        await storage.put(f"bench/{i:06d}.jpg", data, "image/jpeg")
    elapsed = time.perf_counter() - started
    print(f"{name:>6}: {count} x 1 MiB in {elapsed:.2f} s = {count / elapsed:.1f} objects/s")
    for i in range(count):
        await storage.delete(f"bench/{i:06d}.jpg")
    await storage.delete("bench/warmup")


async def run_s3(args: argparse.Namespace) -> None:
    if args.s3_endpoint:
        storage = S3Storage(args.s3_endpoint, args.access_key, args.secret_key, args.bucket, secure=False)
        await storage.ensure_bucket()
        await measure("s3", storage, args.count)
        return
    from moto.server import ThreadedMotoServer  # dev dependency, only needed without --s3-endpoint

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per PUT otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        storage = S3Storage(f"{host}:{port}", "bench", "bench", "bench", secure=False)
        await storage.ensure_bucket()
        await measure("moto", storage, args.count)
    finally:
        server.stop()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        signer = UrlSigner(b"bench-secret-0123456789", "http://localhost")
        await measure("local", LocalDiskStorage(Path(tmp), signer), args.count)
    await run_s3(args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--root", help="directory on the disk to measure (default: system temp dir)")
    parser.add_argument("--s3-endpoint", help="host:port of a real S3/MinIO (default: in-process moto)")
    parser.add_argument("--access-key", default="minioadmin")
    parser.add_argument("--secret-key", default="minioadmin")
    parser.add_argument("--bucket", default="bench")
    anyio.run(main, parser.parse_args())
