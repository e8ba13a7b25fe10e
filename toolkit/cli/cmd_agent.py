"""`ferminet agent`: make this host's phones Ray resources of a cluster and serve measurements on them."""
from __future__ import annotations

import argparse
import signal
import threading


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "agent", help="join a Ray cluster as a phone host: one Ray actor per attached phone",
        description="Start a Ray node on this host that joins the cluster at --ray-address with the custom resources "
                    "phone:<model> and phone-serial:<serial> for each phone, and register one actor per phone that "
                    "measures on it (`synthesize --executor ray --target android` measures its candidates on "
                    "them; other drivers use toolkit.scale.RayPhonePool). Runs "
                    "until Ctrl-C or SIGTERM; then the phones' actors are removed and the node leaves, so drivers "
                    "re-queue their work on other phones. Needs the ray extra: pip install 'ferminet-toolkit[ray]'.")
    p.add_argument("--ray-address", required=True, metavar="HOST:PORT", help="the Ray cluster's head (GCS) address")
    p.add_argument("--device", action="append", default=[], metavar="SERIAL",
                   help="a phone to serve (repeatable; default: every phone the adb server lists)")
    p.add_argument("--connect", action="append", default=[], metavar="HOST:PORT",
                   help="also serve the phone at this address, reached directly (e.g. a virtual phone)")
    p.add_argument("--adb-server", default="127.0.0.1:5037", help="adb server HOST:PORT (default 127.0.0.1:5037)")
    p.add_argument("--benchmark-binary", default=None, help="benchmark_model binary for the phones' ABI")
    p.add_argument("--num-cpus", type=int, default=0,
                   help="CPUs this node also offers to other Ray work, e.g. candidate training (default 0)")
    p.add_argument("--node-ip-address", default=None,
                   help="this host's address as the cluster sees it (default: Ray finds it; 127.0.0.1 when the "
                        "head is on loopback)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.scale import Agent

    serials = list(args.device) + list(args.connect)
    if not serials:
        from android_harness.connection import server_serials

        serials = server_serials(args.adb_server)
    kwargs = {"adb_server": args.adb_server, "benchmark_binary": args.benchmark_binary}
    stop = threading.Event()
    with Agent(args.ray_address, serials, target_kwargs=kwargs, num_cpus=args.num_cpus,
               node_ip=args.node_ip_address) as agent:
        # After joining: Ray installs its own SIGTERM handler (which exits at once) when it connects; ours stops
        # the agent cleanly instead (actors removed, node out of the cluster).
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for d in agent.described:
                print(f"serving {d.serial}  {d.model}  SoC {d.soc}  ({d.source}) on Ray node {d.node_id[:12]} "
                      f"as resources phone:{d.model}, phone-serial:{d.serial}", flush=True)
            agent.wait(stop)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    print("agent stopped: its phones left the cluster", flush=True)
    return 0
