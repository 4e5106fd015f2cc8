"""Reading media files: what they are, what they hold, and short previews.

Three steps, each trusting only the file's own bytes (never its name or the
content type a client sent):

``sniff`` / ``sniff_file``
    The container from magic numbers. Allowed: audio WAV, FLAC, MP3 and OGG
    (Vorbis, Opus or FLAC inside), video MP4 and WebM. Everything else is
    refused with ``unsupported_media_type``, including audio-only MP4
    (``.m4a`` brands), QuickTime ``.mov`` and plain Matroska ``.mkv``.

``probe``
    Opens the file with PyAV (FFmpeg) and reads duration, sample rate,
    channels, codec and, for video, width, height and frame rate. It checks
    that FFmpeg sees the container the bytes announced, and that the file
    really decodes:

    - every packet is demuxed, so a file that ends before the duration its
      header states is caught (the last packet ends too early);
    - audio is decoded to the end when the file is at most
      ``PROBE_FULL_DECODE_BYTES`` (decoded length is then the duration);
      above that, and for video, the first packets are decoded;
    - a WAV's ``data`` chunk must fit in the file (FFmpeg silently clamps a
      truncated WAV, so the header is compared with the file size);
    - an MP3 is compared with its stated length only when it carries a
      Xing/Info/VBRI header: without one FFmpeg estimates the length from
      the bitrate, which is wrong for VBR files, so decoding is the test.

    MP4 and WebM files without a video stream are accepted as *audio*
    (``media_kind="audio"``, ``audio/mp4`` or ``audio/webm``): browsers'
    recorders produce audio-only WebM. The ``.m4a`` brands stay refused at
    the sniffing step, as the product's list of formats says.

``make_preview``
    A short, lower-quality excerpt made by the platform, never the original:
    audio becomes MP3, mono, 22,050 Hz, 48 kbps; video becomes MP4 (H.264 at
    most 320 px wide, 15 fps, about 250 kbps, with AAC mono audio). The
    excerpt is the middle of the recording, ``PREVIEW_SECONDS`` long but
    never more than half of it, so a preview can never stand in for a whole
    take; it fades in and out so it reads as an excerpt.
"""

from __future__ import annotations

import os
import struct
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from core.errors import ValidationError

HEAD_BYTES = 64 * 1024
# Audio files up to this size are decoded to the end when probed.
PROBE_FULL_DECODE_BYTES = 128 * 1024 * 1024
ALLOWED_LABEL = "WAV, FLAC, MP3, OGG, MP4 or WebM"


# --- Errors ------------------------------------------------------------------------
# All name the ``file`` field, so forms and the API say which input is wrong.


def _file_details(message: str, extra: dict | None = None) -> dict:
    return {"fields": {"file": [message]}, **(extra or {})}


class MediaError(ValidationError):
    """A file that cannot become a recording."""

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message, details=_file_details(message, details))


class UnsupportedMediaType(MediaError):
    code = "unsupported_media_type"
    status_code = 415


class CorruptMedia(MediaError):
    code = "corrupt_media"


class EmptyFile(MediaError):
    code = "empty_file"


class FileTooLarge(MediaError):
    code = "file_too_large"
    status_code = 413


def file_too_large(limit: int | None = None) -> FileTooLarge:
    limit = settings.RECORDING_MAX_UPLOAD_BYTES if limit is None else limit
    return FileTooLarge(
        f"The file is larger than the {filesizeformat(limit).replace(chr(160), ' ')} limit.",
        details={"max_bytes": limit},
    )


def empty_file() -> EmptyFile:
    return EmptyFile("The file is empty (0 bytes).")


# --- Sniffing ---------------------------------------------------------------------


@dataclass(frozen=True)
class MediaType:
    container: str  # wav, flac, mp3, ogg, mp4, webm
    kind: str  # audio or video (MP4/WebM: "video" until probe finds no video stream)
    mime_type: str
    extension: str


WAV = MediaType("wav", "audio", "audio/wav", "wav")
FLAC = MediaType("flac", "audio", "audio/flac", "flac")
MP3 = MediaType("mp3", "audio", "audio/mpeg", "mp3")
OGG = MediaType("ogg", "audio", "audio/ogg", "ogg")
MP4 = MediaType("mp4", "video", "video/mp4", "mp4")
WEBM = MediaType("webm", "video", "video/webm", "webm")
MEDIA_TYPES = {t.container: t for t in (WAV, FLAC, MP3, OGG, MP4, WEBM)}

