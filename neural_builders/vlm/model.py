"""The report generator: Swin encoder -> projection -> T5 decoder fed through ``encoder_outputs``.

* ``swin``: ``transformers.SwinModel`` (no pooling). Its last stage gives one feature vector per
  ``stride x stride`` working pixels; these are the *patch features* stored in collections.
* ``projection``: LayerNorm + Linear from the Swin width to T5's ``d_model``, plus a learned
  linear map of a fixed 2-D sine/cosine code of each token's centre, normalised to the real
  (non-padding) image extent. Swin's last stage carries little absolute position and T5's
  cross-attention none, so without it the decoder could not say *where* a finding is.
* ``t5``: ``transformers.T5ForConditionalGeneration``; its own encoder is bypassed by passing
  ``encoder_outputs`` (and the real-token mask as ``attention_mask``). T5 runs with
  ``attn_implementation="eager"`` because the SDPA path returns empty cross-attentions.

Swin's window attention runs in slices of at most 65,535 windows x heads per call (CUDA's launch-grid
cap; :mod:`neural_builders.vlm.window_batches`), so any batch, image size and window works.

Swin rewrites each block's ``window_size``/``shift_size`` for good when it sees a stage smaller
than its window; :meth:`ReportGenerator.encode` restores the configured values before every call,
so a model's output never depends on the sizes it saw before (tested).

Directory format (``save_pretrained``/``from_pretrained``): ``config.json`` (Swin config, T5
config, projection and resolution settings), ``encoder.safetensors`` (``swin.*`` and
``projection.*``), ``decoder.safetensors`` (``t5.*``), ``tokenizer/`` (JSON). No pickles.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .generator_config import GeneratorConfig, ProjectionConfig, ResolutionConfig  # noqa: F401 (re-exported)
from .patch_grid import PatchPlan, plan_patches
from . import weight_digests
from .window_batches import limit_window_batches
from .. import optional_deps
from ..errors import NoGeneratorError

optional_deps.require("torch", needed_by="the report generator")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)
from torch import nn  # noqa: E402 (after the NF-E-EXTRA check above)

FORMAT = "neural-builders-report-generator"
FORMAT_VERSION = 1
ENCODER_FILE, DECODER_FILE, CONFIG_FILE, TOKENIZER_DIR = (
    "encoder.safetensors", "decoder.safetensors", "config.json", "tokenizer")


def tiny_config(vocab_size: int = 256) -> dict:
    """A few-hundred-thousand-parameter Swin + T5 for tests and the CPU demo."""
    return {
        "swin": dict(image_size=128, patch_size=4, num_channels=1, embed_dim=24, depths=[1, 1, 2, 1],
                     num_heads=[1, 2, 2, 4], window_size=4, mlp_ratio=2.0, drop_path_rate=0.0,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        "t5": dict(vocab_size=vocab_size, d_model=64, d_kv=16, d_ff=128, num_layers=1, num_decoder_layers=2,
                   num_heads=4, dropout_rate=0.0, relative_attention_num_buckets=16,
                   relative_attention_max_distance=32, feed_forward_proj="relu",
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=True),
        "projection": asdict(ProjectionConfig()),
        "resolution": asdict(ResolutionConfig()),
    }


def position_code(plan_grid: tuple[int, int], working_grid: tuple[int, int], frequencies: int) -> torch.Tensor:
    """(rows*cols, 4F) sine/cosine code of token centres, normalised by the real grid extent."""
    rows = (torch.arange(working_grid[0], dtype=torch.float32) + 0.5) / plan_grid[0]
    cols = (torch.arange(working_grid[1], dtype=torch.float32) + 0.5) / plan_grid[1]
    y, x = torch.meshgrid(rows, cols, indexing="ij")
    f = torch.arange(1, frequencies + 1, dtype=torch.float32) * math.pi
    parts = [torch.sin(y[..., None] * f), torch.cos(y[..., None] * f),
             torch.sin(x[..., None] * f), torch.cos(x[..., None] * f)]
    return torch.cat(parts, dim=-1).reshape(-1, 4 * frequencies)


class Projection(nn.Module):
    """Swin features -> decoder memory, plus optional learned *registers*.

    Registers are ``registers`` learned vectors the decoder may attend to besides the patches.
    A softmax row must put its unit mass somewhere; report words that carry no image information
    otherwise park it on some patch (an "attention sink", typically a background corner), and
    the sum over report tokens then ranks that patch first. Registers give that mass a place
    that is not a patch. They are not patches: they are never scored, and
    :meth:`ReportGenerator.decode` returns cross-attention over the patch tokens only.
    """

    def __init__(self, swin_dim: int, d_model: int, frequencies: int, registers: int = 0):
        super().__init__()
        self.frequencies = frequencies
        self.norm = nn.LayerNorm(swin_dim)
        self.linear = nn.Linear(swin_dim, d_model)
        self.position = nn.Linear(4 * frequencies, d_model)
        self.registers = nn.Parameter(torch.randn(registers, d_model) * 0.02) if registers else None

    def with_registers(self, projected: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the registers (attended, mask 1) after the patch tokens."""
        if self.registers is None:
            return projected, mask
        B = projected.shape[0]
        regs = self.registers.to(projected.dtype)[None].expand(B, -1, -1)
        return (torch.cat([projected, regs], dim=1),
                torch.cat([mask, mask.new_ones(B, regs.shape[1])], dim=1))

    def forward(self, features: torch.Tensor, plans: list[PatchPlan]) -> torch.Tensor:
        codes = torch.stack([position_code(p.grid_shape, p.working_grid, self.frequencies) for p in plans])
        return self.linear(self.norm(features)) + self.position(codes.to(features.device, features.dtype))


