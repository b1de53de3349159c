"""FSDP2 on one GPU over NCCL: the sharded path the trainer takes under torchrun with 2+ ranks,
which a one-process torchrun run does not take (WORLD_SIZE 1 trains unsharded). NCCL puts one
rank per GPU, so on a one-GPU machine this is the closest check: a 1-rank process group, the
meta build -> fully_shard -> to_empty -> init path, bf16 mixed precision, a few AdamW steps
against the unsharded model, and a sharded checkpoint save and load.

Usage: python3 bench/gpu_fsdp_smoke.py OUT_DIR [--cpu]   (one JSON line; exit 1 on a mismatch)
--cpu: the same over gloo in fp32 (a dry run of this script where there is no GPU).
"""
import json
import os
import sys
import time


def main() -> int:
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    from pygzlaw.model import GPT, model_config
    from pygzlaw.train.parallelize import build_model

    args = [a for a in sys.argv[1:] if a != "--cpu"]
    cpu = "--cpu" in sys.argv[1:]
    out = args[0] if args else "gpu-fsdp-smoke"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29531")
    if cpu:
        dev = torch.device("cpu")
        dist.init_process_group("gloo", rank=0, world_size=1)
    else:
        dev = torch.device("cuda:0")
        torch.cuda.set_device(dev)
        dist.init_process_group("nccl", rank=0, world_size=1, device_id=dev)
    t0 = time.perf_counter()
    cfg = model_config("gpt-4m" if cpu else "gpt-20m", 32001, 256)
    sharded = build_model(cfg, dev, seed=0, shard=True)
    plain = GPT(cfg).to(dev)
    plain.init_weights(0)
    x = torch.randint(0, 32001, (8, 257), device=dev)
    losses = {"fsdp": [], "plain": []}
    for name, m in (("fsdp", sharded), ("plain", plain)):
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        for _ in range(3):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=name == "plain" and not cpu):
                loss = m(x[:, :-1], x[:, 1:])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses[name].append(float(loss.detach()))
        if name == "fsdp":
            model_sd, optim_sd = get_state_dict(m, opt)
            dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=os.path.join(out, "ckpt"))
            dcp.load({"model": model_sd, "optim": optim_sd}, checkpoint_id=os.path.join(out, "ckpt"))
            set_state_dict(m, opt, model_state_dict=model_sd, optim_state_dict=optim_sd)
    if not cpu:
        torch.cuda.synchronize()
    diff = max(abs(a - b) for a, b in zip(losses["fsdp"], losses["plain"]))
    # GPU: both compute in bf16 (FSDP2 casts the parameters, the plain model autocasts), so
    # rounding differs from the first step; CPU: fp32 on both, equal to rounding
    first = abs(losses["fsdp"][0] - losses["plain"][0])
    ok = diff < 1e-4 if cpu else (first < 5e-2 and diff < 0.25)
    print(json.dumps({"device": str(dev), "fsdp_losses": losses["fsdp"],
                      "plain_losses": losses["plain"], "first_step_abs_diff": first,
                      "max_abs_diff": diff, "ok": ok, "seconds": time.perf_counter() - t0}))
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
