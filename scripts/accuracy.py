#!/usr/bin/env python3
"""Extraction accuracy of statetap against tshark oracle files (format: ../shared/corpus/README.md).

For every capture in CAPTURES that has ORACLE/<file>.jsonl, runs `statetap replay FILE --events jsonl` and compares,
per category, the multiset of what statetap extracted with what tshark extracted:
  http_request   (method, absolute URL)            <- oracle http_request  / statetap web_link
  http_response  (absolute URL, status)            <- oracle http_response / statetap web_link with a status
  tls            (client, server, SNI, ALPN list)  <- oracle tls_client_hello / statetap server_name transport tls
  quic           (client, server, SNI, ALPN list)  <- oracle quic_client_hello / statetap server_name transport quic
Prints per-capture and total recall (found / oracle) and precision (correct / statetap). Exit status 1 when a
total is below --min-recall or --min-precision (default 0: report only), 2 when statetap fails on a capture.

--explained FILE lists differences that were examined one by one and where statetap's reading is argued right
(each with the capture, category, exact key, count and why). The totals are printed raw and with those
differences set aside, and the bar applies to the second; an explanation that no longer matches a difference is
an error (exit 3), so the list cannot hide anything it does not name.

    python3 scripts/accuracy.py ../shared/corpus/pcaps [--oracle DIR] [--statetap .build/debug/statetap]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

CATEGORIES = ["http_request", "http_response", "tls", "quic"]


def endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def oracle_keys(path):
    keys = collections.defaultdict(collections.Counter)
    requests = {}
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            t = e.get("type")
            if t == "http_request":
                keys["http_request"][(e.get("method"), e.get("full_uri"))] += 1
                requests[e.get("frame")] = e.get("full_uri")
            elif t == "http_response":
                uri = e.get("response_for_uri") or requests.get(int(e["request_in"]) if e.get("request_in") else None)
                keys["http_response"][(uri, int(e["status"]) if e.get("status") else None)] += 1
            elif t in ("tls_client_hello", "quic_client_hello"):
                cat = "tls" if t == "tls_client_hello" else "quic"
                c = endpoint(e["client_ip"], e["client_port"])
                s = endpoint(e["server_ip"], e["server_port"])
                keys[cat][(c, s, e.get("sni") or None, tuple(e.get("alpn") or []))] += 1
    return keys


def statetap_keys(events):
    keys = collections.defaultdict(collections.Counter)
    for e in events:
        if e.get("kind") == "web_link":
            # A request that names no host: tshark's http.request.full_uri is absent, and statetap's URL (built from
            # the server's address, host_from "address") is compared where tshark builds the same one: its
            # response's http.response_for.uri.
            request_url = None if e.get("host_from") == "address" else e.get("url")
            keys["http_request"][(e.get("method"), request_url)] += 1
            if "status" in e:
                # A CONNECT has no URL; tshark names its response by the authority (the host field).
                url = e.get("url") or (e.get("host") if e.get("method") == "CONNECT" else None)
                keys["http_response"][(url, e.get("status"))] += 1
        elif e.get("kind") == "server_name":
            cat = "tls" if e.get("transport") == "tls" else "quic"
            keys[cat][(e["client"], e["server"], e.get("sni"), tuple(e.get("alpn") or []))] += 1
    return keys


def run_statetap(binary, capture):
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        r = subprocess.run([binary, "replay", capture, "--events", "jsonl", "--events-out", out.name,
                            "--progress-interval", "0", "--json"], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            return None, r.stderr.strip().splitlines()[-1:] or ["exit %d" % r.returncode]
        with open(out.name) as f:
            return [json.loads(l) for l in f if l.strip()], None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("captures")
    ap.add_argument("--oracle", help="oracle folder (default: CAPTURES/../oracle)")
    ap.add_argument("--statetap", default=".build/debug/statetap")
    ap.add_argument("--min-recall", type=float, default=0.0)
    ap.add_argument("--min-precision", type=float, default=0.0)
    ap.add_argument("--categories", default=",".join(CATEGORIES), help="comma-separated subset to score")
    ap.add_argument("--misses", action="store_true", help="list every miss and every extra")
    ap.add_argument("--explained", help="JSON list of examined differences to set aside for the bar (see above)")
    a = ap.parse_args()
    explained = collections.defaultdict(collections.Counter)  # (capture, category) -> Counter of ("extra"|"miss", key)
    reasons = {}
    if a.explained:
        with open(a.explained) as f:
            for x in json.load(f):
                side = "extra" if "extra" in x else "miss"
                key = tuple(tuple(v) if isinstance(v, list) else v for v in x[side])
                explained[(x["capture"], x["category"])][(side, key)] += x.get("count", 1)
                reasons[(x["capture"], x["category"], side, key)] = x["why"]
    adjusted = {c: [0, 0, 0] for c in a.categories.split(",") if c}
    stale = []
    oracle_dir = a.oracle or os.path.join(os.path.dirname(os.path.abspath(a.captures)), "oracle")
    cats = [c for c in a.categories.split(",") if c]
    totals = {c: [0, 0, 0] for c in cats}  # tp, oracle, statetap
    failed = False
    header = f"{'capture':58s} " + " ".join(f"{c:>18s}" for c in cats)
    print(header)
    for name in sorted(os.listdir(a.captures)):
        opath = os.path.join(oracle_dir, name + ".jsonl")
        if not os.path.exists(opath):
            continue
        events, err = run_statetap(a.statetap, os.path.join(a.captures, name))
        if events is None:
            print(f"{name:58s} statetap FAILED: {err}")
            failed = True
            continue
        want, got = oracle_keys(opath), statetap_keys(events)
        cells = []
        for c in cats:
            tp = sum((want[c] & got[c]).values())
            no, ns = sum(want[c].values()), sum(got[c].values())
            totals[c][0] += tp; totals[c][1] += no; totals[c][2] += ns
            # Examined differences: an explained extra leaves statetap's count, an explained miss the oracle's.
            ex = explained.get((name, c), collections.Counter())
            extras, misses = got[c] - want[c], want[c] - got[c]
            set_aside_s = set_aside_o = 0
            for (side, key), n in ex.items():
                have = (extras if side == "extra" else misses)[key]
                if have < n:
                    stale.append(f"{name} {c} {side} {key}: explained x{n}, found x{have}")
                if side == "extra":
                    set_aside_s += min(n, have)
                else:
                    set_aside_o += min(n, have)
                if a.misses and have:
                    print(f"    explained {side} {c}: {key} x{min(n, have)}: {reasons[(name, c, side, key)]}")
            adjusted[c][0] += tp; adjusted[c][1] += no - set_aside_o; adjusted[c][2] += ns - set_aside_s
            cells.append(f"{tp:>4d}/{no:<4d} {ns:>4d} {'' if tp == no == ns else '*':1s}   ")
            if a.misses:
                for k, n in (want[c] - got[c]).items():
                    print(f"    miss  {c}: {k} x{n}")
                for k, n in (got[c] - want[c]).items():
                    print(f"    extra {c}: {k} x{n}")
        print(f"{name:58s} " + " ".join(f"{x:>18s}" for x in cells))
    print("(cells: correct/oracle statetap-total; * = not exact)")
    worst_r, worst_p = 1.0, 1.0
    for c in cats:
        tp, no, ns = totals[c]
        recall = tp / no if no else 1.0
        precision = tp / ns if ns else 1.0
        line = f"TOTAL {c:14s} recall {recall:7.2%} ({tp}/{no})   precision {precision:7.2%} ({tp}/{ns})"
        if a.explained:
            tp, no, ns = adjusted[c]
            recall = tp / no if no else 1.0
            precision = tp / ns if ns else 1.0
            line += f"   examined differences set aside: recall {recall:7.2%} ({tp}/{no}) precision {precision:7.2%} ({tp}/{ns})"
        worst_r, worst_p = min(worst_r, recall), min(worst_p, precision)
        print(line)
    if failed:
        sys.exit(2)
    if stale:
        print("explanations that no longer match a difference (fix the list or the code):")
        for x in stale:
            print("   ", x)
        sys.exit(3)
    if worst_r < a.min_recall or worst_p < a.min_precision:
        print(f"below the bar: recall {worst_r:.2%} (min {a.min_recall:.0%}), precision {worst_p:.2%} (min {a.min_precision:.0%})")
        sys.exit(1)


if __name__ == "__main__":
    main()
