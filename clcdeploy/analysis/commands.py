"""CLI: `clcdeploy models`, `clcdeploy analyze NAME`, `clcdeploy groups`."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the model zoo with mult-adds and parameters")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--tiny", action="store_true", help="include the tiny test variants")
    p.set_defaults(handler=run_models)

    p = subparsers.add_parser("analyze", help="cost, per-layer table and channel receptive fields of a model")
    p.add_argument("name", help="model name (see `clcdeploy models`)")
    p.add_argument("--input-size", type=int, default=None, help="input height/width (default: the model's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_analyze)

    p = subparsers.add_parser("groups", help="optimal IGC/GC group parameters of a CLC block (paper Eq. 2)")
    p.add_argument("--in", dest="M", type=int, required=True, help="input channels M")
    p.add_argument("--mid", dest="L", type=int, required=True, help="intermediate channels L")
    p.add_argument("--out", dest="N", type=int, required=True, help="output channels N")
    p.add_argument("--kernel-area", type=int, default=9, help="IGC kernel area A (9 for 3x3)")
    p.add_argument("--json", action="store_true", help="print JSON with g1, g2, cost")
    p.set_defaults(handler=run_groups)


def run_models(args: argparse.Namespace) -> int:
    from clcdeploy.analysis.summary import zoo_summary

    rows = zoo_summary(include_tiny=args.tiny)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="clcdeploy model zoo")
    for column in ("name", "input", "mult-adds", "params", "paper"):
        table.add_column(column, justify="right" if column in ("input", "mult-adds", "params") else "left",
                         no_wrap=True)
    for r in rows:
        table.add_row(r["name"], str(r["input_size"]), f"{r['macs'] / 1e6:.1f}M", f"{r['params'] / 1e6:.3f}M",
                      f"seeds/{r['paper'].split('_')[0]}")
    Console().print(table)
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    from clcdeploy.analysis.summary import analyze_model

    result = analyze_model(args.name, args.input_size)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{result['name']}[/] at {result['input_size']}x{result['input_size']}: "
                  f"{result['macs'] / 1e6:.2f}M mult-adds, {result['params'] / 1e6:.3f}M parameters")
    layers = Table(title="per-layer cost")
    for column in ("layer", "type", "output", "mult-adds", "params"):
        layers.add_column(column, justify="right" if column in ("mult-adds", "params") else "left")
    for layer in result["layers"]:
        if layer["macs"] or layer["params"]:
            layers.add_row(layer["name"], layer["type"], "x".join(map(str, layer["output_shape"])),
                           f"{layer['macs']:,}", f"{layer['params']:,}")
    console.print(layers)
    blocks = Table(title="channel receptive field per block")
    for column in ("block", "type", "in", "out", "CRF", "FCRF", "info field"):
        blocks.add_column(column)
    for b in result["blocks"]:
        crf = f"{b['crf']}" + (f" (+{b['passthrough_channels']} pass-through)" if b["passthrough_channels"] else "")
        blocks.add_row(b["name"], b["type"], str(b["in_channels"]), str(b["out_channels"]), crf,
                       "yes" if b["fcrf"] else "[red]no[/]",
                       "x".join("all" if v is None else str(v) for v in b["information_field"]))
    console.print(blocks)
    verdict = "every block has a full channel receptive field" if result["fcrf"] else \
        "[red]not every block has a full channel receptive field[/]"
    console.print(verdict)
    return 0


def run_groups(args: argparse.Namespace) -> int:
    from clcdeploy.analysis.groups import optimal_groups

    choice = optimal_groups(args.M, args.L, args.N, args.kernel_area)
    if args.json:
        print(json.dumps({"M": args.M, "L": args.L, "N": args.N, "kernel_area": args.kernel_area,
                          "g1": choice.g1, "g2": choice.g2, "cost": choice.cost}))
    else:
        print(f"M={args.M} L={args.L} N={args.N} A={args.kernel_area}: g1={choice.g1} g2={choice.g2} "
              f"cost={choice.cost} mult-adds per output location")
    return 0
