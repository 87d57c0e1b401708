"""SegTruth's engine beside nnunetv2's own nnUNetPredictor: same nnU-Net results folder, same images, one run.

Each measurement is a fresh process timed from start to the written output file ("end to end": imports,
model loading, reading, preprocessing, sliding window, resampling back, writing), with its CPU time (user +
system, its own and its worker processes': steadier than wall time on a shared machine), the process's peak
RAM (its own and its worker processes') and, on CUDA, peak GPU memory allocated by torch. nnUNetPredictor
runs in the reference environment (Testing/fixtures/make_reference_fixtures.sh), SegTruth in this one.
Prints figures and the ratio; asserts nothing.

Run: .venv/bin/python benchmarks/bench_inference.py [--device cpu|cuda] [--large 256 256 160] [--ct 512 512 300]
[--only small|large|ct] [--precisions float32 bfloat16] [--tta] [--repeats N]
(the fastest of N runs counts: other processes on the machine slow single runs, never speed them up). Runs
alternate between the tools (SegTruth in each precision, then nnUNetPredictor), so load from other processes
hits them alike; the Dice of every label of each SegTruth output against nnUNetPredictor's in the same run.
``--network-only`` times the fixture's network alone on batches of tiles, in float32, bfloat16, bfloat16 with
channels-last and, with ``--compile``, the last under torch.compile; interleaved, medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("SEGTRUTH_TEST_DATA") or Path.home() / ".cache" / "segtruth-test-data")
FIXTURES = FIXTURES / "reference-fixtures"

PEAKS = """
import json, resource, sys
def peaks(extra):
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    gpu = 0.0
    try:
        import torch
        if torch.cuda.is_available():
            gpu = torch.cuda.max_memory_allocated() / 2**20
    except ImportError:
        pass
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    print("BENCH " + json.dumps({"ram_mib": max(own, children), "gpu_mib": gpu, "cpu_s": cpu, **extra}))
"""

SEGTRUTH = (
    PEAKS
    + """
import argparse, time
start = time.perf_counter()
from SegTruthLogic.inference.commands import cmd_segment
image, model, out, device, tta, precision = sys.argv[1:7]
args = argparse.Namespace(image=image, model=model, output=out, device=device, tta=tta == "1", quiet=True,
                          batch_size=1, overwrite=True, precision=precision)
cmd_segment(args)
peaks({"inside_s": time.perf_counter() - start})
"""
)

NNUNET = (
    PEAKS
    + """
import time
start = time.perf_counter()
import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
image, model, out, device, tta = sys.argv[1:6]
predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=tta == "1",
                            perform_everything_on_device=device == "cuda", device=torch.device(device),
                            verbose=False, allow_tqdm=False)
predictor.initialize_from_trained_model_folder(model, use_folds=None, checkpoint_name="checkpoint_final.pth")
predictor.predict_from_files([[image]], [out[: -len(".nii.gz")]], save_probabilities=False, overwrite=True,
                             num_processes_preprocessing=1, num_processes_segmentation_export=1)
peaks({"inside_s": time.perf_counter() - start})
"""
)


def run(
    python: str, script: str, image: Path, model: Path, out: Path, device: str, tta: bool, precision: str = "auto"
) -> dict:
    start = time.perf_counter()
    result = subprocess.run(
        [python, "-c", script, str(image), str(model), str(out), device, "1" if tta else "0", precision],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - start
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"{python} failed:\n{result.stderr[-2000:]}")
    return {"seconds": seconds, **json.loads(line[6:])}


def large_case(folder: Path, size: tuple[int, int, int], name: str = "large") -> Path:
    """A phantom like the fixture's training cases, on a larger anisotropic grid (body, sphere, cube)."""
    ni, nj, nk = size
    k, j, i = np.ogrid[:nk, :nj, :ni]
    spacing = (0.8, 0.8, 2.0)
    body = ((i - ni / 2) / (0.45 * ni)) ** 2 + ((j - nj / 2) / (0.45 * nj)) ** 2 + (
        (k - nk / 2) / (0.48 * nk)
    ) ** 2 <= 1
    rng = np.random.default_rng(0)
    image = np.where(body, rng.normal(40, 15, (nk, nj, ni)), 0.0)
    for n in range(6):
        ci, cj, ck = ni * (0.3 + 0.08 * n), nj * (0.35 + 0.05 * n), nk * (0.2 + 0.12 * n)
        ball = ((i - ci) * spacing[0]) ** 2 + ((j - cj) * spacing[1]) ** 2 + ((k - ck) * spacing[2]) ** 2 <= 49
        image[ball & body] = 300 if n % 2 == 0 else -100
    volume = sitk.GetImageFromArray(image.astype(np.int16))
    volume.SetSpacing(spacing)
    path = folder / f"{name}_0000.nii.gz"
    sitk.WriteImage(volume, str(path))
    return path


def dice_per_label(a: Path, b: Path) -> dict[int, float]:
    """Dice of every label present in either file."""
    x, y = sitk.GetArrayFromImage(sitk.ReadImage(str(a))), sitk.GetArrayFromImage(sitk.ReadImage(str(b)))
    labels = [int(v) for v in np.union1d(np.unique(x), np.unique(y)) if v != 0]
    return {v: float(2 * np.sum((x == v) & (y == v)) / max(np.sum(x == v) + np.sum(y == v), 1)) for v in labels}


