"""Atomizer on CPU (issue 12, item 5): one 120² 12-band window at the paper-era size, fast path vs official eager.

    .venv/bin/python bench/atomizer.py [--threads 2] [--repeats 3] [--token-chunk 2048] [--candidates ...]

Size: depth 8, 512 latents × 512, 1 cross head of 64, 8 latent heads of 64, self_per_cross_attn 1 (the recovered
2025-04-24 configuration), 16 Gaussian wavelength anchors, band value NATURAL, position FF (4 bands, max_freq 4).
Tokens are 16 + 1 + 2·9 = 35 wide, and a window holds 120·120·12 = 172,800 of them. Weights are seeded random
(Linear N(0, 1/fan_in), latents and pooling query N(0, 1)), so the attention is far from uniform. The input is
random z-scores, all valid, r = 1.

Candidates (one process, same weights and window, interleaved round by round):
- ``official-eager`` (the reference): the official eager path, re-implemented plainly. Tokens are materialised; each
  layer runs LN_ctx and to_kv over all of them, then one `F.scaled_dot_product_attention` on (B·h, N, d) tensors
  with the materialised (B·h, N, T) boolean mask. The latent blocks use ops backend ``reference``.
- ``sdpa-flash``: the strongest plain-PyTorch baseline we found. Tokens are still materialised, with LN_ctx and
  to_kv, but the call is a 4-D SDPA without mask (every token valid), which is ATen's flash CPU kernel; no N×T
  matrix. Backend ``auto``.
- ``fast``: `Atomizer.forward`. The tokenizer is fused, attention runs in the token space with chunked exact online
  softmax (rsinfer/models/atomizer.py), and the backend is ``auto``.
- ``fast-per-band``: the same with one step per band (`token_chunk` = 14,400): about 10x fewer parallel regions, for a
  loaded machine (below).

`--token-chunk` sets ``fast``'s tokens per step (default `Atomizer.token_chunk`). Each step runs three parallel
ops (GEMM, exp2, GEMM). On a loaded machine, every 2-thread parallel region waits at its barrier whenever the peer
thread is descheduled, and ``fast`` runs about 150 regions per layer at the default against about 20 for the
baselines. Under load, 2-thread timings therefore penalise ``fast`` far more than the work it does. Compare at
``--threads 1``, on a quiet machine, or through ``fast-per-band``, which is about 1.35x slower at one thread but
robust.

Each candidate runs once for its output (the errors), then `rsinfer.benchmark.compare` warms each up once more and
runs `--repeats` interleaved rounds. The table gives the median time per window with its min–max, tokens/s, the
speed-up over ``official-eager`` and over ``sdpa-flash``, and the relative L2 error of the logits against
``official-eager``. It also gives GFLOP/s against an fp32 GEMM rate measured in the same rounds: three 2048³ products
(`rsinfer.benchmark.machine.gemm`), which reach the dominant shapes' rate. FLOPs count 2 per multiply-add of every
GEMM and both attention products. Peak memory is measured per candidate in a fresh subprocess: VmHWM minus VmRSS
before the network is built, against 1.5 × (token tensor + weights). One JSON line (schema ``rsinfer.compare/1``)
goes to bench/atomizer.jsonl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import rsinfer.models
from rsinfer.benchmark import RunLength, append_json_line, compare, gemm, settle_allocator
from rsinfer.models.atomizer import Atomizer
from rsinfer.ops import use_backend

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = ("official-eager", "sdpa-flash", "fast", "fast-per-band")
ANCHORS = {f"g{i}": {"mean": float(m), "std": float(s)} for i, (m, s) in enumerate(
    [(380, 15), (424, 15), (468, 15), (513, 15), (557, 15), (602, 15), (646, 15), (691, 15), (735, 15), (780, 15),
     (850, 15), (940, 15), (1200, 80), (1400, 30), (1600, 40), (2100, 120)])}
PAPER_ERA = {"depth": 8, "num_latents": 512, "latent_dim": 512, "cross_heads": 1, "latent_heads": 8,
             "cross_dim_head": 64, "latent_dim_head": 64, "num_classes": 19, "self_per_cross_attn": 1,
             "weight_tie_layers": False, "wavelength_encoding": "GAUSSIANS", "bandvalue_encoding": "NATURAL",
             "pos_encoding": "FF", "pos_num_freq_bands": 4, "pos_max_freq": 4}
SIDE, BANDS = 120, 12
GEMM_SIZE = 2048


def seeded_network() -> Atomizer:
    """The paper-era network with seeded weights written in place (no second copy of the weights)."""
    torch.manual_seed(0)
    net = rsinfer.models.build("atomizer", **PAPER_ERA, wavelengths_encoding=ANCHORS).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 2 and name not in ("latents",):
                p.normal_(0.0, p.shape[1] ** -0.5)
            elif name.endswith("norm.weight") or name.endswith("norm_context.weight") or name == "to_logits.1.weight":
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 1.0 if p.dim() > 1 else 0.1)
    return net


def window() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    image = torch.randn(1, BANDS, SIDE, SIDE, generator=generator)
    return image, torch.ones_like(image), torch.ones(1, dtype=torch.float64)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:  # b n (h d) -> (b h) n d
    b, n, inner = x.shape
    return x.view(b, n, heads, inner // heads).transpose(1, 2).reshape(b * heads, n, inner // heads)


def _unheads(x: torch.Tensor, heads: int) -> torch.Tensor:  # (b h) n d -> b n (h d)
    bh, n, d = x.shape
    return x.view(bh // heads, heads, n, d).transpose(1, 2).reshape(bh // heads, n, heads * d)


def materialised_forward(net: Atomizer, image: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor,
                         flash: bool) -> torch.Tensor:
    """The official eager forward on materialised tokens; `flash` = 4-D SDPA without mask instead of the official
    3-D SDPA with a boolean (B·h, N, T) mask (valid only when every token is valid)."""
    tokens, token_mask = net.tokenize(image, mask, resolution)
    tokens = tokens.masked_fill(~token_mask.unsqueeze(-1), 0.0)
    b, n = tokens.shape[0], net.config.num_latents
    x = net.latents.unsqueeze(0).repeat(b, 1, 1)
    for cross, cross_ff, self_blocks in net.layers:
        attn, heads = cross.fn, cross.fn.heads
        q = _heads(attn.to_q(cross.norm(x)), heads)
        k, v = (_heads(t, heads) for t in attn.to_kv(cross.norm_context(tokens)).chunk(2, dim=-1))
        if flash:
            out = F.scaled_dot_product_attention(q[None], k[None], v[None])[0]
        else:
            key_mask = token_mask.unsqueeze(1).expand(-1, n, -1)
            key_mask = key_mask.unsqueeze(1).expand(-1, heads, -1, -1).reshape(b * heads, n, -1).contiguous()
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        x = attn.to_out(_unheads(out, heads)) + x
        x = cross_ff(x) + x
        for self_attention, feed_forward in self_blocks:
            x = self_attention(x) + x
            x = feed_forward(x) + x
    return net.to_logits(x)


def runners(net: Atomizer, names: list[str], token_chunk: int) -> dict[str, Callable[..., torch.Tensor]]:
    def official(*inputs):
        with use_backend("reference"):
            return materialised_forward(net, *inputs, flash=False)

    def fast(chunk: int) -> Callable[..., torch.Tensor]:
        def run(*inputs):
            net.token_chunk = chunk
            return net(*inputs)
        return run

    table = {"official-eager": official,
             "sdpa-flash": lambda *inputs: materialised_forward(net, *inputs, flash=True),
             "fast": fast(token_chunk), "fast-per-band": fast(SIDE * SIDE)}
    return {name: table[name] for name in names}


def forward_flops(name: str, tokens: int, token_dim: int, row_width: int) -> int:
    """2 per multiply-add: every GEMM of the network plus both attention products (``fast``: `row_width` columns
    per token row, padding included; the to_kv projection is folded into N-sized products)."""
    c = PAPER_ERA
    n, d = c["num_latents"], c["latent_dim"]
    cross_inner, latent_inner = c["cross_heads"] * c["cross_dim_head"], c["latent_heads"] * c["latent_dim_head"]
    feed_forward = 2 * n * (d * 8 * d + 4 * d * d)
    self_attention = 2 * n * (d * 3 * latent_inner + latent_inner * d) + 2 * 2 * n * n * latent_inner
    if name.startswith("fast"):
        cross = 2 * 2 * c["cross_heads"] * n * tokens * row_width + 2 * n * (d * cross_inner + cross_inner * d)
    else:
        cross = (2 * tokens * token_dim * 2 * cross_inner + 2 * 2 * n * tokens * cross_inner
                 + 2 * n * (d * cross_inner + cross_inner * d))
    per_layer = cross + feed_forward + c["self_per_cross_attn"] * (self_attention + feed_forward)
    head = 2 * (d * latent_inner + 2 * n * d * latent_inner + latent_inner * d) + 2 * d * c["num_classes"]
    return c["depth"] * per_layer + head


def _vm(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def child_memory(name: str, threads: int, token_chunk: int) -> None:
    """In a fresh process: peak resident memory of one window through candidate `name`, as JSON on stdout."""
    torch.set_num_threads(threads)
    image, mask, resolution = window()
    baseline = _vm("VmRSS")
    net = seeded_network()
    weights = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    with torch.no_grad():
        runners(net, [name], token_chunk)[name](image, mask, resolution)
    print(json.dumps({"candidate": name, "peak_bytes": _vm("VmHWM") - baseline, "weights_bytes": weights,
                      "token_bytes": SIDE * SIDE * BANDS * net.token_dim * 4}))


def measure_memory(name: str, threads: int, token_chunk: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child-memory", name, "--threads", str(threads),
                           "--token-chunk", str(token_chunk)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--token-chunk", type=int, default=Atomizer.token_chunk)
    parser.add_argument("--candidates", nargs="+", choices=CANDIDATES, default=list(CANDIDATES))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--child-memory", choices=CANDIDATES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        child_memory(args.child_memory, args.threads, args.token_chunk)
        return
    torch.set_num_threads(args.threads)
    names = ["official-eager"] + [n for n in args.candidates if n != "official-eager"]

    settle_allocator()
    net = seeded_network()
    image, mask, resolution = window()
    tokens = image.numel()
    run = runners(net, names, args.token_chunk)
    row_width = -(-(net.token_dim - net.transform.wavelength_dim + 3) // 8) * 8  # TokenGroups rows: [ρ|ρu|ρμ|1|0…]
    probe = gemm(GEMM_SIZE, GEMM_SIZE, GEMM_SIZE, calls=3)
    with torch.no_grad():
        outputs = {name: run[name](image, mask, resolution) for name in names}  # for the errors; warm-up follows
        result = compare({**{name: (lambda fn=run[name]: fn(image, mask, resolution)) for name in names},
                          probe.name: probe.call}, RunLength(count=args.repeats), warmup=1)
    gemm_rate = result[probe.name].rate(probe.flops) / 1e9
    memory = {} if args.no_memory else {name: measure_memory(name, args.threads, args.token_chunk) for name in names}

    rows = []
    for name in names:
        timing, flops = result[name], forward_flops(name, tokens, net.token_dim, row_width)
        row = {"candidate": name, "threads": args.threads, "token_chunk": args.token_chunk, "tokens": tokens,
               "token_dim": net.token_dim, "median_s": timing.median, "min_s": timing.min, "max_s": timing.max,
               "repeats": args.repeats, "tokens_per_s": timing.rate(tokens),
               "speedup_vs_official_eager": result.speedup(name, "official-eager"),
               "rel_err_vs_official_eager": _relative(outputs[name], outputs["official-eager"]),
               "flops": flops, "gflops": timing.rate(flops) / 1e9, "gemm_gflops": gemm_rate}
        if "sdpa-flash" in names:
            row["speedup_vs_sdpa_flash"] = result.speedup(name, "sdpa-flash")
        if name in memory:
            m = memory[name]
            row.update(m, peak_over_tokens_plus_weights=m["peak_bytes"] / (m["token_bytes"] + m["weights_bytes"]))
        rows.append(row)
    document = result.document("atomizer", rows, command=sys.argv,
                               extra={"gemm": probe.name, "gemm_gflops": gemm_rate})
    append_json_line(ROOT / "bench" / "atomizer.jsonl", document)

    environment = document["environment"]
    where = f"{environment['cpu_model']} ({' '.join(environment['cpu_flags'])}), {args.threads} threads"
    print(f"Atomizer paper-era size, one {SIDE}² {BANDS}-band window ({tokens} tokens × {net.token_dim}), {where}, "
          f"{document['created']}; fp32 GEMM {GEMM_SIZE}²: {gemm_rate:.0f} GFLOP/s")
    print(f"{'candidate':15s} {'median s':>9s} {'min-max s':>13s} {'tokens/s':>9s} {'vs eager':>8s} {'vs flash':>8s} "
          f"{'GFLOP/s':>8s} {'% GEMM':>6s} {'rel err':>8s} {'peak MiB':>8s} {'/(tok+w)':>8s}")
    for r in rows:
        peak = f"{r['peak_bytes'] / 2 ** 20:8.0f} {r['peak_over_tokens_plus_weights']:7.2f}x" if "peak_bytes" in r \
            else f"{'-':>8s} {'-':>8s}"
        flash = f"{r['speedup_vs_sdpa_flash']:7.2f}x" if "speedup_vs_sdpa_flash" in r else f"{'-':>8s}"
        print(f"{r['candidate']:15s} {r['median_s']:9.3f} {r['min_s']:6.2f}-{r['max_s']:<6.2f} "
              f"{r['tokens_per_s']:9.0f} {r['speedup_vs_official_eager']:7.2f}x {flash} {r['gflops']:8.1f} "
              f"{100 * r['gflops'] / gemm_rate:5.0f}% {r['rel_err_vs_official_eager']:8.1e} {peak}")
    if memory:
        m = next(iter(memory.values()))
        print(f"token tensor {m['token_bytes'] / 2 ** 20:.1f} MiB, weights {m['weights_bytes'] / 2 ** 20:.1f} MiB; "
              f"memory target: peak ≤ 1.5x their sum = {1.5 * (m['token_bytes'] + m['weights_bytes']) / 2 ** 20:.0f} "
              "MiB")


if __name__ == "__main__":
    main()
