//! The orchestrator shared by `flowtest run` and the canary.
