"""The C extension is optional: a failed compile still installs the package."""

from setuptools import Extension, setup

setup(
    package_dir={"": "src"},
    packages=["plasmite_speedups"],
    ext_modules=[
        Extension("plasmite_speedups._frames", ["src/plasmite_speedups/_frames.c"],
                  depends=["src/plasmite_speedups/crc32.h", "src/plasmite_speedups/envelope.h"], optional=True),
        Extension("plasmite_speedups._message", ["src/plasmite_speedups/_message.c"],
                  depends=["src/plasmite_speedups/envelope.h"], optional=True),
        Extension("plasmite_speedups._stream", ["src/plasmite_speedups/_stream.c"], optional=True),
        Extension("plasmite_speedups._pool", ["src/plasmite_speedups/_pool.c"],
                  depends=["src/plasmite_speedups/crc32.h", "src/plasmite_speedups/jsonsplit.h"], optional=True),
    ],
)
