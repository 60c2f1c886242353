"""The ``hf`` rollout backend (aspo.cpu.rollout): verl's protocol, batching, determinism, weights."""

from __future__ import annotations

import asyncio
import inspect
import math
import re

import pytest
import torch

from aspo.cpu import rollout as hf_rollout
from aspo.fixtures import ensure_model


def test_server_answers_every_call_verl_makes_on_a_replica_server():
    from verl.workers.rollout import llm_server, replica

    src = inspect.getsource(replica.RolloutReplica) + inspect.getsource(llm_server.LLMServerClient.generate)
    called = set(re.findall(r"server\.(\w+)\.remote", src))
    assert "generate" in called and "sleep" in called
    missing = sorted(name for name in called if not hasattr(hf_rollout.HFGenerationServer, name))
    assert not missing, f"verl now calls server.{missing}: add them to HFGenerationServer"


def test_adapter_and_replica_implement_verl_abstract_methods():
    assert not getattr(hf_rollout.HFServerAdapter, "__abstractmethods__", set())
    assert not getattr(hf_rollout.HFReplica, "__abstractmethods__", set())


def test_worker_still_pushes_weights_through_the_rollout_adapter():
    from verl.workers import engine_workers

    src = inspect.getsource(engine_workers.ActorRolloutRefWorker.update_weights)
    assert "await self.rollout.update_weights(" in src and "await self.rollout.resume(" in src


@pytest.fixture(scope="module")
def server():
    from verl.workers.config import HFModelConfig, RolloutConfig

    model_dir = str(ensure_model())
    config = RolloutConfig(name="hf", prompt_length=64, response_length=8, seed=3)
    return hf_rollout.HFGenerationServer(config=config, model_config=HFModelConfig(path=model_dir))


def _generate_all(server, prompts, params):
    async def go():
        return await asyncio.gather(
            *[server.generate(request_id=str(i), prompt_ids=p, sampling_params=dict(params)) for i, p in enumerate(prompts)]
        )

    return asyncio.run(go())


PARAMS = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}


def test_concurrent_requests_are_batched_and_return_token_outputs(server):
    prompts = [[1, 5, 6, 7], [1, 8, 9], [1, 5, 6, 7], [1, 10]]
    before = server.batches_run
    outs = _generate_all(server, prompts, PARAMS)
    assert server.batches_run == before + 1, "concurrent requests share one generate() call"
    for out in outs:
        assert 1 <= len(out.token_ids) <= 8
        assert len(out.log_probs) == len(out.token_ids)
        assert all(lp <= 0 for lp in out.log_probs)
        # the actor's entropy of each sampled position (aspo.reuse_rollout_log_probs)
        assert len(out.extra_fields["rollout_entropy"]) == len(out.token_ids)
        assert all(0 <= e <= math.log(server.model.config.vocab_size) + 1e-4 for e in out.extra_fields["rollout_entropy"])
        assert out.stop_reason in ("completed", "length")
        assert out.extra_fields["global_steps"] == server.global_steps


def test_sampling_is_reproducible_for_the_same_weights_version(server):
    prompts = [[1, 5, 6, 7], [1, 8, 9], [1, 10]]
    asyncio.run(server.set_global_steps(3))
    first = [o.token_ids for o in _generate_all(server, prompts, PARAMS)]
    asyncio.run(server.set_global_steps(3))
    again = [o.token_ids for o in _generate_all(server, list(reversed(prompts)), PARAMS)]
    assert first == list(reversed(again)), "arrival order must not change the samples"
    asyncio.run(server.set_global_steps(7))
    other = [o.token_ids for o in _generate_all(server, prompts, PARAMS)]
    assert other != first, "a new weights version draws new samples"


