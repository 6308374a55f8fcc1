//! gpbackup_age_plugin: a gpbackup storage plugin that compresses and encrypts every
//! object before handing it to the real storage plugin.
//!
//! The library's public surface:
//! - [`age_file`]: the age v1 format (header, STREAM payload).
//! - [`object`]: our object format inside the age payload (zstd frames and records).
//! - [`pipeline`]: the multithreaded encode and decode pipelines.
//! - [`compression`]: the zstd settings of frames, derived from the frame size.
//! - [`config`], [`keys`]: the plugin config, recipients and identities.
//! - [`cli`]: the command line; [`run`] runs a parsed one.
//!
//! Private to the binary: `inner` (the inner plugin process and its config),
//! `commands` (the plugin API commands), `admin` (the operator commands: keygen,
//! rotate, verify, inspect), `log` (the per-call log file), `message` and `gpbackup`
//! (small helpers with one home each: how messages read, gpbackup's timestamps and
//! object names), `text` (text files as people save them, for the config and the key
//! files). With the `testkit` feature, `testkit` holds what the tests and fuzz targets
//! build their inputs with.

#![forbid(unsafe_code)]

// What a library user needs: the formats' readers and writers, the pipelines, the
// config, key material and the command line. Everything else is the binary's.
pub mod age_file;
pub mod cli;
pub mod compression;
pub mod config;
pub mod keys;
pub mod object;
pub mod pipeline;

mod admin;
mod commands;
mod gpbackup;
mod inner;
mod log;
mod message;
mod text;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use commands::{run, usage_error};
pub use inner::keeper::run_if_requested as run_keeper_if_requested;
pub use message::{error_line, one_line};
