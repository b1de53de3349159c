"""FSDP2 for the GPT, applied from outside the model (torchtitan's pattern).

Order: build on the meta device → ``fully_shard`` each block, the embedding and the output
head, then the root → ``to_empty(device)`` → ``init_weights(seed)``. :func:`build_model` does
all four; :func:`parallelize` is the sharding step alone.
"""
from __future__ import annotations

import torch
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from pygzlaw.model import GPT, ModelConfig


def default_mp_policy(device: torch.device | str) -> MixedPrecisionPolicy:
    """bf16 parameters with fp32 gradient reduction on CUDA (the usual GPU setting); plain
    fp32 elsewhere (CPU matmuls gain little from bf16 and tests compare to 1e-5)."""
    if torch.device(device).type == "cuda":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def parallelize(model: GPT, mesh=None, mp_policy: MixedPrecisionPolicy | None = None) -> GPT:
    """Shard ``model`` in place with FSDP2 and return it.

    Units: each block (the last one is not resharded after forward: backward starts with it),
    the token embedding and the output head (final norm + projection) when untied (a tied
    weight must live in one unit, the root), then the root (the rest: RoPE buffers).
    Call it on a model built on the meta device, before ``to_empty`` and ``init_weights``.

    Args:
        model: a GPT.
        mesh: a 1-D DeviceMesh over the data-parallel ranks; None = every rank of the default
            process group. Without an initialised process group the model is returned as is
            (single process).
        mp_policy: FSDP2 MixedPrecisionPolicy; None = :func:`default_mp_policy` for the
            device the mesh uses.

    Returns:
        the same model object, now sharded.
    """
    import torch.distributed as dist

    if mesh is None:
        if not (dist.is_available() and dist.is_initialized()):
            return model
        from torch.distributed.device_mesh import init_device_mesh

        device_type = "cuda" if dist.get_backend() == "nccl" else "cpu"
        mesh = init_device_mesh(device_type, (dist.get_world_size(),))
    if mp_policy is None:
        mp_policy = default_mp_policy(mesh.device_type)
    kw = dict(mesh=mesh, mp_policy=mp_policy)
    blocks = list(model.layers.values())
    if not model.cfg.tie_embeddings:
        fully_shard(model.tok_embeddings, **kw)
    for i, block in enumerate(blocks):
        fully_shard(block, reshard_after_forward=i < len(blocks) - 1, **kw)
    if not model.cfg.tie_embeddings:
        fully_shard(model.head, reshard_after_forward=False, **kw)
    fully_shard(model, **kw)
    return model


def build_model(cfg: ModelConfig, device: torch.device | str, *, seed: int = 0, mesh=None,
                mp_policy: MixedPrecisionPolicy | None = None, shard: bool | None = None) -> GPT:
    """Meta-device build → FSDP2 (when sharding) → ``to_empty(device)`` → ``init_weights(seed)``.

    The weights equal those of ``GPT(cfg).init_weights(seed)`` on one process, whatever the
    number of ranks (see ``GPT.init_weights``).

    Args:
        cfg: model shape.
        device: where parameters live (e.g. "cpu", "cuda:0").
        seed: init seed.
        mesh, mp_policy: as in :func:`parallelize`.
        shard: True = shard (requires a mesh or an initialised process group); False = plain
            model; None = shard when a mesh is given or a process group is initialised.

    Raises:
        ValueError: shard=True without a mesh or process group.
    """
    import torch.distributed as dist

    have_group = mesh is not None or (dist.is_available() and dist.is_initialized())
    if shard is None:
        shard = have_group
    if shard and not have_group:
        raise ValueError("build_model(shard=True) needs a mesh or an initialised process group "
                         "(run under torchrun, or call torch.distributed.init_process_group)")
    with torch.device("meta"):
        model = GPT(cfg)
    if shard:
        parallelize(model, mesh, mp_policy)
    model.to_empty(device=device)
    model.init_weights(seed)
    return model