@dataclass
class Encoded:
    """Swin features, the decoder's view of them, and which tokens are real."""
    features: torch.Tensor        # (B, S, C) last-stage Swin features
    projected: torch.Tensor       # (B, S, d_model)
    token_mask: torch.Tensor      # (B, S) 1 = real token, 0 = padding
    plans: list[PatchPlan] = field(default_factory=list)


class ReportGenerator(nn.Module):
    def __init__(self, config, *, swin=None, t5=None) -> None:
        """``config``: a :class:`GeneratorConfig` or its nested dict form (missing settings take its defaults)."""
        super().__init__()
        transformers = optional_deps.load("transformers", needed_by="the report generator")
        SwinConfig, SwinModel = transformers.SwinConfig, transformers.SwinModel
        T5Config, T5ForConditionalGeneration = transformers.T5Config, transformers.T5ForConditionalGeneration
        settings = GeneratorConfig.coerce(config)
        if swin is None:
            swin = SwinModel(SwinConfig(**settings.swin), add_pooling_layer=False)
        if t5 is None:
            # eager attention is chosen in the config the layers are built from: switching a built
            # model afterwards (set_attn_implementation) does not reach the layers on some
            # transformers releases (5.17), and SDPA returns no cross-attention weights to score.
            t5 = T5ForConditionalGeneration(T5Config(**{**settings.t5, "attn_implementation": "eager"}))
        elif _attn_implementation(t5) not in (None, "eager"):
            raise ValueError(f"the T5 decoder uses {_attn_implementation(t5)!r} attention; load it with "
                             "attn_implementation='eager' (scores need its cross-attention weights)")
        self.swin, self.t5 = swin, t5
        limit_window_batches(self.swin)  # CUDA's 65,535 launch-grid cap on windows per attention call
        settings.swin = _plain(self.swin.config.to_dict())
        settings.t5 = _plain(self.t5.config.to_dict())
        self.settings = settings
        sc = self.swin.config
        self.stride = int(sc.patch_size) * 2 ** (len(sc.depths) - 1)
        self.swin_dim = int(sc.embed_dim) * 2 ** (len(sc.depths) - 1)
        self.projection = Projection(self.swin_dim, self.t5.config.d_model,
                                     int(settings.projection.position_frequencies), int(settings.projection.registers))
        self._windows = [(layer, layer.window_size, layer.shift_size) for layer in _swin_layers(self.swin)]
        self.tokenizer = None      # the report tokenizer, when known (set by from_pretrained / the trainer)
        self.source_dir: Optional[Path] = None
        self.weights_dir: Optional[Path] = None   # where the weight files were last read or written

    @property
    def config(self) -> dict:
        """The nested dict form of :attr:`settings` (a fresh copy; ``config.json`` holds it)."""
        return self.settings.to_dict()

    # -- geometry -------------------------------------------------------------------------
    @property
    def window_size(self) -> int:
        return int(self.swin.config.window_size)

    def plan(self, image_size) -> PatchPlan:
        r = self.settings.resolution
        return plan_patches(image_size, stride=self.stride, mode=r.mode, max_side=r.max_side,
                            fixed_size=tuple(r.fixed_size), min_grid=self.window_size)

    def reset_windows(self) -> None:
        """Undo Swin's in-place window/shift clamping so each call starts from the configuration."""
        for layer, window, shift in self._windows:
            layer.window_size, layer.shift_size = window, shift

    # -- forward --------------------------------------------------------------------------
    def encode(self, pixels: torch.Tensor, plans: list[PatchPlan]) -> Encoded:
        """``pixels`` (B, 1, h, w) working images in [0, 1], all of one working size."""
        self.reset_windows()
        x = (pixels - 0.5) / 0.5
        if self.swin.config.num_channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        features = self.swin(pixel_values=x).last_hidden_state
        rows, cols = plans[0].working_grid
        if features.shape[1] != rows * cols:
            raise RuntimeError(f"Swin returned {features.shape[1]} tokens; the plan expects {rows}x{cols}")
        mask = torch.as_tensor(np.stack([p.real_token_mask() for p in plans]), device=features.device)
        return Encoded(features, self.projection(features, plans), mask.long(), list(plans))

    def decode(self, encoded: Encoded, labels: torch.Tensor, *, output_attentions: bool = False):
        """Teacher-forced T5 pass; ``labels`` padded with -100. ``cross_attentions`` (when asked
        for) cover the patch tokens only: the registers' share of each row is left out."""
        BaseModelOutput = optional_deps.load("transformers.modeling_outputs", needed_by="the report generator").BaseModelOutput
        decoder_mask = (labels != -100).long()
        memory, mask = self.projection.with_registers(encoded.projected, encoded.token_mask)
        out = self.t5(encoder_outputs=BaseModelOutput(last_hidden_state=memory),
                      attention_mask=mask, labels=labels,
                      decoder_attention_mask=_shift_mask(decoder_mask),
                      output_attentions=output_attentions, return_dict=True)
        if output_attentions and out.cross_attentions and memory.shape[1] != encoded.projected.shape[1]:
            S = encoded.projected.shape[1]
            out.cross_attentions = tuple(a[..., :S] for a in out.cross_attentions)
        return out

    def decode_tapped(self, encoded: Encoded, labels: torch.Tensor, layers: Sequence[int], *,
                      fused: bool = True, reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                      logits: bool = True):
        """Teacher-forced T5 pass that returns the cross-attention of the chosen decoder ``layers`` only.

        Returns ``(output, [reduce(weights) per layer in layers])`` where ``weights`` is ``(B, H, T, S)``
        over the patch tokens, as :meth:`decode` with ``output_attentions=True`` would give it.
        With ``fused`` the decoder runs on PyTorch's fused attention (SDPA; flash/memory-efficient
        kernels on a GPU) where the installed transformers supports it for T5; the weights of a
        tapped layer are recomputed from that layer's own queries and keys (a forward hook on its
        ``EncDecAttention``: same Linear maps, ``q k^T`` with T5's unit scale, padding masked,
        softmax), so nothing else materialises attention weights. ``reduce`` (e.g. a mean over
        heads) is applied inside the hook, so at most one layer's full weights exist at a time.
        Without ``fused`` the kernel is left as built (eager) and the same hooks run: the reference.
        With ``logits=False`` only T5's decoder stack runs (same inputs as the full model gives it:
        the labels shifted right, the shifted mask, the memory), not the vocabulary projection:
        the output is the stack's (no ``logits``), and a T5-base-sized ``(B, T, 32128)`` logits
        tensor is never made.
        """
        BaseModelOutput = optional_deps.load("transformers.modeling_outputs", needed_by="the report generator").BaseModelOutput
        decoder_mask = (labels != -100).long()
        memory, mask = self.projection.with_registers(encoded.projected, encoded.token_mask)
        S = encoded.projected.shape[1]
        blocks = self.t5.decoder.block
        taps: dict[int, torch.Tensor] = {}
        handles = []
        for index in layers:
            if not 0 <= index < len(blocks):
                raise ValueError(f"decoder layer {index} is outside 0..{len(blocks) - 1}")
            attention = blocks[index].layer[1].EncDecAttention
            handles.append(attention.register_forward_hook(
                _cross_attention_tap(index, taps, mask, S, reduce), with_kwargs=True))
        try:
            with fused_attention(self.t5, enabled=fused):
                if logits:
                    out = self.t5(encoder_outputs=BaseModelOutput(last_hidden_state=memory),
                                  attention_mask=mask, labels=labels, decoder_attention_mask=_shift_mask(decoder_mask),
                                  output_attentions=False, return_dict=True)
                else:
                    out = self.t5.decoder(input_ids=self.t5._shift_right(labels),
                                          attention_mask=_shift_mask(decoder_mask), encoder_hidden_states=memory,
                                          encoder_attention_mask=mask, use_cache=False, return_dict=True)
        finally:
            for handle in handles:
                handle.remove()
        missing = [i for i in layers if i not in taps]
        if missing:
            raise RuntimeError(f"decoder layers {missing} ran no cross-attention")
        return out, [taps[i] for i in layers]

    def forward(self, pixels, plans, labels):
        return self.decode(self.encode(pixels, plans), labels)

    @torch.no_grad()
    def generate_reports(self, encoded: Encoded, tokenizer, max_new_tokens: int = 48) -> list[str]:
        BaseModelOutput = optional_deps.load("transformers.modeling_outputs", needed_by="the report generator").BaseModelOutput
        memory, mask = self.projection.with_registers(encoded.projected, encoded.token_mask)
        ids = self.t5.generate(encoder_outputs=BaseModelOutput(last_hidden_state=memory),
                               attention_mask=mask, max_new_tokens=max_new_tokens,
                               do_sample=False, num_beams=1, no_repeat_ngram_size=3,
                               # transformers sizes the cache by num_layers (the bypassed encoder's depth)
                               use_cache=self.t5.config.num_layers == self.t5.config.num_decoder_layers)
        return tokenizer.batch_decode(ids, skip_special_tokens=True)

    # -- persistence ----------------------------------------------------------------------
    def weight_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """``{file name: {tensor name: tensor}}`` on the model's device, tied tensors once."""
        state = {k: v.detach() for k, v in self.state_dict().items()}
        # tied embeddings are found by shared storage, so this runs before any copy to the CPU
        # (after ``.cpu()`` a CUDA model's tied tensors are separate copies)
        return {ENCODER_FILE: {k: v for k, v in state.items() if not k.startswith("t5.")},
                DECODER_FILE: _drop_shared({k: v for k, v in state.items() if k.startswith("t5.")})}

    def weight_blobs(self) -> dict[str, bytes]:
        """The serialized weight files, ``{file name: safetensors bytes}``, in the model's dtype."""
        save = optional_deps.load("safetensors.torch", needed_by="saving the report generator").save
        return {name: save({k: v.contiguous().cpu() for k, v in tensors.items()}, metadata={"format": FORMAT})
                for name, tensors in self.weight_tensors().items()}

    def weights_sha256(self) -> dict[str, str]:
        """SHA-256 of each weight file (``sha256sum`` agrees), on any device and in any dtype.

        When the model was loaded from (or last saved to) a directory whose file still holds
        exactly these weights (compared tensor by tensor in the file's dtype: a float32 model
        loaded from a bfloat16 file matches it), the digest is that of the file's bytes, hashed
        once per version of the file (:mod:`.weight_digests`). Otherwise (weights changed since,
        or never written) it is the digest of the file that :meth:`save_pretrained` would write now.
        """
        save = optional_deps.load("safetensors.torch", needed_by="saving the report generator").save
        digests = {}
        for name, tensors in self.weight_tensors().items():
            path = None if self.weights_dir is None else Path(self.weights_dir) / name
            if path is not None and path.is_file():
                digest = weight_digests.file_digest(path, tensors)
                if digest is not None:
                    digests[name] = digest
                    continue
            blob = save({k: v.contiguous().cpu() for k, v in tensors.items()}, metadata={"format": FORMAT})
            digests[name] = hashlib.sha256(blob).hexdigest()
        return digests

    def save_pretrained(self, directory, tokenizer=None) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, blob in self.weight_blobs().items():
            (directory / name).write_bytes(blob)
        self.weights_dir = directory
        (directory / CONFIG_FILE).write_text(json.dumps(hf_config(self.config), indent=1, sort_keys=True))
        tokenizer = tokenizer if tokenizer is not None else self.tokenizer
        if tokenizer is not None:
            tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        return directory

    @classmethod
    def from_pretrained(cls, directory, *, device="cpu") -> "ReportGenerator":
        load_file = optional_deps.load("safetensors.torch", needed_by="loading the report generator").load_file
        directory = Path(directory)
        path = directory / CONFIG_FILE
        expected = f"a report-generator directory ({CONFIG_FILE} of format {FORMAT!r})"
        if not path.is_file():
            found = f"no {CONFIG_FILE}" if directory.is_dir() else "no such directory"
            raise NoGeneratorError("not a report-generator directory", location=str(directory),
                                   expected=expected, found=found)
        try:
            config = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise NoGeneratorError("not a report-generator directory", location=str(path),
                                   expected=expected, found=f"{CONFIG_FILE} that is not JSON ({exc})") from None
        kind = config.get("format") if isinstance(config, dict) else None
        if kind != FORMAT:
            raise NoGeneratorError("not a report-generator directory", location=str(path),
                                   expected=expected, found=f"format {kind!r}")
        config = {"swin": config.get("encoder", config.get("swin")), "t5": config.get("decoder", config.get("t5")),
                  **{k: v for k, v in config.items() if k in ("projection", "resolution")}}
        model = cls(_constructor_config(config))
        state = {**load_file(str(directory / ENCODER_FILE)), **load_file(str(directory / DECODER_FILE))}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not _is_tied(model, k)]
        if missing or unexpected:
            raise NoGeneratorError("the weights do not match the config", location=str(directory),
                                   expected="the tensors its config names",
                                   found=f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        model.t5.tie_weights()
        if (directory / TOKENIZER_DIR / "tokenizer.json").is_file():
            from .tokenizer import load_report_tokenizer
            model.tokenizer = load_report_tokenizer(directory / TOKENIZER_DIR)
        model.source_dir = model.weights_dir = directory
        return model.to(device)

    @classmethod
    def from_components(cls, swin_dir, t5_dir, *, projection=None, resolution=None) -> "ReportGenerator":
        """A new generator from a Hugging Face Swin directory and a T5 directory (local, offline).

        The projection is freshly initialised; fine-tune before use.
        """
        transformers = optional_deps.load("transformers", needed_by="the report generator")
        SwinModel, T5ForConditionalGeneration = transformers.SwinModel, transformers.T5ForConditionalGeneration
        swin = SwinModel.from_pretrained(str(swin_dir), add_pooling_layer=False, local_files_only=True)
        t5 = T5ForConditionalGeneration.from_pretrained(str(t5_dir), local_files_only=True,
                                                        attn_implementation="eager")
        config = {"projection": projection, "resolution": resolution}  # None: the defaults
        return cls(config, swin=swin, t5=t5)


@contextlib.contextmanager
def fused_attention(t5, *, enabled: bool = True):
    """Inside the block, ``t5``'s attention runs on ``torch.nn.functional.scaled_dot_product_attention``.

    The model is built eager (its cross-attention weights are the reference scores); this switches
    the setting every attention layer and mask builder reads at call time (each stack keeps its own
    config copy, so all of them are set), and restores it afterwards, also on an error. On a
    transformers release whose T5 has no SDPA path (``_supports_sdpa`` false) nothing changes and
    the pass stays eager: same results, no speed-up.
    """
    if not enabled or not getattr(type(t5), "_supports_sdpa", False):
        yield False
        return
    configs = {id(t5.config): t5.config}
    for module in t5.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            configs[id(config)] = config
    before = {key: config._attn_implementation for key, config in configs.items()}
    try:
        for config in configs.values():
            config._attn_implementation = "sdpa"
        yield True
    finally:
        for key, config in configs.items():
            config._attn_implementation = before[key]


def _cross_attention_tap(index: int, taps: dict, memory_mask: torch.Tensor, patches: int, reduce):
    """A forward hook on a T5 ``EncDecAttention`` that recomputes its weights from its queries and keys.

    T5's eager attention is ``softmax(q k^T + bias + mask)`` with no ``1/sqrt(d)`` scale and, for
    cross-attention, a zero position bias; masked (padding) memory slots get the dtype's minimum
    as in the eager mask, so they come out exactly 0. Run inside the caller's autocast, the matmul
    and softmax take the same dtypes as the eager kernel's.
    """
    def hook(module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        memory = kwargs.get("key_value_states", args[1] if len(args) > 1 else None)
        B, T = hidden.shape[:2]
        heads, width = module.n_heads, module.key_value_proj_dim
        query = module.q(hidden).view(B, T, heads, width).transpose(1, 2)
        key = module.k(memory).view(B, memory.shape[1], heads, width).transpose(1, 2)
        logits = torch.matmul(query, key.transpose(2, 3))
        logits = logits.masked_fill(~memory_mask.bool()[:, None, None, :], torch.finfo(logits.dtype).min)
        weights = nn.functional.softmax(logits, dim=-1)[..., :patches]
        taps[index] = reduce(weights) if reduce is not None else weights
    return hook


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- helpers ---------------------------------------------------------------------------------
def _swin_layers(swin):
    SwinLayer = optional_deps.load("transformers.models.swin.modeling_swin", needed_by="the report generator").SwinLayer
    return [m for m in swin.modules() if isinstance(m, SwinLayer)]


def _attn_implementation(t5):
    """The attention kernel a built T5 runs (None on releases that predate the setting)."""
    return getattr(t5.config, "_attn_implementation", None)


def _shift_mask(mask: torch.Tensor) -> torch.Tensor:
    """Decoder position j reads label j-1 (position 0 reads the start token): shift the mask."""
    shifted = torch.ones_like(mask)
    shifted[:, 1:] = mask[:, :-1]
    return shifted


def _plain(config: dict) -> dict:
    keep = {}
    for key, value in config.items():
        if key.startswith("_") or key in ("transformers_version", "architectures", "id2label", "label2id",
                                          "torch_dtype", "dtype"):
            continue
        try:
            json.dumps(value)
        except TypeError:
            continue
        keep[key] = value
    return keep


def hf_config(config: dict) -> dict:
    """``config.json`` as Hugging Face tooling reads it: a ``vision-encoder-decoder`` config
    (``transformers.AutoConfig.from_pretrained(dir)`` gives a ``VisionEncoderDecoderConfig`` whose
    ``encoder`` is the ``SwinConfig`` and ``decoder`` the ``T5Config``), plus this package's keys
    (``format``, ``format_version``, ``projection``, ``resolution``) as extra attributes. The
    weights are in this package's layout (``encoder.safetensors``/``decoder.safetensors`` and a
    projection that ``VisionEncoderDecoderModel`` does not have), so no ``architectures`` is
    claimed: load the model with :meth:`ReportGenerator.from_pretrained`."""
    rest = {k: v for k, v in config.items() if k not in ("swin", "t5")}
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model_type": "vision-encoder-decoder",
            "is_encoder_decoder": True, "encoder": config["swin"], "decoder": config["t5"], **rest}


def _constructor_config(config: dict) -> dict:
    config = dict(config)
    for part in ("swin", "t5"):
        config[part] = {k: v for k, v in config[part].items()
                        if k not in ("model_type", "output_attentions", "output_hidden_states", "return_dict")}
    return config


def _drop_shared(state: dict) -> dict:
    seen, out = {}, {}
    for key in sorted(state, key=lambda k: (k != "t5.shared.weight", k)):  # keep the canonical name
        tensor = state[key]
        ptr = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if ptr in seen:
            continue
        seen[ptr] = key
        out[key] = tensor
    return out


def _is_tied(model: "ReportGenerator", key: str) -> bool:
    return key in ("t5.lm_head.weight", "t5.encoder.embed_tokens.weight", "t5.decoder.embed_tokens.weight",
                   "t5.shared.weight") \
        and bool(model.t5.config.tie_word_embeddings)
