"""The GPU check script runs end to end on the CPU with --tiny and reports what it promises."""

import importlib.util
import math

from tests.conftest import ROOT


def test_gpu_check_runs_tiny_on_cpu(capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    result = gpu_check.main(["--tiny"])
    assert result["device"] == "cpu" and result["dtype"] == "float32" and result["tokens_per_step"] == 2 * 2 * 64
    assert result["tokens_per_s"] > 0 and result["model_tflops_per_s"] >= 0
    assert math.isclose(result["loss"], result["dpo"] + 1.0 * result["nll"], abs_tol=2e-4)
    assert "tokens_per_s" in capsys.readouterr().out
