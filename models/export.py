"""Builds the encoder's ONNX variants in the user cache (needs torch; the runtime does not).

`fp32`: `torch.onnx.export` (TorchScript exporter, opset 17) of MiniLM + masked mean pooling +
L2 normalization in one self-contained file, batch and sequence axes dynamic. A second output,
`middle_embedding`, is the masked mean of layer 4's output (of 6), which the head reads too.
The dummy batch has a padded row, so the attention-mask path is traced (transformers 5 warns
that its padding branch is traced as a constant; tests/test_classifier.py checks padded
mixed-length batches against sentence-transformers and PyTorch). `int8`:
`quantize_dynamic(per_channel=True)` of the fp32 file. `fp16`: onnxruntime's transformer
optimizer (BERT attention fusion) + float16 conversion with fp32 inputs and outputs, for the
CUDA provider.

Every file is written under a temporary name and renamed into place, so an interrupted build is
redone next time instead of leaving half a model behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from bondscope.models.weights import (
    EXPORT_VERSION,
    MAX_SEQ_LENGTH,
    MIDDLE_LAYER,
    OUTPUTS,
    VARIANT_FILES,
    record_hash,
    weights_sha256,
)

OPSET = 17
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def build_variant(weights_dir: Path, folder: Path, variant: str) -> None:
    """Make `folder / VARIANT_FILES[variant]` (and the fp32 file it starts from)."""
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / VARIANT_FILES["fp32"]
    if not fp32.is_file():
        export_fp32(weights_dir, folder)
        record_hash(folder, "tokenizer.json")
        record_hash(folder, VARIANT_FILES["fp32"])
    if variant == "int8":
        _atomic(folder / VARIANT_FILES["int8"], lambda tmp: quantize_int8(fp32, tmp))
    elif variant == "fp16":
        _atomic(folder / VARIANT_FILES["fp16"], lambda tmp: convert_fp16(fp32, tmp))
    if variant != "fp32":
        record_hash(folder, VARIANT_FILES[variant])


def _atomic(target: Path, write) -> None:  # noqa: ANN001 - a callable taking the temporary path
    """Run `write(tmp)` in the target's folder and rename the result into place."""
    fd, name = tempfile.mkstemp(dir=target.parent, suffix=".partial.onnx")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def export_fp32(weights_dir: Path, folder: Path) -> None:
    """Export the pooled, normalized encoder and write tokenizer.json and meta.json beside it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(weights_dir), local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        """MiniLM -> masked mean over real tokens -> unit length, as sentence-transformers does;
        plus the plain masked mean of layer `MIDDLE_LAYER`'s output, a feature for the head."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
            ).hidden_states  # the embedding layer's output, then one per transformer layer
            mask = attention_mask.unsqueeze(-1).to(hidden[-1].dtype)
            count = mask.sum(1).clamp(min=1e-9)
            pooled = (hidden[-1] * mask).sum(1) / count
            middle = (hidden[MIDDLE_LAYER] * mask).sum(1) / count
            return torch.nn.functional.normalize(pooled, p=2, dim=1), middle

    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row, so the masking path is what gets traced
    axes = {name: {0: "batch", 1: "seq"} for name in INPUTS}
    axes.update({name: {0: "batch"} for name in OUTPUTS})

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings: checked by the agreement test
            torch.onnx.export(
                Pooled(encoder),
                (ids, mask, torch.zeros_like(ids)),
                str(tmp),
                dynamo=False,
                opset_version=OPSET,
                input_names=INPUTS,
                output_names=list(OUTPUTS),
                dynamic_axes=axes,
            )

    # The model file comes last: its presence means the folder is complete.
    shutil.copyfile(weights_dir / "tokenizer.json", folder / "tokenizer.json")
    meta = {
        "export_version": EXPORT_VERSION,
        "weights": str(weights_dir),
        "weights_sha256": weights_sha256(weights_dir),
        "dimension": int(encoder.config.hidden_size),
        "middle_layer": MIDDLE_LAYER,
        "max_seq_length": MAX_SEQ_LENGTH,
        "opset": OPSET,
        "torch": torch.__version__,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2), "utf-8")
    _atomic(folder / VARIANT_FILES["fp32"], write)


def quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 weights, per channel (per-tensor loses up to 0.12 cosine on MiniLM)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" hint: per-channel suffices here
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


def convert_fp16(fp32: Path, out: Path) -> None:
    """BERT fusions + fp16 weights and math, keeping fp32 inputs/outputs (for the CUDA provider)."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(fp32), model_type="bert", opt_level=0)  # heads: detected
    optimized.convert_float_to_float16(keep_io_types=True)
    optimized.save_model_to_file(str(out))
