//! Key material: the recipients (public keys) backups are encrypted to and the keyring
//! of identities (private keys) restores open objects with. One owner: both are built
//! once from the config by every command that needs them ([`Recipients::from_config`],
//! [`Keyring::from_config`], [`Keyring::for_operator`]) and shared by its threads.
//!
//! - [`kinds`]: every key type we know (X25519, SSH, the post-quantum
//!   [`mlkem768x25519`], keys served by an age [`plugin`]): parsing, names, generation. Adding a type touches that module
//!   (and adds its own).
//! - [`Recipients`]: parsed recipients with their text as given and their key ids; the
//!   rule against mixing post-quantum and classic recipients.
//! - [`Keyring`]: identities with their files and labels, the warnings loading them
//!   noticed, and [`Keyring::open`], which opens a header and says which key did.
//! - `file`: key files as people save them (byte-order marks, CRLF, invisible
//!   characters), read into zeroizing buffers.
//!
//! Backup hosts only ever parse recipients. Identity files are read into zeroizing
//! buffers, and the parsed keys zeroize themselves when dropped.

mod file;
mod keyring;
pub mod kinds;
pub mod mlkem768x25519;
pub mod plugin;
mod recipients;

pub use keyring::{KeyOrigin, Keyring, KeyringEntry, Opened, Unwrapped};
pub use kinds::{key_id, IdentityKey, NewKey, RecipientKey};
pub use recipients::Recipients;
