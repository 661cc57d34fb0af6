"""The one part of the build pyproject.toml cannot declare: the native node table.

It is optional: where it cannot be compiled, zkserver runs on the same table in Python
(zkserver/tree/nodetable.py), at about twice the memory per znode.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "zkserver.tree._nodetable", ["zkserver/tree/_nodetable.c"], optional=True,
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-parameter", "-Wno-cast-function-type"])])
