"""Editing the YAML config file: one camera block at a time, validated whole, written atomically.

The web app changes cameras (add, edit, remove; zones, lines, masks, rules)
through :class:`ConfigFile`. Every edit:

1. reads the file as it is now (hand edits made since the start are kept),
2. replaces the given keys of one camera block (each key wholesale),
3. validates the WHOLE resulting config with :func:`camsight.config.parse_config`,
   so a bad polygon, an unknown schedule or a typo is refused with the usual
   ``file:line: key: message``; a refused edit leaves the file untouched,
4. writes it atomically (a temp file beside it, then ``os.replace``), keeping
   the previous version as ``<name>.bak``.

Comments, key order and the file's indentation are kept (ruamel.yaml round
trip); new values are written in block style with coordinate lists in flow
style (``points: [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8]]``). Edits are serialised
by :attr:`ConfigFile.lock`; callers that publish the result (the API replaces
its running config) hold the same lock so a slower edit never overwrites a
newer one.

Cameras given on the command line (``camsight run --camera NAME=URL``) are
*runtime* cameras: the running block differs from the file's (or the file
has none). Users expect what they see in the web app to be what is saved,
so an edit of a runtime camera writes the camera as it runs (its command-line
URL included) into the file together with the change; from then on it is an
ordinary camera of the file, and starting again without ``--camera`` keeps
it. Removing a runtime camera removes it from the running service (and from
the file, when it is there); a later ``--camera`` adds it again.

>>> cfg = ConfigFile(Path("/etc/camsight.yaml"))  # doctest: +SKIP
>>> door = {"points": [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8]]}
>>> edit = cfg.update_camera("gate", {"zones": {"door": door}})  # doctest: +SKIP
>>> edit.changed  # doctest: +SKIP
['zones']
"""

from __future__ import annotations

import io
import os
import re
import stat
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from camsight.config.camera import CameraConfig
from camsight.config.loader import Config, parse_config, validate_config
from camsight.errors import ConfigError

#: Largest config text accepted for checking or writing (a real site's config is a few KB).
MAX_CONFIG_BYTES = 1_000_000
#: YAML nodes once aliases are expanded: stops "billion laughs" documents before pydantic walks them.
MAX_NODES = 200_000
#: Deepest nesting of a value sent to be written (a camera block is about 6 levels deep).
MAX_DEPTH = 32
REDACTED = "***"
#: Keys whose values are secrets wherever they appear (camera and MQTT passwords, webhook secrets).
SECRET_KEYS = frozenset({"password", "passwd", "secret", "token", "api_key", "apikey"})
#: Keys whose every value is a secret (webhook headers carry Authorization and the like).
SECRET_MAPS = frozenset({"headers"})
#: The first lines of a config file the web app creates.
NEW_FILE_COMMENT = (
    "camsight configuration (see `camsight config check`).\n"
    "Written by camsight when cameras are changed in the web app; comments you add are kept."
)
#: Camera keys that hold geometry or behaviour rules (a change means stored tracks may be re-checked).
GEOMETRY_KEYS = frozenset({"zones", "lines", "masks", "rules"})

_SAFE_PLAIN = re.compile(r"^[A-Za-z_/.][\w./:@%+-]*$")
_URL_CREDS = re.compile(r"([a-z][a-z0-9+.-]*://[^\s/@:]*):[^\s@]*@", re.I)
_SECRET_WORDS = re.compile(
    r"((?:password|passwd|secret|token|api_?key)\s*[:=]\s*)([^\s'\"]+)",
    re.I,
)
_LOCKS: dict[Path, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.RLock:
    # One lock per file in this process, so two apps (or tests) on the same file serialise too.
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path, threading.RLock())


class ConfigFileError(ConfigError):
    """The config file as it is on disk cannot be read or is not valid (fix it before editing)."""


class CameraExists(ConfigError):
    """The config already has a camera of that name."""


