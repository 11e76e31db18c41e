"""Full-size clcNet-A: every convolution delegated in the .pte, depthwise IGCs and no tiny-group CONV_2D in
the .tflite (issue 3's delegation requirements), with validation against PyTorch."""

from __future__ import annotations

from pathlib import Path

import pytest

from clcdeploy.export.delegation import MIN_GROUP_CHANNELS
from clcdeploy.export.pipeline import export_model


@pytest.mark.slow
def test_clcnet_a_is_fully_delegated(tmp_path: Path) -> None:
    manifest = export_model("clcnet_a", ["pte", "tflite"], tmp_path)
    pte, tflite = manifest.formats["pte"], manifest.formats["tflite"]
    assert pte.validated and tflite.validated
    assert pte.delegation["convolutions_outside_delegate"] == 0
    assert pte.delegation["ops_outside_delegate"] == 0
    blocks = 2 + sum(manifest.config[k] for k in "abcd") + 3  # fixed blocks of Table 2 plus repeats
    strided = 4  # stride-2 blocks: the default lowering splits their depthwise convs at the moved concat
    assert tflite.op_histogram["DEPTHWISE_CONV_2D"] == 4 * blocks + 4 * strided  # four (eight) per IGC
    assert not [g for g in tflite.delegation["grouped_conv2d"] if g["group_channels"] < MIN_GROUP_CHANNELS]
    assert tflite.delegation["ops_outside_delegate"] == 0
    assert not pte.delegation_failures and not tflite.delegation_failures
    assert manifest.mult_adds is not None and manifest.params > 3_000_000
