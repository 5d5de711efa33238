"""Rule files: the documented JSON, a lossless round trip, and errors naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generators.errors import GauntletError
from generators.rules.store import ApiRules, SignatureRule, SlotRule, read_rule_dir, read_rules, write_rules


def sample() -> ApiRules:
    rule = SignatureRule(
        signature="torch.add(tensor2,tensor2,alpha=int,rounding=str=floor)",
        args=(SlotRule("tensor", rank=2), SlotRule("tensor", rank=2)),
        kwargs={"alpha": SlotRule("int"), "rounding": SlotRule("str", value="floor"),
                "stride": SlotRule("ints", length=2), "out": SlotRule("none")},
        dtypes=(("float32", "float32"), ("int64", "int64")),
        outputs=((("a0_s0", "max(a0_s1, a1_s1)"), "a0"), ((), "bool")),
        requires=("a0_s0 == a1_s0", "a1_s1 <= a0_s1 + stride_1"),
        ranges={"a0_s0": (0, 20), "alpha": (-2, 5), "stride_1": (1, 3)},
        floats={"eps": (1e-05, 0.1)},
        traces={"valid": 12, "invalid": 30},
    )
    return ApiRules("torch", "2.13.0", "torch.add", {"opinfo": 40, "probe": 300}, (rule,))


def test_round_trip_and_format(tmp_path: Path) -> None:
    rules = sample()
    path = write_rules(tmp_path, rules)
    assert path == tmp_path / "torch" / "2.13.0" / "torch.add.json"
    text = path.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=1, sort_keys=True) + "\n"
    assert data["schema"] == 1 and data["provenance"] == {"opinfo": 40, "probe": 300}
    rule = data["rules"][0]
    assert rule["args"] == [{"kind": "tensor", "rank": 2}, {"kind": "tensor", "rank": 2}]
    assert rule["kwargs"]["rounding"] == {"kind": "str", "value": "floor"}
    assert rule["kwargs"]["stride"] == {"kind": "ints", "length": 2}
    assert rule["outputs"][0] == {"shape": ["a0_s0", "max(a0_s1, a1_s1)"], "dtype": "a0"}
    assert rule["ranges"]["alpha"] == [-2, 5]
    assert read_rules(path) == rules
    assert read_rule_dir(tmp_path, "torch", "2.13.0") == [rules]


def corrupt(tmp_path: Path, edit: str, value: object) -> Path:
    path = write_rules(tmp_path, sample())
    data = json.loads(path.read_text())
    target = data
    *parents, last = edit.split("/")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("edit", "value", "message"), [
    ("schema", 2, "schema: expected 1"),
    ("api", 3, "api: expected str"),
    ("rules/0/outputs/0/shape/1", "max(a0_s1,", "rules\\[0\\].outputs\\[0\\].shape\\[1\\]: bad rule expression"),
    ("rules/0/outputs/0/shape/0", "a5_s0", "uses a5_s0, which the signature"),
    ("rules/0/requires/0", "a0_s0 + 1", "rules\\[0\\].requires\\[0\\]: .*expected a comparison"),
    ("rules/0/outputs/0/shape/0", "a0_s0 == 1", "shape\\[0\\]: .*not a comparison"),
    ("rules/0/ranges/a0_s0", [3, 1], "rules\\[0\\].ranges.a0_s0: expected \\[min, max\\]"),
    ("rules/0/floats/eps", ["x", 1], "rules\\[0\\].floats.eps"),
    ("rules/0/args/0", {"kind": "tensor", "rank": -1}, "rules\\[0\\].args\\[0\\].rank"),
    ("rules/0/args/1", {"kind": "list"}, "unknown kind 'list'"),
    ("rules/0/dtypes/0", ["float32"], "rules\\[0\\].dtypes\\[0\\]: expected 2 dtype names"),
    ("rules/0/traces/valid", True, "rules\\[0\\].traces.valid"),
    ("provenance", [], "provenance: expected dict"),
])
def test_malformed_file_names_file_and_field(tmp_path: Path, edit: str, value: object, message: str) -> None:
    path = corrupt(tmp_path, edit, value)
    with pytest.raises(GauntletError, match=message) as info:
        read_rules(path)
    assert str(path) in str(info.value)


def test_unreadable_and_unsafe(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(GauntletError, match="x.json: not JSON"):
        read_rules(bad)
    with pytest.raises(GauntletError, match="cannot read"):
        read_rules(tmp_path / "missing.json")
    with pytest.raises(GauntletError, match="cannot name a rule file"):
        write_rules(tmp_path, ApiRules("torch", "../../etc", "torch.add", {}, ()))
    with pytest.raises(GauntletError, match="no rules directory"):
        read_rule_dir(tmp_path, "torch", "9.9")
