"""The gateway bench (started by scripts/bench, which installs nginx and wrk and builds).

Three targets answer the same request in one interleaved run:
  direct   wrk -> static nginx upstream (fixed Gemini bodies)
  nginx    wrk -> nginx doing nothing but proxy_pass (keep-alive upstream) -> upstream
  gateway  wrk -> gatewayd (auth, key choice, blame, request log in SQLite) -> upstream
A chat-completions request has no direct or nginx equivalent: its direct and nginx rows send the
native request the gateway turns it into, so the ratio is what the translation and the rest cost.

Per cell: req/s, p50, p99 (wrk), the server's CPU per request (its own schedstat run time, all
threads or workers) and peak RSS (VmHWM, reset before each cell). Every response is checked for
its status and content; a cell with a failed check fails the run.
"""

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-token"
TEXT = "Hello there"


def answer(text):
    return json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                       "finishReason": "STOP", "index": 0}],
                       "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
                       "modelVersion": "gemini-2.5-flash"}, separators=(",", ":"))


def events(n):
    one = json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": "word "}]}, "index": 0}]},
                     separators=(",", ":"))
    return "".join(f"data: {one}\r\n\r\n" for _ in range(n - 1)) + f"data: {answer(TEXT)}\r\n\r\n"


NATIVE_BODY = '{"contents":[{"role":"user","parts":[{"text":"Hello"}]}]}'


def chat_body(model, stream):
    s = ',"stream":true' if stream else ""
    return '{"model":"%s"%s,"messages":[{"role":"user","content":"Hello"}]}' % (model, s)


GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
SSE = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
LONG_SSE = "/v1beta/models/gemini-long:streamGenerateContent?alt=sse"
CHAT = "/v1/chat/completions"
# name: (gateway path, gateway body, native path for direct/nginx, text every gateway answer holds;
# every native answer holds TEXT)
SCENARIOS = {
    "native generate": (GEN, NATIVE_BODY, GEN, TEXT),
    "native stream (10 events)": (SSE, NATIVE_BODY, SSE, TEXT),
    "chat": (CHAT, chat_body("gemini-2.5-flash", False), GEN, TEXT),
    "chat stream (10 events)": (CHAT, chat_body("gemini-2.5-flash", True), SSE, "[DONE]"),
}
# Long streams, for the cost of one relayed event: (cost(100) - cost(10)) / 90.
LONG = {
    "native stream (100 events)": (LONG_SSE, NATIVE_BODY, LONG_SSE, TEXT),
    "chat stream (100 events)": (CHAT, chat_body("gemini-long", True), LONG_SSE, "[DONE]"),
}

