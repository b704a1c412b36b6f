"""Wrong solutions of chapter 09: batched heads and timing (9.1, 9.2)."""

from __future__ import annotations

import torch

from ._catalogue import wrong


def _head_weights(mha):
    return ([h.query.weight for h in mha.heads], [h.key.weight for h in mha.heads],
            [h.value.weight for h in mha.heads])


@wrong("9.1", "heads_to_batched", "wrong order")
def fused_in_kqv_order():
    @torch.no_grad()
    def heads_to_batched(mha, csa):
        q, k, v = _head_weights(mha)
        csa.qkv.weight.copy_(torch.cat([torch.cat(k), torch.cat(q), torch.cat(v)]))
        csa.proj.load_state_dict(mha.proj.state_dict())
        return csa

    return (heads_to_batched,)


@wrong("9.1", "heads_to_batched", "interleaved")
def fused_interleaved_per_head():
    @torch.no_grad()
    def heads_to_batched(mha, csa):
        csa.qkv.weight.copy_(torch.cat([torch.cat([h.query.weight, h.key.weight, h.value.weight]) for h in mha.heads]))
        csa.proj.load_state_dict(mha.proj.state_dict())
        return csa

    return (heads_to_batched,)


@wrong("9.1", "heads_to_batched", "output projection is not copied")
def fused_without_projection():
    @torch.no_grad()
    def heads_to_batched(mha, csa):
        q, k, v = _head_weights(mha)
        csa.qkv.weight.copy_(torch.cat([torch.cat(q), torch.cat(k), torch.cat(v)]))
        return csa

    return (heads_to_batched,)


@wrong("9.1", "heads_to_batched", "torch.no_grad()")
def fused_copy_with_grad():
    def heads_to_batched(mha, csa):
        q, k, v = _head_weights(mha)
        csa.qkv.weight.copy_(torch.cat([torch.cat(q), torch.cat(k), torch.cat(v)]))
        csa.proj.load_state_dict(mha.proj.state_dict())
        return csa

    return (heads_to_batched,)


@wrong("9.1", "heads_to_batched", "along dim 0")
def fused_concatenated_along_columns():
    @torch.no_grad()
    def heads_to_batched(mha, csa):
        q, k, v = _head_weights(mha)
        csa.qkv.weight.copy_(torch.cat([torch.cat(q, dim=1), torch.cat(k, dim=1), torch.cat(v, dim=1)]))
        csa.proj.load_state_dict(mha.proj.state_dict())
        return csa

    return (heads_to_batched,)


@wrong("9.2", "median_seconds", "pulled it up")
def timing_with_mean():
    import statistics
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.mean(times)

    return (median_seconds,)


@wrong("9.2", "median_seconds", "call it warmup=3 times before timing")
def timing_without_warmup():
    import statistics
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return (median_seconds,)


@wrong("9.2", "median_seconds", "total time of all calls")
def timing_the_whole_loop():
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        t0 = time.perf_counter()
        for _ in range(warmup + reps):
            fn()
        return time.perf_counter() - t0

    return (median_seconds,)


@wrong("9.2", "median_seconds", "not milliseconds")
def timing_in_milliseconds():
    import statistics
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    return (median_seconds,)


@wrong("9.2", "median_seconds", "pulled it up")
def timing_loop_divided_by_reps():
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps

    return (median_seconds,)


@wrong("9.2", "median_seconds", "the device is not synchronized after a timed call")
def median_without_synchronize():
    def median_seconds(fn, warmup=2, reps=10, device=None):
        import statistics
        import time

        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()  # on a GPU this returns before the work is done
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return (median_seconds,)


@wrong("9.2", "median_seconds", "the device is not synchronized after a timed call")
def median_synchronizes_only_before_each_call():
    from lecture_utils.timing import synchronize

    def median_seconds(fn, warmup=2, reps=10, device=None):
        import statistics
        import time

        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            synchronize(device)
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return (median_seconds,)


@wrong("9.2", "median_seconds", "not synchronized before the clock starts")
def median_synchronizes_only_after():
    from lecture_utils.timing import synchronize

    def median_seconds(fn, warmup=2, reps=10, device=None):
        import statistics
        import time

        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            start = time.perf_counter()  # the warm-up calls' work may still be running
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return (median_seconds,)
