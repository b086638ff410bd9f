"""Importing plait.tokenizers loads nothing it does not need yet: the regex engine comes with
the first tokenizer that splits text, the progress bar (tqdm) with training, and the
command-line module with the ``plait`` command."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def test_import_loads_no_regex_engine_no_progress_bar_and_no_cli():
    loaded = _modules_after("import plait.tokenizers")
    assert "plait.tokenizers.bpe" in loaded  # the check would notice a failed import
    assert "regex" not in loaded
    assert "tqdm" not in loaded
    assert "plait.tokenizers.cli" not in loaded


def test_a_tokenizer_brings_the_regex_engine():
    assert "regex" in _modules_after("import plait.tokenizers\nplait.tokenizers.ByteLevelBPETokenizer()")


def test_training_still_shows_the_bar_on_request(capsys):
    from plait.tokenizers import ByteLevelBPETokenizer

    ByteLevelBPETokenizer().train(["abababab cdcd"], vocab_size=258, show_progress=True)
    assert "BPE merges" in capsys.readouterr().err
    assert "tqdm" in sys.modules
