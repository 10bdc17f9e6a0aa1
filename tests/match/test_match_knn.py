"""The kNN datastore for `n3 match`: search and probabilities against brute force, self-exclusion,
interpolation, files and their errors."""
import numpy as np
import pytest
import torch

from n3cli.errors import CheckpointError
from n3cli.match.datastore import (
    Datastore,
    datastore_path,
    load_datastore,
    normalise,
    save_datastore,
)
from n3cli.match.knn_vote import KnnScorer, build_datastore, combine_logits, knn_weights


def random_store(n=300, dim=16, seed=0, k=7, t=0.1) -> Datastore:
    rng = np.random.default_rng(seed)
    keys = normalise(rng.standard_normal((n, dim)))
    return Datastore(keys, rng.integers(0, 2, n), rng.integers(0, 30, n), k, t)


def brute_force(store: Datastore, q: np.ndarray, k: int, t: float, exclude=None) -> np.ndarray:
    keys = store.keys.astype(np.float32)
    out = []
    for i, v in enumerate(normalise(q)):
        sims = keys @ v
        ok = np.ones(len(keys), bool) if exclude is None else store.groups != exclude[i]
        idx = np.flatnonzero(ok)[np.argsort(-sims[ok], kind="stable")[:k]]
        w = np.exp((sims[idx] - sims[idx].max()) / t)
        out.append((w * store.labels[idx]).sum() / w.sum())
    return np.array(out)


def test_knn_probability_equals_brute_force():
    store = random_store()
    q = np.random.default_rng(1).standard_normal((50, 16))
    np.testing.assert_allclose(store.prob(q), brute_force(store, q, 7, 0.1), atol=1e-5)
    np.testing.assert_allclose(store.prob(q, k=20, temperature=0.5), brute_force(store, q, 20, 0.5), atol=1e-5)


def test_the_querys_own_pair_is_excluded():
    store = random_store()
    groups = np.random.default_rng(2).integers(0, 30, 50)
    q = np.random.default_rng(1).standard_normal((50, 16))
    np.testing.assert_allclose(store.prob(q, exclude=groups), brute_force(store, q, 7, 0.1, groups), atol=1e-5)
    # a query equal to an entry finds it first, unless that entry's pair is excluded
    sims, idx = store.search(store.keys[:5].astype(np.float32), 3)
    assert list(idx[:, 0]) == [0, 1, 2, 3, 4]
    sims, idx = store.search(store.keys[:5].astype(np.float32), 3, exclude=store.groups[:5])
    assert all((store.groups[idx[i]] != store.groups[i]).all() for i in range(5))


def test_training_weights_are_one_minus_p_true_to_the_gamma():
    store = random_store(dim=8)
    feats = torch.randn(2, 8, 10)
    labels = torch.randint(0, 2, (2, 10)).float()
    w = knn_weights(store, feats, labels, np.array([3, 4]), gamma=2.0)
    p = store.prob(feats.transpose(1, 2).reshape(20, 8).numpy(), exclude=np.repeat([3, 4], 10)).reshape(2, 10)
    p_true = np.where(labels.numpy() > 0.5, p, 1 - p)
    np.testing.assert_allclose(w.numpy(), (1 - p_true) ** 2, atol=1e-6)
    assert torch.equal(knn_weights(None, feats, labels, np.array([3, 4]), 2.0), torch.ones(2, 10))


def test_lambda_zero_reproduces_the_network_exactly_and_one_is_pure_knn():
    from n3cli.match.evaluate import network_pose
    from n3cli.match.synthetic import make_pair
    from n3cli.models.registry import build_model

    torch.manual_seed(0)
    net = build_model("cnnet", {"channels": 16, "blocks": 2, "n3": True, "k": 2}).eval()
    pairs = [(i, make_pair(np.random.default_rng(i), 64)) for i in range(6)]
    store = build_datastore(net, pairs[:4], per_pair=20)
    assert len(store) == 80 and store.dim == 16 and set(np.unique(store.groups)) == {0, 1, 2, 3}
    p = pairs[5][1]
    plain, _ = network_pose(net, p.xa, p.xb)
    zero, _ = network_pose(net, p.xa, p.xb, KnnScorer(store, 0.0))
    assert np.array_equal(plain, zero)
    ones = KnnScorer(store, 1.0).logits(net, p.xa, p.xb)
    from n3cli.match.knn_vote import embed

    p_knn = store.prob(embed(net, p.xa, p.xb)[1])
    np.testing.assert_allclose(1 / (1 + np.exp(-ones)), np.clip(p_knn, 1e-7, 1 - 1e-7), atol=1e-5)
    assert np.array_equal(combine_logits(plain, p_knn, 0.0), plain)


