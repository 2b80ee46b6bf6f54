"""Settings shared by every camera and file.

The detector, motion gate, tracking, attributes, embeddings, analysis rate,
storage, uploads and the HTTP API's hosts and proxies.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, HttpUrl, field_validator

from camsight.config.base import StrictModel


class DetectorConfig(StrictModel):
    """Which detector finds people and vehicles."""

    backend: Literal["ssd", "yolox"] = "yolox"
    """YOLOX-nano (Apache-2.0, onnxruntime) tracks best of the models camsight knows; SSD is the legacy
    OpenCV DNN backend (its package declares no licence)."""
    model: Path | None = None
    """The model file; default: the backend's own (yolox-nano from the models folder)."""
    confidence: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Lowest detection confidence kept; default: the backend's own."""


class MotionConfig(StrictModel):
    """The motion gate: frames where nothing moved skip the detector."""

    enabled: bool = True
    pixel_threshold: Annotated[int, Field(ge=1, le=255)] = 18
    """Grey-level change that counts as a moving pixel."""
    area_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.0015
    """Share of the picture that must move for the detector to run."""
    max_skip: Annotated[float, Field(gt=0)] = 2.0
    """Seconds after which the detector runs anyway, moving or not."""


class TrackingConfig(StrictModel):
    """How detections become tracks."""

    lost_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    """Seconds a track survives without a detection."""
    activation: dict[
        Literal["person", "vehicle", "bicycle", "carried"], Annotated[float, Field(gt=0, lt=1)]
    ] = Field(default_factory=lambda: {"person": 0.6, "vehicle": 0.3, "bicycle": 0.4, "carried": 0.4})
    """Detection confidence that starts a track, per class group."""
    min_hits: Annotated[int, Field(ge=1, le=10)] = 2
    """Fewest detections in a row before a track is confirmed (its first boxes are kept once it
    is)."""
    confirm_seconds: Annotated[float, Field(ge=0, le=5)] = 0.25
    """Seconds of detections in a row that confirm a track, at least min_hits of them: 3 frames
    at 10 fps, 2 at 5 fps, never more than 4 (0: min_hits alone)."""
    appearance_weight: Annotated[float, Field(ge=0, le=10)] = 2.0
    """How much colour appearance counts against box overlap when matching."""
    appearance_memory: Annotated[float, Field(ge=0, lt=1)] = 0.8
    """How slowly a track's appearance follows new detections (0: only the last)."""
    min_similarity: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """Lowest fused (overlap x confidence x colour) similarity that continues a track."""
    thumbnails_per_track: Annotated[int, Field(ge=1, le=10)] = 3
    """Sharp, large, unoccluded crops kept per track."""
    link_seconds: Annotated[float, Field(ge=0, le=30)] = 3.0
    """Seconds after a track is lost in which a new track that starts nearby and looks the same
    continues it (0 turns linking off)."""


class AttributesConfig(StrictModel):
    """Appearance attributes for search."""

    enabled: bool = True
    """Compute appearance attributes (clothing colours, posture...) for search."""
    pose: bool = True
    """Use the pose model for body regions and posture (else box proportions)."""
    samples_per_track: Annotated[int, Field(ge=0, le=64)] = 12
    """Views of each person kept over the whole track to name clothing colours from (0: only the
    few best crops)."""
    person_model: bool = True
    """Use the person attributes model (person-attributes-recognition-crossroad-0230: hats, long
    hair, bags) when it is installed; without it attributes come from colours alone."""
    reid: bool = True
    """Embed each person track with the re-identification model (person-reidentification-
    retail-0288) when it is installed: one search result per person, "more like this" by
    appearance; without it both use the colour descriptor."""


class EmbeddingsConfig(StrictModel):
    """The optional vision-language plug-in."""

    model: str | None = None
    """An installed vision-language model (name or folder) to embed crops with at index time and
    queries with at search time; off when null. Install one with `camsight models pull NAME`."""
    weight: Annotated[float, Field(ge=0, le=1)] = 0.3
    """Share of the ranking score given to visual similarity when both it and attribute facets are
    available."""


class IndexConfig(StrictModel):
    """Indexing recorded files."""

    fps: Annotated[float, Field(gt=0, le=240)] | Literal["native"] = 5.0
    """Frames analysed per second of video, or "native" for every frame."""


