"""``pygzlaw generate --engine ray``: one Ray task per shard (a range of documents).

:func:`generate_ray` is :func:`pygzlaw.sampler.dataset.write_dataset` with a shard runner
that samples the missing shards as Ray tasks (:func:`~pygzlaw.sampler.dataset.
sample_shard_from_spec`: each rebuilds the Sampler from the grammar JSON and writes its shard
atomically under ``out_dir``, which every node must be able to write). The driver keeps
everything else: planning, resume, the manifest (written once per finished shard, by the
driver only) and the dataset statistics. Document d depends only on (grammar, seed, d), so the
shards are byte-identical to a local run's, whatever the number of tasks or threads.
"""
from __future__ import annotations

__all__ = ["generate_ray"]


def generate_ray(grammar, out_dir: str, *, address: str | None = None, task_threads: int = 1,
                 max_retries: int = 3, timeout_s: float | None = None, **write_dataset_kw) -> dict:
    """Write a token dataset with one Ray task per missing shard; same result as write_dataset.

    Args:
        grammar: a pygzlaw.grammar.Grammar.
        out_dir: dataset directory, on storage every node can write.
        address: Ray cluster to join; None = RAY_ADDRESS, else a new local Ray (dashboard off),
            shut down at the end. Ignored when Ray is already initialized.
        task_threads: sampler threads per task, also the CPUs each task declares.
        max_retries: Ray reruns of a task whose worker dies or that raises OSError (a shard
            is written to a temporary name and renamed, so a rerun replaces it whole).
        timeout_s: raise TimeoutError if no task finishes for this long; None = wait.
        **write_dataset_kw: the arguments of write_dataset (n_tokens, doc_tokens, seed,
            shard_docs, separator, dtype, fmt, overwrite, progress, origin, ...).

    Returns:
        write_dataset's dict.

    Raises:
        ImportError: Ray is not installed (names the extra); otherwise as write_dataset.
    """
    from pygzlaw.sampler.dataset import sample_shard_from_spec, write_dataset
    from pygzlaw.scan.ray_engine import as_completed, require_ray

    if task_threads < 1:
        raise ValueError(f"task_threads={task_threads} (--threads with --engine ray) must be >= 1")
    if max_retries < 0:
        raise ValueError(f"max_retries={max_retries} must be >= 0")
    ray = require_ray()

    def runner(todo, spec):
        task = ray.remote(sample_shard_from_spec).options(
            num_cpus=task_threads, max_retries=max_retries, retry_exceptions=[OSError])
        spec_ref = ray.put(spec)  # the grammar travels once, not once per task
        pending = [task.remote(spec_ref, i, first, n, threads=task_threads)
                   for i, first, n in todo]
        for _ref, result in as_completed(ray, pending, timeout_s, "generate"):
            yield result

    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        return write_dataset(grammar, out_dir, shard_runner=runner, **write_dataset_kw)
    finally:
        if started:
            ray.shutdown()
