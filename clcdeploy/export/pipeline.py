"""`export_model`: build, rewrite, convert, validate, inspect and record one model's artifacts."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clcdeploy.analysis.input_size import check_input_size
from clcdeploy.errors import ClcDeployError, ConfigurationError, ExportError, first_line
from clcdeploy.export import delegation, validate
from clcdeploy.export.commit import (JOURNAL_NAME, check_targets, commit, export_lock, recover_interrupted_commit,
                                     remove_leftovers)
from clcdeploy.export.manifest import (
    MANIFEST_NAME,
    FormatEntry,
    Manifest,
    read_manifest,
    tool_versions,
)
from clcdeploy.export.passes import (
    DEFAULT_CHANNELWISE, DEFAULT_IGC_LOWERINGS, IGC_LOWERINGS, TOPOLOGICAL_LOWERINGS, deployment_passes,
    densify_topological, fused_igc_passes, mergeable_convs, recognise_igc,
)
from clcdeploy.export.passes.trace import UntraceableError
from clcdeploy.export.quiet import quiet_output
from clcdeploy.export.weights import load_weights, random_weights
from clcdeploy.files import output_folder, sha256_file, temp_path
from clcdeploy.zoo import create_model, model_spec
from clcdeploy.zoo.channelnet import ChannelWiseConv, ConvClassifier
from clcdeploy.zoo.layers import IGC
from clcdeploy.zoo.sic import TopologicalConv

# format name -> module defining NAME, SUFFIX, RUNTIME, export(model, example, path) -> dict, run(path, x)
FORMAT_MODULES = {
    "onnx": "clcdeploy.export.onnx_format",
    "pte": "clcdeploy.export.executorch_format",
    "tflite": "clcdeploy.export.tflite_format",
}
FORMATS = tuple(FORMAT_MODULES)
# Formats with a binding of clcdeploy's fused IGC kernel, and the activation layout that binding computes in.
FUSED_IGC_LAYOUTS = {"pte": "nhwc", "onnx": "nchw", "tflite": "nhwc"}
# The formats `--fused-igc` means without a list: where the fused kernel is measured faster than standard
# operators (BENCHMARKS.md, section 3; ONNX Runtime's NCHWc reorders around a custom op cost more than it saves).
FUSED_IGC_DEFAULT = ("pte", "tflite")
_REPORTS = {"onnx": delegation.onnx_report, "pte": delegation.executorch_report,
            "tflite": delegation.tflite_report}

Rewrite = Callable[[nn.Module, torch.Tensor], nn.Module]
Progress = Callable[[str, float], None]
Log = Callable[[str], None]
NO_IGC = "none (no IGC)"  # the igc_lowering recorded for models without IGCs


class UnknownFormatError(ExportError):
    """A format name that is not one of FORMATS."""


def parse_formats(text: str | Sequence[str]) -> list[str]:
    """Validate a comma-separated (or listed) format selection, keeping order, dropping repeats."""
    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    unknown = [n for n in names if n not in FORMAT_MODULES]
    if unknown or not names:
        raise UnknownFormatError(
            f"unknown format {', '.join(map(repr, unknown)) or '(none given)'}; choose from {', '.join(FORMATS)}"
        )
    return list(dict.fromkeys(names))


def export_model(
    name: str,
    formats: Sequence[str] = FORMATS,
    out_dir: str | Path = "models",
    *,
    weights: str | Path | None = None,
    input_size: int | None = None,
    validate_outputs: bool = True,
    igc_lowering: str | None = None,
    topological: str = "dense",
    fused_igc: bool | Sequence[str] = False,
    rewrite: Rewrite | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
    model_kwargs: dict | None = None,
) -> Manifest:
    """Export the zoo model `name` to `out_dir/name/name.<suffix>` for each format, plus `manifest.json`.

    `rewrite` replaces the deployment passes (tests use it to check that a wrong rewrite is caught);
    `igc_lowering` (one of IGC_LOWERINGS) applies to every format; None picks each format's measured fastest
    (`DEFAULT_IGC_LOWERINGS`), recorded per artifact in `extra["igc_lowering"]`.
    `topological` ("dense" or "gather", TOPOLOGICAL_LOWERINGS): how topologically subdivided convolutions (SIC
    models F, G, I) are written; "dense" computes each as one dense convolution, recorded per artifact in
    `extra["topological_layers"]` with the mult-adds the artifact computes. ChannelNets' channel-wise layers take
    each format's faster form (`DEFAULT_CHANNELWISE`), recorded in `extra["channelwise_layers"]`.
    Grouped convolutions with fewer than 8 outputs per group are written with merged groups in the formats whose
    export does so (`MERGES_GROUPS`: .pte and .tflite), counted in `extra["merged_group_convs"]`.
    `model_kwargs` are builder overrides for `create_model` (e.g. a clcNet configuration).
    `fused_igc` (opt-in; True means those of `FUSED_IGC_DEFAULT` being exported) names the formats in which
    each CRF-2 IGC is one call of clcdeploy's fused kernel (`FUSED_IGC_LAYOUTS`: the .pte's `clcdeploy::igc2`
    on NHWC activations, the ONNX model's custom node `clcdeploy.IGC2`, the .tflite's custom op
    `custom_call.CLCDEPLOY_IGC2`); such artifacts need clcdeploy's kernel library where they run, which each
    format entry records as `extra["needs_kernel_library"]`. Other formats keep the standard passes.
    All artifacts are written under temporary names and renamed only when every format succeeded; then the
    files of formats the new manifest no longer describes are removed (each one reported to `log`, which also
    hears when `fused_igc` falls back to the standard passes for a model without fusable IGCs).
    """
    formats = parse_formats(formats)
    if igc_lowering is not None and igc_lowering not in IGC_LOWERINGS:
        raise ConfigurationError(f"unknown IGC lowering {igc_lowering!r}; choose from {', '.join(IGC_LOWERINGS)}")
    if topological not in TOPOLOGICAL_LOWERINGS:
        raise ConfigurationError(f"unknown topological lowering {topological!r}; choose from "
                                 f"{', '.join(TOPOLOGICAL_LOWERINGS)}")
    fused = parse_fused_igc(fused_igc, formats)
    spec = model_spec(name)
    report = progress or (lambda stage, seconds: None)
    note = log or (lambda line: None)
    folder = Path(out_dir) / name
    size = spec.input_size if input_size is None else input_size
    finals = {f: folder / artifact_name(name, f) for f in formats}
    with export_lock(folder), output_folder(folder):
        if recover_interrupted_commit(folder):
            note(f"put back the previous export in {folder}: an export was killed while putting its files in place")
        ours = [artifact_name(name, f) for f in FORMATS] + [MANIFEST_NAME, JOURNAL_NAME, "probe"]
        for path in remove_leftovers(folder, ours):
            note(f"removed {path}, left staged by an interrupted export")
        check_targets([*finals.values(), folder / MANIFEST_NAME])  # before the slow work, not at the end
        start = time.perf_counter()
        model, source = _build(name, size, weights, model_kwargs)
        inputs = validate.validation_inputs((1, 3, size, size))
        with torch.no_grad():
            expected = [model(torch.from_numpy(x)).numpy() for x in inputs]
        if validate_outputs and not all(np.isfinite(e).all() for e in expected):
            raise ExportError(f"{name} with weights {source} gives non-finite outputs (NaN or inf) in PyTorch "
                              f"itself, so no artifact can be validated: check the weights (--no-validate exports "
                              f"anyway)")
        example = torch.from_numpy(inputs[0])
        report("build model", time.perf_counter() - start)

        start = time.perf_counter()
        deploys: dict[str, nn.Module] = {}
        for fmt in fused:
            # Only ExecuTorch needs the network itself in channels-last memory (litert-torch makes its own NHWC).
            deploys[fmt] = _rewrite(name, model, example,
                                    rewrite or partial(fused_igc_passes, channels_last=fmt == "pte",
                                                       topological=topological,
                                                       channelwise=DEFAULT_CHANNELWISE[fmt]))
        unfused = [f for f in fused if rewrite is None and not _calls_fused_igc(deploys[f])]
        if unfused:
            note(f"{name} has no IGC the fused kernel computes: {', '.join(unfused)} exported with the standard "
                 f"passes")
        lowerings = {f: igc_lowering or DEFAULT_IGC_LOWERINGS[f] for f in formats if f not in fused or f in unfused}
        # formats that share their IGC and channel-wise lowerings share one rewritten module
        passes = {f: (low, DEFAULT_CHANNELWISE[f]) for f, low in lowerings.items()}
        for lowering, channelwise in dict.fromkeys(passes.values()):
            deploy = _rewrite(name, model, example, rewrite or partial(
                deployment_passes, igc_lowering=lowering, topological=topological, channelwise=channelwise))
            deploys.update({f: deploy for f, key in passes.items() if key == (lowering, channelwise)})
        report("rewrite passes", time.perf_counter() - start)

        staged: dict[str, Path] = {}
        entries: dict[str, FormatEntry] = {}
        checks: list[validate.Check] = []
        igc_lowered = _lowers_to_depthwise(spec.family, model)
        has_igc = _has_igc(model)
        topological_layers = _topological_layers(model, size, topological)
        has_channelwise = any(isinstance(m, (ChannelWiseConv, ConvClassifier)) for m in model.modules())
        try:
            for fmt in formats:
                module = _format_module(fmt)
                staged[fmt] = temp_path(finals[fmt])
                entry, check = _export_format(fmt, module, deploys[fmt], example, staged[fmt], inputs, expected,
                                              report)
                entry.file, entry.validated = finals[fmt].name, validate_outputs and check.ok
                entry.extra["needs_kernel_library"] = _needs_kernel_library(fmt, staged[fmt])
                entry.extra["igc_lowering"] = (
                    (lowerings[fmt] if has_igc else NO_IGC) if fmt in lowerings
                    else f"fused-igc2-{FUSED_IGC_LAYOUTS[fmt]}" if entry.extra["needs_kernel_library"]
                    else "none (no fusable IGC)")
                if topological_layers:
                    entry.extra["topological_layers"] = topological_layers
                if has_channelwise:
                    entry.extra["channelwise_layers"] = DEFAULT_CHANNELWISE[fmt]
                if module.MERGES_GROUPS and (merged := mergeable_convs(deploys[fmt])):
                    entry.extra["merged_group_convs"] = merged
                entry.delegation_failures = delegation.delegation_failures(fmt, entry.op_histogram, entry.delegation,
                                                                           igc_lowered=igc_lowered)
                entries[fmt] = entry
                checks.append(check)
            if validate_outputs:
                validate.raise_on_failures(checks)
            config = dict(getattr(model, "config", {}) or {})
            kept, stale = _previous_entries(folder, name, config, source, [1, 3, size, size], entries)
            manifest = _manifest(name, spec, model, config, size, source, {**entries, **kept})
            commit(folder, {staged[f]: finals[f] for f in formats}, manifest, list(stale))
            for path, why in stale.items():
                note(f"removed stale {path} ({why})")
            return manifest
        finally:
            for tmp in staged.values():
                tmp.unlink(missing_ok=True)


def parse_fused_igc(value: bool | str | Sequence[str] | None, formats: Sequence[str]) -> list[str]:
    """The formats to export with the fused IGC kernel: True means the exported ones of `FUSED_IGC_DEFAULT`;
    a list must name exported formats that have a kernel binding (`FUSED_IGC_LAYOUTS`)."""
    if value is None or value is False or (not isinstance(value, str) and not value):
        return []
    if value is True:
        names = [f for f in FUSED_IGC_DEFAULT if f in formats]
        if not names:
            raise ConfigurationError(f"--fused-igc applies to {' and '.join(FUSED_IGC_DEFAULT)}, and neither is "
                                     f"exported; add one to --formats or name the formats with --fused-igc-formats")
        return names
    names = parse_formats(value)
    unbound = [n for n in names if n not in FUSED_IGC_LAYOUTS]
    if unbound:
        raise ConfigurationError(f"--fused-igc: clcdeploy has no {', '.join(unbound)} binding of the fused IGC "
                                 f"kernel; choose from {', '.join(FUSED_IGC_LAYOUTS)}")
    missing = [n for n in names if n not in formats]
    if missing:
        raise ConfigurationError(f"--fused-igc {','.join(names)}: {', '.join(missing)} is not among the exported "
                                 f"formats; add it to --formats")
    return names


def _format_module(fmt: str):
    return importlib.import_module(FORMAT_MODULES[fmt])


def artifact_name(name: str, fmt: str) -> str:
    """The file name an export of model `name` writes for `fmt` (e.g. clcnet_a.pte)."""
    return f"{name}{_format_module(fmt).SUFFIX}"


def _calls_fused_igc(deploy: nn.Module) -> bool:
    from clcdeploy.kernels.fuse import FusedIGC2

    return any(isinstance(m, FusedIGC2) for m in deploy.modules())


def _has_igc(model: nn.Module) -> bool:
    """Whether the model has IGCs, as modules or written by hand (a grouped convolution and a shuffle)."""
    if any(isinstance(m, IGC) for m in model.modules()):
        return True
    try:
        return any(isinstance(m, IGC) for m in recognise_igc(model).modules())
    except UntraceableError:  # the passes then rewrite it child by child
        return any(_has_igc(child) for child in model.children())


def _needs_kernel_library(fmt: str, path: Path) -> bool:
    """Whether the artifact calls clcdeploy's custom kernels."""
    from clcdeploy.kernels.runtime import onnx_uses_fused_igc, pte_uses_fused_igc, tflite_uses_fused_igc

    return {"pte": pte_uses_fused_igc, "onnx": onnx_uses_fused_igc, "tflite": tflite_uses_fused_igc}[fmt](path)


