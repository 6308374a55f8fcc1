//! The plugin config (`config::PluginConfig::parse`): YAML, option types, our own keys
//! and their mistyped look-alikes, environment expansion. The inner plugin is /bin/true.
//! Properties: an accepted config never forwards one of our own options, and its inner
//! plugin path is absolute.
#![no_main]

use std::path::Path;

use gpbackup_age_plugin::config::{PluginConfig, OWN_OPTIONS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data.get(1..).unwrap_or_default());
    let text = if data.first().is_some_and(|m| m & 1 == 1) {
        format!("executablepath: /usr/local/bin/gpbackup_age_plugin\noptions:\n  inner_executablepath: /bin/true\n{text}")
    } else {
        text.into_owned()
    };
    if let Ok(config) = PluginConfig::parse(&text, Path::new("/fuzz/plugin_config.yaml")) {
        assert!(config.inner_executable.is_absolute());
        for key in OWN_OPTIONS {
            assert!(!config.passthrough.contains_key(*key), "{key} forwarded");
        }
        assert!(!config.passthrough.contains_key("backup_plugin_version"));
    }
});