def test_load_weights_replaces_the_policy_and_rejects_foreign_tensors(server):
    state = {k: torch.zeros_like(v) for k, v in server.model.state_dict().items()}
    assert server.load_weights(state, global_steps=11) == len(state)
    assert server.global_steps == 11
    greedy = {"temperature": 0.0, "logprobs": True}
    outs = _generate_all(server, [[1, 5], [1, 6]], greedy)
    # all-zero weights: uniform logits, greedy picks token 0 and log-prob is -log(vocab)
    vocab = server.model.config.vocab_size
    assert outs[0].log_probs[0] == pytest.approx(-torch.log(torch.tensor(float(vocab))).item(), rel=1e-4)
    assert outs[0].extra_fields["rollout_entropy"][0] == pytest.approx(math.log(vocab), rel=1e-4)
    with pytest.raises(RuntimeError, match="same actor_rollout_ref.model.path"):
        server.load_weights({"not.a.weight": torch.zeros(1)})


def test_samples_do_not_depend_on_how_requests_are_batched(server):
    # Four copies of each prompt (GRPO's n): one batch, or split over two batches as under load.
    prompts = [[1, 5, 6, 7]] * 4 + [[1, 8, 9]] * 4
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": False}
    asyncio.run(server.set_global_steps(11))
    together = sorted(map(tuple, (o.token_ids for o in _generate_all(server, prompts, params))))
    asyncio.run(server.set_global_steps(11))
    split = [o.token_ids for o in _generate_all(server, prompts[::2], params)]
    split += [o.token_ids for o in _generate_all(server, prompts[1::2], params)]
    assert together == sorted(map(tuple, split))
    # Copies of one prompt draw different streams, and asking again under the same weights draws new ones.
    again = sorted(map(tuple, (o.token_ids for o in _generate_all(server, prompts, params))))
    assert again != together


def test_per_row_sampler_draws_from_the_warped_softmax():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float32)).repeat(4000, 1)
    sampler = hf_rollout._PerRowSampler(seeds=list(range(4000)), temperature=1.0, top_k=-1, top_p=1.0)
    picks = sampler(None, logits).argmax(-1)
    freq = torch.bincount(picks, minlength=4).float() / 4000
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=freq.dtype), atol=0.03, rtol=0)
    top2 = hf_rollout._PerRowSampler(seeds=list(range(4000)), temperature=1.0, top_k=2, top_p=1.0)
    assert set(top2(None, logits).argmax(-1).tolist()) == {0, 1}


def test_validation_stream_does_not_shift_training_samples(server):
    prompts = [[1, 5, 6, 7]] * 3
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": False}
    asyncio.run(server.set_global_steps(21))
    train_only = [o.token_ids for o in _generate_all(server, prompts, params)]
    asyncio.run(server.set_global_steps(21))
    asyncio.run(server.set_sampling_stream("val"))
    _generate_all(server, prompts, params)  # validation between weight update and the next rollout
    asyncio.run(server.set_sampling_stream("train"))
    after_val = [o.token_ids for o in _generate_all(server, prompts, params)]
    assert after_val == train_only


# ---- asynchronous trainer modes: abort, park, resume (verl's colocate_async protocol) ---------------

@pytest.fixture()
def async_server():
    from verl.workers.config import HFModelConfig, RolloutConfig

    config = RolloutConfig(name="hf", prompt_length=64, response_length=48, seed=3)
    return hf_rollout.HFGenerationServer(config=config, model_config=HFModelConfig(path=str(ensure_model())))


def test_abort_stops_the_running_batch_with_partial_tokens(async_server):
    reqs = [hf_rollout._Request([1, 5, 6, 7], dict(PARAMS, ignore_eos=True), None)]
    key = hf_rollout._sampling_key(reqs[0].params)
    async_server._abort.set()  # as if abort_all_requests arrived during generation
    try:
        (out,) = async_server._generate_batch(key, reqs)
    finally:
        async_server._abort.clear()
    assert out.stop_reason in ("aborted", "completed")  # completed only if the first token was eos
    assert 1 <= len(out.token_ids) < 48 and len(out.log_probs) == len(out.token_ids)
    (full,) = async_server._generate_batch(key, reqs)
    assert full.stop_reason in ("completed", "length")


