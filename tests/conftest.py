"""Root test configuration (shared: keep it minimal).

Triton's CPU interpreter must be switched on before anything imports triton (it is read when
kernels are decorated), so it is set here, at collection start, on machines without an NVIDIA
GPU. With a GPU the Triton kernels run natively instead.
"""
import glob
import os

if not glob.glob("/dev/nvidia[0-9]*"):
    os.environ.setdefault("TRITON_INTERPRET", "1")


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def local_ray(request):
    """A local Ray for one test module: 2 CPUs, loopback, no dashboard, 100 MiB object store.

    A module that sets ``RAY_ENV_VARS = {...}`` passes them to Ray's workers (runtime_env).
    """
    import ray

    env = getattr(request.module, "RAY_ENV_VARS", None)
    extra = {"runtime_env": {"env_vars": env}} if env else {}
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             object_store_memory=100 << 20, log_to_driver=False, **extra)
    yield ray
    ray.shutdown()
