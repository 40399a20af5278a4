"""fastvae.models.load and fastvae.architectures: a trained model back from its checkpoint (every
architecture and likelihood the training command makes, learned logscales included), the
resolved configuration, and the one-line errors for files that are not checkpoints of a format
this fastvae reads."""

import pytest
import torch

import fastvae
from fastvae import architectures, likelihoods, saved, train
from fastvae.train.checkpoint import CHECKPOINT

SMALL = ["--data", "shapes", "--num-train", "128", "--num-test", "32", "--batch-size", "64", "--latent-dim", "4",
         "--eval-samples", "2", "--no-progress", "--no-plots", "--epochs", "1"]
GAUSSIAN = likelihoods.get("gaussian").cli_name
CONTINUOUS = likelihoods.get("continuous_bernoulli").cli_name


def _train(out, *extra):
    assert train.main([*SMALL, "--out", str(out), *extra]) == 0
    return out / CHECKPOINT


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three short runs: the MLP, the conv VAE with a per-pixel learned Gaussian logscale on RGB
    64x64 shapes, and the MLP under the continuous Bernoulli; their checkpoints."""
    base = tmp_path_factory.mktemp("load")
    return {"mlp": _train(base / "mlp", "--hidden", "16"),
            "conv": _train(base / "conv", "--arch", "conv", "--conv-channels", "4,4,4,4", "--image-size", "64",
                           "--channels", "3", "--likelihood", GAUSSIAN, "--logscale", "per-pixel"),
            "cb": _train(base / "cb", "--hidden", "16", "--likelihood", CONTINUOUS)}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "conv", "cb"])
def test_load_gives_the_trained_model(trained, name):
    path = trained[name]
    state = torch.load(path, weights_only=True)
    model = fastvae.models.load(path)
    assert not model.training and model.likelihood == likelihoods.get(state["config"]["likelihood"]).name
    assert tuple(model.input_shape) == tuple(state["config"]["input_shape"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k]), k
    if name == "conv":
        assert model.logscale.shape == model.input_shape and model.logscale.abs().sum() > 0  # learned, per pixel
    x = model.sample(3)
    assert x.shape == (3, *model.input_shape) and x.dtype == torch.float32


@pytest.mark.slow
def test_the_checkpoint_holds_the_resolved_configuration(trained):
    state = torch.load(trained["mlp"], weights_only=True)
    cfg = state["config"]
    assert state[saved.VERSION_KEY] == saved.FORMAT_VERSION
    assert cfg["hidden"] == [16] and cfg["conv_channels"] is None and cfg["input_shape"] == [1, 28, 28]
    assert cfg["num_train"] == 128 and cfg["num_test"] == 32 and cfg["eval_samples"] == 2
    assert cfg["logscale"] is None and cfg["samples"] is None  # do not apply: no scale, the ELBO
    assert cfg["device"] and cfg["eval_rows"] > 0
    conv = torch.load(trained["conv"], weights_only=True)["config"]
    assert conv["conv_channels"] == [4, 4, 4, 4] and conv["hidden"] is None and conv["logscale"] == "per-pixel"
    assert conv["input_shape"] == [3, 64, 64]


def test_defaults_are_resolved_and_resolving_is_idempotent():
    cfg = dict(arch="conv", hidden=None, conv_channels=None, latent_dim=8, activation="relu",
               likelihood=GAUSSIAN, logscale=None, fused=True)
    small, large = architectures.resolve(cfg, (1, 28, 28)), architectures.resolve(cfg, (3, 64, 64))
    assert small["conv_channels"] == [32, 64] and large["conv_channels"] == [32, 32, 64, 64]
    assert small["logscale"] == "learned" and small["input_shape"] == [1, 28, 28]
    assert architectures.resolve(small) == small
    mlp = architectures.resolve(dict(cfg, arch="mlp", likelihood=likelihoods.DEFAULT, logscale=1.0), [784])
    assert mlp["hidden"] == architectures.MLP_HIDDEN and mlp["logscale"] is None
    model = architectures.build(mlp)
    assert isinstance(model, fastvae.models.MLPVAE) and model.hidden == (400,)


def test_the_builder_refuses_what_does_not_fit():
    cfg = dict(arch="mlp", hidden=None, conv_channels=[4], latent_dim=8, activation="relu",
               likelihood=likelihoods.DEFAULT, logscale=None, fused=True)
    with pytest.raises(ValueError, match="--conv-channels is for --arch conv"):
        architectures.resolve(cfg, (1, 28, 28))
    with pytest.raises(ValueError, match="unknown architecture 'transformer'; fastvae builds mlp, conv"):
        architectures.resolve(dict(cfg, arch="transformer"), (1, 28, 28))
    with pytest.raises(ValueError, match="no input_shape"):
        architectures.resolve(dict(cfg, conv_channels=None))
    assert architectures.names() == tuple(a.name for a in architectures.records())


@pytest.mark.slow
def test_load_maps_tensors_where_asked(trained):
    model = fastvae.models.load(trained["mlp"], map_location="cpu")
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_what_is_not_a_checkpoint_is_a_one_line_value_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        fastvae.models.load(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="a directory"):
        fastvae.models.load(tmp_path)
    bad = {"junk.pt": b"not a checkpoint at all", "empty.pt": b""}
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match="cannot read .* it is not a checkpoint") as e:
            fastvae.models.load(tmp_path / name)
        assert "\n" not in str(e.value)
    torch.save({"weights": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="is not a checkpoint of fastvae's training command"):
        fastvae.models.load(tmp_path / "foreign.pt")


@pytest.mark.slow
def test_a_truncated_or_unknown_version_or_mismatched_checkpoint_is_refused(trained, tmp_path):
    raw = trained["mlp"].read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match="cannot read"):
        fastvae.models.load(tmp_path / "cut.pt")
    state = torch.load(trained["mlp"], weights_only=True)
    for version in (2, "1.0"):
        torch.save(dict(state, format_version=version), tmp_path / "future.pt")
        with pytest.raises(ValueError, match=f"format version {version!r}, which this fastvae does not read"):
            fastvae.models.load(tmp_path / "future.pt")
    torch.save(dict(state, config=dict(state["config"], hidden=[17])), tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="its model cannot be rebuilt"):
        fastvae.models.load(tmp_path / "wrong.pt")


def format_0(state):
    """``state`` (a format-1 checkpoint) as the command wrote it before checkpoints had a
    version: no version, defaults as None, no input shape, none of the newer settings."""
    cfg = {k: v for k, v in state["config"].items() if k not in ("input_shape", "held_out", "resize")}
    cfg.update(hidden=None if cfg["hidden"] == [400] else cfg["hidden"], logscale=None, samples=None,
               num_train=None, num_test=None, eval_samples=None, eval_rows=None, device=None)
    return {k: v for k, v in dict(state, config=cfg).items() if k != saved.VERSION_KEY}


@pytest.mark.slow
def test_a_checkpoint_without_a_version_loads_and_resumes(tmp_path):
    ckpt = _train(tmp_path / "old", "--epochs", "2", "--stop-after", "2")
    state = torch.load(ckpt, weights_only=True)
    torch.save(format_0(state), ckpt)
    model = fastvae.models.load(ckpt)
    assert model.hidden == (400,) and tuple(model.input_shape) == (1, 28, 28)
    assert train.main([*SMALL, "--epochs", "2", "--out", str(tmp_path / "old"), "--resume"]) == 0
    assert torch.load(ckpt, weights_only=True)[saved.VERSION_KEY] == saved.FORMAT_VERSION
