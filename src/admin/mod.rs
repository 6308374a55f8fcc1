//! The operator commands that sit beside the plugin API: key generation, key rotation,
//! verification and inspection of stored objects.
//!
//! - [`keygen`]: a new X25519 identity file, in the format of `age-keygen`.
//! - [`backup_set`]: which objects make up a gpbackup backup set, derived from gpbackup's
//!   own metadata files read through the inner plugin (inner plugins cannot list).
//! - [`storage`]: the inner plugin as an object store: fetch and put by basename, the
//!   keyring, key ids.
//! - [`payload`]: copying an object's ciphertext verbatim while authenticating every
//!   chunk, and an in-memory pipe for re-encryption.
//! - [`rotate`]: re-wrapping (or re-encrypting) every object of a backup set, staged or
//!   streaming, with a journal that makes re-runs cheap.
//! - [`verify`]: every object of a backup set decoded end to end into nothing.
//! - [`inspect`]: what one stored object file says about itself.
//! - [`progress`]: the progress bar (terminals only) and the object worker pool.

pub mod backup_set;
pub mod inspect;
pub mod keygen;
pub mod payload;
pub mod progress;
pub mod rotate;
pub mod storage;
pub mod verify;
