"""Helpers the PyTorch benchmarks and the reports share (bench/*.py import it from here)."""
import argparse
import os
import platform


def positive(minimum):
    """An argparse type: an integer >= minimum."""
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text}")
        return value
    return parse


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(**load):
    """The machine block of a results document: cores, CPU, system, and the given load fields."""
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu_model(), "system": platform.platform(), **load}
