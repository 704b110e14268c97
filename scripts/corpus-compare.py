#!/usr/bin/env python3
"""Compare `statetap replay --json` against tshark, capture by capture.

For every capture in a folder, runs statetap (one process per capture) and one tshark `-T fields` pass, then
compares per-capture counts:

  core metrics (mismatches marked "*" / MISMATCH; they fail the run only with --strict)
    packets      frames in the capture                    statetap: packets
    ipv4         frames with an IPv4 header at any depth  statetap: layers.ipv4    tshark: "ip" in frame.protocols
    ipv6         frames with an IPv6 header at any depth  statetap: layers.ipv6    tshark: "ipv6"
    vlan         VLAN-tagged frames (802.1Q or 802.1ad)   statetap: layers.vlan    tshark: "vlan" or "ieee8021ad"
    gtp          frames carrying GTP                      statetap: layers.gtpu    tshark: "gtp" (GTPv1-U and -C)
    fragments    IP-fragment frames                       statetap: layers.fragments
                 tshark: ip.flags.mf==1 || ip.frag_offset>0 || ipv6.fraghdr.more==1 || ipv6.fraghdr.offset>0
                 (an IPv6 "atomic" fragment header, offset 0 and M=0, is not a fragment for either side)
    tcp_flows    statetap: flows.tcp   tshark: distinct tcp.stream of the innermost TCP layer
    udp_flows    statetap: flows.udp   tshark: distinct udp.stream of the innermost UDP layer
                 (the outer UDP of GTP-U gets a udp.stream of its own in tshark; it is not counted, because
                 statetap keys flows by the innermost 5-tuple; TCP/UDP quoted inside ICMP errors is not counted)

  info metrics (differences marked "~"; never fail the run)
    reassembled  statetap: layers.reassembled  tshark: frames with ip(v6).reassembled.length (reassembly done)
    tcp, udp     frames with a TCP / UDP header at any depth (outside ICMP error payloads for tshark)
    malformed    statetap: malformed_packets   tshark: frames with _ws.malformed or ip/ipv6 fragment errors
                 (different notions: statetap refuses a layer, tshark flags any dissector exception)

Semantic differences to keep in mind when reading mismatches:
  * frame.protocols lists "ip" once per IP header; a frame is counted once if the protocol occurs at all.
  * statetap flows are keyed by innermost 5-tuple + VLAN ids + tunnel endpoint pair and end after an idle
    timeout (120 s) or FIN/RST + linger; tshark tcp.stream ignores VLANs and starts a new stream when a
    port pair is reused after a close; tshark udp.stream never times out.
  * tshark counts inner layers of a fragmented datagram only on the frame that completed reassembly, as
    statetap does; fragments tshark could not reassemble show as "data".

Exit status: 1 if statetap trapped/crashed (killed by a signal) or hung (timeout) on any capture, or with --strict on any core
mismatch or statetap failure; 2 on setup problems (no statetap, no tshark, no captures); 0 otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / ".." / "shared" / "corpus" / "pcaps"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")

CORE = ["packets", "ipv4", "ipv6", "vlan", "gtp", "fragments", "tcp_flows", "udp_flows"]
INFO = ["reassembled", "tcp", "udp", "malformed"]

TSHARK_FIELDS = [
    "frame.number",
    "frame.protocols",
    "ip.flags.mf",
    "ip.frag_offset",
    "ipv6.fraghdr.more",
    "ipv6.fraghdr.offset",
    "ip.reassembled.length",
    "ipv6.reassembled.length",
    "tcp.stream",
    "udp.stream",
    "ip.fragment.error",
    "ipv6.fragment.error",
]


def default_statetap() -> Path:
    release = REPO_ROOT / ".build" / "release" / "statetap"
    return release if release.exists() else REPO_ROOT / ".build" / "debug" / "statetap"


def find_captures(folder: Path, only: list[str]) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES))
    if only:
        files = [p for p in files if any(s in p.name for s in only)]
    return files


def signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


# ---------------------------------------------------------------------------------------------------------------
# statetap


def run_statetap(binary: Path, capture: Path, extra: list[str], timeout: float, wait_build: float) -> dict:
    """Runs `statetap replay --json`; returns status OK / ERROR / TRAP / TIMEOUT with the parsed summary."""
    cmd = [str(binary), "replay", "--json", "--progress-interval", "0", *extra, str(capture)]
    deadline = time.monotonic() + wait_build
    while True:
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            return {"status": "TIMEOUT", "command": cmd, "detail": f"no result after {timeout:.0f} s"}
        except OSError as e:
            # A rebuild may be replacing the binary right now (missing, or "text file busy"): wait and retry.
            if time.monotonic() < deadline:
                time.sleep(2)
                continue
            return {"status": "ERROR", "command": cmd, "detail": f"cannot run: {e}"}
    result: dict = {"status": "OK", "exit": proc.returncode, "seconds": round(time.monotonic() - start, 3),
                    "command": cmd}
    stderr_tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
    if proc.returncode < 0:
        result["status"] = "TRAP"
        result["signal"] = signal_name(-proc.returncode)
        result["detail"] = stderr_tail
    elif proc.returncode >= 128 + 1 and proc.returncode <= 128 + 64 and not proc.stdout.strip():
        # Killed by a signal behind a wrapper shell (exit 128+N) with no output.
        result["status"] = "TRAP"
        result["signal"] = signal_name(proc.returncode - 128)
        result["detail"] = stderr_tail
    summary = None
    for line in reversed(proc.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except json.JSONDecodeError:
                pass
            break
    if result["status"] == "OK" and (proc.returncode != 0 or summary is None):
        result["status"] = "ERROR"
        result["detail"] = stderr_tail or "no JSON summary on standard output"
    result["summary"] = summary
    return result


def statetap_metrics(summary: dict) -> dict:
    layers = summary.get("layers", {})
    flows = summary.get("flows", {})
    return {
        "packets": summary.get("packets", 0),
        "ipv4": layers.get("ipv4", 0),
        "ipv6": layers.get("ipv6", 0),
        "vlan": layers.get("vlan", 0),
        "gtp": layers.get("gtpu", 0),
        "fragments": layers.get("fragments", 0),
        "tcp_flows": flows.get("tcp", 0),
        "udp_flows": flows.get("udp", 0),
        "reassembled": layers.get("reassembled", 0),
        "tcp": layers.get("tcp", 0),
        "udp": layers.get("udp", 0),
        "malformed": summary.get("malformed_packets", 0),
    }


# ---------------------------------------------------------------------------------------------------------------
# tshark


def ensure_tshark(path: str | None, install: bool) -> str:
    if path:
        return path
    found = shutil.which("tshark")
    if found:
        return found
    if not install:
        sys.exit("corpus-compare: tshark not found (install it with `apt-get install -y tshark`)")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("corpus-compare: tshark not found and cannot install it here (needs root and apt-get)")
    print("corpus-compare: tshark not found; installing it with apt-get", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "tshark"], env=env, check=False)
    found = shutil.which("tshark")
    if not found:
        sys.exit("corpus-compare: installing tshark failed")
    return found


def _ints(value: str) -> list[int]:
    out = []
    for v in value.split(","):
        v = v.strip()
        if not v:
            continue
        if v in ("True", "true"):
            out.append(1)
        elif v in ("False", "false"):
            out.append(0)
        else:
            try:
                out.append(int(v, 0))
            except ValueError:
                pass
    return out


def _innermost_flow_index(protocols: list[str], name: str) -> int | None:
    """Which occurrence of `name` in frame.protocols carries the frame's flow, as statetap sees it: the transport
    directly above the innermost IP header (ICMP error payloads excluded). None if that transport is not `name`
    (ESP, ICMP, GTP signalling without an inner packet still has its outer UDP: that one counts)."""
    cut = next((i for i, p in enumerate(protocols) if p in ("icmp", "icmpv6")), len(protocols))
    ips = [i for i in range(cut) if protocols[i] in ("ip", "ipv6")]
    if not ips:
        return None
    after = ips[-1] + 1
    while after < cut and protocols[after].startswith("ipv6."):
        after += 1  # IPv6 extension headers (ipv6.hopopts, ipv6.routing, ipv6.fraghdr...)
    if after >= cut or protocols[after] != name:
        return None
    return sum(1 for i in range(after) if protocols[i] == name)


def run_tshark(tshark: str, capture: Path, prefs: list[str], timeout: float) -> dict:
    cmd = [tshark, "-n", "-r", str(capture), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=,", "-E", "quote=n"]
    for p in prefs:
        cmd += ["-o", p]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, LC_ALL="C"))
    except subprocess.TimeoutExpired:
        return {"status": "TIMEOUT", "command": cmd}
    result: dict = {"status": "OK", "exit": proc.returncode, "seconds": round(time.monotonic() - start, 3),
                    "command": cmd}
    stderr = "\n".join(l for l in proc.stderr.splitlines() if "dangerous" not in l and l.strip())
    if stderr:
        result["stderr"] = stderr[-2000:]
    m = {k: 0 for k in CORE + INFO}
    tcp_streams: set[int] = set()
    udp_streams: set[int] = set()
    frames: dict[str, list[int]] = {k: [] for k in ("fragments", "reassembled", "malformed", "gtp")}
    for line in proc.stdout.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(TSHARK_FIELDS) - len(cols))
        f = dict(zip(TSHARK_FIELDS, cols))
        number = _ints(f["frame.number"])
        number = number[0] if number else 0
        protos = f["frame.protocols"].split(":") if f["frame.protocols"] else []
        pset = set(protos)
        m["packets"] += 1
        if "ip" in pset:
            m["ipv4"] += 1
        if "ipv6" in pset:
            m["ipv6"] += 1
        if "vlan" in pset or "ieee8021ad" in pset:
            m["vlan"] += 1
        if "gtp" in pset:
            m["gtp"] += 1
            frames["gtp"].append(number)
        is_fragment = (any(_ints(f["ip.flags.mf"])) or any(_ints(f["ip.frag_offset"]))
                       or any(_ints(f["ipv6.fraghdr.more"])) or any(_ints(f["ipv6.fraghdr.offset"])))
        if is_fragment:
            m["fragments"] += 1
            frames["fragments"].append(number)
        if f["ip.reassembled.length"] or f["ipv6.reassembled.length"]:
            m["reassembled"] += 1
            frames["reassembled"].append(number)
        cut = next((i for i, p in enumerate(protos) if p in ("icmp", "icmpv6")), len(protos))
        if "tcp" in protos[:cut]:
            m["tcp"] += 1
        if "udp" in protos[:cut]:
            m["udp"] += 1
        if "_ws.malformed" in pset or f["ip.fragment.error"] or f["ipv6.fragment.error"]:
            m["malformed"] += 1
            frames["malformed"].append(number)
        for name, field, streams in (("tcp", "tcp.stream", tcp_streams), ("udp", "udp.stream", udp_streams)):
            idx = _innermost_flow_index(protos, name)
            values = _ints(f[field])
            if idx is None or not values:
                continue
            # One stream value per dissected layer; if some layer got none (truncated), take the last one.
            streams.add(values[idx] if idx < len(values) else values[-1])
    m["tcp_flows"] = len(tcp_streams)
    m["udp_flows"] = len(udp_streams)
    result["metrics"] = m
    result["frames"] = {k: v for k, v in frames.items() if v}
    if proc.returncode != 0 and m["packets"] == 0:
        result["status"] = "ERROR"
    return result


# ---------------------------------------------------------------------------------------------------------------
# report


def compare(capture: Path, st: dict, ts: dict) -> dict:
    entry: dict = {"capture": capture.name, "statetap": st, "tshark": ts, "mismatches": [], "info_differences": []}
    summary = st.get("summary")
    sm = statetap_metrics(summary) if summary else None
    entry["statetap_metrics"] = sm
    tm = ts.get("metrics")
    if sm and tm:
        entry["mismatches"] = [k for k in CORE if sm[k] != tm[k]]
        entry["info_differences"] = [k for k in INFO if sm[k] != tm[k]]
    return entry


def fmt_pairs(d: dict | None) -> str:
    if not d:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in d.items())


def print_capture(e: dict, verbose_frames: bool) -> None:
    st, ts = e["statetap"], e["tshark"]
    sm, tm = e["statetap_metrics"], ts.get("metrics")
    head = f"== {e['capture']}  statetap {st['status']}"
    if st["status"] == "TRAP":
        head += f" ({st.get('signal')})"
    elif st["status"] != "OK":
        head += f" (exit {st.get('exit')})"
    if ts["status"] != "OK":
        head += f"  tshark {ts['status']}"
    if e["mismatches"]:
        head += f"  MISMATCH: {', '.join(e['mismatches'])}"
    print(head)
    if st.get("detail") and st["status"] != "OK":
        for line in st["detail"].splitlines():
            print(f"   | {line}")
    if sm is not None or tm is not None:
        names = CORE + INFO
        widths = [max(len(k), 6) for k in names]
        print("   " + f"{'':<9}" + " ".join(f"{k:>{w}}" for k, w in zip(names, widths)))
        for label, m in (("statetap", sm), ("tshark", tm)):
            print("   " + f"{label:<9}" + " ".join(f"{'-' if m is None else m[k]:>{w}}" for k, w in zip(names, widths)))
        if sm and tm and (e["mismatches"] or e["info_differences"]):
            cells = []
            for k, w in zip(names, widths):
                d = sm[k] - tm[k]
                cells.append(f"{(f'{d:+d}' + ('*' if k in CORE else '~')) if d else '':>{w}}")
            print("   " + f"{'diff':<9}" + " ".join(cells))
    summary = st.get("summary") or {}
    if summary:
        r = summary.get("reassembly", {})
        fl = summary.get("flows", {})
        print(f"   statetap errors: {fmt_pairs(summary.get('errors'))}; notices: {fmt_pairs(summary.get('notices'))}")
        print(f"   statetap flows: total={fl.get('total')} tcp={fl.get('tcp')} udp={fl.get('udp')} "
              f"other={fl.get('other')} ended_idle={fl.get('ended_idle')} ended_closed={fl.get('ended_closed')}"
              f" evicted_lru={fl.get('evicted_lru')}")
        if r.get("fragments"):
            print(f"   statetap reassembly: {fmt_pairs(r)}")
        if summary.get("read_errors"):
            print(f"   statetap read errors: {summary['read_errors']}")
    if ts.get("stderr"):
        print(f"   tshark stderr: {ts['stderr'].splitlines()[0]}")
    if verbose_frames and ts.get("frames"):
        for k, v in ts["frames"].items():
            shown = ",".join(map(str, v[:40])) + (",..." if len(v) > 40 else "")
            print(f"   tshark {k} frames: {shown}")


def totals(entries: list[dict]) -> dict:
    tot = {"statetap": {k: 0 for k in CORE + INFO}, "tshark": {k: 0 for k in CORE + INFO}}
    for e in entries:
        if e["statetap_metrics"] and e["tshark"].get("metrics"):
            for k in CORE + INFO:
                tot["statetap"][k] += e["statetap_metrics"][k]
                tot["tshark"][k] += e["tshark"]["metrics"][k]
    return tot


def print_summary(entries: list[dict], tot: dict) -> None:
    print()
    print("== summary (statetap/tshark; * = mismatch)")
    width = max([len(e["capture"]) for e in entries] + [5])
    print(f"{'capture':<{width}}  {'status':<6} " + " ".join(f"{k:>13}" for k in CORE))
    for e in entries:
        sm, tm = e["statetap_metrics"], e["tshark"].get("metrics")
        cells = []
        for k in CORE:
            if sm and tm:
                cell = f"{sm[k]}/{tm[k]}" + ("*" if sm[k] != tm[k] else " ")
            else:
                cell = "-"
            cells.append(f"{cell:>13}")
        print(f"{e['capture']:<{width}}  {e['statetap']['status']:<6} " + " ".join(cells))
    cells = []
    for k in CORE:
        s, t = tot["statetap"][k], tot["tshark"][k]
        cells.append(f"{f'{s}/{t}' + ('*' if s != t else ' '):>13}")
    print(f"{'TOTAL':<{width}}  {'':<6} " + " ".join(cells))
    n_mis = sum(1 for e in entries if e["mismatches"])
    n_trap = sum(1 for e in entries if e["statetap"]["status"] == "TRAP")
    n_err = sum(1 for e in entries if e["statetap"]["status"] not in ("OK", "TRAP"))
    print(f"{len(entries)} captures: {n_mis} with core mismatches "
          f"({sum(len(e['mismatches']) for e in entries)} metric mismatches), {n_trap} TRAP, {n_err} statetap errors")


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Run `statetap replay --json` and tshark on every capture of a folder and compare per-capture "
                    "counts (packets, IPv4/IPv6/VLAN/GTP frames, IP fragments, TCP/UDP flows).",
        epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS,
                    help="folder of captures (default: ../shared/corpus/pcaps relative to the repo root)")
    ap.add_argument("--statetap", type=Path, default=None,
                    help="statetap binary (default: .build/release/statetap if it exists, else .build/debug/statetap)")
    ap.add_argument("--statetap-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `statetap replay` (repeatable), e.g. --statetap-arg=--workers=2")
    ap.add_argument("--tshark", default=None, help="tshark binary (default: tshark on PATH, installed if missing)")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install tshark when it is missing")
    ap.add_argument("--tshark-pref", action="append", default=[], metavar="NAME:VALUE",
                    help="tshark preference (repeatable), e.g. tcp.reassemble_out_of_order:TRUE")
    ap.add_argument("--only", action="append", default=[], metavar="SUBSTR",
                    help="only captures whose name contains SUBSTR (repeatable)")
    ap.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                    help="captures processed in parallel (default: min(4, CPUs))")
    ap.add_argument("--timeout", type=float, default=300, help="seconds allowed per tool run (default 300)")
    ap.add_argument("--wait-build", type=float, default=600,
                    help="seconds to keep retrying when the statetap binary is missing or busy (a rebuild in "
                         "progress; default 600)")
    ap.add_argument("--frames", action="store_true",
                    help="also list tshark's frame numbers of fragment, reassembled, malformed and GTP frames")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 on any core mismatch or statetap failure, not only on a TRAP")
    args = ap.parse_args()

    corpus = args.corpus.resolve()
    if not corpus.is_dir():
        print(f"corpus-compare: no such folder: {corpus}", file=sys.stderr)
        return 2
    captures = find_captures(corpus, args.only)
    if not captures:
        print(f"corpus-compare: no captures in {corpus}", file=sys.stderr)
        return 2
    statetap = (args.statetap or default_statetap()).absolute()
    deadline = time.monotonic() + args.wait_build
    while not os.access(statetap, os.X_OK):
        if time.monotonic() >= deadline:
            print(f"corpus-compare: statetap binary not found: {statetap} "
                  "(build it: swift build --product statetap)", file=sys.stderr)
            return 2
        print(f"corpus-compare: waiting for {statetap} (build in progress?)", file=sys.stderr)
        time.sleep(5)
    tshark = ensure_tshark(args.tshark, not args.no_install)
    try:
        version = subprocess.run([tshark, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        version = "unknown"

    def work(capture: Path) -> dict:
        st = run_statetap(statetap, capture, args.statetap_arg, args.timeout, args.wait_build)
        ts = run_tshark(tshark, capture, args.tshark_pref, args.timeout)
        return compare(capture, st, ts)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        entries = list(pool.map(work, captures))
    tot = totals(entries)
    traps = [e["capture"] for e in entries if e["statetap"]["status"] == "TRAP"]
    failures = [e["capture"] for e in entries if e["statetap"]["status"] not in ("OK", "TRAP")]
    mismatched = [e["capture"] for e in entries if e["mismatches"]]

    if args.json:
        out = {
            "corpus": str(corpus), "statetap": str(statetap), "tshark": tshark, "tshark_version": version,
            "core_metrics": CORE, "info_metrics": INFO,
            "captures": [{
                "capture": e["capture"],
                "statetap_status": e["statetap"]["status"],
                "statetap_exit": e["statetap"].get("exit"),
                "statetap_signal": e["statetap"].get("signal"),
                "statetap_detail": e["statetap"].get("detail"),
                "statetap": e["statetap_metrics"],
                "tshark": e["tshark"].get("metrics"),
                "mismatches": e["mismatches"],
                "info_differences": e["info_differences"],
                "statetap_errors": (e["statetap"].get("summary") or {}).get("errors", {}),
                "statetap_notices": (e["statetap"].get("summary") or {}).get("notices", {}),
                "statetap_flows": (e["statetap"].get("summary") or {}).get("flows", {}),
                "statetap_reassembly": (e["statetap"].get("summary") or {}).get("reassembly", {}),
                "tshark_frames": e["tshark"].get("frames", {}),
                "tshark_stderr": e["tshark"].get("stderr"),
            } for e in entries],
            "totals": tot,
            "traps": traps, "statetap_failures": failures, "captures_with_mismatches": mismatched,
        }
        print(json.dumps(out, indent=1))
    else:
        print(f"statetap: {statetap}\ntshark: {tshark} ({version})\ncorpus: {corpus} ({len(captures)} captures)\n")
        for e in entries:
            print_capture(e, args.frames)
        print_summary(entries, tot)
        if traps:
            print(f"TRAP: statetap crashed on {', '.join(traps)}")
    hangs = [e["capture"] for e in entries if e["statetap"]["status"] == "TIMEOUT"]
    if hangs and not args.json:
        print(f"TIMEOUT: statetap did not finish on {', '.join(hangs)}")
    if traps or hangs:
        return 1
    if args.strict and (failures or mismatched):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
