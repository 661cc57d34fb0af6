"""zkserver: a ZooKeeper-compatible coordination service on Trio."""

__version__ = "0.1.0"

def _checkout_packages() -> None:
    """In a source checkout, zkserver.client and zkserver.recipes are the top-level client/
    and recipes/ folders (an install maps them, see pyproject.toml); let a checkout used
    without installing (PYTHONPATH=.) find them there, ahead of any other install's."""
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(root, "pyproject.toml")) and os.path.isfile(
            os.path.join(root, "client", "__init__.py")):
        __path__.append(root)  # noqa: F821 (a package's __path__)

_checkout_packages()
