//! Inner configs left behind by calls that died without cleaning up (SIGKILL, a host
//! out of memory): the next call that writes a config in the same directory removes
//! them.
//!
//! Ownership is an advisory lock, not a pid: every call holds an exclusive `flock` on
//! its own config from before the first byte of credentials is written until the call
//! ends, and the kernel drops that lock when the owner dies, however it dies. So a
//! config whose lock can be taken and that holds data belongs to a call that is gone.
//! This cannot mistake a live call for a dead one across pid reuse, pid namespaces or
//! a TMPDIR shared between containers, as a pid check could.
//!
//! What is never touched: files of another owner (uid), anything that is not a
//! regular file, names not in the form [`InnerConfig`](super::InnerConfig) writes
//! (`gpbackup_age_plugin_inner_p<pid>-<random>.yaml`; configs of versions that did not
//! lock are left alone), an empty file (its writer may not have locked it yet; it holds
//! no credentials), and a config whose lock is held.
//!
//! Configs live in a directory of their own under the temp directory,
//! `gpbackup_age_plugin-<uid>` (mode 0700, see [`private_dir`]), so the listing covers
//! only our configs and not, say, the hundreds of other files a host's /dev/shm may
//! hold. Cost: that listing, done while the inner plugin starts (off a small call's
//! critical path), plus four system calls per config of a live call.

use std::fs::File;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

/// The first part of every inner config's name.
pub const PREFIX: &str = "gpbackup_age_plugin_inner_p";
/// The last part.
pub const SUFFIX: &str = ".yaml";

/// True for a name [`super::InnerConfig`] writes: `<PREFIX><pid>-<random><SUFFIX>`.
fn is_config_name(name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
    else {
        return false;
    };
    let Some((pid, random)) = middle.split_once('-') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The directory for our configs under `parent`: `gpbackup_age_plugin-<uid>`, created
/// mode 0700 if missing. If it exists but is not a directory of ours that only we can
/// write (someone else made it in a world-writable /dev/shm, or a symlink), or cannot
/// be made, `parent` itself is used.
pub fn private_dir(parent: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = rustix::process::geteuid().as_raw();
    let dir = parent.join(format!("gpbackup_age_plugin-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => return dir,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return parent.to_path_buf(),
    }
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0 => dir,
        _ => parent.to_path_buf(),
    }
}

/// Locks a config for the life of its call (the lock dies with the process).
pub fn lock(file: &File) -> std::io::Result<()> {
    flock(file, FlockOperation::LockExclusive).map_err(Into::into)
}

/// Removes every config in `dir` left by a call that is gone (see the module docs);
/// `own` is skipped. Errors are ignored: a config that cannot be judged stays.
///
/// The listing reads names straight from `getdents64` into one buffer, without an
/// allocation per entry, since a directory such as /dev/shm may hold hundreds of
/// other files.
pub fn sweep(dir: &Path, own: &Path) {
    use rustix::fs::{fstat, openat, unlinkat, AtFlags, FileType, Mode, OFlags, RawDir};
    let Ok(dir_fd) = openat(
        rustix::fs::CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut entries = RawDir::new(&dir_fd, buf.spare_capacity_mut());
    let own_name = own.file_name().map(|n| n.as_encoded_bytes());
    let uid = rustix::process::geteuid().as_raw();
    while let Some(Ok(entry)) = entries.next() {
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if !bytes.starts_with(PREFIX.as_bytes())
            || Some(bytes) == own_name
            || !std::str::from_utf8(bytes).is_ok_and(is_config_name)
            || !matches!(entry.file_type(), FileType::RegularFile | FileType::Unknown)
        {
            continue;
        }
        // Not following a symlink, not blocking on a FIFO.
        let Ok(fd) = openat(
            &dir_fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        let Ok(stat) = fstat(&fd) else {
            continue;
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile
            || stat.st_uid != uid
            || stat.st_size == 0
        {
            continue;
        }
        if flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = unlinkat(&dir_fd, name, AtFlags::empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_config_name("gpbackup_age_plugin_inner_p123-Ab9xYz.yaml"));
        for name in [
            "gpbackup_age_plugin_inner_Ab9xYz.yaml",
            "gpbackup_age_plugin_inner_p-Ab9xYz.yaml",
            "gpbackup_age_plugin_inner_p12x-Ab9.yaml",
            "gpbackup_age_plugin_inner_p12-.yaml",
            "gpbackup_age_plugin_inner_p12-a.b.yaml",
            "gpbackup_age_plugin_inner_p12-ab.yml",
            "other_p12-ab.yaml",
        ] {
            assert!(!is_config_name(name), "{name}");
        }
    }

    #[test]
    fn the_private_directory_is_ours_or_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = private_dir(parent.path());
        assert_ne!(dir, parent.path());
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(private_dir(parent.path()), dir);
        // Opened up to others, or replaced by a symlink: not used.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(private_dir(parent.path()), parent.path());
        std::fs::remove_dir(&dir).unwrap();
        std::os::unix::fs::symlink(parent.path(), &dir).unwrap();
        assert_eq!(private_dir(parent.path()), parent.path());
    }

    #[test]
    fn only_unlocked_configs_with_data_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n);
        let live = path("gpbackup_age_plugin_inner_p1-live.yaml");
        let dead = path("gpbackup_age_plugin_inner_p2-dead.yaml");
        let empty = path("gpbackup_age_plugin_inner_p3-empty.yaml");
        let old = path("gpbackup_age_plugin_inner_OldOne.yaml");
        let own = path("gpbackup_age_plugin_inner_p4-own.yaml");
        for p in [&live, &dead, &old, &own] {
            std::fs::write(p, "options:\n").unwrap();
        }
        std::fs::write(&empty, "").unwrap();
        let held = File::open(&live).unwrap();
        lock(&held).unwrap();
        sweep(dir.path(), &own);
        assert!(live.exists() && empty.exists() && old.exists() && own.exists());
        assert!(!dead.exists());
        drop(held);
        sweep(dir.path(), &own);
        assert!(!live.exists());
    }
}
