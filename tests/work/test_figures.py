"""Reading Callgrind's dumps and the work figures made from them."""

from __future__ import annotations

import pytest

from harness.work.figures import Counts, DumpError, WorkFigures, read_dumps

EVENTS = "Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw"


def dump(tmp_path, name, summary, desc="Client Request: {}"):
    path = tmp_path / f"cg.out.{name}"
    path.write_text(f"version: 1\ncreator: callgrind-3.19.0\ndesc: Trigger: {desc.format(name)}\n"
                    f"events: {EVENTS}\nfn=(1) f\n0 1\nsummary: {summary}\ntotals: {summary}\n")
    return path


def test_dumps_are_read_by_the_name_their_client_request_gave_them(tmp_path):
    paths = [dump(tmp_path, "job#0", "1000 300 100 10 20 5 1 2 1"),
             dump(tmp_path, "end", "0 0 0 0 0 0 0 0 0", desc="Program termination")]
    found = read_dumps(paths)
    assert list(found) == ["job#0"]  # the termination dump names no job
    assert found["job#0"].instructions == 1000 and found["job#0"].misses() == (35, 4)


def test_an_incomplete_dump_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "cg.out.1"
    path.write_text("desc: Trigger: Client Request: job#0\nevents: Ir Dr\n")
    with pytest.raises(DumpError, match=r"cg\.out\.1 has no events/summary line"):
        read_dumps([path])


def test_estimated_cycles_weigh_hits_by_level():
    # 1400 accesses: 35 L1 misses, 4 of them also last-level misses.
    c = Counts(dict(zip(EVENTS.split(), [1000, 300, 100, 10, 20, 5, 1, 2, 1], strict=True)))
    assert c.estimated_cycles() == (1400 - 35) * 1 + (35 - 4) * 5 + 4 * 35


def test_figures_are_per_call_medians_with_the_windows_spread():
    windows = [Counts({"Ir": ir}) for ir in (2000, 2100, 2050)]
    fig = WorkFigures.from_counts(windows, calls=10)
    assert fig.instructions == 205 and fig.repeats == 3 and fig.calls == 10
    assert fig.spread == pytest.approx(10 / 205)
    assert fig.estimated_cycles is None  # no cache simulation in these windows
    assert WorkFigures.from_dict(fig.to_dict()) == fig


def test_no_window_is_an_error():
    with pytest.raises(DumpError, match="expected at least one callgrind dump"):
        WorkFigures.from_counts([], calls=1)
