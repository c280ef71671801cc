"""Audio and video containers through Debian's ffmpeg and ffprobe, run as processes with
timeouts: a hostile or broken file can make a decoder spin or crash, and a process can be
killed where a thread cannot. The duration is checked from the container's header before
anything is decoded, and every decode is also cut at the cap (``-t``), in case the header lies.

WAV needs neither tool: its header is read in-process and its PCM decoded with NumPy.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litegate.documents.types import Limits, Part
from litegate.errors import InvalidRequest, ModelNotAvailable

SAMPLE_RATE = 16_000  # what the speech model listens at
FFMPEG_HINT = "apt-get install ffmpeg"


@dataclass
class MediaInfo:
    duration: float | None
    has_audio: bool
    has_video: bool
    width: int = 0
    height: int = 0


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ModelNotAvailable(f"reading audio and video needs {name}, which is not installed; install it with: "
                                f"{FFMPEG_HINT}")
    return path


def _run(args: list[str], part: Part, limits: Limits, what: str, path: Path) -> bytes:
    try:
        done = subprocess.run(args, capture_output=True, timeout=limits.tool_timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InvalidRequest(f"{part.name}: {what} took over {limits.tool_timeout_s:g} s; the file may be corrupt or "
                             "too long", param=part.name, code="invalid_document") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").replace(f"{path}: ", "").strip().splitlines()[-1:] or [
            "no reason given"]
        raise InvalidRequest(f"{part.name} is not a readable {part.mime_type or 'media file'} (corrupt or truncated: "
                             f"{reason[0][:160]}); check the file", param=part.name, code="invalid_document")
    return done.stdout


def probe(path: Path, part: Part, limits: Limits) -> MediaInfo:
    """The container's duration and streams, from its header (ffprobe decodes nothing)."""
    out = _run([_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                str(path)], part, limits, "reading the header", path)
    try:
        info = json.loads(out or b"{}")
    except ValueError:
        info = {}
    streams = info.get("streams") or []
    video = [s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get(
        "attached_pic")]  # an album cover in an mp3 is not a video
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not video and not audio:
        raise InvalidRequest(f"{part.name} holds no audio or video stream; check the file", param=part.name,
                             code="invalid_document")
    durations = [_float((info.get("format") or {}).get("duration"))] + [_float(s.get("duration")) for s in streams]
    known = [d for d in durations if d is not None]
    return MediaInfo(duration=max(known) if known else None, has_audio=bool(audio), has_video=bool(video),
                     width=int(video[0].get("width") or 0) if video else 0,
                     height=int(video[0].get("height") or 0) if video else 0)


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f >= 0 else None


def check_duration(part: Part, seconds: float | None, limits: Limits) -> None:
    if seconds is not None and seconds > limits.max_seconds:
        raise InvalidRequest(f"{part.name} lasts {seconds:.0f} s, over the {limits.max_seconds:g}-second limit; send "
                             "a shorter clip", param=part.name, code="media_too_long")


def decode_audio(path: Path, part: Part, limits: Limits) -> Any:
    """The first audio track as 16 kHz mono float32 samples, at most ``max_seconds`` long."""
    import numpy as np

    out = _run([_tool("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-t", f"{limits.max_seconds:g}",
                "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"],
               part, limits, "decoding the audio", path)
    return np.frombuffer(out[:len(out) // 4 * 4], dtype=np.float32)


def wav_duration(part: Part) -> float:
    """Seconds of a WAV file from its header alone."""
    try:
        with wave.open(io.BytesIO(part.data)) as w:
            rate, frames = w.getframerate(), w.getnframes()
    except (wave.Error, EOFError, ValueError) as e:
        raise _unreadable(part, e) from None
    if rate <= 0:
        raise _unreadable(part, "no sample rate")
    return frames / rate


def decode_wav(part: Part, limits: Limits) -> Any:
    """PCM WAV (8, 16, 24 or 32-bit integer) as 16 kHz mono float32, in-process."""
    import numpy as np

    try:
        with wave.open(io.BytesIO(part.data)) as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(min(w.getnframes(), int(limits.max_seconds * rate) + 1))
    except (wave.Error, EOFError, ValueError) as e:
        raise _unreadable(part, e) from None
    if channels < 1 or width not in (1, 2, 3, 4) or rate <= 0:
        raise _unreadable(part, f"{channels} channels of {width}-byte samples")
    usable = len(raw) // (width * channels) * width * channels
    raw = raw[:usable]
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        samples = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float32) / 8388608
    else:
        samples = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648
    samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and len(samples):
        # linear interpolation: speech has little above 8 kHz for it to fold down
        n = int(round(len(samples) * SAMPLE_RATE / rate))
        samples = np.interp(np.arange(n) * (rate / SAMPLE_RATE), np.arange(len(samples)), samples)
    return samples.astype(np.float32)


def _unreadable(part: Part, reason: object) -> InvalidRequest:
    return InvalidRequest(f"{part.name} is not a readable WAV file (corrupt or truncated: {reason}); check the file",
                          param=part.name, code="invalid_document")


def video_frames(path: Path, part: Part, limits: Limits, duration: float | None, tmp: Path) -> list[tuple[float, Any]]:
    """(time in seconds, PIL image) of a frame every ``frame_every_s`` (spread wider so that
    at most ``max_frames`` come out), scaled to at most 1600 pixels wide."""
    from PIL import Image

    every = limits.frame_every_s
    if duration and duration / every > limits.max_frames:
        every = duration / limits.max_frames
    pattern = tmp / "frame-%05d.png"
    _run([_tool("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-t", f"{limits.max_seconds:g}", "-an",
          "-vf", f"fps=1/{every:.3f}:start_time=0,scale='min(1600,iw)':-2", "-frames:v", str(limits.max_frames),
          str(pattern)], part, limits, "extracting frames", path)
    frames = []
    for i, file in enumerate(sorted(tmp.glob("frame-*.png"))):
        with Image.open(file) as im:
            frames.append((round(i * every, 2), im.convert("RGB")))
    return frames
