import json, struct, numpy as np, os
def load(d):
    idx = json.load(open(os.path.join(d, 'model.safetensors.index.json')))
    out = {}
    for f in sorted(set(idx['weight_map'].values())):
        b = open(os.path.join(d, f), 'rb').read()
        n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); base = 8+n
        for k, v in h.items():
            if k == '__metadata__': continue
            dt = {'F16': np.float16, 'F32': np.float32, 'BF16': None}[v['dtype']]
            s, e = v['data_offsets']
            out[k] = np.frombuffer(b[base+s:base+e], dtype=dt).reshape(v['shape']).astype(np.float32)
    return out
def rtn(w, bits=4, group=0):
    out, inn = w.shape; g = inn if group == 0 or group >= inn else group
    qmax = 2**(bits-1)-1
    wg = w.reshape(out, inn//g, g)
    s = np.abs(wg).max(-1, keepdims=True)/qmax; s[s == 0] = 1
    q = np.clip(np.rint(wg/s), -qmax, qmax)
    return (q*s).reshape(out, inn)
