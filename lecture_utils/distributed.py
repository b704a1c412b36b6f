"""Training in several processes (``torchrun``): everything about them, shared by the loop and the CLI.

``torchrun --nproc_per_node=N -m lecture_utils train ...`` starts N processes with ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` set. :meth:`ProcessGroup.from_env` joins them (nccl on CUDA, gloo on the
CPU); :func:`split_micro_batches` spreads the micro-batches of a step over them; the training loop
averages losses (:func:`mean_across_ranks`) and stops every process at the same step
(:func:`any_rank`). In one process everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process in the initialised process group; ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _several() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _reduce_device(device: torch.device) -> torch.device | str:
    import torch.distributed as dist

    return device if dist.get_backend() == "nccl" else "cpu"


def mean_across_ranks(value: float, device: torch.device) -> float:
    """The mean of ``value`` over every process (``value`` itself in one process)."""
    import torch.distributed as dist

    if not _several():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=_reduce_device(device))
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True in every process when ``flag`` is true in any of them."""
    import torch.distributed as dist

    if not _several():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=_reduce_device(device))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def micro_batch_slots(grad_accum: int) -> range:
    """The micro-batches of each step this process computes: ``grad_accum / world`` consecutive ones.

    Raises:
        ValueError: ``grad_accum`` is not a positive multiple of the number of processes.
    """
    rank, world = rank_and_world()
    if grad_accum < 1 or grad_accum % world:
        raise ValueError(f"grad_accum={grad_accum} must be a positive multiple of the number of "
                         f"processes ({world}); e.g. --grad-accum {world * max(1, grad_accum // world)}")
    per_rank = grad_accum // world
    return range(rank * per_rank, (rank + 1) * per_rank)


def world_size_from_env() -> int:
    """The number of processes ``torchrun`` started (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def split_micro_batches(train_config, world: int, grad_accum_given: bool):
    """``(train_config, note)``: ``train_config`` with a ``grad_accum`` that splits across ``world``
    processes, and a line saying what was changed (None when nothing was). Where ``--batch-size`` splits
    too, the global batch stays the same; otherwise each process computes one more micro-batch.

    Raises:
        ValueError: ``grad_accum`` was given explicitly and does not split (the message names a value that does).
    """
    a, b = train_config.grad_accum, train_config.batch_size
    if world <= 1 or a % world == 0:
        return train_config, None
    if grad_accum_given:
        raise ValueError(f"--grad-accum {a} cannot be split across {world} processes: it must be a "
                         f"multiple of the number of processes ({world}), e.g. --grad-accum "
                         f"{world * max(1, a // world)}; or leave it out")
    if b % world == 0:
        tcfg = replace(train_config, batch_size=b // world, grad_accum=a * world)
        why = f"the same global batch of {a * b} sequences"
    else:
        tcfg = replace(train_config, grad_accum=a * world)
        why = f"a global batch of {a * world * b} sequences instead of {a * b}"
    note = (f"{world} processes: --grad-accum {a} does not split across them, so this run uses "
            f"--batch-size {tcfg.batch_size} --grad-accum {tcfg.grad_accum} ({tcfg.grad_accum // world} "
            f"micro-batch(es) of {tcfg.batch_size} per process per step, {why}); pass --grad-accum to choose")
    return tcfg, note


class ProcessGroup:
    """This process's place among those ``torchrun`` started (nccl on CUDA, gloo on the CPU); one
    process on its own otherwise."""

    def __init__(self, rank=0, world=1, local_rank=0, device=None, active=False):
        self.rank, self.world, self.local_rank, self.device, self.active = rank, world, local_rank, device, active

    @property
    def main(self) -> bool:
        """Rank 0: the process that prints and writes the checkpoint."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device_arg: str | None) -> ProcessGroup:
        """Join the process group ``torchrun`` describes in the environment; each process on a CUDA
        machine takes the GPU of its local rank."""
        from lecture_utils.device import pick_device

        world = world_size_from_env()
        device = pick_device(device_arg)
        if world == 1:
            return cls(device=device)
        import torch.distributed as tdist

        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world, local_rank, device, True)

    def cpu_threads(self) -> int | None:
        """Torch threads for this process: the cores shared among the processes of this machine when
        several train on its CPU; None (all of them) otherwise."""
        if self.world > 1 and self.device.type == "cpu":
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", self.world))
            return max(1, (os.cpu_count() or 1) // local_world)
        return None

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel when there are several processes (gradients averaged)."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def close(self, wait_for_all: bool = True) -> None:
        """Tear the process group down; after a normal run, first wait until every rank is done (rank 0
        still samples and prints after training: a rank that leaves early can abort gloo's teardown)."""
        if self.active:
            import torch.distributed as tdist

            if tdist.is_initialized():
                if wait_for_all:
                    tdist.barrier()
                tdist.destroy_process_group()


__all__ = ["rank_and_world", "mean_across_ranks", "any_rank", "micro_batch_slots", "world_size_from_env",
           "split_micro_batches", "ProcessGroup"]
