import sys, time, json; import os; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); from opt import *
M = sys.argv[1]; which = sys.argv[2:]
OUT = '/work/shared/models/opt-pydoc-wt2-8L256-outliers'
plan = json.load(open(OUT+'/outlier_plan.json'))['layers']
m = Opt(M); toks = ids(os.environ.get('IDS_DIR', '/tmp/g128') + '/test.ids'); orig = dict(m.W)
SITE = {'self_attn.q_proj':'self_attn_layer_norm','self_attn.k_proj':'self_attn_layer_norm','self_attn.v_proj':'self_attn_layer_norm','fc1':'final_layer_norm'}
# calibration means of each linear's input (16 x 512 of valid.txt, FP32 model)
def calib_means():
    v = ids(os.environ.get('IDS_DIR', '/tmp/g128') + '/valid.ids'); acc = {}
    def hook(L, site, h):
        acc.setdefault((L, site), []).append(h.mean(0))
    for s in range(16): m.logits(v[s*512:(s+1)*512], hook)
    return {k: np.mean(a, 0) for k, a in acc.items()}
mu = None
def build(g, sel='all', keep=None, bias=None):
    W = dict(orig)
    for L in range(8):
        for n in LINEARS:
            if sel == 'ln' and n not in SITE: continue
            if sel == 'noln' and n in SITE: continue
            k = 'model.decoder.layers.%d.%s.weight' % (L, n); w = orig[k]; q = rtn(w, 4, g)
            if keep and n in SITE:
                p = plan['layers.%d.%s' % (L, SITE[n])]
                cols = np.array(p[keep + '_channels']); q[:, cols] = w[:, cols]
            W[k] = q
            if bias and n in SITE:
                if bias == 'plan':
                    p = plan['layers.%d.%s' % (L, SITE[n])]; m_ = np.zeros(w.shape[1], np.float32)
                    m_[p['shifted_channels']] = p['shifts']
                else:
                    m_ = mu[(L, 'qkv' if n in ('self_attn.q_proj','self_attn.k_proj','self_attn.v_proj') else 'fc1')]
                bk = 'model.decoder.layers.%d.%s.bias' % (L, n); W[bk] = orig[bk] - (q - w) @ m_
    return W
for spec in which:
    g, sel, keep, bias = spec.split(':')
    if bias == 'mean' and mu is None: mu = calib_means()
    m.W = build(int(g), sel, keep or None, bias or None); t = time.time()
    print('%-26s %.3f  (%.0fs)' % (spec, ppl(m, toks), time.time()-t), flush=True)
    m.W = orig
