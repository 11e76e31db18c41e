"""CLI: `clcdeploy models`, `clcdeploy analyze NAME`, `clcdeploy groups`."""

from __future__ import annotations

import argparse
import json
import sys

ANALYZE_DESCRIPTION = """\
Count a zoo model's mult-adds and parameters (in total and per layer) and
show, for every block, its channel receptive field and information field.

columns of the block table:
  CRF         channel receptive field: how many of the block's input
              channels an output channel depends on (the smallest number
              over its output channels; channels a block only passes
              through, like a ShuffleNet unit's pooled shortcut, are
              counted separately)
  FCRF        "yes" when the CRF is all of the block's input channels (full
              channel receptive field: the clcNet paper's condition for a
              block that approximates a regular convolution well)
  info field  information field (seed 004, Definition 1): height x width x
              channels of the block's input that one output activation
              (away from the borders) is computed from, e.g. 3x3x256 for a
              3x3 convolution over 256 channels; "all": the whole input
"""

GROUPS_DESCRIPTION = """\
Choose the group numbers of a CLC block, a KxK interlaced grouped convolution
(IGC, g1 groups, M -> L channels) followed by a 1x1 grouped convolution (GC,
g2 groups, L -> N), that minimise its mult-adds per output location,
A*L*M/g1 + N*L/g2 (clcNet paper, Eq. 2), keeping a full channel receptive
field.

The IGC's channel receptive field (CRF: input channels per output channel)
is M/g1, the GC's L/g2; the block has a full channel receptive field (FCRF:
every output depends on all M inputs) when g1*g2 <= L (Eq. 1). Equal costs
go to the larger g2 (hence the smaller g1 and the larger IGC CRF). The
paper's network (Table 2) sets L = M and fixes g2 = 2:
`clcdeploy groups --in 64 --mid 64 --out 128 --g2 2` gives its g1 = 32.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the model zoo with mult-adds and parameters",
                              description="List the model zoo: input size, mult-adds and parameters at that size, "
                                          "and the paper each model comes from.")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--tiny", action="store_true", help="include the tiny test variants")
    p.set_defaults(handler=run_models)

    p = subparsers.add_parser("analyze", help="cost, per-layer table and channel receptive fields of a model",
                              description=ANALYZE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="model name (see `clcdeploy models`)")
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="input height/width in pixels, at most 2048 (default: the model's, e.g. 224)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_analyze)

    p = subparsers.add_parser("groups", help="optimal IGC/GC group parameters of a CLC block (paper Eq. 2)",
                              description=GROUPS_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in", dest="M", type=int, required=True, help="input channels M")
    p.add_argument("--mid", dest="L", type=int, required=True, help="intermediate channels L (the paper uses L = M)")
    p.add_argument("--out", dest="N", type=int, required=True, help="output channels N")
    p.add_argument("--kernel-area", type=int, default=9, metavar="A",
                   help="IGC kernel area A, e.g. 9 for 3x3 (default: 9)")
    p.add_argument("--g2", type=int, default=None, metavar="G2",
                   help="fix the GC's groups g2 and choose only g1 (the paper's Table 2 uses 2; default: choose both)")
    p.add_argument("--json", action="store_true", help="print JSON with g1, g2, cost and the channel receptive fields")
    p.set_defaults(handler=run_groups)


def _console():
    """A rich console for stdout: full width (nothing cut) when stdout is not a terminal, and a reader that
    stops early (`| head`) ends the command as the CLI's BrokenPipeError handling does (quietly, exit 141)
    instead of rich's own exit 1."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    if sys.stdout.isatty():
        return _Console()
    return _Console(width=100_000)  # tables keep their natural width; no line is padded to this


def _table(title: str, columns: list[tuple[str, bool]]):
    """A table whose text columns fold (wrap anywhere, never "…") in a narrow terminal and whose number columns
    (`True`) stay on one line, right-aligned."""
    from rich.table import Table

    table = Table(title=title)
    for name, numeric in columns:
        if numeric:
            table.add_column(name, justify="right", no_wrap=True)
        else:
            table.add_column(name, overflow="fold")
    return table


def _millions(count: int, decimals: int) -> str:
    return f"{count / 1e6:.{decimals}f}M"


def run_models(args: argparse.Namespace) -> int:
    from clcdeploy.analysis.summary import zoo_summary

    rows = zoo_summary(include_tiny=args.tiny)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = _table("clcdeploy model zoo", [("name", False), ("input", True), ("mult-adds", True), ("params", True),
                                           ("paper", False)])
    for r in rows:
        table.add_row(r["name"], str(r["input_size"]), _millions(r["macs"], 2), _millions(r["params"], 3),
                      r["paper_name"])
    _console().print(table)
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    from clcdeploy.analysis.summary import analyze_model

    result = analyze_model(args.name, args.input_size)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    console = _console()
    console.print(f"[bold]{result['name']}[/] at {result['input_size']}x{result['input_size']}: "
                  f"{_millions(result['macs'], 2)} mult-adds, {_millions(result['params'], 3)} parameters")
    layers = _table("per-layer cost", [("layer", False), ("type", False), ("output", False), ("mult-adds", True),
                                       ("params", True)])
    for layer in result["layers"]:
        if layer["macs"] or layer["params"]:
            layers.add_row(layer["name"], layer["type"], "x".join(map(str, layer["output_shape"])),
                           f"{layer['macs']:,}", f"{layer['params']:,}")
    console.print(layers)
    blocks = _table("channel receptive field per block (CRF, FCRF and info field: see `clcdeploy analyze --help`)",
                    [("block", False), ("type", False), ("in", True), ("out", True), ("CRF", False),
                     ("FCRF", False), ("info field", False)])
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

    choice = optimal_groups(args.M, args.L, args.N, args.kernel_area, g2=args.g2)
    igc_crf, gc_crf = choice.igc_crf(args.M), choice.gc_crf(args.L)
    if args.json:
        print(json.dumps({"M": args.M, "L": args.L, "N": args.N, "kernel_area": args.kernel_area,
                          "g2_fixed": args.g2 is not None, "g1": choice.g1, "g2": choice.g2, "cost": choice.cost,
                          "igc_crf": igc_crf, "gc_crf": gc_crf, "fcrf": choice.g1 * choice.g2 <= args.L}))
    else:
        fixed = " (g2 fixed)" if args.g2 is not None else ""
        print(f"M={args.M} L={args.L} N={args.N} A={args.kernel_area}: g1={choice.g1} g2={choice.g2}{fixed} "
              f"cost={choice.cost} mult-adds per output location")
        print(f"channel receptive field: IGC M/g1 = {igc_crf}, GC L/g2 = {gc_crf}; "
              f"full (g1*g2 <= L): {choice.g1}*{choice.g2} = {choice.g1 * choice.g2} <= {args.L}")
    return 0
