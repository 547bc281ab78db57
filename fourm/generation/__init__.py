"""Generation: samplers (MaskGIT, ROAR, autoregressive with KV cache), sampling filters,
classifier-free guidance, and `generate_target` for any modality kind. Also (imported from their
modules): `outputs` (tokens <-> raw values <-> files), `adaptive` (`num_tokens: auto`),
`shards` (batch and single-sample runs behind `fourm generate`)."""
from fourm.generation.chain import check_input, generate_chain, text_target_to_input
from fourm.generation.generate import generate_target
from fourm.generation.guidance import GuidancePass, GuidancePlan, combine, plan_passes
from fourm.generation.samplers import (AutoregressiveSampler, MaskGITSampler, ParallelStep, ROARSampler, SamplingParams,
                                       TokenStep, tokens_per_step)
from fourm.generation.sampling import filter_top_k, filter_top_p, sample_tokens, temperature_at

__all__ = ["generate_target", "generate_chain", "check_input", "text_target_to_input", "GuidancePass", "GuidancePlan", "combine", "plan_passes", "AutoregressiveSampler", "MaskGITSampler",
           "ParallelStep", "ROARSampler", "SamplingParams", "TokenStep", "tokens_per_step", "filter_top_k",
           "filter_top_p", "sample_tokens", "temperature_at"]
