"""The C extension is optional: a failed compile still installs the package."""

from setuptools import Extension, setup

setup(
    package_dir={"": "src"},
    packages=["plasmite_speedups"],
    ext_modules=[Extension("plasmite_speedups._frames", ["src/plasmite_speedups/_frames.c"], optional=True)],
)
