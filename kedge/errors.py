"""One error base for kedge's own errors, split by what a caller should do about them.

A `TemporaryError` may pass by itself (a peer away, a device not answering): retry with backoff.
A `PermanentError` will not (a refused join token, an invalid configuration or manifest): retrying
only repeats it, so a supervised task that raises one stops the process with the error instead of
restarting (`kedge.tasks`), and whoever supervises the process shows it.
"""

from __future__ import annotations


class KedgeError(Exception):
    """Base of the errors kedge raises itself."""


class TemporaryError(KedgeError):
    """Trying again later can succeed."""


class PermanentError(KedgeError):
    """Trying again cannot succeed until someone changes something."""
