#!/usr/bin/env python3
"""PyTorch CPU reference rows for `npm run bench` (bench/peers/pytorch.ts runs this script, once per thread count).

The same workloads as bench/run.ts, written independently in PyTorch, in float32, on the CPU:
  mlp     the reference training step of workloads/reference.ts: [x_t (2), sinusoidal t-embedding (64)] -> 256 -> 256
          -> 256 -> 2 with SiLU, batch 512, MSE on eps, Adam (lr 1e-3); t and eps drawn fresh every step;
  matmul  square n x n x n torch.mm under no_grad, for each n given;
  conv    one forward F.conv2d (NCHW / OIHW, stride 1, 'same' padding, no bias) under no_grad;
  unet    one MSE training step (v-prediction, cosine schedule rescaled to zero terminal SNR, t uniform on 1..T,
          Adam lr 1e-4) of the project's UNet (models/unet.ts, models/blocks.ts) at the configuration given.
Sizes and configurations come from the caller (--spec, a JSON object written by bench/peers/pytorch.ts from
workloads/reference.ts and the models), so they cannot drift from the TypeScript side; the architecture is written
here. With --probe FILE (the workload's initial parameters, data set and a probe batch) the MLP starts from the same
parameters as every other system and reports its loss on the probe batch, which the caller checks against the
float64 reference.

Timing: warm-up runs, then `rounds` rounds of k back-to-back runs (k so that one round lasts at least `round_s`);
each round gives one time per run, and the median over the rounds is reported (with the mean and the fastest).

Prints one JSON object on stdout. Without torch it prints {"available": false, "reason": ...} and exits 0, so the
caller can say why there are no PyTorch rows.
"""
import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import time


def blas_info(torch):
    """What BLAS and conv library this PyTorch calls, from the shared objects mapped into this process."""
    a = torch.randn(64, 64)
    _ = a @ a  # make sure the BLAS is loaded
    libs = []
    try:
        with open('/proc/self/maps', encoding='utf-8') as f:
            for line in f:
                fields = line.split()
                path = fields[5] if len(fields) >= 6 else ''
                name = os.path.basename(path).lower()
                if any(k in name for k in ('blas', 'mkl_', 'libmkl', 'blis', 'atlas', 'dnnl', 'lapack')) and path not in libs:
                    libs.append(path)
    except OSError:
        pass
    info = {'libraries': libs}
    openblas = next((p for p in libs if 'openblas' in os.path.basename(p).lower()), None)
    if openblas:
        try:
            lib = ctypes.CDLL(openblas)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info['openblas'] = {
                'config': lib.openblas_get_config().decode(),
                'core': lib.openblas_get_corename().decode(),
                'lib': lib,
            }
        except (OSError, AttributeError):
            pass
    build = {}
    for part in torch.__config__.show().replace('\n', ',').split(','):
        if '=' in part:
            k, v = part.strip().split('=', 1)
            if k in ('BLAS_INFO', 'LAPACK_INFO', 'USE_MKLDNN', 'USE_OPENMP', 'TORCH_VERSION'):
                build[k] = v.strip()
    info['build'] = build
    info['mkl'] = bool(torch.backends.mkl.is_available())
    info['mkldnn'] = bool(torch.backends.mkldnn.is_available())
    info['openmp'] = bool(torch.backends.openmp.is_available())
    return info


def describe_blas(info):
    if 'openblas' in info:
        name, version = info['openblas']['config'].split(' ')[:2]
        return f"{name} {version} ({info['openblas']['core']} kernels)"
    if info['mkl']:
        return 'MKL'
    names = [os.path.basename(p) for p in info['libraries'] if 'dnnl' not in p]
    return ', '.join(names) if names else f"BLAS_INFO={info['build'].get('BLAS_INFO', '?')}"


