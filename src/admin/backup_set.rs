//! Which objects make up a backup set, found with nothing but the plugin API.
//!
//! Inner plugins cannot list, so the set is derived from gpbackup's own metadata, which
//! gpbackup stored through us like everything else:
//!
//! - `gpbackup_<ts>_config.yaml` (gpbackup's `history.BackupConfig`, marshalled by
//!   yaml.v2, so keys are lower-cased field names): `segmentcount`, `singledatafile`,
//!   `compressed` and `compressiontype`, `withstatistics`, `metadataonly`;
//! - `gpbackup_<ts>_toc.yaml` (`toc.TOC`): `dataentries`, each with the `oid` of a table
//!   whose data was written.
//!
//! From them (file names as in gpbackup's `filepath` package):
//!
//! - coordinator: `gpbackup_<ts>_{config.yaml, metadata.sql, toc.yaml, report,
//!   plugin_config.yaml}`, and `gpbackup_<ts>_statistics.sql` with `withstatistics`;
//! - for each segment content ID `c` in `0..segmentcount`, when the backup has data:
//!   multi-file backups have one data file per table, `gpbackup_<c>_<ts>_<oid><ext>`;
//!   single-data-file backups have `gpbackup_<c>_<ts><ext>` and the segment TOC
//!   `gpbackup_<c>_<ts>_toc.yaml`. `<ext>` is `.gz` (gzip), `.zst` (zstd) or nothing
//!   (`compressed: false`).
//!
//! Older gpbackup versions did not record `segmentcount`; then the segments are counted
//! by probing content IDs 0, 1, … for their first object until one is missing.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

use super::progress::Progress;
use super::storage::Store;
use crate::keys::Keyring;
use crate::pipeline::{self, DecodeOptions};

/// Probing stops here at the latest (no cluster has this many segments).
const MAX_PROBED_SEGMENTS: u32 = 100_000;

/// The fields of gpbackup's config.yaml we need; every one may be absent in some
/// version, and everything else is ignored.
#[derive(Deserialize, Default, Debug)]
struct GpbackupConfig {
    timestamp: Option<serde_yaml::Value>,
    compressed: Option<bool>,
    compressiontype: Option<String>,
    segmentcount: Option<u32>,
    singledatafile: Option<bool>,
    withstatistics: Option<bool>,
    metadataonly: Option<bool>,
}

#[derive(Deserialize, Default, Debug)]
struct Toc {
    #[serde(default)]
    dataentries: Option<Vec<DataEntry>>,
}

#[derive(Deserialize, Debug)]
struct DataEntry {
    oid: u32,
}

/// What gpbackup's metadata says about a backup set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub timestamp: String,
    /// None: not recorded (probe).
    pub segment_count: Option<u32>,
    pub single_data_file: bool,
    /// `.gz`, `.zst` or empty.
    pub extension: String,
    pub with_statistics: bool,
    /// The oids of the tables whose data was written, in TOC order.
    pub oids: Vec<u32>,
}

impl Layout {
    /// Reads config.yaml and toc.yaml text.
    pub fn parse(ts: &str, config_yaml: &str, toc_yaml: &str) -> Result<Layout> {
        let config_name = format!("gpbackup_{ts}_config.yaml");
        let toc_name = format!("gpbackup_{ts}_toc.yaml");
        // An empty document is valid YAML with nothing in it.
        let config: GpbackupConfig = if config_yaml.trim().is_empty() {
            GpbackupConfig::default()
        } else {
            serde_yaml::from_str(config_yaml).map_err(|e| {
                anyhow!(
                    "{config_name}: not a gpbackup config: {}",
                    crate::message::one_line(&e.to_string())
                )
            })?
        };
        if let Some(recorded) = &config.timestamp {
            let recorded = match recorded {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            if !recorded.is_empty() && recorded != ts {
                bail!("{config_name}: records timestamp {recorded}, not {ts}");
            }
        }
        let compressed = config.compressed.unwrap_or(false);
        let extension = if !compressed {
            String::new()
        } else {
            match config.compressiontype.as_deref().map(str::trim) {
                None | Some("") | Some("gzip") => ".gz".into(),
                Some("zstd") => ".zst".into(),
                Some(other) => bail!(
                    "{config_name}: compressiontype '{other}' is not one gpbackup writes (gzip, zstd)"
                ),
            }
        };
        let toc: Toc = if toc_yaml.trim().is_empty() {
            Toc::default()
        } else {
            serde_yaml::from_str(toc_yaml).map_err(|e| {
                anyhow!(
                    "{toc_name}: not a gpbackup TOC: {}",
                    crate::message::one_line(&e.to_string())
                )
            })?
        };
        let mut seen = BTreeSet::new();
        let oids = if config.metadataonly.unwrap_or(false) {
            Vec::new()
        } else {
            toc.dataentries
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.oid)
                .filter(|oid| seen.insert(*oid))
                .collect()
        };
        Ok(Layout {
            timestamp: ts.to_string(),
            segment_count: config.segmentcount.filter(|&n| n > 0),
            single_data_file: config.singledatafile.unwrap_or(false),
            extension,
            with_statistics: config.withstatistics.unwrap_or(false),
            oids,
        })
    }

