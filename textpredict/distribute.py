"""Training on several devices (``mirrored``) or machines (``multi-worker``).

Both strategies are synchronous data parallelism: every replica holds a copy of the
weights, takes its share of the rows of each batch, and the replicas' gradients are
summed before one shared update. ``batch_size`` is therefore the *global* batch: a run
on two GPUs (or two machines) with ``batch_size=32`` makes the same updates as one
device with ``batch_size=32``, up to the order of floating-point sums. What makes that
hold here, none of it Keras's default:

* every worker reads the whole text and takes its rows of each global batch
  (``split_each_batch``), instead of tf.data's default of giving workers different
  corpus files;
* the loss is averaged over the target tokens of the whole global batch, not of each
  replica's share (``model.TokenCrossEntropy``), because padding is unevenly spread
  over the replicas;
* gradients are clipped after the replicas' gradients are summed, not before
  (``clip_after_summing``);
* ``fit`` builds the network from the data's shapes, not from an extra pass over the
  shuffled data (``build_from_spec``), which would shift every epoch's order.

A multi-worker cluster is described by ``TF_CONFIG``, as in TensorFlow's
multi-worker guide. One worker, the chief (task ``chief``, or ``worker`` 0 when the
cluster has no ``chief``), writes the model directory; the others run the same code
but write into a temporary directory that is deleted (``training.train``), because
saving must stay symmetric across workers while only one copy is wanted.

Not supported: ``sequences="stream"``. Its network carries each row's state from one
batch to the next, which needs every replica to keep seeing the same rows and a
per-replica state of ``batch_size / replicas`` rows; it is refused rather than
silently trained with mixed-up states.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Sequence

import keras
import tensorflow as tf

from textpredict.errors import TextpredictError

STRATEGIES = ("default", "mirrored", "multi-worker")
TF_CONFIG = "TF_CONFIG"
_DEVICE = re.compile(r"/?(cpu|gpu):(\d+)", re.IGNORECASE)
# The tasks MultiWorkerMirroredStrategy trains with (an "evaluator" task would not).
_TRAINING_JOBS = ("chief", "worker")


def parse_devices(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"/gpu:0,/gpu:1"`` (or a list of such names) as normalised device names.

    None or empty means "every GPU" (or the CPU when there is none).
    """
    if text is None:
        return None
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip() for n in names if n.strip()]
    devices = []
    for name in names:
        match = _DEVICE.fullmatch(name)
        if not match:
            raise TextpredictError(
                f"devices must be names like /gpu:0 or /cpu:0, separated by commas; got {name!r}"
            )
        devices.append(f"/{match[1].lower()}:{int(match[2])}")
    if len(set(devices)) != len(devices):
        raise TextpredictError(f"devices must not repeat a device; got {', '.join(devices)}")
    if devices and len({d.split(":")[0] for d in devices}) > 1:
        raise TextpredictError("devices must be all GPUs or all CPUs, not a mixture")
    return tuple(devices) or None


def check_strategy(name: str, devices: Sequence[str] | None) -> None:
    """Raises ``TextpredictError`` for a strategy name and devices that do not go together.

    ``TF_CONFIG`` is checked later, when the strategy is made: a stored configuration
    stays readable on a machine that is not in the cluster.
    """
    if name not in STRATEGIES:
        raise TextpredictError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    if devices and name != "mirrored":
        raise TextpredictError("devices can only be chosen with the mirrored strategy")


