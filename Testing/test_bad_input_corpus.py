"""Every command, every bad argument: exit 1, one ``segtruth: error:`` line naming the file, nothing changed.

The corpus is a table: ``COMMANDS`` says which argument of each command goes where, and bad_inputs.py lists
the bad variants of each kind of argument (images, segmentations, label tables, recipes, models, manifests);
``OUTPUTS`` lists bad outputs (files and folders). Each command is run with each bad variant of each argument
it takes, in a child process (Testing/isolated.py), so a signal or a hang inside a C++ reader is seen as what it
is. Afterwards the work folder, which holds a user's files, must be byte-identical, and the inputs untouched.

A new command joins by adding a row to ``COMMANDS``; a new failure by adding a variant.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from bad_inputs import VARIANTS, make_good_case, make_variants, snapshot
from isolated import Outcome, run_cli

# Each command with its arguments: {IMG} {SEG} {SEG2} {LAB} {REC} {MODEL} {MAN} {RS} are inputs, {OUT} a labelmap
# file output, {DIR} a folder output, {WORK} the folder the command runs in.
COMMANDS: dict[str, list[str]] = {
    "info image": ["info", "{IMG}"],
    "info segmentation": ["info", "{SEG}"],
    "threshold": ["threshold", "{IMG}", "--range", "0", "60", "--labels", "{LAB}", "--name", "a", "-o", "{OUT}"],
    "grow": ["grow", "{IMG}", "--seeds", "{SEG}", "-o", "{OUT}"],
    "islands": ["islands", "{IMG}", "{SEG}", "--keep-largest", "-o", "{OUT}"],
    "fill-between": ["fill-between", "{IMG}", "{SEG}", "-o", "{OUT}"],
    "smooth": ["smooth", "{IMG}", "{SEG}", "-o", "{OUT}"],
    "flood-fill": ["flood-fill", "{IMG}", "--at=-5,-5,8", "--labels", "{LAB}", "--name", "a", "-o", "{OUT}"],
    "export": ["export", "{IMG}", "{SEG}", "--labels", "{LAB}", "-o", "{OUT}"],
    "export --masks": ["export", "{IMG}", "{SEG}", "-o", "{OUT}", "--masks", "{WORK}"],
    "run": ["run", "{REC}", "{IMG}", "-o", "{DIR}"],
    "segment": ["segment", "{IMG}", "--model", "{MODEL}", "-o", "{OUT}"],
    "dataset nnunet": [
        "dataset",
        "nnunet",
        "{MAN}",
        "-o",
        "{DIR}",
        "--name",
        "Corpus",
        "--id",
        "7",
        "--channel-names",
        "CT",
    ],
    "dataset monai": ["dataset", "monai", "{MAN}", "-o", "{DIR}/datalist.json"],
    "slices": ["slices", "{IMG}", "{SEG}", "-o", "{DIR}"],
    "crop": ["crop", "{IMG}", "{SEG}", "-o", "{WORK}/crop.nrrd", "-m", "{OUT}", "--margin", "1"],
    "compare": ["compare", "{SEG}", "{SEG2}", "--image", "{IMG}"],
    "report": ["report", "{MAN}", "-o", "{WORK}/report.html", "--pictures", "{DIR}"],
}
# Variants a command accepts by design, and why.
ACCEPTED: dict[str, set[str]] = {
    # compare measures two segmentations on one grid: one on another grid is moved there (nearest neighbour,
    # with a note), and the image only gives that grid.
    "compare": {
        "labelmap shifted 5 mm",
        "labelmap on another spacing",
        "labelmap of another size",
        "all NaN",  # --image gives only the grid: its intensities are never read
        "some NaN",
    },
    # the QC report exists to show bad cases: a damaged case is a problem listed in it, not an error.
    "report": {"manifest naming a damaged image"},
}
NO_OVERWRITE = {"threshold", "grow", "islands", "fill-between", "export", "segment", "crop"}


@dataclass(frozen=True)
class BadOutput:
    name: str
    slot: str  # OUT or DIR
    value: str
    names: str
    extra: tuple[str, ...] = ()


OUTPUTS = [
    BadOutput("unknown output extension", "OUT", "{WORK}/out.txt", "out.txt"),
    BadOutput("output folder missing", "OUT", "{WORK}/missing/out.nii.gz", "missing"),
    BadOutput("output below a file", "OUT", "{WORK}/notes.txt/out.nii.gz", "notes.txt"),
    BadOutput("output is a folder", "OUT", "{WORK}/userdir", "userdir"),
    BadOutput("output is the input image", "OUT", "{IMG}", "image.nrrd"),
    BadOutput("existing output with --no-overwrite", "OUT", "{WORK}/notes.nii.gz", "notes.nii.gz", ("--no-overwrite",)),
    BadOutput("output where writes fail", "OUT", "/proc/out.nii.gz", "/proc/out.nii.gz"),
    BadOutput("output folder below a file", "DIR", "{WORK}/notes.txt/outdir", "notes.txt"),
    BadOutput("output folder where writes fail", "DIR", "/proc/segtruth-outdir", "/proc/segtruth-outdir"),
    BadOutput("output folder is a file", "DIR", "{WORK}/notes.txt", "notes.txt"),
]

# Folders that hold a user's file: SegTruth never replaces them, whatever --overwrite says.
USER_FOLDERS: dict[str, list[str]] = {
    "report --pictures": ["report", "{MAN}", "-o", "{WORK}/report.html", "--pictures", "{WORK}/userdir"],
    "slices --overwrite": ["slices", "{IMG}", "{SEG}", "-o", "{WORK}/userdir", "--overwrite"],
    "dataset nnunet --overwrite": [
        "dataset", "nnunet", "{MAN}", "-o", "{WORK}/userraw", "--name", "Corpus", "--id", "7", "--channel-names", "CT",
        "--overwrite",
    ],
    "dataset monai --overwrite": ["dataset", "monai", "{MAN}", "-o", "{WORK}/userdl.json", "--overwrite"],
    "dataset sample --overwrite": ["dataset", "sample", "{WORK}/userdir", "--overwrite"],
}  # fmt: skip

# Argument errors: argparse's, in SegTruth's words.
ARGUMENTS: dict[str, list[str]] = {
    "no command": [],
    "unknown command": ["thresholds", "{IMG}"],
    "missing image": ["threshold"],
    "missing output": ["threshold", "{IMG}", "--range", "0", "1"],
    "range not numbers": ["threshold", "{IMG}", "--range", "a", "b", "-o", "{OUT}"],
    "range and method": ["threshold", "{IMG}", "--range", "0", "1", "--method", "otsu", "-o", "{OUT}"],
    "unknown option": ["export", "{IMG}", "{SEG}", "-o", "{OUT}", "--bogus"],
    "islands without a mode": ["islands", "{IMG}", "{SEG}", "-o", "{OUT}"],
    "crop box too short": ["crop", "{IMG}", "{SEG}", "-o", "{WORK}/c.nrrd", "-m", "{OUT}", "--box", "1", "2"],
    "dataset without format": ["dataset"],
    "dataset id not a number": ["dataset", "nnunet", "{MAN}", "-o", "{DIR}", "--name", "X", "--id", "seven"],
    "segment device unknown": ["segment", "{IMG}", "--model", "{MODEL}", "-o", "{OUT}", "--device", "tpu"],
    "slices view unknown": ["slices", "{IMG}", "{SEG}", "-o", "{DIR}", "--view", "oblique"],
    "unknown ROI name": ["export", "{IMG}", "{RS}", "--roi", "Liver", "-o", "{OUT}"],
    "--roi of a labelmap": ["export", "{IMG}", "{SEG2}", "--roi", "a", "-o", "{OUT}"],
    "smooth method unknown": ["smooth", "{IMG}", "{SEG}", "--method", "blur", "-o", "{OUT}"],
    "hollow thickness negative": ["hollow", "{IMG}", "{SEG}", "--thickness", "-1", "-o", "{OUT}"],
    "watershed scale zero": ["watershed", "{IMG}", "{SEG}", "--object-scale", "0", "-o", "{OUT}"],
    "flood-fill point not x,y,z": ["flood-fill", "{IMG}", "--at", "1,2", "-o", "{OUT}"],
    "flood-fill point outside": ["flood-fill", "{IMG}", "--at=500,0,0", "-o", "{OUT}"],
    "local-threshold range reversed": ["local-threshold", "{IMG}", "--at=-5,-5,8", "--range", "60", "0", "-o", "{OUT}"],
    "fast-marching volume zero": [
        "fast-marching",
        "{IMG}",
        "{SEG}",
        "--segment",
        "a",
        "--max-volume",
        "0",
        "-o",
        "{OUT}",
    ],
    "scissors polygon on a line": [
        "scissors",
        "{IMG}",
        "{SEG}",
        "--segment",
        "a",
        "--polygon=0,0,0;1,1,1;2,2,2",
        "-o",
        "{OUT}",
    ],
}


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    names: str | None  # what the error must mention
    exit_code: int = 1


def _cases() -> list[Case]:
    cases = []
    for command, template in COMMANDS.items():
        slots = {slot for slot in VARIANTS if "{" + slot + "}" in " ".join(template)}
        for slot in sorted(slots):
            for variant in VARIANTS[slot]:
                info_ok = command.startswith("info") and variant.valid_alone
                if variant.name in ACCEPTED.get(command, ()):
                    continue
                cases.append(
                    Case(
                        f"{command}: {variant.name}",
                        (slot, variant.name, *template),
                        variant.names or "",
                        0 if info_ok else 1,
                    )
                )
        for output in OUTPUTS:
            if "{" + output.slot + "}" not in " ".join(template) or (output.extra and command not in NO_OVERWRITE):
                continue
            argv = [a.replace("{" + output.slot + "}", output.value) for a in template] + list(output.extra)
            cases.append(Case(f"{command}: {output.name}", ("", "", *argv), output.names))
    for name, argv in USER_FOLDERS.items():
        cases.append(
            Case(f"user folder kept: {name}", ("", "", *argv), "userd" if "userdir" in " ".join(argv) else "user")
        )
    for name, argv in ARGUMENTS.items():
        cases.append(Case(f"arguments: {name}", ("", "", *argv), None))
    return cases


CASES = _cases()


def _work_folder(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, symlinks=True)
    return target


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple[Outcome, Case, dict, dict, str]]:
    """Run every case (two at a time), each in its own copy of a work folder that holds a user's files."""
    root = tmp_path_factory.mktemp("corpus")
    good = make_good_case(root / "good")
    bad = make_variants(root / "bad")
    template = root / "work-template"
    template.mkdir()
    (template / "notes.txt").write_text("a user's notes\n")
    (template / "notes.nii.gz").write_bytes(b"a user's precious annotation")
    (template / "userdir").mkdir()
    (template / "userdir" / "keep.txt").write_text("keep me\n")
    (template / "userraw" / "Dataset007_Corpus").mkdir(parents=True)
    (template / "userraw" / "Dataset007_Corpus" / "keep.txt").write_text("keep me\n")
    (template / "userdl").mkdir()
    (template / "userdl" / "keep.txt").write_text("keep me\n")
    inputs_before = {**snapshot(root / "good"), **{"bad/" + k: v for k, v in snapshot(root / "bad").items()}}

    def run(index_case: tuple[int, Case]):
        index, case = index_case
        slot, variant, *template_argv = case.argv
        work = _work_folder(template, root / f"work-{index:04d}")
        values = {**good, "WORK": str(work), "OUT": str(work / "out.nii.gz"), "DIR": str(work / "outdir")}
        if slot:
            values[slot] = bad[(slot, variant)]
        argv = [a.format(**values) for a in template_argv]
        before = snapshot(work)
        outcome = run_cli(argv, timeout=180, cwd=work)
        mention = case.names if case.names is not None else ""
        if slot and not mention:
            mention = Path(values[slot]).name
        return case.id, (outcome, case, before, snapshot(work), mention)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, enumerate(CASES)))
    inputs_after = {**snapshot(root / "good"), **{"bad/" + k: v for k, v in snapshot(root / "bad").items()}}
    assert inputs_after == inputs_before, "a command changed one of its inputs"
    return results


def test_the_corpus_is_large():
    assert len(CASES) >= 300, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(corpus, case: Case):
    outcome, case, before, after, mention = corpus[case.id]
    assert not outcome.timed_out, outcome.describe()
    assert not outcome.killed_by_signal, outcome.describe()
    assert outcome.returncode == case.exit_code, outcome.describe()
    if case.exit_code == 0:  # info describes a file that is bad only for what the other commands do with it
        assert outcome.stdout.startswith(outcome.stdout.split(":")[0]) and not outcome.stderr.strip(), (
            outcome.describe()
        )
        return
    assert outcome.one_error_line, outcome.describe()
    assert "this is a bug" not in outcome.stderr, outcome.describe()
    if mention:
        assert mention in outcome.error_lines[0], outcome.describe()
    assert after == before, f"the work folder changed: {sorted(set(after) ^ set(before))}\n{outcome.describe()}"
