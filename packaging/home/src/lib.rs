//! `home_dir()`, the one item of the `home` crate that `which` uses, from `$HOME` only
//! (see Cargo.toml for why this crate replaces the published one).

use std::path::PathBuf;

/// The home directory: `$HOME` when it is set and not empty, else `None` (never a
/// lookup in the user database).
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}
