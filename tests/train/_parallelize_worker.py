"""One rank of the 2-rank FSDP2 check (run by test_parallelize.py with torchrun's env vars).

Rank 0 writes, for each case, the gathered initial weights, the losses of a few AdamW steps
and the gathered final weights to OUT_DIR/result.pt."""
import os
import sys
import traceback
from datetime import timedelta


def main(out_dir: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import MixedPrecisionPolicy

    from parallelize_case import CONFIGS, SEED, train_steps
    from pygzlaw.train.parallelize import build_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()

    def mean(t):
        dist.all_reduce(t)
        return t / world

    def gather(model):
        return {n: p.full_tensor().detach().clone() for n, p in model.named_parameters()}

    result = {}
    for name, cfg in CONFIGS.items():
        model = build_model(cfg, "cpu", seed=SEED)
        local = {n: tuple(p.to_local().shape) for n, p in model.named_parameters()}
        init = gather(model)
        losses, grads = train_steps(model, rank, world, mean)
        result[name] = dict(init=init, losses=losses, grads=grads, final=gather(model),
                            local_shapes=local)
    # bf16 parameters with fp32 reduction (the GPU policy) also run on gloo
    bf16 = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    model = build_model(CONFIGS["untied"], "cpu", seed=SEED, mp_policy=bf16)
    result["bf16_losses"] = train_steps(model, rank, world, mean)[0]
    if rank == 0:
        tmp = os.path.join(out_dir, "result.pt.tmp")
        torch.save(result, tmp)
        os.replace(tmp, os.path.join(out_dir, "result.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # gloo can abort at interpreter exit (platform-notes.md)
