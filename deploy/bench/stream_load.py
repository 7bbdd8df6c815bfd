"""N concurrent streaming completions against a running gateway (any bitrelay build, also ones without `bench serve`):
tokens/s, TTFT and TBT percentiles, and the last stage's phases from /metrics. Measured the baseline in
docs/results/h100-serve-baseline-opt-1.3b.txt. Usage: python3 stream_load.py PORT N1,N2,... MAX_TOKENS PROMPT_TOKENS [LABEL]"""
import http.client, json, sys, threading, time, statistics, re
port = int(sys.argv[1]); ns = [int(x) for x in sys.argv[2].split(',')]; max_tokens = int(sys.argv[3]); plen = int(sys.argv[4])
label = sys.argv[5] if len(sys.argv) > 5 else ''
def scrape():
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=60); c.request('GET', '/metrics'); body = c.getresponse().read().decode()
    out = {}
    for line in body.splitlines():
        m = re.match(r'bitrelay_stage_step_seconds_total\{phase="(\w+)",stage="(\w+)"\} (\S+)', line)
        if m: out[(m.group(2), m.group(1))] = float(m.group(3))
        m = re.match(r'bitrelay_stage_steps_total\{stage="(\w+)"\} (\S+)', line)
        if m: out[(m.group(1), 'steps')] = float(m.group(2))
    return out
def one(i, res):
    prompt = [(7 * i + 13 * k) % 50000 + 2 for k in range(plen)]
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True})
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=600)
    t0 = time.perf_counter(); c.request('POST', '/v1/completions', body, {'Content-Type': 'application/json'})
    r = c.getresponse(); times = []
    while True:
        line = r.readline()
        if not line: break
        if line.startswith(b'data: ') and not line.startswith(b'data: [DONE]'):
            times.append(time.perf_counter())
    res[i] = (t0, times)
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000 if v else float('nan')
for n in [1] + ns:  # first: warm-up
    before = scrape(); res = [None] * n; th = [threading.Thread(target=one, args=(i, res)) for i in range(n)]
    t0 = time.perf_counter(); [t.start() for t in th]; [t.join() for t in th]; wall = time.perf_counter() - t0
    time.sleep(2.5); after = scrape()
    toks = sum(len(r[1]) for r in res); ttft = [r[1][0] - r[0] for r in res if r[1]]
    tbt = [b - a for r in res for a, b in zip(r[1], r[1][1:])]
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    steps = d.get(('stage0', 'steps'), 0) or 1
    ph = ' '.join(f"{p}={1000 * d.get(('stage0', p), 0) / steps:.3f}" for p in ['queue', 'input', 'layers', 'head', 'sample', 'output'])
    print(f"{label} N={n} tok/s={toks / wall:.1f} events={toks} TTFT p50/p99={pct(ttft, 50):.1f}/{pct(ttft, 99):.1f} ms TBT p50/p99={pct(tbt, 50):.2f}/{pct(tbt, 99):.2f} ms steps={steps:.0f} wall/step={1000 * wall / steps:.3f} ms phases(ms/step) {ph}", flush=True)
