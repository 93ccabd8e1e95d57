"""Test helpers shared by the tiers: testbeds, the IET stand-in, netns, builders."""