def measure(fn, warmup, rounds, round_s):
    """Median, mean and fastest seconds per run of fn, over `rounds` rounds of k runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    k = max(1, math.ceil(round_s / one))
    per_run = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        per_run.append((time.perf_counter() - t0) / k)
    return {
        'medianMs': statistics.median(per_run) * 1e3,
        'meanMs': statistics.fmean(per_run) * 1e3,
        'minMs': min(per_run) * 1e3,
        'rounds': rounds,
        'runsPerRound': k,
    }


# ---- the reference MLP denoiser step --------------------------------------------------------------------------


def mlp_workload(torch, spec, probe):
    nn = torch.nn
    F = torch.nn.functional
    sizes = spec['layerSizes']
    batch, point_dim, emb_dim, t_steps = spec['batch'], spec['pointDim'], spec['embDim'], spec['tSteps']
    half = emb_dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))

        def forward(self, xt, t):
            arg = t[:, None] * freqs
            h = torch.cat([xt, torch.cos(arg), torch.sin(arg)], 1)
            for i, layer in enumerate(self.layers):
                h = layer(h)
                if i + 1 < len(self.layers):
                    h = F.silu(h)
            return h

    model = Mlp()
    if probe is not None:
        with torch.no_grad():
            for layer, p in zip(model.layers, probe['layers']):
                # the workload stores w as [in, out] (y = x w + b); nn.Linear as [out, in]
                layer.weight.copy_(torch.tensor(p['w'], dtype=torch.float32).reshape(p['inDim'], p['outDim']).T)
                layer.bias.copy_(torch.tensor(p['b'], dtype=torch.float32))
        x0 = torch.tensor(probe['x0'], dtype=torch.float32).reshape(batch, point_dim)
    else:
        g = torch.Generator().manual_seed(1)
        k = torch.randint(0, 8, (batch,), generator=g).float() * (math.pi / 4)
        x0 = 2 * torch.stack([torch.cos(k), torch.sin(k)], 1) + 0.1 * torch.randn(batch, point_dim, generator=g)
    adam = spec['adam']
    opt = torch.optim.Adam(model.parameters(), lr=adam['lr'], betas=(adam['beta1'], adam['beta2']), eps=adam['eps'])

    def loss_of(eps, t):
        ang = t * (math.pi / 2 / t_steps)
        xt = torch.cos(ang)[:, None] * x0 + torch.sin(ang)[:, None] * eps
        return F.mse_loss(model(xt, t), eps)

    probe_loss = None
    if probe is not None:
        with torch.no_grad():
            eps = torch.tensor(probe['eps'], dtype=torch.float32).reshape(batch, point_dim)
            t = torch.tensor(probe['t'], dtype=torch.float32)
            probe_loss = float(loss_of(eps, t))

    last = [float('nan')]

    def step():
        eps = torch.randn(batch, point_dim)
        t = torch.randint(0, t_steps, (batch,)).float()
        loss = loss_of(eps, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last[0] = loss.detach()

    params = sum(p.numel() for p in model.parameters())
    return step, {'params': params, 'probeLoss': probe_loss}, lambda: float(last[0])


# ---- the UNet (models/unet.ts, models/blocks.ts) ----------------------------------------------------------------


def unet_workload(torch, spec):
    nn = torch.nn
    F = torch.nn.functional
    cfg = spec['config']
    batch = spec['batch']
    groups, emb_dim = cfg['groups'], cfg['embDim']
    ch = [m * cfg['baseChannels'] for m in cfg['channelMults']]
    levels = len(ch)

    def zero(module):
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)
        return module

    def sinusoidal(t, dim):
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        arg = t[:, None] * freqs
        emb = torch.cat([torch.cos(arg), torch.sin(arg)], -1)
        return F.pad(emb, (0, 1)) if dim % 2 else emb

    class ResBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.emb = nn.Linear(emb_dim, cout)
            self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
            self.conv2 = zero(nn.Conv2d(cout, cout, 3, padding=1))
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

        def forward(self, x, emb_act):
            h = self.conv1(F.silu(self.norm1(x)))
            h = h + self.emb(emb_act)[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return (self.skip(x) if self.skip is not None else x) + h

    class Attention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.norm = nn.GroupNorm(groups, c, eps=1e-5)
            self.qkv = nn.Conv2d(c, 3 * c, 1)
            self.proj = zero(nn.Conv2d(c, c, 1))

        def forward(self, x):
            b, c, h, w = x.shape
            qkv = self.qkv(self.norm(x)).reshape(b, 3, c, h * w)
            q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
            attn = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), -1)  # [b, n, n]
            out = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, h, w)
            return x + self.proj(out)

    class Unet(nn.Module):
        def __init__(self):
            super().__init__()
            base = cfg['baseChannels']
            self.t0 = nn.Linear(base, emb_dim)
            self.t1 = nn.Linear(emb_dim, emb_dim)
            self.cls = nn.Embedding(cfg['numClasses'] + 1, emb_dim) if cfg.get('numClasses') else None
            self.conv_in = nn.Conv2d(cfg['channels'], base, 3, padding=1)
            cur = base
            self.down = nn.ModuleList()
            for i in range(levels):
                blocks = nn.ModuleList()
                for r in range(cfg['numResBlocks']):
                    blocks.append(ResBlock(cur if r == 0 else ch[i], ch[i]))
                cur = ch[i]
                self.down.append(blocks)
            self.mid0 = ResBlock(cur, cur)
            self.mid_attn = Attention(cur) if cfg['midAttention'] else None
            self.mid1 = ResBlock(cur, cur)
            self.up = nn.ModuleList()
            for j in range(levels):
                i = levels - 1 - j
                blocks = nn.ModuleList()
                for r in range(cfg['numResBlocks']):
                    blocks.append(ResBlock(cur + ch[i] if r == 0 else ch[i], ch[i]))
                cur = ch[i]
                self.up.append(blocks)
            self.norm_out = nn.GroupNorm(groups, cur, eps=1e-5)
            self.conv_out = zero(nn.Conv2d(cur, cfg['channels'], 3, padding=1))

        def forward(self, x, t, c):
            emb = self.t1(F.silu(self.t0(sinusoidal(t, self.t0.in_features))))
            if self.cls is not None:
                emb = emb + self.cls(c)
            emb_act = F.silu(emb)
            h = self.conv_in(x)
            skips = []
            for i, blocks in enumerate(self.down):
                if i > 0:
                    h = F.avg_pool2d(h, 2)
                for block in blocks:
                    h = block(h, emb_act)
                skips.append(h)
            h = self.mid0(h, emb_act)
            if self.mid_attn is not None:
                h = self.mid_attn(h)
            h = self.mid1(h, emb_act)
            for j, blocks in enumerate(self.up):
                up = h if j == 0 else F.interpolate(h, scale_factor=2, mode='nearest')
                h = torch.cat([up, skips[levels - 1 - j]], 1)
                for block in blocks:
                    h = block(h, emb_act)
            return self.conv_out(F.silu(self.norm_out(h)))

    # cosine schedule (Nichol & Dhariwal), rescaled to zero terminal SNR (Lin et al.), as models/schedule.ts
    t_steps = spec['tSteps']
    f = lambda s: math.cos(((s / t_steps + 0.008) / 1.008) * (math.pi / 2)) ** 2  # noqa: E731
    alpha_bar, prod = [], 1.0
    for i in range(t_steps):
        prod *= 1 - min(1 - f(i + 1) / f(i), 0.999)
        alpha_bar.append(prod)
    a = [math.sqrt(v) for v in alpha_bar]
    a0, a_t = a[0], a[-1]
    rescaled = [(v - a_t) * a0 / (a0 - a_t) for v in a]
    rescaled[0], rescaled[-1] = a0, 0.0
    alpha = torch.tensor(rescaled, dtype=torch.float32)
    sigma = torch.sqrt(torch.clamp(1 - alpha * alpha, min=0))

    model = Unet()
    opt = torch.optim.Adam(model.parameters(), lr=spec['lr'])
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(batch, cfg['channels'], cfg['imageSize'], cfg['imageSize'], generator=g)
    c = torch.arange(batch) % 10
    last = [float('nan')]

    def step():
        t = torch.randint(1, t_steps + 1, (batch,))  # 1..T
        eps = torch.randn_like(x0)
        al, si = alpha[t - 1][:, None, None, None], sigma[t - 1][:, None, None, None]
        xt = al * x0 + si * eps
        target = al * eps - si * x0  # v = alpha eps - sigma x0
        loss = ((model(xt, t.float(), c) - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last[0] = loss.detach()

    params = sum(p.numel() for p in model.parameters())
    return step, {'params': params}, lambda: float(last[0])


# ---- main -------------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, required=True)
    parser.add_argument('--spec', required=True, help='the workloads as JSON (see bench/peers/pytorch.ts)')
    parser.add_argument('--probe', help='a JSON file with the MLP workload initial parameters, x0 and a probe batch')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args()
    try:
        import torch
    except Exception as e:  # ImportError, or a torch that fails to load its libraries
        print(json.dumps({'available': False, 'reason': f'{type(e).__name__}: {e}', 'python': sys.executable}))
        return
    spec = json.loads(args.spec)
    probe = None
    if args.probe:
        with open(args.probe, encoding='utf-8') as f:
            probe = json.load(f)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    info = blas_info(torch)
    blas_threads = None
    if 'openblas' in info:
        # PyTorch's set_num_threads does not reach a generic (non-MKL) BLAS: OpenBLAS keeps its own thread count
        lib = info['openblas'].pop('lib')
        lib.openblas_set_num_threads(args.threads)
        blas_threads = lib.openblas_get_num_threads()
    warmup, rounds, round_s = (1, 3, 0.05) if args.quick else (3, 7, 0.3)
    timing = lambda fn: measure(fn, warmup, rounds, round_s)  # noqa: E731

    out = {
        'available': True,
        'python': sys.executable,
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'blasThreads': blas_threads,
        'blas': describe_blas(info),
        'blasInfo': info,
    }

    mlp_step, mlp_info, mlp_loss = mlp_workload(torch, spec['mlp'], probe)
    t = timing(mlp_step)
    out['mlp'] = {**t, 'samplesPerSec': spec['mlp']['batch'] / (t['medianMs'] / 1e3), **mlp_info, 'loss': mlp_loss()}

    out['matmul'] = []
    with torch.no_grad():
        for n in spec['matmul']:
            g = torch.Generator().manual_seed(n)
            a, b = torch.rand(n, n, generator=g) - 0.5, torch.rand(n, n, generator=g) - 0.5
            t = timing(lambda: torch.mm(a, b))
            out['matmul'].append({'n': n, **t, 'gflops': 2 * n**3 / (t['medianMs'] / 1e3) / 1e9})

        cv = spec['conv']
        g = torch.Generator().manual_seed(2)
        x = torch.rand(cv['batch'], cv['inChannels'], cv['size'], cv['size'], generator=g) - 0.5
        w = torch.rand(cv['outChannels'], cv['inChannels'], cv['kernel'], cv['kernel'], generator=g) - 0.5
        pad = (cv['kernel'] - 1) // 2
        backend = None
        if hasattr(torch._C, '_select_conv_backend'):
            try:
                backend = str(torch._C._select_conv_backend(x, w, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1))
            except Exception:  # the private signature changes between versions
                backend = None
        t = timing(lambda: torch.nn.functional.conv2d(x, w, padding=pad))
        flops = 2 * cv['batch'] * cv['outChannels'] * cv['size'] ** 2 * cv['inChannels'] * cv['kernel'] ** 2
        out['conv'] = {**t, 'gflops': flops / (t['medianMs'] / 1e3) / 1e9, 'convBackend': backend}

    unet_step, unet_info, unet_loss = unet_workload(torch, spec['unet'])
    t = timing(unet_step)
    out['unet'] = {**t, **unet_info, 'batch': spec['unet']['batch'], 'loss': unet_loss()}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