# ISO BMFF brands of video MP4 files (major or compatible brand).
MP4_VIDEO_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"iso7",
    b"iso8",
    b"iso9",
    b"mp41",
    b"mp42",
    b"mp71",
    b"avc1",
    b"av01",
    b"dash",
    b"M4V ",
    b"M4VH",
    b"M4VP",
    b"mmp4",
    b"MSNV",
    b"XAVC",
}
MP4_AUDIO_ONLY_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
# Other ISO BMFF families that are not MP4 video, even when they list isom.
ISO_OTHER_BRANDS = {
    b"qt  ": "QuickTime (.mov)",
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "an HEIF image",
    b"msf1": "an HEIF image sequence",
    b"avif": "an AVIF image",
    b"crx ": "a Canon raw photo",
    b"jp2 ": "a JPEG 2000 image",
    b"3gp4": "3GPP",
    b"3gp5": "3GPP",
    b"3gp6": "3GPP",
    b"3g2a": "3GPP2",
}

# What a refused file looks like, to make the message useful.
_OTHER_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"FORM", "an AIFF or IFF file"),
    (b"MThd", "a MIDI file"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b".snd", "a Sun/NeXT audio file"),
]


def _refuse(why: str = "") -> UnsupportedMediaType:
    message = f"The file's contents are not {ALLOWED_LABEL}."
    if why:
        message = f"{message} {why}"
    return UnsupportedMediaType(message)


def _looks_like(head: bytes) -> str:
    for signature, label in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return f"It looks like {label}."
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "It looks like an AVI video; export it as MP4 or WebM."
    sample = head[:2048]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample.lstrip(b"\xef\xbb\xbf")):
        return "It looks like a text file, whatever its name says."
    return ""


def _id3_end(head: bytes) -> int | None:
    """Offset just after an ID3v2 tag at the start of ``head``, or None."""
    if len(head) < 10 or not head.startswith(b"ID3"):
        return None
    major, flags = head[3], head[5]
    size_bytes = head[6:10]
    if major == 0xFF or head[4] == 0xFF or any(b & 0x80 for b in size_bytes):
        return None  # not a well-formed tag header
    size = 0
    for b in size_bytes:  # "synchsafe": 7 bits per byte
        size = (size << 7) | b
    end = 10 + size
    if flags & 0x10:  # footer present
        end += 10
    return end


_MP3_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MP3_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(data: bytes, offset: int = 0) -> int | None:
    """Length of the MPEG-1/2/2.5 Layer III frame whose header starts at
    ``offset``, or None when the four bytes there are not such a header."""
    if len(data) < offset + 4:
        return None
    b0, b1, b2, b3 = data[offset : offset + 4]
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version = (b1 >> 3) & 0b11  # 0: MPEG 2.5, 1: reserved, 2: MPEG 2, 3: MPEG 1
    layer = (b1 >> 1) & 0b11  # 1: Layer III
    if version == 1 or layer != 1:
        return None
    bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 0b11, (b2 >> 1) & 1
    if bitrate_index in (0, 15) or rate_index == 3 or (b3 & 0b11) == 2:
        return None
    table = _MP3_BITRATES_V1 if version == 3 else _MP3_BITRATES_V2
    rate = _MP3_RATES[version][rate_index]
    per_frame = 144 if version == 3 else 72
    return per_frame * table[bitrate_index] * 1000 // rate + padding


def _mp3_first_frame(data: bytes, *, search: int = 0) -> int | None:
    """Offset of the first MP3 frame in ``data`` (looking ``search`` bytes
    ahead), confirmed by a second frame right after it when the data reaches
    that far."""
    for offset in range(min(search, max(len(data) - 4, 0)) + 1):
        length = _mp3_frame_length(data, offset)
        if length is None:
            continue
        following = offset + length
        if len(data) >= following + 4 and _mp3_frame_length(data, following) is None:
            continue
        return offset
    return None


