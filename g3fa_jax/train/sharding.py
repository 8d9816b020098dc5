"""Data parallelism over every device of every host with `jax.sharding`.

One mesh axis, 'data', spans `jax.devices()` (all hosts). The batch is split along its first axis,
everything else (parameters, optimiser and batch-norm state, frozen networks) is replicated. Under
`jax.jit` with these shardings XLA inserts the collectives, so batch statistics and gradients are
those of the global batch (the official code's SyncBatchNorm + DDP) with no pmap and no change to
the model code; the same program runs on 1 CPU, N devices and N processes.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


def make_mesh(devices: Optional[list] = None) -> Mesh:
  """A 1-D mesh ('data',) over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Split along axis 0 over 'data'; other axes whole."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  """The per-process batch size; raises if the global batch does not split evenly."""
  num_devices = mesh.devices.size
  if global_batch_size % num_devices:
    raise ValueError(f'batch_size {global_batch_size} must be a multiple of the number of devices '
                     f'({num_devices}: {jax.process_count()} process(es) x '
                     f'{jax.local_device_count()} local)')
  return global_batch_size // jax.process_count()


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Puts a host pytree (identical on every process) on every device of the mesh."""
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows of the global batch -> global arrays sharded along axis 0.

  With P processes each passes its own B/P consecutive rows (process i holds rows
  [i*B/P, (i+1)*B/P)), as `jax.make_array_from_process_local_data` assembles them.
  """
  sharding = batch_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}


def to_host(tree: Any) -> Any:
  """Replicated arrays -> numpy, on every process (each reads its own replica)."""
  return jax.device_get(tree)
