import sys, json, numpy as np
import os; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); from st import load, rtn
d = sys.argv[1]
W = load(d); plan = json.load(open(d + '/outlier_plan.json'))['layers'] if 'outliers' in d else None
P = 'model.decoder.layers.%d.'
print('%-3s %-4s %-8s | %10s %10s | %10s %10s | %10s %10s' % ('L','lin','', 'pc_norm','g_norm','pc_scaled','g_scaled','pc_shift','g_shift'))
tot = {}
for L in range(8):
    for name, ln in [('q_proj','self_attn_layer_norm'),('k_proj','self_attn_layer_norm'),('v_proj','self_attn_layer_norm'),('fc1','final_layer_norm')]:
        pre = P % L + ('self_attn.' if 'proj' in name else '')
        w = W[pre + name + '.weight']
        p = (plan or json.load(open('/work/shared/models/opt-pydoc-wt2-8L256-outliers/outlier_plan.json'))['layers'])['layers.%d.%s' % (L, ln)]
        sc = np.array(p['scaled_channels']); f = np.array(p['factors']); sh = np.array(p['shifted_channels']); dl = np.array(p['shifts'])
        norm = np.setdiff1d(np.arange(w.shape[1]), np.concatenate([sc, sh]))
        e_pc = rtn(w) - w; e_g = rtn(w, 4, 128) - w
        # error in units of the ORIGINAL model: scaled columns' error times the factor (= the activation's scale-up)
        r = []
        for e in (e_pc, e_g):
            r.append(((e[:, norm]**2).sum(), ((e[:, sc]*f)**2).sum(), ((e[:, sh])**2).sum()))
        print('%-3d %-8s | %10.4g %10.4g | %10.4g %10.4g | %10.4g %10.4g | zeroed scaled pc %.3f g %.3f' % (L, name, r[0][0], r[1][0], r[0][1], r[1][1], r[0][2], r[1][2],
              (rtn(w)[:, sc] == 0).mean(), (rtn(w,4,128)[:, sc] == 0).mean()))