def _ogg_codec(head: bytes) -> str | None:
    """The codec of the first logical stream of an Ogg file."""
    if len(head) < 28:
        return None
    segments = head[26]
    packet = head[27 + segments : 27 + segments + 16]
    if packet.startswith(b"\x01vorbis"):
        return "vorbis"
    if packet.startswith(b"OpusHead"):
        return "opus"
    if packet.startswith(b"\x7fFLAC"):
        return "flac"
    if packet.startswith(b"\x80theora"):
        return "theora"
    if packet.startswith(b"Speex   "):
        return "speex"
    return None


def _ebml_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """Read an EBML variable-length integer: (value, next position)."""
    if pos >= len(data):
        return None
    first = data[pos]
    if first == 0:
        return None
    length = 8 - first.bit_length() + 1
    if pos + length > len(data):
        return None
    value = first if keep_marker else first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, pos + length


def _ebml_doctype(head: bytes) -> str | None:
    """The DocType of the EBML header ("webm", "matroska" …)."""
    parsed = _ebml_vint(head, 4, keep_marker=False)
    if parsed is None:
        return None
    size, pos = parsed
    end = min(len(head), pos + size)
    while pos < end:
        element = _ebml_vint(head, pos, keep_marker=True)
        if element is None:
            return None
        element_id, pos = element
        parsed = _ebml_vint(head, pos, keep_marker=False)
        if parsed is None:
            return None
        element_size, pos = parsed
        if element_id == 0x4282:
            return head[pos : pos + element_size].rstrip(b"\x00").decode("ascii", "replace")
        pos += element_size
    return None


def _sniff_mp4(head: bytes) -> MediaType:
    major = head[8:12]
    box_size = struct.unpack(">I", head[0:4])[0]
    compatible = [
        head[i : i + 4] for i in range(16, min(box_size, len(head), 256) - 3, 4) if box_size >= 16
    ]
    if major in MP4_AUDIO_ONLY_BRANDS:
        raise _refuse(
            "Audio-only MP4 (.m4a) files are not accepted: upload the audio as WAV, FLAC, "
            "MP3 or OGG, or a video as MP4."
        )
    if major in MP4_VIDEO_BRANDS:
        return MP4
    if major in ISO_OTHER_BRANDS:
        label = ISO_OTHER_BRANDS[major]
        hint = "export it as MP4 or WebM" if major in (b"qt  ",) or b"3g" in major else ""
        raise _refuse(f"It looks like {label}{'; ' + hint if hint else ''}.")
    if any(brand in MP4_VIDEO_BRANDS for brand in compatible):
        return MP4
    brand = major.decode("ascii", "replace").strip()
    raise _refuse(f"It is an ISO media file of an unknown kind (brand “{brand}”).")


