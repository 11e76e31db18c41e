"""`clcdeploy export`: write verified ONNX, ExecuTorch and TFLite artifacts for zoo models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMAT_NAMES = ("onnx", "pte", "tflite")  # mirrors pipeline.FORMATS without importing torch at startup
# mirrors passes.IGC_LOWERINGS (default: None, each format's measured fastest, passes.DEFAULT_IGC_LOWERINGS)
IGC_LOWERING_NAMES = ("split-late", "split", "split-k", "split-dw", "split-gc", "split-k-gc", "swap", "grouped")
TOPOLOGICAL_NAMES = ("dense", "gather")  # mirrors passes.TOPOLOGICAL_LOWERINGS
# mirror clcdeploy.kernels.build.LIBRARY_NAME, ONNXRUNTIME_LIBRARY_NAME, LITERT_LIBRARY_NAME
KERNEL_LIBRARIES = {"pte": "libclcdeploy_igc_executorch.so", "onnx": "libclcdeploy_igc_onnxruntime.so",
                    "tflite": "libclcdeploy_igc_litert_delegate.so, as a delegate"}
KERNEL_BUILT_IN = {"pte": " or built in (clcdeploy's pte_runner)", "onnx": "", "tflite": ""}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a model to ONNX, ExecuTorch (.pte) and TFLite, validated against PyTorch",
        description="Export zoo models with the deployment rewrites (BN folding, IGC lowering) applied; "
                    "writes DIR/NAME/NAME.{onnx,pte,tflite} and DIR/NAME/manifest.json.",
    )
    parser.add_argument("name", nargs="?", help="registered model name (see `clcdeploy models`)")
    parser.add_argument("--all", action="store_true", help="export every registered non-tiny model")
    parser.add_argument("--formats", default=",".join(FORMAT_NAMES),
                        help=f"comma-separated subset of {','.join(FORMAT_NAMES)} (default: all)")
    parser.add_argument("--out", default="models", metavar="DIR", help="output folder (default: models)")
    parser.add_argument("--weights", metavar="PATH", help="PyTorch state dict or checkpoint (default: random)")
    parser.add_argument("--input-size", type=int, metavar="N", help="input resolution (default: the model's)")
    parser.add_argument("--no-validate", action="store_true", help="keep artifacts even if outputs differ")
    parser.add_argument("--igc-lowering", default=None, choices=IGC_LOWERING_NAMES,
                        help=argparse.SUPPRESS)  # internal: lets benchmarks compare lowering variants
    parser.add_argument("--topological", default="dense", choices=TOPOLOGICAL_NAMES,
                        help="SIC models F, G, I: each topologically subdivided convolution as one dense convolution "
                             "with zeros outside its neighbourhoods (default; more mult-adds, far faster on every "
                             "runtime) or as written, a channel gather plus a grouped convolution (gather)")
    parser.add_argument("--fused-igc", action="store_true",
                        help="compute each CRF-2 IGC with clcdeploy's fused kernel in the .pte and the .tflite "
                             "(where it is faster); such artifacts need clcdeploy's kernel library at run time "
                             "(clcdeploy loads it into ExecuTorch's Python runtime and as a LiteRT delegate; "
                             "its pte_runner has it built in)")
    parser.add_argument("--fused-igc-formats", metavar="FORMATS",
                        help="the formats --fused-igc applies to, from pte,tflite,onnx (implies --fused-igc; "
                             "onnx: the custom node clcdeploy.IGC2 for ONNX Runtime, measured slower there "
                             "than standard operators)")
    parser.add_argument("--json", action="store_true", help="print the manifest(s) as JSON")
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from clcdeploy.errors import ConfigurationError
    from clcdeploy.export.pipeline import export_model, parse_formats, parse_fused_igc
    from clcdeploy.units import millions
    from clcdeploy.zoo import list_models, model_spec

    if bool(args.all) == bool(args.name):
        raise ConfigurationError("give exactly one of a model NAME or --all")
    if args.all and args.weights:
        raise ConfigurationError("--weights fits one model; export that model by NAME instead of --all")
    formats = parse_formats(args.formats)
    # refused before any work; an empty --fused-igc-formats is refused like an empty --formats
    fused_igc = parse_fused_igc(args.fused_igc if args.fused_igc_formats is None else args.fused_igc_formats,
                                formats)
    names = list_models(include_tiny=False) if args.all else [model_spec(args.name).name]  # unknown: fail now
    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def progress(stage: str, seconds: float) -> None:
        console.print(f"  {stage} [dim]({seconds:.1f} s)[/dim]")

    manifests = []
    for name in names:
        console.print(f"[bold]{name}[/bold]")
        manifest = export_model(
            name, formats, args.out, weights=args.weights, input_size=args.input_size,
            validate_outputs=not args.no_validate, igc_lowering=args.igc_lowering, topological=args.topological,
            fused_igc=fused_igc, progress=progress, log=lambda line: console.print(f"  {line}", markup=False),
        )
        dense = next((e.extra["topological_layers"] for e in manifest.formats.values()
                      if e.extra.get("topological_layers", {}).get("lowering") == "dense"), None)
        if dense:
            console.print(f"  [bold]note:[/bold] its topologically subdivided convolutions run as dense convolutions "
                          f"(exact): the artifacts compute {millions(dense['computed_mult_adds'])} mult-adds, not "
                          f"the model's {millions(manifest.mult_adds)}, and run far faster "
                          f"(--topological gather keeps them as written)")
        for fmt, entry in manifest.formats.items():
            for failure in entry.delegation_failures:
                console.print(f"  [yellow]warning:[/yellow] {failure}")
            if entry.extra.get("needs_kernel_library"):
                console.print(f"  [bold]note:[/bold] {entry.file} calls clcdeploy's fused IGC kernel: it runs "
                              f"where that kernel is loaded ({KERNEL_LIBRARIES[fmt]}){KERNEL_BUILT_IN[fmt]}")
        console.print(f"  wrote {Path(args.out) / name / 'manifest.json'}")
        manifests.append(manifest.to_dict())
    if args.json:
        json.dump(manifests[0] if len(manifests) == 1 else manifests, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0
