"""What an LLM frame records about how it was computed, and how a decoder honours it.

A frame names its model (hash), its payload layout and its engine: the portable integer engine
(``"engine": "int8-v2"``, no machine facts: the arithmetic is specified) or the float one (the
forward, ``"step"``, and the machine facts its bits depend on, ``"numerics"``). The decoder
refuses another model or engine with a clear error, warns when a float frame meets other
numerics, and, when such a frame then fails, says why the data is most likely intact.
"""

from __future__ import annotations

import copy
import os
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from ..errors import CodecError, CorruptDataError, ModelMismatchError

__all__ = ["PAYLOAD_LAYOUT", "FingerprintPolicy", "NumericsWarning"]

#: Layout of the LLM payload, recorded in the frame's fingerprint: one rANS64 state shared by
#: all lanes (:mod:`~llm_codecs.coding.rans`). Frames without it used one stream per lane.
PAYLOAD_LAYOUT = "rans64-shared"


class NumericsWarning(UserWarning):
    """A frame is decoded in another numerics environment than the one that made it.

    Decoding is attempted; the per-block checksum turns any divergence into
    :class:`~llm_codecs.CorruptDataError`, never into wrong bytes.
    """


class FingerprintPolicy:
    """The fingerprint methods of :class:`~llm_codecs.codecs.llm.LanguageModelCodec`.

    Reads the codec's ``loaded``, ``model``, ``numerics``, ``step``, ``threads``,
    ``_frame_numerics`` and ``_frame_engine`` attributes.
    """

    def fingerprint(self) -> dict[str, Any]:
        """Model identity and what the coded bits depend on besides it.

        A portable frame names the engine and its version (the arithmetic is specified, so no
        machine facts matter); a native frame records the machine's numerics and the forward.
        """
        from ..models.loading import numerics

        loaded = self.loaded
        if self.resolved_numerics() == "portable":
            return {"model": loaded.identity, "engine": self.portable_engine(),
                    "coder": PAYLOAD_LAYOUT}
        return {"model": loaded.identity, "numerics": numerics(loaded, self.threads),
                "step": self.resolved_step(), "coder": PAYLOAD_LAYOUT}

    def portable_engine(self) -> str:
        """The portable engine version this codec computes: the frame's when bound to one
        (:meth:`bind`), else the latest (:data:`llm_codecs.portable.ENGINE`)."""
        from ..portable import ENGINE

        return self._frame_engine or ENGINE

    def resolved_numerics(self) -> str:
        """``"portable"`` or ``"native"``: the engine this codec runs with its model.

        Raises
        ------
        CodecError
            ``numerics="portable"`` with a model the portable engine does not support.
        """
        if self.numerics == "native":
            return "native"
        from ..portable import portable_support

        reason = portable_support(self.loaded.model)
        if self.numerics == "portable":
            if reason:
                raise CodecError(f"numerics='portable' is not available for {self.model!r}: "
                                 f"{reason}; use numerics='native'")
            return "portable"
        return "native" if reason or self.step != "auto" else "portable"

    def bind(self, fingerprint: dict[str, Any] | None,
             models: Sequence[str | os.PathLike] | None = None) -> FingerprintPolicy:
        """The codec that decodes a frame with ``fingerprint`` (checked, see the base class).

        A frame whose fingerprint names no engine was made by the float forward (every frame
        from before the portable engine): with ``numerics="auto"`` it is decoded natively.

        With ``models`` (a codec built from the frame's own header), the model is found by the
        hash the fingerprint records, the given models tried first, and the frame's model name
        is only a hint (:mod:`llm_codecs.models.finding`). Without, this codec's own model must
        have that hash.
        """
        codec = self
        if (models is not None and isinstance(fingerprint, dict)
                and isinstance(fingerprint.get("model"), dict)):
            from ..models.finding import check_identity

            codec = copy.copy(self)
            codec._wanted = dict(check_identity(fingerprint["model"]))
            try:
                codec._offered = tuple(os.fspath(m) for m in models)
            except TypeError:
                raise CodecError(f"model must be a path or a model name, got {models!r}") from None
            codec._loaded = None
            codec._load_lock = threading.Lock()
        if (self.numerics == "auto" and isinstance(fingerprint, dict)
                and "engine" not in fingerprint):
            if codec is self:
                codec = copy.copy(self)
            codec.numerics = "native"
        if isinstance(fingerprint, dict) and isinstance(fingerprint.get("engine"), str):
            if codec is self:
                codec = copy.copy(self)
            codec._frame_engine = fingerprint["engine"]
        if isinstance(fingerprint, dict) and isinstance(fingerprint.get("numerics"), dict):
            if codec is self:
                codec = copy.copy(self)
            codec._frame_numerics = fingerprint["numerics"]
        codec.check_fingerprint(fingerprint)
        return codec

    def decode_failure_hint(self) -> str | None:
        """Why a native frame may fail here although it is intact, and how to read it."""
        from ..models.loading import numerics

        if self._frame_numerics is None or self.resolved_numerics() != "native":
            return None
        mine = numerics(self.loaded, self.threads)
        theirs = self._frame_numerics
        differs = sorted(k for k in theirs if theirs[k] != mine.get(k))
        unknown = sorted(k for k in mine if k not in theirs)
        if not differs and not unknown:
            return None
        text = "this frame was made by the float ('native') engine, whose results depend on the "
        text += "machine's float kernels"
        if differs:
            text += ("; the encoder had " + ", ".join(f"{k}={theirs[k]!r}" for k in differs)
                     + ", this machine has " + ", ".join(f"{k}={mine.get(k)!r}" for k in differs))
        if unknown:
            text += (f"; the encoder's {', '.join(unknown)} were not recorded (this machine: "
                     + ", ".join(f"{k}={mine[k]!r}" for k in unknown) + ")")
        return text + (
            ". The data is most likely intact: decode it on a machine like the encoder's (same "
            "CPU capability, math library and device), then re-encode it with "
            "numerics='portable' to read it anywhere"
        )

    def resolved_step(self) -> str:
        """``"lean"`` or ``"transformers"``: the forward this codec runs with its model.

        Raises
        ------
        CodecError
            ``step="lean"`` with a model the lean forward does not support.
        """
        from ..models.llama_step import supports

        if self.step == "transformers":
            return "transformers"
        if supports(self.loaded.model):
            return "lean"
        if self.step == "lean":
            raise CodecError(
                f"step='lean' needs a Llama-family model; {self.model!r} is "
                f"{type(self.loaded.model).__name__}: use step='transformers' or 'auto'"
            )
        return "transformers"

    def check_fingerprint(self, fingerprint: dict[str, Any] | None) -> None:
        """Refuse a frame made with another model; warn about other numerics.

        Raises
        ------
        ModelMismatchError
            The frame's model hash differs from the loaded model's (or the model is missing).
        CorruptDataError
            The frame carries no usable fingerprint.
        """
        if not isinstance(fingerprint, dict) or not isinstance(fingerprint.get("model"), dict):
            raise CorruptDataError("LLM frame without a model fingerprint")
        theirs = fingerprint["model"]
        ours = self.loaded.identity
        if theirs.get("sha256") != ours["sha256"]:
            raise ModelMismatchError(
                f"frame was made with model {theirs.get('name')!r} (revision "
                f"{theirs.get('revision')}, sha256 {theirs.get('sha256')}), but "
                f"{self.model!r} loads as sha256 {ours['sha256']}: decode it without a codec "
                "(llm_codecs.decompress finds the model by its hash) or with that model"
            )
        if "engine" in fingerprint:
            self._check_portable(fingerprint)
            return
        if self.resolved_numerics() != "native":
            raise ModelMismatchError(
                "frame was made by the float ('native') engine, this codec runs the portable "
                "one: decode with numerics='native' (or 'auto')"
            )
        # Frames from before the lean forward, the in-block cache and the compact rANS state
        # carry no "step", those from before the shared rANS state no "coder"; this version
        # cannot replay them.
        if "step" not in fingerprint or fingerprint.get("coder") != PAYLOAD_LAYOUT:
            raise CorruptDataError(
                f"LLM frame made by an earlier, incompatible llm_codecs (its fingerprint has "
                f"coder {fingerprint.get('coder')!r}, this version writes {PAYLOAD_LAYOUT!r}): "
                "decode it with the version that wrote it"
            )
        theirs_step = fingerprint["step"]
        if theirs_step != self.resolved_step():
            raise ModelMismatchError(
                f"frame was coded with the {theirs_step!r} forward, this codec runs "
                f"{self.resolved_step()!r} (its step={self.step!r}): decode with "
                f"step={theirs_step!r}"
            )
        mine = self.fingerprint()["numerics"]
        recorded = fingerprint.get("numerics") or {}
        # Only what the frame recorded: earlier versions recorded fewer facts.
        differs = sorted(k for k in mine if k in recorded and recorded[k] != mine[k])
        if differs:
            detail = ", ".join(f"{k}: {recorded.get(k)!r} -> {mine[k]!r}" for k in differs)
            warnings.warn(
                f"decoding in another numerics environment ({detail}); any divergence is "
                "reported as CorruptDataError",
                NumericsWarning, stacklevel=2,
            )

    def _check_portable(self, fingerprint: dict[str, Any]) -> None:
        from ..portable import ENGINES

        engine = fingerprint.get("engine")
        if engine not in ENGINES:
            raise CorruptDataError(
                f"frame was made by portable engine {engine!r}, which this llm_codecs does not "
                f"know (it runs {', '.join(ENGINES)}): upgrade llm_codecs to decode it"
            )
        if fingerprint.get("coder") != PAYLOAD_LAYOUT:
            raise CorruptDataError(f"LLM frame with an unknown payload layout "
                                   f"{fingerprint.get('coder')!r}")
        if self.resolved_numerics() != "portable":
            raise ModelMismatchError(
                f"frame was made by the portable engine {engine!r}, this codec runs the float "
                "('native') one: decode with numerics='portable' (or 'auto')"
            )
