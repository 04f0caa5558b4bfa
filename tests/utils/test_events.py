"""AtomicJSONWriter: metrics.json is never empty or cut in the middle of a line."""

import json

from detectron2.utils.events import EventStorage

from unlock.utils.events import AtomicJSONWriter


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_no_empty_file_and_complete_lines(tmp_path):
    path = tmp_path / "metrics.json"
    writer = AtomicJSONWriter(str(path))
    assert not path.exists()  # detectron2's JSONWriter creates a 0-byte file here
    with EventStorage(0) as storage:
        for it in range(3):
            storage.iter = it
            storage.put_scalar("loss", float(it), smoothing_hint=False)
            writer.write()
    writer.close()
    assert [d["iteration"] for d in _lines(path)] == [0, 1, 2]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_resume_appends_and_drops_a_cut_line(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"iteration": 0, "loss": 1.0}\n{"iteration": 1, "lo')
    writer = AtomicJSONWriter(str(path))
    with EventStorage(5) as storage:
        storage.put_scalar("loss", 0.5, smoothing_hint=False)
        writer.write()
    assert [d["iteration"] for d in _lines(path)] == [0, 5]


def test_resumed_run_replaces_the_iterations_after_its_checkpoint(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("".join(f'{{"iteration": {i}, "loss": 1.0}}\n' for i in range(6)))
    writer = AtomicJSONWriter(str(path))
    with EventStorage(3) as storage:  # resumed from the checkpoint of iteration 2
        storage.put_scalar("loss", 0.5, smoothing_hint=False)
        writer.write()
    assert [(d["iteration"], d["loss"]) for d in _lines(path)] == [
        (0, 1.0),
        (1, 1.0),
        (2, 1.0),
        (3, 0.5),
    ]
