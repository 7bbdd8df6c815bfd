import sys, json, numpy as np
import os; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); from st import load, rtn
def ln(x, g, b, eps=1e-5):
    m = x.mean(-1, keepdims=True); v = ((x-m)**2).mean(-1, keepdims=True)
    return (x-m)/np.sqrt(v+eps)*g + b
class Opt:
    def __init__(self, d):
        self.W = load(d); self.cfg = json.load(open(d+'/config.json'))
        self.L = self.cfg['num_hidden_layers']; self.H = self.cfg['num_attention_heads']
    def p(self, k): return self.W['model.decoder.' + k]
    def lin(self, x, L, name):  # name like 'self_attn.q_proj'
        pre = 'layers.%d.%s.' % (L, name)
        return x @ self.p(pre+'weight').T + self.p(pre+'bias')
    def logits(self, ids, hook=None):
        T = len(ids); x = self.p('embed_tokens.weight')[ids] + self.p('embed_positions.weight')[np.arange(T)+2]
        hd = x.shape[1]//self.H
        mask = np.triu(np.full((T, T), -np.inf, np.float32), 1)
        for L in range(self.L):
            h = ln(x, self.p('layers.%d.self_attn_layer_norm.weight'%L), self.p('layers.%d.self_attn_layer_norm.bias'%L))
            if hook: hook(L, 'qkv', h)
            q = self.lin(h, L, 'self_attn.q_proj')*hd**-0.5; k = self.lin(h, L, 'self_attn.k_proj'); v = self.lin(h, L, 'self_attn.v_proj')
            q = q.reshape(T, self.H, hd).transpose(1,0,2); k = k.reshape(T, self.H, hd).transpose(1,0,2); v = v.reshape(T, self.H, hd).transpose(1,0,2)
            s = q @ k.transpose(0,2,1) + mask; s -= s.max(-1, keepdims=True); a = np.exp(s); a /= a.sum(-1, keepdims=True)
            o = (a @ v).transpose(1,0,2).reshape(T, -1)
            x = x + self.lin(o, L, 'self_attn.out_proj')
            h = ln(x, self.p('layers.%d.final_layer_norm.weight'%L), self.p('layers.%d.final_layer_norm.bias'%L))
            if hook: hook(L, 'fc1', h)
            f = np.maximum(self.lin(h, L, 'fc1'), 0)
            x = x + self.lin(f, L, 'fc2')
        x = ln(x, self.p('final_layer_norm.weight'), self.p('final_layer_norm.bias'))
        return x @ self.p('embed_tokens.weight').T
    def nll(self, ids):
        lg = self.logits(ids[:-1]).astype(np.float64); lg -= lg.max(-1, keepdims=True)
        lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
        return -lp[np.arange(len(ids)-1), ids[1:]]
def ids(path): return np.fromfile(path, dtype='>i4').astype(np.int64)
def ppl(m, toks, windows=5, seq=1024):
    n = [m.nll(toks[w*seq:(w+1)*seq]) for w in range(windows)]
    return float(np.exp(np.concatenate(n).mean()))
LINEARS = ['self_attn.q_proj','self_attn.k_proj','self_attn.v_proj','self_attn.out_proj','fc1','fc2']