def test_abort_parks_new_requests_until_resume_and_rejects_when_asked(async_server):
    async def go():
        queued = asyncio.ensure_future(
            async_server.generate(request_id="q", prompt_ids=[1, 5, 6], sampling_params=dict(PARAMS)))
        await asyncio.sleep(0)  # queued, not yet generating (the batch window is still open)
        result = await async_server.abort_all_requests()
        out_q = await queued
        parked = asyncio.ensure_future(
            async_server.generate(request_id="p", prompt_ids=[1, 8, 9], sampling_params=dict(PARAMS)))
        await asyncio.sleep(0.3)
        assert not parked.done(), "a request arriving while paused must wait for resume_generation"
        await async_server.resume_generation()
        out_p = await asyncio.wait_for(parked, timeout=120)
        await async_server.abort_all_requests(reject_request=True)
        rejected = await asyncio.wait_for(
            async_server.generate(request_id="r", prompt_ids=[1, 8], sampling_params=dict(PARAMS)), timeout=5)
        await async_server.resume_generation()
        return result, out_q, out_p, rejected

    result, out_q, out_p, rejected = asyncio.run(go())
    assert result["aborted_count"] == 1
    assert out_q.stop_reason == "aborted" and out_q.token_ids == []
    assert out_p.stop_reason in ("completed", "length") and out_p.token_ids
    assert rejected.stop_reason == "aborted" and rejected.token_ids == []


def test_verl_async_client_resumes_aborted_requests_with_the_partial_tokens():
    # The contract our aborted outputs rely on: verl's FullyAsyncLLMServerClient resubmits
    # prompt + tokens so far after an "aborted" stop reason.
    import inspect

    from verl.workers.rollout.llm_server import FullyAsyncLLMServerClient

    src = inspect.getsource(FullyAsyncLLMServerClient.generate)
    assert "prompt_ids=prompt_ids + final_output.token_ids" in src
    assert 'output.stop_reason not in ("aborted", "abort")' in src


# ---- standalone rollout (verl's separate_async): weights from a checkpoint engine -----------------


def test_adapter_loads_weights_streamed_by_a_checkpoint_engine():
    # In a standalone replica verl's CheckpointEngineWorker hands the adapter the engine's *async*
    # generator (aspo.cpu.checkpoint_engine.receive_weights); colocated, the trainer's plain one.
    from verl.workers.config import HFModelConfig

    loaded = []

    class Remote:
        async def _load(self, state_dict, global_steps):
            loaded.append((state_dict, global_steps))

        def remote(self, state_dict, global_steps):
            return self._load(state_dict, global_steps)

    adapter = hf_rollout.HFServerAdapter(
        config=_rollout_config(), model_config=HFModelConfig(path=str(ensure_model())), device_mesh=None, replica_rank=0
    )
    adapter._server = type("Server", (), {"load_weights": Remote()})()
    weights = {"a": torch.ones(2, 3), "b": torch.arange(4.0)}

    async def stream():
        for name, tensor in weights.items():
            yield name, tensor

    asyncio.run(adapter.update_weights(stream(), global_steps=5))
    asyncio.run(adapter.update_weights(iter(weights.items()), global_steps=6))
    assert [steps for _, steps in loaded] == [5, 6]
    for state_dict, _ in loaded:
        assert list(state_dict) == ["a", "b"] and all(torch.equal(state_dict[k], weights[k]) for k in weights)


def test_replica_launches_standalone_and_refuses_other_modes():
    src = inspect.getsource(hf_rollout.HFReplica.launch_servers)
    assert "RolloutMode.STANDALONE" in src
    from verl.workers.rollout import replica

    # verl starts a standalone replica's workers (CheckpointEngineWorker) before launch_servers,
    # and the worker builds our adapter with replica_rank=: what launch_servers relies on.
    assert "self.workers = worker_group.workers\n        await self.launch_servers()" in inspect.getsource(replica.RolloutReplica.init_standalone)
    assert "replica_rank=self.replica_rank" in inspect.getsource(replica.RolloutReplica.get_ray_class_with_init_args)
    r = hf_rollout.HFReplica(replica_rank=0, config=_rollout_config(), model_config=None, gpus_per_node=1)
    r.rollout_mode, r.workers = replica.RolloutMode.COLOCATED, ["worker"]
    with pytest.raises(ValueError, match="colocated with the trainer or as a standalone rollout"):
        asyncio.run(r.launch_servers())


def _rollout_config():
    from verl.workers.config import RolloutConfig

    return RolloutConfig(name="hf", tensor_model_parallel_size=1)
