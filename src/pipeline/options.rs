//! The pipelines' options as a command builds them from its plugin config: the one
//! place a config's settings become [`EncodeOptions`] and [`DecodeOptions`].

use super::{DecodeOptions, EncodeOptions, DEFAULT_FRAME_SIZE, DEFAULT_MAX_MEMORY};
use crate::config::PluginConfig;

impl EncodeOptions {
    /// A backup's options: the config's compression, workers and memory, in frames of
    /// [`DEFAULT_FRAME_SIZE`].
    pub fn from_config(config: &PluginConfig) -> EncodeOptions {
        EncodeOptions {
            compression: config.compression,
            workers: config.workers,
            frame_size: DEFAULT_FRAME_SIZE,
            max_memory: config.max_memory,
        }
    }
}

impl<'a> DecodeOptions<'a> {
    /// A full restore's options: the config's workers, memory and
    /// `restore_check_sha256`, for the object stored as `expected_name`.
    pub fn from_config(config: &PluginConfig, expected_name: &'a str) -> DecodeOptions<'a> {
        DecodeOptions {
            workers: config.workers,
            expected_name: Some(expected_name),
            ranges: None,
            max_memory: config.max_memory,
            check_sha256: config.restore_check_sha256,
        }
    }

    /// A full check with no config at hand (an operator's file, a backup set's metadata):
    /// `workers` threads, the default memory budget, the SHA-256 checked.
    pub fn checking(expected_name: Option<&'a str>, workers: usize) -> DecodeOptions<'a> {
        DecodeOptions {
            workers,
            expected_name,
            ranges: None,
            max_memory: DEFAULT_MAX_MEMORY,
            check_sha256: true,
        }
    }
}
