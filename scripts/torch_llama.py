#!/usr/bin/env python3
"""The project's PyTorch reference for the Llama-style model of MODEL.md.

  PYTHON scripts/torch_llama.py bench PRESET.json [--steps N] [--cores C]
      tokens_per_s of full training steps (forward, backward, gradient clipping, AdamW) on random
      tokens after two warm-ups. Each thread layout that makes sense for this torch build runs in
      its own process (thread pools are sized at start): with MKL (the pip wheel), intra-op
      threads 1..C in powers of two and C, one interop thread; with another BLAS (Debian's
      OpenBLAS), OpenMP threads vs. BLAS threads. The best is reported, with its layout and the
      peak resident size (peak_rss_bytes) of the process that measured it; `layouts` lists all.
  PYTHON scripts/torch_llama.py loss --checkpoint FILE --tokens FILE.json
      mean cross-entropy (float32) of a whole-model checkpoint on {"inputs": [[..]], "targets": [[..]]}.
  PYTHON scripts/torch_llama.py hf-loss --model DIR --tokens FILE.json
      the same loss from a Hugging Face folder (`tah export --hf`), loaded with transformers'
      LlamaForCausalLM.from_pretrained.

Each prints one JSON line. Parameter names are Hugging Face's LlamaForCausalLM names, so a
checkpoint's weights load with load_state_dict(strict=True). PYTHON is the peer that `tah` picks
(cli/peer-python.ts): the repository's .venv-torch (current PyTorch from pip:
`python3 -m venv .venv-torch && .venv-torch/bin/pip install torch transformers`), else Debian's
python3-torch (1.13, with libopenblas0-pthread). The safetensors module is not needed for `loss`
and `bench`, files are parsed here; `hf-loss` needs transformers.
"""
import argparse, json, math, os, resource, struct, subprocess, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.heads, self.kv_heads = c["n_heads"], c.get("n_kv_heads", c["n_heads"])
        self.head_dim = d // self.heads
        self.q_proj = nn.Linear(d, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        split = lambda t, n: t.view(B, T, n, self.head_dim).transpose(1, 2)  # [B, n, T, hd]
        q = split(self.q_proj(x), self.heads)
        k = split(self.k_proj(x), self.kv_heads)
        v = split(self.v_proj(x), self.kv_heads)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if self.kv_heads != self.heads:  # grouped-query attention: repeat each kv head
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = scores.masked_fill(causal, float("-inf")).softmax(-1)
        return self.o_proj((att @ v).transpose(1, 2).reshape(B, T, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["d_model"], c["ffn_hidden"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["d_model"], c["norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["d_model"], c["norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):  # the "model." prefix of the Hugging Face names
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["d_model"])
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c["n_layers"]))
        self.norm = RMSNorm(c["d_model"], c["norm_eps"])


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = Body(c)
        self.lm_head = nn.Linear(c["d_model"], c["vocab_size"], bias=False)
        head_dim = c["d_model"] // c["n_heads"]
        inv_freq = 1.0 / c["rope_theta"] ** (torch.arange(0, head_dim, 2).float() / head_dim)
        angles = torch.outer(torch.arange(c["seq_len"]).float(), inv_freq)
        angles = torch.cat([angles, angles], dim=-1)  # Hugging Face layout: [f, f]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        for p in self.parameters():  # matrices N(0, 0.02), norms stay 1
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)

    def logits(self, tokens):
        T = tokens.shape[1]
        x = self.model.embed_tokens(tokens)
        for layer in self.model.layers:
            x = layer(x, self.cos[:T], self.sin[:T])
        return self.lm_head(self.model.norm(x))

    def forward(self, inputs, targets):
        lg = self.logits(inputs)
        return F.cross_entropy(lg.reshape(-1, lg.shape[-1]), targets.reshape(-1))


class Fail(Exception):
    """A problem to report as one line on stderr."""


DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
          "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path):
    """Returns (tensors, metadata) of a safetensors file, checking offsets against the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Fail("checkpoint %s: cannot read (%s)" % (path, e.strerror))
    if len(raw) < 8:
        raise Fail("checkpoint %s: truncated (%d bytes)" % (path, len(raw)))
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise Fail("checkpoint %s: truncated: header length %d runs past the end of the file" % (path, n))
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except ValueError as e:
        raise Fail("checkpoint %s: header is not valid JSON (%s)" % (path, e))
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(raw)[8 + n:]
    tensors = {}
    for name, info in header.items():
        try:
            begin, end = info["data_offsets"]
            dtype, shape = DTYPES.get(info["dtype"]), info["shape"]
        except (KeyError, TypeError, ValueError) as e:
            raise Fail("checkpoint %s: corrupt header entry for tensor %s (%s)" % (path, name, e))
        if dtype is None:
            raise Fail("checkpoint %s: tensor %s has unsupported dtype %s" % (path, name, info["dtype"]))
        if not 0 <= begin <= end <= len(data):
            raise Fail("checkpoint %s: truncated: tensor %s lies past the end of the data" % (path, name))
        try:
            if begin == end:
                tensors[name] = torch.empty(shape, dtype=dtype)
            else:  # copy: frombuffer needs a writable, suitably aligned buffer
                tensors[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape)
        except (RuntimeError, ValueError, TypeError) as e:
            raise Fail("checkpoint %s: tensor %s does not match its shape %s (%s)" % (path, name, shape, e))
    return tensors, meta


def read_tokens(path, cfg):
    """inputs and targets, [batch, seq] int64 tensors, checked against the model's config."""
    try:
        with open(path) as f:
            tok = json.load(f)
        inputs = torch.tensor(tok["inputs"], dtype=torch.long)
        targets = torch.tensor(tok["targets"], dtype=torch.long)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Fail("tokens %s: %s" % (path, e))
    if inputs.dim() != 2 or inputs.shape != targets.shape:
        raise Fail("tokens %s: inputs and targets must be equal [batch, seq] lists" % path)
    if inputs.shape[1] > cfg["seq_len"]:
        raise Fail("tokens %s: sequences of %d tokens exceed seq_len %d" % (path, inputs.shape[1], cfg["seq_len"]))
    for t in (inputs, targets):
        if t.numel() and (t.min() < 0 or t.max() >= cfg["vocab_size"]):
            raise Fail("tokens %s: token ids must lie in [0, %d)" % (path, cfg["vocab_size"]))
    return inputs, targets


def cmd_loss(a):
    tensors, meta = read_safetensors(a.checkpoint)
    if meta.get("format") != "tah-checkpoint":
        raise Fail("checkpoint %s: not a tah-checkpoint file" % a.checkpoint)
    if meta.get("has_embed") != "true" or meta.get("has_head") != "true":
        raise Fail("checkpoint %s: holds one stage (layers %s), not the whole model" % (a.checkpoint, meta.get("layers")))
    try:
        cfg = json.loads(meta["config"])
        torch.manual_seed(0)
        model = Llama(cfg)
    except (KeyError, ValueError, TypeError) as e:
        raise Fail("checkpoint %s: bad config metadata (%s)" % (a.checkpoint, e))
    weights = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise Fail("checkpoint %s: does not fit the model: %s" % (a.checkpoint, " ".join(str(e).split())))
    inputs, targets = read_tokens(a.tokens, cfg)
    with torch.no_grad():
        loss = model(inputs, targets).item()
    print(json.dumps({"loss": loss, "params": sum(p.numel() for p in model.parameters())}))


def cmd_hf_loss(a):
    try:
        import transformers
    except ImportError as e:
        raise Fail("hf-loss needs transformers (%s): .venv-torch/bin/pip install transformers" % e)
    transformers.logging.disable_progress_bar()  # its "Loading weights" bar on stderr
    try:
        with open(os.path.join(a.model, "config.json")) as f:
            hf = json.load(f)
        model = transformers.LlamaForCausalLM.from_pretrained(a.model)
    except Exception as e:  # transformers raises many kinds for a folder it cannot load
        raise Fail("model %s: transformers cannot load it (%s)" % (a.model, " ".join(str(e).split())))
    model.eval()
    cfg = {"seq_len": hf["max_position_embeddings"], "vocab_size": hf["vocab_size"]}
    inputs, targets = read_tokens(a.tokens, cfg)
    with torch.no_grad():
        logits = model(input_ids=inputs).logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).item()
    print(json.dumps({"loss": loss, "params": sum(p.numel() for p in model.parameters()),
                      "impl": "transformers-%s" % transformers.__version__, "class": type(model).__name__}))