def _build(name: str, size: int, weights: str | Path | None, model_kwargs: dict | None) -> tuple[nn.Module, str]:
    """The eval-mode model with its weights, and where the weights came from."""
    model = create_model(name, **(model_kwargs or {}))
    check_input_size(model, name, size)
    source = load_weights(model, weights) if weights is not None else random_weights(model, input_size=size)
    return model, source


def _rewrite(name: str, model: nn.Module, example: torch.Tensor, rewrite: Rewrite) -> nn.Module:
    try:
        with quiet_output():
            deploy = rewrite(model, example)
    except ClcDeployError:
        raise
    except Exception as exc:  # a pass bug: one line for the user, the traceback with --debug
        raise ExportError(f"deployment rewrites of {name} failed: {first_line(exc)}") from exc
    return deploy.eval()


def _export_format(fmt: str, module, deploy: nn.Module, example: torch.Tensor, tmp: Path,
                   inputs: list, expected: list, report: Progress) -> tuple[FormatEntry, validate.Check]:
    """Convert, validate and inspect one format into `tmp`; the caller fills in name and verdicts."""
    start = time.perf_counter()
    try:
        with torch.no_grad(), quiet_output():
            facts = module.export(deploy, example, tmp)
    except ExportError:
        raise
    except Exception as exc:  # converters raise anything; the user gets one line (--debug: traceback)
        raise ExportError(f"{fmt} conversion failed: {first_line(exc)}") from exc
    export_seconds = time.perf_counter() - start
    report(f"{fmt} export", export_seconds)

    start = time.perf_counter()
    with quiet_output():
        check = validate.check_artifact(fmt, module.RUNTIME, module.run, tmp, inputs, expected)
    validate_seconds = time.perf_counter() - start
    report(f"{fmt} validate: {check.line()}", validate_seconds)

    with quiet_output():
        ops = _REPORTS[fmt](tmp)
    entry = FormatEntry(
        file=tmp.name, bytes=tmp.stat().st_size, sha256=sha256_file(tmp), runtime=module.RUNTIME,
        input_name=facts.pop("input_name"), input_layout=facts.pop("input_layout"),
        input_shape=facts.pop("input_shape"), max_abs_diff=check.max_abs_diff, validated=False,
        export_seconds=round(export_seconds, 3), validate_seconds=round(validate_seconds, 3),
        op_histogram=ops.pop("op_histogram"), delegation=ops, extra=facts,
    )
    return entry, check


