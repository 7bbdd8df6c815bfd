# centring (Outlier-Suppression+-style channel shift) before RTN, and the spread of equally good RTN draws
import sys, time, json; import os; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); from opt import *
M = sys.argv[1]; calib = sys.argv[2]; specs = sys.argv[3:]
m = Opt(M); toks = ids(os.environ.get('IDS_DIR', '/tmp/g128') + '/test.ids'); orig = dict(m.W)
C = {}
for e in json.load(open(calib))['entries']:
    C[(e['layer'], e['site'])] = (np.array(e['min'], np.float32) + np.array(e['max'], np.float32)) / 2
SITE = {'self_attn.q_proj':'qkv_input','self_attn.k_proj':'qkv_input','self_attn.v_proj':'qkv_input','fc1':'fc1_input'}
LN = {'qkv_input':'self_attn_layer_norm','fc1_input':'final_layer_norm'}
def q(w, g, jitter):
    if jitter == 0: return rtn(w, 4, g)
    # an equally good RTN: scale absmax·(1+jitter)/7 changes which way borderline weights round
    out, inn = w.shape; gg = inn if g == 0 else g
    wg = w.reshape(out, inn//gg, gg); s = np.abs(wg).max(-1, keepdims=True)*(1+jitter)/7
    return (np.clip(np.rint(wg/s), -7, 7)*s).reshape(out, inn)
for spec in specs:
    g, centre, jit = spec.split(':'); g = int(g); jit = float(jit)
    W = dict(orig)
    for L in range(8):
        if centre == 'c':
            for site, lnn in LN.items():
                bk = 'model.decoder.layers.%d.%s.bias' % (L, lnn); W[bk] = orig[bk] - C[(L, site)]
        for n in LINEARS:
            k = 'model.decoder.layers.%d.%s.weight' % (L, n); w = orig[k]
            W[k] = q(w, g, jit)
            if centre == 'c' and n in SITE:
                bk = 'model.decoder.layers.%d.%s.bias' % (L, n); W[bk] = orig[bk] + w @ C[(L, SITE[n])]
    m.W = W; t = time.time()
    print('%-16s %.3f  (%.0fs)' % (spec, ppl(m, toks), time.time()-t), flush=True)