    /// True when segments wrote anything.
    pub fn has_data(&self) -> bool {
        !self.oids.is_empty()
    }

    /// The first object a segment writes (used to probe for segments).
    pub fn first_segment_object(&self, content: u32) -> Option<String> {
        let ts = &self.timestamp;
        if !self.has_data() {
            None
        } else if self.single_data_file {
            Some(format!("gpbackup_{content}_{ts}_toc.yaml"))
        } else {
            Some(format!(
                "gpbackup_{content}_{ts}_{}{}",
                self.oids[0], self.extension
            ))
        }
    }

    /// Every object of the set for `segments` segments, in the order they are best
    /// processed: data first, then segment TOCs, then the coordinator's files, and
    /// last the two files this list is derived from, so an interrupted run can still
    /// read them.
    pub fn objects(&self, segments: u32) -> Vec<String> {
        let ts = &self.timestamp;
        let ext = &self.extension;
        let mut out = Vec::new();
        if self.has_data() {
            for c in 0..segments {
                if self.single_data_file {
                    out.push(format!("gpbackup_{c}_{ts}{ext}"));
                } else {
                    out.extend(
                        self.oids
                            .iter()
                            .map(|oid| format!("gpbackup_{c}_{ts}_{oid}{ext}")),
                    );
                }
            }
            if self.single_data_file {
                out.extend((0..segments).map(|c| format!("gpbackup_{c}_{ts}_toc.yaml")));
            }
        }
        out.push(format!("gpbackup_{ts}_metadata.sql"));
        if self.with_statistics {
            out.push(format!("gpbackup_{ts}_statistics.sql"));
        }
        out.push(format!("gpbackup_{ts}_report"));
        out.push(format!("gpbackup_{ts}_plugin_config.yaml"));
        out.push(format!("gpbackup_{ts}_toc.yaml"));
        out.push(format!("gpbackup_{ts}_config.yaml"));
        out
    }
}

/// A backup set: its layout, its segment count and every object's basename.
pub struct BackupSet {
    pub layout: Layout,
    pub segments: u32,
    /// True when the segment count was found by probing.
    pub probed: bool,
    pub objects: Vec<String>,
}

/// Reads a (small) object of the set through the normal restore path: decrypted,
/// verified and bound to its name, into memory only.
pub fn read_object(
    store: &Store,
    ts: &str,
    name: &str,
    keyring: &Keyring,
    progress: &Progress,
) -> Result<Vec<u8>> {
    let fetch = store.fetch(ts, name, progress)?;
    let (opened, mut fetch) = fetch.open(keyring)?;
    let mut out = Vec::new();
    let opts = DecodeOptions::checking(Some(name), 1);
    match pipeline::decode_opened(opened.file_key, &mut fetch.input, &mut out, &opts) {
        Ok(_) => {
            // A metadata read has no log line of its own: what the inner plugin said
            // here belongs to no object.
            let _said = fetch.finish()?;
            Ok(out)
        }
        Err(e) => {
            // The keyring's files are not known here: the command names a placeholder.
            Err(fetch.abort(anyhow!("{}", e.explain(&[], name))))
        }
    }
}

