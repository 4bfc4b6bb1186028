"""Pretrained files a run needs (VGG19 for perceptual losses, InceptionV3 for FID / KID / IS, the
authors' released generators): one rule for all of them, applied once at start-up, before any
work, and never in the middle of a run.

1. a file given on the command line is used (a missing one is an error, never a fallback);
2. otherwise the cached copy in torch hub's checkpoints folder (`torch.hub.get_dir()`);
3. otherwise it is downloaded there through torch's own `download_url_to_file` (progress bar;
   the SHA-256 prefix a file name carries is checked, as torch hub checks it);
4. offline (or with GAN_PAPERS_NO_DOWNLOAD set, as the test suite sets it), one line that says
   where to put the file.

A user's run never falls back to random weights. Tests replace `DOWNLOAD` to check each case
without the network.
"""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import torch

from common.errors import UserError

DOWNLOAD = torch.hub.download_url_to_file  # replaced in tests
NO_DOWNLOAD = "GAN_PAPERS_NO_DOWNLOAD"     # set (to anything but "" or 0): behave as offline
TIMEOUT_S = 30                             # a blocked network fails instead of hanging
_HASH = re.compile(r"-([a-f0-9]{6,})\.")   # torch hub's convention: name-<sha256 prefix>.ext


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def downloads_allowed() -> bool:
    return os.environ.get(NO_DOWNLOAD, "") in ("", "0")


def fetch(url: str, *, what: str, given: str | Path | None = None, flag: str = "", filename: str | None = None,
          without: str = "") -> Path:
    """The path of the file `url` names, found by the rule above. `what` names it for the
    messages, `flag` is the option that gives it by hand, `without` what runs without it."""
    filename = filename or url.rsplit("/", 1)[-1]
    where = f"download {url} into {cache_dir()}/" + (f" (or anywhere, and pass {flag} PATH)" if flag else "")
    tail = f"; {without}" if without else ""
    if given:
        path = Path(given)
        if not path.is_file():
            raise UserError(f"{what} {path}: no such file; {where}{tail}")
        return path
    path = cache_dir() / filename
    if path.is_file():
        return path
    if not downloads_allowed():
        raise UserError(f"{what} is not on this machine and downloads are off ({NO_DOWNLOAD}): {where}{tail}")
    match = _HASH.search(filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"{what}: downloading {url} to {path} (once; later runs use the cached file)")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT_S)
    try:
        DOWNLOAD(url, str(path), match.group(1) if match else None, progress=True)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts are OSErrors
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise UserError(f"{what} is not on this machine and could not be downloaded ({reason}): {where}{tail}") from exc
    except RuntimeError as exc:  # torch hub: "invalid hash value"
        raise UserError(f"{what}: the download from {url} did not match its checksum ({exc}); try again, "
                        f"or {where}") from exc
    finally:
        socket.setdefaulttimeout(previous)
    if not path.is_file():
        raise UserError(f"{what}: the download from {url} wrote nothing; {where}")
    return path