def cluster_task() -> tuple[str, int, int]:
    """This process's task in the ``TF_CONFIG`` cluster: ``(type, index, workers)``.

    Raises ``TextpredictError`` with a one-line reason when ``TF_CONFIG`` is missing or
    is not a cluster of ``chief``/``worker`` addresses with this process's task in it.
    """
    example = (
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    text = os.environ.get(TF_CONFIG, "").strip()
    if not text:
        raise TextpredictError(
            f"the multi-worker strategy needs the cluster in {TF_CONFIG}, e.g. {example}"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise TextpredictError(f"{TF_CONFIG} is not valid JSON ({error.msg})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TextpredictError(f"{TF_CONFIG} must have a cluster and a task, e.g. {example}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and re.fullmatch(r"\S+:\d+", a) for a in addresses
        ):
            raise TextpredictError(
                f"{TF_CONFIG}: cluster job {job!r} must be a list of host:port addresses"
            )
    task_type, index = task.get("type"), task.get("index")
    if task_type not in _TRAINING_JOBS or task_type not in cluster:
        raise TextpredictError(
            f"{TF_CONFIG}: task type must be chief or worker and listed in the cluster; "
            f"got {task_type!r}"
        )
    if not isinstance(index, int) or not 0 <= index < len(cluster[task_type]):
        raise TextpredictError(
            f"{TF_CONFIG}: task index must be an index into cluster[{task_type!r}]; got {index!r}"
        )
    if len(cluster.get("chief", [])) > 1:
        raise TextpredictError(f"{TF_CONFIG}: a cluster has at most one chief")
    workers = sum(len(cluster.get(job, [])) for job in _TRAINING_JOBS)
    return task_type, index, workers


def is_chief(name: str) -> bool:
    """Whether this process writes the model: always, except on a multi-worker cluster's
    non-chief workers. Reads only ``TF_CONFIG``, so it can be asked before TensorFlow
    starts."""
    if name != "multi-worker":
        return True
    task_type, index, _ = cluster_task()
    if task_type == "chief":
        return True
    cluster = json.loads(os.environ[TF_CONFIG])["cluster"]
    return "chief" not in cluster and index == 0


def make_strategy(name: str, devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy of a name in ``STRATEGIES``.

    Call it before anything else runs TensorFlow: a cluster's collective operations, and
    the logical CPU devices that ``/cpu:1`` and up ask for, can only be set up then.

    Args:
        name: ``"default"`` (one device), ``"mirrored"`` (this machine's GPUs, or
            ``devices``) or ``"multi-worker"`` (the cluster in ``TF_CONFIG``; each worker
            uses its GPUs, or its CPU).
        devices: for ``"mirrored"``, the devices to use (see ``parse_devices``). CPU
            devices beyond the machine's one are made by splitting it into logical
            devices: no faster, but enough to try mirrored training without GPUs.
    """
    check_strategy(name, devices)
    if name == "multi-worker":
        cluster_task()  # a one-line error for a missing or malformed TF_CONFIG
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi-worker":
        return _multi_worker_strategy()
    if devices:
        _ensure_devices(devices)
    return tf.distribute.MirroredStrategy(list(devices) if devices else None)


@functools.cache
def _multi_worker_strategy() -> tf.distribute.Strategy:
    # One per process: the collective operations it configures cannot be set up twice.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _reduce_scalar_logs_across_workers()
    return strategy


def _reduce_scalar_logs_across_workers() -> None:
    """Works around Keras 3 averaging a training step's logs across workers with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails for the scalar loss that
    every step logs (``reduce_per_replica``; the other half of keras-team/keras#20585).
    The logs are averaged over the replicas instead; gradients are not involved.
    """
    from keras.src.backend.tensorflow import trainer

    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction != "auto" or not trainer._collective_all_reduce_multi_worker(strategy):
            return keras_reduce(values, strategy, reduction)
        return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)

    trainer.reduce_per_replica = reduce_per_replica


def _ensure_devices(devices: Sequence[str]) -> None:
    """Checks that ``devices`` exist, splitting the CPU into logical devices as needed."""
    kind = devices[0].split(":")[0][1:].upper()  # "CPU" or "GPU"
    wanted = max(int(d.split(":")[1]) for d in devices) + 1
    physical = tf.config.list_physical_devices(kind)
    if kind == "CPU" and wanted > 1 and len(physical) == 1:
        configured = tf.config.get_logical_device_configuration(physical[0]) or [None]
        if len(configured) < wanted:
            try:
                tf.config.set_logical_device_configuration(
                    physical[0], [tf.config.LogicalDeviceConfiguration()] * wanted
                )
            except RuntimeError:
                raise TextpredictError(
                    f"cannot split the CPU into {wanted} devices after TensorFlow has "
                    "started; choose the devices in a fresh process"
                ) from None
        return
    available = len(tf.config.list_logical_devices(kind))
    missing = [d for d in devices if int(d.split(":")[1]) >= available]
    if missing:
        raise TextpredictError(
            f"no device {', '.join(missing)} on this machine ({available} {kind} found)"
        )


def clip_after_summing(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer, made to clip the gradient of the global batch, as one device would.

    Keras 3 clips (``clipnorm``, ``global_clipnorm``) in each replica, *before* the
    replicas' gradients are summed, so ``clip(g₁) + clip(g₂)`` replaces ``clip(g₁ + g₂)``
    and a strategy would change the training whenever clipping acts (tf.keras refused
    clipping under a strategy for this reason: tensorflow/tensorflow#33929). Here each
    replica sums the gradients first, clips the sum, and hands on ``1/replicas`` of it,
    which Keras's own summing then restores. Keras offers no public hook for this, so
    the optimizer's clipping method is wrapped; it changes nothing on one device.
    """
    clip = optimizer._clip_gradients

    def clip_summed(grads):
        context = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if context is None or replicas == 1:
            return clip(grads)
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, list(grads))
        return [_divide(g, replicas) for g in clip(summed)]

    optimizer._clip_gradients = clip_summed
    return optimizer


def _divide(gradient, replicas):
    if isinstance(gradient, tf.IndexedSlices):  # an embedding's gradient
        return tf.IndexedSlices(gradient.values / replicas, gradient.indices, gradient.dense_shape)
    return gradient / replicas


def build_from_spec(network: keras.Model, batches: tf.data.Dataset) -> None:
    """Creates the variables of a compiled network's optimiser, loss and metrics from
    the shapes of ``batches``, before ``fit`` (which needs none of its data for it).

    Without a strategy Keras would create them inside the first training step, after
    a resumed run's checkpoint, which holds them all, must be restored: so they are
    built here. Under a strategy, Keras 3 starts ``fit`` by pulling one batch from a
    fresh iterator of the training data to build them
    (``Trainer._maybe_symbolic_build``). Two things go wrong: on a cluster it then
    reduces that batch across workers, which fails (keras-team/keras#20585); and
    everywhere the extra iteration draws one of the dataset's shuffle orders, so every
    epoch would see the order a single device sees one epoch later. So ``fit`` and
    ``evaluate`` are made to build from the dataset's ``element_spec`` instead.
    """
    example = tf.nest.map_structure(
        lambda spec: keras.KerasTensor(tuple(spec.shape), spec.dtype.name), batches.element_spec
    )
    if network._distribute_strategy is None:
        network._symbolic_build(data_batch=example)
        return
    build = network._maybe_symbolic_build
    network._maybe_symbolic_build = lambda iterator=None, data_batch=None: build(data_batch=example)


def split_each_batch(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset, told to give each worker its rows of every global batch.

    tf.data's default (``AUTO``) shards a cluster's input by *file* when it can, so each
    worker would read different corpus files in a different order from a single device.
    ``DATA`` has each worker run the whole pipeline, same seed, and keep its share of
    each batch. No effect on one machine.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
