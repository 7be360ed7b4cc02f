#!/usr/bin/env python3
"""PyTorch peer of SeqDsl's benchmark harness (bench/SeqDsl.Bench, command `peer`).

The harness starts this script once per configuration and side, writes one JSON line describing the
model, then drives it in interleaved rounds over standard input/output:

  harness -> peer: {"config": {...}}        peer -> harness: {"ready": true, "torch": "1.13.1", ...}
  harness -> peer: {"run": K, "warmup": W}  peer -> harness: {"ms": [t1, ..., tK]}   (ms per training step;
                                            W untimed steps first, 0 when absent)
  harness -> peer: {"quit": true}

Each step is what SeqDsl's TrainingSession.Step does: forward, loss, backward, optimizer update.
The models are written the way a PyTorch user writes them (nn.Embedding, nn.LSTM/GRU/RNN with
batch_first, nn.Linear), with the same sizes, losses and optimizers as the SeqDsl side.
With {"layerOnly": true} a step is the recurrent layer alone: forward over a fixed random input that
requires its gradient, then backward from a fixed random gradient of the last step's output (the
input's and every weight's gradient; no loss, no optimizer), as the harness's `peer --layer` side.

With {"sgemm": N} a step is one N x N x N float32 product (a @ b) instead of a model: the rate of the BLAS this
process loaded, timed in the same rounds as the models (the harness starts it with OPENBLAS_CORETYPE set to the widest
kernels this CPU runs, since OpenBLAS 0.3.21 does not recognise every newer CPU and falls back to narrower ones).

Memory: with {"malloc": "retain"} the peer applies the same glibc mallopt settings as SeqDsl's
Backend (no mmap'd blocks, mmap threshold 32 MiB, trim threshold 1 GiB, top pad 64 MiB) before any tensor exists.
Subnormals: with {"flushDenormal": true} it calls torch.set_flush_denormal(True) (SeqDsl's kernels flush them).
"""
import ctypes
import json
import os
import sys
import time


def apply_malloc(policy):
    if policy != "retain":
        return "system"
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4
    ok = (libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1) & (libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1) \
        & (libc.mallopt(M_TOP_PAD, 64 << 20) == 1) & (libc.mallopt(M_MMAP_MAX, 0) == 1)
    return "retain" if ok else "retain refused"


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    first = json.loads(sys.stdin.readline())
    cfg = first["config"]
    malloc = apply_malloc(cfg.get("malloc", "system"))

    import torch  # after mallopt, so the allocator settings hold from the first tensor on
    from torch import nn

    # {"flushDenormal": true}: subnormal floats flushed to zero (FTZ/DAZ), as SeqDsl's own loops run; set before
    # libtorch starts its OpenMP workers, which take the creating thread's floating-point mode
    flush = bool(cfg.get("flushDenormal")) and torch.set_flush_denormal(True)
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(1)
    if cfg.get("sgemm"):
        n = cfg["sgemm"]
        a, b = torch.randn(n, n), torch.randn(n, n)
        serve(lambda: a @ b, cfg, torch, malloc, flush)
        return
    B, T = cfg["batch"], cfg["time"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(cfg["vocab"], cfg["embed"]) if cfg.get("embed") else None
            width = cfg["embed"] if cfg.get("embed") else cfg["features"]
            cell = cfg["cell"]
            kw = dict(num_layers=cfg.get("layers", 1), batch_first=True, bidirectional=cfg.get("bidirectional", False))
            if cell == "lstm":
                self.rnn = nn.LSTM(width, cfg["hidden"], **kw)
            elif cell == "gru":
                self.rnn = nn.GRU(width, cfg["hidden"], **kw)
            else:
                self.rnn = nn.RNN(width, cfg["hidden"], nonlinearity="tanh", **kw)
            width = cfg["hidden"] * (2 if cfg.get("bidirectional") else 1)
            self.spatial = cfg.get("spatialDropout", 0.0)
            self.dropout = nn.Dropout(cfg.get("dropout", 0.0))
            heads = []
            for units, act in cfg["dense"]:
                heads.append(nn.Linear(width, units))
                if act == "relu":
                    heads.append(nn.ReLU())
                elif act == "sigmoid":
                    heads.append(nn.Sigmoid())
                width = units
            self.head = nn.Sequential(*heads)
            self.per_step = cfg["perStep"]

        def forward(self, x):
            if self.embed is not None:
                x = self.embed(x)
            if self.spatial > 0 and self.training:  # SpatialDropout1D: the same channels dropped at every step
                keep = torch.empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.spatial)
                x = x * keep / (1 - self.spatial)
            out, _ = self.rnn(x)
            if not self.per_step:
                out = out[:, -1, :]
            return self.head(self.dropout(out))

    net = Net()
    if cfg["optimizer"] == "rmsprop":
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.get("lr", 1e-3))
    loss_kind = cfg["loss"]
    if loss_kind == "bce":
        loss_fn = nn.BCELoss()
    elif loss_kind == "ce":
        loss_fn = nn.CrossEntropyLoss()
    else:
        loss_fn = nn.MSELoss()

    g = torch.Generator().manual_seed(2)
    if cfg.get("embed"):
        x = torch.randint(0, cfg["vocab"], (B, T), generator=g)
    elif cfg.get("oneHot"):
        x = nn.functional.one_hot(torch.randint(0, cfg["features"], (B, T), generator=g), cfg["features"]).float()
    else:
        x = torch.randn(B, T, cfg["features"], generator=g)
    out_units = cfg["dense"][-1][0]
    if loss_kind == "bce":
        y = torch.randint(0, 2, (B, out_units), generator=g).float()
    elif loss_kind == "ce":
        y = torch.randint(0, out_units, (B, T) if cfg["perStep"] else (B,), generator=g)
    else:
        y = torch.randn(B, out_units, generator=g)

    def full_step():
        opt.zero_grad()
        out = net(x)
        if loss_kind == "ce" and cfg["perStep"]:
            loss = loss_fn(out.reshape(-1, out_units), y.reshape(-1))
        else:
            loss = loss_fn(out, y)
        loss.backward()
        opt.step()
        return loss.item()

    if cfg.get("layerOnly"):
        # the recurrent layer alone (peer --layer): its forward and backward, nothing else
        x = x.clone().requires_grad_(True)
        upstream = torch.randn(B, cfg["hidden"], generator=g)
        rnn = net.rnn

        def step():
            x.grad = None
            rnn.zero_grad(set_to_none=True)
            out, _ = rnn(x)
            out[:, -1, :].backward(upstream)
            return 0.0
    else:
        step = full_step

    net.train()
    serve(step, cfg, torch, malloc, flush)


def serve(step, cfg, torch, malloc, flush):
    """Warms up, says it is ready, then answers the harness's run requests with the times of `step`."""
    for _ in range(cfg.get("warmup", 2)):
        step()
    send({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "malloc": malloc, "flushDenormal": flush,
          "blas": blas_library(), "openblasCoreType": os.environ.get("OPENBLAS_CORETYPE")})
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("quit"):
            break
        for _ in range(msg.get("warmup", 0)):
            step()
        times = []
        for _ in range(msg["run"]):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1000.0)
        send({"ms": times})


def blas_library():
    """The BLAS shared object this process loaded (Debian's torch links libblas.so.3)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "libblas" in line or "openblas" in line:
                    return line.split()[-1]
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