WRK_LUA = r"""
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local expect = [==[%(expect)s]==]
bad = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), b, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


class Proc:
    """A server under measurement: its pid and its children's (nginx workers)."""

    def __init__(self, popen, name):
        self.popen, self.name = popen, name

    def pids(self):
        kids = subprocess.run(["pgrep", "-P", str(self.popen.pid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in kids] or [self.popen.pid]

    def cpu_ns(self):
        total = 0
        for pid in self.pids():
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
        return total

    def status(self, field):
        kib = 0
        for pid in self.pids():
            with open(f"/proc/{pid}/status") as f:
                kib += int(re.search(rf"^{field}:\s+(\d+)", f.read(), re.M).group(1))
        return kib

    def reset_peak(self):
        for pid in self.pids():
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")

    def stop(self):
        self.popen.terminate()
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()


def nginx_conf(d, name, servers):
    user = "user root;" if os.geteuid() == 0 else ""
    os.makedirs(f"{d}/{name}", exist_ok=True)
    conf = f"""{user}
worker_processes %(workers)s;
daemon off;
pid {d}/{name}/nginx.pid;
error_log {d}/{name}/error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  client_body_temp_path {d}/{name}/body;
  proxy_temp_path {d}/{name}/proxy;
  fastcgi_temp_path {d}/{name}/fcgi;
  uwsgi_temp_path {d}/{name}/uwsgi;
  scgi_temp_path {d}/{name}/scgi;
  client_max_body_size 0;
  client_body_buffer_size 128k;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
{servers}
}}
"""
    path = f"{d}/{name}/nginx.conf"
    return path, conf


def start_nginx(d, name, workers, servers):
    path, conf = nginx_conf(d, name, servers)
    with open(path, "w") as f:
        f.write(conf % {"workers": workers})
    err = open(f"{d}/{name}/stderr.log", "w")
    p = subprocess.Popen(["nginx", "-c", path, "-p", f"{d}/{name}"], stdout=err, stderr=err)
    time.sleep(0.3)
    if p.poll() is not None:
        with open(f"{d}/{name}/stderr.log") as f:
            sys.exit(f"nginx ({name}) did not start: {f.read()}")
    return Proc(p, name)


def upstream_servers(port, slow_port):
    # nginx caps one config token at 4 KiB, so a long stream is a variable repeated.
    one = events(2).split("\r\n\r\n")[0] + "\r\n\r\n"
    last = f"data: {answer(TEXT)}\r\n\r\n"

    def stream(n, extra=""):
        return (f"set $ev '{one}'; set $last '{last}'; default_type text/event-stream; {extra} "
                f"return 200 \"{'$ev' * (n - 1)}$last\";")

    return f"""
  server {{ listen 127.0.0.1:{port} backlog=4096;
    location ~ "gemini-long:streamGenerateContent$" {{ {stream(100)} }}
    location ~ ":streamGenerateContent$" {{ {stream(10)} }}
    location ~ ":generateContent$" {{ default_type application/json; return 200 '{answer(TEXT)}'; }}
    location / {{ return 404; }}
  }}
  server {{ listen 127.0.0.1:{slow_port} backlog=4096;
    location ~ ":streamGenerateContent$" {{ {stream(60, "limit_rate 40;")} }}
  }}"""


def hop_servers(port, up_port, slow_hop_port, slow_port):
    def server(listen, to):
        return f"""
  upstream u{listen} {{ server 127.0.0.1:{to}; keepalive 256; }}
  server {{ listen 127.0.0.1:{listen} backlog=4096;
    location / {{ proxy_pass http://u{listen}; proxy_http_version 1.1; proxy_set_header Connection "";
                  proxy_buffering off; }}
  }}"""
    return server(port, up_port) + server(slow_hop_port, slow_port)


def start_gateway(d, binary, name, up_port, port):
    env = dict(os.environ,
               GATEWAY_SERVER__LISTEN=f"127.0.0.1:{port}",
               GATEWAY_SERVER__ADMIN_SOCKET=f"{d}/{name}.sock",
               GATEWAY_SERVER__MAX_BODY_BYTES=str(64 << 20),
               GATEWAY_DATABASE__PATH=f"{d}/{name}.db",
               GATEWAY_UPSTREAM__BASE_URL=f"http://127.0.0.1:{up_port}",
               GATEWAY_KEYS__API_KEYS=json.dumps([f"AIzaSyBench{i:028d}" for i in range(20)]),
               GATEWAY_AUTH__TOKENS=json.dumps([TOKEN]),
               RUST_LOG="warn")
    log = open(f"{d}/{name}.log", "w")
    p = Proc(subprocess.Popen([binary], env=env, stderr=log, stdout=log), name)
    wait_port(port)
    return p


def gbctl(bin_dir, sock, *args):
    out = subprocess.run([f"{bin_dir}/gbctl", "--socket", sock, *args], capture_output=True, text=True, check=True)
    return out.stdout


def wrk(d, port, path, body, expect, conns, secs):
    lua = f"{d}/wrk-{abs(hash((path, body, expect)))}.lua"
    with open(lua, "w") as f:
        f.write(WRK_LUA % {"body": body, "token": TOKEN, "expect": expect})
    threads = 1 if conns == 1 else 2
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--timeout", "10s", "-s", lua,
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True)
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not m:
        sys.exit(f"wrk gave no result: {out.stdout}{out.stderr}")
    n, dur, p50, p99, bad, errors = map(int, m.groups())
    return {"requests": n, "rps": n / (dur / 1e6), "p50": p50, "p99": p99, "bad": bad, "errors": errors}


def cell(d, proc, port, path, body, expect, conns, secs):
    proc.reset_peak()
    before = proc.cpu_ns()
    r = wrk(d, port, path, body, expect, conns, secs)
    r["cpu_us"] = (proc.cpu_ns() - before) / 1000 / max(r["requests"], 1)
    r["peak_kib"] = proc.status("VmHWM")
    return r


def med(rows, k):
    return statistics.median(r[k] for r in rows)


async def hold_streams(port, path, body, n):
    """Opens n streams, waits until every one has its 200 headers, returns the writers."""
    req = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()

    async def one():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(req)
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 120)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream refused: {head[:80]!r}")
        return r, w

    conns = []
    for i in range(0, n, 200):  # in waves, so the listen backlog never overflows
        conns += await asyncio.gather(*(one() for _ in range(min(200, n - i))))
    return conns


