"""rosbag2 reading and writing for the bag tools, through the pure-Python `rosbags` library.

Why rosbags: rosbag2_py has no PyPI wheel, and rosbags reads and writes both storage formats
(sqlite3 .db3 and MCAP) without a ROS install. Every failure of the library (missing path, truncated
file, corrupt database, unsupported compression) is turned into a `BagError` that names the bag,
says what went wrong, and what to do about it.

Our message types (vis_ros_msgs/msg/*) are registered from their .msg text, so the definitions
written into a bag are exactly the package's and any tool (Foxglove, ros2 bag, rosbags) can read it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from vis_ros.core.errors import BagError

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
STORAGES = ('mcap', 'sqlite3')
_MSG_PACKAGE = 'vis_ros_msgs'
_FIX_CORRUPT = ('re-record it, or try `mcap recover` (MCAP) / restoring the .db3 from a backup '
                '(sqlite3); a copy that was cut short by a full disk or a crash looks like this')


def msg_definition_dir() -> Path:
    """Return the folder holding vis_ros_msgs' .msg files (installed share/ first, then the checkout)."""
    from vis_ros.core.sequences import repo_root
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    candidates = [Path(p) / 'share' / _MSG_PACKAGE / 'msg' for p in prefixes]
    candidates.append(repo_root() / _MSG_PACKAGE / 'msg')
    for folder in candidates:
        if (folder / 'InstanceArray.msg').is_file():
            return folder
    raise BagError(f'cannot find {_MSG_PACKAGE}/msg/*.msg (looked in {", ".join(map(str, candidates))}); '
                   'source install/env.sh or your ROS workspace so AMENT_PREFIX_PATH lists it')


def make_typestore():
    """Return a rosbags typestore (ROS 2 Kilted) with vis_ros_msgs registered from the .msg text."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(msg_definition_dir().glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'{_MSG_PACKAGE}/msg/{path.stem}'))
    store.register(types)
    return store


def deserialize_cdr(store, raw: bytes, msgtype: str):
    """Decode CDR bytes with a rosbags typestore, accepting rclpy's trailing alignment bytes.

    Fast-CDR (rclpy, ros2 bag record) aligns an empty sequence of 8-byte elements at the end of a
    message (InstanceArray with no ended_ids), leaving 4 bytes rosbags 0.11 calls a "size mismatch";
    up to 7 such bytes are alignment, not corruption, and are accepted here.
    """
    from rosbags.serde import SerdeError
    try:
        return store.deserialize_cdr(raw, msgtype)
    except SerdeError as err:
        if 'size mismatch' not in str(err):
            raise
        msgdef = store.get_msgdef(msgtype)
        decode = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
        message, pos = decode(memoryview(raw)[4:], 0, msgdef.cls, store)
        if len(raw) - (pos + 4) > 7:
            raise
        return message


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: name, message type and number of messages."""

    topic: str
    msgtype: str
    count: int

    @property
    def is_image(self) -> bool:
        """Tell whether the topic carries Image or CompressedImage messages."""
        return self.msgtype in IMAGE_TYPES


def format_topics(topics: Sequence[TopicInfo]) -> str:
    """Format a plain table of topics, types and counts (image topics marked)."""
    if not topics:
        return '  (the bag has no topics)'
    width = max(len(t.topic) for t in topics)
    return '\n'.join(f'  {t.topic:<{width}}  {t.msgtype:<34} {t.count:>7} msgs'
                     f'{"   <- image" if t.is_image else ""}' for t in topics)


def _describe_error(err: BaseException) -> str:
    text = ' '.join(str(a) for a in getattr(err, 'args', ()) if a) or type(err).__name__
    return text.rstrip('.')


