//! Configuration: flowtest.toml and scenario files.
