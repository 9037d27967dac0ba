"""Drives the CMake build of the extension rsinfer._C (CMakeLists.txt is the one description of that build)."""

from setuptools import setup

setup()