def sniff(head: bytes, *, after_id3: bool = False) -> MediaType:
    """The media type announced by the first bytes of a file (64 KiB is
    plenty unless an ID3 tag is longer: ``sniff_file`` handles that).

    ``after_id3`` means ``head`` starts right after an ID3v2 tag, where only
    FLAC or an MP3 frame may follow."""
    if not head:
        raise empty_file()
    if not after_id3:
        id3_end = _id3_end(head)
        if id3_end is not None:
            if id3_end + 4 > len(head):
                raise _refuse("It starts with an ID3 tag longer than the part that was read.")
            return sniff(head[id3_end:], after_id3=True)
    if after_id3:
        if head.startswith(b"fLaC"):
            return FLAC
        # Some taggers pad after the tag; tolerate a little.
        if _mp3_first_frame(head, search=4096) is not None:
            return MP3
        raise _refuse("It has an ID3 tag, but no MP3 or FLAC audio follows it.")

    if head[0:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        codec = _ogg_codec(head)
        if codec in ("vorbis", "opus", "flac"):
            return OGG
        if codec == "theora":
            raise _refuse("Ogg video (Theora) is not accepted; upload video as MP4 or WebM.")
        raise _refuse("It is an Ogg file, but not Vorbis, Opus or FLAC audio.")
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_mp4(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        doctype = _ebml_doctype(head)
        if doctype == "webm":
            return WEBM
        if doctype == "matroska":
            raise _refuse("Matroska (.mkv) files are not accepted; WebM and MP4 are.")
        raise _refuse("It is an EBML file, but not WebM.")
    if _mp3_first_frame(head) is not None:
        return MP3
    raise _refuse(_looks_like(head))


def sniff_file(file: str | os.PathLike | BinaryIO) -> MediaType:
    """``sniff`` on a file on disk or an open binary file (left at offset 0),
    reading past a long ID3 tag when there is one."""
    if isinstance(file, str | os.PathLike):
        with open(file, "rb") as handle:
            return sniff_file(handle)
    file.seek(0)
    head = file.read(HEAD_BYTES)
    try:
        id3_end = _id3_end(head)
        if id3_end is not None and id3_end + 4 > len(head):
            file.seek(id3_end)
            rest = file.read(HEAD_BYTES)
            if not rest:
                raise _refuse("It holds an ID3 tag and nothing else.")
            return sniff(rest, after_id3=True)
        return sniff(head)
    finally:
        file.seek(0)


# --- Probing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaFacts:
    container: str
    media_kind: str  # audio or video
    mime_type: str
    extension: str
    codec: str  # e.g. "pcm_s16le", "mp3"; for video "h264/aac" (video/audio)
    duration_seconds: float
    sample_rate: int | None = None
    channels: int | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None


# What FFmpeg calls each container (AVInputFormat names).
_FFMPEG_FORMATS = {
    "wav": {"wav"},
    "flac": {"flac"},
    "mp3": {"mp3"},
    "ogg": {"ogg"},
    "mp4": {"mp4"},
    "webm": {"webm"},
}


def _corrupt(detail: str) -> CorruptMedia:
    return CorruptMedia(f"The file is damaged or incomplete: {detail}")


def _reason(exc: BaseException) -> str:
    """FFmpeg's words for a failure, without the temporary file's path."""
    reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return str(reason).rstrip(".").lower()


def _wav_data_check(path: str, size: int) -> None:
    """A WAV whose ``data`` chunk claims more bytes than the file holds was
    cut short (FFmpeg would quietly play what is there)."""
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12:
            raise _corrupt("the WAV header is incomplete.")
        position = 12
        while True:
            handle.seek(position)
            chunk = handle.read(8)
            if len(chunk) < 8:
                raise _corrupt("the WAV file has no audio data chunk.")
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):
                    return  # written as a stream, size unknown: decoding decides
                available = size - position - 8
                if chunk_size > available:
                    raise _corrupt(
                        f"the WAV header announces {chunk_size:,} bytes of audio but the file "
                        f"holds only {max(available, 0):,}; it looks truncated."
                    )
                return
            position += 8 + chunk_size + (chunk_size & 1)
            if position >= size:
                raise _corrupt("the WAV file has no audio data chunk.")


def _mp3_has_length_header(path: str) -> bool:
    """Whether the first MP3 frame is a Xing/Info/VBRI frame, which states
    the exact number of frames."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        start = _id3_end(head) or 0
        if start + 4 > len(head):
            handle.seek(start)
            head, start = handle.read(HEAD_BYTES), 0
    offset = _mp3_first_frame(head[start:], search=4096)
    if offset is None:
        return False
    frame = head[start + offset : start + offset + 200]
    return any(marker in frame for marker in (b"Xing", b"Info", b"VBRI"))


def _is_attached_picture(stream) -> bool:
    import av

    return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


def _codec_name(stream) -> str:
    codec = stream.codec_context.codec
    return (getattr(codec, "canonical_name", None) or codec.name or "").lower()


def _open_local(path: str | os.PathLike):
    """Open a file on disk with FFmpeg, and only that file: the path is
    absolute (so no part of a name is read as a protocol) and FFmpeg may not
    follow references to other files or URLs."""
    import av

    return av.open(
        "file:" + os.path.abspath(path), mode="r", options={"protocol_whitelist": "file"}
    )


def probe(path: str | os.PathLike, expected: MediaType) -> MediaFacts:
    """Read the facts of a file already sniffed as ``expected``, proving it
    decodes. Raises EmptyFile, UnsupportedMediaType or CorruptMedia."""
    import av

    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0:
        raise empty_file()
    if expected.container == "wav":
        _wav_data_check(path, size)

    try:
        container = _open_local(path)
    except (av.error.FFmpegError, EOFError, OSError, ValueError) as exc:
        raise _corrupt(
            f"it cannot be opened as {expected.container.upper()} ({_reason(exc)})."
        ) from None
    with container:
        names = set(container.format.name.split(","))
        if not names & _FFMPEG_FORMATS[expected.container]:
            raise _corrupt(
                f"its first bytes say {expected.container.upper()} but the rest of it reads "
                f"as {container.format.long_name or container.format.name}."
            )
        audio = next(iter(container.streams.audio), None)
        video = next(
            (s for s in container.streams.video if not _is_attached_picture(s)),
            None,
        )
        if expected.kind == "audio":
            if video is not None:
                raise _refuse(
                    f"This {expected.container.upper()} file holds video; upload video as MP4 "
                    "or WebM."
                )
            if audio is None:
                raise _corrupt("it holds no audio stream.")
        elif audio is None and video is None:
            raise _corrupt("it holds neither audio nor video.")

        stated = container.duration / 1_000_000 if container.duration else None
        walked = _walk(container, audio=audio, video=video, size=size)
        audio_codec = _codec_name(audio) if audio is not None else ""
        sample_rate = audio.codec_context.sample_rate if audio is not None else None
        channels = audio.codec_context.channels if audio is not None else None
        codec = audio_codec
        width = height = frame_rate = None
        if video is not None:
            codec = "/".join(c for c in (_codec_name(video), audio_codec) if c)
            width, height = video.codec_context.width, video.codec_context.height
            rate = video.average_rate or video.guessed_rate or video.base_rate
            frame_rate = round(float(rate), 3) if rate else None
            if not width or not height:
                raise _corrupt("its video has no picture size.")

    measured = walked["decoded_audio"] or walked["packets_end"]
    if stated is not None and measured:
        trust_stated = expected.container != "mp3" or _mp3_has_length_header(path)
        tolerance = max(0.3, stated * 0.01)
        if trust_stated and stated - measured > tolerance:
            raise _corrupt(
                f"it says it lasts {stated:.2f} s but its media stops at {measured:.2f} s; "
                "it looks truncated."
            )
    duration = measured or stated or 0.0
    if duration <= 0:
        raise _corrupt("it holds no playable media (duration 0).")

    kind = "video" if video is not None else "audio"
    mime = expected.mime_type if kind == expected.kind else f"audio/{expected.container}"
    return MediaFacts(
        container=expected.container,
        media_kind=kind,
        mime_type=mime,
        extension=expected.extension,
        codec=codec[:40],
        duration_seconds=round(duration, 3),
        sample_rate=sample_rate,
        channels=channels,
        width=width,
        height=height,
        frame_rate=frame_rate,
    )


# How many packets of each stream are decoded when the whole stream is not.
_HEAD_PACKETS = 48


def _walk(container, *, audio, video, size: int) -> dict:
    """Demux every packet; decode audio (all of it for small files) and the
    first video packets. Returns measured lengths; raises CorruptMedia."""
    import av

    decode_all_audio = audio is not None and video is None and size <= PROBE_FULL_DECODE_BYTES
    streams = [s for s in (audio, video) if s is not None]
    counts = {s.index: 0 for s in streams}
    errors = {s.index: 0 for s in streams}
    frames = {s.index: 0 for s in streams}
    samples = 0
    packets_end = 0.0
    try:
        for packet in container.demux(*streams):
            stream = packet.stream
            if packet.size == 0 and packet.pts is None:
                # The end of a stream: flush the decoder's last frames.
                if stream is audio and decode_all_audio:
                    with suppress(av.error.FFmpegError):
                        samples += sum(frame.samples for frame in packet.decode())
                continue
            index = stream.index
            counts[index] += 1
            if packet.pts is not None and stream.time_base:
                end = (packet.pts + (packet.duration or 0)) * stream.time_base
                start = stream.start_time * stream.time_base if stream.start_time else 0
                packets_end = max(packets_end, float(end - start))
            wanted = (stream is audio and decode_all_audio) or counts[index] <= _HEAD_PACKETS
            if not wanted:
                continue
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                errors[index] += 1
                continue
            frames[index] += len(decoded)
            if stream is audio:
                samples += sum(frame.samples for frame in decoded)
    except (av.error.FFmpegError, EOFError, OSError) as exc:
        raise _corrupt(f"reading it failed part-way ({_reason(exc)}).") from None

    for stream in streams:
        label = "video" if stream is video else "audio"
        tried = counts[stream.index] if stream is audio and decode_all_audio else _HEAD_PACKETS
        tried = min(tried, counts[stream.index])
        if counts[stream.index] == 0:
            raise _corrupt(f"its {label} stream is empty.")
        if frames[stream.index] == 0:
            raise _corrupt(f"its {label} could not be decoded.")
        if errors[stream.index] > max(2, tried // 100):
            raise _corrupt(
                f"{errors[stream.index]} of the first {tried} {label} packets could not be decoded."
            )
    decoded_audio = 0.0
    if decode_all_audio and audio.codec_context.sample_rate:
        decoded_audio = samples / audio.codec_context.sample_rate
    return {"decoded_audio": decoded_audio, "packets_end": packets_end}


# --- Previews ---------------------------------------------------------------------------

PREVIEW_AUDIO_RATE = 22_050
PREVIEW_AUDIO_BITRATE = 48_000
PREVIEW_VIDEO_MAX_WIDTH = 320
PREVIEW_VIDEO_FPS = 15
PREVIEW_VIDEO_BITRATE = 250_000
PREVIEW_FADE_SECONDS = 0.3


class Preview(NamedTuple):
    path: Path  # a temporary file; the caller deletes it
    extension: str
    mime_type: str


def preview_window(duration: float, seconds: float) -> tuple[float, float]:
    """(start, length) of the excerpt: the middle of the recording, at most
    ``seconds`` long and never more than half of it."""
    length = max(0.0, min(float(seconds), duration / 2))
    start = max(0.0, (duration - length) / 2)
    return start, length


def make_preview(
    path: str | os.PathLike, facts: MediaFacts, seconds: float | None = None
) -> Preview:
    """Encode the excerpt into a temporary file. Raises CorruptMedia when the
    source cannot be read."""
    import av

    seconds = settings.PREVIEW_SECONDS if seconds is None else seconds
    start, length = preview_window(facts.duration_seconds, seconds)
    if length <= 0:
        raise _corrupt("it is too short to preview.")
    video_preview = facts.media_kind == "video"
    suffix, mime = (".mp4", "video/mp4") if video_preview else (".mp3", "audio/mpeg")
    handle, out_path = tempfile.mkstemp(prefix="preview-", suffix=suffix)
    os.close(handle)
    try:
        with _open_local(path) as source, av.open(out_path, mode="w") as target:
            if video_preview:
                _encode_video_preview(source, target, start, length)
            else:
                _encode_audio_preview(source, target, start, length)
    except (av.error.FFmpegError, EOFError, OSError, ValueError) as exc:
        Path(out_path).unlink(missing_ok=True)
        raise _corrupt(f"the preview could not be made ({_reason(exc)}).") from None
    except BaseException:
        Path(out_path).unlink(missing_ok=True)
        raise
    return Preview(Path(out_path), suffix.lstrip("."), mime)


def _seek_before(source, stream, start: float) -> None:
    """Jump close to the excerpt so long files are not decoded from zero."""
    if start < 2 or not stream.time_base:
        return
    import av

    offset = int((start - 1) / stream.time_base) + (stream.start_time or 0)
    try:
        source.seek(offset, stream=stream, backward=True)
    except av.error.FFmpegError:
        source.seek(0, stream=stream)


def _stream_start(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time else 0.0


def _audio_graph(stream, start: float, length: float, *, layout: str, rate: int, sample_fmt: str):
    import av

    graph = av.filter.Graph()
    fade_out_at = max(0.0, length - PREVIEW_FADE_SECONDS)
    origin = start + _stream_start(stream)
    graph.link_nodes(
        graph.add_abuffer(template=stream),
        graph.add("atrim", f"start={origin:.6f}:duration={length:.6f}"),
        graph.add("asetpts", "PTS-STARTPTS"),
        graph.add("aresample", str(rate)),
        graph.add("aformat", f"sample_fmts={sample_fmt}:channel_layouts={layout}"),
        graph.add("afade", f"t=in:st=0:d={PREVIEW_FADE_SECONDS}"),
        graph.add("afade", f"t=out:st={fade_out_at:.6f}:d={PREVIEW_FADE_SECONDS}"),
        graph.add("abuffersink"),
    )
    graph.configure()
    return graph


def _push(graph, frame) -> bool:
    """Feed a frame (None: end of input); False once the graph has all it
    wants (the trim filter reached the end of the excerpt)."""
    import av

    try:
        graph.push(frame)
    except av.error.EOFError:
        return False
    return True


def _drain(graph, encode) -> None:
    import av

    while True:
        try:
            frame = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        encode(frame)


def _encode_audio_preview(source, target, start: float, length: float) -> None:
    stream = source.streams.audio[0]
    out = target.add_stream("libmp3lame", rate=PREVIEW_AUDIO_RATE, layout="mono")
    out.bit_rate = PREVIEW_AUDIO_BITRATE
    sample_fmt = out.codec_context.format.name
    graph = _audio_graph(
        stream, start, length, layout="mono", rate=PREVIEW_AUDIO_RATE, sample_fmt=sample_fmt
    )
    graph.set_audio_frame_size(out.codec_context.frame_size or 1152)
    _seek_before(source, stream, start)
    end = start + _stream_start(stream) + length

    def encode(frame):
        frame.pts = None
        for packet in out.encode(frame):
            target.mux(packet)

    for frame in source.decode(stream):
        more = _push(graph, frame)
        _drain(graph, encode)
        if not more or (frame.time is not None and frame.time > end + 1):
            break
    _push(graph, None)
    _drain(graph, encode)
    for packet in out.encode(None):
        target.mux(packet)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _encode_video_preview(source, target, start: float, length: float) -> None:
    import av

    video = next(s for s in source.streams.video if not _is_attached_picture(s))
    audio = next(iter(source.streams.audio), None)
    width = min(PREVIEW_VIDEO_MAX_WIDTH, video.codec_context.width)
    height = video.codec_context.height * width / video.codec_context.width
    width, height = _even(width), _even(height)

    v_out = target.add_stream("libx264", rate=PREVIEW_VIDEO_FPS)
    v_out.width, v_out.height, v_out.pix_fmt = width, height, "yuv420p"
    v_out.bit_rate = PREVIEW_VIDEO_BITRATE
    v_out.codec_context.options = {"preset": "veryfast", "profile": "baseline"}
    v_graph = av.filter.Graph()
    origin = start + _stream_start(video)
    v_graph.link_nodes(
        v_graph.add_buffer(template=video),
        v_graph.add("trim", f"start={origin:.6f}:duration={length:.6f}"),
        v_graph.add("setpts", "PTS-STARTPTS"),
        v_graph.add("fps", str(PREVIEW_VIDEO_FPS)),
        v_graph.add("scale", f"{width}:{height}"),
        v_graph.add("format", "yuv420p"),
        v_graph.add("buffersink"),
    )
    v_graph.configure()

    a_out = a_graph = None
    if audio is not None:
        a_out = target.add_stream("aac", rate=PREVIEW_AUDIO_RATE, layout="mono")
        a_out.bit_rate = PREVIEW_AUDIO_BITRATE
        a_graph = _audio_graph(
            audio,
            start,
            length,
            layout="mono",
            rate=PREVIEW_AUDIO_RATE,
            sample_fmt=a_out.codec_context.format.name,
        )
        a_graph.set_audio_frame_size(a_out.codec_context.frame_size or 1024)

    counters = {"video": 0, "audio": 0}

    def encode_video(frame):
        frame.pts = counters["video"]
        frame.time_base = v_out.codec_context.time_base
        counters["video"] += 1
        for packet in v_out.encode(frame):
            target.mux(packet)

    def encode_audio(frame):
        frame.pts = counters["audio"]
        counters["audio"] += frame.samples
        for packet in a_out.encode(frame):
            target.mux(packet)

    _seek_before(source, video, start)
    end = start + _stream_start(video) + length
    streams = [s for s in (video, audio) if s is not None]
    finished: set[int] = set()
    for packet in source.demux(*streams):
        if packet.stream.index in finished:
            continue
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:
            continue
        for frame in decoded:
            if packet.stream is video:
                more = _push(v_graph, frame)
                _drain(v_graph, encode_video)
            else:
                more = _push(a_graph, frame)
                _drain(a_graph, encode_audio)
            if not more or (frame.time is not None and frame.time > end + 1):
                finished.add(packet.stream.index)
                break
        if len(finished) == len(streams):
            break
    _push(v_graph, None)
    _drain(v_graph, encode_video)
    for packet in v_out.encode(None):
        target.mux(packet)
    if a_out is not None:
        _push(a_graph, None)
        _drain(a_graph, encode_audio)
        for packet in a_out.encode(None):
            target.mux(packet)
