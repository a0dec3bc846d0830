"""requirements.txt gives every Python the README supports exactly one torch of the pinned version: PyTorch's CPU
wheel by URL for Community Cloud's Python (3.12) on Linux x86-64, PyPI's build elsewhere — and the README says how
to get the CPU wheel on the other Pythons."""

import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")


def torch_lines() -> list[Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [Requirement(line.split(" #")[0]) for line in lines if line.startswith("torch")]


def test_each_supported_python_gets_exactly_one_torch_and_the_cpu_wheel_on_linux_x86_64():
    version = re.search(r"torch==([\d.]+)", (ROOT / "requirements.txt").read_text())[1]
    for platform, machine in (("linux", "x86_64"), ("linux", "aarch64"), ("darwin", "arm64"), ("win32", "AMD64")):
        for python in (*SUPPORTED, "3.14"):
            env = {"sys_platform": platform, "platform_machine": machine, "python_version": python}
            chosen = [r for r in torch_lines() if r.marker.evaluate(env)]
            assert len(chosen) == 1, (env, chosen)
            cpu_wheel = platform == "linux" and machine == "x86_64" and python == "3.12"
            if cpu_wheel:
                tag = "cp" + python.replace(".", "")
                assert chosen[0].url == (f"https://download.pytorch.org/whl/cpu/torch-{version}%2Bcpu-{tag}-{tag}-"
                                         "manylinux_2_28_x86_64.whl"), chosen[0].url
            else:
                assert chosen[0].url is None and str(chosen[0].specifier) == f"=={version}"


def test_the_readme_names_the_supported_pythons_and_how_to_get_the_cpu_wheel_on_each():
    readme = (ROOT / "README.md").read_text()
    assert "Python 3.10–3.13" in readme and "--index-url https://download.pytorch.org/whl/cpu" in readme