class BagReader:
    """A read-only rosbag2 (directory, .mcap or .db3 file) with errors as `BagError`.

    Use as a context manager. `messages(topic)` yields (timestamp_ns, raw CDR bytes, connection)
    in bag (timestamp) order; `deserialize(raw, msgtype)` decodes with the bag's own definitions.
    """

    def __init__(self, path: Path | str):
        """Remember the bag path; `open()` (or `with`) reads it."""
        self.path = Path(path)
        self._reader = None

    def __enter__(self) -> 'BagReader':
        """Open the bag."""
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        """Close the bag."""
        self.close()

    def open(self) -> None:
        """Open the bag; BagError names what is missing or broken."""
        from rosbags.highlevel import AnyReader
        if not self.path.exists():
            raise BagError(f'bag {self.path} does not exist; give a rosbag2 folder (with metadata.yaml) '
                           'or a .mcap / .db3 file (make one with `vis-ros make-bag`)')
        if self.path.is_file() and self.path.suffix not in ('.mcap', '.db3'):
            raise BagError(f'{self.path} is not a rosbag2: expected a folder with metadata.yaml, '
                           f'a .mcap or a .db3 file, got a {self.path.suffix or "suffix-less"} file')
        if self.path.is_dir() and not (self.path / 'metadata.yaml').is_file():
            raise BagError(f'{self.path} has no metadata.yaml, so it is not a rosbag2 folder; pass the '
                           '.mcap/.db3 file inside it instead, or `ros2 bag reindex` the folder')
        try:
            reader = AnyReader([self.path], default_typestore=make_typestore())
            reader.open()
        except BagError:
            raise
        except Exception as err:  # rosbags raises many types (ReaderError, apsw, struct, OSError)
            raise BagError(f'cannot open bag {self.path}: {_describe_error(err)}; the bag is truncated, '
                           f'corrupt or of an unsupported format/compression: {_FIX_CORRUPT}') from err
        self._reader = reader

    def close(self) -> None:
        """Close the bag; safe to call twice."""
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:  # closing a reader that failed mid-stream must not hide the real error
                pass

    @property
    def reader(self):
        """The open rosbags AnyReader."""
        if self._reader is None:
            raise BagError(f'bag {self.path} is not open')
        return self._reader

    @property
    def start_ns(self) -> int:
        """Return the timestamp of the first message (ns)."""
        return int(min((r.start_time for r in self.reader.readers), default=0))

    def topics(self) -> list[TopicInfo]:
        """List every topic with its type and message count, sorted by name."""
        counts: dict[tuple[str, str], int] = {}
        for conn in self.reader.connections:
            key = (conn.topic, conn.msgtype)
            counts[key] = counts.get(key, 0) + int(conn.msgcount)
        return [TopicInfo(topic, msgtype, n) for (topic, msgtype), n in sorted(counts.items())]

    def connections(self, topic: str) -> list:
        """Return the bag's connections of one topic."""
        return [c for c in self.reader.connections if c.topic == topic]

    def messages(self, topic: str, start_ns: Optional[int] = None,
                 stop_ns: Optional[int] = None) -> Iterator[tuple[int, bytes, object]]:
        """Yield (timestamp_ns, raw, connection) of one topic in bag order; storage errors raise BagError."""
        conns = self.connections(topic)
        if not conns:   # rosbags reads every topic when given no connection: a missing one gives none
            return
        try:
            for conn, stamp, raw in self.reader.messages(connections=conns, start=start_ns, stop=stop_ns):
                yield int(stamp), raw, conn
        except BagError:
            raise
        except Exception as err:
            raise BagError(f'bag {self.path} broke while reading {topic}: {_describe_error(err)}; '
                           f'the file is truncated or corrupt: {_FIX_CORRUPT}') from err

    def deserialize(self, raw: bytes, msgtype: str):
        """Decode raw CDR bytes into a rosbags message (with the definitions stored in the bag)."""
        try:
            return deserialize_cdr(self.reader.typestore, raw, msgtype)
        except Exception as err:
            raise BagError(f'a {msgtype} message in {self.path} cannot be decoded ({_describe_error(err)}); '
                           f'the message bytes are corrupt: {_FIX_CORRUPT}') from err


class BagWriter:
    """A new rosbag2 written with rosbags; connections by type name, messages as raw CDR.

    `single_file=True` (MCAP only) leaves one self-describing `path` .mcap file instead of a
    folder: the replay output is one file that Foxglove, `ros2 bag` and rosbags open directly.
    On `close()` the storage is finalized (index, summary, metadata), so what was written before
    an error stays a valid bag.
    """

    def __init__(self, path: Path | str, storage: str = 'mcap', single_file: bool = False,
                 compress: bool = False):
        """Create the bag (it must not exist yet); BagError when that is impossible.

        compress: zstd-compressed MCAP chunks (MCAP's own compression; every MCAP reader decodes it).
        """
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
        if storage not in STORAGES:
            raise BagError(f'storage {storage!r} is not supported; choose one of {", ".join(STORAGES)}')
        self.path = Path(path)
        self.single_file = single_file and storage == 'mcap'
        self._bag_dir = self.path.with_name(f'.{self.path.name}.tmp') if self.single_file else self.path
        if self._bag_dir.exists():
            raise BagError(f'{self._bag_dir} exists already; remove it or choose another output path')
        self.typestore = make_typestore()
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self._bag_dir, version=9, storage_plugin=plugin)
        if compress and storage == 'mcap':
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._connections: dict[str, object] = {}
        try:
            self._writer.open()
        except Exception as err:
            raise BagError(f'cannot create bag {self.path}: {_describe_error(err)}; '
                           'check that the folder is writable and has free space') from err

    def add_topic(self, topic: str, msgtype: str, msgdef: Optional[str] = None,
                  digest: Optional[str] = None) -> None:
        """Register a topic: from our typestore, or with a definition copied from another bag."""
        if msgdef is not None and digest:
            conn = self._writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=digest)
        else:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
        self._connections[topic] = conn

    def has_topic(self, topic: str) -> bool:
        """Tell whether `topic` was added."""
        return topic in self._connections

    def write(self, topic: str, stamp_ns: int, raw: bytes) -> None:
        """Write one raw CDR message (the topic must have been added)."""
        self._writer.write(self._connections[topic], int(stamp_ns), raw)

    def serialize(self, msg, msgtype: str) -> bytes:
        """Serialize a rosbags message object of our typestore to CDR bytes."""
        return bytes(self.typestore.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        """Finalize the bag (index, metadata); safe to call twice."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.close()
        if self.single_file:
            produced = self._bag_dir / f'{self._bag_dir.name}.mcap'
            produced.replace(self.path)
            shutil.rmtree(self._bag_dir, ignore_errors=True)

    def __enter__(self) -> 'BagWriter':
        """Return the open writer."""
        return self

    def __exit__(self, *exc) -> None:
        """Finalize the bag, also after an error (what was written stays readable)."""
        self.close()


def bag_fingerprint(path: Path) -> dict:
    """Return sha256 and total size of a bag's files (a folder's files hashed in name order)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    size = 0
    for file in files:
        with file.open('rb') as stream:
            for block in iter(lambda: stream.read(1 << 20), b''):
                digest.update(block)
                size += len(block)
    return {'path': str(path.resolve()), 'sha256': digest.hexdigest(), 'size_bytes': size,
            'files': [f.name for f in files]}
