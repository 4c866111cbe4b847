//! The simulation's test entry: the regression seeds first, then the
//! seeded runs.
//!
//! - `cargo test -p sync-sim` runs 200 seeds (0..200);
//! - `SYNC_SIM_SEEDS=<n>` runs n seeds instead (`cargo xtask soak` sets
//!   10,000);
//! - `SIM_SEED=<n>` replays exactly that seed, and `SIM_TRACE=1` records a
//!   step-by-step trace printed with a failure;
//! - `SIM_STEPS=<n>` changes the random steps per run (200 by default).

mod seeds;
