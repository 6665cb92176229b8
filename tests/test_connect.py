"""How a study starts or joins Ray (unit: the arguments ``ray.init`` gets; the real start is in every study test)."""

from __future__ import annotations

from tuner.cluster import _init_arguments


def test_without_an_address_a_study_starts_its_own_local_instance(monkeypatch):
    # Ray's ray.init() without an address joins the cluster the latest `ray start` on the machine recorded
    # (another user's, or another test's): a local study must never end up there.
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    kwargs = _init_arguments(None, dashboard=False, num_cpus=2, num_gpus=None, preload=())
    assert kwargs["address"] == "local" and kwargs["num_cpus"] == 2


def test_a_driver_ray_started_joins_the_cluster_ray_gave_it(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # what `ray job submit` sets for the driver it starts
    assert "address" not in _init_arguments(None, dashboard=False, num_cpus=None, num_gpus=None, preload=())


def test_an_address_joins_that_cluster(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert _init_arguments("10.0.0.5:6379", dashboard=False, num_cpus=None, num_gpus=None, preload=())["address"] == (
        "10.0.0.5:6379"
    )