def peak_rss_bytes():
    """Peak resident size of this process (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def blas_backend():
    """'mkl' for the pip wheels (MKL + oneDNN, OpenMP threads), else 'openblas' or 'generic' (Debian)."""
    shown = torch.__config__.show()
    if "BLAS_INFO=mkl" in shown:
        return "mkl"
    return "openblas" if "openblas" in shown.lower() else "generic"


def thread_layouts(cores, blas):
    """(intra-op/OpenMP threads, BLAS threads) pairs worth trying on this build."""
    if blas == "mkl":  # MKL follows torch's intra-op thread count
        counts = {1, cores, max(1, cores // 2)} | {1 << i for i in range(cores.bit_length()) if 1 << i <= cores}
        return [(n, n) for n in sorted(counts)]
    return sorted({(1, cores), (cores, 1), (cores, cores)})  # OpenBLAS has its own thread pool


def describe_layout(blas, omp, blas_threads):
    if blas == "mkl":
        return "intra-op %d (OpenMP, MKL), interop 1" % omp
    return "omp %d, blas %d, interop 1" % (omp, blas_threads)


def fused_adamw_supported():
    """PyTorch 2.4 and later have a fused AdamW kernel on the CPU, its fastest AdamW there."""
    major, minor = (int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
    return (major, minor) >= (2, 4)


def bench_once(cfg, steps, threads):
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = Llama(cfg)
    fused = fused_adamw_supported()
    extra = {"fused": True} if fused else {}
    # The engine's step: AdamW (betas 0.9, 0.95, decoupled decay) after clipping the gradient norm to 1.
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, **extra)
    B, T, V = cfg["batch_size"], cfg["seq_len"], cfg["vocab_size"]
    tok = torch.randint(0, V, (B, T + 1))
    x, y = tok[:, :-1], tok[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(2):  # warm-ups
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    dt = (time.perf_counter() - t0) / steps
    return {"impl": "pytorch-%s" % torch.__version__, "params": sum(p.numel() for p in model.parameters()),
            "tokens_per_step": B * T, "step_s": round(dt, 4), "tokens_per_s": round(B * T / dt, 1),
            "final_loss": round(loss, 4), "optimizer": "AdamW (fused)" if fused else "AdamW",
            "peak_rss_bytes": peak_rss_bytes()}


def cmd_bench(a):
    try:
        with open(a.config) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise Fail("preset %s: %s" % (a.config, e))
    blas = blas_backend()
    if a.layout:  # one measurement, in a process whose thread pools were sized at start
        omp, blas_threads = (int(v) for v in a.layout.split(","))
        torch.set_num_interop_threads(1)
        r = bench_once(cfg, a.steps, omp)
        r.update(omp_threads=omp, blas_threads=blas_threads, interop_threads=1, blas=blas,
                 layout=describe_layout(blas, omp, blas_threads))
        print(json.dumps(r))
        return
    best, tried = None, []
    for omp, blas_threads in thread_layouts(a.cores, blas):
        env = dict(os.environ, OMP_NUM_THREADS=str(omp), MKL_NUM_THREADS=str(blas_threads), OPENBLAS_NUM_THREADS=str(blas_threads))
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "bench", a.config, "--steps", str(a.steps),
                            "--layout", "%d,%d" % (omp, blas_threads)], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise Fail("bench with %s failed: %s" % (describe_layout(blas, omp, blas_threads), p.stderr.strip()[-500:]))
        r = json.loads(p.stdout.strip().splitlines()[-1])
        tried.append({k: r[k] for k in ("layout", "tokens_per_s", "step_s", "peak_rss_bytes")})
        if best is None or r["tokens_per_s"] > best["tokens_per_s"]:
            best = r
    best["layouts"] = tried
    print(json.dumps(best))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="training throughput of a preset")
    b.add_argument("config")
    b.add_argument("--steps", type=int, default=5)
    b.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    b.add_argument("--layout", help=argparse.SUPPRESS)  # internal: "intra-op,blas" threads
    lo = sub.add_parser("loss", help="loss of a checkpoint on given tokens")
    lo.add_argument("--checkpoint", required=True)
    lo.add_argument("--tokens", required=True)
    hl = sub.add_parser("hf-loss", help="loss of a Hugging Face folder (tah export --hf) on given tokens")
    hl.add_argument("--model", required=True)
    hl.add_argument("--tokens", required=True)
    a = ap.parse_args()
    try:
        {"bench": cmd_bench, "loss": cmd_loss, "hf-loss": cmd_hf_loss}[a.cmd](a)
    except Fail as e:
        print("torch_llama.py: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