class StorageConfig(StrictModel):
    """Where recordings go and how much disk they may use."""

    recordings: Path | None = None
    """Recordings folder (default: ``recordings/`` in the data directory; ``~`` is your home)."""
    min_free_gb: Annotated[float, Field(ge=0, le=100000)] = 1.0
    """Keep at least this much disk free: below it the oldest footage is deleted (and a warning
    raised)."""
    camera_folders: Annotated[list[Path], Field(max_length=64)] = Field(default_factory=list)
    """Folders whose files and subfolders admins may set as a camera's source through the API or web
    app (default: none, so only rtsp://, rtsps:// and http(s):// streams). Cameras in this file and
    those given with ``camsight run --camera`` may name any local file or folder: they come from the
    machine's owner."""


class UploadsConfig(StrictModel):
    """Videos uploaded through the API to be indexed."""

    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 4096
    """Largest file accepted, in MiB."""
    folder: Path | None = None
    """Where uploaded files are kept (default: ``uploads/`` in the data directory)."""


def _host_name(host: str) -> str:
    """A Host header's name part, lower case: ``[::1]:8080`` -> ``::1``, ``Cams.Local:80`` -> ``cams.local``.

    >>> _host_name("[::1]:8080"), _host_name("Cams.Local:80"), _host_name("::1")
    ('::1', 'cams.local', '::1')
    """
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:  # a name or IPv4 address with a port; more colons: a bare IPv6 address
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class ApiConfig(StrictModel):
    """Who may reach the HTTP API (``camsight run``) and which proxy's headers it believes."""

    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(default_factory=list)
    """Host names the API answers to, besides localhost, this machine's name, the listening address and
    IP addresses (which DNS rebinding cannot forge); other ``Host`` headers get 400. Add the names
    people use to reach it, e.g. ``[cams.example.org]``."""
    trusted_proxies: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    """Addresses or networks (e.g. ``127.0.0.1``, ``10.0.0.0/24``) of reverse proxies whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed; by default none, so no client can
    forge its address (sign-in limits and the audit log use it)."""
    public_url: HttpUrl | None = None
    """The address people and alert receivers reach camsight at (e.g. ``https://cams.example.org/``, a
    path behind a proxy included); the links in alerts start with it, and its host is allowed. Default:
    the address ``camsight run`` listens on."""

    search_cache: Annotated[int, Field(ge=0, le=100_000)] = 256
    """How many recent search results the API keeps, each valid only for the tracks it was made on
    (any new, changed or deleted track makes searching run again); repeated searches (saved
    searches, paging) are then answered without searching. Searches with time words are never
    kept. 0 keeps none."""

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        names: list[str] = []
        for host in hosts:
            if any(c in host for c in "/@?#") or any(c.isspace() for c in host):
                raise ValueError(f"{host!r}: give a host name or address, without scheme or path")
            name = _host_name(host)
            if not name:
                raise ValueError(f"{host!r}: give a host name or address")
            names.append(name)
        return names

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, proxies: list[str]) -> list[str]:
        found: list[str] = []
        for proxy in proxies:
            try:
                # Written the way uvicorn reads them: an address, or a network with its host bits clear.
                if "/" in proxy:
                    found.append(str(ipaddress.ip_network(proxy.strip(), strict=False)))
                else:
                    found.append(str(ipaddress.ip_address(proxy.strip())))
            except ValueError:
                raise ValueError(
                    f"{proxy!r}: give a proxy's IP address or network (e.g. 127.0.0.1 or 10.0.0.0/24)"
                ) from None
        return found

    def host_allowed(self, host: str, bind_host: str | None = None) -> bool:
        """Whether a request's ``Host`` header names this server (see ``allowed_hosts``).

        >>> ApiConfig().host_allowed("localhost:8080"), ApiConfig().host_allowed("evil.example:8080")
        (True, False)
        >>> ApiConfig(allowed_hosts=["Cams.Example.org"]).host_allowed("cams.example.org")
        True
        """
        name = _host_name(host)
        if not name:
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            # A rebinding page's Host is the attacker's name; an address can only be typed by
            # someone who meant this server.
            return True
        public = _host_name(self.public_url.host or "") if self.public_url is not None else None
        return name in self.default_hosts(bind_host) or name in self.allowed_hosts or name == public

    @staticmethod
    def default_hosts(bind_host: str | None = None) -> frozenset[str]:
        """Names allowed without configuration: localhost, this machine's name, the listening address."""
        names = set(_machine_names())
        if bind_host:
            names.add(_host_name(bind_host))
        return frozenset(n for n in names if n)


@functools.cache
def _machine_names() -> frozenset[str]:
    # Once per process: getfqdn() may ask DNS, which must not happen on every request.
    return frozenset({"localhost", socket.gethostname().lower(), socket.getfqdn().lower()})
