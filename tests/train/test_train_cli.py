"""``plait train``: every flag, the run folder, Ctrl-C and --resume (exact), progress in a pipe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import load_safetensors
from plait.core.cli import main

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 20


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((240, 20)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    return path


def _config(folder):
    return json.loads((folder / "config.json").read_text())


def test_train_a_text_model_then_generate(tmp_path, text, capsys):
    out = tmp_path / "run"
    assert main(["train", "gpt-nano", "--data", str(text), "--epochs", "1", "--seq-len", "16", "--out", str(out)]) == 0
    cfg = _config(out)
    assert cfg["model_args"]["vocab_size"] == len(set(TEXT))
    assert cfg["metadata"]["chars"] == "".join(sorted(set(TEXT)))
    assert np.isfinite(cfg["metadata"]["final"]["val_loss"])
    assert not (out / "checkpoint").exists()  # the finished model folder supersedes the run's checkpoint
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "To", "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.startswith("To")


def test_train_with_a_tokenizer_file(tmp_path, text, capsys):
    tokenizers = pytest.importorskip("plait.tokenizers")
    tok_path = tmp_path / "bpe.json"
    tokenizers.ByteLevelBPETokenizer().train(TEXT, 270).save(tok_path)
    out = tmp_path / "bpe-run"
    assert main(["train", "gpt-nano", "--data", str(text), "--tokenizer", str(tok_path), "--seq-len", "8",
                 "-o", str(out)]) == 0
    assert _config(out)["model_args"]["vocab_size"] == 270 and (out / "tokenizer.json").is_file()
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "To be", "--max-new-tokens", "3", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("To be")


def test_a_classifier_infers_input_size_and_classes_and_holds_out_a_split(tmp_path, arrays):
    out = tmp_path / "mlp"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--epochs", "2", "--val-split", "0.25"]) == 0
    cfg = _config(out)
    assert cfg["model_args"]["sizes"][0] == 20 and cfg["model_args"]["sizes"][-1] == 3  # from the arrays
    final = cfg["metadata"]["final"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(final)
    assert cfg["metadata"]["steps"] == 2 * 6  # 180 training samples (75%) in batches of 32
    assert isinstance(zoo.load(out), type(zoo.create("mlp")))


def test_images_infer_channels_size_and_classes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "img.npz", x_train=x, y_train=rng.integers(0, 4, 40), x_test=x[:8], y_test=rng.integers(0, 4, 8))
    out = tmp_path / "cnn"
    assert main(["train", "cnn-digits", "--data", str(tmp_path / "img.npz"), "-o", str(out), "--batch-size", "8"]) == 0
    args = _config(out)["model_args"]
    assert (args["in_channels"], args["image_size"], args["num_classes"]) == (2, 8, 4)


def test_val_split_zero_trains_on_everything(tmp_path, arrays):
    out = tmp_path / "all"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--val-split", "0"]) == 0
    final = _config(out)["metadata"]["final"]
    assert "val_loss" not in final and _config(out)["metadata"]["steps"] == 8  # 240 / 32 rounded up


def test_model_args_are_json_and_unknown_ones_are_refused(tmp_path, arrays, capsys):
    out = tmp_path / "ma"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--model-arg", "sizes=[20, 7, 3]",
                 "--model-arg", "activation=gelu", "--dropout", "0.25"]) == 0
    args = _config(out)["model_args"]
    assert args["sizes"] == [20, 7, 3] and args["activation"] == "gelu" and args["dropout"] == 0.25
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(tmp_path / "x"), "--model-arg", "widht=3"]) == 1
    assert "has no argument(s) widht" in capsys.readouterr().err
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(tmp_path / "x"), "--model-arg", "=3"]) == 1
    assert "expects KEY=VALUE" in capsys.readouterr().err
    assert main(["train", "resnet8", "--data", str(arrays), "-o", str(tmp_path / "x"), "--dropout", "0.1"]) == 1
    assert "has no dropout argument" in capsys.readouterr().err


def test_max_steps_and_max_time_stop_early(tmp_path, arrays):
    out = tmp_path / "steps"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--epochs", "5", "--max-steps", "3"]) == 0
    meta = _config(out)["metadata"]
    assert meta["steps"] == 3 and meta["stopped"] == "--max-steps 3"
    out = tmp_path / "time"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--epochs", "1000", "--max-time", "0.2",
                 "--batch-size", "4"]) == 0
    meta = _config(out)["metadata"]
    assert meta["stopped"] == "--max-time 0.2" and meta["steps"] < 1000 * 54


def test_optimizer_schedule_and_clipping_flags_are_applied(tmp_path, arrays, capsys):
    out = tmp_path / "opt"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--optimizer", "sgd", "--lr", "0.1",
                 "--weight-decay", "0.01", "--clip-grad-norm", "0", "--scheduler", "cosine", "--warmup", "2",
                 "--epochs", "2"]) == 0
    meta = _config(out)["metadata"]
    assert meta["train_args"]["optimizer"] == "sgd" and meta["train_args"]["clip_grad_norm"] == 0
    assert meta["final_lr"][0] == pytest.approx(0.0, abs=1e-12)  # cosine to zero at the last step
    out = tmp_path / "warm"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--warmup", "1000", "--lr", "0.3"]) == 0
    assert 0.1 < _config(out)["metadata"]["final_lr"][0] < 0.3  # still warming up: between lr/3 and lr
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(tmp_path / "x"), "--optimizer", "adamm"]) == 1
    assert "unknown optimizer 'adamm'; did you mean 'adam'" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value"), [("--epochs", "0"), ("--batch-size", "0"), ("--val-split", "1"),
                                             ("--lr", "-1"), ("--max-steps", "0"), ("--log-every", "0")])
def test_out_of_range_numbers_are_refused(tmp_path, arrays, capsys, flag, value):
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(tmp_path / "x"), flag, value]) == 1
    err = capsys.readouterr().err
    assert err == f"plait train: error: {flag} {float(value) if flag in ('--val-split', '--lr', '--log-every') else value} " \
                  "is out of range (see plait train --help)\n"
    assert not (tmp_path / "x").exists()


def test_an_existing_out_needs_overwrite(tmp_path, arrays, capsys):
    out = tmp_path / "keep"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out)]) == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--seed", "1"]) == 1
    assert f"{out} exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before  # untouched
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--seed", "1", "--overwrite"]) == 0
    assert (out / "model.safetensors").read_bytes() != before
    assert _config(out)["metadata"]["train_args"]["seed"] == 1


def test_overwrite_replaces_only_model_folders(tmp_path, arrays, capsys):
    other = tmp_path / "documents"
    other.mkdir()
    (other / "precious.txt").write_text("x")
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(other), "--overwrite"]) == 1
    assert "is not a model folder or plait train run" in capsys.readouterr().err
    assert (other / "precious.txt").read_text() == "x" and len(list(other.iterdir())) == 1


def test_bad_data_is_a_clear_error_printed_once(tmp_path, text, capsys):
    np.savez(tmp_path / "bad.npz", images=np.zeros((4, 3)))
    assert main(["train", "mlp", "--data", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("plait train: error: --data") and "expected arrays x_train/y_train" in err
    assert err.count("plait train") == 1
    assert main(["train", "mlp", "--data", str(text), "-o", str(tmp_path / "x")]) == 1
    assert "a text file trains a language model" in capsys.readouterr().err
    assert main(["train", "mlp", "--data", str(tmp_path / "none.npz"), "-o", str(tmp_path / "x")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["train"]) == 1
    assert "MODEL and --data are required" in capsys.readouterr().err


# -- in a real process: progress in a pipe, Ctrl-C and --resume -----------------------------------
def _plait(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from plait.core.cli import main; sys.exit(main())", *args]


def _env():
    return {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}


def test_progress_lines_in_a_pipe(tmp_path, arrays):
    out = subprocess.run(_plait("train", "mlp", "--data", str(arrays), "-o", str(tmp_path / "p"), "--epochs", "2",
                                "--batch-size", "4", "--log-every", "0.001"),
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert "\r" not in out.stderr
    assert sum(line.startswith("epoch 1/2 step ") for line in lines) >= 5  # the timed lines
    assert sum(line.startswith("epoch ") and "val_loss" in line for line in lines) == 2  # one per epoch


@pytest.fixture
def big_arrays(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6000, 32)).astype(np.float32)
    path = tmp_path / "big.npz"
    np.savez(path, x=x, y=(x[:, :3] > 0).sum(1).astype(np.int64))
    return path


def test_ctrl_c_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(tmp_path, big_arrays):
    common = ["--data", str(big_arrays), "--epochs", "2", "--batch-size", "4", "--model-arg", "sizes=[32, 64, 4]",
              "--dropout", "0.1", "--scheduler", "cosine", "--warmup", "50", "--seed", "3"]
    full = subprocess.run(_plait("train", "mlp", "-o", str(tmp_path / "full"), *common),
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert full.returncode == 0, full.stderr

    run = tmp_path / "run"
    proc = subprocess.Popen(_plait("train", "mlp", "-o", str(run), "--log-every", "0.05", *common),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    first = proc.stderr.readline()  # the first progress line: training is under way (2 x 1350 steps to go)
    assert "step" in first, first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"resumable checkpoint saved to {run / 'checkpoint'}" in err
    assert f"continue with: plait train --resume {run}" in err
    assert (run / "checkpoint").is_dir() and not (run / "config.json").exists()

    resumed = subprocess.run(_plait("train", "--resume", str(run)), capture_output=True, text=True, env=_env(),
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_safetensors(tmp_path / "full" / "model.safetensors"), load_safetensors(run / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert _config(run)["metadata"]["steps"] == _config(tmp_path / "full")["metadata"]["steps"]


def test_resume_of_a_folder_without_a_plait_train_checkpoint_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 1
    assert "no checkpoint here" in capsys.readouterr().err


def _weights(folder):
    return load_safetensors(folder / "model.safetensors")


def test_clip_grad_norm_bounds_every_step(tmp_path, arrays):
    from plait.core import manual_seed

    out = tmp_path / "clip"
    assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--optimizer", "sgd", "--lr", "1",
                 "--clip-grad-norm", "1e-6", "--val-split", "0", "--model-arg", "sizes=[20, 16, 3]"]) == 0
    manual_seed(0)  # the run's seed: the same initial weights
    start = zoo.create("mlp", sizes=[20, 16, 3]).state_dict()
    moved = np.sqrt(sum(float(((w - start[k]) ** 2).sum()) for k, w in _weights(out).items()))
    assert 0 < moved <= 8 * 1.0 * 1e-6 * 1.001  # 8 SGD steps of at most lr * clip each


def test_weight_decay_shrinks_the_weights(tmp_path, arrays):
    norms = []
    for decay in ("0", "0.5"):
        out = tmp_path / f"wd{decay}"
        assert main(["train", "mlp", "--data", str(arrays), "-o", str(out), "--optimizer", "sgd", "--lr", "0.1",
                     "--weight-decay", decay, "--model-arg", "sizes=[20, 16, 3]"]) == 0
        norms.append(sum(float((w ** 2).sum()) for w in _weights(out).values()))
    assert norms[1] < 0.9 * norms[0]