def _previous_entries(folder: Path, name: str, config: dict, source: str, shape: list[int],
                      exported: dict[str, FormatEntry]) -> tuple[dict[str, FormatEntry], dict[Path, str]]:
    """The previous manifest's entries of formats not exported now that still describe their files (same model,
    weights and input), and the artifact files of the others, which the new manifest will not describe, with
    why."""
    previous = read_manifest(folder)
    if previous is None:
        if not (folder / MANIFEST_NAME).exists():
            return {}, {}
        # an unreadable manifest vouches for nothing: its artifacts may be of any configuration
        others = [folder / artifact_name(name, f) for f in FORMAT_MODULES if f not in exported]
        return {}, {path: "no readable manifest described it" for path in others if path.is_file()}
    # compared as JSON: the previous manifest's config has lists for tuples and strings for integer keys
    same = _as_json(previous.config) == _as_json(config) and previous.weights == source \
        and previous.input_shape == shape
    kept: dict[str, FormatEntry] = {}
    stale: dict[Path, str] = {}
    for fmt, entry in previous.formats.items():
        if fmt in exported or fmt not in FORMAT_MODULES:
            continue
        path = folder / entry.file
        if same and _has_content(path, entry.sha256):
            kept[fmt] = entry
        elif entry.file == artifact_name(name, fmt) and path.is_file():  # only the name it writes
            stale[path] = "changed since it was exported" if same else "exported for another configuration"
    return kept, stale


