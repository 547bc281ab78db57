"""The FourM encoder-decoder, its config, size presets and the batch format it reads."""
from fourm.model.batch import Batch, ModalityTokens, batch_to, count_tokens
from fourm.model.config import FourMConfig
from fourm.model.fourm import DecodeState, EncoderOutput, FourM, FourMOutput
from fourm.model.presets import PRESETS, preset_config

__all__ = ["Batch", "ModalityTokens", "batch_to", "count_tokens", "FourMConfig", "FourM", "FourMOutput",
           "EncoderOutput", "DecodeState", "PRESETS", "preset_config"]