def test_a_gain_needs_at_least_one_validation_pair_of_improvement():
    from n3cli.match.knn_vote import has_gain

    assert has_gain(0.985, 0.965, 100)  # two pairs' worth
    assert has_gain(0.975, 0.965, 100)  # exactly one pair below 5 degrees instead of above 10
    assert not has_gain(1.0, 0.995, 100)  # one pair across one bin edge: noise
    assert not has_gain(0.96, 0.965, 100)


def test_datastore_files_round_trip_and_bad_files_fail_in_one_line(tmp_path):
    store = random_store()
    store.meta = {"model": "m"}
    f = tmp_path / "m.knn.safetensors"
    save_datastore(f, store)
    back = load_datastore(f)
    assert np.array_equal(back.keys, store.keys) and np.array_equal(back.labels, store.labels)
    assert (back.k, back.temperature, back.meta) == (7, 0.1, {"model": "m"})
    assert datastore_path(tmp_path / "m.safetensors") == f
    for bad in (tmp_path / "missing.knn.safetensors", tmp_path / "junk.knn.safetensors"):
        if bad.name.startswith("junk"):
            bad.write_bytes(b"not a datastore")
        with pytest.raises(CheckpointError) as e:
            load_datastore(bad)
        assert bad.name in str(e.value) and "\n" not in str(e.value)


def test_large_stores_use_an_ivf_index_that_agrees_with_exact_search(monkeypatch):
    from n3cli.match import datastore

    rng = np.random.default_rng(0)
    centres = normalise(rng.standard_normal((20, 16)))
    keys = normalise(centres[rng.integers(0, 20, 4000)] + 0.05 * rng.standard_normal((4000, 16)))
    exact = Datastore(keys, rng.integers(0, 2, 4000), np.arange(4000))
    monkeypatch.setattr(datastore, "EXACT_MAX", 1000)
    approx = Datastore(keys, exact.labels, exact.groups)
    import faiss

    assert isinstance(approx.index(), faiss.IndexIVFFlat)
    q = keys[:200].astype(np.float32) + 0.01
    agree = (approx.search(q, 1)[1][:, 0] == exact.search(q, 1)[1][:, 0]).mean()
    assert agree > 0.95


def tiny_config(**knn):
    from n3cli.match.train import validate_match_config

    return validate_match_config({"name": "t", "model": {"args": {"channels": 8, "blocks": 2, "n3": True}},
                                  "data": {"matches": 64, "batch": 2, "val_pairs": 3, "val_matches": 100, "pool": 5},
                                  "optim": {"steps": 6, "essential_after": 100}, "val_every": 6,
                                  "knn": {"refresh_every": 2, "per_pair": 4, "store_pairs": 50,
                                          "store_per_pair": 10, **knn}}, "t")


@pytest.mark.slow
def test_reweighted_training_and_the_shipped_datastore_load_with_the_model(tmp_path):
    from n3cli.api import load_matcher
    from n3cli.match.train import train_match
    from n3cli.store.checkpoint import load_model

    final = train_match(tiny_config(reweight=True, store=True), tmp_path / "run", progress=False)
    info = load_model(final).info
    knn = info.extra["knn"]
    assert info.extra["training"]["knn_reweight"] is True and info.extra["training"]["pool"] == 5
    assert knn["entries"] == 5 * 10  # the pool holds 5 pairs: the store covers exactly them
    assert (tmp_path / "run" / "model.knn.safetensors").is_file()
    store = load_datastore(tmp_path / "run" / "model.knn.safetensors")
    assert sorted(set(store.groups.tolist())) == [0, 1, 2, 3, 4] and store.dim == 8
    net, name, scorer, warning = load_matcher(final, knn=True)
    assert scorer is not None and scorer.lam == knn["lambda"] and warning is None
    assert load_matcher(final, knn=False)[2] is None
    # a datastore that does not belong to the model: an error when asked for, else a warning
    save_datastore(tmp_path / "run" / "model.knn.safetensors", random_store(dim=8))
    with pytest.raises(CheckpointError, match="does not match its model"):
        load_matcher(final, knn=True)
    (tmp_path / "run" / "model.knn.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_matcher(final, knn=True)
    _, _, scorer, warning = load_matcher(final, knn=None)
    assert scorer is None and "matching without kNN" in warning


def test_a_model_without_a_datastore_refuses_knn_in_one_line(tmp_path):
    from click.testing import CliRunner

    from n3cli.cli.main import cli
    from n3cli.match.train import train_match

    final = train_match(tiny_config(), tmp_path / "run", progress=False)
    r = CliRunner().invoke(cli, ["match", "a.png", "b.png", "-o", str(tmp_path / "m.json"), "-m", str(final), "--knn"])
    assert r.exit_code != 0 and "carries no kNN datastore" in r.output
    assert not (tmp_path / "m.json").exists()
