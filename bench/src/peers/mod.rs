//! The runtimes measured beside clustertop by `compare`: the BEAM (an
//! escript, `bench/peers/beam.escript`) and the Rust actor crates actix,
//! ractor and kameo, each written the way its own documentation does.
//!
//! Every peer uses the sizes in [`crate::local::size`] and reports the
//! same result lines as clustertop's own scenarios.

pub(crate) mod actix;
pub(crate) mod kameo;
pub(crate) mod ractor;
