"""Packaging: the root folders the engine needs at run time, shipped inside the ``engine`` package.

The translators' ``locales/`` (compiled catalogs and the SMS reply words), the shipped ``flows/`` and the starter
``config/`` stay at the repository root, where people edit them; a wheel carries them as ``engine/locales``,
``engine/starter/flows`` and ``engine/starter/config`` (``engine.settings.shipped`` finds either place).
Everything else is in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

ROOT_FOLDERS = {"engine.locales": "locales", "engine.starter.flows": "flows", "engine.starter.config": "config"}

setup(packages=[*find_packages(include=["engine*", "channels*"]), *ROOT_FOLDERS], package_dir=ROOT_FOLDERS)