def held_streams(proc, port, path, n, settle):
    idle = proc.status("VmRSS")
    loop = asyncio.new_event_loop()
    conns = loop.run_until_complete(hold_streams(port, path, NATIVE_BODY, n))
    time.sleep(2)
    held = proc.status("VmRSS")
    for _, w in conns:
        w.transport.abort()
    loop.run_until_complete(asyncio.sleep(1))  # abort() closes the socket on the loop's next turn
    loop.close()
    time.sleep(settle)
    after = proc.status("VmRSS")
    return {"idle": idle, "held": held, "after": after, "per_stream": (held - idle) / n}


def large_body(proc, port, size_mb):
    import http.client
    text = "x" * 30000
    n = int(size_mb * 1e6 / (len(text) + 40))
    msgs = ",".join('{"role":"user","content":"%s"}' % text for _ in range(n))
    body = ('{"model":"gemini-2.5-flash","messages":[%s]}' % msgs).encode()
    idle = proc.status("VmRSS")
    proc.reset_peak()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("POST", CHAT, body, {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200 or TEXT.encode() not in data:
        sys.exit(f"large body: {r.status} {data[:300]!r}")
    return {"mb": len(body) / 1e6, "idle": idle, "peak": proc.status("VmHWM")}


def log_scale(bin_dir, rows, d):
    db = f"{d}/big.db"
    out = subprocess.run(["cargo", "bench", "-q", "-p", "gatewayd", "--bench", "logscale"], cwd=ROOT,
                         env=dict(os.environ, ROWS=str(rows), DB=db), capture_output=True, text=True, check=True)
    port = free_port()
    env = dict(os.environ, GATEWAY_SERVER__LISTEN=f"127.0.0.1:{port}", GATEWAY_SERVER__ADMIN_SOCKET=f"{d}/big.sock",
               GATEWAY_DATABASE__PATH=db, GATEWAY_AUTH__TOKENS=json.dumps([TOKEN]), RUST_LOG="warn")
    p = subprocess.Popen([f"{bin_dir}/gatewayd"], env=env, stderr=subprocess.DEVNULL)
    wait_port(port, timeout=300)
    times = {}
    for cmd in (["keys", "list"], ["stats"], ["stats", "--by", "key"], ["status"]):
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            gbctl(bin_dir, f"{d}/big.sock", *cmd)
            runs.append((time.perf_counter() - t) * 1000)
        times["gbctl " + " ".join(cmd)] = statistics.median(runs)
    p.terminate()
    p.wait()
    return out.stdout.strip(), times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--log-rows", type=int, default=10_000_000)
    ap.add_argument("--only", default="cells,large,held,logs", help="sections to run (BENCH.md needs all)")
    a = ap.parse_args()
    if a.smoke:
        a.reps, a.secs, a.streams, a.log_rows = 1, 1, 100, 0
    bin_dir = os.path.abspath(os.path.join(ROOT, a.bin))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    a.streams = min(a.streams, (hard - 100) // 2)
    failed = []
    with tempfile.TemporaryDirectory() as d:
        up_port, slow_port, hop_port, slow_hop_port = (free_port() for _ in range(4))
        started = []
        try:
            up = start_nginx(d, "upstream", 1, upstream_servers(up_port, slow_port))
            started.append(up)
            hop = start_nginx(d, "hop", 2, hop_servers(hop_port, up_port, slow_hop_port, slow_port))
            started.append(hop)
            wait_port(up_port)
            wait_port(hop_port)
            gw_port, slow_gw_port = free_port(), free_port()
            gw = start_gateway(d, f"{bin_dir}/gatewayd", "gateway", up_port, gw_port)
            started.append(gw)
            results, status, rows, sent, large, held, scale = {}, None, 0, 0, None, None, None
            if "cells" in a.only:
                # Warm-up: connections, caches, the log writer.
                for _, (gpath, gbody, npath, expect) in SCENARIOS.items():
                    wrk(d, gw_port, gpath, gbody, expect, 8, 1)
                for rep in range(a.reps):
                    for name, (gpath, gbody, npath, expect) in {**SCENARIOS, **LONG}.items():
                        for conns in ([1, 64] if name in SCENARIOS else [64]):
                            for target, proc, port, path, body, want in (
                                    ("direct", up, up_port, npath, NATIVE_BODY, TEXT),
                                    ("nginx", hop, hop_port, npath, NATIVE_BODY, TEXT),
                                    ("gateway", gw, gw_port, gpath, gbody, expect)):
                                r = cell(d, proc, port, path, body, want, conns, a.secs)
                                if r["bad"] or r["errors"] or not r["requests"]:
                                    failed.append(f"{name} c={conns} {target}: {r}")
                                results.setdefault((name, conns, target), []).append(r)
                    print(f"repetition {rep + 1}/{a.reps} done", file=sys.stderr)
                status = json.loads(gbctl(bin_dir, f"{d}/gateway.sock", "-o", "json", "status"))
                time.sleep(1)
                rows = sqlite3.connect(f"file:{d}/gateway.db?mode=ro", uri=True).execute(
                    "SELECT COUNT(*) FROM request_log").fetchone()[0]
                sent = sum(r["requests"] for (_, _, t), rs in results.items() if t == "gateway" for r in rs)
            if "large" in a.only:
                large = large_body(gw, gw_port, 31.5 if not a.smoke else 2)
            gw.stop()
            if "held" in a.only:
                slow_gw = start_gateway(d, f"{bin_dir}/gatewayd", "slow", slow_port, slow_gw_port)
                started.append(slow_gw)
                settle = 60 if not a.smoke else 2
                held = {"gateway": held_streams(slow_gw, slow_gw_port, SSE, a.streams, settle),
                        "nginx": held_streams(hop, slow_hop_port, SSE, a.streams, settle)}
                slow_gw.stop()
            if "logs" in a.only and a.log_rows:
                scale = log_scale(bin_dir, a.log_rows, d)
        finally:
            for p in started:
                p.stop()
    report = render(a, results, status, rows, sent, large, held, scale, failed)
    print(report)
    if not a.smoke and a.only == ap.get_default("only"):
        # The hand-written reading of the numbers (targets, and the profiles behind the floors)
        # follows the measured tables.
        with open(os.path.join(ROOT, "scripts", "bench-floor.md")) as f:
            report += "\n" + f.read()
        with open(os.path.join(ROOT, "BENCH.md"), "w") as f:
            f.write(report)
    if failed:
        sys.exit("FAILED checks:\n" + "\n".join(failed))


def machine():
    with open("/proc/cpuinfo") as f:
        cpu = re.search(r"model name\s*:\s*(.*)", f.read())
    return f"{os.cpu_count()} cores ({cpu.group(1) if cpu else platform.machine()}), Linux {platform.release()}"


def render(a, results, status, rows, sent, large, held, scale, failed):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    out = [f"# Bench\n\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit.strip()}, "
           f"{machine()}.\nCommand: `scripts/bench` ({a.reps} repetitions of {a.secs} s per cell, interleaved; "
           "medians). The upstream is nginx returning fixed Gemini bodies (1 worker); the reference hop is nginx "
           "doing only `proxy_pass` with keep-alive (2 workers); the gateway runs with 20 keys, auth, the request "
           "log in SQLite. Load from wrk on the same 2 cores, so every target shares the CPU with the upstream and "
           "the load generator. Chat rows' direct and nginx figures are for the native request the chat request "
           "becomes. CPU is the server's own run time per request (all its threads or workers).\n"]
    if failed:
        out.append("**This run FAILED its response checks:** " + "; ".join(failed) + "\n")
    if results:
        out += cells(results, status, rows, sent)
    if held:
        out += held_table(a, held)
    if large:
        out.append(f"\n## Large body\n\nOne {large['mb']:.1f} MB chat-completions body (1,000 30 KB messages): gateway "
                   f"RSS {large['idle'] / 1024:.0f} MiB before, peak {large['peak'] / 1024:.0f} MiB.\n")
    if scale:
        fill, times = scale
        out.append(f"## Request log at scale\n\n`cargo bench -p gatewayd --bench logscale` ({a.log_rows:,} rows over "
                   "24 h, 50 keys, 4 models):\n\n```\n" + fill + "\n```\n")
        out.append("Against a gatewayd on that database, median of 5:\n")
        out.append("| command | ms |\n|---|---|")
        for k, v in times.items():
            out.append(f"| `{k}` | {v:.0f} |")
    return "\n".join(out) + "\n"


def cells(results, status, rows, sent):
    out = []
    out.append("| scenario | c | direct req/s | nginx req/s | gateway req/s | gw/direct | gw/nginx | p50 µs direct / nginx / gw "
               "| p99 µs direct / nginx / gw | CPU µs/req nginx / gw | peak RSS MiB gw |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    cpu = {}
    for name in list(SCENARIOS) + list(LONG):
        for conns in (1, 64):
            if (name, conns, "gateway") not in results:
                continue
            d, n, g = (results[(name, conns, t)] for t in ("direct", "nginx", "gateway"))
            cpu[(name, conns)] = med(g, "cpu_us")
            out.append(f"| {name} | {conns} | {med(d, 'rps'):,.0f} | {med(n, 'rps'):,.0f} | {med(g, 'rps'):,.0f} | "
                       f"{med(g, 'rps') / med(d, 'rps'):.2f}× | {med(g, 'rps') / med(n, 'rps'):.2f}× | "
                       f"{med(d, 'p50'):.0f} / {med(n, 'p50'):.0f} / {med(g, 'p50'):.0f} | "
                       f"{med(d, 'p99'):.0f} / {med(n, 'p99'):.0f} / {med(g, 'p99'):.0f} | "
                       f"{med(n, 'cpu_us'):.1f} / {med(g, 'cpu_us'):.1f} | {med(g, 'peak_kib') / 1024:.0f} |")
    g1 = results[("native generate", 1, "gateway")]
    d1 = results[("native generate", 1, "direct")]
    n1 = results[("native generate", 1, "nginx")]
    out.append(f"\nAdded p50 at c=1, native generate: gateway +{med(g1, 'p50') - med(d1, 'p50'):.0f} µs, "
               f"nginx hop +{med(n1, 'p50') - med(d1, 'p50'):.0f} µs.")
    ev = {k: (cpu[(f"{k} stream (100 events)", 64)] - cpu[(f"{k} stream (10 events)", 64)]) / 90
          for k in ("native", "chat")}
    out.append(f"CPU per relayed stream event (c=64, (100-event stream - 10-event stream) / 90): native "
               f"{ev['native']:.2f} µs, translated (chat) {ev['chat']:.2f} µs.")
    out.append(f"Request log: {sent:,} requests completed by wrk, {rows:,} rows written (cut requests at each "
               f"cell's end are logged too), {status['logs_dropped']} dropped.\n")
    return out


def held_table(a, held):
    out = [f"## Held streams\n\n{a.streams} slow streams (nginx `limit_rate`) open at once, then closed by the "
           f"client; RSS a {'minute' if not a.smoke else 'moment'} after they close.\n"]
    out.append("| server | idle RSS MiB | with streams MiB | per stream KiB | after close MiB |")
    out.append("|---|---|---|---|---|")
    for k, h in held.items():
        out.append(f"| {k} | {h['idle'] / 1024:.1f} | {h['held'] / 1024:.1f} | {h['per_stream']:.1f} | "
                   f"{h['after'] / 1024:.1f} |")
    return out


if __name__ == "__main__":
    main()
