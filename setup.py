"""The optional native part of kmsguard; everything else is declared in pyproject.toml.

``kmsguard.trail._fastdecode`` (a C scanner for CloudTrail files, CPython API only) is built when a C compiler and
the Python headers are present. It is optional: without them the build warns and installs anyway, and
``kmsguard.trail.fastpath`` reports itself unavailable, so ``kmsguard trail`` uses the msgspec decoder.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# GCC/Clang only: warnings on, and C11 (the source also uses GNU builtins when SSE2 is available).
UNIX_FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden"]


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args = [*UNIX_FLAGS, *ext.extra_compile_args]
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "kmsguard.trail._fastdecode",
            sources=["src/kmsguard/trail/_fastdecode.c"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
