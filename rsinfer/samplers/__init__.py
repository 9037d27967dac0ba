"""Samplers: pure functions over tensors (torch only).

No hidden state: any multistep history is passed in and returned. Diffusion ODE solvers for COP-GEN-Beta and bridge
samplers for DB-CR live in their own modules; pipelines map user-facing sampler names to them.
"""
