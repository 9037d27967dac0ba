"""COP-GEN-Beta's modalities, in the fixed order of the lists its network takes and returns (importable without
torch)."""

MODALITIES: tuple[str, ...] = ("dem", "s1_rtc", "s2_l1c", "s2_l2a")