class CameraMissing(ConfigError):
    """The config has no camera of that name."""


@dataclass(frozen=True)
class ConfigEdit:
    """The result of an edit: the running config after it, and the camera before and after."""

    config: Config
    camera: str
    before: CameraConfig | None
    after: CameraConfig | None
    #: Camera keys whose value changed, sorted.
    changed: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- checking text


def _expanded_nodes(node: yaml.Node | None, limit: int) -> int:
    """How many nodes ``node`` has with aliases expanded, counting no further than ``limit``."""
    count, stack = 0, [node] if node is not None else []
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                stack.extend((key, value))
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(item.value)
    return count


def split_errors(message: str, origin: str) -> list[str]:
    """The separate problems in a :class:`ConfigError` message (it joins them with ``; ``)."""
    parts = re.split(rf"; (?={re.escape(origin)}(?::|$))", message)
    return [p for p in parts if p]


def check_text(text: str, origin: str = "config.yaml") -> list[str]:
    """Problems in config ``text`` as ``origin:line: key: message`` lines; empty when it is valid.

    >>> check_text("detector: {backnd: ssd}\\n", "site.yaml")
    ['site.yaml:1: detector.backnd: unknown key']
    >>> check_text("cameras: {}\\n")
    []
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        return [f"{origin}:1: the config is larger than {MAX_CONFIG_BYTES} bytes"]
    try:
        try:
            node = yaml.compose(text)
        except yaml.YAMLError:
            node = None  # parse_config reports it with its line
        if _expanded_nodes(node, MAX_NODES) > MAX_NODES:
            return [f"{origin}:1: the config has more than {MAX_NODES} values once its aliases are expanded"]
        parse_config(text, origin)
    except ConfigError as exc:
        return split_errors(str(exc), origin)
    except RecursionError:
        return [f"{origin}:1: the config is nested too deeply"]
    return []


# --------------------------------------------------------------------------- YAML values


def _plain_ok(text: str) -> bool:
    """Whether ``text`` written unquoted reads back (in PyYAML, YAML 1.1) as the same string."""
    if not _SAFE_PLAIN.match(text):
        return False
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def _scalar(value: str) -> str:
    # ruamel writes YAML 1.2, camsight reads with PyYAML (1.1): quote "yes", "on", "10:30" and the like.
    if _plain_ok(value):
        return value
    if value.isprintable():
        return SingleQuotedScalarString(value)
    return DoubleQuotedScalarString(value)


def _leaf(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def to_yaml(value: Any, depth: int = 0) -> Any:
    """JSON data as ruamel values: block mappings, flow lists of numbers (points), quoted odd strings."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"a value is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        out = CommentedMap()
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"keys must be text, got {key!r}")
            out[_scalar(key)] = to_yaml(item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq(to_yaml(v, depth + 1) for v in value)
        if all(_leaf(v) or (isinstance(v, (list, tuple)) and all(_leaf(c) for c in v)) for v in value):
            seq.fa.set_flow_style()  # [[0.1, 0.2], [0.5, 0.2]] on one line, as people write them
        return seq
    if isinstance(value, str):
        return _scalar(value)
    if _leaf(value):
        return value
    raise ConfigError(f"cannot write a value of type {type(value).__name__}")


def _guess_indent(text: str) -> tuple[int, int]:
    """(mapping indent, sequence dash offset) of the first nested mapping and list in ``text``."""
    mapping = offset = None
    parent: int | None = None  # indent of the last key whose value is on the lines below
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith(("#", "---", "%")):
            continue
        indent = len(line) - len(stripped)
        if stripped.startswith("-") and (len(stripped) == 1 or stripped[1] == " "):
            if offset is None and parent is not None and indent >= parent:
                offset = indent - parent
            parent = None
            continue
        if mapping is None and parent is not None and indent > parent:
            mapping = indent - parent
        body = stripped.split(" #", 1)[0].rstrip()
        parent = indent if body.endswith(":") else None
        if mapping is not None and offset is not None:
            break
    mapping = mapping if mapping and mapping <= 8 else 2
    offset = offset if offset is not None and offset <= 8 else 0
    return mapping, offset


def _yaml(text: str) -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 120
    mapping, offset = _guess_indent(text)
    rt.indent(mapping=mapping, sequence=max(offset + 2, mapping), offset=offset)
    return rt


def _dump(rt: YAML, doc: Any) -> str:
    buf = io.StringIO()
    rt.dump(doc, buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- redaction


def redact_text(text: str) -> str:
    """Secrets in free text (comments): URL passwords and ``password: ...``-like values."""
    from camsight.urls import redact_url

    text = _URL_CREDS.sub(rf"\1:{REDACTED}@", text)
    text = _SECRET_WORDS.sub(lambda m: m.group(1) + REDACTED, text)
    return " ".join(redact_url(w) if "://" in w else w for w in text.split(" "))


def _redact_comments(obj: Any) -> None:
    if isinstance(obj, CommentToken):
        obj.value = redact_text(obj.value)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _redact_comments(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            _redact_comments(item)


def redact(node: Any) -> Any:
    """Hide secrets in config data (plain or ruamel), in place: passwords, secrets, headers, URL passwords.

    >>> redact({"cameras": {"gate": {"url": "rtsp://admin:pw@cam/1", "password": "pw"}}})
    {'cameras': {'gate': {'url': 'rtsp://admin:***@cam/1', 'password': '***'}}}
    """
    from camsight.urls import redact_notifier_url, redact_url

    ca = getattr(node, "ca", None)
    if ca is not None:
        for part in (ca.comment, ca.items, getattr(ca, "end", None)):
            _redact_comments(part)
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            name = str(key).lower()
            if name in SECRET_KEYS and value is not None:
                node[key] = REDACTED
            elif name in SECRET_MAPS and isinstance(value, dict):
                for header in list(value):
                    value[header] = REDACTED
            elif name == "notify" and isinstance(value, list):
                # Apprise URLs carry tokens in their host or path too, where redact_url does not look.
                for item in value:
                    url = item.get("url") if isinstance(item, dict) else None
                    redact(item)
                    if isinstance(url, str):
                        item["url"] = redact_notifier_url(url)
            elif isinstance(value, str):
                if "://" in value and redact_url(value) != value:
                    node[key] = redact_url(value)
            else:
                redact(value)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str):
                if "://" in value and redact_url(value) != value:
                    node[i] = redact_url(value)
            else:
                redact(value)
    return node


# --------------------------------------------------------------------------- the file


def camera_dump(camera: CameraConfig) -> dict[str, Any]:
    """A camera block as config data, defaults left out."""
    return camera.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def _config_data(config: Config) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True)


class ConfigFile:
    """The editable config file at ``path`` and the cameras running differently from it.

    ``runtime`` maps camera names to the blocks they run with where those are
    not what the file says (cameras given with ``--camera``); see the module
    docstring for how edits treat them. Use :meth:`from_running` to work them
    out from the config the service started with.
    """

    def __init__(self, path: Path, runtime: Mapping[str, CameraConfig] | None = None) -> None:
        self.path = Path(path).expanduser()
        self.lock = _lock_for(self.path.resolve())
        self._runtime: dict[str, CameraConfig] = dict(runtime or {})

    @classmethod
    def from_running(cls, path: Path, running: Config) -> ConfigFile:
        """The file at ``path``; ``running``'s cameras that the file lacks or has otherwise are runtime."""
        self = cls(path)
        with self.lock:
            on_file = self._file_config()
        self._runtime = {
            name: cam for name, cam in running.cameras.items() if on_file.cameras.get(name) != cam
        }
        return self

    @property
    def origin(self) -> str:
        """The name errors are reported against (the file name, not the server's folders)."""
        return self.path.name

    def runtime_cameras(self) -> list[str]:
        """Cameras that run with a block the file does not have (given on the command line)."""
        return sorted(self._runtime)

    # -- reading

    def _read(self) -> str | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigFileError(f"{self.origin}: cannot read the config file ({exc.strerror})") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigFileError(f"{self.origin}: the config file is not UTF-8 text") from None

    def _file_config(self) -> Config:
        text = self._read()
        try:
            return parse_config(text, self.origin) if text else Config()
        except ConfigError as exc:
            raise ConfigFileError(str(exc)) from None

    def _load(self) -> tuple[str, Config, YAML, CommentedMap]:
        """The file's text and config (it must be valid to be edited), a round-trip YAML, its document."""
        text = self._read() or ""
        try:
            on_file = parse_config(text, self.origin) if text else Config()
        except ConfigError as exc:
            raise ConfigFileError(str(exc)) from None
        rt = _yaml(text)
        try:
            doc = rt.load(text) if text.strip() else None
        except RuamelError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigFileError(f"{self.origin}: cannot edit the config file ({reason})") from None
        if doc is None:
            doc = CommentedMap()
            if not text.strip():
                doc.yaml_set_start_comment(NEW_FILE_COMMENT)
        if not isinstance(doc, CommentedMap):
            raise ConfigFileError(f"{self.origin}:1: the config must be a mapping of keys to values")
        return text, on_file, rt, doc

    def running(self) -> Config:
        """The config the service runs with: the file's, with the runtime cameras' blocks."""
        with self.lock:
            return self._merge(self._file_config(), self._runtime)

    def _merge(self, on_file: Config, runtime: Mapping[str, CameraConfig]) -> Config:
        if not runtime:
            return on_file
        data = _config_data(on_file)
        data["cameras"] = {
            **data.get("cameras", {}),
            **{n: c.model_dump(mode="json", by_alias=True) for n, c in runtime.items()},
        }
        return validate_config(data, "--camera")

    def text(self, *, redacted: bool = True) -> str:
        """The config as YAML: the file (comments kept) with the runtime cameras as they run.

        With ``redacted`` (the default) every secret is ``***``: passwords, webhook
        secrets and headers, passwords in URLs, and the like in comments.
        """
        with self.lock:
            _text, on_file, rt, doc = self._load()
            if self._runtime:
                cams = self._cameras(doc)
                for name, cam in self._runtime.items():
                    block = self._materialise(cams.get(name), on_file.cameras.get(name), cam)
                    cams[name if name in cams else _scalar(name)] = block
            if redacted:
                redact(doc)
            return _dump(rt, doc) if doc else ""

    # -- editing

    def _cameras(self, doc: CommentedMap) -> CommentedMap:
        cams = doc.get("cameras")
        if cams is None:
            cams = doc["cameras"] = CommentedMap()
        if not isinstance(cams, CommentedMap):
            raise ConfigFileError(f"{self.origin}: cameras: must be a mapping of camera names to blocks")
        return cams

    def _materialise(self, block: Any, on_file: CameraConfig | None, running: CameraConfig) -> CommentedMap:
        """The file's block for a runtime camera, changed to what it runs with (comments kept)."""
        wanted = camera_dump(running)
        if not isinstance(block, CommentedMap) or on_file is None:
            return to_yaml(wanted)
        for key in CameraConfig.model_fields:
            if getattr(on_file, key) == getattr(running, key):
                continue
            if key in wanted:
                block[key] = to_yaml(wanted[key])
            else:
                block.pop(key, None)
        return block

    def _edit(self, name: str, change: Any) -> ConfigEdit:
        """Apply ``change(block) -> block | None`` to camera ``name``, validate, write; under the lock."""
        with self.lock:
            old_text, before_file, rt, doc = self._load()
            before_running = self._merge(before_file, self._runtime)
            cams = self._cameras(doc)
            block = cams.get(name)
            if name in self._runtime:
                block = self._materialise(block, before_file.cameras.get(name), self._runtime[name])
            new_block = change(block)
            if new_block is None:
                if name in cams:
                    del cams[name]
                if not cams:
                    del doc["cameras"]
            else:
                cams[_scalar(name) if name not in cams else name] = new_block
            new_text = _dump(rt, doc) if doc else ""
            if len(new_text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
                raise ConfigError(f"{self.origin}: the config would be larger than {MAX_CONFIG_BYTES} bytes")
            on_file = parse_config(new_text, self.origin)  # the WHOLE config, as camsight will read it
            runtime = {n: c for n, c in self._runtime.items() if n != name}
            running = self._merge(on_file, runtime)
            if new_text != old_text:
                self._write(new_text)
            self._runtime = runtime
            before = before_running.cameras.get(name)
            after = running.cameras.get(name)
            return ConfigEdit(running, name, before, after, _changed(before, after))

    def add_camera(self, name: str, block: Mapping[str, Any]) -> ConfigEdit:
        """Add camera ``name`` with ``block`` (CameraConfig keys); ConfigError when it already exists."""

        def change(current: Any) -> CommentedMap:
            if current is not None:
                raise CameraExists(f"cameras.{name}: a camera of that name is already in the config")
            return to_yaml(dict(block))

        with self.lock:
            if name in self.running().cameras:
                raise CameraExists(f"cameras.{name}: a camera of that name is already in the config")
            return self._edit(name, change)

    def update_camera(self, name: str, changes: Mapping[str, Any]) -> ConfigEdit:
        """Replace each key of ``changes`` in camera ``name``'s block (creating the block if needed).

        A key given as None is removed (back to its default) when its default
        is None (``url``, ``size``...); otherwise None is written and refused by
        validation like any other wrong value.
        """

        def change(current: Any) -> CommentedMap:
            block = current if isinstance(current, CommentedMap) else CommentedMap()
            for key, value in changes.items():
                default_none = key in CameraConfig.model_fields and (
                    CameraConfig.model_fields[key].default is None
                )
                if value is None and default_none:
                    block.pop(key, None)
                elif key in block:
                    block[key] = to_yaml(value)
                else:
                    block[_scalar(key)] = to_yaml(value)
            return block

        return self._edit(name, change)

    def remove_camera(self, name: str) -> ConfigEdit:
        """Remove camera ``name`` from the config and the running service; CameraMissing if absent."""
        with self.lock:
            if name not in self.running().cameras:
                raise CameraMissing(f"cameras.{name}: no camera of that name in the config")
            return self._edit(name, lambda _current: None)

    def _write(self, text: str) -> None:
        """Write ``text`` atomically (temp file + rename), keeping the old file as ``.bak``."""
        target = self.path.resolve()  # through a symlink, so the link stays a link
        folder = target.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                mode = stat.S_IMODE(target.stat().st_mode)
                old: bytes | None = target.read_bytes()
            except FileNotFoundError:
                mode, old = 0o600, None  # a new file may soon hold camera passwords
            if old is not None:
                _atomic_write(target.with_name(target.name + ".bak"), old, mode)
            _atomic_write(target, text.encode("utf-8"), mode)
        except OSError as exc:
            raise ConfigFileError(f"{self.origin}: cannot write the config file ({exc.strerror})") from None


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # the rename itself survives a power cut only once the folder is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _changed(before: CameraConfig | None, after: CameraConfig | None) -> list[str]:
    # A camera that is added or removed (or given a block for the first time) is compared with
    # the defaults: the keys it sets, not every field pydantic saw (a block re-validated from a full
    # dump "sets" url, password and all the others, which then read as changed when they were not).
    if before is None and after is None:
        return []
    before = before if before is not None else CameraConfig()
    after = after if after is not None else CameraConfig()
    return sorted(k for k in CameraConfig.model_fields if getattr(before, k) != getattr(after, k))


def depth_ok(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON ``value`` nests at most ``limit`` levels (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True