def _has_content(path: Path, sha256: str) -> bool:
    try:
        return path.is_file() and sha256_file(path) == sha256
    except OSError:
        return False


def _as_json(value: object) -> object:
    return json.loads(json.dumps(value))


def _manifest(name: str, spec, model: nn.Module, config: dict, size: int, source: str,
              formats: dict[str, FormatEntry]) -> Manifest:
    """The manifest; `igc_lowering` is the artifacts' common lowering, or "per-format" (see their extra)."""
    macs, params = _costs(model, size)
    used = {e.extra.get("igc_lowering", "split") for e in formats.values()}
    igc_lowering = used.pop() if len(used) == 1 else "per-format"
    return Manifest(
        model=name, family=spec.family, paper=spec.paper, config=config, input_shape=[1, 3, size, size],
        mult_adds=macs, params=params, weights=source, igc_lowering=igc_lowering,
        formats={k: formats[k] for k in FORMATS if k in formats}, tools=tool_versions(),
    )


def _costs(model: nn.Module, size: int) -> tuple[int | None, int]:
    params = sum(p.numel() for p in model.parameters())
    try:
        from clcdeploy.analysis.cost import count_costs
    except ImportError:  # the analysis area is optional for export
        return None, params
    report = count_costs(model, size)
    return int(report.macs), int(report.params)


def _topological_layers(model: nn.Module, size: int, topological: str) -> dict | None:
    """How the model's topologically subdivided convolutions are exported, and the mult-adds the artifact then
    computes (dense: n/c times those layers' own); None for models without such layers."""
    if not any(isinstance(m, TopologicalConv) for m in model.modules()):
        return None
    computed = _costs(densify_topological(model), size)[0] if topological == "dense" else _costs(model, size)[0]
    return {"lowering": topological, "computed_mult_adds": computed}


def _lowers_to_depthwise(family: str, model: nn.Module) -> bool:
    """Whether the issue's delegation requirements apply: clcNet with interlaced CRF-2 IGCs."""
    config = getattr(model, "config", {}) or {}
    return family == "clcnet" and config.get("interlace", False) and config.get("crf") == 2 \
        and config.get("g1") is None
