"""Archive indexing on a Ray cluster: tracking quality of chunks, and throughput with 1 and 2 workers.

Starts a real local Ray cluster (tests/ray_cluster.py: a head node, then a
second node; one CPU each), and runs the real CLI against it:

(a) PETS09 (../shared/data/pets09/vtest.avi, 79.5 s) indexed whole with
    ``camsight index`` and in 4 chunks with ``camsight index --cluster ADDRESS
    --chunk-seconds 20``, both at ``--fps native`` as in bench/mot_eval.py; MOTA
    and IDF1 of each against gt_dev.txt (frames 1-400, so the cuts at 20 s and
    40 s are both scored). Target: within 0.02.
(b) the same file at ``--fps 5`` in 8 chunks of 10 s, with 1 worker (the head
    alone) and then 2 (a second node joined), each into a fresh data folder: the
    speed-up as a ratio of wall-clock times in one run, and the per-chunk
    overhead: worker time not spent analysing, i.e. (workers x job time - sum of
    analysis) / chunks, split into its parts (start-up of a worker and its
    imports, model loading, returning the result, stitching and storing).

    python bench/cluster_eval.py [--skip-mot] [--skip-throughput]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import GT, VTEST, camsight, require_shared
from mot_eval import score
from ray_cluster import RayCluster


def index(data: Path, *args: str) -> tuple[dict, float]:
    """Run `camsight index` on vtest.avi; its JSON result and the command's wall-clock seconds."""
    t0 = time.perf_counter()
    proc = camsight(
        "index", str(VTEST), "--camera", "pets", "--data", str(data), "--json", *args, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"camsight index failed:\n{proc.stderr}")
    return json.loads(proc.stdout)[0], wall


def mot(data: Path, out: Path) -> dict[str, float]:
    camsight("export-mot", "--camera", "pets", "--data", str(data), str(out))
    return score(GT, out)


def overhead(result: dict, workers: int) -> dict[str, float]:
    runs = result["runs"]
    chunks = len(runs)
    job = result["wall_seconds"]
    analysis = sum(r["analysis_seconds"] for r in runs)
    first = {}
    for r in sorted(runs, key=lambda r: r["began_at"]):
        first.setdefault(r["worker"], r)
    return {
        "chunks": chunks,
        "job_s": job,
        "analysis_s_per_chunk": analysis / chunks,
        "overhead_s_per_chunk": (workers * job - analysis) / chunks,
        "worker_start_s": mean(r["began_at"] - r["submitted_at"] for r in first.values()),
        "model_load_s_per_chunk": sum(r["load_seconds"] for r in runs) / chunks,
        "return_s_per_chunk": mean(r["received_at"] - r["ended_at"] for r in runs),
        "stitch_store_s_per_chunk": result["stitch_seconds"] / chunks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mot", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    require_shared()
    tmp = Path(tempfile.mkdtemp(prefix="ce", dir="/tmp"))
    cluster = RayCluster(tmp / "r")
    try:
        cluster.start_head(num_cpus=1)
        if not args.skip_throughput:
            one, one_wall = index(
                tmp / "t1", "--fps", "5", "--cluster", cluster.address, "--chunk-seconds", "10"
            )
        cluster.add_node(num_cpus=1)
        if not args.skip_throughput:
            two, two_wall = index(
                tmp / "t2", "--fps", "5", "--cluster", cluster.address, "--chunk-seconds", "10"
            )
            print("(b) throughput, vtest.avi at --fps 5 in 10 s chunks")
            for name, result, wall, workers in (
                ("1 worker", one, one_wall, 1),
                ("2 workers", two, two_wall, 2),
            ):
                o = overhead(result, workers)
                print(
                    f"  {name:9}: job {o['job_s']:.1f} s (command {wall:.1f} s), {o['chunks']} chunks, "
                    f"speed {result['video_seconds'] / o['job_s']:.2f}x real time; per chunk: analysis "
                    f"{o['analysis_s_per_chunk']:.2f} s, overhead {o['overhead_s_per_chunk']:.2f} s "
                    f"(worker start-up {o['worker_start_s']:.2f} s once per worker, model load "
                    f"{o['model_load_s_per_chunk']:.2f} s, result return {o['return_s_per_chunk']:.3f} s, "
                    f"stitch+store {o['stitch_store_s_per_chunk']:.3f} s)"
                )
            print(
                f"  speed-up 2 workers / 1 worker: {one['wall_seconds'] / two['wall_seconds']:.2f}x "
                f"(command wall: {one_wall / two_wall:.2f}x)"
            )
        if not args.skip_mot:
            whole, _ = index(tmp / "whole", "--fps", "native")
            chunked, _ = index(
                tmp / "chunked", "--fps", "native", "--cluster", cluster.address, "--chunk-seconds", "20"
            )
            m_whole = mot(tmp / "whole", tmp / "whole.txt")
            m_chunked = mot(tmp / "chunked", tmp / "chunked.txt")
            print("(a) PETS09 frames 1-400 at --fps native: MOTA, IDF1, ID switches")
            print(
                f"  whole        : {m_whole['mota']:.3f} {m_whole['idf1']:.3f} {int(m_whole['num_switches'])}"
            )
            print(
                f"  {chunked['chunks']} chunks (Ray): {m_chunked['mota']:.3f} {m_chunked['idf1']:.3f} "
                f"{int(m_chunked['num_switches'])}  ({chunked['stitched']} tracks joined across cuts)"
            )
            print(
                f"  difference   : MOTA {m_chunked['mota'] - m_whole['mota']:+.3f}, "
                f"IDF1 {m_chunked['idf1'] - m_whole['idf1']:+.3f} (target: within 0.02); tracks "
                f"{whole['tracks']} whole, {chunked['tracks']} chunked"
            )
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
