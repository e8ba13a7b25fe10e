"""Generative synthesis (FermiNets): generator G, inquisitor I, objective U, requirements 1_r, the loop.

    from toolkit.synthesis import SynthesisConfig, run_synthesis, generate
    result = run_synthesis(SynthesisConfig(prototype="resnet20", requirements=("accuracy_drop<=1.0pt",)),
                           out_dir="runs/fmnist", db="ferminet.db")
"""
from toolkit.synthesis.generate import GenerateResult, generate, parse_seeds
from toolkit.synthesis.generator import Generator
from toolkit.synthesis.assess import CandidateResult
from toolkit.synthesis.config import STRATEGIES, SynthesisConfig
from toolkit.synthesis.loop import SynthesisResult, run_synthesis
from toolkit.synthesis.objective import OBJECTIVES, netscore, score
from toolkit.synthesis.requirements import Requirement, parse_requirement, parse_requirements
from toolkit.synthesis.space import DecisionSpace

__all__ = ["CandidateResult", "DecisionSpace", "GenerateResult", "Generator", "OBJECTIVES", "Requirement",
           "STRATEGIES", "SynthesisConfig", "SynthesisResult", "generate", "netscore", "parse_requirement",
           "parse_requirements", "parse_seeds", "run_synthesis", "score"]