/// Finds every object of backup `ts`: reads its config.yaml and toc.yaml through the
/// inner plugin and derives the rest.
pub fn discover(
    store: &Store,
    ts: &str,
    keyring: &Keyring,
    progress: &Progress,
) -> Result<BackupSet> {
    crate::gpbackup::check_timestamp(ts)?;
    let read = |name: String| -> Result<String> {
        let bytes = read_object(store, ts, &name, keyring, progress).map_err(|e| {
            anyhow!(
                "cannot read {name} of backup {ts}: {}",
                crate::message::error_line(&e)
            )
        })?;
        String::from_utf8(bytes).map_err(|_| anyhow!("{name} of backup {ts} is not text"))
    };
    let config = read(format!("gpbackup_{ts}_config.yaml"))?;
    let toc = read(format!("gpbackup_{ts}_toc.yaml"))?;
    let layout = Layout::parse(ts, &config, &toc)?;
    let (segments, probed) = match layout.segment_count {
        Some(n) => (n, false),
        None if !layout.has_data() => (0, false),
        None => (probe_segments(store, &layout, progress), true),
    };
    if layout.has_data() && segments == 0 {
        bail!("backup {ts}: its TOC lists table data but no segment's data was found (config.yaml records no segmentcount, and content 0 has no {})",
            layout.first_segment_object(0).unwrap_or_default());
    }
    let objects = layout.objects(segments);
    Ok(BackupSet {
        layout,
        segments,
        probed,
        objects,
    })
}

/// Counts segments by reading the header of each content ID's first object until one
/// cannot be read.
fn probe_segments(store: &Store, layout: &Layout, progress: &Progress) -> u32 {
    let mut content = 0;
    while content < MAX_PROBED_SEGMENTS {
        let Some(name) = layout.first_segment_object(content) else {
            break;
        };
        let found = store
            .fetch(&layout.timestamp, &name, progress)
            .and_then(|f| f.read_header())
            .map(|(_, f)| f.stop())
            .is_ok();
        if !found {
            break;
        }
        content += 1;
    }
    content
}

/// [`discover`] for the operator commands that go through several timestamps: a set
/// that cannot be read is reported in one stderr line naming `command` and the
/// timestamp, and the caller counts it and goes on with the next.
pub fn discover_or_report(
    store: &Store,
    ts: &str,
    keyring: &Keyring,
    command: &str,
) -> Option<BackupSet> {
    discover(store, ts, keyring, &Progress::hidden())
        .map_err(|e| {
            eprintln!(
                "gpbackup_age_plugin: {command} {ts}: {}",
                crate::message::error_line(&e)
            )
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "20250101010101";

    #[test]
    fn multi_file_layout() {
        let config = "backupdir: \"\"\nbackupversion: 1.30.5\ncompressed: true\ncompressiontype: zstd\ndatabasename: db\nsegmentcount: 2\nsingledatafile: false\ntimestamp: \"20250101010101\"\nwithstatistics: true\n";
        let toc = "globalentries: []\ndataentries:\n- schema: public\n  name: a\n  oid: 16384\n  attributestring: (x)\n  rowscopied: 3\n  partitionroot: \"\"\n  isreplicated: false\n  distbyenum: false\n- schema: public\n  name: b\n  oid: 16390\n";
        let layout = Layout::parse(TS, config, toc).unwrap();
        assert_eq!(layout.segment_count, Some(2));
        assert_eq!(layout.extension, ".zst");
        let objects = layout.objects(2);
        assert!(objects.contains(&format!("gpbackup_1_{TS}_16390.zst")));
        assert!(objects.contains(&format!("gpbackup_{TS}_statistics.sql")));
        assert_eq!(objects.len(), 4 + 6);
        assert_eq!(
            objects.last().unwrap(),
            &format!("gpbackup_{TS}_config.yaml")
        );
    }

    #[test]
    fn single_data_file_and_old_config() {
        let config = "compressed: true\nsingledatafile: true\ntimestamp: \"20250101010101\"\n";
        let toc = "dataentries:\n- oid: 1\n";
        let layout = Layout::parse(TS, config, toc).unwrap();
        assert_eq!(layout.segment_count, None);
        assert_eq!(layout.extension, ".gz");
        let objects = layout.objects(3);
        assert!(objects.contains(&format!("gpbackup_2_{TS}.gz")));
        assert!(objects.contains(&format!("gpbackup_2_{TS}_toc.yaml")));
        assert_eq!(objects.len(), 6 + 5);
    }

    #[test]
    fn metadata_only_and_bad_fields() {
        let layout = Layout::parse(TS, "metadataonly: true\n", "dataentries:\n- oid: 5\n").unwrap();
        assert!(!layout.has_data());
        assert_eq!(layout.objects(4).len(), 5);
        assert!(Layout::parse(TS, "compressed: true\ncompressiontype: lz4\n", "").is_err());
        assert!(Layout::parse(TS, "timestamp: \"20240101010101\"\n", "").is_err());
        assert!(Layout::parse(TS, "", "").unwrap().oids.is_empty());
        assert!(Layout::parse(TS, "- a list\n", "").is_err());
    }
}
