"""The one distribution ``stratasync`` is built from three source roots, each a portion of the
``stratasync`` namespace package (no ``stratasync/__init__.py`` anywhere):

* ``functions/`` - the Lambda code (``stratasync.protocol``, ``core``, ``storage``, ``auth``,
  ``handlers``); it is the SAM/CDK ``CodeUri``, so a Lambda artifact holds nothing else;
* ``client/`` - ``stratasync.client``, the Python client library;
* ``tools/`` - ``stratasync.devserver``, ``stratasync.cli`` and ``stratasync.testing``.

Metadata and dependencies are in pyproject.toml; this file only maps the packages to their roots.
"""

from setuptools import find_namespace_packages, setup

ROOTS = ("functions", "client", "tools")

packages: list[str] = []
package_dir: dict[str, str] = {}
for root in ROOTS:
    for package in find_namespace_packages(root, include=["stratasync.*"]):
        packages.append(package)
        package_dir[package] = f"{root}/{package.replace('.', '/')}"

setup(
    packages=packages, package_dir=package_dir, package_data={package: ["py.typed"] for package in packages}
)
