"""Time the full recluster's linkage (neighbour graph + average linkage) on N synthetic
face-like descriptors, with the exact graph and with the inverted-file one.

    .venv/bin/python scripts/recluster_scale.py 200000 --graph exact
    .venv/bin/python scripts/recluster_scale.py 200000 --graph approximate

Prints a JSON line once the graph is built (faces, graph, its seconds, peak RSS), then
one with the linkage (graph and linkage seconds, people, peak RSS). Each run in its
own process, so that the peak is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from facetrace.evaluation.facelike import FaceLikeGenerator, GalleryShape
from facetrace.identity import cluster

THRESHOLD = 0.478  # the default grouping distance (FMR 1e-4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("--graph", choices=["exact", "approximate"], default="approximate")
    args = parser.parse_args()
    gen = FaceLikeGenerator(128, 0, shape=GalleryShape.COLLECTED, model="mixture")
    x = gen.fill(np.empty((args.n, 128), np.float32))
    cluster.EXACT_GRAPH_MAX = args.n if args.graph == "exact" else 0
    t0 = time.perf_counter()
    cluster.knn_graph(x, 30, THRESHOLD)
    graph_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "faces": args.n,
                "graph": args.graph,
                "graph_seconds": round(graph_s, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        ),
        flush=True,
    )
    t1 = time.perf_counter()
    labels = cluster.average_linkage(x, THRESHOLD)  # builds the graph again, then links
    linkage_s = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "faces": args.n,
                "graph": args.graph,
                "graph_seconds": round(graph_s, 1),
                "linkage_seconds": round(linkage_s, 1),
                "people": int(labels.max()) + 1,
                "peak_rss_mb": round(peak_mb),
            }
        )
    )


if __name__ == "__main__":
    main()
