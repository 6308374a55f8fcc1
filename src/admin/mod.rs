//! The operator commands that sit beside the plugin API: key generation, key rotation,
//! verification and inspection of stored objects.
//!
//! - [`sweep`]: the walk every command over backup sets shares: discovery, progress,
//!   the pool of threads, a call-log line and an error line per object, the summary,
//!   the closing tally. [`rotate`] and [`verify`] are what they do with one object.
//! - [`backup_set`]: which objects make up a gpbackup backup set, derived from gpbackup's
//!   own metadata files read through the inner plugin (inner plugins cannot list).
//! - [`storage`]: the inner plugin as an object store: fetch and put by basename.
//! - [`rotate`]: re-wrapping (or re-encrypting) every object of a backup set, staged or
//!   streaming, with a journal that makes re-runs cheap.
//! - [`verify`]: every object of a backup set decoded end to end into nothing.
//! - [`inspect`]: what one stored object file says about itself.
//! - [`keygen`]: a new identity file, in the format of `age-keygen`.
//! - [`progress`]: the progress bar (terminals only).

pub mod backup_set;
pub mod inspect;
pub mod keygen;
pub mod progress;
pub mod rotate;
pub mod storage;
pub mod sweep;
pub mod verify;
