//! Everything that runs `go`, one file per kind of run:
//!
//! - `command.rs`: starting go (a go that dies with mgo), reporting a go
//!   that cannot start or fails, and handing mgo's command over to go
//!   ([`exec`]).
//! - `env.rs`: [`env()`] (`go env`: the target, the toolchain, GOFLAGS as go
//!   reads them) and the Go versions mgo works with.
//! - `failures.rs`: which test a line of `go test`'s output says failed.
//! - `list.rs`: `go list` queries ([`package_names`], [`sources`]).
//! - `levels.rs`: [`run_levels`], one go per level in parallel, each in
//!   its own process group; the first failure stops the others.
//! - `relay.rs`: the runs' output, read line by line and printed (or kept
//!   back); `merge.rs`, its pure part: which lines to print and how to
//!   mark them (a line the levels share once, as go printed it; a line
//!   some level lacks with the levels that printed it).

mod command;
mod env;
mod failures;
mod levels;
mod list;
mod merge;
mod relay;

pub use command::{child_command, describe_status, exec};
pub use env::{GoEnv, env, version_supported};
pub use failures::failed_test;
pub use levels::{LevelRun, OnFailure, Outcome, Relay, level_command, run_levels};
pub use list::{package_dirs, package_names, sources};
pub use merge::with_level_field;
pub use relay::print_held;