def network_only(model: Path, repeats: int, batch: int, compiled: bool) -> None:
    """The network alone on one batch of tiles, each variant timed in turn (A B C A B C), after a warm-up."""
    import statistics

    import torch

    from SegTruthLogic.inference import load_model

    loaded = load_model(model, folds=(0,))
    network = loaded.network.eval()
    tile = torch.randn(batch, 1, *loaded.card.inference.patch_size)
    variants = {
        "float32": (network, tile, None),
        "bfloat16": (network, tile, torch.bfloat16),
        "bfloat16 channels-last": (network, tile, torch.bfloat16),
    }
    if compiled:
        variants["bfloat16 channels-last compiled"] = (torch.compile(network), tile, torch.bfloat16)

    def once(name: str) -> float:
        net, x, dtype = variants[name]
        last = "channels-last" in name
        net.to(memory_format=torch.channels_last_3d if last else torch.contiguous_format)
        x = x.contiguous(memory_format=torch.channels_last_3d) if last else x
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            start = time.perf_counter()
            net(x)
            return time.perf_counter() - start

    start = time.perf_counter()
    for name in variants:  # warm-up (and compilation)
        once(name)
    print(
        f"warm-up (compilation included): {time.perf_counter() - start:.1f} s; torch threads {torch.get_num_threads()}"
    )
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name in variants:
            times[name].append(once(name))
    base = statistics.median(times["float32"])
    print(f"network on a batch of {batch} tile(s) {tuple(tile.shape[2:])}, median of {repeats}, interleaved:")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<34} {median * 1000:8.1f} ms   {base / median:5.2f}x float32")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--large", type=int, nargs=3, default=(256, 256, 160), metavar=("I", "J", "K"))
    parser.add_argument("--ct", type=int, nargs=3, default=(512, 512, 300), metavar=("I", "J", "K"))
    parser.add_argument("--tta", action="store_true", help="mirroring on for both (nnU-Net's default)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per tool and case; the fastest counts")
    parser.add_argument("--only", choices=["small", "large", "ct"], action="append", help="run these cases")
    parser.add_argument(
        "--precisions", nargs="+", default=["float32", "bfloat16"], help="SegTruth's --precision values to time"
    )
    parser.add_argument("--network-only", action="store_true", help="time the network alone (see above)")
    parser.add_argument("--compile", action="store_true", help="with --network-only: add torch.compile")
    parser.add_argument("--batch", type=int, default=1, help="with --network-only: tiles per batch")
    parser.add_argument(
        "--ref-python",
        default=str(
            Path(os.environ.get("SEGTRUTH_REF_ENV") or Path.home() / ".cache" / "segtruth-ref-env") / "bin/python"
        ),
    )
    args = parser.parse_args()
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    model = FIXTURES / manifest["models"]["3d_fullres"]
    if args.network_only:
        network_only(model, max(args.repeats, 5), args.batch, args.compile)
        return
    wanted = args.only or ["small", "large"]
    print(f"model: {model.name} (folds 0+1), device {args.device}, mirroring {'on' if args.tta else 'off'}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    header = f"{'case':<6} {'voxels':>12} {'tool':<18} {'seconds':>8} {'CPU s':>8} {'RAM MiB':>8} {'GPU MiB':>8}"
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        for name in wanted:
            if name == "small":
                image = FIXTURES / "nnunet" / "test" / "images" / "large_0000.nii.gz"
            else:
                image = large_case(temp, tuple(args.large if name == "large" else args.ct), name)
            size = sitk.ReadImage(str(image)).GetSize()
            tools = [f"SegTruth {p}" for p in args.precisions] + ["nnU-Net"]
            runs: dict[str, list[dict]] = {tool: [] for tool in tools}
            outputs = {tool: temp / f"{name}_{n}.nii.gz" for n, tool in enumerate(tools)}
            for _ in range(args.repeats):  # alternate, so load from other processes hits every tool alike
                for precision in args.precisions:
                    tool = f"SegTruth {precision}"
                    runs[tool].append(
                        run(sys.executable, SEGTRUTH, image, model, outputs[tool], args.device, args.tta, precision)
                    )
                runs["nnU-Net"].append(
                    run(args.ref_python, NNUNET, image, model, outputs["nnU-Net"], args.device, args.tta)
                )
            best = {tool: min(r, key=lambda x: x["seconds"]) for tool, r in runs.items()}
            voxels = "x".join(str(s) for s in size)
            print(header)
            for tool, r in best.items():
                every = " ".join(f"{x['seconds']:.1f}" for x in runs[tool])
                print(
                    f"{name:<6} {voxels:>12} {tool:<18} {r['seconds']:8.1f} {r['cpu_s']:8.1f} {r['ram_mib']:8.0f} "
                    f"{r['gpu_mib']:8.0f}   (runs: {every})"
                )
            theirs = best["nnU-Net"]
            for precision in args.precisions:
                tool = f"SegTruth {precision}"
                ours = best[tool]
                scores = dice_per_label(outputs[tool], outputs["nnU-Net"])
                labels = ", ".join(f"label {v} {d:.4f}" for v, d in scores.items())
                print(
                    f"{name:<6} {tool}: speed-up {theirs['seconds'] / ours['seconds']:.2f}x end to end (wall), "
                    f"{theirs['cpu_s'] / ours['cpu_s']:.2f}x in CPU time; Dice vs nnU-Net: {labels}"
                )
            print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
