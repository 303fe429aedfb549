"""PyTorch's side of bench/dist_scaling.sh: DistributedDataParallel (gloo, CPU) on the same
workload as bench_dist_scaling — an LSTM (seq, batch per rank, input) → (hidden), the MSE of
its last step, Adam — each rank one thread, its own fixed batch. Prints one JSON line with the
median time per step (the slowest rank's).

    /usr/bin/python3 bench/dist_scaling.py --ranks 2 [--batch 64 --seq 100 --input 128 --hidden 256 --layers 1 --steps 20]
"""
import argparse
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank, args, port, queue):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    torch.set_num_threads(1)
    torch.manual_seed(1 + rank)
    x = torch.randn(args.seq, args.batch, args.input)
    y = torch.randn(args.batch, args.hidden)
    lstm = torch.nn.LSTM(args.input, args.hidden, args.layers)
    model = torch.nn.parallel.DistributedDataParallel(lstm, bucket_cap_mb=args.bucket_kb / 1024)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for step in range(args.warmup + args.steps):
        dist.barrier()
        start = time.perf_counter()
        opt.zero_grad()
        out, _ = model(x)
        torch.nn.functional.mse_loss(out[-1], y).backward()
        opt.step()
        seconds = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
        dist.all_reduce(seconds, op=dist.ReduceOp.MAX)  # a step lasts as long as its slowest rank
        if step >= args.warmup:
            times.append(seconds.item())
    if rank == 0:
        queue.put({"framework": "pytorch", "version": torch.__version__, "ranks": args.ranks,
                   "batch_per_rank": args.batch, "seq": args.seq, "input": args.input, "hidden": args.hidden,
                   "layers": args.layers, "step_ms": round(1e3 * statistics.median(times), 3)})
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ranks", type=int, default=2)
    for name, default in [("batch", 64), ("seq", 100), ("input", 128), ("hidden", 256), ("layers", 1),
                          ("steps", 20), ("warmup", 3), ("bucket-kb", 25600)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--overlap", type=int, default=1, help="ignored (DDP always overlaps)")
    args = p.parse_args()
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.spawn(worker, args=(args, port, queue), nprocs=args.ranks, join=True)
    print(json.dumps(queue.get()))


if __name__ == "__main__":
    main()
